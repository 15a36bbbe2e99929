"""The project store: one GeoPackage file holding spatial layers and append-only label tables.

A geolabel project is a single GeoPackage (SQLite underneath) that opens in QGIS and with
``pyogrio.list_layers``. It holds two kinds of content:

* **spatial layers** (``scenes``, ``tiles``, ``parcels``, ``pois``, ``regions``…), written and read
  with pyogrio (GDAL's GPKG driver, with a spatial index), always in the project CRS;
* **plain tables**, created with the stdlib :mod:`sqlite3` and registered in ``gpkg_contents``
  with ``data_type='attributes'`` so GIS tools list them too.

Every plain table starts with ``fid INTEGER PRIMARY KEY AUTOINCREMENT`` (the GeoPackage spec
asks attribute tables for one, and GDAL/QGIS use it as the feature id); the natural key of a
table (``item_id``, ``annotation_id``…) is a ``UNIQUE NOT NULL`` column next to it.

========================  =====================================================================
table                     columns (besides ``fid``)
========================  =====================================================================
``meta``                  key (unique), value: schema_version, name, crs, created_at,
                          geolabel_version; settings added with ``set_meta`` (``tiling``,
                          ``band_stats``: JSON)
``items``                 item_id (unique), kind (parcel|poi|tile|notice), ref, created_at
``annotators``            annotator_id (unique), kind, created_at, attrs (JSON object)
``rounds``                round_id (the integer primary key), started_at, finished_at, status
                          (running|finished|failed|cancelled), config (JSON object)
``tasks``                 task_id (unique), item_id, annotator_id, round_id, is_gold, position,
                          created_at
``imports``               import_id (unique), source, path, sha256 (unique), n_rows, n_added,
                          created_at
``annotations``           annotation_id (unique), item_id, annotator_id, label, created_at,
                          seconds, source, import_id
``notices``               notice_id (unique), text, attrs (JSON object: the notice's other
                          fields), created_at
``notice_links``          notice_id, item_id (a parcel), method, confidence, entity_start,
                          entity_end, entity_label, entity_text, kind, date_start, date_end,
                          model_version, created_at; unique (notice_id, item_id, entity_start,
                          entity_end, model_version). Created on first use by
                          ``add_notice_links`` (geolabel.text); append-only
``audits``                audit_id (unique), item_id, stratum, label (the label checked),
                          audited_label, auditor_id, correct (0/1), round_id, created_at.
                          Created on first use by ``add_audits`` (geolabel.loop.audit);
                          append-only
``taxonomy_versions``     name, version, sha256, yaml, created_at; unique (name, version)
``predictions``           item_id, model_version, label, confidence, probas (JSON object),
                          taxonomy_name, taxonomy_version, created_at; unique (item_id,
                          model_version)
``reviews``               review_id (unique), item_id, reviewer_id, label, previous_label, note,
                          taxonomy_name, taxonomy_version, created_at
``consensus``             item_id, label, confidence, method, round_id, model_version,
                          taxonomy_name, taxonomy_version, review_id, votes (JSON list of
                          annotation ids), created_at
========================  =====================================================================

``annotations``, ``imports``, ``notices``, ``consensus``, ``reviews``, ``predictions`` and
``taxonomy_versions`` are append-only: ``BEFORE UPDATE``/``BEFORE DELETE`` triggers abort any
change, whichever program attempts it. A round's record is frozen once it is finished.
``consensus`` is a history: the current label of an item is its latest row.

DataFrames going in and out use the crowd convention of the rest of geolabel: the item column is
``item`` and the annotator column is ``annotator`` (``item_id``/``annotator_id`` are the SQL
names). All timestamps are ISO-8601 UTC strings with microseconds
(``2024-05-01T09:30:00.000000+00:00``); naive input timestamps are taken to be UTC.

Example:
    >>> project = Project.create("city.gpkg", crs="EPSG:32633")  # doctest: +SKIP
    >>> project.write_layer(parcels, "parcels")  # doctest: +SKIP
    >>> project.add_items(parcels_items, kind="parcel")  # doctest: +SKIP
    >>> project.import_annotations_csv("votes.csv", allowed_labels=classes)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import sqlite3
import uuid
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pyogrio.errors
from pyproj import CRS
from pyproj.exceptions import CRSError

from geolabel import __version__
from geolabel.errors import (
    AnnotationImportError,
    ColumnError,
    CRSMismatchError,
    GeometryError,
    InputFileError,
    LabelError,
    LayerError,
    ProjectExistsError,
    ProjectNotFoundError,
    StoreError,
)

if TYPE_CHECKING:
    from geolabel.taxonomy import Taxonomy

__all__ = [
    "APPEND_ONLY_TABLES",
    "DEFAULT_TAXONOMY",
    "ITEM_KINDS",
    "SCHEMA_VERSION",
    "SPATIAL_LAYERS",
    "TABLES",
    "ImportResult",
    "LayerInfo",
    "Project",
    "ProjectSummary",
    "annotation_id_for",
    "ensure_table",
]

SCHEMA_VERSION = 1
"""Version of the table layout; :meth:`Project.open` refuses files written by a newer one."""

ITEM_KINDS: tuple[str, ...] = ("parcel", "poi", "tile", "notice")
"""What an item can be; the crowd machinery does not care, reports and maps do."""

SPATIAL_LAYERS: tuple[str, ...] = ("scenes", "tiles", "parcels", "pois", "regions")
"""Conventional names of the spatial layers (any other valid name may be used too)."""

DEFAULT_TAXONOMY = "land_use"
"""Taxonomy name used when none is given."""

TABLES: tuple[str, ...] = (
    "meta",
    "items",
    "annotators",
    "rounds",
    "tasks",
    "imports",
    "annotations",
    "notices",
    "taxonomy_versions",
    "predictions",
    "reviews",
    "consensus",
)
"""The plain tables of a project, in creation order (their names are reserved)."""

APPEND_ONLY_TABLES: tuple[str, ...] = (
    "imports",
    "annotations",
    "notices",
    "taxonomy_versions",
    "predictions",
    "reviews",
    "consensus",
)
"""Tables whose rows can never be updated or deleted (enforced by SQLite triggers)."""

_ROUND_STATUSES = ("running", "finished", "failed", "cancelled")
_BUSY_TIMEOUT_MS = 30_000
_GPKG_APPLICATION_ID = 0x47504B47  # "GPKG"
_SQLITE_HEADER = b"SQLite format 3\x00"
_LAYER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_META_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,127}$")
_CORE_META_KEYS = ("schema_version", "name", "crs", "created_at", "geolabel_version")
_RESERVED_PREFIXES = ("gpkg_", "rtree_", "sqlite_")
_MAX_SQL_VARS = 500
_PREVIEW = 5

_DESCRIPTIONS: dict[str, str] = {
    "meta": "geolabel project metadata (key/value)",
    "items": "geolabel items: anything that gets one label (parcel, poi, tile, notice)",
    "annotators": "geolabel annotators (crowd workers, experts, models, simulators)",
    "rounds": "geolabel labeling rounds",
    "tasks": "geolabel tasks: which item goes to which annotator in which round",
    "imports": "geolabel annotation imports (append-only)",
    "annotations": "geolabel annotations: item, annotator, label (append-only)",
    "notices": "geolabel municipal notices: id, text and other fields (append-only)",
    "taxonomy_versions": "geolabel taxonomy versions as YAML (append-only)",
    "predictions": "geolabel model pre-labels per item (append-only)",
    "reviews": "geolabel expert review decisions (append-only)",
    "consensus": "geolabel consensus label history; latest row per item is current (append-only)",
}

_SCHEMA: dict[str, str] = {
    "items": """
        CREATE TABLE items (
            fid INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
            item_id TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL CHECK (kind IN ('parcel', 'poi', 'tile', 'notice')),
            ref TEXT,
            created_at TEXT NOT NULL
        )""",
    "annotators": """
        CREATE TABLE annotators (
            fid INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
            annotator_id TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL,
            created_at TEXT NOT NULL,
            attrs TEXT NOT NULL DEFAULT '{}'
        )""",
    "rounds": """
        CREATE TABLE rounds (
            round_id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            status TEXT NOT NULL DEFAULT 'running'
                CHECK (status IN ('running', 'finished', 'failed', 'cancelled')),
            config TEXT NOT NULL DEFAULT '{}'
        )""",
    "tasks": """
        CREATE TABLE tasks (
            fid INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
            task_id TEXT NOT NULL UNIQUE,
            item_id TEXT NOT NULL REFERENCES items (item_id),
            annotator_id TEXT,
            round_id INTEGER REFERENCES rounds (round_id),
            is_gold INTEGER NOT NULL DEFAULT 0 CHECK (is_gold IN (0, 1)),
            position INTEGER,
            created_at TEXT NOT NULL
        )""",
    "imports": """
        CREATE TABLE imports (
            fid INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
            import_id TEXT NOT NULL UNIQUE,
            source TEXT NOT NULL,
            path TEXT,
            sha256 TEXT NOT NULL UNIQUE,
            n_rows INTEGER NOT NULL,
            n_added INTEGER NOT NULL,
            created_at TEXT NOT NULL
        )""",
    "annotations": """
        CREATE TABLE annotations (
            fid INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
            annotation_id TEXT NOT NULL UNIQUE,
            item_id TEXT NOT NULL REFERENCES items (item_id),
            annotator_id TEXT NOT NULL REFERENCES annotators (annotator_id),
            label TEXT NOT NULL,
            created_at TEXT NOT NULL,
            seconds REAL CHECK (seconds IS NULL OR seconds >= 0),
            source TEXT NOT NULL,
            import_id TEXT REFERENCES imports (import_id)
        )""",
    "notices": """
        CREATE TABLE notices (
            fid INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
            notice_id TEXT NOT NULL UNIQUE,
            text TEXT NOT NULL,
            attrs TEXT NOT NULL DEFAULT '{}',
            created_at TEXT NOT NULL
        )""",
    "taxonomy_versions": """
        CREATE TABLE taxonomy_versions (
            fid INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
            name TEXT NOT NULL,
            version TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            yaml TEXT NOT NULL,
            created_at TEXT NOT NULL,
            UNIQUE (name, version)
        )""",
    "predictions": """
        CREATE TABLE predictions (
            fid INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
            item_id TEXT NOT NULL REFERENCES items (item_id),
            model_version TEXT NOT NULL,
            label TEXT NOT NULL,
            confidence REAL CHECK (confidence IS NULL OR (confidence >= 0 AND confidence <= 1)),
            probas TEXT NOT NULL DEFAULT '{}',
            taxonomy_name TEXT NOT NULL,
            taxonomy_version TEXT NOT NULL,
            created_at TEXT NOT NULL,
            UNIQUE (item_id, model_version),
            FOREIGN KEY (taxonomy_name, taxonomy_version)
                REFERENCES taxonomy_versions (name, version)
        )""",
    "reviews": """
        CREATE TABLE reviews (
            fid INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
            review_id TEXT NOT NULL UNIQUE,
            item_id TEXT NOT NULL REFERENCES items (item_id),
            reviewer_id TEXT NOT NULL REFERENCES annotators (annotator_id),
            label TEXT NOT NULL,
            previous_label TEXT,
            note TEXT,
            taxonomy_name TEXT NOT NULL,
            taxonomy_version TEXT NOT NULL,
            created_at TEXT NOT NULL,
            FOREIGN KEY (taxonomy_name, taxonomy_version)
                REFERENCES taxonomy_versions (name, version)
        )""",
    "consensus": """
        CREATE TABLE consensus (
            fid INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
            item_id TEXT NOT NULL REFERENCES items (item_id),
            label TEXT NOT NULL,
            confidence REAL CHECK (confidence IS NULL OR (confidence >= 0 AND confidence <= 1)),
            method TEXT NOT NULL,
            round_id INTEGER REFERENCES rounds (round_id),
            model_version TEXT,
            taxonomy_name TEXT NOT NULL,
            taxonomy_version TEXT NOT NULL,
            review_id TEXT REFERENCES reviews (review_id),
            votes TEXT NOT NULL DEFAULT '[]',
            created_at TEXT NOT NULL,
            FOREIGN KEY (taxonomy_name, taxonomy_version)
                REFERENCES taxonomy_versions (name, version)
        )""",
}

_INDEXES = (
    "CREATE UNIQUE INDEX meta_key ON meta (key)",
    "CREATE INDEX items_kind ON items (kind)",
    "CREATE INDEX tasks_item ON tasks (item_id)",
    "CREATE INDEX tasks_round ON tasks (round_id)",
    "CREATE INDEX annotations_item ON annotations (item_id)",
    "CREATE INDEX annotations_annotator ON annotations (annotator_id)",
    "CREATE INDEX predictions_item ON predictions (item_id)",
    "CREATE INDEX reviews_item ON reviews (item_id)",
    "CREATE INDEX consensus_item ON consensus (item_id, fid)",
)


def _append_only_triggers(table: str) -> list[str]:
    """Return the two triggers that make ``table`` append-only."""
    return [
        f'CREATE TRIGGER "{table}_append_only_{op.lower()}" BEFORE {op} ON "{table}" '
        f"BEGIN SELECT RAISE(ABORT, 'geolabel: {table} is append-only; rows cannot be "
        f"{verb} (add a new row instead)'); END"
        for op, verb in (("UPDATE", "updated"), ("DELETE", "deleted"))
    ]


_TRIGGERS: tuple[str, ...] = (
    *(sql for table in APPEND_ONLY_TABLES for sql in _append_only_triggers(table)),
    "CREATE TRIGGER rounds_no_delete BEFORE DELETE ON rounds "
    "BEGIN SELECT RAISE(ABORT, 'geolabel: rounds cannot be deleted'); END",
    "CREATE TRIGGER rounds_frozen BEFORE UPDATE ON rounds "
    "WHEN OLD.status <> 'running' OR NEW.round_id IS NOT OLD.round_id "
    "OR NEW.started_at IS NOT OLD.started_at OR NEW.config IS NOT OLD.config "
    "BEGIN SELECT RAISE(ABORT, 'geolabel: a finished round cannot change, and a running "
    "round can only be finished'); END",
)

# Column names people often use instead of geolabel's; named in errors, never accepted silently.
_ALIASES: dict[str, tuple[str, ...]] = {
    "item": ("item_id", "task", "task_id", "object", "object_id", "parcel", "parcel_id", "image"),
    "annotator": (
        "annotator_id",
        "worker",
        "worker_id",
        "user",
        "user_id",
        "performer",
        "rater",
        "labeler",
    ),
    "label": ("label_id", "class", "category", "answer", "choice", "value"),
    "created_at": ("timestamp", "created", "submitted_at"),
    "seconds": ("duration", "lead_time", "time_spent"),
    "annotation_id": ("assignment_id", "annotation"),
}


# --------------------------------------------------------------------------------------------
# Typed records
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LayerInfo:
    """One layer or table listed in the GeoPackage's ``gpkg_contents``.

    Attributes:
        name: Table name, as QGIS and ``pyogrio.list_layers`` show it.
        kind: ``"features"`` for spatial layers, ``"attributes"`` for plain tables.
        count: Number of rows.
        crs: ``"AUTHORITY:CODE"`` (or WKT) of a spatial layer; ``None`` for plain tables.
        geometry_type: GeoPackage geometry type name (``"POLYGON"``…); ``None`` for tables.
    """

    name: str
    kind: Literal["features", "attributes"]
    count: int
    crs: str | None
    geometry_type: str | None


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What an annotation import did.

    Attributes:
        import_id: Id of the import record (of the earlier import when ``already_imported``).
        n_rows: Rows in the input.
        n_added: Annotations stored by this call.
        n_duplicates: Rows already stored (or repeated in the input); ``n_rows - n_added``.
        already_imported: The same content (same sha256) was imported before; nothing was read.
    """

    import_id: str
    n_rows: int
    n_added: int
    n_duplicates: int
    already_imported: bool


