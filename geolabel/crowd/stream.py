"""Stream a project's annotations in chunks and encode them without a frame of every vote.

The EM aggregators need every vote at once, but only as integers: item, annotator and class
codes (:class:`~geolabel.crowd.base.EncodedAnnotations`). :func:`read_encoded_annotations`
reads the ``annotations`` table in chunks of ``chunksize`` rows (SQLite cursor, in insertion
order) and keeps, per vote, three ``int32`` codes and an ``int64`` timestamp: 20 bytes instead
of the nine Python-object cells (several hundred bytes) of :meth:`Project.annotations`. Ids
are interned once each in dictionaries.

The result is the same as :func:`~geolabel.crowd.base.encode_annotations` on the whole
frame: codes in sorted order of the ids, votes sorted by item then annotator, and of
duplicate ``(item, annotator)`` votes the latest by ``created_at`` (then insertion order)
kept. The annotation ids behind the kept votes, which consensus rows record as provenance,
are read in a second streamed pass (:func:`vote_ids`).
"""

from __future__ import annotations

import itertools
import sqlite3
import warnings
from collections.abc import Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from geolabel.crowd.base import EncodedAnnotations, _encode_labels, _preview
from geolabel.errors import AggregationError, AggregationWarning, ColumnError, StoreError
from geolabel.store import ITEM_KINDS, Project

__all__ = [
    "ANNOTATION_COLUMNS",
    "DEFAULT_CHUNKSIZE",
    "StreamedAnnotations",
    "iter_annotations",
    "read_encoded_annotations",
    "vote_ids",
]

DEFAULT_CHUNKSIZE = 200_000
"""Rows per chunk: about 50 MB of Python objects at a time."""

ANNOTATION_COLUMNS: dict[str, str] = {
    "annotation_id": "a.annotation_id",
    "item": "a.item_id",
    "annotator": "a.annotator_id",
    "label": "a.label",
    "created_at": "a.created_at",
    "seconds": "a.seconds",
    "source": "a.source",
    "import_id": "a.import_id",
    "kind": "i.kind",
}
"""Columns :func:`iter_annotations` can give (those of :meth:`Project.annotations`) -> SQL."""


def iter_annotations(
    project: Project,
    *,
    kind: str | None = None,
    chunksize: int = DEFAULT_CHUNKSIZE,
    columns: Sequence[str] = tuple(ANNOTATION_COLUMNS),
) -> Iterator[pd.DataFrame]:
    """Read a project's annotations in chunks, in insertion order.

    The chunks put together are :meth:`Project.annotations` (restricted to ``columns``); a
    read-only connection of its own reads them, so the project may be written meanwhile
    (SQLite gives the reader a consistent snapshot).

    Args:
        project: An open project.
        kind: Only annotations of items of this kind.
        chunksize: Rows per chunk (at least 1).
        columns: Columns to read (see :data:`ANNOTATION_COLUMNS`).

    Yields:
        Frames of at most ``chunksize`` rows.

    Raises:
        StoreError: Unknown kind, a chunksize below 1, or an unknown column.
    """
    if kind is not None and kind not in ITEM_KINDS:
        raise StoreError(f"Unknown item kind {kind!r}; kinds: {', '.join(ITEM_KINDS)}.")
    if int(chunksize) < 1:
        raise StoreError(f"chunksize must be at least 1, got {chunksize}.")
    unknown = [c for c in columns if c not in ANNOTATION_COLUMNS]
    if unknown:
        raise StoreError(
            f"Unknown annotation column(s) {_preview(unknown)}; columns: "
            f"{', '.join(ANNOTATION_COLUMNS)}."
        )
    select = ", ".join(ANNOTATION_COLUMNS[c] for c in columns)
    con = sqlite3.connect(f"file:{project.path}?mode=ro", uri=True)
    try:
        cursor = con.execute(
            f"SELECT {select} FROM annotations a JOIN items i ON i.item_id = a.item_id "
            "WHERE ?1 IS NULL OR i.kind = ?1 ORDER BY a.fid",
            (kind,),
        )
        while rows := cursor.fetchmany(int(chunksize)):
            yield pd.DataFrame.from_records(rows, columns=list(columns))
    finally:
        con.close()


