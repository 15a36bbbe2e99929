"""One idempotent, all-or-nothing import of parsed platform answers into a project.

Every format's reader produces a :class:`~geolabel.interop.records.ParsedImport`;
:func:`import_parsed` checks it against the project (every item id known -- an export from
another project is named as such --, every label in the taxonomy of its item's kind) and stores
it in one transaction:

* class labels become rows of the ``annotations`` table (the crowd machinery aggregates them);
* every entity span is an annotation row (label = entity label) whose offsets and text go to
  the ``span_annotations`` table;
* every drawn annotation of an item (one annotator's brush/polygon result) is one annotation
  row labelled with its largest class, and each class region is a row of the
  ``segment_annotations`` GeoPackage layer (polygons in the project CRS, QGIS opens it);
* gold answers go to the ``gold_answers`` table (:func:`gold_answers` reads them back as the
  Series ``geolabel aggregate`` clamps);
* a platform's own consolidated answers (Appen's aggregated report) go to the
  ``reference_labels`` table, apart from the votes (:func:`reference_labels`);
* per-annotator attributes a platform reports (Appen's ``_trust``) are merged into the
  annotator's ``attrs`` JSON (:func:`annotator_attrs` reads them back).

Annotation ids are derived from the content (item, annotator, label, time, and the span or the
geometry), so re-importing a file, or an overlapping later export, adds only what is new. The
side tables are append-only, like the annotations.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import struct
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from shapely.geometry.base import BaseGeometry

from geolabel.errors import AnnotationImportError, LabelError
from geolabel.interop.geometry import geometry_to_mask
from geolabel.interop.records import (
    GoldRecord,
    InteropImportResult,
    LabelRecord,
    ParsedImport,
    ReferenceRecord,
    SegmentRecord,
    SpanRecord,
)
from geolabel.store import Project

__all__ = [
    "GOLD_TABLE",
    "REFERENCE_TABLE",
    "SEGMENT_LAYER",
    "SPAN_TABLE",
    "annotator_attrs",
    "gold_answers",
    "import_parsed",
    "reference_labels",
    "segment_annotations",
    "segment_mask",
    "span_annotations",
]

SPAN_TABLE = "span_annotations"
"""Offsets and text of span annotations (one row per span annotation)."""
SEGMENT_LAYER = "segment_annotations"
"""GeoPackage layer of drawn class regions (one row per annotation and class)."""
GOLD_TABLE = "gold_answers"
"""Known answers brought in from platforms (ground truth, control tasks)."""
REFERENCE_TABLE = "reference_labels"
"""Platforms' own consolidated answers (Appen's aggregated report), kept apart from votes."""

_PREVIEW = 5


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _sha(*parts: object) -> str:
    text = json.dumps(list(parts), sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _preview(values: Iterable[str]) -> str:
    items = list(values)
    shown = ", ".join(repr(v) for v in items[:_PREVIEW])
    return shown + (f" and {len(items) - _PREVIEW} more" if len(items) > _PREVIEW else "")


def _fail(parsed: ParsedImport, problem: str) -> AnnotationImportError:
    return AnnotationImportError(
        f"Import of {parsed.path} ({parsed.source}) failed and nothing from it was stored: "
        f"{problem}"
    )


# ------------------------------------------------------------------------------ side tables


def _register(con: sqlite3.Connection, table: str, kind: str, description: str, srs: int) -> None:
    con.execute(
        "INSERT INTO gpkg_contents (table_name, data_type, identifier, description, "
        "last_change, srs_id) VALUES (?, ?, ?, ?, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), ?)",
        (table, kind, table, description, srs),
    )


def _append_only(con: sqlite3.Connection, table: str) -> None:
    for op, verb in (("UPDATE", "updated"), ("DELETE", "deleted")):
        con.execute(
            f'CREATE TRIGGER "{table}_append_only_{op.lower()}" BEFORE {op} ON "{table}" '
            f"BEGIN SELECT RAISE(ABORT, 'geolabel: {table} is append-only; rows cannot be "
            f"{verb} (add a new row instead)'); END"
        )


def _exists(con: sqlite3.Connection, table: str) -> bool:
    row = con.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
    ).fetchone()
    return row is not None


def _project_srs(con: sqlite3.Connection) -> int:
    """srs_id of the project CRS in the GeoPackage (that of the parcels layer)."""
    row = con.execute(
        "SELECT srs_id FROM gpkg_geometry_columns ORDER BY table_name = 'parcels' DESC LIMIT 1"
    ).fetchone()
    if row is None:
        raise AnnotationImportError(
            "The project has no spatial layer, so drawn regions cannot be georeferenced."
        )
    return int(row[0])


def _ensure_tables(con: sqlite3.Connection) -> int:
    """Create the side tables on first use; return the project's srs_id (or -1 if none)."""
    if not _exists(con, SPAN_TABLE):
        con.execute(
            f"""CREATE TABLE {SPAN_TABLE} (
                fid INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
                annotation_id TEXT NOT NULL UNIQUE REFERENCES annotations (annotation_id),
                item_id TEXT NOT NULL REFERENCES items (item_id),
                annotator_id TEXT NOT NULL,
                span_start INTEGER NOT NULL CHECK (span_start >= 0),
                span_end INTEGER NOT NULL CHECK (span_end > span_start),
                label TEXT NOT NULL,
                text TEXT NOT NULL
            )"""
        )
        _append_only(con, SPAN_TABLE)
        _register(con, SPAN_TABLE, "attributes", "geolabel span annotations (append-only)", 0)
    if not _exists(con, GOLD_TABLE):
        con.execute(
            f"""CREATE TABLE {GOLD_TABLE} (
                fid INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
                item_id TEXT NOT NULL REFERENCES items (item_id),
                label TEXT NOT NULL,
                source TEXT NOT NULL,
                path TEXT,
                created_at TEXT NOT NULL,
                UNIQUE (item_id, label, source)
            )"""
        )
        _append_only(con, GOLD_TABLE)
        _register(con, GOLD_TABLE, "attributes", "geolabel gold answers (append-only)", 0)
    if not _exists(con, REFERENCE_TABLE):
        con.execute(
            f"""CREATE TABLE {REFERENCE_TABLE} (
                fid INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
                reference_id TEXT NOT NULL UNIQUE,
                item_id TEXT NOT NULL REFERENCES items (item_id),
                label TEXT NOT NULL,
                confidence REAL CHECK (confidence IS NULL OR confidence BETWEEN 0 AND 1),
                source TEXT NOT NULL,
                path TEXT,
                created_at TEXT NOT NULL
            )"""
        )
        _append_only(con, REFERENCE_TABLE)
        _register(
            con,
            REFERENCE_TABLE,
            "attributes",
            "platforms' consolidated answers, apart from the votes (append-only)",
            0,
        )
    has_layers = con.execute("SELECT COUNT(*) FROM gpkg_geometry_columns").fetchone()[0] > 0
    if not has_layers:
        return -1
    srs = _project_srs(con)
    if not _exists(con, SEGMENT_LAYER):
        con.execute(
            f"""CREATE TABLE {SEGMENT_LAYER} (
                fid INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
                geom MULTIPOLYGON,
                segment_id TEXT NOT NULL UNIQUE,
                annotation_id TEXT NOT NULL REFERENCES annotations (annotation_id),
                item_id TEXT NOT NULL REFERENCES items (item_id),
                annotator_id TEXT NOT NULL,
                label TEXT NOT NULL,
                shape TEXT NOT NULL,
                area REAL NOT NULL
            )"""
        )
        _register(con, SEGMENT_LAYER, "features", "geolabel drawn regions per annotation", srs)
        con.execute(
            "INSERT INTO gpkg_geometry_columns (table_name, column_name, geometry_type_name, "
            "srs_id, z, m) VALUES (?, 'geom', 'MULTIPOLYGON', ?, 0, 0)",
            (SEGMENT_LAYER, srs),
        )
        _append_only(con, SEGMENT_LAYER)
    return srs


