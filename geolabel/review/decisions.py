"""Expert decisions: a final label with reviewer, rationale and time that overrides the consensus.

:func:`record_decision` writes, in one short ``BEGIN IMMEDIATE`` transaction, a row in
``reviews`` (who, label, previous label, rationale, taxonomy version, time), a ``consensus``
row with ``method='expert_review'`` that points at the review (so the current label of the item
is the expert's, with provenance), any taxonomy proposals, and a bump of the item's
``review_state.version``.

Optimistic concurrency: a reviewer decides on the version they loaded
(``Decision.expected_version``). If someone else decided the item since, the versions differ
and :class:`~geolabel.errors.ReviewConflictError` is raised: nothing is written, and the
reviewer reloads the item. A decision without an expected version is accepted only for an item
not yet decided under the current taxonomy: overriding an expert decision always names the
version it overrides. Two decisions can never both succeed on the same version, whichever
process or thread makes them, because the version is read and bumped inside one write
transaction.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from geolabel.errors import (
    ColumnError,
    InputFileError,
    LabelError,
    ReviewConflictError,
    ReviewError,
)
from geolabel.review.evolution import TaxonomyProposal, store_proposals
from geolabel.review.tables import (
    current_taxonomy,
    ensure_review_tables,
    read_connection,
    table_exists,
)

if TYPE_CHECKING:
    from geolabel.store import Project

__all__ = [
    "Conflict",
    "Decision",
    "DecisionBatch",
    "DecisionResult",
    "import_decisions",
    "item_version",
    "record_decision",
    "record_decisions",
    "relabel_items",
    "review_states",
]

_STATE_COLUMNS = (
    "item",
    "version",
    "status",
    "taxonomy_version",
    "review_id",
    "note",
    "updated_at",
)


@dataclass(frozen=True, slots=True)
class Decision:
    """An expert's decision on one item.

    Attributes:
        item: The item decided.
        label: The final label (a class of the current taxonomy).
        reviewer: Who decided (an annotator id; added as an ``expert`` if new).
        rationale: Why (required: decisions must be defensible).
        expected_version: The item's review-state version the reviewer saw; ``None`` only for
            an item not yet decided under the current taxonomy.
        proposals: Taxonomy changes proposed with the decision.
    """

    item: str
    label: str
    reviewer: str
    rationale: str
    expected_version: int | None = None
    proposals: tuple[TaxonomyProposal, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "proposals", tuple(self.proposals))
        for name in ("item", "label", "reviewer"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ReviewError(f"A decision needs a non-blank {name}, got {value!r}.")
        if not isinstance(self.rationale, str) or not self.rationale.strip():
            raise ReviewError(
                f"The decision on {self.item!r} has no rationale; say why the label is right "
                "(it is kept with the label as its provenance)."
            )
        if self.expected_version is not None and (
            isinstance(self.expected_version, bool)
            or not isinstance(self.expected_version, int)
            or self.expected_version < 0
        ):
            raise ReviewError(
                f"expected_version of {self.item!r} must be an integer >= 0, got "
                f"{self.expected_version!r}."
            )
        if not all(isinstance(p, TaxonomyProposal) for p in self.proposals):
            raise ReviewError("Decision.proposals must hold TaxonomyProposal records.")


@dataclass(frozen=True, slots=True)
class DecisionResult:
    """A stored decision.

    Attributes:
        review_id: The ``reviews`` row.
        item: The item.
        label: The label decided.
        previous_label: The item's consensus label before (None if it had none).
        reviewer: Who decided.
        version: The item's review-state version after the decision.
        taxonomy_version: Taxonomy version of the label.
        proposal_ids: Proposals stored with it.
    """

    review_id: str
    item: str
    label: str
    previous_label: str | None
    reviewer: str
    version: int
    taxonomy_version: str
    proposal_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Conflict:
    """A decision refused because the item changed since the reviewer loaded it.

    Attributes:
        item: The item.
        reviewer: Who tried to decide.
        expected_version: The version they decided on.
        current_version: The version now stored.
        message: The explanation shown to the reviewer.
    """

    item: str
    reviewer: str
    expected_version: int | None
    current_version: int
    message: str


@dataclass(frozen=True, slots=True)
class DecisionBatch:
    """The outcome of several decisions: every one is stored or refused as a conflict."""

    stored: tuple[DecisionResult, ...]
    conflicts: tuple[Conflict, ...]


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


def review_states(project: Project) -> pd.DataFrame:
    """Return the review state of every item that has one.

    Args:
        project: An open project.

    Returns:
        Columns ``item``, ``version``, ``status`` (open|decided|relabel),
        ``taxonomy_version``, ``review_id``, ``note``, ``updated_at``.
    """
    with read_connection(project) as con:
        if not table_exists(con, "review_state"):
            return pd.DataFrame({c: pd.Series(dtype=object) for c in _STATE_COLUMNS}).astype(
                {"version": "int64"}
            )
        rows = con.execute(
            "SELECT item_id, version, status, taxonomy_version, review_id, note, updated_at "
            "FROM review_state ORDER BY item_id"
        ).fetchall()
    return pd.DataFrame.from_records(rows, columns=list(_STATE_COLUMNS)).astype(
        {"version": "int64"}
    )


def item_version(project: Project, item: str) -> int:
    """Return an item's review-state version (0 if it was never decided or flagged).

    Args:
        project: An open project.
        item: The item.

    Returns:
        The version to send as ``expected_version``.
    """
    with read_connection(project) as con:
        if not table_exists(con, "review_state"):
            return 0
        row = con.execute("SELECT version FROM review_state WHERE item_id = ?", (item,)).fetchone()
    return 0 if row is None else int(row[0])


def relabel_items(project: Project) -> list[str]:
    """Return the items flagged for relabeling (a taxonomy split made their label ambiguous)."""
    states = review_states(project)
    return states.loc[states["status"] == "relabel", "item"].tolist()


def record_decision(project: Project, decision: Decision) -> DecisionResult:
    """Store one decision: review, overriding consensus, proposals, version bump.

    Args:
        project: An open project.
        decision: The decision.

    Returns:
        The stored decision.

    Raises:
        ReviewConflictError: The item's version is not ``decision.expected_version`` (someone
            decided it meanwhile), or it is already decided and no version was given.
        LabelError: The label is not a class of the current taxonomy (for a parcel: not a
            parcel class).
        StoreError: The item is not in the project.
    """
    with project.transaction() as con:
        ensure_review_tables(con)
        taxonomy = current_taxonomy(project, con)  # inside: an apply cannot slip in between
        kind_row = con.execute(
            "SELECT kind FROM items WHERE item_id = ?", (decision.item,)
        ).fetchone()
        if kind_row is None:
            raise ReviewError(
                f"Item {decision.item!r} is not in {project.path}; check the item id (the "
                "queue lists the items to review)."
            )
        allowed = taxonomy.parcel_class_ids if kind_row[0] == "parcel" else taxonomy.class_ids
        if decision.label not in allowed:
            raise LabelError(
                f"{decision.label!r} is not a label of {taxonomy.label} for a {kind_row[0]}; "
                f"choose one of {', '.join(allowed)}."
            )
        state = con.execute(
            "SELECT version, status, taxonomy_version FROM review_state WHERE item_id = ?",
            (decision.item,),
        ).fetchone()
        version, status, state_tax = (0, "open", None) if state is None else state
        version = int(version)
        if decision.expected_version is None:
            if status == "decided" and state_tax == str(taxonomy.version):
                raise ReviewConflictError(
                    f"Item {decision.item!r} was already decided (version {version}); to "
                    f"override that decision, decide again with expected version {version} "
                    "(--version in the CLI) after reading it."
                )
        elif decision.expected_version != version:
            raise ReviewConflictError(
                f"Item {decision.item!r} changed since you loaded it (you saw version "
                f"{decision.expected_version}, it is now version {version}): someone else "
                "decided it. Reload the item and decide again."
            )
        previous = con.execute(
            "SELECT label FROM consensus WHERE item_id = ? ORDER BY fid DESC LIMIT 1",
            (decision.item,),
        ).fetchone()
        previous_label = None if previous is None else str(previous[0])
        review_id = project.add_review(
            decision.item,
            decision.reviewer,
            decision.label,
            taxonomy_name=taxonomy.name,
            taxonomy_version=taxonomy.version,
            previous_label=previous_label,
            note=decision.rationale.strip(),
        )
        project.add_consensus(
            pd.DataFrame({"item": [decision.item], "label": [decision.label], "confidence": [1.0]}),
            method="expert_review",
            taxonomy_name=taxonomy.name,
            taxonomy_version=taxonomy.version,
            review_id=review_id,
        )
        con.execute(
            "INSERT INTO review_state (item_id, version, status, taxonomy_version, review_id, "
            "note, updated_at) VALUES (?, 1, 'decided', ?, ?, ?, ?) ON CONFLICT (item_id) DO "
            "UPDATE SET version = version + 1, status = 'decided', "
            "taxonomy_version = excluded.taxonomy_version, review_id = excluded.review_id, "
            "note = excluded.note, updated_at = excluded.updated_at",
            (decision.item, str(taxonomy.version), review_id, decision.rationale.strip(), _now()),
        )
        proposal_ids = store_proposals(
            con,
            decision.proposals,
            proposed_by=decision.reviewer,
            taxonomy_name=taxonomy.name,
            taxonomy_version=taxonomy.version,
            review_id=review_id,
            item=decision.item,
        )
    return DecisionResult(
        review_id=review_id,
        item=decision.item,
        label=decision.label,
        previous_label=previous_label,
        reviewer=decision.reviewer,
        version=version + 1,
        taxonomy_version=str(taxonomy.version),
        proposal_ids=tuple(proposal_ids),
    )


def record_decisions(project: Project, decisions: Iterable[Decision]) -> DecisionBatch:
    """Store decisions one by one (one transaction each); conflicts are reported, not raised.

    Args:
        project: An open project.
        decisions: The decisions, in order.

    Returns:
        The stored decisions and the refused ones.

    Raises:
        LabelError: A label is not in the taxonomy (decisions before it are stored).
        ReviewError: An item is not in the project.
    """
    stored: list[DecisionResult] = []
    conflicts: list[Conflict] = []
    for decision in decisions:
        try:
            stored.append(record_decision(project, decision))
        except ReviewConflictError as exc:
            conflicts.append(
                Conflict(
                    item=decision.item,
                    reviewer=decision.reviewer,
                    expected_version=decision.expected_version,
                    current_version=item_version(project, decision.item),
                    message=str(exc),
                )
            )
    return DecisionBatch(stored=tuple(stored), conflicts=tuple(conflicts))


# --------------------------------------------------------------------------------------------
# Decision files: the exported queue filled in by reviewers (CSV/GeoPackage), or JSON Lines
# --------------------------------------------------------------------------------------------

_ALIASES = {
    "label": ("decision_label", "final_label", "label"),
    "rationale": ("decision_rationale", "rationale", "note"),
    "reviewer": ("reviewer", "reviewer_id"),
    "version": ("version", "expected_version"),
}


def _read_table(path: Path, layer: str | None) -> pd.DataFrame:
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return pd.read_csv(path, dtype=str, keep_default_na=False)
        if suffix == ".gpkg":
            import pyogrio

            return pd.DataFrame(
                pyogrio.read_dataframe(path, layer=layer or "review_queue", read_geometry=False)
            )
        if suffix in (".jsonl", ".ndjson"):
            lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
            records: list[dict[str, Any]] = []
            for n, line in enumerate(lines, 1):
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise InputFileError(f"{path}, line {n}: not valid JSON ({exc}).") from exc
            return pd.DataFrame.from_records(records)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        if isinstance(exc, InputFileError):
            raise
        raise InputFileError(f"Cannot read decisions from {path}: {exc}") from exc
    except Exception as exc:  # pyogrio raises its own DataSourceError/DataLayerError
        raise InputFileError(f"Cannot read decisions from {path}: {exc}") from exc
    raise InputFileError(
        f"{path}: decisions are read from .csv, .gpkg (the exported review_queue layer) or "
        ".jsonl files; convert it to one of those."
    )


def _column(frame: pd.DataFrame, key: str) -> str | None:
    for name in _ALIASES[key]:
        if name in frame.columns:
            return name
    return None


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, float) and pd.isna(value)) or not str(value).strip()


def _row_proposal(row: dict[str, Any], where: str) -> tuple[TaxonomyProposal, ...]:
    raw = row.get("proposal")
    if isinstance(raw, dict):
        data: dict[str, Any] = raw
    elif not _blank(row.get("proposal_kind")):
        data = {"kind": str(row["proposal_kind"]).strip()}
        for key in ("text", "new_class", "name", "definition", "colour", "question", "label"):
            value = row.get(f"proposal_{key}")
            if not _blank(value):
                data[key] = str(value).strip()
        for key in ("classes", "items"):
            value = row.get(f"proposal_{key}")
            if not _blank(value):
                data[key] = [v.strip() for v in str(value).split("|") if v.strip()]
    elif isinstance(raw, str) and raw.strip():
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ReviewError(f"{where}: proposal is not valid JSON ({exc}).") from exc
    else:
        return ()
    data.setdefault("rationale", str(row.get("_rationale", "")))
    try:
        return (TaxonomyProposal.from_dict(data),)
    except ReviewError as exc:
        raise ReviewError(f"{where}: {exc}") from exc


def import_decisions(
    project: Project,
    path: str | os.PathLike[str],
    *,
    reviewer: str | None = None,
    layer: str | None = None,
) -> DecisionBatch:
    """Import a decisions file: the exported queue with decisions filled in, or JSON Lines.

    Rows need ``item``, a label (``decision_label`` or ``label``), a rationale
    (``decision_rationale`` or ``rationale``) and a reviewer (column ``reviewer`` or the
    ``reviewer`` argument); ``version`` (as exported) guards against overwriting decisions
    made since the export. Rows with an empty label are skipped (not decided). A proposal is
    given in ``proposal_kind``, ``proposal_classes`` (``|``-separated), ``proposal_text``,
    ``proposal_new_class``, ``proposal_definition``... columns, or as a JSON ``proposal``.
    Every row is checked before anything is stored.

    Args:
        project: An open project.
        path: ``.csv``, ``.gpkg`` or ``.jsonl`` file.
        reviewer: Reviewer for rows without one.
        layer: Layer of a GeoPackage (``review_queue`` by default).

    Returns:
        Stored decisions and conflicts (rows decided by someone else since the export).

    Raises:
        InputFileError: The file is missing or unreadable.
        ColumnError: A required column is missing.
        ReviewError: A row is incomplete or names an unknown item (the message lists them).
        LabelError: Labels outside the current taxonomy (all listed).
    """
    source = Path(path)
    if not source.is_file():
        raise InputFileError(f"Decisions file {source} does not exist.")
    frame = _read_table(source, layer)
    label_col, why_col = _column(frame, "label"), _column(frame, "rationale")
    who_col, version_col = _column(frame, "reviewer"), _column(frame, "version")
    missing = [
        name
        for name, col in (
            ("item", "item" if "item" in frame.columns else None),
            ("decision_label or label", label_col),
            ("decision_rationale or rationale", why_col),
        )
        if col is None
    ]
    if missing:
        raise ColumnError(
            f"{source} lacks column(s) {', '.join(missing)} (it has: "
            f"{', '.join(map(str, frame.columns))}); export the queue with "
            "`geolabel review queue PROJECT --csv FILE` and fill in decision_label, "
            "decision_rationale and reviewer."
        )
    assert label_col is not None and why_col is not None
    taxonomy = project.current_taxonomy()
    known_items = set(project.items()["item"].astype(str))
    decisions: list[Decision] = []
    problems: list[str] = []
    bad_labels: list[str] = []
    for n, raw_row in enumerate(frame.to_dict(orient="records"), start=2):
        row = {str(k): v for k, v in raw_row.items()}
        where = f"{source}, row {n}"
        if _blank(row.get(label_col)):
            continue
        item, label = str(row.get("item", "")).strip(), str(row[label_col]).strip()
        who = reviewer if who_col is None or _blank(row.get(who_col)) else str(row[who_col])
        if item not in known_items:
            problems.append(f"{where}: item {item!r} is not in the project")
            continue
        if label not in taxonomy.class_ids:
            bad_labels.append(f"{label!r} ({where})")
            continue
        if who is None or not str(who).strip():
            problems.append(f"{where}: no reviewer (fill the reviewer column or pass --reviewer)")
            continue
        if _blank(row.get(why_col)):
            problems.append(f"{where}: no rationale for item {item!r}")
            continue
        version: int | None = None
        if version_col is not None and not _blank(row.get(version_col)):
            try:
                version = int(float(str(row[version_col])))
            except ValueError:
                problems.append(f"{where}: version {row[version_col]!r} is not a number")
                continue
        row["_rationale"] = str(row[why_col]).strip()
        try:
            props = _row_proposal(row, where)
            decisions.append(
                Decision(item, label, str(who).strip(), str(row[why_col]).strip(), version, props)
            )
        except ReviewError as exc:
            problems.append(str(exc))
    if bad_labels:
        raise LabelError(
            f"{len(bad_labels)} decision label(s) are not classes of {taxonomy.label}: "
            f"{', '.join(bad_labels[:10])}; valid: {', '.join(taxonomy.class_ids)}. Nothing was "
            "stored."
        )
    if problems:
        raise ReviewError(
            f"{len(problems)} problem(s) in {source}; nothing was stored:\n  - "
            + "\n  - ".join(problems[:20])
        )
    return record_decisions(project, decisions)


def decisions_table(project: Project, items: Sequence[str] | None = None) -> pd.DataFrame:
    """Return expert decisions (the ``reviews`` table) joined with each item's review state.

    Args:
        project: An open project.
        items: Only these items.

    Returns:
        ``reviews`` columns plus ``version`` and ``status`` of the item now.
    """
    reviews = project.reviews()
    if items is not None:
        reviews = reviews[reviews["item"].isin(set(items))]
    states = review_states(project)[["item", "version", "status"]]
    return reviews.merge(states, on="item", how="left")
