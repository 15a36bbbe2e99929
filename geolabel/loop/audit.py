r"""Sample-based audits: plan sample sizes per stratum, draw, record, report, feed back.

Instead of re-checking every label, an auditor (an expert) re-labels a random sample from each
**stratum** of the round's decisions, and the share of wrong labels in the sample estimates the
stratum's error rate. The standard strata (:func:`audit_strata`) are, in priority order (an
item belongs to the first that applies, so strata are disjoint and can be sampled
independently): ``new_annotators`` (a vote among an annotator's first votes),
``new_districts`` (a district or data source not seen before), ``uncertain`` (consensus
confidence below a threshold) and ``auto_accepted`` (pre-labels accepted in the easy tier).

Sample size (:func:`plan_audit`). To estimate a proportion :math:`p` within a margin :math:`m`
at confidence :math:`1 - \alpha` (normal approximation, :math:`z = \Phi^{-1}(1 - \alpha/2)`)
from an infinite population, Cochran's

.. math:: n_0 = \frac{z^2\, p (1 - p)}{m^2}

items are needed (:math:`p = 0.1`, :math:`m = 0.05`, 95 %: :math:`n_0 = 138.3`, so 139). A
stratum of :math:`N` items needs fewer (finite-population correction)

.. math:: n = \frac{n_0}{1 + (n_0 - 1)/N},

rounded up, raised to ``min_per_stratum`` and capped at :math:`N` (Cochran, *Sampling
Techniques*, 3rd ed., 1977, eqs. 4.1-4.2). :math:`p` is the error rate one expects (0.5 is
the safe worst case). With a ``budget`` smaller than the total, every stratum first gets its
minimum, and the rest is shared in proportion to what each still needs (largest remainders);
the plan records the margin each size actually achieves,
:math:`z\sqrt{p(1-p)/n \cdot (N-n)/(N-1)}`.

Report (:func:`audit_report`). Per stratum: audited items :math:`n`, errors :math:`k`, the rate
:math:`k/n` and its Wilson score interval (:func:`geolabel.crowd.reliability.wilson_interval`),
which stays inside [0, 1] and is honest for the small samples audits have.

Feedback (:func:`audit_feedback`).

* Routing thresholds: each audited stratum steers one threshold of the loop configuration
  (:data:`THRESHOLD_FOR`: ``auto_accepted`` → ``easy_confidence``, ``uncertain`` →
  ``target_posterior``). If the stratum's upper bound exceeds the ``tolerance``, the errors
  may be too many: the threshold rises by ``step`` (fewer items are accepted that easily). If
  the upper bound is below ``comfort × tolerance`` with at least ``min_audited`` items, the
  threshold falls by ``step / 2`` (raise fast, lower slowly). Results stay within ``bounds``.
* Annotator trust: audited items act as gold. Annotator :math:`a` voted on :math:`n_a` audited
  items and agreed with the auditor on :math:`r_a`; with the pooled agreement
  :math:`\bar p` as a Beta prior of strength :math:`s`,
  :math:`\hat p_a = (r_a + s\bar p)/(n_a + s)`, and the trust multiplier is the ratio of
  one-coin log-odds weights (those of :class:`geolabel.crowd.wmv.WeightedMajorityVote`)
  :math:`w(\hat p_a)/w(\bar p)`, :math:`w(p) = \max(0, \log\frac{(K-1)p}{1-p})`, clipped to
  [0, 3]. The counts are returned too, to add to gold evidence.

Example:
    >>> plan = plan_audit({"auto_accepted": 400, "uncertain": 60}, margin=0.05)
    >>> dict(plan.sizes)
    {'auto_accepted': 103, 'uncertain': 43}
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from statistics import NormalDist
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pandas as pd

from geolabel.crowd.reliability import wilson_interval
from geolabel.errors import AuditError, ColumnError

if TYPE_CHECKING:
    from geolabel.store import Project

__all__ = [
    "REPORT_COLUMNS",
    "RESULT_COLUMNS",
    "STRATA",
    "THRESHOLD_FOR",
    "AuditFeedback",
    "AuditPlan",
    "ThresholdChange",
    "audit_feedback",
    "audit_report",
    "audit_strata",
    "draw_audit_sample",
    "plan_audit",
    "record_audit",
]

STRATA: Final[tuple[str, ...]] = ("new_annotators", "new_districts", "uncertain", "auto_accepted")
"""The standard strata, in the priority order :func:`audit_strata` assigns them."""

OTHER: Final = "other"
"""Stratum of items in none of :data:`STRATA` (returned only on request)."""

RESULT_COLUMNS: Final[tuple[str, ...]] = ("item", "stratum", "audited_label", "auditor", "correct")
"""Columns :func:`record_audit` needs (``label``, the label that was checked, is optional)."""

REPORT_COLUMNS: Final[tuple[str, ...]] = ("stratum", "n", "errors", "error_rate", "low", "high")
"""Columns of :func:`audit_report`."""

THRESHOLD_FOR: Final[Mapping[str, str]] = MappingProxyType(
    {"auto_accepted": "easy_confidence", "uncertain": "target_posterior"}
)
"""Which routing threshold each stratum's audit steers (names of ``geolabel.loop.config``)."""