def _gpkg_blob(geometry: BaseGeometry, srs: int) -> bytes:
    """A GeoPackage geometry blob: 'GP', version 0, flags (xy envelope, little endian), srs."""
    multi = geometry
    if geometry.geom_type == "Polygon":
        multi = shapely.MultiPolygon([geometry])
    minx, miny, maxx, maxy = multi.bounds
    header = struct.pack("<2sBBi4d", b"GP", 0, 0b0000_0011, srs, minx, maxx, miny, maxy)
    return header + shapely.to_wkb(multi, byte_order=1)


# ------------------------------------------------------------------------------ validation


def _item_kinds(project: Project, items: Iterable[str]) -> dict[str, str]:
    stored = project.items()
    kinds = dict(zip(stored["item"].astype(str), stored["kind"].astype(str), strict=True))
    return {i: kinds[i] for i in set(items) if i in kinds}


def _check(parsed: ParsedImport, project: Project, taxonomy_files: dict[str, str]) -> None:
    """Every item known and every label allowed for its item's kind, or one clear error."""
    from geolabel.interop.tasks import kind_taxonomy

    records: list[LabelRecord | SpanRecord | SegmentRecord | GoldRecord | ReferenceRecord] = [
        *parsed.labels,
        *parsed.spans,
        *parsed.segments,
        *parsed.gold,
        *parsed.references,
    ]
    where: dict[str, str] = {}
    for record in records:
        where.setdefault(record.item, record.where)
    kinds = _item_kinds(project, where)
    unknown = sorted(set(where) - set(kinds))
    if unknown:
        first = unknown[0]
        raise _fail(
            parsed,
            f"{len(unknown)} item id(s) are not in project {project.path} "
            f"({project.name!r}): {_preview(unknown)} (first at {where[first]}). Is this an "
            "export of another project? Export tasks from this project with `geolabel export` "
            "and import the answers to them.",
        )
    allowed: dict[str, tuple[str, ...]] = {}
    bad: Counter[tuple[str, str, str]] = Counter()
    first_where: dict[tuple[str, str, str], str] = {}
    for record in records:
        kind = kinds[record.item]
        if kind not in allowed:
            allowed[kind] = kind_taxonomy(project, kind, taxonomy_files.get(kind))[1]
        if record.label not in allowed[kind]:
            key = (kind, record.label, record.item)
            bad[key] += 1
            first_where.setdefault(key, record.where)
    if bad:
        parts = [
            f"{label!r} on {kind} {item!r} ({first_where[(kind, label, item)]})"
            for (kind, label, item) in list(bad)[:_PREVIEW]
        ]
        labels = sorted({label for _, label, _ in bad})
        allowed_text = "; ".join(f"{k}: {', '.join(v)}" for k, v in sorted(allowed.items()))
        raise _fail(
            parsed,
            f"{sum(bad.values())} answer(s) use label(s) not in the taxonomy: {_preview(labels)} "
            f"-- {', '.join(parts)}. Allowed: {allowed_text}. Fix the labeling config or remap "
            "the labels to the current taxonomy version first.",
        )


