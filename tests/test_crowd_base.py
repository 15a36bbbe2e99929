"""Input checks and shared numerics of the aggregators (geolabel/crowd/base.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import logsumexp

from geolabel.crowd import GLAD, DawidSkene, MajorityVote, OneCoinDawidSkene, WeightedMajorityVote
from geolabel.crowd.base import (
    GoldCodes,
    encode_annotations,
    encode_gold,
    encode_item_prior,
    normalize_posteriors,
)
from geolabel.errors import (
    AggregationError,
    AggregationWarning,
    ColumnError,
    LabelError,
    NotFittedError,
)

ALL = [MajorityVote, WeightedMajorityVote, DawidSkene, OneCoinDawidSkene, GLAD]
EM = [DawidSkene, OneCoinDawidSkene, GLAD]


def votes(*rows: tuple) -> pd.DataFrame:
    columns = ["item", "annotator", "label", "created_at"][: len(rows[0])]
    return pd.DataFrame(list(rows), columns=columns)


TWO = votes(("a", "w1", "park"), ("a", "w2", "park"), ("b", "w1", "water"), ("b", "w2", "park"))


class TestEncodeAnnotations:
    def test_sorted_codes(self):
        enc = encode_annotations(votes(("b", "w2", "y"), ("a", "w1", "x"), ("a", "w2", "y")))
        assert list(enc.items) == ["a", "b"] and list(enc.annotators) == ["w1", "w2"]
        assert enc.item.tolist() == [0, 0, 1] and enc.label.tolist() == [0, 1, 1]
        assert enc.rows.tolist() == [1, 2, 0]

    def test_misnamed_columns_say_what_to_rename(self):
        frame = pd.DataFrame({"task": ["a"], "worker": ["w"], "label": ["x"]})
        with pytest.raises(ColumnError) as err:
            encode_annotations(frame)
        message = str(err.value)
        assert "'item', 'annotator'" in message and "'task' -> 'item'" in message
        assert "'worker' -> 'annotator'" in message

    def test_missing_column_lists_present_ones(self):
        with pytest.raises(ColumnError, match=r"lack the column.*'label'.*present: 'item'"):
            encode_annotations(pd.DataFrame({"item": ["a"], "annotator": ["w"]}))

    def test_not_a_frame(self):
        with pytest.raises(ColumnError, match=r"pandas DataFrame"):
            encode_annotations([("a", "w", "x")])  # type: ignore[arg-type]

    @pytest.mark.parametrize("blank", [None, np.nan, "  "])
    def test_blank_cells(self, blank):
        with pytest.raises(ColumnError, match=r"1 row.*blank 'label'.*positions 1"):
            encode_annotations(votes(("a", "w1", "x"), ("a", "w2", blank)))

    def test_empty_input(self):
        with pytest.raises(AggregationError, match=r"empty"):
            encode_annotations(pd.DataFrame(columns=["item", "annotator", "label"]))

    def test_labels_outside_taxonomy_are_listed(self):
        frame = votes(("a", "w1", "park"), ("a", "w2", "shop"), ("b", "w1", "shop"),
                      ("b", "w2", "mall"))  # fmt: skip
        with pytest.raises(LabelError) as err:
            encode_annotations(frame, classes=["park", "water"])
        message = str(err.value)
        assert "3 vote(s) have 2 label(s)" in message and "'shop' (2 votes)" in message
        assert "'mall' (1 vote)" in message and "park, water" in message
        assert "on_unknown='map'" in message

    def test_labels_mapped_by_explicit_option(self):
        frame = votes(("a", "w1", "park"), ("a", "w2", "shop"))
        enc = encode_annotations(
            frame,
            classes=["commercial", "park"],
            on_unknown="map",
            label_map={"shop": "commercial"},
        )
        assert enc.label.tolist() == [1, 0] and enc.n_mapped == 1

    def test_map_leaves_unmapped_labels_refused(self):
        frame = votes(("a", "w1", "mall"), ("a", "w2", "shop"))
        with pytest.raises(LabelError, match=r"'mall'.*add them to label_map"):
            encode_annotations(
                frame, classes=["commercial", "park"], on_unknown="map",
                label_map={"shop": "commercial"},
            )  # fmt: skip

    def test_map_needs_a_map_and_valid_targets(self):
        with pytest.raises(AggregationError, match=r"needs a label_map"):
            encode_annotations(TWO, classes=["park", "water"], on_unknown="map")
        with pytest.raises(LabelError, match=r"maps to label.*'plaza'"):
            encode_annotations(
                TWO, classes=["park", "water"], on_unknown="map", label_map={"x": "plaza"}
            )

    def test_duplicates_keep_the_latest_and_say_how_many(self):
        frame = votes(
            ("a", "w1", "park", "2026-01-05T10:00:00Z"),
            ("a", "w1", "water", "2026-01-05T09:00:00Z"),
            ("a", "w1", "lake", "2026-01-04T09:00:00Z"),
            ("a", "w2", "park", "2026-01-05T09:00:00Z"),
        )
        with pytest.warns(
            AggregationWarning, match=r"2 duplicate vote.*1 .item, annotator. pair.*latest"
        ):
            enc = encode_annotations(frame)
        assert enc.n_duplicates == 2 and len(enc) == 2
        assert enc.classes[enc.label[enc.annotator == 0]].tolist() == ["park"]

    def test_duplicates_without_time_keep_the_last_row(self):
        frame = votes(("a", "w1", "park"), ("a", "w1", "water"), ("a", "w2", "park"))
        with pytest.warns(AggregationWarning, match=r"No created_at column.*last row"):
            enc = encode_annotations(frame)
        assert enc.classes[enc.label[enc.annotator == 0]].tolist() == ["water"]

    def test_bad_timestamps_are_named(self):
        frame = votes(("a", "w1", "x", "yesterday"), ("a", "w1", "y", "2026-01-05"))
        with pytest.raises(ColumnError, match=r"created_at.*'yesterday'"):
            encode_annotations(frame)

    def test_int_labels_and_items(self):
        frame = pd.DataFrame({"item": [3, 3, 1], "annotator": [7, 8, 7], "label": [2, 2, 0]})
        enc = encode_annotations(frame)
        assert list(enc.items) == [1, 3] and list(enc.classes) == [0, 2]


class TestSingleAnnotatorAndEmpty:
    ONE = votes(("a", "w1", "park"), ("b", "w1", "water"))

    @pytest.mark.parametrize("model", [WeightedMajorityVote, *EM])
    def test_models_that_need_overlap_refuse(self, model):
        with pytest.raises(AggregationError, match=r"at least 2 annotators.*'w1'.*MajorityVote"):
            model().fit(self.ONE)

    def test_majority_vote_returns_the_labels_and_warns(self):
        with pytest.warns(AggregationWarning, match=r"one annotator"):
            labels = MajorityVote().fit_predict(self.ONE)
        assert labels.to_dict() == {"a": "park", "b": "water"}

    @pytest.mark.parametrize("model", ALL)
    def test_empty(self, model):
        with pytest.raises(AggregationError, match=r"No annotations"):
            model().fit(pd.DataFrame(columns=["item", "annotator", "label"]))


class TestEstimatorProtocol:
    @pytest.mark.parametrize("model", ALL)
    def test_fitted_state_before_fit(self, model):
        estimator = model()
        for name in ("labels_", "probas_", "classes_"):
            with pytest.raises(NotFittedError, match=f"{name}.*fit"):
                getattr(estimator, name)
        with pytest.raises(AttributeError) as err:
            estimator.no_such_thing  # noqa: B018
        assert not isinstance(err.value, NotFittedError)

    @pytest.mark.parametrize("model", EM)
    def test_em_state_before_fit(self, model):
        for name in ("loss_history_", "priors_", "skills_"):
            with pytest.raises(NotFittedError):
                getattr(model(), name)

    @pytest.mark.parametrize("model", ALL)
    def test_init_only_stores_and_fit_validates(self, model):
        params = model().get_params()
        if "n_iter" in params:
            estimator = model(n_iter=-3)  # accepted until fit
            assert estimator.get_params()["n_iter"] == -3
            with pytest.raises(AggregationError, match=r"n_iter must be an integer >= 1"):
                estimator.fit(TWO)
        assert model().set_params(classes=["park", "water"]).classes == ["park", "water"]
        with pytest.raises(AggregationError, match=r"no parameter 'bogus'"):
            model().set_params(bogus=1)
        assert repr(model()).startswith(model.__name__ + "(")

    @pytest.mark.parametrize("model", ALL)
    def test_outputs(self, model):
        estimator = model(weights={"w1": 1, "w2": 1}) if model is WeightedMajorityVote else model()
        labels = estimator.fit_predict(TWO)
        assert labels.name == "agg_label" and labels.index.name == "item"
        assert list(estimator.probas_.columns) == ["park", "water"]
        assert np.allclose(estimator.probas_.sum(axis=1), 1.0)


class TestGoldAndPrior:
    def test_gold_forms(self):
        enc = encode_annotations(TWO)
        for gold in (
            {"b": "water", "zz": "park"},
            pd.Series({"b": "water"}),
            pd.DataFrame({"item": ["b"], "label": ["water"]}),
        ):
            codes = encode_gold(gold, enc)
            assert codes is not None and codes.item.tolist() == [1] and codes.label.tolist() == [1]
        assert encode_gold({"b": "water", "zz": "park"}, enc).n_unused == 1

    def test_bad_gold(self):
        enc = encode_annotations(TWO)
        with pytest.raises(LabelError, match=r"'lake'"):
            encode_gold({"a": "lake"}, enc)
        with pytest.raises(ColumnError, match=r"lacks the column.*'label'"):
            encode_gold(pd.DataFrame({"item": ["a"]}), enc)
        with pytest.raises(ColumnError, match=r"two different labels"):
            encode_gold(pd.Series(["park", "water"], index=["a", "a"]), enc)

    def test_prior_is_normalised_and_checked(self):
        enc = encode_annotations(TWO)
        prior = encode_item_prior(pd.DataFrame({"park": [3.0], "water": [1.0]}, index=["a"]), enc)
        assert prior is not None and np.allclose(np.exp(prior.log_prob), [[0.75, 0.25]])
        with pytest.raises(ColumnError, match=r"not classes: 'lake'"):
            encode_item_prior(pd.DataFrame({"lake": [1.0]}, index=["a"]), enc)
        with pytest.raises(ColumnError, match=r"not probabilities"):
            encode_item_prior(pd.DataFrame({"park": [-1.0]}, index=["a"]), enc)


class TestNormalizePosteriors:
    def test_matches_logsumexp_and_clamps_gold(self):
        rng = np.random.default_rng(0)
        log_joint = rng.normal(size=(3, 5)) * 300  # would overflow without the shift
        expected_ll = float(logsumexp(log_joint, axis=0).sum())
        post = log_joint.copy()
        assert normalize_posteriors(post, None) == pytest.approx(expected_ll)
        assert np.allclose(post.sum(axis=0), 1.0) and np.isfinite(post).all()
        gold = GoldCodes(item=np.array([1]), label=np.array([2]), n_unused=0)
        post = log_joint.copy()
        ll = normalize_posteriors(post, gold)
        others = np.delete(np.arange(5), 1)
        assert ll == pytest.approx(
            float(logsumexp(log_joint[:, others], axis=0).sum() + log_joint[2, 1])
        )
        assert post[:, 1].tolist() == [0.0, 0.0, 1.0]


class TestTieBreak:
    """Equal posteriors go to the class listed first in ``classes_``, for every model."""

    SYMMETRIC = votes(("a", "w1", "x"), ("a", "w2", "y"), ("b", "w1", "y"), ("b", "w2", "x"))

    @pytest.mark.parametrize("model", EM)
    def test_first_class_wins(self, model):
        fitted = model().fit(self.SYMMETRIC)
        assert np.allclose(fitted.probas_.to_numpy(), 0.5)
        assert fitted.labels_.tolist() == ["x", "x"]
        reversed_order = model(classes=["y", "x"]).fit(self.SYMMETRIC)
        assert reversed_order.labels_.tolist() == ["y", "y"]
