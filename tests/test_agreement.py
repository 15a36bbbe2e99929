"""Agreement metrics (geolabel/crowd/agreement.py), checked against statsmodels, scikit-learn
and the krippendorff package where those apply."""

from __future__ import annotations

import krippendorff
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import aggregate_raters
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss_kappa

from geolabel.crowd import agreement_report, cohen_kappa_pairs, fleiss_kappa, krippendorff_alpha
from geolabel.errors import AggregationError


def rated(n_items: int, n_annotators: int, coverage: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    truth = rng.integers(4, size=n_items)
    rows = [
        (f"i{i:03d}", f"w{a}", int(truth[i] if rng.random() < 0.65 else rng.integers(4)))
        for i in range(n_items)
        for a in range(n_annotators)
        if rng.random() < coverage
    ]
    return pd.DataFrame(rows, columns=["item", "annotator", "label"])


@pytest.fixture(scope="module")
def complete():
    return rated(80, 6, 1.0, seed=0)


@pytest.fixture(scope="module")
def sparse():
    return rated(120, 7, 0.55, seed=1)


class TestFleissKappa:
    def test_equals_statsmodels_on_equal_counts(self, complete):
        table = complete.pivot(index="item", columns="annotator", values="label").to_numpy()
        expected = sm_fleiss_kappa(aggregate_raters(table)[0], method="fleiss")
        assert fleiss_kappa(complete) == pytest.approx(expected)

    def test_uneven_ratings_per_item(self, sparse):
        counts = sparse.groupby(["item", "label"]).size().unstack(fill_value=0).to_numpy(float)
        counts = counts[counts.sum(axis=1) >= 2]
        m = counts.sum(axis=1)
        assert len(set(m)) > 1  # statsmodels would refuse this table
        p_bar = np.mean(((counts**2).sum(axis=1) - m) / (m * (m - 1)))
        p_e = ((counts.sum(axis=0) / m.sum()) ** 2).sum()
        assert fleiss_kappa(sparse) == pytest.approx((p_bar - p_e) / (1 - p_e))

    def test_undefined_is_nan(self):
        same = pd.DataFrame({"item": ["a", "a"], "annotator": ["w1", "w2"], "label": ["x", "x"]})
        assert np.isnan(fleiss_kappa(same))


class TestKrippendorffAlpha:
    @pytest.mark.parametrize("fixture", ["complete", "sparse"])
    def test_equals_the_krippendorff_package(self, fixture, request):
        frame = request.getfixturevalue(fixture)
        reliability = frame.pivot(index="annotator", columns="item", values="label")
        expected = krippendorff.alpha(
            reliability_data=reliability.to_numpy(dtype=float), level_of_measurement="nominal"
        )
        assert krippendorff_alpha(frame) == pytest.approx(expected)

    def test_per_class_equals_binary_recoding(self, sparse):
        report = agreement_report(sparse)
        for entry in report.per_class:
            binary = sparse.assign(label=(sparse["label"].astype(str) == entry.label).astype(int))
            reliability = binary.pivot(index="annotator", columns="item", values="label")
            expected = krippendorff.alpha(
                reliability_data=reliability.to_numpy(dtype=float), level_of_measurement="nominal"
            )
            assert entry.krippendorff_alpha == pytest.approx(expected)


class TestCohenKappaPairs:
    def test_equals_scikit_learn_for_every_pair(self, sparse):
        pairs = cohen_kappa_pairs(sparse, min_overlap=2)
        wide = sparse.pivot(index="item", columns="annotator", values="label")
        assert len(pairs) == 21
        for row in pairs.itertuples():
            both = wide[[row.annotator_a, row.annotator_b]].dropna()
            assert row.n_items == len(both)
            assert row.kappa == pytest.approx(
                cohen_kappa_score(both[row.annotator_a], both[row.annotator_b])
            )

    def test_min_overlap_filters(self, sparse):
        assert cohen_kappa_pairs(sparse, min_overlap=10_000).empty


class TestAgreementReport:
    def test_groups_classes_and_annotators(self, sparse):
        groups = {item: ("north" if item < "i060" else "south") for item in sparse["item"]}
        report = agreement_report(sparse, groups=groups, min_overlap=5)
        assert [g.group for g in report.per_group] == ["north", "south"]
        north = sparse[sparse["item"] < "i060"]
        assert report.per_group[0].scores.fleiss_kappa == pytest.approx(fleiss_kappa(north))
        assert report.overall.n_items == sum(g.scores.n_items for g in report.per_group)
        assert [c.label for c in report.per_class] == ["0", "1", "2", "3"]
        assert len(report.per_annotator) == 7
        assert all(0 <= a.pairwise_agreement <= 1 for a in report.per_annotator)
        kappas = cohen_kappa_pairs(sparse, min_overlap=5)
        expected = np.average(kappas["kappa"], weights=kappas["n_items"])
        assert report.overall.mean_cohen_kappa == pytest.approx(expected)

    def test_single_annotator_is_refused(self):
        one = pd.DataFrame({"item": ["a", "b"], "annotator": ["w", "w"], "label": ["x", "y"]})
        with pytest.raises(AggregationError, match=r"at least 2 annotators"):
            agreement_report(one)

    def test_no_overlap_gives_none(self):
        apart = pd.DataFrame({"item": ["a", "b"], "annotator": ["w1", "w2"], "label": ["x", "y"]})
        report = agreement_report(apart)
        assert report.overall.n_items == 0 and report.overall.fleiss_kappa is None
