r"""Annotator reliability reports: gold accuracy, confusion, agreement, spammer score, drift.

:func:`reliability_report` fits Dawid-Skene (gold clamped) on the annotations and returns one
typed record per annotator, plus agreement and drift:

* **volume**: votes, items, median seconds per vote;
* **gold accuracy** with a Wilson score interval (:func:`wilson_interval`): for :math:`k`
  right of :math:`n` at :math:`z = \Phi^{-1}(1 - (1 - \text{confidence})/2)`,

  .. math:: \frac{\hat p + \frac{z^2}{2n} \pm z\sqrt{\frac{\hat p(1 - \hat p)}{n} +
            \frac{z^2}{4n^2}}}{1 + \frac{z^2}{n}},

  which, unlike :math:`\hat p \pm z\sqrt{\hat p(1-\hat p)/n}`, stays inside [0, 1] and is
  honest for the handful of gold answers an annotator gives;
* **Dawid-Skene confusion matrix** (rows true class, columns answered) and the accuracy it
  implies, :math:`\sum_c \pi_c \theta_{cc}`;
* **agreement with the consensus**: share of their votes equal to the consensus label;
* **spammer score** (:func:`spammer_score`): how alike the rows of the confusion matrix are.
  An annotator whose answer does not depend on the truth (uniform guessing, or always the
  same class) has identical rows. With total-variation distance
  :math:`\mathrm{TV}(\theta_c, \theta_{c'}) = \frac12\sum_k |\theta_{ck} - \theta_{c'k}|`,

  .. math:: s = 1 - \frac{\sum_{c < c'} \pi_c \pi_{c'} \mathrm{TV}(\theta_c, \theta_{c'})}
                         {\sum_{c < c'} \pi_c \pi_{c'}},

  1 for a spammer, 0 for a perfect annotator; rows are weighted by the class prior so that
  classes an annotator barely saw (whose rows are mostly smoothing) weigh little. A random
  annotator of accuracy :math:`a` over :math:`K` classes scores
  :math:`1 - (a - \frac{1 - a}{K - 1})`;
* **drift and fatigue** (:mod:`geolabel.crowd.drift`), scored on gold where known and on the
  consensus elsewhere.
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import pandas as pd

from geolabel.crowd.agreement import AgreementReport, agreement_report
from geolabel.crowd.base import GoldInput, check_number, encode_annotations, encode_gold
from geolabel.crowd.dawid_skene import DawidSkene
from geolabel.crowd.drift import DriftReport, detect_drift
from geolabel.errors import AggregationWarning

__all__ = [
    "AnnotatorReport",
    "ReliabilityReport",
    "reliability_report",
    "spammer_score",
    "wilson_interval",
]


@dataclass(frozen=True, slots=True)
class AnnotatorReport:
    """Reliability of one annotator.

    Attributes:
        annotator: The annotator.
        n_votes: Votes given (after duplicates were dropped).
        n_items: Distinct items voted on.
        median_seconds: Median time per vote, when ``seconds`` is known.
        gold_answered: Gold items answered.
        gold_right: Of which right.
        gold_accuracy: ``gold_right / gold_answered`` (None without gold answers).
        gold_ci_low: Lower end of its Wilson interval.
        gold_ci_high: Upper end.
        consensus_agreement: Share of their votes equal to the consensus label.
        ds_accuracy: Accuracy implied by the Dawid-Skene confusion matrix and class prior.
        spammer_score: 1 when answers ignore the truth, 0 for a perfect annotator.
        suspected_spammer: ``spammer_score >= spammer_threshold``.
        confusion: Dawid-Skene confusion matrix, rows true class, columns answered (in the
            report's ``classes`` order).
    """

    annotator: str
    n_votes: int
    n_items: int
    median_seconds: float | None
    gold_answered: int
    gold_right: int
    gold_accuracy: float | None
    gold_ci_low: float | None
    gold_ci_high: float | None
    consensus_agreement: float
    ds_accuracy: float
    spammer_score: float
    suspected_spammer: bool
    confusion: tuple[tuple[float, ...], ...]


@dataclass(frozen=True, slots=True)
class ReliabilityReport:
    """Annotator reliability, agreement and drift for one set of annotations.

    Attributes:
        method: How the consensus and confusion matrices were fitted.
        classes: Class order of the confusion matrices.
        n_votes: Votes used.
        n_items: Items voted on.
        n_annotators: Annotators.
        n_gold_items: Gold items that were voted on.
        confidence: Confidence level of the Wilson intervals.
        spammer_threshold: Spammer score from which an annotator is flagged.
        agreement: Agreement overall, per class, per group and per annotator.
        annotators: One report per annotator.
        drift: Drift and fatigue per annotator (empty without ``created_at``).
    """

    method: str
    classes: tuple[str, ...]
    n_votes: int
    n_items: int
    n_annotators: int
    n_gold_items: int
    confidence: float
    spammer_threshold: float
    agreement: AgreementReport
    annotators: tuple[AnnotatorReport, ...]
    drift: tuple[DriftReport, ...]


def wilson_interval(right: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Return the Wilson score interval of a proportion (formula in the module docstring).

    Args:
        right: Successes.
        n: Trials (0 gives the uninformative ``(0, 1)``).
        confidence: Coverage, in (0, 1).

    Returns:
        ``(low, high)``.
    """
    if n <= 0:
        return 0.0, 1.0
    z = NormalDist().inv_cdf(1.0 - (1.0 - confidence) / 2.0)
    p = right / n
    denominator = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, float(centre - half)), min(1.0, float(centre + half))


