r"""Inter-annotator agreement: Cohen's kappa per pair, Fleiss' kappa, Krippendorff's alpha.

All three work on nominal labels and on any overlap: items may have different numbers of
ratings (Fleiss' kappa as usually implemented, e.g. ``statsmodels``, asserts equal counts) and
any annotator may skip any item (missing data). Items with fewer than two ratings carry no
information about agreement and are left out. With :math:`n_{ic}` the number of ratings of
class :math:`c` on item :math:`i` and :math:`m_i = \sum_c n_{ic} \ge 2`:

Fleiss' kappa (uneven ratings)
    :math:`P_i = \frac{\sum_c n_{ic}^2 - m_i}{m_i (m_i - 1)}` (share of agreeing rating pairs on
    item :math:`i`), :math:`\bar P = \operatorname{mean}_i P_i`,
    :math:`p_c = \sum_i n_{ic} / \sum_i m_i`, :math:`P_e = \sum_c p_c^2`,
    :math:`\kappa = (\bar P - P_e)/(1 - P_e)`. With equal :math:`m_i` this is Fleiss (1971)
    exactly. Per class: :math:`\kappa_c = 1 - \frac{\sum_i n_{ic}(m_i - n_{ic})}{\sum_i m_i
    (m_i - 1)\, p_c (1 - p_c)}`.

Krippendorff's alpha (nominal)
    Coincidences :math:`o_{cc'} = \sum_i n_{ic}(n_{ic'} - [c = c'])/(m_i - 1)`, class totals
    :math:`n_c = \sum_i n_{ic}`, :math:`n = \sum_c n_c`;
    :math:`\alpha = 1 - (n - 1)\frac{\sum_{c \ne c'} o_{cc'}}{\sum_{c \ne c'} n_c n_{c'}}`.
    Per class: alpha of the labels recoded as "this class or not".

Cohen's kappa (pairs)
    For two annotators on the items both rated: :math:`p_o` the share of equal labels,
    :math:`p_e = \sum_c p^A_c p^B_c` from each one's label shares on those items,
    :math:`\kappa = (p_o - p_e)/(1 - p_e)` (as ``sklearn.metrics.cohen_kappa_score``).

Everything is computed from integer codes with ``bincount``; rating pairs within items are
enumerated by offsets in the item-sorted vote arrays, never by a pandas self-join. A statistic
that is undefined (every rating the same class, no item with two ratings) is ``None``.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from geolabel.crowd.base import EncodedAnnotations, encode_annotations
from geolabel.crowd.majority_vote import vote_counts
from geolabel.errors import ColumnError

__all__ = [
    "AgreementReport",
    "AgreementScores",
    "AnnotatorAgreement",
    "ClassAgreement",
    "GroupAgreement",
    "agreement_report",
    "cohen_kappa_pairs",
    "fleiss_kappa",
    "krippendorff_alpha",
]


@dataclass(frozen=True, slots=True)
class AgreementScores:
    r"""Agreement over a set of items.

    Attributes:
        n_items: Items with at least two ratings (the ones agreement is measured on).
        n_annotations: Ratings on those items.
        percent_agreement: Mean share of agreeing rating pairs per item (:math:`\bar P`).
        fleiss_kappa: Fleiss' kappa for uneven ratings per item.
        krippendorff_alpha: Krippendorff's alpha, nominal.
        mean_cohen_kappa: Mean Cohen's kappa over annotator pairs sharing at least
            ``min_overlap`` items, weighted by the items they share.
    """

    n_items: int
    n_annotations: int
    percent_agreement: float | None
    fleiss_kappa: float | None
    krippendorff_alpha: float | None
    mean_cohen_kappa: float | None


@dataclass(frozen=True, slots=True)
class ClassAgreement:
    """Agreement on one class (the labels recoded as "this class or not").

    Attributes:
        label: The class.
        n_votes: Ratings of this class on items with at least two ratings.
        fleiss_kappa: Fleiss' per-category kappa.
        krippendorff_alpha: Krippendorff's alpha of the binary recoding.
    """

    label: str
    n_votes: int
    fleiss_kappa: float | None
    krippendorff_alpha: float | None


@dataclass(frozen=True, slots=True)
class GroupAgreement:
    """Agreement on the items of one group (a district, an item kind...).

    Attributes:
        group: The group's name.
        scores: Agreement over its items.
    """

    group: str
    scores: AgreementScores


@dataclass(frozen=True, slots=True)
class AnnotatorAgreement:
    """How one annotator agrees with the others who rated the same items.

    Attributes:
        annotator: The annotator.
        n_items_shared: Their items that someone else also rated.
        n_partners: Annotators they share at least ``min_overlap`` items with.
        pairwise_agreement: Share of (their rating, another rating of the same item) pairs that
            agree.
        mean_cohen_kappa: Mean Cohen's kappa with those partners, weighted by shared items.
    """

    annotator: str
    n_items_shared: int
    n_partners: int
    pairwise_agreement: float | None
    mean_cohen_kappa: float | None


@dataclass(frozen=True, slots=True)
class AgreementReport:
    """Agreement overall, per class, per group and per annotator.

    Attributes:
        overall: Over all items.
        per_class: One entry per class.
        per_group: One entry per group (empty when no groups were given).
        per_annotator: One entry per annotator.
        min_overlap: Fewest shared items for a pair's Cohen's kappa to count.
    """

    overall: AgreementScores
    per_class: tuple[ClassAgreement, ...]
    per_group: tuple[GroupAgreement, ...]
    per_annotator: tuple[AnnotatorAgreement, ...]
    min_overlap: int


def _none_if_nan(value: float) -> float | None:
    return None if not np.isfinite(value) else float(value)


def _rated(counts: np.ndarray) -> np.ndarray:
    """Return the ``(K, n)`` counts of items with at least two ratings."""
    return counts[:, counts.sum(axis=0) >= 2]


def _fleiss(counts: np.ndarray) -> tuple[float, float]:
    """Return (percent agreement, Fleiss' kappa) from ``(K, n)`` counts; NaN when undefined."""
    counts = _rated(counts)
    if counts.shape[1] == 0:
        return float("nan"), float("nan")
    m = counts.sum(axis=0)
    p_i = ((counts**2).sum(axis=0) - m) / (m * (m - 1))
    p_bar = float(p_i.mean())
    p_c = counts.sum(axis=1) / m.sum()
    p_e = float((p_c**2).sum())
    kappa = (p_bar - p_e) / (1.0 - p_e) if p_e < 1.0 else float("nan")
    return p_bar, kappa


def _fleiss_per_class(counts: np.ndarray) -> np.ndarray:
    """Return Fleiss' per-category kappa for each class (NaN when the class is absent/all)."""
    counts = _rated(counts)
    m = counts.sum(axis=0)
    p_c = counts.sum(axis=1) / max(m.sum(), 1)
    disagree = (counts * (m - counts)).sum(axis=1)
    denominator = (m * (m - 1)).sum() * p_c * (1.0 - p_c)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, 1.0 - disagree / denominator, np.nan)


