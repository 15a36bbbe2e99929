"""Shared parts of the aggregators: input checks, integer encoding, gold and model priors.

Every aggregator in :mod:`geolabel.crowd` takes annotations as a DataFrame with the columns
``item``, ``annotator`` and ``label`` (optional ``created_at``), the crowd convention of the rest
of geolabel. :func:`encode_annotations` checks such a frame once and turns it into integer
arrays (items, annotators and labels as codes), which is all the numerical code ever sees:

* missing or misnamed columns are named, with the rename to do (``task`` -> ``item``...);
* blank ids or labels are counted and located;
* labels outside the taxonomy are listed with their counts, and either refused or mapped
  through an explicit ``label_map`` (``on_unknown="map"``);
* duplicate ``(item, annotator)`` votes keep the latest by ``created_at`` (the last row when
  there is no time), and an :class:`~geolabel.errors.AggregationWarning` says how many were
  dropped;
* an empty frame, and a single annotator where a model needs several, are refused with a
  message that says what to do.

The encoded arrays are sorted by item, then annotator, so that per-item sums are contiguous.
Codes index :attr:`EncodedAnnotations.items`, :attr:`EncodedAnnotations.annotators` and
:attr:`EncodedAnnotations.classes`; items and annotators are sorted when their ids sort.
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Self, TypeAlias

import numpy as np
import pandas as pd

from geolabel.errors import (
    AggregationError,
    AggregationWarning,
    ColumnError,
    LabelError,
    NotFittedError,
)

__all__ = [
    "REQUIRED_COLUMNS",
    "AnnotationsInput",
    "BaseAggregator",
    "EMAggregator",
    "EncodedAnnotations",
    "GoldCodes",
    "GoldInput",
    "ItemPrior",
    "add_log_priors",
    "check_number",
    "clamp_gold",
    "class_prior",
    "encode_annotations",
    "encode_gold",
    "encode_item_prior",
    "loss_converged",
    "normalize_posteriors",
]

REQUIRED_COLUMNS: tuple[str, ...] = ("item", "annotator", "label")
"""Columns every annotation frame needs (``created_at`` is optional)."""

_EPS = 1e-12
_PREVIEW = 5

# Column names other tools use; named in errors with the rename to do, never guessed.
_ALIASES: dict[str, tuple[str, ...]] = {
    "item": ("task", "task_id", "item_id", "object", "object_id", "parcel", "parcel_id"),
    "annotator": ("worker", "worker_id", "annotator_id", "user", "user_id", "performer", "rater"),
    "label": ("answer", "class", "category", "label_id", "choice", "value", "output"),
}


def _preview(values: Sequence[Any], limit: int = _PREVIEW) -> str:
    """Return ``'a', 'b', 'c' and 4 more`` for messages."""
    shown = ", ".join(repr(_plain(v)) for v in values[:limit])
    return shown + (f" and {len(values) - limit} more" if len(values) > limit else "")


def _plain(value: Any) -> Any:
    """Turn numpy scalars into Python ones so that messages read ``5``, not ``np.int64(5)``."""
    return value.item() if isinstance(value, np.generic) else value


@dataclass(frozen=True, slots=True)
class EncodedAnnotations:
    """Annotations as integer codes, sorted by item then annotator (one vote per pair).

    Attributes:
        item: Item code of each vote (``int32``), non-decreasing.
        annotator: Annotator code of each vote (``int32``).
        label: Class code of each vote (``int32``).
        items: Item ids, indexed by item code.
        annotators: Annotator ids, indexed by annotator code.
        classes: Class labels, indexed by class code (ties go to the lowest code).
        rows: Position in the input frame of each kept vote (to find annotation ids).
        n_duplicates: Votes dropped because a later vote of the same pair was kept.
        n_mapped: Votes whose label was mapped through ``label_map``.
    """

    item: np.ndarray
    annotator: np.ndarray
    label: np.ndarray
    items: pd.Index
    annotators: pd.Index
    classes: pd.Index
    rows: np.ndarray
    n_duplicates: int
    n_mapped: int

    @property
    def n_items(self) -> int:
        """Number of distinct items."""
        return len(self.items)

    @property
    def n_annotators(self) -> int:
        """Number of distinct annotators."""
        return len(self.annotators)

    @property
    def n_classes(self) -> int:
        """Number of classes."""
        return len(self.classes)

    def __len__(self) -> int:
        return int(self.item.shape[0])


AnnotationsInput: TypeAlias = pd.DataFrame | EncodedAnnotations
"""Votes as a frame (``item``, ``annotator``, ``label``), or already encoded (streamed from a
store by :func:`geolabel.crowd.stream.read_encoded_annotations`)."""


@dataclass(frozen=True, slots=True)
class GoldCodes:
    """Known answers of some annotated items, as codes.

    Attributes:
        item: Item codes of the gold items that were annotated.
        label: Their true class codes.
        n_unused: Gold items given that nobody annotated (they cannot be clamped).
    """

    item: np.ndarray
    label: np.ndarray
    n_unused: int


@dataclass(frozen=True, slots=True)
class ItemPrior:
    """Per-item prior class probabilities (a model's pre-label), as log-probabilities.

    Attributes:
        item: Item codes that have a prior.
        log_prob: ``(len(item), K)`` log-probabilities, rows normalised, clipped at ``1e-12``.
    """

    item: np.ndarray
    log_prob: np.ndarray


def _column_problem(columns: Sequence[str]) -> str | None:
    """Describe missing required columns and the renames that would fix them, or None."""
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if not missing:
        return None
    renames = [(a, c) for c in missing for a in _ALIASES[c] if a in columns]
    text = (
        f"annotations lack the column(s) {', '.join(repr(c) for c in missing)}; columns present: "
        f"{', '.join(map(repr, columns)) if columns else '(none)'}"
    )
    if renames:
        hint = ", ".join(f"{a!r} -> {c!r}" for a, c in renames)
        return (
            f"{text}. Rename {hint} (e.g. df.rename(columns={{{renames[0][0]!r}: "
            f"{renames[0][1]!r}}})); geolabel does not guess column names"
        )
    return f"{text}. Expected columns: item, annotator, label (created_at optional)"


def _check_frame(annotations: object) -> pd.DataFrame:
    """Check the type and columns of an annotation frame and refuse blank cells."""
    if not isinstance(annotations, pd.DataFrame):
        raise ColumnError(
            "annotations must be a pandas DataFrame with columns item, annotator, label; got "
            f"{type(annotations).__name__}"
        )
    problem = _column_problem([str(c) for c in annotations.columns])
    if problem is not None:
        raise ColumnError(problem + ".")
    if len(annotations) == 0:
        raise AggregationError(
            "No annotations to aggregate: the frame is empty (0 rows). Import annotations first "
            "(geolabel import PROJECT votes.csv) or check the filter that produced the frame."
        )
    for column in REQUIRED_COLUMNS:
        values = annotations[column]
        blank = values.isna().to_numpy().copy()
        if not pd.api.types.is_numeric_dtype(values.dtype):
            try:
                stripped = values.str.strip()
            except AttributeError:  # no strings in the column at all
                stripped = None
            if stripped is not None:
                blank |= (stripped == "").fillna(False).to_numpy(dtype=bool)
        if blank.any():
            where = np.flatnonzero(blank)
            raise ColumnError(
                f"annotations: {where.size} row(s) have a blank {column!r} (row positions "
                f"{_preview(where.tolist())}); every vote needs an item, an annotator and a "
                "label. Drop or fill those rows first."
            )
    return annotations


def _factorize(values: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Return int32 codes and the uniques, sorted when the values sort."""
    try:
        codes, uniques = pd.factorize(values, sort=True)
    except TypeError:  # mixed types that do not compare
        codes, uniques = pd.factorize(values, sort=False)
    return codes.astype(np.int32, copy=False), pd.Index(uniques)


def _encode_labels(
    labels: pd.Series,
    classes: Sequence[Hashable] | None,
    on_unknown: Literal["reject", "map"],
    label_map: Mapping[Hashable, Hashable] | None,
) -> tuple[np.ndarray, pd.Index, int]:
    """Encode labels against ``classes`` (or the sorted observed labels); map or refuse others."""
    if on_unknown not in ("reject", "map"):
        raise AggregationError(
            f"on_unknown must be 'reject' or 'map', got {on_unknown!r}: 'map' maps labels outside "
            "the taxonomy through label_map, 'reject' refuses them."
        )
    if on_unknown == "map" and label_map is None:
        raise AggregationError(
            "on_unknown='map' needs a label_map (old label -> taxonomy class), e.g. "
            "{'shop': 'commercial'}; pass one, or use on_unknown='reject'."
        )
    if classes is None:
        codes, uniques = _factorize(labels)
        return codes, uniques, 0
    class_index = pd.Index(list(classes))
    if class_index.has_duplicates:
        dupes = class_index[class_index.duplicated()].unique().tolist()
        raise LabelError(f"classes repeat {_preview(dupes)}; list each class once.")
    if len(class_index) < 2:
        raise LabelError(f"classes must hold at least two labels, got {class_index.tolist()}.")
    codes = class_index.get_indexer(pd.Index(labels))
    unknown = codes < 0
    n_mapped = 0
    if on_unknown == "map" and label_map is not None:
        bad_targets = sorted({str(v) for v in label_map.values() if v not in class_index})
        if bad_targets:
            raise LabelError(
                f"label_map maps to label(s) not in the taxonomy: {_preview(bad_targets)}; "
                f"allowed labels: {', '.join(map(str, class_index))}."
            )
    if unknown.any() and on_unknown == "map" and label_map is not None:
        mapped = labels[unknown].map(lambda v: label_map.get(v, v))
        codes[unknown] = class_index.get_indexer(pd.Index(mapped))
        n_mapped = int((codes[unknown] >= 0).sum())
        unknown = codes < 0
    if unknown.any():
        counts = labels[unknown].value_counts()
        listed = ", ".join(
            f"{_plain(k)!r} ({n} vote{'s' if n != 1 else ''})" for k, n in counts.head(10).items()
        )
        more = f" and {len(counts) - 10} more" if len(counts) > 10 else ""
        how = (
            "add them to label_map"
            if on_unknown == "map"
            else "fix them, or map them to taxonomy classes with on_unknown='map' and a "
            "label_map (CLI: --label-map FILE)"
        )
        raise LabelError(
            f"{int(unknown.sum())} vote(s) have {len(counts)} label(s) not in the taxonomy: "
            f"{listed}{more}. Allowed labels: {', '.join(map(str, class_index))}; {how}."
        )
    return codes.astype(np.int32, copy=False), class_index, n_mapped


def encode_annotations(
    annotations: AnnotationsInput,
    *,
    classes: Sequence[Hashable] | None = None,
    on_unknown: Literal["reject", "map"] = "reject",
    label_map: Mapping[Hashable, Hashable] | None = None,
    min_annotators: int = 1,
    who: str = "aggregation",
    stacklevel: int = 4,
) -> EncodedAnnotations:
    """Check an annotation frame and encode it as integer arrays.

    Args:
        annotations: Columns ``item``, ``annotator``, ``label``; optional ``created_at``
            (ISO-8601 or datetime) used to keep the latest of duplicate votes.
        classes: The taxonomy's classes, in the order of the output columns; ``None`` uses the
            sorted labels seen.
        on_unknown: ``"reject"`` refuses labels outside ``classes``; ``"map"`` maps them
            through ``label_map`` first (still-unknown labels are refused).
        label_map: Old label -> class, used with ``on_unknown="map"``.
        min_annotators: Fewest distinct annotators the caller can work with.
        who: Name of the caller, for messages (``"DawidSkene"``).
        stacklevel: Stack level of the duplicate warning (so it points at the user's call).

    Returns:
        The encoded annotations, sorted by item then annotator.

    Raises:
        ColumnError: Not a DataFrame, a missing or misnamed column, blank cells, or
            unparseable ``created_at`` values.
        LabelError: Labels outside ``classes`` (listed with counts) or a bad ``label_map``.
        AggregationError: No rows, or fewer annotators than ``min_annotators``.

    Warns:
        AggregationWarning: When duplicate ``(item, annotator)`` votes were dropped.
    """
    if isinstance(annotations, EncodedAnnotations):
        return _check_encoded(annotations, classes, min_annotators, who)
    frame = _check_frame(annotations)
    label_codes, class_index, n_mapped = _encode_labels(
        frame["label"], classes, on_unknown, label_map
    )
    item_codes, items = _factorize(frame["item"])
    annotator_codes, annotators = _factorize(frame["annotator"])
    if len(annotators) < min_annotators:
        raise AggregationError(_too_few_annotators(who, min_annotators, len(frame), annotators))
    key = item_codes.astype(np.int64) * max(len(annotators), 1) + annotator_codes
    order = np.argsort(key, kind="stable")
    n_duplicates = int(np.count_nonzero(np.diff(key[order]) == 0))
    if n_duplicates:
        order, note = _keep_latest(frame, key, order)
        sorted_key = key[order]
        keep = np.ones(len(order), dtype=bool)
        keep[:-1] = sorted_key[1:] != sorted_key[:-1]
        dup_pairs = np.flatnonzero(~keep)
        example = order[dup_pairs[0]]
        warnings.warn(
            f"{n_duplicates} duplicate vote(s): {int(np.unique(sorted_key[~keep]).size)} "
            f"(item, annotator) pair(s) voted more than once, e.g. item "
            f"{_plain(frame['item'].iloc[example])!r} by annotator "
            f"{_plain(frame['annotator'].iloc[example])!r}. {note}; {n_duplicates} vote(s) "
            "dropped.",
            AggregationWarning,
            stacklevel=stacklevel,
        )
        order = order[keep]
        del sorted_key, keep
    del key
    if len(frame) < 2**31:
        order = order.astype(np.int32)
    return EncodedAnnotations(
        item=item_codes[order],
        annotator=annotator_codes[order],
        label=label_codes[order],
        items=items,
        annotators=annotators,
        classes=class_index,
        rows=order,
        n_duplicates=n_duplicates,
        n_mapped=n_mapped,
    )


def _too_few_annotators(who: str, min_annotators: int, n_votes: int, annotators: pd.Index) -> str:
    only = _preview(annotators.tolist())
    return (
        f"{who} needs annotations from at least {min_annotators} annotators, but all "
        f"{n_votes} vote(s) come from {only}: with a single annotator there is no "
        "overlap to estimate reliability from. Use MajorityVote (which returns that "
        "annotator's labels), or collect votes from more annotators."
    )


def _check_encoded(
    encoded: EncodedAnnotations,
    classes: Sequence[Hashable] | None,
    min_annotators: int,
    who: str,
) -> EncodedAnnotations:
    """Accept pre-encoded annotations when their classes are the estimator's."""
    if classes is not None and list(encoded.classes) != list(classes):
        raise LabelError(
            f"{who}: the encoded annotations use the classes {list(encoded.classes)}, not "
            f"{list(classes)}; encode them with the estimator's classes."
        )
    if len(encoded) == 0:
        raise AggregationError(
            "No annotations to aggregate: the encoded annotations hold 0 votes. Import "
            "annotations first (geolabel import PROJECT votes.csv)."
        )
    if encoded.n_annotators < min_annotators:
        raise AggregationError(
            _too_few_annotators(who, min_annotators, len(encoded), encoded.annotators)
        )
    return encoded


def _keep_latest(frame: pd.DataFrame, key: np.ndarray, order: np.ndarray) -> tuple[np.ndarray, str]:
    """Order votes by (pair, time, row) so the last of each pair is the latest one."""
    if "created_at" not in frame.columns:
        return order, "No created_at column, so the last row of each pair was kept"
    times = pd.to_datetime(frame["created_at"], utc=True, errors="coerce", format="mixed")
    bad = times.isna().to_numpy() & frame["created_at"].notna().to_numpy()
    if bad.any():
        where = np.flatnonzero(bad)
        raise ColumnError(
            f"annotations: created_at of {where.size} row(s) is not a timestamp (row positions "
            f"{_preview(where.tolist())}, e.g. {frame['created_at'].iloc[where[0]]!r}); use "
            "ISO-8601 such as 2026-01-05T09:00:00Z so the latest duplicate vote can be kept."
        )
    stamp = times.to_numpy(dtype="datetime64[ns]").astype(np.int64)
    stamp[times.isna().to_numpy()] = np.iinfo(np.int64).min  # no time: oldest
    rows = np.arange(len(frame))
    return np.lexsort((rows, stamp, key)), "Kept the latest vote of each pair by created_at"


def encode_gold(
    gold: pd.Series | pd.DataFrame | Mapping[Hashable, Hashable] | None,
    encoded: EncodedAnnotations,
) -> GoldCodes | None:
    """Encode known answers (gold) against encoded annotations.

    Args:
        gold: ``item -> label`` as a Series indexed by item, a Mapping, or a DataFrame with
            ``item`` and ``label`` columns; ``None`` for no gold.
        encoded: The annotations the gold refers to.

    Returns:
        The gold items that were annotated, as codes; ``None`` when ``gold`` is None or empty.

    Raises:
        ColumnError: A gold DataFrame lacks ``item``/``label``, or an item is given twice with
            different labels.
        LabelError: A gold label is not one of the classes.
    """
    if gold is None:
        return None
    if isinstance(gold, pd.DataFrame):
        missing = [c for c in ("item", "label") if c not in gold.columns]
        if missing:
            raise ColumnError(
                f"gold lacks the column(s) {', '.join(map(repr, missing))}; columns present: "
                f"{', '.join(map(str, gold.columns))}. Gold is a table of item, label "
                "(like data/sample/labels/gold.csv)."
            )
        series = pd.Series(gold["label"].to_numpy(), index=pd.Index(gold["item"]))
    elif isinstance(gold, pd.Series):
        series = gold
    elif isinstance(gold, Mapping):
        series = pd.Series(dict(gold), dtype=object)
    else:
        raise ColumnError(
            f"gold must be a Series (item -> label), a mapping or a DataFrame with item and "
            f"label columns; got {type(gold).__name__}."
        )
    series = series.dropna()
    if series.empty:
        return None
    conflicting = series.groupby(level=0).nunique()
    conflicting = conflicting[conflicting > 1]
    if len(conflicting):
        raise ColumnError(
            f"gold gives {len(conflicting)} item(s) two different labels: "
            f"{_preview(conflicting.index.tolist())}; give each gold item one answer."
        )
    series = series[~series.index.duplicated()]
    label_codes = encoded.classes.get_indexer(pd.Index(series.to_numpy()))
    if (label_codes < 0).any():
        bad = pd.unique(series.to_numpy()[label_codes < 0]).tolist()
        raise LabelError(
            f"gold labels not in the classes: {_preview(bad)}; allowed labels: "
            f"{', '.join(map(str, encoded.classes))}. Fix the gold file or remap it."
        )
    item_codes = encoded.items.get_indexer(series.index)
    used = item_codes >= 0
    return GoldCodes(
        item=item_codes[used].astype(np.int64),
        label=label_codes[used].astype(np.int64),
        n_unused=int((~used).sum()),
    )


def encode_item_prior(
    item_prior: pd.DataFrame | None, encoded: EncodedAnnotations
) -> ItemPrior | None:
    """Encode per-item prior probabilities (a model's pre-label) against encoded annotations.

    Args:
        item_prior: Indexed by item, one column per class (missing classes count as 0), rows
            of non-negative numbers (normalised here); ``None`` for no prior.
        encoded: The annotations the prior refers to. Items without votes are ignored.

    Returns:
        Log-probabilities for the annotated items that have a prior, or ``None``.

    Raises:
        ColumnError: Not a DataFrame, columns that are not classes, negative or non-finite
            values, a row summing to 0, or a repeated item.
    """
    if item_prior is None:
        return None
    if not isinstance(item_prior, pd.DataFrame):
        raise ColumnError(
            "item_prior must be a DataFrame indexed by item with one column per class, got "
            f"{type(item_prior).__name__}."
        )
    unknown = [c for c in item_prior.columns if c not in encoded.classes]
    if unknown:
        raise ColumnError(
            f"item_prior has column(s) that are not classes: {_preview(unknown)}; columns must "
            f"be among {', '.join(map(str, encoded.classes))}."
        )
    if item_prior.index.has_duplicates:
        dupes = item_prior.index[item_prior.index.duplicated()].unique().tolist()
        raise ColumnError(f"item_prior repeats item(s) {_preview(dupes)}; one row per item.")
    values = item_prior.reindex(columns=encoded.classes, fill_value=0.0).to_numpy(np.float64)
    bad = ~np.isfinite(values).all(axis=1) | (values < 0).any(axis=1)
    total = values.sum(axis=1)
    bad |= total <= 0
    if bad.any():
        raise ColumnError(
            f"item_prior has {int(bad.sum())} row(s) that are not probabilities (negative, NaN "
            f"or all zero), e.g. items {_preview(item_prior.index[bad].tolist())}."
        )
    codes = encoded.items.get_indexer(item_prior.index)
    used = codes >= 0
    probs = values[used] / total[used, None]
    return ItemPrior(item=codes[used].astype(np.int64), log_prob=np.log(np.clip(probs, _EPS, None)))


class BaseAggregator:
    """Base of the aggregators: the estimator protocol shared by every model.

    Constructors only store their parameters; :meth:`fit` validates them and the input, and
    sets the fitted state, whose names end with ``_``. Reading fitted state before ``fit``
    raises :class:`~geolabel.errors.NotFittedError`.

    Fitted state common to all aggregators:

    * ``labels_``: ``pd.Series`` named ``agg_label``, indexed by item, the decided label;
    * ``probas_``: ``pd.DataFrame`` item x class, each row a distribution;
    * ``classes_``: ``pd.Index`` of the classes (column order of ``probas_``);
    * ``annotators_``: ``pd.Index`` of the annotators seen;
    * ``n_duplicates_``: duplicate votes dropped before fitting.
    """

    labels_: pd.Series
    probas_: pd.DataFrame
    classes_: pd.Index
    annotators_: pd.Index
    n_duplicates_: int

    def __getattr__(self, name: str) -> Any:
        # Only called when normal lookup fails: fitted state that does not exist yet.
        if name.endswith("_") and not name.startswith("_"):
            raise NotFittedError(
                f"{type(self).__name__}.{name} is not available: this "
                f"{type(self).__name__} is not fitted yet. Call fit(annotations) first."
            )
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"

    def get_params(self) -> dict[str, Any]:
        """Return the constructor parameters (scikit-learn convention).

        Returns:
            Parameter name -> value.
        """
        import inspect

        names = [
            p.name
            for p in inspect.signature(type(self).__init__).parameters.values()
            if p.name != "self" and p.kind is not p.VAR_KEYWORD
        ]
        return {n: getattr(self, n) for n in names}

    def set_params(self, **params: Any) -> Self:
        """Set constructor parameters (scikit-learn convention); fitted state is kept.

        Args:
            **params: Parameter name -> value.

        Returns:
            self.

        Raises:
            AggregationError: An unknown parameter name.
        """
        valid = self.get_params()
        for name, value in params.items():
            if name not in valid:
                raise AggregationError(
                    f"{type(self).__name__} has no parameter {name!r}; parameters: "
                    f"{', '.join(valid)}."
                )
            setattr(self, name, value)
        return self

    def _set_result(self, encoded: EncodedAnnotations, probas_t: np.ndarray) -> None:
        """Set ``labels_``, ``probas_`` and the shared fitted state from ``(K, n)`` posteriors."""
        index = encoded.items.rename("item")
        self.classes_ = encoded.classes
        self.annotators_ = encoded.annotators.rename("annotator")
        self.n_duplicates_ = encoded.n_duplicates
        self.probas_ = pd.DataFrame(
            probas_t.T.astype(np.float64, copy=False),
            index=index,
            columns=encoded.classes.rename("label"),
        )
        # argmax returns the first maximum: ties go to the class listed first in classes_.
        self.labels_ = pd.Series(
            encoded.classes.to_numpy()[probas_t.argmax(axis=0)], index=index, name="agg_label"
        )


def check_number(
    who: str,
    name: str,
    value: object,
    *,
    low: float | None = None,
    high: float | None = None,
    integer: bool = False,
    low_open: bool = False,
) -> float:
    """Check a numeric parameter in ``fit`` and return it as a float.

    Raises:
        AggregationError: The value is not a number (an integer if asked) in range.
    """
    ok = isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)
    number = float(value) if ok else float("nan")  # type: ignore[arg-type]
    if ok and integer:
        ok = number.is_integer()
    if ok and not np.isfinite(number):
        ok = False
    if ok and low is not None:
        ok = number > low if low_open else number >= low
    if ok and high is not None:
        ok = number <= high
    if not ok:
        kind = "an integer" if integer else "a number"
        bounds = []
        if low is not None:
            bounds.append(f"{'>' if low_open else '>='} {low:g}")
        if high is not None:
            bounds.append(f"<= {high:g}")
        rule = f" {' and '.join(bounds)}" if bounds else ""
        raise AggregationError(f"{who}: {name} must be {kind}{rule}, got {value!r}.")
    return number


