"""Drift and fatigue detection (geolabel/crowd/drift.py), validated on the simulated crowd."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from geolabel.crowd import detect_drift
from geolabel.crowd.drift import change_test
from geolabel.crowd.simulate import CrowdSimulator
from geolabel.errors import AggregationError, ColumnError
from tests.crowd_helpers import sample_profiles, sample_truth


class TestChangeTest:
    def test_finds_a_step_and_where(self):
        rng = np.random.default_rng(0)
        x = np.r_[rng.random(150) < 0.85, rng.random(100) < 0.55].astype(float)
        result = change_test(x, n_permutations=199)
        assert result.p_value <= 0.01 and abs(result.split - 150) <= 15
        assert result.before > result.after

    def test_calibrated_without_change(self):
        rng = np.random.default_rng(1)
        p_values = [
            change_test((rng.random(200) < 0.7).astype(float), n_permutations=99, seed=s).p_value
            for s in range(60)
        ]
        assert np.mean(np.array(p_values) < 0.05) <= 0.12

    def test_rises_are_not_flagged(self):
        x = np.r_[np.zeros(50), np.ones(50)]
        assert change_test(x, n_permutations=99).p_value == 1.0

    def test_positions_restrict_splits(self):
        x = np.r_[np.ones(30), np.zeros(30)]
        positions = np.repeat(np.arange(6), 10)
        result = change_test(x, positions=positions, n_permutations=99)
        assert result.split == 30
        with pytest.raises(AggregationError, match=r"non-decreasing"):
            change_test(x, positions=positions[::-1])

    def test_short_sequence(self):
        assert change_test(np.ones(5)).split is None


def crowd_with(profiles, n_items=900, seed=0, start=None):
    """Votes of ``profiles`` on resampled sample-city parcels (each annotator ~n_items*5/len)."""
    truth = sample_truth()
    rng = np.random.default_rng(seed)
    big = truth.iloc[rng.integers(len(truth), size=n_items)].reset_index(drop=True)
    big["item"] = [f"X{i:05d}" for i in range(n_items)]
    classes = list(sample_profiles()[0].classes)
    sim = CrowdSimulator(big, profiles, classes, seed=seed, **({"start": start} if start else {}))
    return sim, big.set_index("item")["label"]


class TestValidationOnTheSimulatedCrowd:
    """The simulator's profiles are the truth: who is tired, who is not, when drift began."""

    def test_fatigue_flags_the_tired_and_spares_the_rested(self):
        base = [p for p in sample_profiles() if p.kind == "crowd"][:10]
        tired = [
            replace(p, annotator_id=f"{p.annotator_id}-tired", fatigue=0.02, fatigue_floor=0.3,
                    session_length=60)
            for p in base[:5]
        ]  # fmt: skip
        rested = [
            replace(p, annotator_id=f"{p.annotator_id}-rested", fatigue=0.0) for p in base[5:]
        ]
        sim, truth = crowd_with(tired + rested)
        votes = sim.assign_and_label(truth.index, k=5)
        reports = {r.annotator: r for r in detect_drift(votes, truth, n_permutations=199)}
        assert all(reports[p.annotator_id].fatigue_detected for p in tired)
        assert sum(reports[p.annotator_id].fatigue_detected for p in rested) <= 1
        for p in tired:
            r = reports[p.annotator_id]
            assert r.accuracy_fresh > r.accuracy_tired and 0 < r.fatigue_onset_task < 60
            assert r.fatigue_onset_minutes > 0 and r.n_sessions >= 5
        assert not any(r.drift_detected for r in reports.values())

    def test_drift_is_flagged_with_its_start(self):
        worker = replace(
            next(p for p in sample_profiles() if p.kind == "crowd"), fatigue=0.0, session_length=50
        )
        worse = replace(worker, confusion=tuple(
            tuple(0.4 * v + 0.6 / len(row) for v in row) for row in worker.confusion
        ))  # fmt: skip
        others = [replace(p, fatigue=0.0) for p in sample_profiles()[1:6]]
        before_sim, truth = crowd_with([worker, *others], n_items=600, seed=1)
        after_sim, _ = crowd_with(
            [worse, *others], n_items=600, seed=1, start="2026-02-02T09:00:00Z"
        )
        items = truth.index.to_numpy()
        first = before_sim.assign_and_label(items[:300], k=3)
        second = after_sim.assign_and_label(items[300:], k=3)
        votes = pd.concat([first, second], ignore_index=True)
        reports = {r.annotator: r for r in detect_drift(votes, truth, n_permutations=199)}
        mine = reports[worker.annotator_id]
        n_before = int((first["annotator"] == worker.annotator_id).sum())
        assert mine.drift_detected and abs(mine.drift_start_vote - n_before) <= 25
        times = pd.to_datetime(
            votes.loc[votes["annotator"] == worker.annotator_id, "created_at"], utc=True
        ).sort_values()
        started = pd.Timestamp(mine.drift_started_at)
        assert times.iloc[n_before - 25] <= started <= times.iloc[n_before + 25]
        assert mine.accuracy_before_drift > mine.accuracy_after_drift + 0.2
        assert sum(reports[p.annotator_id].drift_detected for p in others) <= 1

    def test_gold_overrides_the_reference(self):
        sim, truth = crowd_with([replace(p, fatigue=0.0) for p in sample_profiles()[:4]],
                                n_items=100)  # fmt: skip
        votes = sim.assign_and_label(truth.index, k=2)
        wrong = pd.Series("water", index=truth.index)
        with_gold = detect_drift(votes, wrong, gold=truth, n_permutations=9)
        assert all(r.n_gold == r.n_scored for r in with_gold)
        assert np.mean([r.accuracy for r in with_gold]) > np.mean(
            [r.accuracy for r in detect_drift(votes, wrong, n_permutations=9)]
        )

    def test_needs_created_at(self):
        votes = pd.DataFrame({"item": ["a", "a"], "annotator": ["w1", "w2"], "label": ["x", "y"]})
        with pytest.raises(ColumnError, match=r"needs a 'created_at'"):
            detect_drift(votes, {"a": "x"})
