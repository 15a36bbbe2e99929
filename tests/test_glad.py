"""GLAD (geolabel/crowd/glad.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from geolabel.crowd import GLAD, MajorityVote
from geolabel.crowd.base import encode_annotations
from tests.crowd_helpers import synthetic_votes


@pytest.fixture(scope="module")
def crowd():
    return synthetic_votes(n_items=400, n_annotators=12, seed=8, accuracy=(0.35, 0.9))


class TestGLAD:
    def test_abilities_follow_accuracy(self, crowd):
        votes, truth, acc = crowd
        glad = GLAD().fit(votes)
        assert np.corrcoef(glad.skills_.to_numpy(), acc)[0, 1] > 0.9
        assert (glad.labels_ == truth).mean() >= (MajorityVote().fit_predict(votes) == truth).mean()
        assert (glad.difficulties_ > 0).all() and len(glad.difficulties_) == 400
        assert (np.diff(glad.loss_history_) <= 1e-9).all()

    def test_m_step_never_lowers_q(self, crowd):
        votes, _, _ = crowd
        enc = encode_annotations(votes)
        glad = GLAD(m_step_max_iter=3)
        rng = np.random.default_rng(0)
        probas = rng.dirichlet(np.ones(4), size=enc.n_items).T
        alpha, b = np.ones(enc.n_annotators), np.ones(enc.n_items)
        p = probas[enc.label, enc.item]

        def q(alpha: np.ndarray, b: np.ndarray) -> float:
            x = alpha[enc.annotator] * np.exp(b)[enc.item]
            value = np.sum(p * x - np.logaddexp(0, x))
            return value - 0.5 * np.sum((alpha - 1) ** 2) - 0.5 * np.sum((b - 1) ** 2)

        new_alpha, new_b = glad._m_step(enc, probas, alpha, b)
        assert q(new_alpha, new_b) >= q(alpha, b)

    def test_vote_terms_are_stable(self):
        softplus, sigma = GLAD._vote_terms(np.array([-800.0, 0.0, 800.0]))
        assert np.allclose(softplus, [0.0, np.log(2.0), 800.0])
        assert np.allclose(sigma, [0.0, 0.5, 1.0])

    def test_gold_clamped_and_bad_parameter(self, crowd):
        votes, truth, _ = crowd
        gold = truth.iloc[:30]
        assert (GLAD().fit_predict(votes, gold)[gold.index] == gold).all()
        from geolabel.errors import AggregationError

        with pytest.raises(AggregationError, match=r"m_step_max_iter"):
            GLAD(m_step_max_iter=0).fit(votes)

    @pytest.mark.filterwarnings("ignore")
    def test_same_answers_as_crowd_kit_on_an_easy_crowd(self):
        ck = pytest.importorskip("crowdkit.aggregation")
        votes, _, _ = synthetic_votes(n_items=60, n_annotators=6, seed=9, accuracy=(0.6, 0.9))
        theirs = ck.GLAD(n_iter=5).fit_predict(
            votes.rename(columns={"item": "task", "annotator": "worker"})
        )
        ours = GLAD().fit_predict(votes)
        assert (ours == pd.Series(theirs).reindex(ours.index)).mean() > 0.9