@dataclass(frozen=True, slots=True)
class StreamedAnnotations:
    """Encoded votes of a project, with what the consensus needs beside them.

    Attributes:
        encoded: The votes as codes (``rows``: positions in the project's annotations of that
            kind, in insertion order).
        stamps: ``created_at`` of every vote read (``int64`` ns; the oldest possible for
            none), indexed by row position.
    """

    encoded: EncodedAnnotations
    stamps: np.ndarray


def _intern(values: pd.Series, table: dict[str, int]) -> np.ndarray:
    """Codes of ``values`` in ``table`` (ids get the next code when first seen)."""
    local, uniques = pd.factorize(values, sort=False)
    codes = np.fromiter(
        (table.setdefault(u, len(table)) for u in uniques), dtype=np.int32, count=len(uniques)
    )
    return codes[local]


def _sorted_codes(codes: np.ndarray, table: dict[str, int]) -> tuple[np.ndarray, pd.Index]:
    """Recode first-seen codes to the sorted order of the ids (as ``pd.factorize(sort=True)``)."""
    names = np.array(list(table), dtype=object)
    order = np.argsort(names, kind="stable")
    rank = np.empty(len(order), dtype=np.int32)
    rank[order] = np.arange(len(order), dtype=np.int32)
    return rank[codes], pd.Index(names[order])


def read_encoded_annotations(
    project: Project,
    *,
    kind: str | None = "parcel",
    classes: Sequence[Hashable] | None = None,
    on_unknown: Literal["reject", "map"] = "reject",
    label_map: Mapping[Hashable, Hashable] | None = None,
    chunksize: int = DEFAULT_CHUNKSIZE,
) -> StreamedAnnotations:
    """Encode a project's annotations chunk by chunk (see the module docstring).

    Args:
        project: An open project.
        kind: Only annotations of items of this kind (None: all).
        classes: The taxonomy's classes (column order of the posteriors); None: the sorted
            labels seen.
        on_unknown: ``reject`` refuses labels outside ``classes``; ``map`` maps them through
            ``label_map``.
        label_map: Old label -> class.
        chunksize: Rows per chunk.

    Returns:
        The encoded votes (pass ``.encoded`` to any aggregator's ``fit``) and their times.

    Raises:
        AggregationError: No annotations.
        LabelError: Labels outside ``classes`` (listed with counts, for the chunk where they
            were met), or a bad ``label_map``.
        ColumnError: A ``created_at`` that is not a timestamp.
        StoreError: Unknown kind or a bad chunksize.

    Warns:
        AggregationWarning: Duplicate ``(item, annotator)`` votes were dropped.
    """
    items: dict[str, int] = {}
    annotators: dict[str, int] = {}
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    class_index: pd.Index | None = pd.Index(list(classes)) if classes is not None else None
    seen_labels: dict[str, int] = {}
    n_mapped = 0
    offset = 0
    for chunk in iter_annotations(
        project,
        kind=kind,
        chunksize=chunksize,
        columns=("item", "annotator", "label", "created_at"),
    ):
        if classes is None:
            label_codes = _intern(chunk["label"], seen_labels)
        else:
            label_codes, class_index, mapped = _encode_labels(
                chunk["label"], classes, on_unknown, label_map
            )
            n_mapped += mapped
        times = pd.to_datetime(chunk["created_at"], utc=True, errors="coerce", format="mixed")
        bad = times.isna().to_numpy() & chunk["created_at"].notna().to_numpy()
        if bad.any():
            where = np.flatnonzero(bad) + offset
            raise ColumnError(
                f"annotations of {project.path}: created_at of {where.size} row(s) is not a "
                f"timestamp (row positions {_preview(where.tolist())}); the store should only "
                "hold ISO-8601 times."
            )
        stamp = times.to_numpy(dtype="datetime64[ns]").astype(np.int64)
        stamp[times.isna().to_numpy()] = np.iinfo(np.int64).min
        parts.append(
            (
                _intern(chunk["item"], items),
                _intern(chunk["annotator"], annotators),
                label_codes.astype(np.int32, copy=False),
                stamp,
            )
        )
        offset += len(chunk)
    if offset == 0:
        raise AggregationError(
            f"No annotations to aggregate in {project.path}"
            + (f" for items of kind {kind!r}" if kind else "")
            + ". Import annotations first (geolabel import PROJECT votes.csv)."
        )
    item_codes, item_index = _sorted_codes(np.concatenate([p[0] for p in parts]), items)
    annotator_codes, annotator_index = _sorted_codes(
        np.concatenate([p[1] for p in parts]), annotators
    )
    labels = np.concatenate([p[2] for p in parts])
    stamps = np.concatenate([p[3] for p in parts])
    del parts
    if classes is None:
        labels, class_index = _sorted_codes(labels, seen_labels)
    assert class_index is not None
    key = item_codes.astype(np.int64) * max(len(annotator_index), 1) + annotator_codes
    rows = np.arange(len(key))
    order = np.lexsort((rows, stamps, key))
    sorted_key = key[order]
    keep = np.ones(len(order), dtype=bool)
    keep[:-1] = sorted_key[1:] != sorted_key[:-1]
    n_duplicates = int(np.count_nonzero(~keep))
    if n_duplicates:
        example = order[np.flatnonzero(~keep)[0]]
        warnings.warn(
            f"{n_duplicates} duplicate vote(s): {int(np.unique(sorted_key[~keep]).size)} "
            f"(item, annotator) pair(s) voted more than once, e.g. item "
            f"{item_index[item_codes[example]]!r} by annotator "
            f"{annotator_index[annotator_codes[example]]!r}. Kept the latest vote of each "
            f"pair by created_at; {n_duplicates} vote(s) dropped.",
            AggregationWarning,
            stacklevel=2,
        )
    order = order[keep]
    del key, sorted_key, keep
    if len(rows) < 2**31:
        order = order.astype(np.int32)
    encoded = EncodedAnnotations(
        item=item_codes[order],
        annotator=annotator_codes[order],
        label=labels[order],
        items=item_index,
        annotators=annotator_index,
        classes=class_index,
        rows=order,
        n_duplicates=n_duplicates,
        n_mapped=n_mapped,
    )
    return StreamedAnnotations(encoded=encoded, stamps=stamps)