@dataclass(frozen=True, slots=True)
class ProjectSummary:
    """What a project holds; JSON-able with :func:`dataclasses.asdict`.

    Attributes:
        path: Path of the GeoPackage.
        name: Project name.
        crs: Project CRS (``"EPSG:32633"`` or WKT).
        schema_version: Table layout version of the file.
        geolabel_version: geolabel version that created the file.
        created_at: When the project was created (ISO-8601 UTC).
        layers: Every layer and table with its row count (spatial layers first).
        taxonomy_name: Name of the most recently stored taxonomy version, if any.
        taxonomy_version: Its version.
        counts: ``items``, ``annotations``, ``annotators``, ``consensus`` (items that have a
            current consensus label), ``rounds``, ``imports``, ``notices``,
            ``taxonomy_versions``, in that order.
        items_by_kind: Items per kind (every kind listed, zero included).
    """

    path: str
    name: str
    crs: str
    schema_version: int
    geolabel_version: str
    created_at: str
    layers: tuple[LayerInfo, ...]
    taxonomy_name: str | None
    taxonomy_version: str | None
    counts: dict[str, int]
    items_by_kind: dict[str, int]


@dataclass(frozen=True, slots=True)
class _AnnotationRow:
    """One validated input annotation (internal)."""

    annotation_id: str
    item: str
    annotator: str
    label: str
    created_at: str | None
    seconds: float | None


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def _utc_now() -> str:
    """Return the current time as an ISO-8601 UTC string with microseconds."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _to_utc_iso(value: object) -> str:
    """Normalise a timestamp to an ISO-8601 UTC string with microseconds.

    Args:
        value: A ``datetime``/``pd.Timestamp`` or an ISO-8601 string; naive means UTC.

    Returns:
        The timestamp as ``YYYY-MM-DDTHH:MM:SS.ffffff+00:00``.

    Raises:
        ValueError: If the value is not an ISO-8601 timestamp.
    """
    if isinstance(value, datetime):
        stamp = value
    elif isinstance(value, str):
        stamp = datetime.fromisoformat(value.strip())
    elif isinstance(value, np.datetime64):
        stamp = pd.Timestamp(value).to_pydatetime()
    else:
        raise ValueError(f"{value!r} is not a timestamp")
    stamp = stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)
    return stamp.isoformat(timespec="microseconds")


def _is_missing(value: object) -> bool:
    """Return True for None, NaN/NA/NaT and blank strings."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, (float, np.floating)):
        return math.isnan(value)
    if isinstance(value, (np.datetime64, np.timedelta64)):
        return bool(np.isnat(value))
    return False


def _text(value: object) -> str:
    """Return a cell as stripped text (ids and labels are stored as TEXT)."""
    return str(value).strip()


def _json_default(value: object) -> Any:
    """Make numpy scalars and arrays JSON-serialisable."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def _dumps(value: object) -> str:
    """Serialise ``value`` as compact, key-sorted JSON (no NaN)."""
    return json.dumps(
        value, sort_keys=True, ensure_ascii=False, allow_nan=False, default=_json_default
    )


def _sha256_json(value: object) -> str:
    """Return the sha256 hex digest of ``value``'s canonical JSON."""
    return hashlib.sha256(_dumps(value).encode("utf-8")).hexdigest()


def annotation_id_for(item: str, annotator: str, label: str, created_at: str | None) -> str:
    """Return the deterministic id of an annotation that came without one.

    The id is the sha256 of the JSON list ``[item, annotator, label, created_at or ""]`` and
    does not depend on where the annotation came from, so the same vote imported from two
    overlapping files is stored once.

    Args:
        item: Item id.
        annotator: Annotator id.
        label: Label.
        created_at: Normalised ISO-8601 UTC timestamp, or ``None`` when the source had none.

    Returns:
        A 64-character hex digest.
    """
    return _sha256_json([item, annotator, label, created_at or ""])


def _preview(values: Iterable[object], limit: int = _PREVIEW) -> str:
    """Return ``'a', 'b', 'c' and 4 more`` for error messages."""
    items = list(values)
    shown = ", ".join(repr(v) for v in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _count_preview(counts: Counter[str], unit: str, limit: int = _PREVIEW) -> str:
    """Return ``'x' (3 rows), 'y' (1 row)`` for the most common values of ``counts``."""
    parts = [f"{k!r} ({n} {unit}{'' if n == 1 else 's'})" for k, n in counts.most_common(limit)]
    more = len(counts) - limit
    return ", ".join(parts) + (f" and {more} more" if more > 0 else "")


def _quote(name: str) -> str:
    """Quote an SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def _chunks(values: Sequence[str], size: int = _MAX_SQL_VARS) -> Iterator[Sequence[str]]:
    """Yield slices of at most ``size`` values (SQLite limits bound parameters)."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _select_in(con: sqlite3.Connection, sql: str, values: Iterable[str]) -> list[tuple[Any, ...]]:
    """Run ``sql`` (with one ``{}`` for the ``IN`` placeholders) over ``values`` in chunks."""
    rows: list[tuple[Any, ...]] = []
    for chunk in _chunks(sorted(set(values))):
        placeholders = ", ".join("?" * len(chunk))
        rows.extend(con.execute(sql.format(placeholders), tuple(chunk)).fetchall())
    return rows


def _connect(path: Path) -> sqlite3.Connection:
    """Open ``path`` (which must exist) in autocommit mode with a busy timeout and FKs on."""
    con = sqlite3.connect(
        f"{path.resolve().as_uri()}?mode=rw",
        uri=True,
        timeout=_BUSY_TIMEOUT_MS / 1000,
        isolation_level=None,
    )
    con.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
    con.execute("PRAGMA foreign_keys = ON")
    return con


def _touch(con: sqlite3.Connection, *tables: str) -> None:
    """Update ``gpkg_contents.last_change`` of ``tables``."""
    con.executemany(
        "UPDATE gpkg_contents SET last_change = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') "
        "WHERE table_name = ?",
        [(t,) for t in tables],
    )


def _store_error(exc: sqlite3.Error, path: Path) -> StoreError:
    """Turn an SQLite error into a :class:`StoreError` with a readable message."""
    message = str(exc)
    if "geolabel:" in message:
        return StoreError(
            f"{message.split('geolabel:', 1)[1].strip()} — refused by {path}. Annotations, "
            "imports, consensus, reviews, predictions and taxonomy versions are kept forever "
            "so every label can be traced; record a correction as a new row instead."
        )
    if "locked" in message or "busy" in message:
        return StoreError(
            f"{path} is locked by another program writing to it ({message}); close it there "
            "(QGIS edit session, another geolabel command) and try again."
        )
    return StoreError(f"SQLite refused the operation on {path}: {message}")


def _crs_string(crs: CRS) -> str:
    """Return ``"AUTHORITY:CODE"`` when the CRS has one, else its WKT."""
    authority = crs.to_authority()
    return f"{authority[0]}:{authority[1]}" if authority else crs.to_wkt()


def _column_problem(
    columns: Sequence[str], required: Sequence[str], optional: Sequence[str]
) -> str | None:
    """Describe missing required columns or unaccepted aliases, or return None if fine.

    Args:
        columns: Columns present.
        required: Columns that must be present.
        optional: Columns that may be present.

    Returns:
        An error message naming what is missing, what is present and what to rename.
    """
    present = [str(c) for c in columns]
    missing = [c for c in required if c not in present]
    renames = [
        (alias, canonical)
        for canonical in (*required, *optional)
        if canonical not in present
        for alias in _ALIASES.get(canonical, ())
        if alias in present
    ]
    if not missing and not renames:
        return None
    parts = []
    if missing:
        parts.append(f"missing required column(s) {_preview(missing, 10)}")
    parts.append(f"columns present: {', '.join(present) if present else '(none)'}")
    if renames:
        hint = ", ".join(f"{a!r} -> {c!r}" for a, c in renames)
        parts.append(
            f"rename {hint} (geolabel does not guess column names, so that a misread column "
            "never becomes a label silently)"
        )
    else:
        parts.append(f"expected columns: {', '.join(required)} (optional: {', '.join(optional)})")
    return "; ".join(parts)


def _require_columns(
    df: pd.DataFrame, required: Sequence[str], optional: Sequence[str], what: str
) -> None:
    """Raise :class:`ColumnError` if ``df`` lacks a required column.

    Raises:
        ColumnError: Naming the missing columns, the columns present and any renames to do.
    """
    problem = _column_problem([str(c) for c in df.columns], required, optional)
    if problem is not None:
        raise ColumnError(f"{what}: {problem}.")


def _check_labels(labels: Sequence[str], allowed: Collection[str] | None) -> str | None:
    """Describe labels not in ``allowed`` (with counts), or return None if all are allowed."""
    if allowed is None:
        return None
    allowed_set = {str(a) for a in allowed}
    unknown = Counter(label for label in labels if label not in allowed_set)
    if not unknown:
        return None
    n_rows = sum(unknown.values())
    allowed_text = ", ".join(sorted(allowed_set)) if allowed_set else "(none)"
    return (
        f"{n_rows} row(s) have {len(unknown)} label(s) not in the taxonomy: "
        f"{_count_preview(unknown, 'row')}; allowed labels: {allowed_text}. Fix the labels, or "
        "remap them to the current taxonomy version first"
    )


def _frame_column(df: pd.DataFrame, column: str) -> list[Any]:
    """Return a column as a plain list (``None`` for every row if absent)."""
    if column not in df.columns:
        return [None] * len(df)
    return list(df[column].tolist())


def _optional_float(value: object, name: str) -> float | None:
    """Parse an optional finite number; None when missing.

    Raises:
        ValueError: If the value is not a finite number.
    """
    if _is_missing(value):
        return None
    number = float(value)  # type: ignore[arg-type]
    if not math.isfinite(number):
        raise ValueError(f"{name} {value!r} is not a finite number")
    return number


def _confidence(value: object) -> float | None:
    """Parse an optional confidence in [0, 1].

    Raises:
        ValueError: If it is not a number in [0, 1].
    """
    number = _optional_float(value, "confidence")
    if number is not None and not 0.0 <= number <= 1.0:
        raise ValueError(f"confidence {number} is outside [0, 1]")
    return number


# --------------------------------------------------------------------------------------------
# Annotation parsing (shared by CSV and DataFrame imports)
# --------------------------------------------------------------------------------------------

_ANNOTATION_REQUIRED = ("item", "annotator", "label")
_ANNOTATION_OPTIONAL = ("created_at", "seconds", "annotation_id")


def _annotation_sha(df: pd.DataFrame) -> str:
    """Return a content hash of an annotation DataFrame (its known columns, in order)."""
    columns = [c for c in (*_ANNOTATION_REQUIRED, *_ANNOTATION_OPTIONAL) if c in df.columns]
    values = [[None if _is_missing(v) else str(v) for v in _frame_column(df, c)] for c in columns]
    return _sha256_json({"columns": columns, "values": values})


def _parse_annotations(
    df: pd.DataFrame, row_name: Callable[[int], str]
) -> tuple[list[_AnnotationRow], list[str]]:
    """Validate annotation rows.

    Args:
        df: Input with the columns ``item``, ``annotator``, ``label`` and optional
            ``created_at``, ``seconds``, ``annotation_id``.
        row_name: Names row ``i`` in messages (``"line 7"``, ``"row 'a'"``).

    Returns:
        The parsed rows and a list of problems (one per bad row; empty when all are fine).
    """
    columns = {c: _frame_column(df, c) for c in (*_ANNOTATION_REQUIRED, *_ANNOTATION_OPTIONAL)}
    rows: list[_AnnotationRow] = []
    problems: list[str] = []
    for i in range(len(df)):
        blank = [c for c in _ANNOTATION_REQUIRED if _is_missing(columns[c][i])]
        if blank:
            problems.append(f"{row_name(i)}: blank {', '.join(repr(c) for c in blank)}")
            continue
        item, annotator, label = (_text(columns[c][i]) for c in _ANNOTATION_REQUIRED)
        raw_time = columns["created_at"][i]
        try:
            created_at = None if _is_missing(raw_time) else _to_utc_iso(raw_time)
        except ValueError:
            problems.append(f"{row_name(i)}: created_at {raw_time!r} is not ISO-8601")
            continue
        try:
            seconds = _optional_float(columns["seconds"][i], "seconds")
        except (TypeError, ValueError):
            problems.append(f"{row_name(i)}: seconds {columns['seconds'][i]!r} is not a number")
            continue
        if seconds is not None and seconds < 0:
            problems.append(f"{row_name(i)}: seconds {seconds} is negative")
            continue
        raw_id = columns["annotation_id"][i]
        annotation_id = (
            annotation_id_for(item, annotator, label, created_at)
            if _is_missing(raw_id)
            else _text(raw_id)
        )
        rows.append(_AnnotationRow(annotation_id, item, annotator, label, created_at, seconds))
    return rows, problems


def _insert_annotations(
    con: sqlite3.Connection,
    rows: Sequence[_AnnotationRow],
    *,
    source: str,
    import_id: str,
    imported_at: str,
) -> int:
    """Insert new annotation rows (``INSERT OR IGNORE``) and return how many were stored."""
    cursor = con.executemany(
        "INSERT OR IGNORE INTO annotations (annotation_id, item_id, annotator_id, label, "
        "created_at, seconds, source, import_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                r.annotation_id,
                r.item,
                r.annotator,
                r.label,
                r.created_at or imported_at,
                r.seconds,
                source,
                import_id,
            )
            for r in rows
        ],
    )
    return max(cursor.rowcount, 0)


