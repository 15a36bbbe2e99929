"""Weighted majority vote (geolabel/crowd/wmv.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from geolabel.crowd import MajorityVote, WeightedMajorityVote
from geolabel.crowd.wmv import gold_accuracy_weights
from geolabel.errors import AggregationError
from tests.crowd_helpers import synthetic_votes

VOTES = pd.DataFrame(
    {"item": ["a", "a", "a"], "annotator": ["w1", "w2", "w3"], "label": ["park", "water", "water"]}
)


class TestWeightedMajorityVote:
    def test_given_weights_decide(self):
        heavy = WeightedMajorityVote(weights={"w1": 3.0, "w2": 1.0, "w3": 1.0})
        assert heavy.fit_predict(VOTES)["a"] == "park"
        even = WeightedMajorityVote(weights={"w1": 1.0, "w2": 1.0, "w3": 1.0})
        assert even.fit_predict(VOTES)["a"] == "water"
        assert heavy.weights_.to_dict() == {"w1": 3.0, "w2": 1.0, "w3": 1.0}

    def test_missing_weights_are_named_or_defaulted(self):
        with pytest.raises(AggregationError, match=r"1 annotator.*'w3'.*default_weight"):
            WeightedMajorityVote(weights={"w1": 1.0, "w2": 1.0}).fit(VOTES)
        wmv = WeightedMajorityVote(weights={"w1": 1.0}, default_weight=0.25).fit(VOTES)
        assert wmv.weights_["w3"] == 0.25 and wmv.labels_["a"] == "park"

    def test_negative_weights_refused(self):
        with pytest.raises(AggregationError, match=r"non-negative"):
            WeightedMajorityVote(weights={"w1": -1.0, "w2": 1.0, "w3": 1.0}).fit(VOTES)

    def test_needs_weights_or_gold(self):
        with pytest.raises(AggregationError, match=r"needs weights.*gold"):
            WeightedMajorityVote().fit(VOTES)
        with pytest.raises(AggregationError, match=r"none of the gold items"):
            WeightedMajorityVote().fit(VOTES, {"zz": "park"})

    def test_log_odds_weights(self):
        weights = gold_accuracy_weights(np.array([0, 3, 10]), np.array([0, 12, 10]), 4)
        # no gold: accuracy 1/2 -> log(3); 3 of 12 right is 1/4 = random among 4 -> weight 0
        assert weights[0] == pytest.approx(np.log(3.0))
        assert weights[1] == pytest.approx(max(0.0, np.log(3 * (4 / 14) / (10 / 14))))
        assert weights[2] > weights[0]

    def test_gold_weights_beat_plain_votes(self):
        votes, truth, acc = synthetic_votes(n_items=600, seed=3, accuracy=(0.3, 0.95))
        gold = truth.iloc[:150]
        wmv = WeightedMajorityVote().fit(votes, gold)
        rest = truth.index[150:]
        wmv_acc = (wmv.labels_[rest] == truth[rest]).mean()
        mv_acc = (MajorityVote().fit_predict(votes)[rest] == truth[rest]).mean()
        assert wmv_acc >= mv_acc
        order = np.argsort(acc)
        assert wmv.skills_.iloc[order[-1]] > wmv.skills_.iloc[order[0]]