def _krippendorff(counts: np.ndarray) -> float:
    """Return Krippendorff's nominal alpha from ``(K, n)`` counts; NaN when undefined."""
    counts = _rated(counts)
    if counts.shape[1] == 0:
        return float("nan")
    m = counts.sum(axis=0)
    off_diagonal = float(((m**2 - (counts**2).sum(axis=0)) / (m - 1)).sum())
    n_c = counts.sum(axis=1)
    n = float(n_c.sum())
    expected = n**2 - float((n_c**2).sum())
    return 1.0 - (n - 1.0) * off_diagonal / expected if expected > 0 else float("nan")


def _krippendorff_per_class(counts: np.ndarray) -> np.ndarray:
    """Return alpha of each class's binary recoding ("this class or not")."""
    m = counts.sum(axis=0)
    return np.array([_krippendorff(np.vstack([row, m - row])) for row in counts])


@dataclass(frozen=True, slots=True)
class _Pairs:
    """Every pair of ratings of the same item (internal)."""

    item: np.ndarray
    a: np.ndarray  # annotator codes, a < b
    b: np.ndarray
    la: np.ndarray  # their labels
    lb: np.ndarray


def _rating_pairs(encoded: EncodedAnnotations) -> _Pairs:
    """Enumerate rating pairs within items by offsets in the item-sorted arrays."""
    item, ann, lab = encoded.item, encoded.annotator, encoded.label
    per_item = np.bincount(item, minlength=encoded.n_items)
    parts: list[tuple[np.ndarray, ...]] = []
    for offset in range(1, int(per_item.max(initial=0))):
        same = item[offset:] == item[:-offset]
        if not same.any():
            break
        first, second = np.flatnonzero(same), np.flatnonzero(same) + offset
        parts.append((item[first], ann[first], ann[second], lab[first], lab[second]))
    if not parts:
        empty = np.empty(0, dtype=np.int64)
        return _Pairs(empty, empty, empty, empty, empty)
    it, a, b, la, lb = (np.concatenate(column) for column in zip(*parts, strict=True))
    swap = a > b
    a, b = np.where(swap, b, a), np.where(swap, a, b)
    la, lb = np.where(swap, lb, la), np.where(swap, la, lb)
    return _Pairs(it, a.astype(np.int64), b.astype(np.int64), la, lb)


