"""The ingest tables in the project GeoPackage: pulls, provenance, state and ingested parcels.

========================  =====================================================================
table                     columns (besides ``fid``)
========================  =====================================================================
``ingest_pulls``          pull_id (unique), started_at, finished_at, status (ok|failed),
                          sources (JSON list), config_sha256, n_in, n_out, n_dropped,
                          n_duplicates, report (JSON: the :class:`PullReport`), created_at
``ingest_provenance``     pull_id, source, origin, record_kind, record_id, content_hash, status
                          (added|duplicate|near_duplicate|dropped), canonical_id, similarity,
                          reason, created_at: every record of every stored pull
``ingest_state``          source, field, watermark, pull_id, created_at: the latest row of a
                          source holds the watermark its next pull starts from
``ingest_parcels``        a spatial layer (MULTIPOLYGON, project CRS): parcel_id (unique), apn,
                          address, address_normalized, source, pull_id, content_hash,
                          created_at
========================  =====================================================================

All four are append-only (SQLite triggers), created on a project's first pull, inside the
pull's transaction (:func:`geolabel.store.ensure_table`); ``ingest_parcels`` is written with
GeoPackage geometry blobs so that QGIS and :meth:`geolabel.store.Project.read_layer` read it.
"""

from __future__ import annotations

import json
import sqlite3
import struct
from collections.abc import Iterable, Sequence
from typing import Any, Final

import pandas as pd
import shapely
from pyproj import CRS
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from geolabel.ingest.records import IngestedParcel
from geolabel.store import Project, ensure_table

__all__ = [
    "PARCEL_LAYER",
    "ensure_ingest_tables",
    "gpkg_blob",
    "insert_parcels",
    "latest_watermarks",
    "provenance",
    "pulls",
]

PARCEL_LAYER: Final = "ingest_parcels"
"""Name of the spatial layer ingested parcels go to."""

_TABLES: Final[tuple[tuple[str, str, str, tuple[str, ...]], ...]] = (
    (
        "ingest_pulls",
        "pull_id TEXT NOT NULL UNIQUE, started_at TEXT NOT NULL, finished_at TEXT NOT NULL, "
        "status TEXT NOT NULL CHECK (status IN ('ok', 'failed')), sources TEXT NOT NULL, "
        "config_sha256 TEXT, n_in INTEGER NOT NULL, n_out INTEGER NOT NULL, "
        "n_dropped INTEGER NOT NULL, n_duplicates INTEGER NOT NULL, report TEXT NOT NULL, "
        "created_at TEXT NOT NULL",
        "geolabel ingest pulls with their QA report (append-only)",
        (),
    ),
    (
        "ingest_provenance",
        "pull_id TEXT NOT NULL, source TEXT NOT NULL, origin TEXT NOT NULL, "
        "record_kind TEXT NOT NULL CHECK (record_kind IN ('notice', 'parcel')), record_id TEXT, "
        "content_hash TEXT, status TEXT NOT NULL CHECK (status IN ('added', 'duplicate', "
        "'near_duplicate', 'dropped')), canonical_id TEXT, similarity REAL, reason TEXT, "
        "created_at TEXT NOT NULL",
        "geolabel ingest provenance of every record of every pull (append-only)",
        (
            "CREATE INDEX ingest_provenance_record ON ingest_provenance (record_id)",
            "CREATE INDEX ingest_provenance_hash ON ingest_provenance (content_hash)",
        ),
    ),
    (
        "ingest_state",
        "source TEXT NOT NULL, field TEXT NOT NULL, watermark TEXT NOT NULL, "
        "pull_id TEXT NOT NULL, created_at TEXT NOT NULL",
        "geolabel ingest watermarks per source; the latest row is current (append-only)",
        ("CREATE INDEX ingest_state_source ON ingest_state (source, fid)",),
    ),
)


def _exists(con: sqlite3.Connection, name: str) -> bool:
    row = con.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
    ).fetchone()
    return row is not None