_TRUST_PRIOR: Final = 4.0
_TRUST_MAX: Final = 3.0


def _z(confidence: float) -> float:
    return NormalDist().inv_cdf(1.0 - (1.0 - confidence) / 2.0)


def _check_unit(name: str, value: object, *, low_open: bool, high_open: bool) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise AuditError(f"{name} must be a number, got {value!r}.") from None
    low_ok = number > 0 if low_open else number >= 0
    high_ok = number < 1 if high_open else number <= 1
    if not (low_ok and high_ok and math.isfinite(number)):
        interval = f"{'(' if low_open else '['}0, 1{')' if high_open else ']'}"
        raise AuditError(f"{name} must be in {interval}, got {value!r}.")
    return number


def _count(name: str, value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise AuditError(
            f"{what} of stratum {name!r} must be a non-negative integer, got {value!r}."
        )
    return int(value)


# ------------------------------------------------------------------------------ plan


@dataclass(frozen=True)
class AuditPlan:
    """How many items to audit in each stratum (see the module docstring for the formulas).

    Attributes:
        strata: Stratum names, in the order given.
        population: Items per stratum.
        sizes: Items to audit per stratum (after the budget, if any).
        required: Items each stratum needs for ``margin`` (before the budget).
        expected_error: The error rate assumed per stratum.
        achieved_margin: The margin ``sizes`` achieve (``inf`` for an unaudited, non-empty
            stratum; 0 for a stratum audited whole).
        margin: The margin asked for.
        confidence: Confidence level of the margin.
        budget: Most items to audit in total, or None.
    """

    strata: tuple[str, ...]
    population: Mapping[str, int]
    sizes: Mapping[str, int]
    required: Mapping[str, int]
    expected_error: Mapping[str, float]
    achieved_margin: Mapping[str, float]
    margin: float
    confidence: float
    budget: int | None = None

    @property
    def total(self) -> int:
        """Items to audit over all strata."""
        return sum(self.sizes.values())

    def to_frame(self) -> pd.DataFrame:
        """One row per stratum: population, expected_error, required, size, margin."""
        return pd.DataFrame(
            {
                "stratum": list(self.strata),
                "population": [self.population[s] for s in self.strata],
                "expected_error": [self.expected_error[s] for s in self.strata],
                "required": [self.required[s] for s in self.strata],
                "size": [self.sizes[s] for s in self.strata],
                "margin": [self.achieved_margin[s] for s in self.strata],
            }
        )


def _required_size(population: int, p: float, margin: float, z: float, minimum: int) -> int:
    if population == 0:
        return 0
    n0 = z * z * p * (1.0 - p) / (margin * margin)
    n = n0 / (1.0 + (n0 - 1.0) / population) if n0 > 0 else 0.0
    size = math.ceil(n - 1e-9)  # 82.0000000001 from floating point is 82
    return min(population, max(size, minimum))


def _achieved(population: int, size: int, p: float, z: float) -> float:
    if population == 0 or size >= population:
        return 0.0
    if size == 0:
        return math.inf
    fpc = (population - size) / (population - 1) if population > 1 else 0.0
    return z * math.sqrt(p * (1.0 - p) / size * fpc)


def plan_audit(
    strata: Mapping[str, int],
    *,
    margin: float = 0.05,
    confidence: float = 0.95,
    expected_error: Mapping[str, float] | float = 0.1,
    min_per_stratum: int = 10,
    budget: int | None = None,
) -> AuditPlan:
    """Plan audit sample sizes per stratum.

    Args:
        strata: Stratum name → number of items in it (its population).
        margin: Half-width of the interval wanted for each stratum's error rate, in (0, 1).
        confidence: Confidence level, in (0, 1).
        expected_error: Error rate expected per stratum (a mapping covering every stratum, or
            one value for all); 0.5 is the worst case.
        min_per_stratum: Fewest items audited in a non-empty stratum (capped at its size).
        budget: Most items to audit in total; None for no limit.

    Returns:
        The plan.

    Raises:
        AuditError: No strata, a negative or non-integer size, ``margin`` or ``confidence``
            outside (0, 1), an expected error outside [0, 1] or for an unknown stratum, or a
            budget below the per-stratum minimums.
    """
    if not strata:
        raise AuditError("plan_audit needs at least one stratum (name → number of items).")
    population = {str(name): _count(str(name), size, "The size") for name, size in strata.items()}
    margin = _check_unit("margin", margin, low_open=True, high_open=True)
    confidence = _check_unit("confidence", confidence, low_open=True, high_open=True)
    if (
        isinstance(min_per_stratum, bool)
        or not isinstance(min_per_stratum, int)
        or min_per_stratum < 0
    ):
        raise AuditError(
            f"min_per_stratum must be a non-negative integer, got {min_per_stratum!r}."
        )
    if isinstance(expected_error, Mapping):
        unknown = sorted(set(map(str, expected_error)) - set(population))
        if unknown:
            raise AuditError(
                f"expected_error names unknown strata {', '.join(unknown)}; strata are "
                f"{', '.join(population)}."
            )
        missing = [s for s in population if s not in expected_error]
        if missing:
            raise AuditError(
                f"expected_error has no value for strata {', '.join(missing)}; give every "
                "stratum one, or a single number for all."
            )
        errors = {
            s: _check_unit(
                f"expected_error[{s!r}]", expected_error[s], low_open=False, high_open=False
            )
            for s in population
        }
    else:
        value = _check_unit("expected_error", expected_error, low_open=False, high_open=False)
        errors = dict.fromkeys(population, value)
    z = _z(confidence)
    required = {
        s: _required_size(n, errors[s], margin, z, min_per_stratum) for s, n in population.items()
    }
    sizes = dict(required)
    if budget is not None:
        if isinstance(budget, bool) or not isinstance(budget, int) or budget < 0:
            raise AuditError(f"budget must be a non-negative integer or None, got {budget!r}.")
        if sum(required.values()) > budget:
            sizes = _allocate(population, required, min_per_stratum, budget)
    achieved = {s: _achieved(population[s], sizes[s], errors[s], z) for s in population}
    return AuditPlan(
        strata=tuple(population),
        population=MappingProxyType(population),
        sizes=MappingProxyType(sizes),
        required=MappingProxyType(required),
        expected_error=MappingProxyType(errors),
        achieved_margin=MappingProxyType(achieved),
        margin=margin,
        confidence=confidence,
        budget=budget,
    )


def _allocate(
    population: Mapping[str, int], required: Mapping[str, int], minimum: int, budget: int
) -> dict[str, int]:
    """Minimum per stratum first, the rest in proportion to what each still needs."""
    base = {s: min(minimum, population[s], required[s]) for s in population}
    floor_total = sum(base.values())
    if floor_total > budget:
        raise AuditError(
            f"budget {budget} is below the {floor_total} items that min_per_stratum="
            f"{minimum} needs over {sum(1 for v in base.values() if v)} non-empty strata; "
            "raise the budget or lower min_per_stratum."
        )
    need = {s: required[s] - base[s] for s in population}
    left = budget - floor_total
    total_need = sum(need.values())
    shares = {s: left * need[s] / total_need for s in population} if total_need else {}
    extra = {s: math.floor(shares.get(s, 0.0)) for s in population}
    leftover = left - sum(extra.values())
    order = sorted(
        population, key=lambda s: (-(shares.get(s, 0.0) - extra[s]), list(population).index(s))
    )
    for s in order[:leftover]:
        extra[s] += 1
    return {s: base[s] + min(extra[s], need[s]) for s in population}


# ------------------------------------------------------------------------------ strata


def _annotator_list(value: object) -> list[str]:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    if isinstance(value, str):
        return [a for a in value.replace(";", ",").replace(" ", ",").split(",") if a]
    if isinstance(value, Collection):
        return [str(a) for a in value]
    return [str(value)]


def audit_strata(
    decisions: pd.DataFrame,
    *,
    votes: pd.DataFrame | None = None,
    first_votes: int = 20,
    new_annotators: Collection[str] | None = None,
    known_districts: Collection[str] | None = None,
    uncertain_below: float = 0.7,
    auto_tiers: Collection[str] = ("easy",),
    include_other: bool = False,
) -> pd.DataFrame:
    """Put each decided item in one audit stratum (:data:`STRATA`, first that applies).

    * ``new_annotators``: with ``votes``, one of the item's votes is among its annotator's
      first ``first_votes`` votes (by ``created_at`` when present, else row order; pass all of
      the project's votes so "first" means first ever); otherwise, an annotator in the item's
      ``annotators`` is in ``new_annotators``.
    * ``new_districts``: with ``known_districts``, the item's ``district`` is not in it.
    * ``uncertain``: ``confidence`` below ``uncertain_below``.
    * ``auto_accepted``: ``tier`` in ``auto_tiers`` (a verified or accepted pre-label).

    Args:
        decisions: One row per decided item: ``item``, ``tier``, ``confidence``, and
            ``annotators`` (list, or a comma-separated string) and ``district`` when those
            strata are used.
        votes: ``item``, ``annotator`` (optional ``created_at``): every vote of the project.
        first_votes: How many first votes make an annotator new.
        new_annotators: Annotator ids to treat as new (when ``votes`` is not given).
        known_districts: Districts (or data sources) audited before; None skips the stratum.
        uncertain_below: Confidence under which a decision is uncertain, in [0, 1].
        auto_tiers: Tiers whose decisions are accepted pre-labels.
        include_other: Also return items in no stratum, as ``"other"``.

    Returns:
        Columns ``item``, ``stratum``; one row per item, in ``decisions`` order.

    Raises:
        ColumnError: A needed column is missing.
        AuditError: Items repeat, or ``first_votes``/``uncertain_below`` is out of range.
    """
    needed = ["item", "tier", "confidence"]
    if known_districts is not None:
        needed.append("district")
    if votes is None and new_annotators is not None:
        needed.append("annotators")
    missing = [c for c in needed if c not in decisions.columns]
    if missing:
        raise ColumnError(
            f"decisions lack column(s) {', '.join(missing)}; columns present: "
            f"{', '.join(map(str, decisions.columns))}."
        )
    items = decisions["item"].astype(str)
    if items.duplicated().any():
        dup = sorted(set(items[items.duplicated()]))[:5]
        raise AuditError(f"decisions list items more than once: {', '.join(dup)}.")
    if isinstance(first_votes, bool) or not isinstance(first_votes, int) or first_votes < 0:
        raise AuditError(f"first_votes must be a non-negative integer, got {first_votes!r}.")
    threshold = _check_unit("uncertain_below", uncertain_below, low_open=False, high_open=False)
    flags: dict[str, np.ndarray] = {}
    newcomer_items: set[str] = set()
    if votes is not None:
        vmissing = [c for c in ("item", "annotator") if c not in votes.columns]
        if vmissing:
            raise ColumnError(
                f"votes lack column(s) {', '.join(vmissing)}; columns present: "
                f"{', '.join(map(str, votes.columns))}."
            )
        ordered = votes.reset_index(drop=True)
        if "created_at" in ordered.columns:
            ordered = ordered.assign(
                _t=pd.to_datetime(ordered["created_at"], utc=True, errors="coerce")
            )
            ordered = ordered.sort_values("_t", kind="stable")
        rank = ordered.groupby(ordered["annotator"].astype(str)).cumcount()
        newcomer_items = set(ordered.loc[rank < first_votes, "item"].astype(str))
    elif new_annotators is not None:
        fresh = {str(a) for a in new_annotators}
        newcomer_items = {
            i for i, a in zip(items, decisions["annotators"], strict=True)
            if fresh.intersection(_annotator_list(a))
        }  # fmt: skip
    flags["new_annotators"] = items.isin(newcomer_items).to_numpy()
    if known_districts is not None:
        known = {str(d) for d in known_districts}
        district = decisions["district"]
        flags["new_districts"] = (district.notna() & ~district.astype(str).isin(known)).to_numpy()
    else:
        flags["new_districts"] = np.zeros(len(items), dtype=bool)
    confidence = pd.to_numeric(decisions["confidence"], errors="coerce").to_numpy(np.float64)
    flags["uncertain"] = np.nan_to_num(confidence, nan=0.0) < threshold
    flags["auto_accepted"] = decisions["tier"].astype(str).isin(set(auto_tiers)).to_numpy()
    stratum = np.full(len(items), OTHER, dtype=object)
    assigned = np.zeros(len(items), dtype=bool)
    for name in STRATA:
        take = flags[name] & ~assigned
        stratum[take] = name
        assigned |= take
    frame = pd.DataFrame({"item": items.to_numpy(), "stratum": stratum})
    if not include_other:
        frame = frame[assigned].reset_index(drop=True)
    return frame


def _members(members: pd.DataFrame | Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    if isinstance(members, pd.DataFrame):
        missing = [c for c in ("item", "stratum") if c not in members.columns]
        if missing:
            raise ColumnError(
                f"members lack column(s) {', '.join(missing)}; pass the output of audit_strata."
            )
        out: dict[str, list[str]] = {}
        for item, stratum in zip(
            members["item"].astype(str), members["stratum"].astype(str), strict=True
        ):
            out.setdefault(stratum, []).append(item)
        return out
    return {str(s): [str(i) for i in items] for s, items in members.items()}


def draw_audit_sample(
    plan: AuditPlan, members: pd.DataFrame | Mapping[str, Sequence[str]], seed: int
) -> pd.DataFrame:
    """Draw the items to audit: a simple random sample of ``plan.sizes[s]`` from stratum ``s``.

    Each stratum's draw uses its own generator seeded from ``seed`` and the stratum name, over
    its items in sorted order: the sample does not depend on row order or on other strata.

    Args:
        plan: From :func:`plan_audit`.
        members: Items per stratum: the output of :func:`audit_strata` (``item``,
            ``stratum``) or a mapping stratum → items.
        seed: Non-negative seed.

    Returns:
        Columns ``item``, ``stratum``, in plan order, items sorted within a stratum.

    Raises:
        AuditError: A stratum of ``members`` is not in the plan, an item is in two strata, a
            stratum has fewer items than its planned size, or the seed is negative.
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise AuditError(f"seed must be a non-negative integer, got {seed!r}.")
    groups = _members(members)
    unknown = sorted(set(groups) - set(plan.strata))
    if unknown:
        raise AuditError(
            f"members name strata {', '.join(unknown)} that the plan does not have (plan strata: "
            f"{', '.join(plan.strata)}); plan with the same strata, or drop those rows."
        )
    seen: dict[str, str] = {}
    for stratum, items in groups.items():
        for item in items:
            if item in seen and seen[item] != stratum:
                raise AuditError(
                    f"item {item!r} is in strata {seen[item]!r} and {stratum!r}; strata must be "
                    "disjoint (audit_strata gives each item one)."
                )
            seen[item] = stratum
    rows: list[tuple[str, str]] = []
    for stratum in plan.strata:
        pool = sorted(set(groups.get(stratum, [])))
        size = plan.sizes[stratum]
        if size > len(pool):
            raise AuditError(
                f"stratum {stratum!r} has {len(pool)} item(s) but the plan audits {size}; "
                "re-plan with the current stratum sizes."
            )
        digest = hashlib.blake2b(stratum.encode(), digest_size=8).digest()
        rng = np.random.default_rng([int(seed), int.from_bytes(digest, "little")])
        picked = sorted(rng.choice(len(pool), size=size, replace=False).tolist()) if size else []
        rows.extend((pool[k], stratum) for k in picked)
    return pd.DataFrame(rows, columns=["item", "stratum"])


# ------------------------------------------------------------------------------ record and report


def _as_bool(value: object, item: object) -> bool:
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer) and value in (0, 1):
        return bool(value)
    if isinstance(value, float) and value in (0.0, 1.0):
        return bool(value)
    text = str(value).strip().lower()
    if text in ("true", "t", "yes", "y", "1"):
        return True
    if text in ("false", "f", "no", "n", "0"):
        return False
    raise AuditError(f"audit of item {item!r}: correct must be true/false (or 1/0), got {value!r}.")


def _check_results(results: pd.DataFrame, strata: Collection[str] | None) -> pd.DataFrame:
    missing = [c for c in RESULT_COLUMNS if c not in results.columns]
    if missing:
        raise ColumnError(
            f"audit results lack column(s) {', '.join(missing)}; columns present: "
            f"{', '.join(map(str, results.columns))}. Expected: {', '.join(RESULT_COLUMNS)} "
            "(optional: label, the label that was checked)."
        )
    frame = results.reset_index(drop=True)
    for column in ("item", "stratum", "audited_label", "auditor"):
        blank = frame[column].isna() | (frame[column].astype(str).str.strip() == "")
        if blank.any():
            raise ColumnError(
                f"audit results: blank {column!r} in row(s) "
                f"{', '.join(map(str, frame.index[blank][:5]))}."
            )
    allowed = set(STRATA) | {OTHER} if strata is None else {str(s) for s in strata}
    unknown = sorted(set(frame["stratum"].astype(str)) - allowed)
    if unknown:
        raise AuditError(
            f"audit results name unknown strata {', '.join(unknown)}; known strata: "
            f"{', '.join(sorted(allowed))}."
        )
    correct = [_as_bool(v, i) for v, i in zip(frame["correct"], frame["item"], strict=True)]
    out = pd.DataFrame(
        {
            "item": frame["item"].astype(str),
            "stratum": frame["stratum"].astype(str),
            "label": frame["label"] if "label" in frame.columns else None,
            "audited_label": frame["audited_label"].astype(str),
            "auditor": frame["auditor"].astype(str),
            "correct": correct,
        }
    )
    if "label" in frame.columns:
        has = out["label"].notna()
        clash = has & ((out["label"].astype(str) == out["audited_label"]) != out["correct"])
        if clash.any():
            bad = out.loc[clash, "item"].tolist()[:5]
            raise AuditError(
                f"audit results of items {', '.join(bad)}: 'correct' disagrees with label == "
                "audited_label; fix one of them."
            )
    return out


def record_audit(
    project: Project,
    results: pd.DataFrame,
    *,
    round_id: int | None = None,
    strata: Collection[str] | None = None,
) -> int:
    """Store audit results in the project's append-only ``audits`` table.

    Args:
        project: An open project; the items must be in it (auditors are added as annotators
            of kind ``auditor`` when new).
        results: Columns :data:`RESULT_COLUMNS` (``correct``: whether the checked label was
            right), optionally ``label`` (the label that was checked).
        round_id: The round the audit belongs to.
        strata: Allowed stratum names (``plan.strata``); :data:`STRATA` and ``"other"`` when
            None.

    Returns:
        Rows added (recording the same results again adds nothing).

    Raises:
        ColumnError: A column is missing or blank.
        AuditError: An unknown stratum, or a ``correct`` value that is not boolean or
            contradicts ``label``/``audited_label``.
        StoreError: An item or the round is not in the project.
    """
    return project.add_audits(_check_results(results, strata), round_id=round_id)


def audit_report(
    source: Project | pd.DataFrame,
    *,
    confidence: float = 0.95,
    round_id: int | None = None,
) -> pd.DataFrame:
    """Error rate per stratum with Wilson intervals.

    Args:
        source: A project (its ``audits`` table) or a results frame (``stratum``,
            ``correct``).
        confidence: Coverage of the intervals, in (0, 1).
        round_id: Only this round's audits (projects only).

    Returns:
        Columns :data:`REPORT_COLUMNS`: ``stratum``, ``n`` (audited), ``errors``,
        ``error_rate``, ``low``, ``high``; standard strata first, then others by name.

    Raises:
        ColumnError: A results frame lacks ``stratum`` or ``correct``.
        AuditError: ``confidence`` out of range or a non-boolean ``correct``.
    """
    confidence = _check_unit("confidence", confidence, low_open=True, high_open=True)
    if isinstance(source, pd.DataFrame):
        missing = [c for c in ("stratum", "correct") if c not in source.columns]
        if missing:
            raise ColumnError(
                f"audit results lack column(s) {', '.join(missing)}; columns present: "
                f"{', '.join(map(str, source.columns))}."
            )
        items = source["item"] if "item" in source.columns else source.index
        results = pd.DataFrame(
            {
                "stratum": source["stratum"].astype(str).to_numpy(),
                "correct": [_as_bool(v, i) for v, i in zip(source["correct"], items, strict=True)],
            }
        )
    else:
        results = source.audits(round_id=round_id)
    order = [s for s in (*STRATA, OTHER) if s in set(results["stratum"])]
    order += sorted(set(results["stratum"]) - set(order))
    rows = []
    for stratum in order:
        sub = results[results["stratum"] == stratum]
        n = len(sub)
        errors = int((~sub["correct"].astype(bool)).sum())
        low, high = wilson_interval(errors, n, confidence)
        rows.append((stratum, n, errors, errors / n if n else math.nan, low, high))
    return pd.DataFrame(rows, columns=list(REPORT_COLUMNS)).astype(
        {
            "n": "int64",
            "errors": "int64",
            "error_rate": "float64",
            "low": "float64",
            "high": "float64",
        }
    )


# ------------------------------------------------------------------------------ feedback


@dataclass(frozen=True)
class ThresholdChange:
    """One routing threshold moved (or kept) by an audit.

    Attributes:
        name: Threshold name (``easy_confidence``).
        stratum: The audited stratum that moved it.
        old: Value before.
        new: Value after.
        reason: Why, with the figures.
    """

    name: str
    stratum: str
    old: float
    new: float
    reason: str


@dataclass(frozen=True)
class AuditFeedback:
    """What the audits change: annotator trust and routing thresholds.

    Attributes:
        trust: Annotator → multiplier of their vote weight (1 = no change).
        right: Annotator → audited items where their vote matched the auditor.
        answered: Annotator → audited items they voted on.
        thresholds: Threshold name → new value (every threshold given, moved or not).
        changes: One record per threshold considered.
    """

    trust: Mapping[str, float] = field(default_factory=dict)
    right: Mapping[str, int] = field(default_factory=dict)
    answered: Mapping[str, int] = field(default_factory=dict)
    thresholds: Mapping[str, float] = field(default_factory=dict)
    changes: tuple[ThresholdChange, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """Plain-dict form (``trust``, ``right``, ``answered``, ``thresholds``, ``changes``)."""
        return {
            "trust": dict(self.trust),
            "right": dict(self.right),
            "answered": dict(self.answered),
            "thresholds": dict(self.thresholds),
            "changes": [asdict(c) for c in self.changes],
        }


def _log_odds(p: float, k: int) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return max(0.0, math.log((k - 1) * p / (1 - p)))


def _trust(
    results: pd.DataFrame, votes: pd.DataFrame, n_classes: int | None
) -> tuple[dict[str, float], dict[str, int], dict[str, int]]:
    for name, frame, cols in (
        ("audit results", results, ("item", "audited_label")),
        ("votes", votes, ("item", "annotator", "label")),
    ):
        missing = [c for c in cols if c not in frame.columns]
        if missing:
            raise ColumnError(
                f"{name} lack column(s) {', '.join(missing)}; columns present: "
                f"{', '.join(map(str, frame.columns))}."
            )
    truth = (
        results.assign(item=results["item"].astype(str))
        .drop_duplicates("item", keep="last")
        .set_index("item")["audited_label"]
        .astype(str)
    )
    audited = votes[votes["item"].astype(str).isin(truth.index)]
    if audited.empty:
        return {}, {}, {}
    agree = (
        audited["label"].astype(str).to_numpy() == truth.loc[audited["item"].astype(str)].to_numpy()
    )
    table = pd.DataFrame({"annotator": audited["annotator"].astype(str).to_numpy(), "agree": agree})
    grouped = table.groupby("annotator")["agree"]
    right = {str(a): int(v) for a, v in grouped.sum().items()}
    answered = {str(a): int(v) for a, v in grouped.size().items()}
    k = n_classes or max(2, len(set(votes["label"].astype(str)) | set(truth)))
    pooled = sum(right.values()) / sum(answered.values())
    base = _log_odds(pooled, k)
    trust = {}
    for a in answered:
        post = (right[a] + _TRUST_PRIOR * pooled) / (answered[a] + _TRUST_PRIOR)
        trust[a] = 1.0 if base <= 0 else min(_TRUST_MAX, _log_odds(post, k) / base)
    return trust, right, answered


def audit_feedback(
    report: pd.DataFrame,
    *,
    tolerance: float,
    thresholds: Mapping[str, float] | None = None,
    results: pd.DataFrame | None = None,
    votes: pd.DataFrame | None = None,
    n_classes: int | None = None,
    threshold_for: Mapping[str, str] = THRESHOLD_FOR,
    step: float = 0.02,
    comfort: float = 0.5,
    min_audited: int = 10,
    bounds: tuple[float, float] = (0.5, 0.995),
) -> AuditFeedback:
    """Turn an audit report into trust multipliers and threshold moves (module docstring).

    Args:
        report: From :func:`audit_report`.
        tolerance: Largest acceptable error rate of a stratum, in (0, 1).
        thresholds: Current threshold values by name (``{"easy_confidence": 0.9}``);
            thresholds not given are not moved.
        results: Audit results (``item``, ``audited_label``) for annotator trust.
        votes: The votes on the audited items (``item``, ``annotator``, ``label``).
        n_classes: Classes of the taxonomy (:math:`K`); from the labels seen when None.
        threshold_for: Stratum → threshold name it steers.
        step: How much a threshold rises when a stratum's upper bound exceeds ``tolerance``
            (it falls by ``step / 2``).
        comfort: A stratum is comfortably good when its upper bound is below
            ``comfort × tolerance``.
        min_audited: Fewest audited items before a threshold may fall.
        bounds: Range thresholds stay in.

    Returns:
        The feedback.

    Raises:
        ColumnError: ``report``, ``results`` or ``votes`` lack a column.
        AuditError: ``tolerance``, ``step`` or ``comfort`` out of range.
    """
    tolerance = _check_unit("tolerance", tolerance, low_open=True, high_open=True)
    comfort = _check_unit("comfort", comfort, low_open=False, high_open=False)
    step = _check_unit("step", step, low_open=True, high_open=True)
    missing = [c for c in REPORT_COLUMNS if c not in report.columns]
    if missing:
        raise ColumnError(
            f"report lacks column(s) {', '.join(missing)}; pass the output of audit_report."
        )
    lo, hi = bounds
    current = {str(k): float(v) for k, v in (thresholds or {}).items()}
    new = dict(current)
    changes = []
    by_stratum: dict[str, dict[str, Any]] = {
        str(r["stratum"]): {str(k): v for k, v in r.items()}
        for r in report.to_dict(orient="records")
    }
    for stratum, name in threshold_for.items():
        if name not in current or stratum not in by_stratum:
            continue
        row = by_stratum[stratum]
        old, upper, n = current[name], float(row["high"]), int(row["n"])
        if upper > tolerance:
            value = min(hi, old + step)
            reason = (
                f"{stratum}: {int(row['errors'])}/{n} wrong, upper bound {upper:.3f} > "
                f"tolerance {tolerance:.3f}: raise by {step:g}"
            )
        elif upper < comfort * tolerance and n >= min_audited:
            value = max(lo, old - step / 2)
            reason = (
                f"{stratum}: {int(row['errors'])}/{n} wrong, upper bound {upper:.3f} < "
                f"{comfort:g} × tolerance: lower by {step / 2:g}"
            )
        else:
            value = old
            reason = f"{stratum}: upper bound {upper:.3f} within tolerance {tolerance:.3f}: keep"
        new[name] = value
        changes.append(ThresholdChange(name, stratum, old, value, reason))
    trust: dict[str, float] = {}
    right: dict[str, int] = {}
    answered: dict[str, int] = {}
    if results is not None and votes is not None:
        trust, right, answered = _trust(results, votes, n_classes)
    return AuditFeedback(
        trust=MappingProxyType(trust),
        right=MappingProxyType(right),
        answered=MappingProxyType(answered),
        thresholds=MappingProxyType(new),
        changes=tuple(changes),
    )