def add_log_priors(
    log_joint: np.ndarray,
    log_class_prior: np.ndarray,
    item_prior: ItemPrior | None,
    prior_weight: float,
) -> None:
    r"""Add the prior of each item's true class to its log-likelihoods, in place.

    Items without a model prior get the class prior :math:`\log \pi_c`. An item with a model
    pre-label :math:`q_i` gets :math:`w \log q_{ic}` *instead*: a calibrated model's output is
    already :math:`P(z_i = c \mid \text{image})`, class prior included, so the posterior is
    :math:`P(z_i = c \mid \text{image}, \text{votes}) \propto q_{ic}^{\,w} \prod_n
    P(\ell_n \mid z_i = c)` — the model acts as one more, calibrated voter. ``prior_weight``
    :math:`w` tempers an over- or under-confident model (1 for a calibrated one).

    Args:
        log_joint: ``(K, n_items)`` log-likelihoods of the votes (class-major, so that
            per-item reductions over the few classes are contiguous); modified in place.
        log_class_prior: ``(K,)`` log class prior.
        item_prior: Model priors of some items, or None.
        prior_weight: Exponent :math:`w` on the model prior.
    """
    log_joint += log_class_prior[:, None]
    if item_prior is not None:
        log_joint[:, item_prior.item] += (prior_weight * item_prior.log_prob - log_class_prior).T


