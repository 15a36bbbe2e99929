"""Tests for geolabel.review.disagreement: per-item scores, class pairs, the project bridge."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from geolabel.errors import ColumnError, LabelError, ReviewError
from geolabel.review.disagreement import (
    DISAGREEMENT_COLUMNS,
    DisagreementWeights,
    annotator_weights,
    confusion_pairs,
    item_disagreement,
    pair_name,
    project_disagreement,
)
from tests.review_map_helpers import voted_project

CLASSES = ["residential", "commercial", "park"]


def _votes() -> pd.DataFrame:
    rows = [
        # a: 3 residential, 2 commercial
        ("a", "w1", "residential", 10.0),
        ("a", "w2", "residential", 10.0),
        ("a", "w3", "residential", 10.0),
        ("a", "w4", "commercial", 10.0),
        ("a", "w5", "commercial", 10.0),
        # b: unanimous park, and slow (3x each annotator's usual)
        ("b", "w1", "park", 30.0),
        ("b", "w2", "park", 30.0),
        # c: residential, commercial, park
        ("c", "w1", "residential", 10.0),
        ("c", "w2", "commercial", 10.0),
        ("c", "w3", "park", 10.0),
    ]
    return pd.DataFrame(rows, columns=["item", "annotator", "label", "seconds"])


class TestItemDisagreement:
    def test_counting_scores(self):
        d = item_disagreement(_votes(), posteriors=None, predictions=None, classes=CLASSES)
        assert list(d.columns) == list(DISAGREEMENT_COLUMNS)
        d = d.set_index("item")
        assert d.loc["a", "n_votes"] == 5
        # 1 - (3*2 + 2*1) / (5*4)
        assert d.loc["a", "observed_disagreement"] == pytest.approx(1 - 8 / 20)
        h = -(0.6 * math.log(0.6) + 0.4 * math.log(0.4)) / math.log(3)
        assert d.loc["a", "vote_entropy"] == pytest.approx(h)
        assert d.loc["b", "observed_disagreement"] == 0.0
        assert d.loc["c", "observed_disagreement"] == 1.0
        assert d.loc["c", "vote_entropy"] == pytest.approx(1.0)
        assert d.loc["a", "top_pair"] == "residential ↔ commercial"
        assert pd.isna(d.loc["b", "top_pair"])
        assert d.loc["a", "consensus_label"] == "residential"
        # without weights the weighted score is the plain one
        assert d.loc["a", "weighted_disagreement"] == d.loc["a", "observed_disagreement"]

    def test_hesitation_against_each_annotators_median(self):
        d = item_disagreement(_votes(), posteriors=None, predictions=None, classes=CLASSES)
        d = d.set_index("item")
        # w1, w2 took 30 s on b and 10 s elsewhere: medians 10 s, so b is log(3)/log(3) = 1.
        assert d.loc["b", "hesitation"] == pytest.approx(1.0)
        assert d.loc["a", "hesitation"] == 0.0
        no_time = item_disagreement(
            _votes().drop(columns="seconds"), posteriors=None, predictions=None, classes=CLASSES
        )
        assert no_time["hesitation"].isna().all()

    def test_weighted_disagreement_ignores_zero_weight_annotators(self):
        weights = pd.Series({"w1": 1.0, "w2": 1.0, "w3": 1.0, "w4": 0.0, "w5": 0.0})
        d = item_disagreement(
            _votes(), posteriors=None, predictions=None, classes=CLASSES, annotator_weights=weights
        ).set_index("item")
        assert d.loc["a", "weighted_disagreement"] == pytest.approx(0.0)
        assert d.loc["a", "observed_disagreement"] == pytest.approx(0.6)

    def test_posterior_model_and_combined_score(self):
        posteriors = pd.DataFrame(
            [[0.5, 0.5, 0.0], [0.0, 0.0, 1.0], [0.2, 0.7, 0.1]],
            index=["a", "b", "c"],
            columns=CLASSES,
        )
        predictions = pd.DataFrame(
            {
                "item": ["a", "b"],
                "label": ["commercial", "residential"],
                "probas": [{"residential": 0.3, "commercial": 0.7}, None],
            }
        )
        w = DisagreementWeights(crowd=1.0, hesitation=0.0, posterior=1.0, model=2.0)
        d = item_disagreement(
            _votes(), posteriors=posteriors, predictions=predictions, classes=CLASSES, weights=w
        ).set_index("item")
        assert d.loc["a", "posterior_entropy"] == pytest.approx(math.log(2) / math.log(3))
        assert d.loc["b", "posterior_entropy"] == pytest.approx(0.0)
        assert d.loc["c", "consensus_label"] == "commercial"  # argmax of the posterior
        # a's consensus is residential (first of the tie): the model gives it 0.3
        assert d.loc["a", "model_crowd_disagreement"] == pytest.approx(0.7)
        assert d.loc["b", "model_label"] == "residential"
        assert d.loc["b", "model_crowd_disagreement"] == 1.0  # no probas: a flag
        assert np.isnan(d.loc["c", "model_crowd_disagreement"])
        expected_a = (0.6 + math.log(2) / math.log(3) + 2 * 0.7) / 4
        assert d.loc["a", "disagreement"] == pytest.approx(expected_a)
        # c has no model component: the weights renormalise over crowd and posterior
        expected_c = (1.0 + d.loc["c", "posterior_entropy"]) / 2
        assert d.loc["c", "disagreement"] == pytest.approx(expected_c)
        assert d["disagreement"].between(0, 1).all()

    def test_stored_consensus_overrides_the_posterior(self):
        d = item_disagreement(
            _votes(),
            posteriors=None,
            predictions=None,
            classes=CLASSES,
            consensus=pd.Series({"a": "commercial"}),
        ).set_index("item")
        assert d.loc["a", "consensus_label"] == "commercial"
        assert d.loc["c", "consensus_label"] == "residential"

    @pytest.mark.parametrize(
        ("votes", "error", "match"),
        [
            (
                pd.DataFrame({"item": ["a"], "worker": ["w"], "label": ["park"]}),
                ColumnError,
                "annotator",
            ),
            (
                pd.DataFrame({"item": ["a"], "annotator": ["w"], "label": ["shop"]}),
                LabelError,
                "shop",
            ),
            (
                pd.DataFrame({"item": [None], "annotator": ["w"], "label": ["park"]}),
                ColumnError,
                "blank",
            ),
        ],
    )
    def test_bad_votes(self, votes, error, match):
        with pytest.raises(error, match=match):
            item_disagreement(votes, posteriors=None, predictions=None, classes=CLASSES)

    def test_bad_weights_and_classes(self):
        with pytest.raises(ReviewError, match="not all 0"):
            DisagreementWeights(crowd=0, hesitation=0, posterior=0, model=0)
        with pytest.raises(ReviewError, match="classes is empty"):
            item_disagreement(_votes(), posteriors=None, predictions=None, classes=[])
        with pytest.raises(ReviewError, match=">= 0"):
            item_disagreement(
                _votes(),
                posteriors=None,
                predictions=None,
                classes=CLASSES,
                annotator_weights=pd.Series({"w1": -1.0}),
            )


class TestConfusionPairs:
    def test_pairs_ranked_by_disagreeing_annotator_pairs(self):
        pairs = confusion_pairs(_votes(), classes=CLASSES)
        top = pairs.iloc[0]
        # a: 3 x 2 = 6 residential/commercial pairs, c: 1 more
        assert top["pair"] == "residential ↔ commercial"
        assert top["n_disagreeing_pairs"] == 7
        assert top["n_items"] == 2 and top["n_items_split"] == 2  # c ties: taxonomy order
        assert pairs["share"].sum() == pytest.approx(1.0)
        assert set(pairs["pair"]) == {
            "residential ↔ commercial",
            "residential ↔ park",
            "commercial ↔ park",
        }

    def test_pair_name_follows_the_taxonomy(self):
        assert pair_name("commercial", "residential", CLASSES) == "residential ↔ commercial"

    def test_annotator_weights(self):
        w = annotator_weights(pd.Series({"good": 0.9, "chance": 1 / 3, "bad": 0.1}), 3)
        assert w["good"] == pytest.approx(math.log(0.9 * 2 / 0.1))
        assert w["chance"] == pytest.approx(0.0, abs=1e-9)
        assert w["bad"] == 0.0


class TestProjectDisagreement:
    def test_sample_project(self, tmp_path_factory):
        from geolabel.store import Project

        path = voted_project(tmp_path_factory.mktemp("review") / "p.gpkg")
        with Project.open(path) as project:
            d = project_disagreement(project)
            assert len(d) == 286
            assert d["model_label"].isna().all()  # no predictions yet
            consensus = project.current_consensus().set_index("item")["label"]
            assert (d.set_index("item")["consensus_label"] == consensus.reindex(d["item"])).all()
            # a cheap model: the consensus itself, 80 % sure
            taxonomy = project.current_taxonomy()
            predictions = pd.DataFrame(
                {
                    "item": consensus.index,
                    "label": consensus.to_numpy(),
                    "confidence": 0.8,
                    "probas": [{lab: 0.8} for lab in consensus],
                }
            )
            project.add_predictions(
                predictions, model_version="cheap-1", taxonomy_version=taxonomy.version
            )
            d2 = project_disagreement(project)
            assert d2["model_crowd_disagreement"].to_numpy() == pytest.approx(0.2)
            with pytest.raises(ReviewError, match="no-such"):
                project_disagreement(project, model_version="no-such")
            pairs = d2["top_pair"].value_counts()
            assert pairs.index[0] == "residential ↔ commercial"

    def test_project_without_votes(self, tmp_path_factory):
        from geolabel.store import Project
        from tests.conftest import SAMPLE

        path = tmp_path_factory.mktemp("review") / "empty.gpkg"
        text = (SAMPLE / "taxonomy.yaml").read_text()
        with Project.create(path, crs="EPSG:32610") as project:
            project.add_taxonomy_version("land_use", 1, text, "0" * 64)
        with Project.open(path) as project, pytest.raises(ReviewError, match="no annotations"):
            project_disagreement(project)