def _srs_id(con: sqlite3.Connection, crs: str) -> int:
    """The ``gpkg_spatial_ref_sys`` id of ``crs``, adding the CRS when it is not there."""
    parsed = CRS.from_user_input(crs)
    authority = parsed.to_authority()
    if authority:
        row = con.execute(
            "SELECT srs_id FROM gpkg_spatial_ref_sys WHERE upper(organization) = ? "
            "AND organization_coordsys_id = ?",
            (authority[0].upper(), int(authority[1])),
        ).fetchone()
        if row:
            return int(row[0])
    srs_id = int(
        con.execute(
            "SELECT COALESCE(MAX(srs_id), 100000) + 1 FROM gpkg_spatial_ref_sys"
        ).fetchone()[0]
    )
    con.execute(
        "INSERT INTO gpkg_spatial_ref_sys (srs_name, srs_id, organization, "
        "organization_coordsys_id, definition) VALUES (?, ?, ?, ?, ?)",
        (
            parsed.name,
            srs_id,
            authority[0] if authority else "NONE",
            int(authority[1]) if authority else srs_id,
            parsed.to_wkt("WKT1_GDAL"),
        ),
    )
    return srs_id


def ensure_ingest_tables(con: sqlite3.Connection, crs: str) -> None:
    """Create the ingest tables and the ``ingest_parcels`` layer if missing.

    Args:
        con: The connection of the pull's open transaction.
        crs: The project CRS (of ``ingest_parcels``).
    """
    for name, columns, description, indexes in _TABLES:
        ensure_table(con, name, columns, description=description, append_only=True, indexes=indexes)
    if _exists(con, PARCEL_LAYER):
        return
    srs_id = _srs_id(con, crs)
    ensure_table(
        con,
        PARCEL_LAYER,
        "geom MULTIPOLYGON, parcel_id TEXT NOT NULL UNIQUE, apn TEXT, address TEXT, "
        "address_normalized TEXT, source TEXT NOT NULL, pull_id TEXT NOT NULL, "
        "content_hash TEXT NOT NULL, created_at TEXT NOT NULL",
        description="geolabel parcels from ingest pulls (append-only)",
        append_only=True,
    )
    con.execute(
        "UPDATE gpkg_contents SET data_type = 'features', srs_id = ? WHERE table_name = ?",
        (srs_id, PARCEL_LAYER),
    )
    con.execute(
        "INSERT INTO gpkg_geometry_columns (table_name, column_name, geometry_type_name, "
        "srs_id, z, m) VALUES (?, 'geom', 'MULTIPOLYGON', ?, 0, 0)",
        (PARCEL_LAYER, srs_id),
    )


def gpkg_blob(geometry: BaseGeometry, srs_id: int) -> bytes:
    """Encode a geometry as a GeoPackage geometry blob (little-endian, XY envelope).

    Args:
        geometry: A non-empty geometry.
        srs_id: Its ``gpkg_spatial_ref_sys`` id.

    Returns:
        ``GP`` header, envelope ``(minx, maxx, miny, maxy)`` and the WKB.
    """
    minx, miny, maxx, maxy = geometry.bounds
    header = struct.pack("<2sBBi4d", b"GP", 0, 0b0000_0011, srs_id, minx, maxx, miny, maxy)
    return header + shapely.to_wkb(geometry, byte_order=1, output_dimension=2)