# ------------------------------------------------------------------------------ rows


def _label_rows(parsed: ParsedImport) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for r in parsed.labels:
        rows.append(
            {
                "annotation_id": _sha("label", r.item, r.annotator, r.label, r.created_at),
                "item": r.item,
                "annotator": r.annotator,
                "label": r.label,
                "created_at": r.created_at,
                "seconds": r.seconds,
                "_kind": r.annotator_kind,
            }
        )
    return rows


def _span_rows(parsed: ParsedImport) -> tuple[list[dict[str, object]], list[tuple[object, ...]]]:
    rows: list[dict[str, object]] = []
    details: list[tuple[object, ...]] = []
    for s in parsed.spans:
        aid = _sha("span", s.item, s.annotator, s.start, s.end, s.label, s.created_at)
        rows.append(
            {
                "annotation_id": aid,
                "item": s.item,
                "annotator": s.annotator,
                "label": s.label,
                "created_at": s.created_at,
                "seconds": s.seconds,
                "_kind": "crowd",
            }
        )
        details.append((aid, s.item, s.annotator, s.start, s.end, s.label, s.text))
    return rows, details


def _segment_rows(
    segments: Sequence[SegmentRecord],
) -> tuple[list[dict[str, object]], list[tuple[str, str, SegmentRecord]]]:
    """One annotation row per (item, annotator, time) drawing, labelled with its largest class."""
    groups: dict[tuple[str, str, str | None], list[SegmentRecord]] = defaultdict(list)
    for s in segments:
        groups[(s.item, s.annotator, s.created_at)].append(s)
    rows: list[dict[str, object]] = []
    details: list[tuple[str, str, SegmentRecord]] = []
    for (item, annotator, created_at), parts in groups.items():
        area: Counter[str] = Counter()
        for s in parts:
            area[s.label] += s.geometry.area
        ordered = sorted(parts, key=lambda s: (s.label, s.shape, shapely.to_wkb(s.geometry)))
        aid = _sha(
            "segments",
            item,
            annotator,
            created_at,
            [
                (s.label, s.shape, hashlib.sha256(shapely.to_wkb(s.geometry)).hexdigest())
                for s in ordered
            ],
        )
        top = sorted(area.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
        rows.append(
            {
                "annotation_id": aid,
                "item": item,
                "annotator": annotator,
                "label": top,
                "created_at": created_at,
                "seconds": parts[0].seconds,
                "_kind": parts[0].annotator_kind,
            }
        )
        for k, s in enumerate(ordered):
            details.append((aid, f"{aid[:40]}-{k}", s))
    return rows, details


def import_parsed(
    project: Project,
    parsed: ParsedImport,
    *,
    taxonomy_files: dict[str, str] | None = None,
) -> InteropImportResult:
    """Store parsed platform answers in one transaction (see the module docstring).

    Args:
        project: The project (open).
        parsed: What a format reader produced.
        taxonomy_files: POI or notice taxonomy YAML by item kind, stored on first use.

    Returns:
        What was stored.

    Raises:
        AnnotationImportError: Unknown items (named), labels outside the taxonomy (named with
            where they are), or the store refused the rows; nothing is stored.
    """
    _check(parsed, project, dict(taxonomy_files or {}))
    label_rows = _label_rows(parsed)
    span_rows, span_details = _span_rows(parsed)
    segment_rows, segment_details = _segment_rows(parsed.segments)
    rows = [*label_rows, *span_rows, *segment_rows]
    import_id: str | None = None
    n_added = 0
    already = False
    frame = pd.DataFrame(
        rows, columns=["annotation_id", "item", "annotator", "label", "created_at", "seconds"]
    )
    now = _now()
    try:
        with project.transaction() as con:
            srs = _ensure_tables(con)
            if rows:
                kinds = pd.DataFrame(
                    {
                        "annotator": [r["annotator"] for r in rows],
                        "kind": [r["_kind"] for r in rows],
                    }
                ).drop_duplicates("annotator")
                project.add_annotators(kinds)
                result = project.add_annotations(frame, source=parsed.source)
                import_id, n_added, already = (
                    result.import_id,
                    result.n_added,
                    result.already_imported,
                )
            con.executemany(
                f"INSERT OR IGNORE INTO {SPAN_TABLE} (annotation_id, item_id, annotator_id, "
                "span_start, span_end, label, text) VALUES (?, ?, ?, ?, ?, ?, ?)",
                span_details,
            )
            if segment_details:
                if srs < 0:
                    raise _fail(parsed, "the project has no spatial layer for drawn regions.")
                con.executemany(
                    f"INSERT OR IGNORE INTO {SEGMENT_LAYER} (geom, segment_id, annotation_id, "
                    "item_id, annotator_id, label, shape, area) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            _gpkg_blob(s.geometry, srs),
                            sid,
                            aid,
                            s.item,
                            s.annotator,
                            s.label,
                            s.shape,
                            float(s.geometry.area),
                        )
                        for aid, sid, s in segment_details
                    ],
                )
            cursor = con.executemany(
                f"INSERT OR IGNORE INTO {GOLD_TABLE} (item_id, label, source, path, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                [(g.item, g.label, parsed.source, parsed.path, now) for g in parsed.gold],
            )
            new_gold = max(cursor.rowcount, 0)
            cursor = con.executemany(
                f"INSERT OR IGNORE INTO {REFERENCE_TABLE} (reference_id, item_id, label, "
                "confidence, source, path, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        _sha("reference", r.item, r.label, r.confidence, parsed.source),
                        r.item,
                        r.label,
                        r.confidence,
                        parsed.source,
                        parsed.path,
                        now,
                    )
                    for r in parsed.references
                ],
            )
            new_refs = max(cursor.rowcount, 0)
            _merge_attrs(con, parsed.annotator_attrs)
            if not rows:
                already = bool(parsed.gold or parsed.references) and new_gold + new_refs == 0
    except AnnotationImportError:
        raise
    except LabelError as exc:  # pragma: no cover - labels were checked above
        raise _fail(parsed, str(exc)) from exc
    return InteropImportResult(
        source=parsed.source,
        path=parsed.path,
        import_id=import_id,
        n_labels=len(parsed.labels),
        n_spans=len(parsed.spans),
        n_segments=len(parsed.segments),
        n_gold=len(parsed.gold),
        n_added=n_added,
        n_duplicates=len(rows) - n_added,
        n_skipped=dict(parsed.n_skipped),
        already_imported=already,
        n_references=len(parsed.references),
    )