# --------------------------------------------------------------------------------------------
# Project
# --------------------------------------------------------------------------------------------


class Project:
    """A geolabel project: one GeoPackage file with spatial layers and label tables.

    Build one with :meth:`create` or :meth:`open`, not with the constructor. Every call opens
    a short-lived SQLite connection (``busy_timeout`` set, foreign keys on), so a project can
    be read while QGIS has it open; spatial layers go through pyogrio, which opens the file
    itself, and never while a transaction of this object is open. A ``Project`` is not meant
    to be shared between threads.

    Example:
        >>> with Project.open("city.gpkg") as project:  # doctest: +SKIP
        ...     result = project.import_annotations_csv("votes.csv", allowed_labels=classes)
        ...     consensus = project.current_consensus()
    """

    def __init__(self, path: Path, meta: Mapping[str, str]) -> None:
        self._path = path
        self._meta = dict(meta)
        self._tx: sqlite3.Connection | None = None
        self._savepoints = 0
        self._closed = False

    def __repr__(self) -> str:
        return f"Project(path={str(self._path)!r}, name={self.name!r}, crs={self.crs!r})"

    def __enter__(self) -> Project:
        self._check_open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ---------------------------------------------------------------- creating and opening

    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        *,
        crs: str | CRS,
        name: str | None = None,
        overwrite: bool = False,
    ) -> Project:
        """Create a new, empty project file.

        The file is built under a temporary name in the same folder and moved into place with
        :func:`os.replace`, so a failure never leaves a half-made project and, with
        ``overwrite=True``, the old file stays intact until the new one is complete.

        Args:
            path: Where to write the GeoPackage (``.gpkg``).
            crs: Project CRS, anything pyproj understands (``"EPSG:32633"``); every spatial
                layer must be in it.
            name: Project name; defaults to the file name without extension.
            overwrite: Replace an existing file at ``path``.

        Returns:
            The new project, open.

        Raises:
            ProjectExistsError: ``path`` exists and ``overwrite`` is False.
            CRSMismatchError: ``crs`` is not a CRS pyproj understands.
            StoreError: The folder does not exist or the file cannot be written.
        """
        target = Path(path)
        if target.exists() and not overwrite:
            raise ProjectExistsError(
                f"{target} already exists. Open it with Project.open({str(target)!r}) "
                "(geolabel info), choose another path, or pass overwrite=True "
                "(geolabel init --force) to replace it."
            )
        if target.is_dir():
            raise ProjectExistsError(f"{target} is a directory; give a file path ending .gpkg.")
        if not target.parent.is_dir():
            raise StoreError(
                f"Cannot create {target}: folder {target.parent} does not exist; create it first."
            )
        try:
            project_crs = CRS.from_user_input(crs)
        except CRSError as exc:
            raise CRSMismatchError(
                f"Project CRS {crs!r} is not a CRS pyproj understands ({exc}); give an "
                "authority code such as 'EPSG:32633'."
            ) from exc
        crs_text = _crs_string(project_crs)
        meta = {
            "schema_version": str(SCHEMA_VERSION),
            "name": name if name is not None else target.stem,
            "crs": crs_text,
            "created_at": _utc_now(),
            "geolabel_version": __version__,
        }
        tmp = target.parent / f".{target.stem}.{uuid.uuid4().hex[:12]}.tmp.gpkg"
        try:
            # GDAL writes the GeoPackage core (application_id, user_version, gpkg_* tables)
            # together with the ``meta`` attribute table; the rest is plain SQLite.
            pyogrio.write_dataframe(
                pd.DataFrame({"key": list(meta), "value": list(meta.values())}),
                tmp,
                layer="meta",
                driver="GPKG",
                DESCRIPTION=_DESCRIPTIONS["meta"],
            )
            con = _connect(tmp)
            try:
                con.execute("BEGIN IMMEDIATE")
                for table, sql in _SCHEMA.items():
                    con.execute(sql)
                    con.execute(
                        "INSERT INTO gpkg_contents (table_name, data_type, identifier, "
                        "description, last_change, srs_id) VALUES (?, 'attributes', ?, ?, "
                        "strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), 0)",
                        (table, table, _DESCRIPTIONS[table]),
                    )
                for sql in (*_INDEXES, *_TRIGGERS):
                    con.execute(sql)
                con.execute("COMMIT")
            finally:
                con.close()
            if target.exists() and not overwrite:  # appeared while we were writing
                raise ProjectExistsError(f"{target} was created by someone else meanwhile.")
            os.replace(tmp, target)
        except BaseException as exc:
            for leftover in (tmp, tmp.with_name(tmp.name + "-journal")):
                leftover.unlink(missing_ok=True)
            if isinstance(exc, (sqlite3.Error, pyogrio.errors.DataSourceError, OSError)) and (
                not isinstance(exc, StoreError)
            ):
                raise StoreError(f"Cannot create project {target}: {exc}") from exc
            raise
        return cls.open(target)

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Project:
        """Open an existing project.

        Args:
            path: The project's GeoPackage.

        Returns:
            The project.

        Raises:
            ProjectNotFoundError: The file is missing, is not a GeoPackage, or is a GeoPackage
                without geolabel's tables.
            StoreError: The file was written by a newer geolabel (schema version) or its
                metadata is damaged.
        """
        target = Path(path)
        create_hint = f"create one with `geolabel init {target} --parcels <parcels file>`"
        if not target.is_file():
            where = "is a directory" if target.is_dir() else "does not exist"
            raise ProjectNotFoundError(
                f"No geolabel project at {target}: the path {where}; {create_hint}."
            )
        with target.open("rb") as fh:
            header = fh.read(len(_SQLITE_HEADER))
        if header != _SQLITE_HEADER:
            raise ProjectNotFoundError(
                f"{target} is not a GeoPackage (not an SQLite file), so not a geolabel project; "
                f"{create_hint}."
            )
        try:
            con = _connect(target)
        except sqlite3.Error as exc:
            raise ProjectNotFoundError(f"Cannot open {target} as a GeoPackage: {exc}.") from exc
        try:
            tables = {
                row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            if "gpkg_contents" not in tables:
                raise ProjectNotFoundError(
                    f"{target} is an SQLite file but not a GeoPackage (no gpkg_contents table); "
                    f"{create_hint}."
                )
            if "meta" not in tables or "annotations" not in tables:
                raise ProjectNotFoundError(
                    f"{target} is a GeoPackage but not a geolabel project (it has no geolabel "
                    "'meta' table). If it holds input data, build a project from it with "
                    f"`geolabel init project.gpkg --parcels {target}`."
                )
            meta = {str(k): str(v) for k, v in con.execute("SELECT key, value FROM meta")}
        except sqlite3.Error as exc:
            raise ProjectNotFoundError(f"Cannot read {target} as a GeoPackage: {exc}.") from exc
        finally:
            con.close()
        missing = [k for k in ("schema_version", "name", "crs") if k not in meta]
        if missing:
            raise StoreError(
                f"{target} is damaged: its meta table lacks {_preview(missing)}; restore it from a "
                "backup or recreate the project with `geolabel init`."
            )
        try:
            schema = int(meta["schema_version"])
        except ValueError as exc:
            raise StoreError(
                f"{target} is damaged: schema_version {meta['schema_version']!r} is not a number."
            ) from exc
        if schema > SCHEMA_VERSION:
            raise StoreError(
                f"{target} was written by a newer geolabel (schema version {schema}; this "
                f"geolabel {__version__} reads up to {SCHEMA_VERSION}). Upgrade geolabel: "
                "pip install -U geolabel."
            )
        if schema < SCHEMA_VERSION:
            raise StoreError(
                f"{target} uses an older schema version ({schema}) that this geolabel cannot "
                f"migrate to {SCHEMA_VERSION}; open it with the geolabel version that made it "
                f"({meta.get('geolabel_version', 'unknown')})."
            )
        return cls(target, meta)

    def close(self) -> None:
        """Close the project; further calls raise :class:`StoreError`.

        Raises:
            StoreError: A transaction is still open.
        """
        if self._tx is not None:
            raise StoreError("Cannot close the project inside project.transaction().")
        self._closed = True

    # ---------------------------------------------------------------- properties

    @property
    def path(self) -> Path:
        """Path of the GeoPackage file."""
        return self._path

    @property
    def name(self) -> str:
        """Project name."""
        return self._meta["name"]

    @property
    def crs(self) -> str:
        """Project CRS as ``"AUTHORITY:CODE"`` (or WKT)."""
        return self._meta["crs"]

    @property
    def meta(self) -> dict[str, str]:
        """A copy of the ``meta`` table (schema_version, name, crs, created_at, ...)."""
        return dict(self._meta)

    def set_meta(self, key: str, value: str) -> None:
        """Store one key/value pair in the ``meta`` table, replacing the key's old value.

        For settings derived from the project's inputs that later steps read back (the tile
        grid and band statistics of ``geolabel tile`` are JSON values here). The keys the
        project is defined by (``schema_version``, ``name``, ``crs``, ``created_at``,
        ``geolabel_version``) cannot be changed.

        Args:
            key: Key (letters, digits, ``_``, ``.``, ``-``).
            value: Value, as text (serialise structured values as JSON).

        Raises:
            StoreError: The key is malformed or one of the project's defining keys.
        """
        if key in _CORE_META_KEYS or not _META_KEY.match(key):
            raise StoreError(
                f"Meta key {key!r} cannot be set: use letters, digits, '_', '.' or '-', and not "
                f"one of the project's defining keys ({', '.join(_CORE_META_KEYS)})."
            )
        with self._write() as con:
            con.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, str(value)),
            )
            _touch(con, "meta")
        self._meta[key] = str(value)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    # ---------------------------------------------------------------- connections

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"Project {self._path} is closed; open it again with Project.open.")

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """Yield the open transaction's connection, or a short-lived one."""
        self._check_open()
        if self._tx is not None:
            yield self._tx
            return
        con = _connect(self._path)
        try:
            yield con
        except sqlite3.Error as exc:
            raise _store_error(exc, self._path) from exc
        finally:
            con.close()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """Yield a connection inside a transaction (a savepoint if one is already open)."""
        self._check_open()
        if self._tx is None:
            with self.transaction() as con:
                yield con
            return
        con = self._tx
        self._savepoints += 1
        savepoint = f"geolabel_sp{self._savepoints}"
        con.execute(f"SAVEPOINT {savepoint}")
        try:
            yield con
        except BaseException as exc:
            con.execute(f"ROLLBACK TO {savepoint}")
            con.execute(f"RELEASE {savepoint}")
            if isinstance(exc, sqlite3.Error):
                raise _store_error(exc, self._path) from exc
            raise
        con.execute(f"RELEASE {savepoint}")

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Group store calls into one all-or-nothing transaction (``BEGIN IMMEDIATE``).

        Store calls made inside use the same connection (as savepoints); on any exception
        everything is rolled back and the exception re-raised (SQLite errors, such as an
        append-only trigger firing, as :class:`StoreError`). :meth:`write_layer` cannot run
        inside, because pyogrio opens the file on its own.

        Yields:
            The SQLite connection, for raw SQL if needed.

        Raises:
            StoreError: A transaction is already open on this project, another program holds
                the write lock past the busy timeout, or SQLite refused a statement.

        Example:
            >>> with project.transaction():  # doctest: +SKIP
            ...     project.add_consensus(frame, method="dawid_skene", round_id=r)
            ...     project.finish_round(r)
        """
        self._check_open()
        if self._tx is not None:
            raise StoreError(
                "A transaction is already open on this project; call store methods inside it "
                "instead of opening a second one."
            )
        con = _connect(self._path)
        try:
            con.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            con.close()
            raise _store_error(exc, self._path) from exc
        self._tx = con
        try:
            yield con
            con.execute("COMMIT")
        except sqlite3.Error as exc:
            if con.in_transaction:
                con.execute("ROLLBACK")
            raise _store_error(exc, self._path) from exc
        except BaseException:
            if con.in_transaction:
                con.execute("ROLLBACK")
            raise
        finally:
            self._tx = None
            con.close()

    # ---------------------------------------------------------------- layers

    def layers(self) -> list[LayerInfo]:
        """List spatial layers and plain tables, as GIS tools see them.

        Returns:
            Spatial layers first, then plain tables, each group sorted by name.
        """
        with self._read() as con:
            rows = con.execute(
                "SELECT c.table_name, c.data_type, g.geometry_type_name, s.organization, "
                "s.organization_coordsys_id, s.definition "
                "FROM gpkg_contents c "
                "LEFT JOIN gpkg_geometry_columns g ON g.table_name = c.table_name "
                "LEFT JOIN gpkg_spatial_ref_sys s ON s.srs_id = g.srs_id "
                "WHERE c.data_type IN ('features', 'attributes') "
                "ORDER BY c.data_type DESC, c.table_name"
            ).fetchall()
            infos = []
            for name, kind, geometry_type, org, code, definition in rows:
                count = con.execute(f"SELECT COUNT(*) FROM {_quote(name)}").fetchone()[0]
                crs: str | None = None
                if kind == "features":
                    if org and str(org).upper() != "NONE":
                        crs = f"{str(org).upper()}:{code}"
                    elif definition and definition != "undefined":
                        crs = str(definition)
                infos.append(LayerInfo(name, kind, int(count), crs, geometry_type))
        return infos

    def _layer(self, name: str) -> LayerInfo | None:
        return next((info for info in self.layers() if info.name == name), None)

    def read_layer(
        self,
        name: str,
        where: str | None = None,
        bbox: tuple[float, float, float, float] | None = None,
    ) -> gpd.GeoDataFrame:
        """Read a spatial layer, filtering in GDAL (attribute and spatial-index pushdown).

        Args:
            name: Layer name.
            where: SQL ``WHERE`` clause on the layer's attributes (``"area > 500"``).
            bbox: ``(minx, miny, maxx, maxy)`` in the project CRS.

        Returns:
            The features, with the layer's CRS.

        Raises:
            LayerError: No spatial layer of that name (the message lists those there are).
            StoreError: The ``where`` clause or bbox was refused.
        """
        info = self._layer(name)
        if info is None or info.kind != "features":
            spatial = [i.name for i in self.layers() if i.kind == "features"]
            listed = ", ".join(spatial) if spatial else "none yet (add one with write_layer)"
            extra = (
                f" {name!r} is a plain table, not a spatial layer"
                + (
                    f": read it with Project.{name}()."
                    if callable(getattr(self, name, None))
                    else "."
                )
                if info is not None
                else ""
            )
            raise LayerError(
                f"No spatial layer {name!r} in project {self._path}.{extra} "
                f"Spatial layers: {listed}."
            )
        try:
            return pyogrio.read_dataframe(self._path, layer=name, where=where, bbox=bbox)
        except (pyogrio.errors.DataLayerError, pyogrio.errors.DataSourceError) as exc:
            raise StoreError(
                f"Cannot read layer {name!r} of {self._path} (where={where!r}, bbox={bbox!r}): "
                f"{exc}"
            ) from exc

    def write_layer(
        self, gdf: gpd.GeoDataFrame, name: str, *, overwrite: bool = False
    ) -> LayerInfo:
        """Write a GeoDataFrame as a spatial layer (GPKG, with a spatial index).

        The DataFrame index is not written; ``reset_index()`` first to keep it.

        Args:
            gdf: Features in the project CRS.
            name: Layer name (letters, digits, underscores; not a geolabel table name).
            overwrite: Replace an existing layer of that name.

        Returns:
            The written layer's info.

        Raises:
            GeometryError: ``gdf`` is not a GeoDataFrame.
            CRSMismatchError: ``gdf`` has no CRS or one different from the project's.
            StoreError: Bad or reserved name, the layer exists and ``overwrite`` is False, a
                transaction is open, or GDAL failed to write.
        """
        self._check_open()
        if self._tx is not None:
            raise StoreError(
                "write_layer cannot run inside project.transaction(): pyogrio opens the file "
                "on its own and would wait for the transaction's lock. Write layers before or "
                "after the transaction."
            )
        if not isinstance(gdf, gpd.GeoDataFrame):
            raise GeometryError(
                f"write_layer needs a GeoDataFrame with a geometry column, got "
                f"{type(gdf).__name__}; build one with geopandas.GeoDataFrame(df, geometry=...)."
            )
        if not _LAYER_NAME.match(name):
            raise StoreError(
                f"Layer name {name!r} is not valid: use letters, digits and underscores, "
                "starting with a letter (e.g. 'parcels')."
            )
        if name.lower() in TABLES or name.lower().startswith(_RESERVED_PREFIXES):
            raise StoreError(
                f"Layer name {name!r} is reserved for geolabel or GeoPackage tables; choose "
                f"another (conventional names: {', '.join(SPATIAL_LAYERS)})."
            )
        project_crs = CRS.from_user_input(self.crs)
        if gdf.crs is None:
            raise CRSMismatchError(
                f"Layer {name!r} has no CRS, project {self.name!r} is in {self.crs}. If you "
                f"know its CRS, set it with gdf.set_crs(...), then reproject with "
                f"gdf.to_crs({self.crs!r})."
            )
        if not CRS.from_user_input(gdf.crs).equals(project_crs, ignore_axis_order=True):
            raise CRSMismatchError(
                f"Layer {name!r} is in {_crs_string(CRS.from_user_input(gdf.crs))} but project "
                f"{self.name!r} is in {self.crs}; reproject it first with "
                f"gdf.to_crs({self.crs!r})."
            )
        existing = self._layer(name)
        if existing is not None and not overwrite:
            raise StoreError(
                f"Layer {name!r} already exists in {self._path} ({existing.count} rows); pass "
                "overwrite=True to replace it, or write under another name."
            )
        if existing is not None and existing.kind != "features":
            raise StoreError(f"{name!r} is a plain table and cannot be replaced by a layer.")
        try:
            pyogrio.write_dataframe(gdf, self._path, layer=name, driver="GPKG")
        except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
            raise StoreError(f"GDAL could not write layer {name!r} to {self._path}: {exc}") from exc
        info = self._layer(name)
        if info is None:  # pragma: no cover - GDAL reported success
            raise StoreError(f"Layer {name!r} was written but is not listed in {self._path}.")
        return info

    # ---------------------------------------------------------------- shared validation

    def _require_items(self, con: sqlite3.Connection, items: Iterable[str], what: str) -> None:
        """Raise :class:`StoreError` naming items that are not in the project."""
        wanted = Counter(items)
        known = {
            row[0]
            for row in _select_in(con, "SELECT item_id FROM items WHERE item_id IN ({})", wanted)
        }
        unknown = Counter({k: n for k, n in wanted.items() if k not in known})
        if unknown:
            raise StoreError(
                f"{what}: {sum(unknown.values())} row(s) refer to {len(unknown)} item(s) not in "
                f"the project: {_preview(sorted(unknown))}. Add them first with "
                "Project.add_items, or check the item column."
            )

    def _resolve_taxonomy(
        self, con: sqlite3.Connection, name: str, version: str | int | None
    ) -> str:
        """Return ``version`` (or the latest stored one) as text, after checking it is stored."""
        version = None if version is None else str(version)
        if version is None:
            row = con.execute(
                "SELECT version FROM taxonomy_versions WHERE name = ? ORDER BY fid DESC LIMIT 1",
                (name,),
            ).fetchone()
        else:
            row = con.execute(
                "SELECT version FROM taxonomy_versions WHERE name = ? AND version = ?",
                (name, version),
            ).fetchone()
        if row is None:
            stored = [
                f"{n} {v}"
                for n, v in con.execute("SELECT name, version FROM taxonomy_versions ORDER BY fid")
            ]
            wanted = name if version is None else f"{name} version {version}"
            raise StoreError(
                f"Taxonomy {wanted!s} is not stored in {self._path} (stored: "
                f"{', '.join(stored) if stored else 'none'}). Store it first with "
                "Project.add_taxonomy_version, so labels can be traced to their definitions."
            )
        return str(row[0])

    def _require_round(self, con: sqlite3.Connection, round_id: int | None) -> None:
        if (
            round_id is not None
            and con.execute("SELECT 1 FROM rounds WHERE round_id = ?", (int(round_id),)).fetchone()
            is None
        ):
            raise StoreError(f"Round {round_id} does not exist; start one with start_round().")

    def _ensure_annotators(
        self, con: sqlite3.Connection, annotators: Iterable[str], kind: str, now: str
    ) -> int:
        cursor = con.executemany(
            "INSERT OR IGNORE INTO annotators (annotator_id, kind, created_at, attrs) "
            "VALUES (?, ?, ?, '{}')",
            [(a, kind, now) for a in sorted(set(annotators))],
        )
        return max(cursor.rowcount, 0)

    def _frame(
        self,
        sql: str,
        params: Sequence[object] = (),
        *,
        columns: Sequence[str],
        json_columns: Sequence[str] = (),
        dtypes: Mapping[str, str] | None = None,
    ) -> pd.DataFrame:
        with self._read() as con:
            rows = con.execute(sql, tuple(params)).fetchall()
        frame = pd.DataFrame.from_records(rows, columns=list(columns))
        for column in json_columns:
            frame[column] = [json.loads(v) for v in frame[column].tolist()]
        for column, dtype in (dtypes or {}).items():
            frame[column] = frame[column].astype(dtype)  # type: ignore[call-overload]
        return frame

    # ---------------------------------------------------------------- items and annotators

    def add_items(self, df: pd.DataFrame, *, kind: str | None = None) -> int:
        """Add items; items already stored with the same kind are skipped.

        Args:
            df: Columns ``item`` and ``kind`` (or pass ``kind=``), optional ``ref`` (where the
                item lives, e.g. a parcel id in the ``parcels`` layer).
            kind: Kind for every row when ``df`` has no ``kind`` column.

        Returns:
            Number of items added.

        Raises:
            ColumnError: A column is missing, a value is blank, a kind is not one of
                :data:`ITEM_KINDS`, or one item is given two kinds.
            StoreError: An item is already stored with a different kind.
        """
        what = "add_items"
        has_kind = "kind" in df.columns
        if has_kind and kind is not None:
            raise ColumnError(f"{what}: give either a 'kind' column or kind=, not both.")
        required = ("item", "kind") if kind is None else ("item",)
        _require_columns(df, required, ("ref",) if kind is None else ("kind", "ref"), what)
        items = _frame_column(df, "item")
        kinds = _frame_column(df, "kind") if has_kind else [kind] * len(df)
        refs = _frame_column(df, "ref")
        blank = [
            i
            for i, (it, k) in enumerate(zip(items, kinds, strict=True))
            if _is_missing(it) or _is_missing(k)
        ]
        if blank:
            raise ColumnError(
                f"{what}: blank item or kind in {len(blank)} row(s) (positions {_preview(blank)})."
            )
        wanted: dict[str, tuple[str, str | None]] = {}
        bad_kinds: Counter[str] = Counter()
        for it, k, ref in zip(items, kinds, refs, strict=True):
            item_id, item_kind = _text(it), _text(k)
            if item_kind not in ITEM_KINDS:
                bad_kinds[item_kind] += 1
                continue
            entry = (item_kind, None if _is_missing(ref) else _text(ref))
            if wanted.setdefault(item_id, entry)[0] != item_kind:
                raise ColumnError(f"{what}: item {item_id!r} is given two kinds.")
        if bad_kinds:
            raise ColumnError(
                f"{what}: unknown item kind(s) {_count_preview(bad_kinds, 'row')}; "
                f"kinds are: {', '.join(ITEM_KINDS)}."
            )
        now = _utc_now()
        with self._write() as con:
            stored = dict(
                _select_in(con, "SELECT item_id, kind FROM items WHERE item_id IN ({})", wanted)
            )
            clash = {i: (stored[i], wanted[i][0]) for i in stored if stored[i] != wanted[i][0]}
            if clash:
                first = next(iter(clash.items()))
                raise StoreError(
                    f"{what}: {len(clash)} item(s) are already stored with another kind, e.g. "
                    f"{first[0]!r} is a {first[1][0]}, not a {first[1][1]}; use new item ids."
                )
            new = [(i, k, r, now) for i, (k, r) in wanted.items() if i not in stored]
            con.executemany(
                "INSERT INTO items (item_id, kind, ref, created_at) VALUES (?, ?, ?, ?)", new
            )
            if new:
                _touch(con, "items")
        return len(new)

    def items(self, kind: str | None = None) -> pd.DataFrame:
        """Return items (columns ``item``, ``kind``, ``ref``, ``created_at``).

        Args:
            kind: Only items of this kind.

        Returns:
            One row per item, in insertion order.

        Raises:
            StoreError: ``kind`` is not one of :data:`ITEM_KINDS`.
        """
        self._check_kind(kind)
        return self._frame(
            "SELECT item_id, kind, ref, created_at FROM items "
            "WHERE ?1 IS NULL OR kind = ?1 ORDER BY fid",
            (kind,),
            columns=("item", "kind", "ref", "created_at"),
        )

    def _check_kind(self, kind: str | None) -> None:
        if kind is not None and kind not in ITEM_KINDS:
            raise StoreError(f"Unknown item kind {kind!r}; kinds are: {', '.join(ITEM_KINDS)}.")

    def add_annotators(self, df: pd.DataFrame, *, kind: str = "crowd") -> int:
        """Add annotators; ones already stored are left as they are.

        Args:
            df: Column ``annotator``; optional ``kind`` (``crowd``, ``expert``, ``model``,
                ``simulated``…) and ``attrs`` (a JSON-able dict per row).
            kind: Kind for rows without one.

        Returns:
            Number of annotators added.

        Raises:
            ColumnError: The ``annotator`` column is missing or blank, or attrs are not
                JSON-able dicts.
        """
        what = "add_annotators"
        _require_columns(df, ("annotator",), ("kind", "attrs"), what)
        rows = []
        now = _utc_now()
        for annotator, row_kind, attrs in zip(
            _frame_column(df, "annotator"),
            _frame_column(df, "kind"),
            _frame_column(df, "attrs"),
            strict=True,
        ):
            if _is_missing(annotator):
                raise ColumnError(f"{what}: blank annotator id.")
            attrs_value = {} if _is_missing(attrs) else attrs
            if not isinstance(attrs_value, Mapping):
                raise ColumnError(f"{what}: attrs of {annotator!r} must be a dict.")
            try:
                attrs_json = _dumps(dict(attrs_value))
            except (TypeError, ValueError) as exc:
                raise ColumnError(
                    f"{what}: attrs of {annotator!r} are not JSON-able: {exc}"
                ) from exc
            rows.append(
                (
                    _text(annotator),
                    kind if _is_missing(row_kind) else _text(row_kind),
                    now,
                    attrs_json,
                )
            )
        with self._write() as con:
            cursor = con.executemany(
                "INSERT OR IGNORE INTO annotators (annotator_id, kind, created_at, attrs) "
                "VALUES (?, ?, ?, ?)",
                rows,
            )
            added = max(cursor.rowcount, 0)
            if added:
                _touch(con, "annotators")
        return added

    def annotators(self) -> pd.DataFrame:
        """Return annotators (columns ``annotator``, ``kind``, ``created_at``, ``attrs``).

        Returns:
            One row per annotator; ``attrs`` holds dicts.
        """
        return self._frame(
            "SELECT annotator_id, kind, created_at, attrs FROM annotators ORDER BY fid",
            columns=("annotator", "kind", "created_at", "attrs"),
            json_columns=("attrs",),
        )

    # ---------------------------------------------------------------- notices

    def add_notices(self, df: pd.DataFrame) -> int:
        """Store municipal notices (their text and every other field); stored ones are kept.

        Args:
            df: Columns ``notice_id`` and ``text``; any other columns (date, address,
                source…) are kept per notice as JSON, leaving out missing values.

        Returns:
            Number of notices added (a notice stored already with the same content is skipped).

        Raises:
            ColumnError: A column is missing, an id or text is blank, an id repeats, or a field
                is not JSON-able.
            StoreError: A notice id is already stored with different content.
        """
        what = "add_notices"
        _require_columns(df, ("notice_id", "text"), (), what)
        extra = [str(c) for c in df.columns if c not in ("notice_id", "text")]
        wanted: dict[str, tuple[str, str]] = {}
        for position, record in enumerate(df.to_dict(orient="records")):
            notice_id, text = record.get("notice_id"), record.get("text")
            if _is_missing(notice_id) or _is_missing(text):
                raise ColumnError(f"{what}: blank notice_id or text at position {position}.")
            key = _text(notice_id)
            if key in wanted:
                raise ColumnError(f"{what}: notice_id {key!r} appears twice.")
            attrs = {c: record[c] for c in extra if not _is_missing(record[c])}
            try:
                wanted[key] = (str(text), _dumps(attrs))
            except (TypeError, ValueError) as exc:
                raise ColumnError(
                    f"{what}: notice {key!r} has a field that is not JSON-able: {exc}."
                ) from exc
        now = _utc_now()
        with self._write() as con:
            stored = {
                nid: (text, attrs)
                for nid, text, attrs in _select_in(
                    con,
                    "SELECT notice_id, text, attrs FROM notices WHERE notice_id IN ({})",
                    wanted,
                )
            }
            changed = sorted(nid for nid in stored if stored[nid] != wanted[nid])
            if changed:
                raise StoreError(
                    f"{what}: {len(changed)} notice(s) are already stored with different content: "
                    f"{_preview(changed)}. Stored notices never change; give a corrected notice a "
                    "new notice_id."
                )
            new = [
                (nid, text, attrs, now)
                for nid, (text, attrs) in wanted.items()
                if nid not in stored
            ]
            con.executemany(
                "INSERT INTO notices (notice_id, text, attrs, created_at) VALUES (?, ?, ?, ?)", new
            )
            if new:
                _touch(con, "notices")
        return len(new)

    def notices(self) -> pd.DataFrame:
        """Return notices as they were given: ``notice_id``, ``text``, then the other fields.

        Returns:
            One row per notice, in insertion order (missing fields are NaN/None).
        """
        with self._read() as con:
            rows = con.execute("SELECT notice_id, text, attrs FROM notices ORDER BY fid").fetchall()
        records = [
            {"notice_id": nid, "text": text, **json.loads(attrs)} for nid, text, attrs in rows
        ]
        return pd.DataFrame.from_records(
            records, columns=None if records else ["notice_id", "text"]
        )

    # ---------------------------------------------------------------- annotations

    # ---------------------------------------------------------------- notice links

    _NOTICE_LINK_COLUMNS = (
        "notice_id",
        "item",
        "method",
        "confidence",
        "start",
        "end",
        "label",
        "text",
        "kind",
        "date_start",
        "date_end",
    )

    def add_notice_links(self, df: pd.DataFrame, *, model_version: str) -> int:
        """Store links from notice entities to parcels (``geolabel.text``); append-only.

        The ``notice_links`` table is created on first use (projects made before it existed
        get it then), registered as a GeoPackage attributes table, and guarded by the same
        append-only triggers as annotations. Storing the same links again adds nothing.

        Args:
            df: Columns ``notice_id``, ``item`` (a parcel item), ``method``, ``confidence``
                (in [0, 1]), ``start``, ``end``, ``label``, ``text`` (the entity), and
                optionally ``kind``, ``date_start``, ``date_end`` (the notice's, ISO dates)
                -- :func:`geolabel.text.extract.links_frame` gives exactly these.
            model_version: The pipeline that found the entities.

        Returns:
            Number of links added.

        Raises:
            ColumnError: A column is missing or a value is blank or out of range.
            StoreError: An item is not a stored item.
        """
        what = "add_notice_links"
        required = ("notice_id", "item", "method", "confidence", "start", "end", "label", "text")
        _require_columns(df, required, ("kind", "date_start", "date_end"), what)
        if not model_version.strip():
            raise ColumnError(f"{what}: model_version must not be blank.")
        rows = []
        for record in df.to_dict(orient="records"):
            if any(_is_missing(record.get(c)) for c in required):
                raise ColumnError(
                    f"{what}: blank value in a link of notice {record.get('notice_id')!r}."
                )
            try:
                confidence = _confidence(record["confidence"])
                start, end = int(record["start"]), int(record["end"])
            except (TypeError, ValueError) as exc:
                raise ColumnError(f"{what}: notice {record['notice_id']!r}: {exc}.") from exc
            optional = [
                None if _is_missing(record.get(c)) else _text(record.get(c))
                for c in ("kind", "date_start", "date_end")
            ]
            rows.append(
                (
                    _text(record["notice_id"]),
                    _text(record["item"]),
                    _text(record["method"]),
                    confidence,
                    start,
                    end,
                    _text(record["label"]),
                    str(record["text"]),
                    *optional,
                )
            )
        now = _utc_now()
        with self._write() as con:
            self._ensure_notice_links(con)
            self._require_items(con, (str(r[1]) for r in rows), what)
            cursor = con.executemany(
                "INSERT OR IGNORE INTO notice_links (notice_id, item_id, method, confidence, "
                "entity_start, entity_end, entity_label, entity_text, kind, date_start, date_end, "
                "model_version, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(*r, model_version, now) for r in rows],
            )
            added = max(cursor.rowcount, 0)
            if added:
                _touch(con, "notice_links")
        return added

    def notice_links(self, model_version: str | None = None) -> pd.DataFrame:
        """Return stored notice-to-parcel links.

        Args:
            model_version: Only links found by this pipeline version.

        Returns:
            Columns ``notice_id``, ``item``, ``method``, ``confidence``, ``start``, ``end``,
            ``label``, ``text``, ``kind``, ``date_start``, ``date_end``, ``model_version``,
            ``created_at`` (empty when no link was ever stored).
        """
        columns = (*self._NOTICE_LINK_COLUMNS, "model_version", "created_at")
        with self._read() as con:
            exists = con.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'notice_links'"
            ).fetchone()
        if exists is None:
            return pd.DataFrame(columns=list(columns))
        return self._frame(
            "SELECT notice_id, item_id, method, confidence, entity_start, entity_end, "
            "entity_label, entity_text, kind, date_start, date_end, model_version, created_at "
            "FROM notice_links WHERE ?1 IS NULL OR model_version = ?1 ORDER BY fid",
            (model_version,),
            columns=columns,
            dtypes={"confidence": "float64"},
        )

    @staticmethod
    def _ensure_notice_links(con: sqlite3.Connection) -> None:
        """Create the ``notice_links`` table, its triggers and its registration if missing."""
        if con.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'notice_links'"
        ).fetchone():
            return
        con.execute(
            """CREATE TABLE notice_links (
                fid INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
                notice_id TEXT NOT NULL,
                item_id TEXT NOT NULL REFERENCES items (item_id),
                method TEXT NOT NULL,
                confidence REAL CHECK (confidence IS NULL OR (confidence >= 0 AND confidence <= 1)),
                entity_start INTEGER NOT NULL,
                entity_end INTEGER NOT NULL,
                entity_label TEXT NOT NULL,
                entity_text TEXT NOT NULL,
                kind TEXT,
                date_start TEXT,
                date_end TEXT,
                model_version TEXT NOT NULL,
                created_at TEXT NOT NULL,
                UNIQUE (notice_id, item_id, entity_start, entity_end, model_version)
            )"""
        )
        con.execute("CREATE INDEX notice_links_item ON notice_links (item_id)")
        for sql in _append_only_triggers("notice_links"):
            con.execute(sql)
        con.execute(
            "INSERT INTO gpkg_contents (table_name, data_type, identifier, description, "
            "last_change, srs_id) VALUES ('notice_links', 'attributes', 'notice_links', "
            "'geolabel links from notice entities to parcels (append-only)', "
            "strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), 0)"
        )

    # ---------------------------------------------------------------- audits (geolabel.loop.audit)

    def add_audits(self, df: pd.DataFrame, *, round_id: int | None = None) -> int:
        """Store audit results; append-only, and storing the same results again adds nothing.

        The ``audits`` table is created on first use (projects made before it existed get it
        then), like ``notice_links``. Auditors are added as annotators of kind ``auditor``.

        Args:
            df: Columns ``item``, ``stratum``, ``audited_label``, ``auditor``, ``correct``
                (bool), optional ``label`` (the label that was checked) -- checked by
                :func:`geolabel.loop.audit.record_audit`.
            round_id: The round the audit belongs to.

        Returns:
            Number of audit rows added.

        Raises:
            ColumnError: A column is missing or a value is blank.
            StoreError: An item or the round is not in the project.
        """
        what = "add_audits"
        required = ("item", "stratum", "audited_label", "auditor", "correct")
        _require_columns(df, required, ("label",), what)
        rows = []
        for record in df.to_dict(orient="records"):
            if any(_is_missing(record.get(c)) for c in required):
                raise ColumnError(f"{what}: blank value in the audit of {record.get('item')!r}.")
            label = None if _is_missing(record.get("label")) else _text(record.get("label"))
            key = (
                _text(record["item"]),
                _text(record["stratum"]),
                label,
                _text(record["audited_label"]),
                _text(record["auditor"]),
                int(bool(record["correct"])),
            )
            audit_id = hashlib.sha256(_dumps([*key, round_id]).encode()).hexdigest()[:32]
            rows.append((audit_id, *key))
        now = _utc_now()
        with self._write() as con:
            self._ensure_audits(con)
            self._require_items(con, (r[1] for r in rows), what)
            self._require_round(con, round_id)
            self._ensure_annotators(con, (r[5] for r in rows), "auditor", now)
            cursor = con.executemany(
                "INSERT OR IGNORE INTO audits (audit_id, item_id, stratum, label, audited_label, "
                "auditor_id, correct, round_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(*r, round_id, now) for r in rows],
            )
            added = max(cursor.rowcount, 0)
            if added:
                _touch(con, "audits")
        return added

    def audits(self, round_id: int | None = None) -> pd.DataFrame:
        """Return stored audit results.

        Args:
            round_id: Only this round's audits.

        Returns:
            Columns ``item``, ``stratum``, ``label``, ``audited_label``, ``auditor``,
            ``correct`` (bool), ``round_id``, ``created_at`` (empty when none was stored).
        """
        columns = (
            "item", "stratum", "label", "audited_label", "auditor", "correct", "round_id",
            "created_at",
        )  # fmt: skip
        with self._read() as con:
            exists = con.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audits'"
            ).fetchone()
        if exists is None:
            return pd.DataFrame(columns=list(columns)).astype({"correct": "bool"})
        return self._frame(
            "SELECT item_id, stratum, label, audited_label, auditor_id, correct, round_id, "
            "created_at FROM audits WHERE ?1 IS NULL OR round_id = ?1 ORDER BY fid",
            (round_id,),
            columns=columns,
            dtypes={"correct": "bool", "round_id": "Int64"},
        )

    @staticmethod
    def _ensure_audits(con: sqlite3.Connection) -> None:
        """Create the ``audits`` table, its triggers and its registration if missing."""
        if con.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audits'"
        ).fetchone():
            return
        con.execute(
            """CREATE TABLE audits (
                fid INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
                audit_id TEXT NOT NULL UNIQUE,
                item_id TEXT NOT NULL REFERENCES items (item_id),
                stratum TEXT NOT NULL,
                label TEXT,
                audited_label TEXT NOT NULL,
                auditor_id TEXT NOT NULL REFERENCES annotators (annotator_id),
                correct INTEGER NOT NULL CHECK (correct IN (0, 1)),
                round_id INTEGER REFERENCES rounds (round_id),
                created_at TEXT NOT NULL
            )"""
        )
        con.execute("CREATE INDEX audits_item ON audits (item_id)")
        con.execute("CREATE INDEX audits_round ON audits (round_id, stratum)")
        for sql in _append_only_triggers("audits"):
            con.execute(sql)
        con.execute(
            "INSERT INTO gpkg_contents (table_name, data_type, identifier, description, "
            "last_change, srs_id) VALUES ('audits', 'attributes', 'audits', "
            "'geolabel audit results per sampled item (append-only)', "
            "strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), 0)"
        )

    def import_annotations_csv(
        self,
        path: str | os.PathLike[str],
        *,
        source: str = "csv",
        allowed_labels: Collection[str] | None = None,
        annotator_kind: str = "crowd",
    ) -> ImportResult:
        """Import annotations from a CSV file, all or nothing, idempotently.

        The CSV has columns ``item``, ``annotator``, ``label`` and optionally ``created_at``
        (ISO-8601; naive means UTC), ``seconds`` and ``annotation_id``. Other columns are
        ignored, but well-known aliases (``item_id``, ``worker_id``…) are refused with a
        rename hint rather than guessed. Rows without ``annotation_id`` get
        :func:`annotation_id_for`; rows whose id is stored already are skipped, so
        overlapping exports add only what is new. A file whose content (sha256) was imported
        before adds nothing and returns ``already_imported=True``. Annotators seen for the
        first time are added with kind ``annotator_kind``.

        Args:
            path: The CSV file (UTF-8, a BOM is fine).
            source: Where the annotations come from (``"csv"``, ``"label_studio"``…),
                stored with each annotation.
            allowed_labels: The current taxonomy's classes; labels outside it fail the import.
                ``None`` skips the check (callers should pass the taxonomy's labels).
            annotator_kind: Kind given to new annotators.

        Returns:
            What was imported.

        Raises:
            InputFileError: The file is missing or unreadable.
            AnnotationImportError: A column is missing or misnamed, a row is bad, a label is
                not allowed, an item is unknown, or an annotation id is reused for another
                annotation. The import is rolled back: nothing from the file is stored.
        """
        csv_path = Path(path)
        try:
            data = csv_path.read_bytes()
        except OSError as exc:
            raise InputFileError(f"Cannot read annotations file {csv_path}: {exc}.") from exc
        sha = hashlib.sha256(data).hexdigest()

        def load() -> pd.DataFrame:
            try:
                return pd.read_csv(
                    csv_path,
                    dtype=str,
                    keep_default_na=False,
                    encoding="utf-8-sig",
                    skipinitialspace=True,
                )
            except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
                raise AnnotationImportError(
                    f"Import of {csv_path} failed and nothing was stored: it is not a readable "
                    f"UTF-8 CSV ({exc})."
                ) from exc

        return self._import(
            load,
            what=str(csv_path),
            row_name=lambda i: f"line {i + 2}",
            sha=sha,
            source=source,
            path=str(csv_path.resolve()),
            allowed_labels=allowed_labels,
            annotator_kind=annotator_kind,
        )

    def add_annotations(
        self,
        df: pd.DataFrame,
        *,
        source: str,
        allowed_labels: Collection[str] | None = None,
        annotator_kind: str = "crowd",
    ) -> ImportResult:
        """Import annotations from a DataFrame, with the same checks as a CSV import.

        Args:
            df: Columns ``item``, ``annotator``, ``label``; optional ``created_at``,
                ``seconds``, ``annotation_id``.
            source: Where the annotations come from (``"toloka"``, ``"simulator"``…).
            allowed_labels: The current taxonomy's classes (``None`` skips the check).
            annotator_kind: Kind given to new annotators.

        Returns:
            What was imported; the same content twice is ``already_imported``.

        Raises:
            AnnotationImportError: As for :meth:`import_annotations_csv`; nothing is stored.
        """
        index = list(df.index)
        return self._import(
            lambda: df,
            what=f"annotations from {source!r}",
            row_name=lambda i: f"row {index[i]!r}",
            sha=_annotation_sha(df),
            source=source,
            path=None,
            allowed_labels=allowed_labels,
            annotator_kind=annotator_kind,
        )

    def _import(
        self,
        load: Callable[[], pd.DataFrame],
        *,
        what: str,
        row_name: Callable[[int], str],
        sha: str,
        source: str,
        path: str | None,
        allowed_labels: Collection[str] | None,
        annotator_kind: str,
    ) -> ImportResult:
        """Run one import inside one transaction (see :meth:`import_annotations_csv`)."""
        if not source.strip():
            raise AnnotationImportError(f"Import of {what} failed: source must not be blank.")

        def fail(problem: str) -> AnnotationImportError:
            return AnnotationImportError(
                f"Import of {what} failed and was rolled back; nothing from it was stored. "
                f"{problem}."
            )

        with self._write() as con:
            prior = con.execute(
                "SELECT import_id, n_rows FROM imports WHERE sha256 = ?", (sha,)
            ).fetchone()
            if prior is not None:
                return ImportResult(str(prior[0]), int(prior[1]), 0, int(prior[1]), True)
            df = load()
            problem = _column_problem(
                [str(c) for c in df.columns], _ANNOTATION_REQUIRED, _ANNOTATION_OPTIONAL
            )
            if problem is not None:
                raise fail(problem[0].upper() + problem[1:])
            rows, problems = _parse_annotations(df, row_name)
            if problems:
                more = len(problems) - _PREVIEW
                raise fail(
                    f"{len(problems)} row(s) cannot be read: {'; '.join(problems[:_PREVIEW])}"
                    + (f"; and {more} more" if more > 0 else "")
                )
            label_problem = _check_labels([r.label for r in rows], allowed_labels)
            if label_problem is not None:
                raise fail(label_problem)
            try:
                self._require_items(con, (r.item for r in rows), "Unknown items")
            except StoreError as exc:
                raise fail(str(exc).rstrip(".")) from None
            stored = {
                aid: (item, annotator, label)
                for aid, item, annotator, label in _select_in(
                    con,
                    "SELECT annotation_id, item_id, annotator_id, label FROM annotations "
                    "WHERE annotation_id IN ({})",
                    (r.annotation_id for r in rows),
                )
            }
            new: dict[str, _AnnotationRow] = {}
            conflicts: list[str] = []
            for r in rows:
                key = (r.item, r.annotator, r.label)
                earlier = stored.get(r.annotation_id)
                if earlier is None and r.annotation_id in new:
                    other = new[r.annotation_id]
                    earlier = (other.item, other.annotator, other.label)
                if earlier is None:
                    new[r.annotation_id] = r
                elif earlier != key:
                    conflicts.append(f"{r.annotation_id!r}: {earlier} vs {key}")
            if conflicts:
                raise fail(
                    f"{len(conflicts)} annotation id(s) are reused for a different (item, "
                    f"annotator, label): {'; '.join(conflicts[:_PREVIEW])}. Ids must identify "
                    "one annotation; drop the annotation_id column to let geolabel derive ids"
                )
            now = _utc_now()
            import_id = f"imp-{sha[:16]}"
            self._ensure_annotators(con, (r.annotator for r in rows), annotator_kind, now)
            con.execute(
                "INSERT INTO imports (import_id, source, path, sha256, n_rows, n_added, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (import_id, source, path, sha, len(rows), len(new), now),
            )
            added = _insert_annotations(
                con, list(new.values()), source=source, import_id=import_id, imported_at=now
            )
            if added != len(new):  # pragma: no cover - guarded by the checks above
                raise fail(f"expected to add {len(new)} annotations but SQLite added {added}")
            _touch(con, "annotations", "annotators", "imports")
        return ImportResult(import_id, len(rows), len(new), len(rows) - len(new), False)

    def annotations(self, kind: str | None = None) -> pd.DataFrame:
        """Return annotations in the crowd convention, ready for an aggregator.

        Args:
            kind: Only annotations of items of this kind.

        Returns:
            Columns ``annotation_id``, ``item``, ``annotator``, ``label``, ``created_at``,
            ``seconds``, ``source``, ``import_id``, ``kind`` (the item's), in insertion order.

        Raises:
            StoreError: ``kind`` is not one of :data:`ITEM_KINDS`.
        """
        self._check_kind(kind)
        return self._frame(
            "SELECT a.annotation_id, a.item_id, a.annotator_id, a.label, a.created_at, "
            "a.seconds, a.source, a.import_id, i.kind FROM annotations a "
            "JOIN items i ON i.item_id = a.item_id WHERE ?1 IS NULL OR i.kind = ?1 "
            "ORDER BY a.fid",
            (kind,),
            columns=(
                "annotation_id",
                "item",
                "annotator",
                "label",
                "created_at",
                "seconds",
                "source",
                "import_id",
                "kind",
            ),
            dtypes={"seconds": "float64"},
        )

    def imports(self) -> pd.DataFrame:
        """Return the import log.

        Returns:
            Columns ``import_id``, ``source``, ``path``, ``sha256``, ``n_rows``, ``n_added``,
            ``created_at``.
        """
        columns = ("import_id", "source", "path", "sha256", "n_rows", "n_added", "created_at")
        return self._frame(
            f"SELECT {', '.join(columns)} FROM imports ORDER BY fid", columns=columns
        )

    # ---------------------------------------------------------------- taxonomy

    def add_taxonomy_version(
        self, name: str, version: str | int, yaml_text: str, sha256: str
    ) -> bool:
        """Store a taxonomy version (its YAML text), once and for all.

        Args:
            name: Taxonomy name (``"land_use"``).
            version: Version (``Taxonomy.version`` is an int; it is stored as text).
            yaml_text: The YAML as written by the taxonomy module.
            sha256: Its digest, as computed by the taxonomy module.

        Returns:
            True if stored, False if the identical version was stored already.

        Raises:
            StoreError: The version is stored with different content; bump the version.
        """
        version = str(version)
        with self._write() as con:
            row = con.execute(
                "SELECT sha256, yaml FROM taxonomy_versions WHERE name = ? AND version = ?",
                (name, version),
            ).fetchone()
            if row is not None:
                if (row[0], row[1]) == (sha256, yaml_text):
                    return False
                raise StoreError(
                    f"Taxonomy {name!r} version {version!r} is already stored with different "
                    f"content (sha256 {row[0][:12]}…, now {sha256[:12]}…). Stored versions never "
                    "change, so past labels keep their meaning: give the new content a new "
                    "version."
                )
            con.execute(
                "INSERT INTO taxonomy_versions (name, version, sha256, yaml, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (name, version, sha256, yaml_text, _utc_now()),
            )
            _touch(con, "taxonomy_versions")
        return True

    def taxonomy(self, name: str = DEFAULT_TAXONOMY, version: str | int | None = None) -> str:
        """Return the stored YAML text of a taxonomy version.

        Args:
            name: Taxonomy name.
            version: Version; ``None`` for the most recently stored one.

        Returns:
            The YAML text, for the taxonomy module to parse.

        Raises:
            StoreError: No such taxonomy (version) is stored; the message lists what is.
        """
        with self._read() as con:
            resolved = self._resolve_taxonomy(con, name, version)
            row = con.execute(
                "SELECT yaml FROM taxonomy_versions WHERE name = ? AND version = ?",
                (name, resolved),
            ).fetchone()
        return str(row[0])

    def current_taxonomy(
        self, name: str = DEFAULT_TAXONOMY, version: str | int | None = None
    ) -> Taxonomy:
        """Return a stored taxonomy version parsed by :mod:`geolabel.taxonomy`.

        Args:
            name: Taxonomy name.
            version: Version; ``None`` for the most recently stored one.

        Returns:
            The parsed taxonomy (``.class_ids`` gives the labels to import against).

        Raises:
            StoreError: No such taxonomy (version) is stored.
            TaxonomyError: The stored YAML no longer validates.
        """
        from geolabel.taxonomy import taxonomy_from_yaml  # same floor; imported on use

        text = self.taxonomy(name, version)
        where = f"{self._path} (taxonomy {name!r}{'' if version is None else f' v{version}'})"
        return taxonomy_from_yaml(text, source=where)

    def taxonomy_versions(self) -> pd.DataFrame:
        """Return stored taxonomy versions (``name``, ``version``, ``sha256``, ``created_at``).

        Returns:
            One row per version, oldest first.
        """
        return self._frame(
            "SELECT name, version, sha256, created_at FROM taxonomy_versions ORDER BY fid",
            columns=("name", "version", "sha256", "created_at"),
        )

    # ---------------------------------------------------------------- rounds and tasks

    def start_round(self, config: Mapping[str, Any] | None = None) -> int:
        """Record the start of a labeling round.

        Args:
            config: JSON-able settings of the round (strategy, budget, seed…).

        Returns:
            The new round id (1, 2, …).

        Raises:
            StoreError: ``config`` is not JSON-able.
        """
        try:
            config_json = _dumps(dict(config or {}))
        except (TypeError, ValueError) as exc:
            raise StoreError(f"Round config must be JSON-serialisable: {exc}.") from exc
        with self._write() as con:
            cursor = con.execute(
                "INSERT INTO rounds (started_at, status, config) VALUES (?, 'running', ?)",
                (_utc_now(), config_json),
            )
            _touch(con, "rounds")
            round_id = cursor.lastrowid
        if round_id is None:  # pragma: no cover
            raise StoreError("SQLite did not return the new round id.")
        return int(round_id)

    def finish_round(
        self, round_id: int, *, status: Literal["finished", "failed", "cancelled"] = "finished"
    ) -> None:
        """Record the end of a round; a round can be finished once.

        Args:
            round_id: The round.
            status: How it ended.

        Raises:
            StoreError: Unknown round, a round already finished, or a bad status.
        """
        if status not in _ROUND_STATUSES[1:]:
            raise StoreError(f"Bad round status {status!r}; use finished, failed or cancelled.")
        with self._write() as con:
            row = con.execute(
                "SELECT status FROM rounds WHERE round_id = ?", (int(round_id),)
            ).fetchone()
            if row is None:
                raise StoreError(f"Round {round_id} does not exist.")
            if row[0] != "running":
                raise StoreError(f"Round {round_id} is already {row[0]}; it cannot end twice.")
            con.execute(
                "UPDATE rounds SET status = ?, finished_at = ? WHERE round_id = ?",
                (status, _utc_now(), int(round_id)),
            )
            _touch(con, "rounds")

    def rounds(self) -> pd.DataFrame:
        """Return rounds (``round_id``, ``started_at``, ``finished_at``, ``status``, ``config``).

        Returns:
            One row per round; ``config`` holds dicts.
        """
        columns = ("round_id", "started_at", "finished_at", "status", "config")
        return self._frame(
            f"SELECT {', '.join(columns)} FROM rounds ORDER BY round_id",
            columns=columns,
            json_columns=("config",),
        )

    def add_tasks(self, df: pd.DataFrame) -> int:
        """Add tasks; a task id stored already is skipped.

        Args:
            df: Column ``item``; optional ``task_id`` (derived from item, annotator and round
                when absent), ``annotator``, ``round_id``, ``is_gold`` (bool), ``position``.

        Returns:
            Number of tasks added.

        Raises:
            ColumnError: ``item`` is missing or blank.
            StoreError: Unknown items or rounds.
        """
        what = "add_tasks"
        _require_columns(
            df, ("item",), ("task_id", "annotator", "round_id", "is_gold", "position"), what
        )
        now = _utc_now()
        rows = []
        for item, task_id, annotator, round_id, is_gold, position in zip(
            *(
                _frame_column(df, c)
                for c in ("item", "task_id", "annotator", "round_id", "is_gold", "position")
            ),
            strict=True,
        ):
            if _is_missing(item):
                raise ColumnError(f"{what}: blank item.")
            item_id = _text(item)
            annotator_id = None if _is_missing(annotator) else _text(annotator)
            round_value = None if _is_missing(round_id) else int(round_id)
            tid = (
                f"t-{_sha256_json([item_id, annotator_id, round_value])[:16]}"
                if _is_missing(task_id)
                else _text(task_id)
            )
            gold = False if _is_missing(is_gold) else _truthy(is_gold)
            pos = None if _is_missing(position) else int(position)
            rows.append((tid, item_id, annotator_id, round_value, int(gold), pos, now))
        with self._write() as con:
            self._require_items(con, (r[1] for r in rows), what)
            for round_value in {r[3] for r in rows}:
                self._require_round(con, round_value)
            cursor = con.executemany(
                "INSERT OR IGNORE INTO tasks (task_id, item_id, annotator_id, round_id, "
                "is_gold, position, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            added = max(cursor.rowcount, 0)
            if added:
                _touch(con, "tasks")
        return added

    def tasks(self, round_id: int | None = None) -> pd.DataFrame:
        """Return tasks (``task_id``, ``item``, ``annotator``, ``round_id``, ``is_gold``, …).

        Args:
            round_id: Only tasks of this round.

        Returns:
            One row per task, in insertion order.
        """
        columns = ("task_id", "item", "annotator", "round_id", "is_gold", "position", "created_at")
        return self._frame(
            "SELECT task_id, item_id, annotator_id, round_id, is_gold, position, created_at "
            "FROM tasks WHERE ?1 IS NULL OR round_id = ?1 ORDER BY fid",
            (round_id,),
            columns=columns,
            dtypes={"round_id": "Int64", "is_gold": "bool", "position": "Int64"},
        )

    # ---------------------------------------------------------------- predictions and reviews

    def add_predictions(
        self,
        df: pd.DataFrame,
        *,
        model_version: str,
        taxonomy_version: str | int | None = None,
        taxonomy_name: str = DEFAULT_TAXONOMY,
        allowed_labels: Collection[str] | None = None,
    ) -> int:
        """Store model pre-labels; an (item, model_version) stored already is skipped.

        Args:
            df: Columns ``item``, ``label``; optional ``confidence`` (in [0, 1]) and
                ``probas`` (dict label -> probability).
            model_version: Version of the model that predicted.
            taxonomy_version: Taxonomy version the model predicts; latest stored when None.
            taxonomy_name: Taxonomy name.
            allowed_labels: Taxonomy classes to check labels against (``None`` skips).

        Returns:
            Number of predictions added (a resumed run re-adds nothing).

        Raises:
            ColumnError: Missing columns or bad values.
            LabelError: Labels outside ``allowed_labels``.
            StoreError: Unknown items, or the taxonomy version is not stored.
        """
        what = "add_predictions"
        _require_columns(df, ("item", "label"), ("confidence", "probas"), what)
        if not model_version.strip():
            raise ColumnError(f"{what}: model_version must not be blank.")
        rows: list[tuple[str, str, float | None, str]] = []
        for item, label, confidence, probas in zip(
            *(_frame_column(df, c) for c in ("item", "label", "confidence", "probas")),
            strict=True,
        ):
            if _is_missing(item) or _is_missing(label):
                raise ColumnError(f"{what}: blank item or label.")
            try:
                conf = _confidence(confidence)
                proba_map = {} if _is_missing(probas) else dict(probas)
                probas_json = _dumps({str(k): float(v) for k, v in proba_map.items()})
            except (TypeError, ValueError) as exc:
                raise ColumnError(
                    f"{what}: bad confidence/probas for item {item!r}: {exc}."
                ) from exc
            rows.append((_text(item), _text(label), conf, probas_json))
        label_problem = _check_labels([r[1] for r in rows], allowed_labels)
        if label_problem is not None:
            raise LabelError(f"{what}: {label_problem}.")
        now = _utc_now()
        with self._write() as con:
            self._require_items(con, (r[0] for r in rows), what)
            version = self._resolve_taxonomy(con, taxonomy_name, taxonomy_version)
            cursor = con.executemany(
                "INSERT OR IGNORE INTO predictions (item_id, model_version, label, confidence, "
                "probas, taxonomy_name, taxonomy_version, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (item, model_version, label, conf, probas_json, taxonomy_name, version, now)
                    for item, label, conf, probas_json in rows
                ],
            )
            added = max(cursor.rowcount, 0)
            if added:
                _touch(con, "predictions")
        return added

    def predictions(self, model_version: str | None = None) -> pd.DataFrame:
        """Return predictions.

        Args:
            model_version: Only this model version's predictions.

        Returns:
            Columns ``item``, ``model_version``, ``label``, ``confidence``, ``probas`` (dicts),
            ``taxonomy_name``, ``taxonomy_version``, ``created_at``.
        """
        return self._frame(
            "SELECT item_id, model_version, label, confidence, probas, taxonomy_name, "
            "taxonomy_version, created_at FROM predictions "
            "WHERE ?1 IS NULL OR model_version = ?1 ORDER BY fid",
            (model_version,),
            columns=(
                "item",
                "model_version",
                "label",
                "confidence",
                "probas",
                "taxonomy_name",
                "taxonomy_version",
                "created_at",
            ),
            json_columns=("probas",),
            dtypes={"confidence": "float64"},
        )

    def add_review(
        self,
        item: str,
        reviewer: str,
        label: str,
        *,
        taxonomy_version: str | int | None = None,
        taxonomy_name: str = DEFAULT_TAXONOMY,
        previous_label: str | None = None,
        note: str | None = None,
        allowed_labels: Collection[str] | None = None,
    ) -> str:
        """Record an expert's decision on an item (new reviewers are added as ``expert``).

        Args:
            item: The item reviewed.
            reviewer: Annotator id of the expert.
            label: The label decided.
            taxonomy_version: Taxonomy version of ``label``; latest stored when None.
            taxonomy_name: Taxonomy name.
            previous_label: The label the item had before, if any.
            note: Why (free text).
            allowed_labels: Taxonomy classes to check ``label`` against (``None`` skips).

        Returns:
            The new review id, to pass to :meth:`add_consensus`.

        Raises:
            LabelError: ``label`` is not allowed.
            StoreError: Unknown item, or the taxonomy version is not stored.
        """
        label_problem = _check_labels([label], allowed_labels)
        if label_problem is not None:
            raise LabelError(f"add_review: {label_problem}.")
        review_id = f"rev-{uuid.uuid4().hex[:16]}"
        now = _utc_now()
        with self._write() as con:
            self._require_items(con, [item], "add_review")
            version = self._resolve_taxonomy(con, taxonomy_name, taxonomy_version)
            self._ensure_annotators(con, [reviewer], "expert", now)
            con.execute(
                "INSERT INTO reviews (review_id, item_id, reviewer_id, label, previous_label, "
                "note, taxonomy_name, taxonomy_version, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    review_id,
                    item,
                    reviewer,
                    label,
                    previous_label,
                    note,
                    taxonomy_name,
                    version,
                    now,
                ),
            )
            _touch(con, "reviews", "annotators")
        return review_id

    def reviews(self) -> pd.DataFrame:
        """Return review decisions.

        Returns:
            Columns ``review_id``, ``item``, ``reviewer``, ``label``, ``previous_label``,
            ``note``, ``taxonomy_name``, ``taxonomy_version``, ``created_at``.
        """
        return self._frame(
            "SELECT review_id, item_id, reviewer_id, label, previous_label, note, "
            "taxonomy_name, taxonomy_version, created_at FROM reviews ORDER BY fid",
            columns=(
                "review_id",
                "item",
                "reviewer",
                "label",
                "previous_label",
                "note",
                "taxonomy_name",
                "taxonomy_version",
                "created_at",
            ),
        )

    # ---------------------------------------------------------------- consensus

    def add_consensus(
        self,
        df: pd.DataFrame,
        *,
        method: str,
        taxonomy_version: str | int | None = None,
        taxonomy_name: str = DEFAULT_TAXONOMY,
        round_id: int | None = None,
        model_version: str | None = None,
        review_id: str | None = None,
        allowed_labels: Collection[str] | None = None,
    ) -> int:
        """Append consensus labels with their provenance (history is kept; latest wins).

        Every row must be traceable: it needs votes (annotation ids of the same item), or a
        ``model_version`` (an accepted pre-label), or a ``review_id``.

        Args:
            df: Columns ``item``, ``label``; optional ``confidence`` (in [0, 1]) and ``votes``
                (list of annotation ids the label was aggregated from).
            method: How the label was decided (``"majority_vote"``, ``"dawid_skene"``,
                ``"expert_review"``, ``"prelabel_accepted"``…).
            taxonomy_version: Taxonomy version of the labels; latest stored when None.
            taxonomy_name: Taxonomy name.
            round_id: Round that produced the labels.
            model_version: Model whose pre-labels contributed.
            review_id: Review decision behind the labels.
            allowed_labels: Taxonomy classes to check labels against (``None`` skips).

        Returns:
            Number of rows appended.

        Raises:
            ColumnError: Missing columns, blank values, bad confidence or votes.
            LabelError: Labels outside ``allowed_labels``.
            StoreError: Unknown items, votes, round, review or taxonomy version; a row without
                provenance.
        """
        what = "add_consensus"
        _require_columns(df, ("item", "label"), ("confidence", "votes"), what)
        if not method.strip():
            raise ColumnError(f"{what}: method must not be blank.")
        rows: list[tuple[str, str, float | None, list[str]]] = []
        for item, label, confidence, votes in zip(
            *(_frame_column(df, c) for c in ("item", "label", "confidence", "votes")),
            strict=True,
        ):
            if _is_missing(item) or _is_missing(label):
                raise ColumnError(f"{what}: blank item or label.")
            if _is_missing(votes):
                vote_ids: list[str] = []
            elif isinstance(votes, (list, tuple, np.ndarray)):
                vote_ids = [_text(v) for v in votes]
            else:
                raise ColumnError(
                    f"{what}: votes of item {item!r} must be a list of annotation ids, got "
                    f"{type(votes).__name__}."
                )
            try:
                conf = _confidence(confidence)
            except (TypeError, ValueError) as exc:
                raise ColumnError(f"{what}: item {item!r}: {exc}.") from exc
            rows.append((_text(item), _text(label), conf, vote_ids))
        label_problem = _check_labels([r[1] for r in rows], allowed_labels)
        if label_problem is not None:
            raise LabelError(f"{what}: {label_problem}.")
        unsourced = (
            [r[0] for r in rows if not r[3]]
            if model_version is None and (review_id is None)
            else []
        )
        if unsourced:
            raise StoreError(
                f"{what}: {len(unsourced)} row(s) have no provenance (no votes, no "
                f"model_version, no review_id), e.g. items {_preview(unsourced)}; pass the "
                "annotation ids in a 'votes' column, or model_version=/review_id=."
            )
        now = _utc_now()
        with self._write() as con:
            self._require_items(con, (r[0] for r in rows), what)
            version = self._resolve_taxonomy(con, taxonomy_name, taxonomy_version)
            self._require_round(con, round_id)
            if (
                review_id is not None
                and con.execute(
                    "SELECT 1 FROM reviews WHERE review_id = ?", (review_id,)
                ).fetchone()
                is None
            ):
                raise StoreError(f"{what}: review {review_id!r} does not exist.")
            vote_items = dict(
                _select_in(
                    con,
                    "SELECT annotation_id, item_id FROM annotations WHERE annotation_id IN ({})",
                    (v for r in rows for v in r[3]),
                )
            )
            bad_votes = [
                f"{v!r} (item {r[0]!r})" for r in rows for v in r[3] if vote_items.get(v) != r[0]
            ]
            if bad_votes:
                raise StoreError(
                    f"{what}: {len(bad_votes)} vote(s) are not stored annotations of their item: "
                    f"{', '.join(bad_votes[:_PREVIEW])}. Votes must be annotation ids from "
                    "Project.annotations() for the same item."
                )
            con.executemany(
                "INSERT INTO consensus (item_id, label, confidence, method, round_id, "
                "model_version, taxonomy_name, taxonomy_version, review_id, votes, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        item,
                        label,
                        conf,
                        method,
                        round_id,
                        model_version,
                        taxonomy_name,
                        version,
                        review_id,
                        _dumps(votes),
                        now,
                    )
                    for item, label, conf, votes in rows
                ],
            )
            if rows:
                _touch(con, "consensus")
        return len(rows)

    _CONSENSUS_COLUMNS = (
        "item",
        "label",
        "confidence",
        "method",
        "round_id",
        "model_version",
        "taxonomy_name",
        "taxonomy_version",
        "review_id",
        "votes",
        "created_at",
    )
    _CONSENSUS_SELECT = (
        "SELECT item_id, label, confidence, method, round_id, model_version, taxonomy_name, "
        "taxonomy_version, review_id, votes, created_at FROM consensus"
    )

    def current_consensus(self) -> pd.DataFrame:
        """Return the current consensus: the latest row per item.

        Returns:
            One row per item with a consensus, sorted by item; columns ``item``, ``label``,
            ``confidence``, ``method``, ``round_id``, ``model_version``, ``taxonomy_name``,
            ``taxonomy_version``, ``review_id``, ``votes`` (lists), ``created_at``.
        """
        return self._frame(
            f"{self._CONSENSUS_SELECT} WHERE fid IN "
            "(SELECT MAX(fid) FROM consensus GROUP BY item_id) ORDER BY item_id",
            columns=self._CONSENSUS_COLUMNS,
            json_columns=("votes",),
            dtypes={"confidence": "float64", "round_id": "Int64"},
        )

    def consensus_history(self, item: str | None = None) -> pd.DataFrame:
        """Return every consensus row ever stored, oldest first.

        Args:
            item: Only this item's history.

        Returns:
            Same columns as :meth:`current_consensus`.
        """
        return self._frame(
            f"{self._CONSENSUS_SELECT} WHERE ?1 IS NULL OR item_id = ?1 ORDER BY fid",
            (item,),
            columns=self._CONSENSUS_COLUMNS,
            json_columns=("votes",),
            dtypes={"confidence": "float64", "round_id": "Int64"},
        )

    # ---------------------------------------------------------------- summary

    def summary(self) -> ProjectSummary:
        """Describe what the project holds (for ``geolabel info``).

        Returns:
            A frozen record; ``dataclasses.asdict(summary)`` is JSON-able.
        """
        layers = tuple(self.layers())
        with self._read() as con:

            def count(sql: str) -> int:
                return int(con.execute(sql).fetchone()[0])

            by_kind = dict.fromkeys(ITEM_KINDS, 0)
            by_kind.update(
                {
                    str(k): int(n)
                    for k, n in con.execute("SELECT kind, COUNT(*) FROM items GROUP BY kind")
                }
            )
            taxonomy = con.execute(
                "SELECT name, version FROM taxonomy_versions ORDER BY fid DESC LIMIT 1"
            ).fetchone()
            return ProjectSummary(
                path=str(self._path),
                name=self.name,
                crs=self.crs,
                schema_version=int(self._meta["schema_version"]),
                geolabel_version=self._meta.get("geolabel_version", "unknown"),
                created_at=self._meta.get("created_at", ""),
                layers=layers,
                taxonomy_name=None if taxonomy is None else str(taxonomy[0]),
                taxonomy_version=None if taxonomy is None else str(taxonomy[1]),
                counts={
                    "items": count("SELECT COUNT(*) FROM items"),
                    "annotations": count("SELECT COUNT(*) FROM annotations"),
                    "annotators": count("SELECT COUNT(*) FROM annotators"),
                    "consensus": count("SELECT COUNT(DISTINCT item_id) FROM consensus"),
                    "rounds": count("SELECT COUNT(*) FROM rounds"),
                    "imports": count("SELECT COUNT(*) FROM imports"),
                    "notices": count("SELECT COUNT(*) FROM notices"),
                    "taxonomy_versions": count("SELECT COUNT(*) FROM taxonomy_versions"),
                },
                items_by_kind=by_kind,
            )


def _truthy(value: object) -> bool:
    """Parse a boolean cell (``True``, ``1``, ``"yes"``, ``"true"``…).

    Raises:
        ValueError: The value is not a recognisable boolean.
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in ("1", "true", "t", "yes", "y"):
        return True
    if text in ("0", "false", "f", "no", "n"):
        return False
    raise ValueError(f"{value!r} is not a boolean")


# --------------------------------------------------------------------------------------------
# Extension tables (used by geolabel.ingest; any module may add its own plain tables this way)
# --------------------------------------------------------------------------------------------


def ensure_table(
    con: sqlite3.Connection,
    name: str,
    columns: str,
    *,
    description: str,
    append_only: bool = False,
    indexes: Sequence[str] = (),
) -> bool:
    """Create a plain table registered as a GeoPackage ``attributes`` table, if it is missing.

    For modules that keep their own tables in the project (``geolabel.ingest``): the table
    gets the ``fid`` primary key every geolabel table has, is listed in ``gpkg_contents`` so
    QGIS shows it, and, with ``append_only``, the same triggers as annotations. Call it on
    the connection of an open :meth:`Project.transaction`, so the table appears with the
    first rows written to it, or not at all.

    Args:
        con: The connection of an open transaction.
        name: Table name (letters, digits, underscores; not a core geolabel table).
        columns: Column definitions after ``fid`` (``"pull_id TEXT NOT NULL, ..."``).
        description: What the table holds, for ``gpkg_contents``.
        append_only: Refuse updates and deletes of its rows.
        indexes: ``CREATE INDEX`` statements run when the table is created.

    Returns:
        True when the table was created, False when it existed.

    Raises:
        StoreError: The name is not valid or is reserved.
    """
    if (
        not _LAYER_NAME.match(name)
        or name.lower() in TABLES
        or name.lower().startswith(_RESERVED_PREFIXES)
    ):
        raise StoreError(
            f"Table name {name!r} is not valid or is reserved for geolabel or GeoPackage tables."
        )
    exists = con.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
    ).fetchone()
    if exists:
        return False
    con.execute(
        f"CREATE TABLE {_quote(name)} (fid INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, {columns})"
    )
    for sql in indexes:
        con.execute(sql)
    if append_only:
        for sql in _append_only_triggers(name):
            con.execute(sql)
    con.execute(
        "INSERT INTO gpkg_contents (table_name, data_type, identifier, description, "
        "last_change, srs_id) VALUES (?, 'attributes', ?, ?, "
        "strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), 0)",
        (name, name, description),
    )
    return True