def _pair_kappas(
    pairs: _Pairs, n_annotators: int, n_classes: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return per annotator pair: (a, b, n_items, observed agreement, kappa)."""
    key = pairs.a * n_annotators + pairs.b
    unique, pair = np.unique(key, return_inverse=True)
    n_pairs = unique.size
    n = np.bincount(pair, minlength=n_pairs).astype(np.float64)
    agree = np.bincount(pair, weights=(pairs.la == pairs.lb).astype(np.float64), minlength=n_pairs)
    count_a = np.bincount(pair * n_classes + pairs.la, minlength=n_pairs * n_classes)
    count_b = np.bincount(pair * n_classes + pairs.lb, minlength=n_pairs * n_classes)
    share_a = count_a.reshape(n_pairs, n_classes) / n[:, None]
    share_b = count_b.reshape(n_pairs, n_classes) / n[:, None]
    p_o = agree / n
    p_e = (share_a * share_b).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        kappa = np.where(p_e < 1.0, (p_o - p_e) / (1.0 - p_e), np.nan)
    return unique // n_annotators, unique % n_annotators, n, p_o, kappa


def _weighted_mean(values: np.ndarray, weights: np.ndarray) -> float:
    ok = np.isfinite(values) & (weights > 0)
    return float(np.average(values[ok], weights=weights[ok])) if ok.any() else float("nan")


def _encode(
    annotations: pd.DataFrame, classes: Sequence[Hashable] | None, who: str
) -> EncodedAnnotations:
    return encode_annotations(annotations, classes=classes, min_annotators=2, who=who)


def fleiss_kappa(annotations: pd.DataFrame, *, classes: Sequence[Hashable] | None = None) -> float:
    """Return Fleiss' kappa, accepting uneven numbers of ratings per item.

    Args:
        annotations: Columns ``item``, ``annotator``, ``label``.
        classes: The classes (labels outside are refused); ``None`` uses those seen.

    Returns:
        Kappa, or NaN when undefined (a single class overall, or no item rated twice).

    Raises:
        ColumnError: Missing/misnamed columns or blank cells.
        LabelError: Labels outside ``classes``.
        AggregationError: Empty input or a single annotator.
    """
    enc = _encode(annotations, classes, "fleiss_kappa")
    return _fleiss(vote_counts(enc.item, enc.label, enc.n_items, enc.n_classes))[1]


def krippendorff_alpha(
    annotations: pd.DataFrame, *, classes: Sequence[Hashable] | None = None
) -> float:
    """Return Krippendorff's alpha for nominal labels with missing data.

    Args:
        annotations: Columns ``item``, ``annotator``, ``label``.
        classes: The classes (labels outside are refused); ``None`` uses those seen.

    Returns:
        Alpha, or NaN when undefined.

    Raises:
        ColumnError: Missing/misnamed columns or blank cells.
        LabelError: Labels outside ``classes``.
        AggregationError: Empty input or a single annotator.
    """
    enc = _encode(annotations, classes, "krippendorff_alpha")
    return _krippendorff(vote_counts(enc.item, enc.label, enc.n_items, enc.n_classes))


def cohen_kappa_pairs(
    annotations: pd.DataFrame,
    *,
    classes: Sequence[Hashable] | None = None,
    min_overlap: int = 1,
) -> pd.DataFrame:
    """Return Cohen's kappa for every pair of annotators who rated common items.

    Args:
        annotations: Columns ``item``, ``annotator``, ``label``.
        classes: The classes (labels outside are refused); ``None`` uses those seen.
        min_overlap: Leave out pairs sharing fewer items.

    Returns:
        Columns ``annotator_a``, ``annotator_b`` (in annotator order), ``n_items``,
        ``agreement`` (observed) and ``kappa`` (NaN when both always give one same class).

    Raises:
        ColumnError: Missing/misnamed columns or blank cells.
        LabelError: Labels outside ``classes``.
        AggregationError: Empty input or a single annotator.
    """
    enc = _encode(annotations, classes, "cohen_kappa_pairs")
    a, b, n, p_o, kappa = _pair_kappas(_rating_pairs(enc), enc.n_annotators, enc.n_classes)
    keep = n >= min_overlap
    return pd.DataFrame(
        {
            "annotator_a": enc.annotators.to_numpy()[a[keep]],
            "annotator_b": enc.annotators.to_numpy()[b[keep]],
            "n_items": n[keep].astype(np.int64),
            "agreement": p_o[keep],
            "kappa": kappa[keep],
        }
    )


def _scores(
    counts: np.ndarray, pairs: _Pairs, n_annotators: int, n_classes: int, min_overlap: int
) -> AgreementScores:
    rated = _rated(counts)
    percent, fleiss = _fleiss(counts)
    mean_kappa = float("nan")
    if pairs.a.size:
        _, _, n, _, kappa = _pair_kappas(pairs, n_annotators, n_classes)
        keep = n >= min_overlap
        mean_kappa = _weighted_mean(kappa[keep], n[keep])
    return AgreementScores(
        n_items=int(rated.shape[1]),
        n_annotations=int(rated.sum()),
        percent_agreement=_none_if_nan(percent),
        fleiss_kappa=_none_if_nan(fleiss),
        krippendorff_alpha=_none_if_nan(_krippendorff(counts)),
        mean_cohen_kappa=_none_if_nan(mean_kappa),
    )


def _subset(pairs: _Pairs, keep: np.ndarray) -> _Pairs:
    return _Pairs(pairs.item[keep], pairs.a[keep], pairs.b[keep], pairs.la[keep], pairs.lb[keep])


def agreement_report(
    annotations: pd.DataFrame,
    *,
    groups: Mapping[Hashable, Hashable] | pd.Series | None = None,
    classes: Sequence[Hashable] | None = None,
    min_overlap: int = 5,
) -> AgreementReport:
    """Measure agreement overall, per class, per group (e.g. district) and per annotator.

    Args:
        annotations: Columns ``item``, ``annotator``, ``label`` (optional ``created_at``).
        groups: Item -> group name (a district...); items without a group are left out of
            the per-group scores only.
        classes: The classes (labels outside are refused); ``None`` uses those seen.
        min_overlap: Fewest shared items for a pair's Cohen's kappa to enter the means.

    Returns:
        The report; statistics that are undefined are ``None``.

    Raises:
        ColumnError: Missing/misnamed columns, blank cells, or ``groups`` not a mapping.
        LabelError: Labels outside ``classes``.
        AggregationError: Empty input or a single annotator.
    """
    enc = _encode(annotations, classes, "agreement_report")
    counts = vote_counts(enc.item, enc.label, enc.n_items, enc.n_classes)
    pairs = _rating_pairs(enc)
    a_k = enc.n_annotators
    overall = _scores(counts, pairs, a_k, enc.n_classes, min_overlap)
    rated = _rated(counts)
    per_class = tuple(
        ClassAgreement(
            label=str(label),
            n_votes=int(rated[c].sum()),
            fleiss_kappa=_none_if_nan(fk),
            krippendorff_alpha=_none_if_nan(ka),
        )
        for c, (label, fk, ka) in enumerate(
            zip(
                enc.classes, _fleiss_per_class(counts), _krippendorff_per_class(counts), strict=True
            )
        )
    )
    per_group: list[GroupAgreement] = []
    if groups is not None:
        if not isinstance(groups, Mapping | pd.Series):
            raise ColumnError(
                f"groups must map item -> group (a dict or a Series), got {type(groups).__name__}."
            )
        series = pd.Series(groups) if not isinstance(groups, pd.Series) else groups
        item_group = series.reindex(enc.items)
        text = item_group.map(str).where(item_group.notna())
        group_code, names = pd.factorize(text, sort=True)
        for j, name in enumerate(names):
            in_group = group_code == j
            per_group.append(
                GroupAgreement(
                    group=str(name),
                    scores=_scores(
                        counts[:, in_group],
                        _subset(pairs, in_group[pairs.item]),
                        a_k,
                        enc.n_classes,
                        min_overlap,
                    ),
                )
            )
    per_annotator = _per_annotator(enc, pairs, min_overlap)
    return AgreementReport(
        overall=overall,
        per_class=per_class,
        per_group=tuple(per_group),
        per_annotator=per_annotator,
        min_overlap=int(min_overlap),
    )


def _per_annotator(
    enc: EncodedAnnotations, pairs: _Pairs, min_overlap: int
) -> tuple[AnnotatorAgreement, ...]:
    a_k = enc.n_annotators
    both = np.concatenate([pairs.a, pairs.b])
    agree = np.tile((pairs.la == pairs.lb).astype(np.float64), 2)
    n_pairs = np.bincount(both, minlength=a_k).astype(np.float64)
    n_agree = np.bincount(both, weights=agree, minlength=a_k)
    per_item = np.bincount(enc.item, minlength=enc.n_items)
    shared = np.bincount(enc.annotator[per_item[enc.item] >= 2], minlength=a_k)
    kappa_mean = np.full(a_k, np.nan)
    partners = np.zeros(a_k, dtype=np.int64)
    if pairs.a.size:
        a, b, n, _, kappa = _pair_kappas(pairs, a_k, enc.n_classes)
        keep = n >= min_overlap
        who = np.concatenate([a[keep], b[keep]])
        weight = np.tile(n[keep], 2)
        value = np.tile(kappa[keep], 2)
        ok = np.isfinite(value)
        partners = np.bincount(who, minlength=a_k)
        total = np.bincount(who[ok], weights=weight[ok], minlength=a_k)
        weighted = np.bincount(who[ok], weights=(weight * value)[ok], minlength=a_k)
        with np.errstate(divide="ignore", invalid="ignore"):
            kappa_mean = np.where(total > 0, weighted / total, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        pairwise = np.where(n_pairs > 0, n_agree / n_pairs, np.nan)
    return tuple(
        AnnotatorAgreement(
            annotator=str(name),
            n_items_shared=int(shared[i]),
            n_partners=int(partners[i]),
            pairwise_agreement=_none_if_nan(pairwise[i]),
            mean_cohen_kappa=_none_if_nan(kappa_mean[i]),
        )
        for i, name in enumerate(enc.annotators)
    )