def _merge_attrs(con: sqlite3.Connection, attrs: dict[str, dict[str, object]]) -> None:
    """Merge attributes into stored annotators' ``attrs`` (unchanged rows are not written)."""
    for annotator, values in sorted(attrs.items()):
        patch = json.dumps(values, sort_keys=True)
        con.execute(
            "UPDATE annotators SET attrs = json_patch(attrs, ?1) "
            "WHERE annotator_id = ?2 AND json_patch(attrs, ?1) IS NOT attrs",
            (patch, annotator),
        )


# ------------------------------------------------------------------------------ reading back


def _table_frame(project: Project, sql: str, table: str, columns: Sequence[str]) -> pd.DataFrame:
    with project.transaction() as con:
        if not _exists(con, table):
            return pd.DataFrame(columns=list(columns))
        rows = con.execute(sql).fetchall()
    return pd.DataFrame.from_records(rows, columns=list(columns))


def gold_answers(project: Project, source: str | None = None) -> pd.Series:
    """Gold answers imported from platforms, as ``item -> label`` (latest per item).

    Args:
        project: The project.
        source: Only answers from this format.

    Returns:
        The Series ``geolabel.crowd.consensus.aggregate_project(gold=...)`` takes.
    """
    frame = _table_frame(
        project,
        f"SELECT item_id, label, source FROM {GOLD_TABLE} ORDER BY fid",
        GOLD_TABLE,
        ("item", "label", "source"),
    )
    if source is not None:
        frame = frame[frame["source"] == source]
    frame = frame.drop_duplicates("item", keep="last")
    return pd.Series(frame["label"].to_numpy(), index=frame["item"].astype(str), name="label")


