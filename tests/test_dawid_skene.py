"""Dawid-Skene (geolabel/crowd/dawid_skene.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from geolabel.crowd import DawidSkene, MajorityVote
from geolabel.crowd.base import encode_annotations
from geolabel.crowd.dawid_skene import response_matrix
from tests.crowd_helpers import sample_gold, sample_truth, sample_votes, synthetic_votes


@pytest.fixture(scope="module")
def crowd():
    return synthetic_votes(n_items=500, n_annotators=15, seed=4, accuracy=(0.35, 0.9))


class TestDawidSkene:
    def test_beats_majority_vote_and_recovers_skills(self, crowd):
        votes, truth, acc = crowd
        ds = DawidSkene().fit(votes)
        ds_acc = (ds.labels_ == truth).mean()
        mv_acc = (MajorityVote().fit_predict(votes) == truth).mean()
        assert ds_acc > mv_acc
        assert np.corrcoef(ds.skills_.to_numpy(), acc)[0, 1] > 0.9
        assert ds.confusions_.shape == (15, 4, 4)
        assert np.allclose(ds.confusions_.sum(axis=2), 1.0)
        assert ds.confusion("w00").index.name == "true"

    def test_loss_never_increases_and_converges_on_tolerance(self, crowd):
        votes, _, _ = crowd
        ds = DawidSkene(n_iter=200, tol=1e-7).fit(votes)
        history = np.array(ds.loss_history_)
        assert (np.diff(history) <= 1e-8).all()  # float32 posteriors
        assert ds.converged_ and 2 < ds.n_iter_ < 200
        assert history[-2] - history[-1] < 1e-7

    def test_tol_zero_runs_every_round(self, crowd):
        ds = DawidSkene(n_iter=7, tol=0).fit(crowd[0])
        assert ds.n_iter_ == 7 and not ds.converged_

    def test_e_step_matches_a_direct_computation(self):
        votes, _, _ = synthetic_votes(n_items=30, n_annotators=5, seed=5)
        enc = encode_annotations(votes)
        rng = np.random.default_rng(0)
        confusions = rng.dirichlet(np.ones(4), size=(5, 4))
        prior = np.array([0.1, 0.2, 0.3, 0.4])
        post, ll = DawidSkene._e_step(
            response_matrix(enc), DawidSkene._log_table(confusions), np.log(prior), None, 1.0, None
        )
        expected = np.zeros((4, enc.n_items))
        total = 0.0
        for i in range(enc.n_items):
            joint = prior.copy()
            for a, lab in zip(enc.annotator[enc.item == i], enc.label[enc.item == i], strict=True):
                joint *= confusions[a, :, lab]
            total += np.log(joint.sum())
            expected[:, i] = joint / joint.sum()
        assert np.allclose(post, expected) and ll == pytest.approx(total)

    def test_m_step_on_certain_posteriors_counts_answers(self):
        votes = pd.DataFrame(
            {"item": ["a", "a", "b", "b"], "annotator": ["w1", "w2", "w1", "w2"],
             "label": ["x", "x", "y", "x"]}
        )  # fmt: skip
        enc = encode_annotations(votes)
        probas = np.array([[1.0, 0.0], [0.0, 1.0]])  # a is x, b is y
        conf = DawidSkene._m_step(response_matrix(enc), probas, 2, 0.0)
        assert conf[0].tolist() == [[1.0, 0.0], [0.0, 1.0]]  # w1 right on both
        assert conf[1].tolist() == [[1.0, 0.0], [1.0, 0.0]]  # w2 says x to everything

    def test_gold_is_clamped_in_every_e_step(self, crowd):
        votes, truth, _ = crowd
        gold = truth.iloc[:100]
        ds = DawidSkene().fit(votes, gold)
        assert (ds.labels_[gold.index] == gold).all()
        assert (ds.probas_.loc[gold.index].max(axis=1) == 1.0).all()

    def test_gold_teaches_a_colluding_majority(self):
        # Three of five annotators swap c0<->c1 and c2<->c3 on every item: without gold the
        # majority wins; with gold on 20% of items, DS learns their swap and reads them right.
        rng = np.random.default_rng(3)
        swap = {"c0": "c1", "c1": "c0", "c2": "c3", "c3": "c2"}
        truth = pd.Series(
            [f"c{t}" for t in rng.integers(4, size=300)], index=[f"i{i:03d}" for i in range(300)]
        )
        rows = []
        for item, label in truth.items():
            for a in range(5):
                if a < 3:
                    rows.append((item, f"s{a}", swap[label]))
                else:
                    right = rng.random() < 0.7
                    rows.append((item, f"h{a}", label if right else rng.choice(list(swap))))
        votes = pd.DataFrame(rows, columns=["item", "annotator", "label"])
        gold = truth.iloc[:60]
        rest = truth.index[60:]
        plain = DawidSkene().fit_predict(votes)
        clamped = DawidSkene().fit_predict(votes, gold)
        assert (plain[rest] == truth[rest]).mean() < 0.2
        assert (clamped[rest] == truth[rest]).mean() > 0.95

    def test_model_prior_acts_as_an_extra_voter(self, crowd):
        votes, truth, _ = crowd
        rng = np.random.default_rng(1)
        classes = sorted(truth.unique())
        alpha = np.ones((len(truth), 4))
        alpha[np.arange(len(truth)), [classes.index(t) for t in truth]] += 2.0
        prior = pd.DataFrame([rng.dirichlet(a) for a in alpha], index=truth.index, columns=classes)
        with_prior = DawidSkene().fit_predict(votes, None, prior)
        plain = DawidSkene().fit_predict(votes)
        assert (with_prior == truth).mean() > (plain == truth).mean()
        # Weight 0 makes the model's opinion flat: the same as a uniform pre-label.
        no_weight = DawidSkene(prior_weight=0.0).fit_predict_proba(votes, None, prior)
        uniform = pd.DataFrame(0.25, index=prior.index, columns=prior.columns)
        assert np.allclose(no_weight, DawidSkene().fit_predict_proba(votes, None, uniform))

    def test_sample_city_gold_raises_accuracy(self):
        truth = sample_truth()
        classes = sorted(set(truth["label"]) - {"mixed_use"})
        scored = truth[truth["label"].isin(classes)].set_index("item")["label"]
        gains = []
        for seed in range(3):
            votes = sample_votes(seed)
            plain = DawidSkene(classes=classes).fit_predict(votes)
            gold = DawidSkene(classes=classes).fit_predict(votes, sample_gold())
            gains.append(
                (gold.reindex(scored.index) == scored).mean()
                - (plain.reindex(scored.index) == scored).mean()
            )
        assert np.mean(gains) > 0

    @pytest.mark.filterwarnings("ignore")
    def test_agrees_with_crowd_kit(self, crowd):
        ck = pytest.importorskip("crowdkit.aggregation")
        votes, truth, _ = crowd
        theirs = ck.DawidSkene(n_iter=100).fit_predict(
            votes.rename(columns={"item": "task", "annotator": "worker"})
        )
        ours = DawidSkene(smoothing=0.0, diagonal_prior=0.0).fit_predict(votes)
        assert (ours == theirs.reindex(ours.index)).mean() > 0.98
        assert (ours == truth).mean() >= (theirs.reindex(truth.index) == truth).mean() - 0.01
