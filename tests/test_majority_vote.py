"""Majority vote (geolabel/crowd/majority_vote.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from geolabel.crowd import MajorityVote
from tests.crowd_helpers import synthetic_votes


class TestMajorityVote:
    def test_counts_and_shares(self):
        votes = pd.DataFrame(
            {"item": ["a", "a", "a", "b"], "annotator": ["w1", "w2", "w3", "w1"],
             "label": ["x", "y", "y", "x"]}
        )  # fmt: skip
        mv = MajorityVote().fit(votes)
        assert mv.labels_.to_dict() == {"a": "y", "b": "x"}
        assert mv.counts_.loc["a"].tolist() == [1.0, 2.0]
        assert np.allclose(mv.probas_.loc["a"], [1 / 3, 2 / 3])

    def test_tie_break_is_first_class_in_sorted_order_whatever_the_row_order(self):
        rows = [("a", "w1", "water"), ("a", "w2", "park"), ("b", "w1", "park"), ("b", "w2", "lake")]
        forward = pd.DataFrame(rows, columns=["item", "annotator", "label"])
        backward = forward.iloc[::-1]
        for frame in (forward, backward):
            assert MajorityVote().fit_predict(frame).to_dict() == {"a": "park", "b": "lake"}

    def test_tie_break_follows_the_given_class_order(self):
        rows = [("a", "w1", "water"), ("a", "w2", "park")]
        frame = pd.DataFrame(rows, columns=["item", "annotator", "label"])
        labels = MajorityVote(classes=["water", "park", "lake"]).fit_predict(frame)
        assert labels["a"] == "water"

    def test_gold_items_get_their_answer(self):
        votes, truth, _ = synthetic_votes(n_items=50, seed=1)
        gold = truth.iloc[:10]
        labels = MajorityVote().fit_predict(votes, gold)
        assert (labels[gold.index] == gold).all()

    def test_better_than_a_single_vote(self):
        votes, truth, _ = synthetic_votes(seed=2)
        accuracy = (MajorityVote().fit_predict(votes) == truth).mean()
        single = (votes.drop_duplicates("item").set_index("item")["label"] == truth).mean()
        assert accuracy > single + 0.05
