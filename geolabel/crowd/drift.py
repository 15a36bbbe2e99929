r"""Annotator drift and fatigue: when an annotator's accuracy fell, and whether it keeps falling.

Each vote of an annotator on an item with a reference label (the gold answer where known, else
the consensus) is scored right (1) or wrong (0). Two questions are asked of that 0/1 sequence,
both with the same change test:

* **Drift** — did accuracy fall *for good* at some point? Votes in time order; the test finds
  the split after which accuracy is lowest relative to before, and its time is when the drift
  started.
* **Fatigue** — does accuracy fall *within a working session*? Votes are grouped into sessions
  (a new one after a gap of ``session_gap_minutes``), ordered by their position in the session
  (0 = first task of a session), pooled over sessions; a split here is the number of tasks
  after which the annotator gets tired, with the typical minutes into the session.

Change test (one change in a Bernoulli mean, scanned; permutation p-value)
    For a split after :math:`\tau` observations with :math:`k_1` right of :math:`n_1` before
    and :math:`k_2` of :math:`n_2` after, the log-likelihood ratio of "two accuracies" over
    "one accuracy" is

    .. math:: \Lambda(\tau) = n_1 h(k_1/n_1) + n_2 h(k_2/n_2) - n\,h(k/n), \qquad
              h(p) = p\log p + (1-p)\log(1-p),

    counted only when accuracy falls (:math:`k_2/n_2 < k_1/n_1`) and both sides hold at least
    ``min_segment`` votes (splits fall between different positions only, for fatigue). The
    statistic is :math:`\max_\tau \Lambda(\tau)` (a CUSUM-type scan). Its p-value comes from
    ``n_permutations`` random reorderings of the same 0/1 values, which is exact under "no
    change" (any order equally likely) whatever the accuracy: :math:`p = (1 + \#\{\Lambda^*
    \ge \Lambda\}) / (1 + B)`. A change is flagged when :math:`p <` ``alpha``. Only falls are
    flagged: an annotator who gets better is not a problem to act on.

Scoring against the consensus includes the annotator's own vote in it; that inflates accuracy
evenly over time, so it does not create drift, but gold answers are better evidence where
there are enough of them.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from geolabel.crowd.base import check_number, encode_annotations
from geolabel.errors import AggregationError, ColumnError

__all__ = ["ChangeTest", "DriftReport", "change_test", "detect_drift"]


@dataclass(frozen=True, slots=True)
class ChangeTest:
    r"""Result of :func:`change_test` on one 0/1 sequence.

    Attributes:
        n: Observations.
        statistic: :math:`\max_\tau \Lambda(\tau)` (0 when no split qualifies).
        p_value: Permutation p-value (1 when no split qualifies).
        split: Observations before the change (None when no split qualifies).
        before: Accuracy before the split.
        after: Accuracy after the split.
    """

    n: int
    statistic: float
    p_value: float
    split: int | None
    before: float | None
    after: float | None


@dataclass(frozen=True, slots=True)
class DriftReport:
    """Drift and fatigue of one annotator (see the module docstring).

    Attributes:
        annotator: The annotator.
        n_scored: Votes with a reference label (gold or consensus).
        n_gold: Of which on gold items.
        n_sessions: Working sessions found.
        accuracy: Share of scored votes that match the reference.
        drift_detected: Accuracy fell for good (p < alpha).
        drift_p_value: p-value of the drift test.
        drift_started_at: Time of the first vote after the change (ISO-8601), when detected.
        drift_start_vote: Number of scored votes before the change, when detected.
        accuracy_before_drift: Accuracy before the best split.
        accuracy_after_drift: Accuracy after it.
        fatigue_detected: Accuracy falls within sessions (p < alpha).
        fatigue_p_value: p-value of the fatigue test.
        fatigue_onset_task: Tasks into a session after which accuracy is lower, when detected.
        fatigue_onset_minutes: Median minutes into a session at that task, when detected.
        accuracy_fresh: Accuracy before the onset (best split).
        accuracy_tired: Accuracy from the onset on.
    """

    annotator: str
    n_scored: int
    n_gold: int
    n_sessions: int
    accuracy: float | None
    drift_detected: bool
    drift_p_value: float | None
    drift_started_at: str | None
    drift_start_vote: int | None
    accuracy_before_drift: float | None
    accuracy_after_drift: float | None
    fatigue_detected: bool
    fatigue_p_value: float | None
    fatigue_onset_task: int | None
    fatigue_onset_minutes: float | None
    accuracy_fresh: float | None
    accuracy_tired: float | None


def _bernoulli_ll(k: np.ndarray, n: np.ndarray) -> np.ndarray:
    r"""Return :math:`n\,h(k/n)`, the maximised Bernoulli log-likelihood (0 for n = 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(n > 0, k / np.maximum(n, 1), 0.0)
        term = np.where(p > 0, k * np.log(np.where(p > 0, p, 1.0)), 0.0)
        term += np.where(p < 1, (n - k) * np.log(np.where(p < 1, 1.0 - p, 1.0)), 0.0)
    return np.asarray(term)


def _scan(x: np.ndarray, splits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (max statistic, argmax split index) per row of ``x`` over candidate ``splits``."""
    n = x.shape[1]
    total = x.sum(axis=1, keepdims=True)
    before = np.cumsum(x, axis=1)[:, splits - 1]
    n1 = splits.astype(np.float64)[None, :]
    n2 = n - n1
    after = total - before
    stat = (
        _bernoulli_ll(before, n1)
        + _bernoulli_ll(after, n2)
        - _bernoulli_ll(total, np.full_like(total, float(n)))
    )
    falls = after / n2 < before / n1
    stat = np.where(falls, np.maximum(stat, 0.0), 0.0)
    best = stat.argmax(axis=1)
    return stat[np.arange(stat.shape[0]), best], best


def change_test(
    right: np.ndarray,
    *,
    positions: np.ndarray | None = None,
    min_segment: int = 10,
    n_permutations: int = 999,
    seed: int | None = 0,
) -> ChangeTest:
    """Test a 0/1 sequence for one fall in its mean (see the module docstring).

    Args:
        right: 1 for a right vote, 0 for a wrong one, in order.
        positions: Non-decreasing order key (e.g. task number in session); splits fall only
            between different keys. ``None`` allows a split after any observation.
        min_segment: Fewest observations on each side of a split.
        n_permutations: Random reorderings for the p-value.
        seed: Seed of the reorderings.

    Returns:
        The best split, its statistic and p-value.

    Raises:
        AggregationError: ``positions`` has another length or decreases, or a bad parameter.
    """
    check_number("change_test", "min_segment", min_segment, low=1, integer=True)
    check_number("change_test", "n_permutations", n_permutations, low=1, integer=True)
    x = np.asarray(right, dtype=np.float64)
    n = x.size
    if positions is None:
        key = np.arange(n)
    else:
        key = np.asarray(positions)
        if key.shape != x.shape or (np.diff(key) < 0).any():
            raise AggregationError(
                "change_test: positions must be a non-decreasing key, one per observation."
            )
    splits = np.flatnonzero(key[1:] != key[:-1]) + 1 if n > 1 else np.empty(0, dtype=np.int64)
    splits = splits[(splits >= min_segment) & (splits <= n - min_segment)]
    if splits.size == 0:
        return ChangeTest(n, 0.0, 1.0, None, None, None)
    observed, best = _scan(x[None, :], splits)
    statistic = float(observed[0])
    split = int(splits[best[0]])
    before = float(x[:split].mean())
    after = float(x[split:].mean())
    if statistic <= 0:
        return ChangeTest(n, 0.0, 1.0, split, before, after)
    rng = np.random.default_rng(seed)
    exceed = 0
    chunk = max(1, min(int(n_permutations), 4_000_000 // max(n, 1)))
    done = 0
    while done < n_permutations:
        size = min(chunk, int(n_permutations) - done)
        shuffled = rng.permuted(np.broadcast_to(x, (size, n)), axis=1)
        stats, _ = _scan(shuffled, splits)
        exceed += int((stats >= statistic - 1e-12).sum())
        done += size
    p_value = (1 + exceed) / (1 + int(n_permutations))
    return ChangeTest(n, statistic, p_value, split, before, after)


def _sessions(times: np.ndarray, gap_ns: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (session number, position in session) for sorted times of one annotator."""
    new = np.ones(times.size, dtype=bool)
    new[1:] = np.diff(times) > gap_ns
    session = np.cumsum(new) - 1
    starts = np.flatnonzero(new)
    position = np.arange(times.size) - starts[session]
    return session, position


def detect_drift(
    annotations: pd.DataFrame,
    reference: pd.Series | Mapping[Hashable, Hashable],
    *,
    gold: pd.Series | Mapping[Hashable, Hashable] | None = None,
    alpha: float = 0.01,
    min_segment: int = 10,
    session_gap_minutes: float = 60.0,
    n_permutations: int = 999,
    seed: int | None = 0,
) -> tuple[DriftReport, ...]:
    """Test every annotator for drift over time and for fatigue within sessions.

    Args:
        annotations: Columns ``item``, ``annotator``, ``label`` and ``created_at``.
        reference: Item -> reference label (usually the consensus ``labels_``).
        gold: Item -> known answer; overrides ``reference`` on those items.
        alpha: Flag a change when its p-value is below this.
        min_segment: Fewest scored votes on each side of a change.
        session_gap_minutes: A pause longer than this starts a new session.
        n_permutations: Reorderings per test for the p-values.
        seed: Seed of the reorderings.

    Returns:
        One report per annotator, in annotator order.

    Raises:
        ColumnError: No ``created_at`` column, or unparseable times.
        AggregationError: Empty input or bad parameters.
    """
    who = "detect_drift"
    check_number(who, "alpha", alpha, low=0, high=1, low_open=True)
    check_number(who, "session_gap_minutes", session_gap_minutes, low=0, low_open=True)
    if isinstance(annotations, pd.DataFrame) and "created_at" not in annotations.columns:
        raise ColumnError(
            "detect_drift needs a 'created_at' column (when each vote was given) to order an "
            f"annotator's votes; columns present: {', '.join(map(str, annotations.columns))}."
        )
    enc = encode_annotations(annotations, who=who, stacklevel=3)
    times = pd.to_datetime(
        annotations["created_at"].iloc[enc.rows], utc=True, errors="coerce", format="mixed"
    )
    if times.isna().any():
        bad = annotations["created_at"].iloc[enc.rows][times.isna().to_numpy()]
        raise ColumnError(
            f"detect_drift: {int(times.isna().sum())} created_at value(s) are not timestamps, "
            f"e.g. {bad.iloc[0]!r}; use ISO-8601 such as 2026-01-05T09:00:00Z."
        )
    stamp = times.to_numpy(dtype="datetime64[ns]").astype(np.int64)
    ref = pd.Series(reference, dtype=object) if not isinstance(reference, pd.Series) else reference
    ref_labels = ref.reindex(enc.items).astype(object).to_numpy()
    is_gold = np.zeros(enc.n_items, dtype=bool)
    if gold is not None:
        gold_series = pd.Series(gold, dtype=object) if not isinstance(gold, pd.Series) else gold
        gold_labels = gold_series.reindex(enc.items).astype(object).to_numpy()
        is_gold = pd.notna(gold_labels)
        ref_labels = np.where(is_gold, gold_labels, ref_labels)
    has_ref = pd.notna(ref_labels)
    vote_labels = enc.classes.to_numpy()[enc.label]
    scored = has_ref[enc.item]
    right = np.zeros(len(enc), dtype=np.float64)
    right[scored] = (vote_labels[scored] == ref_labels[enc.item[scored]]).astype(np.float64)
    gap_ns = int(session_gap_minutes * 60e9)
    reports = []
    by_annotator = np.lexsort((stamp, enc.annotator))
    bounds = np.searchsorted(enc.annotator[by_annotator], np.arange(enc.n_annotators + 1))
    for a, name in enumerate(enc.annotators):
        mine = by_annotator[bounds[a] : bounds[a + 1]]
        session, position = _sessions(stamp[mine], gap_ns)
        keep = scored[mine]
        x = right[mine][keep]
        when = stamp[mine][keep]
        drift = change_test(x, min_segment=min_segment, n_permutations=n_permutations, seed=seed)
        order = np.argsort(position[keep], kind="stable")
        pos_sorted = position[keep][order]
        fatigue = change_test(
            x[order],
            positions=pos_sorted,
            min_segment=min_segment,
            n_permutations=n_permutations,
            seed=seed,
        )
        drift_hit = drift.split is not None and drift.p_value < alpha
        fatigue_hit = fatigue.split is not None and fatigue.p_value < alpha
        onset_task = None
        onset_minutes = None
        if fatigue_hit and fatigue.split is not None:
            onset_task = int(pos_sorted[fatigue.split])
            session_start = stamp[mine][position == 0]  # sessions are numbered in time order
            minutes = (stamp[mine] - session_start[session]) / 60e9
            onset_minutes = float(np.median(minutes[position == onset_task]))
        started_at = None
        if drift_hit and drift.split is not None:
            started_at = pd.Timestamp(int(when[drift.split]), tz="UTC").isoformat()
        reports.append(
            DriftReport(
                annotator=str(name),
                n_scored=int(x.size),
                n_gold=int(is_gold[enc.item[mine][keep]].sum()),
                n_sessions=int(session.max() + 1) if session.size else 0,
                accuracy=float(x.mean()) if x.size else None,
                drift_detected=bool(drift_hit),
                drift_p_value=float(drift.p_value) if drift.split is not None else None,
                drift_started_at=started_at,
                drift_start_vote=drift.split if drift_hit else None,
                accuracy_before_drift=drift.before,
                accuracy_after_drift=drift.after,
                fatigue_detected=bool(fatigue_hit),
                fatigue_p_value=float(fatigue.p_value) if fatigue.split is not None else None,
                fatigue_onset_task=onset_task,
                fatigue_onset_minutes=onset_minutes,
                accuracy_fresh=fatigue.before,
                accuracy_tired=fatigue.after,
            )
        )
    return tuple(reports)