def normalize_posteriors(log_joint: np.ndarray, gold: GoldCodes | None) -> float:
    r"""Turn log joint probabilities into posteriors in place; clamp gold items; return log-lik.

    Each item's column is shifted by its maximum before exponentiating (so the largest term
    is :math:`e^0 = 1` and nothing underflows), then divided by its sum. The log-likelihood of
    the votes is :math:`\sum_i (m_i + \log \sum_c e^{L_{ci} - m_i})` over items without gold
    and :math:`\sum_i L_{y_i i}` over gold items, whose true class :math:`y_i` is observed.
    Gold items are then set to the one-hot of their truth (semi-supervised EM: gold is clamped
    in every E-step, so its votes teach the annotator parameters).

    Args:
        log_joint: ``(K, n_items)`` log joint of votes and true class (float32 or float64);
            overwritten with the posteriors.
        gold: Gold items to clamp, or None.

    Returns:
        The log-likelihood of the votes (with the priors).
    """
    col_max = log_joint.max(axis=0)
    gold_terms = 0.0
    if gold is not None and gold.item.size:
        gold_terms = float(log_joint[gold.label, gold.item].sum(dtype=np.float64))
    log_joint -= col_max
    np.exp(log_joint, out=log_joint)
    col_sum = log_joint.sum(axis=0)
    log_joint /= col_sum
    # The log-likelihood is accumulated in float64 whatever the dtype of the posteriors.
    log_norm = col_max.astype(np.float64) + np.log(col_sum, dtype=np.float64)
    total = float(log_norm.sum())
    if gold is not None and gold.item.size:
        total += gold_terms - float(log_norm[gold.item].sum())
        clamp_gold(log_joint, gold)
    return total


