"""Annotator reliability reports (geolabel/crowd/reliability.py)."""

from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
import pytest
from statsmodels.stats.proportion import proportion_confint

from geolabel.crowd import reliability_report
from geolabel.crowd.reliability import spammer_score, wilson_interval
from geolabel.errors import AggregationError
from tests.crowd_helpers import sample_gold, sample_profiles, sample_truth, sample_votes


class TestWilsonInterval:
    @pytest.mark.parametrize(("right", "n"), [(0, 5), (3, 7), (7, 7), (40, 100)])
    def test_equals_statsmodels(self, right, n):
        low, high = proportion_confint(right, n, alpha=0.05, method="wilson")
        assert wilson_interval(right, n) == pytest.approx((low, high))

    def test_no_answers(self):
        assert wilson_interval(0, 0) == (0.0, 1.0)


class TestSpammerScore:
    def test_extremes_and_random_annotator(self):
        prior = np.full(4, 0.25)
        assert spammer_score(np.eye(4), prior) == pytest.approx(0.0)
        assert spammer_score(np.full((4, 4), 0.25), prior) == pytest.approx(1.0)
        constant = np.zeros((4, 4))
        constant[:, 2] = 1.0
        assert spammer_score(constant, prior) == pytest.approx(1.0)
        a = 0.7
        random = np.full((4, 4), (1 - a) / 3) + np.eye(4) * (a - (1 - a) / 3)
        assert spammer_score(random, prior) == pytest.approx(1 - (a - (1 - a) / 3))


@pytest.fixture(scope="module")
def report():
    votes = sample_votes(seed=0)
    groups = sample_truth().set_index("item")["district"]
    classes = list(sample_profiles()[0].classes)
    return reliability_report(
        votes, gold=sample_gold(), classes=classes, groups=groups, n_permutations=99
    )


class TestReliabilityReport:
    def test_spammers_score_highest(self, report):
        kinds = {p.annotator_id: p.kind for p in sample_profiles()}
        scores = {a.annotator: a.spammer_score for a in report.annotators}
        spammers = [a for a in scores if kinds[a] == "spammer"]
        ranked = sorted(scores, key=scores.get, reverse=True)
        assert set(ranked[: len(spammers) + 1]) >= set(spammers)
        assert (
            sum(a.suspected_spammer for a in report.annotators if kinds[a.annotator] == "crowd")
            == 0
        )

    def test_fields(self, report):
        assert report.n_annotators == 30 and report.n_gold_items == 24
        assert [g.group for g in report.agreement.per_group] == ["Northgate", "Riverside"]
        for a in report.annotators:
            assert a.n_votes >= a.n_items > 0 and a.median_seconds > 0
            assert len(a.confusion) == len(report.classes)
            assert np.allclose([sum(row) for row in a.confusion], 1.0)
            if a.gold_answered:
                assert a.gold_ci_low <= a.gold_accuracy <= a.gold_ci_high
            else:
                assert a.gold_accuracy is None and a.gold_ci_low is None
        assert len(report.drift) == 30
        assert json.loads(json.dumps(asdict(report)))["n_votes"] == report.n_votes

    def test_gold_accuracy_tracks_true_skill(self, report):
        profiles = {p.annotator_id: p for p in sample_profiles()}
        ds_acc = [a.ds_accuracy for a in report.annotators]
        true_acc = [np.mean(np.diag(profiles[a.annotator].matrix)) for a in report.annotators]
        assert np.corrcoef(ds_acc, true_acc)[0, 1] > 0.7

    def test_single_annotator(self):
        votes = sample_votes(seed=0)
        one = votes[votes["annotator"] == votes["annotator"].iloc[0]]
        with pytest.raises(AggregationError, match=r"at least 2 annotators"):
            reliability_report(one)