def spammer_score(confusion: np.ndarray, prior: np.ndarray) -> float:
    """Return the spammer score of one confusion matrix (formula in the module docstring).

    Args:
        confusion: ``(K, K)`` rows true class, columns answered; rows sum to 1.
        prior: ``(K,)`` class prior.

    Returns:
        A score in [0, 1]; 1 means the answers do not depend on the truth.
    """
    k = confusion.shape[0]
    rows_a, rows_b = np.triu_indices(k, 1)
    tv = 0.5 * np.abs(confusion[rows_a] - confusion[rows_b]).sum(axis=1)
    weight = prior[rows_a] * prior[rows_b]
    return float(1.0 - (weight * tv).sum() / weight.sum()) if weight.sum() > 0 else 1.0


def reliability_report(
    annotations: pd.DataFrame,
    *,
    gold: GoldInput = None,
    classes: Sequence[Hashable] | None = None,
    groups: Mapping[Hashable, Hashable] | pd.Series | None = None,
    model: DawidSkene | None = None,
    confidence: float = 0.95,
    spammer_threshold: float = 0.8,
    min_overlap: int = 5,
    drift_alpha: float = 0.01,
    session_gap_minutes: float = 60.0,
    n_permutations: int = 999,
    seed: int | None = 0,
) -> ReliabilityReport:
    """Build the reliability, agreement and drift report of every annotator.

    Args:
        annotations: Columns ``item``, ``annotator``, ``label``; optional ``created_at``
            (needed for drift) and ``seconds``.
        gold: Known answers (``item -> label``): scored, and clamped in the consensus.
        classes: The taxonomy's classes; ``None`` uses the labels seen.
        groups: Item -> group (district) for the per-group agreement.
        model: A Dawid-Skene estimator to fit (its parameters are used); ``None`` uses
            ``DawidSkene(classes=classes)``.
        confidence: Coverage of the Wilson intervals.
        spammer_threshold: Spammer score from which an annotator is flagged.
        min_overlap: Fewest shared items for a pair's Cohen's kappa.
        drift_alpha: p-value below which drift or fatigue is flagged.
        session_gap_minutes: A pause longer than this starts a new session.
        n_permutations: Reorderings per drift test.
        seed: Seed of the drift tests.

    Returns:
        The report.

    Raises:
        ColumnError: Missing/misnamed columns, blank cells, bad gold.
        LabelError: Labels outside ``classes``.
        AggregationError: Empty input, a single annotator, or a bad parameter.
    """
    who = "reliability_report"
    check_number(who, "confidence", confidence, low=0, high=1, low_open=True)
    check_number(who, "spammer_threshold", spammer_threshold, low=0, high=1)
    ds = model if model is not None else DawidSkene(classes=classes)
    ds.fit(annotations, gold)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AggregationWarning)  # fit has warned already
        return _report(
            annotations,
            ds,
            gold,
            groups,
            confidence,
            spammer_threshold,
            min_overlap,
            drift_alpha,
            session_gap_minutes,
            n_permutations,
            seed,
        )


