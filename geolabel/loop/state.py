"""What the loop keeps in the project: gold answers, each round's resumable state, routed items.

Three additions to the project GeoPackage, created on first use:

``gold_answers``
    Known answers for gold questions (``item_id``, ``label``, ``source``, ``path``,
    ``created_at``), append-only; the latest row of an item wins, so a corrected gold answer is
    a new row. The same table :mod:`geolabel.interop` fills with platforms' ground truth.
``round_items``
    One row per item a round selected: tier as routed, the reason, the tier it was decided in,
    the label, its confidence, the method, crowd votes used, and the item's share of the cost.
    Append-only, written when the round finishes, so analysts can ask in QGIS why a parcel went
    to an expert and what it cost.
``meta`` key ``loop.round.<id>``
    The round's state while it runs (stage, model version, selected and routed items, the tasks
    of every wave with their purpose) as JSON, so an interrupted round resumes where it stopped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pandas as pd

from geolabel.errors import ColumnError
from geolabel.store import Project, ensure_table

__all__ = [
    "GOLD_TABLE",
    "add_gold",
    "add_round_items",
    "load_round_state",
    "read_gold_table",
    "round_items",
    "save_round_state",
]

GOLD_TABLE = "gold_answers"  # shared with geolabel.interop (platform ground truth lands here too)
_GOLD_COLUMNS = (
    "item_id TEXT NOT NULL REFERENCES items (item_id), label TEXT NOT NULL, "
    "source TEXT NOT NULL, path TEXT, created_at TEXT NOT NULL, UNIQUE (item_id, label, source)"
)
_ROUND_ITEM_COLUMNS = (
    "round_id INTEGER NOT NULL REFERENCES rounds (round_id), "
    "item_id TEXT NOT NULL REFERENCES items (item_id), tier TEXT NOT NULL, reason TEXT, "
    "score REAL, final_tier TEXT, label TEXT, confidence REAL, method TEXT, n_votes INTEGER, "
    "cost REAL, created_at TEXT NOT NULL, UNIQUE (round_id, item_id)"
)


def _exists(project: Project, table: str) -> bool:
    with project.transaction() as con:
        return (
            con.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
            ).fetchone()
            is not None
        )


def add_gold(project: Project, gold: pd.Series, *, source: str) -> int:
    """Store gold answers (item -> label); the same answer from the same source is kept once.

    Args:
        project: An open project.
        gold: Label indexed by item.
        source: Where the answers come from (a file name, ``sample``...).

    Returns:
        Rows added.

    Raises:
        StoreError: An item is not in the project.
        ColumnError: A blank item or label.
    """
    rows = []
    for item, label in zip(gold.index, gold.to_numpy(), strict=True):
        if item is None or label is None or not str(item).strip() or not str(label).strip():
            raise ColumnError(f"Gold answers need an item and a label; got {item!r} -> {label!r}.")
        rows.append((str(item), str(label), source))
    now = pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    items = set(project.items()["item"].astype(str))
    unknown = sorted({r[0] for r in rows} - items)
    if unknown:
        from geolabel.errors import StoreError

        raise StoreError(
            f"{len(unknown)} gold item(s) are not in {project.path}, e.g."
            f" {', '.join(unknown[:5])}; gold answers must be about the project's items."
        )
    with project.transaction() as con:
        ensure_table(
            con,
            GOLD_TABLE,
            _GOLD_COLUMNS,
            description="geolabel gold answers for gold questions (append-only; latest wins)",
            append_only=True,
        )
        cursor = con.executemany(
            f"INSERT OR IGNORE INTO {GOLD_TABLE} (item_id, label, source, created_at)"
            " VALUES (?, ?, ?, ?)",
            [(*r, now) for r in rows],
        )
        return max(cursor.rowcount, 0)


def read_gold_table(project: Project) -> pd.Series:
    """The current gold answer of every gold item (label indexed by item; empty if none)."""
    if not _exists(project, GOLD_TABLE):
        return pd.Series(dtype=object, index=pd.Index([], name="item"))
    with project.transaction() as con:
        rows = con.execute(f"SELECT item_id, label FROM {GOLD_TABLE} ORDER BY fid").fetchall()
    latest = dict(rows)
    return pd.Series(list(latest.values()), index=pd.Index(list(latest), name="item"), dtype=object)


def _key(round_id: int) -> str:
    return f"loop.round.{int(round_id)}"


def load_round_state(project: Project, round_id: int) -> dict[str, Any]:
    """The stored state of a running round (empty for a new one)."""
    raw = project.meta.get(_key(round_id))
    return dict(json.loads(raw)) if raw else {}


def save_round_state(project: Project, round_id: int, state: Mapping[str, Any]) -> None:
    """Store a round's state (replacing the previous one)."""
    project.set_meta(_key(round_id), json.dumps(dict(state), sort_keys=True, default=str))


def add_round_items(project: Project, round_id: int, frame: pd.DataFrame) -> int:
    """Store a finished round's items (see the module docstring); idempotent per item.

    Args:
        project: An open project.
        round_id: The round.
        frame: ``item, tier, reason, score, final_tier, label, confidence, method, n_votes,
            cost``.

    Returns:
        Rows added.
    """
    now = pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    cols = ["tier", "reason", "score", "final_tier", "label", "confidence", "method", "n_votes"]
    rows = []
    for rec in frame.to_dict(orient="records"):
        values = [None if pd.isna(rec.get(c)) else rec.get(c) for c in [*cols, "cost"]]
        rows.append((int(round_id), str(rec["item"]), *values, now))
    with project.transaction() as con:
        ensure_table(
            con,
            "round_items",
            _ROUND_ITEM_COLUMNS,
            description="geolabel items of each labeling round: tier, decision, cost",
            append_only=True,
            indexes=("CREATE INDEX round_items_item ON round_items (item_id)",),
        )
        cursor = con.executemany(
            "INSERT OR IGNORE INTO round_items (round_id, item_id, tier, reason, score, "
            "final_tier, label, confidence, method, n_votes, cost, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        return max(cursor.rowcount, 0)


def round_items(project: Project, round_id: int | None = None) -> pd.DataFrame:
    """Stored round items (``round_id, item, tier, reason, ...``); empty when none."""
    cols = [
        "round_id", "item", "tier", "reason", "score", "final_tier", "label", "confidence",
        "method", "n_votes", "cost", "created_at",
    ]  # fmt: skip
    if not _exists(project, "round_items"):
        return pd.DataFrame(columns=cols)
    with project.transaction() as con:
        rows = con.execute(
            "SELECT round_id, item_id, tier, reason, score, final_tier, label, confidence, "
            "method, n_votes, cost, created_at FROM round_items "
            "WHERE ?1 IS NULL OR round_id = ?1 ORDER BY fid",
            (round_id,),
        ).fetchall()
    return pd.DataFrame(rows, columns=cols)
