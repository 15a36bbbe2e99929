"""The review module's own project tables: review state, proposals, gold items, remaps, reviewers.

They are created on first write with :func:`geolabel.store.ensure_table` (registered as
GeoPackage attribute tables, so QGIS lists them), inside the writer's transaction:

=========================  ==================================================================
table                      columns (besides ``fid``)
=========================  ==================================================================
``review_state``           item_id (unique), version (bumped by every decision and relabel
                           flag: the optimistic-concurrency token), status
                           (open|decided|relabel), taxonomy_version, review_id, note,
                           updated_at
``taxonomy_proposals``     proposal_id (unique), review_id, item_id, kind, payload (JSON),
                           rationale, proposed_by, taxonomy_name, taxonomy_version, status
                           (pending|applied|rejected), applied_version, resolved_by,
                           resolved_at, created_at
``gold_items``             item_id, label, taxonomy_name, taxonomy_version, proposal_id,
                           created_at (append-only)
``taxonomy_remaps``        name, from_version, to_version, mapping (JSON), created_at;
                           unique (name, from_version, to_version) (append-only)
``reviewers``              reviewer_id (unique), token_sha256 (unique), role
                           (reviewer|admin), created_at, revoked_at
=========================  ==================================================================
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from typing import TYPE_CHECKING

from geolabel.errors import StoreError
from geolabel.store import DEFAULT_TAXONOMY, ensure_table

if TYPE_CHECKING:
    from geolabel.store import Project
    from geolabel.taxonomy import Taxonomy

__all__ = [
    "REVIEW_TABLES",
    "current_taxonomy",
    "ensure_review_tables",
    "read_connection",
    "table_exists",
]

_BUSY_TIMEOUT_S = 30.0

REVIEW_TABLES: dict[str, tuple[str, str, bool, tuple[str, ...]]] = {
    "review_state": (
        "item_id TEXT NOT NULL UNIQUE REFERENCES items (item_id), "
        "version INTEGER NOT NULL DEFAULT 0 CHECK (version >= 0), "
        "status TEXT NOT NULL CHECK (status IN ('open', 'decided', 'relabel')), "
        "taxonomy_version TEXT, review_id TEXT, note TEXT, updated_at TEXT NOT NULL",
        "geolabel review state per item: version for optimistic concurrency, status",
        False,
        (),
    ),
    "taxonomy_proposals": (
        "proposal_id TEXT NOT NULL UNIQUE, review_id TEXT, item_id TEXT, "
        "kind TEXT NOT NULL, payload TEXT NOT NULL, rationale TEXT NOT NULL DEFAULT '', "
        "proposed_by TEXT NOT NULL, taxonomy_name TEXT NOT NULL, "
        "taxonomy_version TEXT NOT NULL, "
        "status TEXT NOT NULL DEFAULT 'pending' "
        "CHECK (status IN ('pending', 'applied', 'rejected')), "
        "applied_version TEXT, resolved_by TEXT, resolved_at TEXT, created_at TEXT NOT NULL",
        "geolabel taxonomy change proposals made with review decisions",
        False,
        ("CREATE INDEX taxonomy_proposals_status ON taxonomy_proposals (status)",),
    ),
    "gold_items": (
        "item_id TEXT NOT NULL REFERENCES items (item_id), label TEXT NOT NULL, "
        "taxonomy_name TEXT NOT NULL, taxonomy_version TEXT NOT NULL, proposal_id TEXT, "
        "created_at TEXT NOT NULL",
        "geolabel gold items added by review (append-only)",
        True,
        (),
    ),
    "taxonomy_remaps": (
        "name TEXT NOT NULL, from_version TEXT NOT NULL, to_version TEXT NOT NULL, "
        "mapping TEXT NOT NULL, created_at TEXT NOT NULL, "
        "UNIQUE (name, from_version, to_version)",
        "geolabel label remaps between taxonomy versions (append-only)",
        True,
        (),
    ),
    "reviewers": (
        "reviewer_id TEXT NOT NULL UNIQUE, token_sha256 TEXT NOT NULL UNIQUE, "
        "role TEXT NOT NULL DEFAULT 'reviewer' CHECK (role IN ('reviewer', 'admin')), "
        "created_at TEXT NOT NULL, revoked_at TEXT",
        "geolabel review web app reviewers (tokens stored as SHA-256)",
        False,
        (),
    ),
}
"""Table name -> (columns, description, append-only, indexes)."""


def ensure_review_tables(con: sqlite3.Connection) -> None:
    """Create every review table that is missing (call inside a project transaction).

    Args:
        con: The connection of an open :meth:`geolabel.store.Project.transaction`.
    """
    for name, (columns, description, append_only, indexes) in REVIEW_TABLES.items():
        ensure_table(
            con,
            name,
            columns,
            description=description,
            append_only=append_only,
            indexes=indexes,
        )


def table_exists(con: sqlite3.Connection, name: str) -> bool:
    """Return whether the project has the table ``name`` (review tables appear on first write)."""
    row = con.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
    ).fetchone()
    return row is not None


@contextlib.contextmanager
def read_connection(project: Project) -> Iterator[sqlite3.Connection]:
    """Yield a short-lived read-only connection to the project (busy timeout set).

    Args:
        project: An open project.

    Yields:
        The connection; closed on exit.

    Raises:
        StoreError: The file cannot be opened.
    """
    if project.closed:
        raise StoreError(f"Project {project.path} is closed; open it again with Project.open.")
    try:
        con = sqlite3.connect(
            f"{project.path.resolve().as_uri()}?mode=ro", uri=True, timeout=_BUSY_TIMEOUT_S
        )
    except sqlite3.Error as exc:
        raise StoreError(f"Cannot read {project.path}: {exc}") from exc
    try:
        con.execute(f"PRAGMA busy_timeout = {int(_BUSY_TIMEOUT_S * 1000)}")
        yield con
    except sqlite3.Error as exc:
        raise StoreError(f"Cannot read the review tables of {project.path}: {exc}") from exc
    finally:
        con.close()


_TAXONOMIES: dict[str, Taxonomy] = {}
_TAXONOMY_CACHE_SIZE = 16


def current_taxonomy(project: Project, con: sqlite3.Connection | None = None) -> Taxonomy:
    """Return the project's current taxonomy, parsing each stored version only once.

    Same answer as :meth:`geolabel.store.Project.current_taxonomy`, but the parsed taxonomy is
    cached by its SHA-256, so a decision's write transaction does not spend its time parsing
    YAML.

    Args:
        project: An open project.
        con: A connection to read with (the open transaction's, inside one).

    Returns:
        The latest stored version of the default taxonomy.

    Raises:
        StoreError: No taxonomy is stored.
    """
    sql = "SELECT sha256 FROM taxonomy_versions WHERE name = ? ORDER BY fid DESC LIMIT 1"
    if con is not None:
        row = con.execute(sql, (DEFAULT_TAXONOMY,)).fetchone()
    else:
        with read_connection(project) as reader:
            row = reader.execute(sql, (DEFAULT_TAXONOMY,)).fetchone()
    cached = None if row is None else _TAXONOMIES.get(str(row[0]))
    if cached is not None:
        return cached
    taxonomy = project.current_taxonomy()
    if len(_TAXONOMIES) >= _TAXONOMY_CACHE_SIZE:
        _TAXONOMIES.clear()
    _TAXONOMIES[taxonomy.sha256] = taxonomy
    return taxonomy