def insert_parcels(
    con: sqlite3.Connection, parcels: Sequence[IngestedParcel], *, pull_id: str, now: str
) -> int:
    """Append parcels to ``ingest_parcels`` (already made valid and in the project CRS).

    Args:
        con: The pull's transaction.
        parcels: The parcels to store (no id may be stored already).
        pull_id: The pull.
        now: Timestamp.

    Returns:
        Number of parcels stored.
    """
    if not parcels:
        return 0
    srs_id = int(
        con.execute(
            "SELECT srs_id FROM gpkg_geometry_columns WHERE table_name = ?", (PARCEL_LAYER,)
        ).fetchone()[0]
    )
    rows = []
    for p in parcels:
        geometry = p.geometry
        if isinstance(geometry, Polygon):
            geometry = MultiPolygon([geometry])
        rows.append(
            (
                gpkg_blob(geometry, srs_id),
                p.parcel_id,
                p.apn,
                p.address,
                p.address_normalized,
                p.source,
                pull_id,
                p.content_hash,
                now,
            )
        )
    con.executemany(
        f"INSERT INTO {PARCEL_LAYER} (geom, parcel_id, apn, address, address_normalized, "
        "source, pull_id, content_hash, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    bounds = con.execute(
        "SELECT MIN(min_x), MIN(min_y), MAX(max_x), MAX(max_y) FROM gpkg_contents "
        "WHERE table_name = ?",
        (PARCEL_LAYER,),
    ).fetchone()
    union = shapely.total_bounds([p.geometry for p in parcels])
    if bounds[0] is not None:
        union = [
            min(union[0], bounds[0]),
            min(union[1], bounds[1]),
            max(union[2], bounds[2]),
            max(union[3], bounds[3]),
        ]
    con.execute(
        "UPDATE gpkg_contents SET min_x = ?, min_y = ?, max_x = ?, max_y = ?, "
        "last_change = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE table_name = ?",
        (*[float(v) for v in union], PARCEL_LAYER),
    )
    return len(rows)


def _rows(project: Project, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
    """Run a read-only query on its own connection (committed data only)."""
    con = sqlite3.connect(f"{project.path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    try:
        return [tuple(r) for r in con.execute(sql, tuple(params)).fetchall()]
    finally:
        con.close()


def _table_exists(project: Project, name: str) -> bool:
    return bool(
        _rows(project, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
    )


def latest_watermarks(project: Project) -> dict[str, tuple[str, str]]:
    """Return ``source -> (field, watermark)`` of each source's latest stored pull."""
    if not _table_exists(project, "ingest_state"):
        return {}
    rows = _rows(
        project,
        "SELECT source, field, watermark FROM ingest_state s WHERE fid = "
        "(SELECT MAX(fid) FROM ingest_state t WHERE t.source = s.source)",
    )
    return {str(source): (str(f), str(w)) for source, f, w in rows}


def pulls(project: Project) -> pd.DataFrame:
    """Return the project's pulls (one row each, oldest first; ``report`` parsed from JSON).

    Args:
        project: The project.

    Returns:
        Columns ``pull_id``, ``started_at``, ``finished_at``, ``status``, ``sources``,
        ``config_sha256``, ``n_in``, ``n_out``, ``n_dropped``, ``n_duplicates``, ``report``.
    """
    columns = [
        "pull_id",
        "started_at",
        "finished_at",
        "status",
        "sources",
        "config_sha256",
        "n_in",
        "n_out",
        "n_dropped",
        "n_duplicates",
        "report",
    ]
    if not _table_exists(project, "ingest_pulls"):
        return pd.DataFrame(columns=columns)
    rows = _rows(project, f"SELECT {', '.join(columns)} FROM ingest_pulls ORDER BY fid")
    frame = pd.DataFrame(rows, columns=columns)
    frame["sources"] = [json.loads(v) for v in frame["sources"]]
    frame["report"] = [json.loads(v) for v in frame["report"]]
    return frame


def provenance(project: Project, record_id: str | None = None) -> pd.DataFrame:
    """Return the provenance of ingested records (every copy of each, with its pull).

    Args:
        project: The project.
        record_id: Only rows of this record id or whose kept copy it is.

    Returns:
        Columns ``pull_id``, ``source``, ``origin``, ``record_kind``, ``record_id``,
        ``content_hash``, ``status``, ``canonical_id``, ``similarity``, ``reason``,
        ``created_at``.
    """
    columns = [
        "pull_id",
        "source",
        "origin",
        "record_kind",
        "record_id",
        "content_hash",
        "status",
        "canonical_id",
        "similarity",
        "reason",
        "created_at",
    ]
    if not _table_exists(project, "ingest_provenance"):
        return pd.DataFrame(columns=columns)
    rows = _rows(
        project,
        f"SELECT {', '.join(columns)} FROM ingest_provenance WHERE ?1 IS NULL OR record_id = ?1 "
        "OR canonical_id = ?1 ORDER BY fid",
        (record_id,),
    )
    return pd.DataFrame(rows, columns=columns)