def reference_labels(project: Project, source: str | None = None) -> pd.DataFrame:
    """Platforms' consolidated answers (latest per item and source).

    Args:
        project: The project.
        source: Only answers from this format (``appen``...).

    Returns:
        Columns ``item``, ``label``, ``confidence``, ``source``.
    """
    frame = _table_frame(
        project,
        f"SELECT item_id, label, confidence, source FROM {REFERENCE_TABLE} ORDER BY fid",
        REFERENCE_TABLE,
        ("item", "label", "confidence", "source"),
    )
    if source is not None:
        frame = frame[frame["source"] == source]
    return frame.drop_duplicates(["item", "source"], keep="last").reset_index(drop=True)


def annotator_attrs(project: Project, key: str) -> pd.Series:
    """One attribute of every annotator that has it (a platform's trust score...).

    Args:
        project: The project.
        key: The ``attrs`` key (``appen_trust``...).

    Returns:
        ``annotator -> value``, named ``key``.
    """
    frame = project.annotators()
    values = {
        str(a): attrs[key]
        for a, attrs in zip(frame["annotator"], frame["attrs"], strict=True)
        if isinstance(attrs, dict) and key in attrs
    }
    return pd.Series(values, name=key, dtype=object if not values else None)


def span_annotations(project: Project) -> pd.DataFrame:
    """Span annotations in the columns of :class:`geolabel.text.crowd.SpanVote`.

    Returns:
        Columns ``item``, ``annotator``, ``start``, ``end``, ``label``, ``text``,
        ``annotation_id``.
    """
    return _table_frame(
        project,
        f"SELECT item_id, annotator_id, span_start, span_end, label, text, annotation_id "
        f"FROM {SPAN_TABLE} ORDER BY fid",
        SPAN_TABLE,
        ("item", "annotator", "start", "end", "label", "text", "annotation_id"),
    )


def segment_annotations(project: Project, item: str | None = None) -> gpd.GeoDataFrame:
    """Drawn regions (project CRS), one row per annotation and class.

    Args:
        project: The project.
        item: Only this item's regions.

    Returns:
        Columns ``segment_id``, ``annotation_id``, ``item``, ``annotator``, ``label``,
        ``shape``, ``area``, ``geometry``.
    """
    names = {i.name for i in project.layers()}
    columns = ["segment_id", "annotation_id", "item", "annotator", "label", "shape", "area"]
    if SEGMENT_LAYER not in names:
        return gpd.GeoDataFrame(
            columns=[*columns, "geometry"], geometry="geometry", crs=project.crs
        )
    where = None if item is None else f"item_id = '{item.replace(chr(39), chr(39) * 2)}'"
    gdf = pyogrio.read_dataframe(project.path, layer=SEGMENT_LAYER, where=where)
    return gdf.rename(columns={"item_id": "item", "annotator_id": "annotator"})[
        [*columns, "geometry"]
    ]


def segment_mask(
    regions: gpd.GeoDataFrame,
    transform: object,
    shape_hw: tuple[int, int],
    codes: dict[str, int],
) -> np.ndarray:
    """Burn drawn regions into a class-code mask on a grid (0 where nothing is drawn).

    Args:
        regions: Rows of :func:`segment_annotations` (one annotator's, usually).
        transform: Pixel -> CRS transform of the grid (an :class:`affine.Affine`).
        shape_hw: ``(height, width)``.
        codes: Class id -> code (``Taxonomy.codes``).

    Returns:
        ``uint8`` mask of class codes; later rows win where regions overlap.
    """
    out = np.zeros(shape_hw, dtype=np.uint8)
    for label, geometry in zip(regions["label"], regions.geometry, strict=True):
        out[geometry_to_mask(geometry, transform, shape_hw)] = codes[str(label)]  # type: ignore[arg-type]
    return out