def clamp_gold(probas: np.ndarray, gold: GoldCodes | None) -> None:
    """Set gold items of ``(K, n_items)`` posteriors to the one-hot of their answer, in place."""
    if gold is not None and gold.item.size:
        probas[:, gold.item] = 0.0
        probas[gold.label, gold.item] = 1.0


def class_prior(probas: np.ndarray, smoothing: float) -> np.ndarray:
    """Return the smoothed class prior from ``(K, n_items)`` posteriors.

    The mean posterior plus ``smoothing`` pseudo-counts per class.
    """
    counts = probas.sum(axis=1, dtype=np.float64) + smoothing
    return np.asarray(counts / counts.sum())


def loss_converged(history: Sequence[float], tol: float) -> bool:
    """Return True when the loss fell by less than ``tol`` per vote in the last round.

    ``tol = 0`` never stops early, so every round runs. The rule needs two rounds of history,
    and keeps going while the loss still falls by ``tol`` or more.
    """
    return tol > 0 and len(history) >= 2 and history[-2] - history[-1] < tol


GoldInput: TypeAlias = pd.Series | pd.DataFrame | Mapping[Hashable, Hashable] | None
"""Known answers: a Series indexed by item, a mapping item -> label, or item/label columns."""


class EMAggregator(BaseAggregator):
    """Base of the EM models (Dawid-Skene, one-coin, GLAD): shared parameters and checks.

    Fitted state added to :class:`BaseAggregator`'s: ``priors_`` (class prior, a Series),
    ``loss_history_`` (negative log-posterior per vote after each E-step; non-increasing up to
    rounding),
    ``n_iter_`` (E-steps run) and ``converged_`` (whether ``tol`` stopped the loop).
    """

    n_iter: int
    tol: float
    smoothing: float
    prior_weight: float
    classes: Sequence[Hashable] | None
    on_unknown: Literal["reject", "map"]
    label_map: Mapping[Hashable, Hashable] | None

    priors_: pd.Series
    loss_history_: list[float]
    n_iter_: int
    converged_: bool

    def fit(
        self,
        annotations: AnnotationsInput,
        gold: GoldInput = None,
        item_prior: pd.DataFrame | None = None,
    ) -> Self:
        """Fit the model (implemented by each model).

        Args:
            annotations: Columns ``item``, ``annotator``, ``label`` (optional ``created_at``).
            gold: Known answers, clamped in every E-step.
            item_prior: Model pre-label probabilities, item x class.

        Returns:
            self.
        """
        raise NotImplementedError

    def fit_predict(
        self,
        annotations: AnnotationsInput,
        gold: GoldInput = None,
        item_prior: pd.DataFrame | None = None,
    ) -> pd.Series:
        """Fit and return ``labels_``.

        Args:
            annotations: As for :meth:`fit`.
            gold: As for :meth:`fit`.
            item_prior: As for :meth:`fit`.

        Returns:
            The decided label per item (``agg_label``).
        """
        return self.fit(annotations, gold, item_prior).labels_

    def fit_predict_proba(
        self,
        annotations: AnnotationsInput,
        gold: GoldInput = None,
        item_prior: pd.DataFrame | None = None,
    ) -> pd.DataFrame:
        """Fit and return ``probas_``.

        Args:
            annotations: As for :meth:`fit`.
            gold: As for :meth:`fit`.
            item_prior: As for :meth:`fit`.

        Returns:
            Posterior probabilities, item x class.
        """
        return self.fit(annotations, gold, item_prior).probas_

    def _prepare(
        self,
        annotations: AnnotationsInput,
        gold: GoldInput,
        item_prior: pd.DataFrame | None,
    ) -> tuple[EncodedAnnotations, GoldCodes | None, ItemPrior | None]:
        """Validate the parameters and the inputs; encode them."""
        who = type(self).__name__
        check_number(who, "n_iter", self.n_iter, low=1, integer=True)
        check_number(who, "tol", self.tol, low=0)
        check_number(who, "smoothing", self.smoothing, low=0)
        check_number(who, "prior_weight", self.prior_weight, low=0)
        encoded = encode_annotations(
            annotations,
            classes=self.classes,
            on_unknown=self.on_unknown,
            label_map=self.label_map,
            min_annotators=2,
            who=who,
        )
        return encoded, encode_gold(gold, encoded), encode_item_prior(item_prior, encoded)

    def _set_em_state(
        self,
        encoded: EncodedAnnotations,
        probas: np.ndarray,
        priors: np.ndarray,
        history: list[float],
        converged: bool,
    ) -> None:
        """Set the fitted state shared by the EM models from ``(K, n)`` posteriors."""
        self._set_result(encoded, probas)
        self.priors_ = pd.Series(priors, index=encoded.classes.rename("label"), name="prior")
        self.loss_history_ = history
        self.n_iter_ = len(history)
        self.converged_ = converged