def vote_ids(
    project: Project,
    streamed: StreamedAnnotations,
    *,
    kind: str | None = "parcel",
    chunksize: int = DEFAULT_CHUNKSIZE,
) -> list[list[str]]:
    """Annotation ids of the kept votes of each item, in a second streamed pass.

    Within an item the ids are ordered by ``created_at``, then insertion order.

    Args:
        project: The project the votes were read from (unchanged since).
        streamed: What :func:`read_encoded_annotations` returned (same ``kind``).
        kind: The kind passed to :func:`read_encoded_annotations`.
        chunksize: Rows per chunk.

    Returns:
        One list per item code (``streamed.encoded.items`` order).

    Raises:
        StoreError: The annotations changed in between (rows were added).
    """
    enc = streamed.encoded
    n_rows = len(streamed.stamps)
    position = np.full(n_rows, -1, dtype=np.int64)
    by_time = np.lexsort((enc.rows, streamed.stamps[enc.rows], enc.item))
    position[enc.rows[by_time]] = np.arange(len(by_time))
    ids = np.empty(len(by_time), dtype=object)
    offset = 0
    for chunk in iter_annotations(
        project, kind=kind, chunksize=chunksize, columns=("annotation_id",)
    ):
        if offset + len(chunk) > n_rows:
            raise StoreError(
                f"Annotations were added to {project.path} while aggregating; run it again."
            )
        where = position[offset : offset + len(chunk)]
        kept = where >= 0
        ids[where[kept]] = chunk["annotation_id"].to_numpy()[kept]
        offset += len(chunk)
    bounds = np.searchsorted(enc.item[by_time], np.arange(enc.n_items + 1))
    return [list(ids[a:b]) for a, b in itertools.pairwise(bounds)]