def _report(
    annotations: pd.DataFrame,
    ds: DawidSkene,
    gold: GoldInput,
    groups: Mapping[Hashable, Hashable] | pd.Series | None,
    confidence: float,
    spammer_threshold: float,
    min_overlap: int,
    drift_alpha: float,
    session_gap_minutes: float,
    n_permutations: int,
    seed: int | None,
) -> ReliabilityReport:
    """Assemble the report from a fitted Dawid-Skene model (see :func:`reliability_report`)."""
    known = set(ds.classes_.tolist())
    if ds.on_unknown == "map" and ds.label_map is not None:
        mapping = ds.label_map
        annotations = annotations.assign(
            label=annotations["label"].map(lambda v: v if v in known else mapping.get(v, v))
        )
    enc = encode_annotations(annotations, classes=ds.classes_.tolist(), min_annotators=2)
    gold_codes = encode_gold(gold, enc)
    truth = np.full(enc.n_items, -1, dtype=np.int64)
    if gold_codes is not None:
        truth[gold_codes.item] = gold_codes.label
    consensus = enc.classes.get_indexer(pd.Index(ds.labels_.reindex(enc.items).to_numpy()))
    vote_truth = truth[enc.item]
    on_gold = vote_truth >= 0
    a_k = enc.n_annotators
    n_votes = np.bincount(enc.annotator, minlength=a_k)
    gold_answered = np.bincount(enc.annotator[on_gold], minlength=a_k)
    gold_right = np.bincount(
        enc.annotator[on_gold],
        weights=(enc.label[on_gold] == vote_truth[on_gold]).astype(np.float64),
        minlength=a_k,
    ).astype(np.int64)
    agree = np.bincount(
        enc.annotator, weights=(enc.label == consensus[enc.item]).astype(np.float64), minlength=a_k
    )
    seconds = None
    if "seconds" in annotations.columns:
        seconds = pd.to_numeric(annotations["seconds"].iloc[enc.rows], errors="coerce").to_numpy()
    priors = ds.priors_.to_numpy()
    model_index = ds.annotators_.get_indexer(enc.annotators)
    reports = []
    for a, name in enumerate(enc.annotators):
        mine = enc.annotator == a
        confusion = ds.confusions_[model_index[a]]
        score = spammer_score(confusion, priors)
        low, high = wilson_interval(int(gold_right[a]), int(gold_answered[a]), confidence)
        has_gold = gold_answered[a] > 0
        median = None
        if seconds is not None:
            mine_seconds = seconds[mine]
            mine_seconds = mine_seconds[np.isfinite(mine_seconds)]
            median = float(np.median(mine_seconds)) if mine_seconds.size else None
        reports.append(
            AnnotatorReport(
                annotator=str(name),
                n_votes=int(n_votes[a]),
                n_items=int(np.unique(enc.item[mine]).size),
                median_seconds=median,
                gold_answered=int(gold_answered[a]),
                gold_right=int(gold_right[a]),
                gold_accuracy=float(gold_right[a] / gold_answered[a]) if has_gold else None,
                gold_ci_low=low if has_gold else None,
                gold_ci_high=high if has_gold else None,
                consensus_agreement=float(agree[a] / n_votes[a]),
                ds_accuracy=float(np.dot(priors, np.diagonal(confusion))),
                spammer_score=score,
                suspected_spammer=bool(score >= spammer_threshold),
                confusion=tuple(tuple(float(v) for v in row) for row in confusion),
            )
        )
    drift: tuple[DriftReport, ...] = ()
    if "created_at" in annotations.columns:
        gold_map = None
        if gold_codes is not None:
            gold_map = pd.Series(
                enc.classes.to_numpy()[gold_codes.label], index=enc.items[gold_codes.item]
            )
        drift = detect_drift(
            annotations,
            ds.labels_,
            gold=gold_map,
            alpha=drift_alpha,
            session_gap_minutes=session_gap_minutes,
            n_permutations=n_permutations,
            seed=seed,
        )
    return ReliabilityReport(
        method="dawid_skene",
        classes=tuple(str(c) for c in enc.classes),
        n_votes=len(enc),
        n_items=enc.n_items,
        n_annotators=a_k,
        n_gold_items=0 if gold_codes is None else int(gold_codes.item.size),
        confidence=float(confidence),
        spammer_threshold=float(spammer_threshold),
        agreement=agreement_report(
            annotations, groups=groups, classes=ds.classes_.tolist(), min_overlap=min_overlap
        ),
        annotators=tuple(reports),
        drift=drift,
    )
