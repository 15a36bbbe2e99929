"""One-coin Dawid-Skene (geolabel/crowd/one_coin.py)."""

from __future__ import annotations

import numpy as np

from geolabel.crowd import MajorityVote, OneCoinDawidSkene
from tests.crowd_helpers import synthetic_votes


class TestOneCoinDawidSkene:
    def test_recovers_skills_and_beats_majority_vote(self):
        votes, truth, acc = synthetic_votes(n_items=500, n_annotators=15, seed=6,
                                            accuracy=(0.35, 0.9))  # fmt: skip
        oc = OneCoinDawidSkene().fit(votes)
        assert np.corrcoef(oc.skills_.to_numpy(), acc)[0, 1] > 0.9
        assert np.abs(oc.skills_.to_numpy() - acc).mean() < 0.06
        assert (oc.labels_ == truth).mean() > (MajorityVote().fit_predict(votes) == truth).mean()
        assert (np.diff(oc.loss_history_) <= 1e-12).all() and oc.converged_

    def test_gold_clamped(self):
        votes, truth, _ = synthetic_votes(n_items=100, seed=7)
        gold = truth.iloc[:20]
        oc = OneCoinDawidSkene().fit(votes, gold)
        assert (oc.labels_[gold.index] == gold).all()
