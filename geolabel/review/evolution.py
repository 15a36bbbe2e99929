"""Taxonomy evolution: proposals made with review decisions become the next taxonomy version.

A decision may carry a :class:`TaxonomyProposal`: an edge-case rule, an example or
counterexample for a class, a gold item, or a structural change (split a class to add a new
one, merge classes, rename one). Proposals wait in the ``taxonomy_proposals`` table until an
admin applies them with :func:`apply_proposals`, which

1. builds the next version with :func:`evolve_taxonomy` (a pure function: the old version's
   content, the changes, a changelog entry naming who proposed what and why, and a
   :class:`~geolabel.taxonomy.TaxonomyRemap` from the old class ids to the new ones);
2. stores that version, and the remap in ``taxonomy_remaps``;
3. moves every current consensus label of the old version to the new one
   (:func:`~geolabel.taxonomy.remap_labels`; a consensus row keeps its provenance: the same
   votes, review or model, with method ``taxonomy_remap``);
4. flags for relabeling the items a split makes ambiguous, which puts them at the head of the
   review queue (``review_state.status = 'relabel'``). With ``flag="evidence"`` (the
   default), an item of a split class is flagged when its votes mix the split's classes (the
   runner-up class of the family has at least ``min_share`` of its votes), when an expert
   decided it under the old version (the rules they applied changed), or when a proposal
   named it; ``flag="all"`` flags every item of a split class;
5. records gold items, and marks the proposals applied.

The relabel items are also written, as a JSON list, to the project's ``review.relabel`` meta
key, which the loop's routing reads.

Models trained on the old version are refused from then on, because the pre-label pipeline
checks the model card's taxonomy against the project's latest version
(:meth:`geolabel.prelabel.model.ModelCard.check_taxonomy`).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from geolabel.errors import ReviewError
from geolabel.review.tables import ensure_review_tables, read_connection, table_exists
from geolabel.taxonomy import (
    MAX_CODE,
    MIN_CODE,
    Taxonomy,
    TaxonomyRemap,
    remap_labels,
    taxonomy_from_dict,
)

if TYPE_CHECKING:
    import sqlite3

    from geolabel.store import Project

__all__ = [
    "PROPOSAL_KINDS",
    "EvolvedTaxonomy",
    "TaxonomyChange",
    "TaxonomyProposal",
    "apply_proposals",
    "evolve_taxonomy",
    "label_map",
    "proposals",
    "reject_proposals",
    "store_proposals",
    "taxonomy_remaps",
]

ProposalKind = Literal[
    "edge_rule", "counterexample", "example", "gold_item", "split", "merge", "rename"
]
PROPOSAL_KINDS: tuple[str, ...] = (
    "edge_rule",
    "counterexample",
    "example",
    "gold_item",
    "split",
    "merge",
    "rename",
)
"""What a proposal can change."""

_ID_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_PALETTE = (
    "#b5651d",
    "#17becf",
    "#bcbd22",
    "#e377c2",
    "#7f7f7f",
    "#9467bd",
    "#8c564b",
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True, slots=True)
class TaxonomyProposal:
    """A proposed change to the taxonomy, made by a reviewer with a decision.

    Attributes:
        kind: One of :data:`PROPOSAL_KINDS`.
        classes: The classes the change is about: the class that gets a rule, example or
            counterexample; the classes a split carves the new class out of; the classes a
            merge joins; the class a rename renames.
        text: The rule, example or counterexample (required for those kinds).
        new_class: The new class id of a split or rename, or the id a merge keeps.
        name: Display name of a new class (split, rename).
        definition: Definition of a new class (required for a split).
        colour: ``#rrggbb`` colour of a split's new class (a free palette colour when None).
        question: Decision-tree question that leads to a split's new class.
        items: Items that exemplify the change (a split flags them for relabeling; a gold
            item proposal adds them to the gold set with ``label``).
        label: Gold label of a ``gold_item`` proposal.
        rationale: Why (shown in the changelog).
    """

    kind: ProposalKind
    classes: tuple[str, ...] = ()
    text: str = ""
    new_class: str | None = None
    name: str | None = None
    definition: str | None = None
    colour: str | None = None
    question: str | None = None
    items: tuple[str, ...] = ()
    label: str | None = None
    rationale: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "classes", tuple(str(c) for c in self.classes))
        object.__setattr__(self, "items", tuple(str(i) for i in self.items))
        problems: list[str] = []
        if self.kind not in PROPOSAL_KINDS:
            problems.append(f"kind {self.kind!r} is not one of {', '.join(PROPOSAL_KINDS)}")
        for cid in (*self.classes, *([self.new_class] if self.new_class else [])):
            if not _ID_RE.match(cid):
                problems.append(f"{cid!r} is not a class id (letters, digits, underscores)")
        kind = self.kind
        if kind in ("edge_rule", "counterexample", "example"):
            if len(self.classes) != 1:
                problems.append(f"a {kind} names exactly one class, got {len(self.classes)}")
            if not self.text.strip():
                problems.append(f"a {kind} needs its text")
        elif kind == "split":
            if not self.classes:
                problems.append("a split names the class(es) the new class is carved out of")
            if not self.new_class:
                problems.append("a split needs new_class, the id of the new class")
            if not (self.definition or "").strip():
                problems.append("a split needs a definition of the new class")
        elif kind == "merge":
            if len(set(self.classes)) < 2:
                problems.append("a merge names at least two classes")
            if not self.new_class:
                problems.append("a merge needs new_class, the id the merged class keeps")
        elif kind == "rename":
            if len(self.classes) != 1 or not self.new_class:
                problems.append("a rename names one class and its new_class id")
        elif kind == "gold_item" and (not self.items or not self.label):
            problems.append("a gold_item proposal needs items and their label")
        if self.colour is not None and not re.fullmatch(r"#[0-9A-Fa-f]{6}", self.colour):
            problems.append(f"colour {self.colour!r} is not #rrggbb")
        if problems:
            raise ReviewError("Invalid taxonomy proposal: " + "; ".join(problems) + ".")

    def to_dict(self) -> dict[str, Any]:
        """Return the proposal as JSON-able plain data (lists, not tuples)."""
        return {
            "kind": self.kind,
            "classes": list(self.classes),
            "text": self.text,
            "new_class": self.new_class,
            "name": self.name,
            "definition": self.definition,
            "colour": self.colour,
            "question": self.question,
            "items": list(self.items),
            "label": self.label,
            "rationale": self.rationale,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TaxonomyProposal:
        """Build a proposal from :meth:`to_dict` data (unknown keys are an error).

        Raises:
            ReviewError: Unknown keys or an invalid proposal.
        """
        if not isinstance(data, Mapping):
            raise ReviewError(f"A taxonomy proposal must be a mapping, got {type(data).__name__}.")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ReviewError(
                f"Unknown taxonomy proposal field(s) {', '.join(unknown)}; known: "
                f"{', '.join(sorted(known))}."
            )
        if "kind" not in data:
            raise ReviewError(f"A taxonomy proposal needs a kind ({', '.join(PROPOSAL_KINDS)}).")
        values = dict(data)
        for key in ("classes", "items"):
            raw = values.get(key) or ()
            values[key] = tuple([raw] if isinstance(raw, str) else raw)
        return cls(**values)

    @property
    def key(self) -> str:
        """What the proposal changes, without who or why: equal keys are one change."""
        data = self.to_dict()
        data.pop("rationale")
        if self.kind == "split":
            data.pop("items")
        data["classes"] = (
            sorted(data["classes"]) if self.kind in ("split", "merge") else data["classes"]
        )
        return json.dumps(data, sort_keys=True)

    def describe(self) -> str:
        """One line saying what the proposal changes."""
        k, cls = self.kind, ", ".join(self.classes)
        if k in ("edge_rule", "counterexample", "example"):
            return f"{cls}: new {k.replace('_', ' ')}: {self.text.strip()}"
        if k == "split":
            return f"split {cls}: add {self.new_class}"
        if k == "merge":
            return f"merge {cls} into {self.new_class}"
        if k == "rename":
            return f"rename {cls} to {self.new_class}"
        return f"gold item(s) {', '.join(self.items)} labelled {self.label}"


@dataclass(frozen=True, slots=True)
class EvolvedTaxonomy:
    """The next taxonomy version built from proposals.

    Attributes:
        taxonomy: The new version.
        remap: Old class ids -> new ones (lists for splits).
        changes: One line per change, as written to the changelog.
    """

    taxonomy: Taxonomy
    remap: TaxonomyRemap
    changes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TaxonomyChange:
    """What :func:`apply_proposals` did.

    Attributes:
        name: Taxonomy name.
        from_version: The version before.
        to_version: The version now current (equal to ``from_version`` when only gold items
            were added).
        proposal_ids: Proposals marked applied (duplicates of an applied change included).
        changes: Changelog lines of the new version.
        mapping: The remap, old id -> list of new ids.
        n_remapped: Consensus labels moved to the new version.
        relabel: Items flagged for relabeling (a split made their label ambiguous).
        n_gold_added: Gold items added.
    """

    name: str
    from_version: int
    to_version: int
    proposal_ids: tuple[str, ...]
    changes: tuple[str, ...]
    mapping: dict[str, list[str]] = field(default_factory=dict)
    n_remapped: int = 0
    relabel: tuple[str, ...] = ()
    n_gold_added: int = 0


# --------------------------------------------------------------------------------------------
# The pure part: a taxonomy and proposals -> the next version
# --------------------------------------------------------------------------------------------


def _find(classes: list[dict[str, Any]], cid: str, proposal: TaxonomyProposal) -> dict[str, Any]:
    for cls in classes:
        if cls["id"] == cid:
            return cls
    ids = ", ".join(c["id"] for c in classes)
    raise ReviewError(
        f"The proposal '{proposal.describe()}' names class {cid!r}, which the taxonomy does "
        f"not have (classes: {ids}); fix the proposal or reject it."
    )


def _redirect(tree: dict[str, Any] | None, old: str, new: str) -> None:
    """Point every tree reference (root, yes, no) from ``old`` to ``new``."""
    if tree is None:
        return
    if tree["root"] == old:
        tree["root"] = new
    for node in tree["nodes"]:
        for answer in ("yes", "no"):
            if node[answer] == old:
                node[answer] = new


def _collapse(tree: dict[str, Any] | None) -> None:
    """Remove nodes whose two answers lead to the same place."""
    if tree is None:
        return
    changed = True
    while changed:
        changed = False
        for node in list(tree["nodes"]):
            if node["yes"] == node["no"]:
                tree["nodes"].remove(node)
                _redirect(tree, node["id"], node["yes"])
                changed = True


def _split(data: dict[str, Any], p: TaxonomyProposal, mapping: dict[str, list[str]]) -> str:
    classes: list[dict[str, Any]] = data["classes"]
    new_id = str(p.new_class)
    if any(c["id"] == new_id for c in classes):
        raise ReviewError(
            f"Cannot split {', '.join(p.classes)} into {new_id!r}: the taxonomy already has "
            f"a class {new_id!r}; reject the proposal or choose another id."
        )
    sources = [_find(classes, cid, p) for cid in p.classes]
    for src in sources:
        if not src.get("parcel", True):
            raise ReviewError(f"Cannot split pixel-only class {src['id']!r} into parcel labels.")
    used_codes = {c["code"] for c in classes}
    code = next((c for c in range(MIN_CODE, MAX_CODE + 1) if c not in used_codes), None)
    if code is None:  # pragma: no cover - 254 classes
        raise ReviewError("No free mask code left for a new class.")
    used_colours = {c["colour"].lower() for c in classes}
    colour = p.colour or next((c for c in _PALETTE if c not in used_colours), "#b5651d")
    name = p.name or new_id.replace("_", " ").capitalize()
    source_names = " and ".join(s["name"].lower() for s in sources)
    new_cls: dict[str, Any] = {
        "id": new_id,
        "code": code,
        "name": name,
        "colour": colour.lower(),
        "definition": str(p.definition).strip(),
        "parent": None,
        "examples": [p.text.strip()] if p.text.strip() else [],
        "counterexamples": [
            f"A parcel that is clearly {s['name'].lower()} with only a minor other use stays "
            f"{s['name'].lower()}."
            for s in sources
        ],
        "edge_rules": [],
        "parcel": True,
    }
    for src in sources:
        src["counterexamples"].append(
            f"Parcels that combine {source_names} uses in comparable shares are {name} "
            f"({new_id}) from v{data['version']} on."
        )
    last = max(k for k, c in enumerate(classes) if any(c is s for s in sources))
    classes.insert(last + 1, new_cls)
    for targets in mapping.values():
        for source_id in p.classes:
            if source_id in targets and new_id not in targets:
                targets.insert(targets.index(source_id) + 1, new_id)
    tree = data.get("decision_tree")
    if tree is not None:
        parents = [n for n in tree["nodes"] if n["yes"] in p.classes or n["no"] in p.classes]
        if parents:
            target = parents[0]
            node_ids = {n["id"] for n in tree["nodes"]}
            node_id = f"{new_id}_q"
            while node_id in node_ids:
                node_id += "_"
            question = p.question or (
                f"Does the parcel combine {source_names} uses in comparable shares "
                f"({name.lower()})?"
            )
            _redirect(tree, target["id"], node_id)
            tree["nodes"].insert(
                tree["nodes"].index(target),
                {"id": node_id, "question": question, "yes": new_id, "no": target["id"]},
            )
    return f"Split {', '.join(p.classes)}: added {name} ({new_id}): {new_cls['definition']}"


def _merge(data: dict[str, Any], p: TaxonomyProposal, mapping: dict[str, list[str]]) -> str:
    classes: list[dict[str, Any]] = data["classes"]
    keep_id = str(p.new_class)
    members = [_find(classes, cid, p) for cid in dict.fromkeys(p.classes)]
    if any(c["id"] == keep_id for c in classes) and keep_id not in p.classes:
        raise ReviewError(
            f"Cannot merge {', '.join(p.classes)} into {keep_id!r}: that id belongs to another "
            "class; merge into one of the merged classes or a new id."
        )
    keeper = next((m for m in members if m["id"] == keep_id), members[0])
    old_keeper_id = keeper["id"]
    keeper["id"] = keep_id
    if p.name:
        keeper["name"] = p.name
    if p.definition:
        keeper["definition"] = p.definition.strip()
    removed = [m for m in members if m is not keeper]
    for m in removed:
        keeper["examples"].append(f"Formerly {m['name']} ({m['id']}): {m['definition']}")
        classes.remove(m)
    gone = {m["id"] for m in removed} | {old_keeper_id}
    for cls in classes:
        if cls.get("parent") in gone:
            cls["parent"] = keep_id
    tree = data.get("decision_tree")
    for gid in gone:
        _redirect(tree, gid, keep_id)
    _collapse(tree)
    for targets in mapping.values():
        new = [keep_id if t in gone else t for t in targets]
        targets[:] = list(dict.fromkeys(new))
    return f"Merged {', '.join(p.classes)} into {keeper['name']} ({keep_id})."


def _rename(data: dict[str, Any], p: TaxonomyProposal, mapping: dict[str, list[str]]) -> str:
    classes: list[dict[str, Any]] = data["classes"]
    old_id, new_id = p.classes[0], str(p.new_class)
    cls = _find(classes, old_id, p)
    if any(c["id"] == new_id for c in classes):
        raise ReviewError(f"Cannot rename {old_id!r} to {new_id!r}: that id is taken.")
    cls["id"] = new_id
    if p.name:
        cls["name"] = p.name
    for other in classes:
        if other.get("parent") == old_id:
            other["parent"] = new_id
    _redirect(data.get("decision_tree"), old_id, new_id)
    for targets in mapping.values():
        targets[:] = [new_id if t == old_id else t for t in targets]
    return f"Renamed {old_id} to {new_id} ({cls['name']})."


def evolve_taxonomy(
    taxonomy: Taxonomy,
    proposals: Sequence[TaxonomyProposal],
    *,
    date: str | None = None,
    authors: Sequence[str] | None = None,
) -> EvolvedTaxonomy:
    """Build the next taxonomy version from proposals (gold-item proposals are ignored).

    Args:
        taxonomy: The current version.
        proposals: Changes, applied in order.
        date: ISO date of the changelog entry; today (UTC) when None.
        authors: Who proposed each change (same length as ``proposals``), for the changelog.

    Returns:
        The new version (``version + 1``), the remap from the old class ids, and the
        changelog lines.

    Raises:
        ReviewError: No proposal changes the taxonomy, or one names an unknown class or a
            taken id.
        TaxonomyError: The result does not validate (a bug in a proposal's content, such as a
            colour clash; the message lists the problems).
    """
    if authors is not None and len(authors) != len(proposals):
        raise ReviewError("evolve_taxonomy: give one author per proposal.")
    data = taxonomy.to_dict()
    data["version"] = taxonomy.version + 1
    mapping: dict[str, list[str]] = {cid: [cid] for cid in taxonomy.class_ids}
    changes: list[str] = []
    seen: set[str] = set()
    for k, p in enumerate(proposals):
        if p.kind == "gold_item" or p.key in seen:
            continue
        seen.add(p.key)
        if p.kind in ("edge_rule", "counterexample", "example"):
            field_name = {"edge_rule": "edge_rules"}.get(p.kind, p.kind + "s")
            cls = _find(data["classes"], p.classes[0], p)
            text = p.text.strip()
            if text not in cls[field_name]:
                cls[field_name].append(text)
            line = f"{cls['name']}: new {p.kind.replace('_', ' ')}: {text}"
        elif p.kind == "split":
            line = _split(data, p, mapping)
        elif p.kind == "merge":
            line = _merge(data, p, mapping)
        else:
            line = _rename(data, p, mapping)
        who = f" Proposed by {authors[k]}" if authors is not None else ""
        why = f"{' because' if who else ' Why:'} {p.rationale.strip()}" if p.rationale else ""
        changes.append(f"{line}{who}{why}".rstrip().rstrip(".") + ".")
    if not changes:
        raise ReviewError(
            "None of the proposals changes the taxonomy (only gold items, or duplicates); "
            f"{taxonomy.label} stays current."
        )
    today = date or dt.datetime.now(dt.UTC).date().isoformat()
    data["changelog"] = [
        *data["changelog"],
        {"version": data["version"], "date": today, "changes": changes},
    ]
    new = taxonomy_from_dict(data, source=f"{taxonomy.label} + {len(changes)} change(s)")
    remap = TaxonomyRemap(
        from_version=taxonomy.version,
        to_version=new.version,
        mapping={old: t[0] if len(t) == 1 else list(t) for old, t in mapping.items()},
        name=taxonomy.name,
    )
    remap.check(taxonomy, new)
    return EvolvedTaxonomy(taxonomy=new, remap=remap, changes=tuple(changes))


# --------------------------------------------------------------------------------------------
# The stored part: proposals in the project, applying them
# --------------------------------------------------------------------------------------------


def store_proposals(
    con: sqlite3.Connection,
    proposals: Sequence[TaxonomyProposal],
    *,
    proposed_by: str,
    taxonomy_name: str,
    taxonomy_version: str | int,
    review_id: str | None = None,
    item: str | None = None,
) -> list[str]:
    """Insert pending proposals (call inside a project transaction).

    Args:
        con: Connection of an open :meth:`~geolabel.store.Project.transaction`.
        proposals: The proposals.
        proposed_by: Reviewer id.
        taxonomy_name: Taxonomy they apply to.
        taxonomy_version: Version they were made against.
        review_id: Decision they came with.
        item: Item they came with.

    Returns:
        The new proposal ids.
    """
    ensure_review_tables(con)
    ids: list[str] = []
    now = _now()
    for p in proposals:
        pid = f"prop-{uuid.uuid4().hex[:12]}"
        con.execute(
            "INSERT INTO taxonomy_proposals (proposal_id, review_id, item_id, kind, payload, "
            "rationale, proposed_by, taxonomy_name, taxonomy_version, status, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?)",
            (
                pid,
                review_id,
                item,
                p.kind,
                json.dumps(p.to_dict(), sort_keys=True),
                p.rationale,
                proposed_by,
                taxonomy_name,
                str(taxonomy_version),
                now,
            ),
        )
        ids.append(pid)
    return ids


_PROPOSAL_COLUMNS = (
    "proposal_id",
    "review_id",
    "item",
    "kind",
    "proposal",
    "rationale",
    "proposed_by",
    "taxonomy_name",
    "taxonomy_version",
    "status",
    "applied_version",
    "resolved_by",
    "resolved_at",
    "created_at",
)


def proposals(project: Project, status: str | None = None) -> pd.DataFrame:
    """Return stored taxonomy proposals, oldest first.

    Args:
        project: An open project.
        status: Only ``pending``, ``applied`` or ``rejected`` ones.

    Returns:
        Columns ``proposal_id``, ``review_id``, ``item``, ``kind``, ``proposal``
        (:class:`TaxonomyProposal`), ``rationale``, ``proposed_by``, ``taxonomy_name``,
        ``taxonomy_version``, ``status``, ``applied_version``, ``resolved_by``,
        ``resolved_at``, ``created_at``.
    """
    with read_connection(project) as con:
        if not table_exists(con, "taxonomy_proposals"):
            return pd.DataFrame(columns=list(_PROPOSAL_COLUMNS))
        rows = con.execute(
            "SELECT proposal_id, review_id, item_id, kind, payload, rationale, proposed_by, "
            "taxonomy_name, taxonomy_version, status, applied_version, resolved_by, "
            "resolved_at, created_at FROM taxonomy_proposals "
            "WHERE ?1 IS NULL OR status = ?1 ORDER BY fid",
            (status,),
        ).fetchall()
    frame = pd.DataFrame.from_records(rows, columns=list(_PROPOSAL_COLUMNS))
    frame["proposal"] = pd.Series(
        [TaxonomyProposal.from_dict(json.loads(v)) for v in frame["proposal"]],
        index=frame.index,
        dtype=object,
    )
    return frame


def reject_proposals(
    project: Project, proposal_ids: Sequence[str], *, by: str, reason: str = ""
) -> int:
    """Mark pending proposals rejected.

    Args:
        project: An open project.
        proposal_ids: The proposals.
        by: Who rejects them (an admin).
        reason: Why (kept in the proposal's ``resolved_by``/``rationale`` history).

    Returns:
        Number of proposals rejected.

    Raises:
        ReviewError: An id is unknown or not pending.
    """
    with project.transaction() as con:
        ensure_review_tables(con)
        _require_pending(con, proposal_ids)
        now = _now()
        for pid in proposal_ids:
            con.execute(
                "UPDATE taxonomy_proposals SET status = 'rejected', resolved_by = ?, "
                "resolved_at = ?, rationale = rationale || ? WHERE proposal_id = ?",
                (by, now, f" [rejected: {reason}]" if reason else "", pid),
            )
    return len(proposal_ids)


def _require_pending(con: sqlite3.Connection, proposal_ids: Sequence[str]) -> None:
    status = dict(
        con.execute(
            f"SELECT proposal_id, status FROM taxonomy_proposals WHERE proposal_id IN "
            f"({', '.join('?' * len(proposal_ids))})",
            tuple(proposal_ids),
        ).fetchall()
    )
    bad = [
        f"{pid} ({status.get(pid, 'unknown')})"
        for pid in proposal_ids
        if status.get(pid) != "pending"
    ]
    if bad:
        raise ReviewError(
            f"Proposal(s) {', '.join(bad)} are not pending; list pending ones with "
            "`geolabel review apply PROJECT --list`."
        )


def taxonomy_remaps(project: Project) -> pd.DataFrame:
    """Return the stored remaps between taxonomy versions, oldest first.

    Args:
        project: An open project.

    Returns:
        Columns ``name``, ``from_version``, ``to_version``, ``mapping`` (dict old id -> list
        of new ids), ``created_at``.
    """
    columns = ["name", "from_version", "to_version", "mapping", "created_at"]
    with read_connection(project) as con:
        if not table_exists(con, "taxonomy_remaps"):
            return pd.DataFrame(columns=columns)
        rows = con.execute(
            "SELECT name, from_version, to_version, mapping, created_at FROM taxonomy_remaps "
            "ORDER BY fid"
        ).fetchall()
    frame = pd.DataFrame.from_records(rows, columns=columns)
    frame["mapping"] = [json.loads(m) for m in frame["mapping"]]
    return frame


def label_map(project: Project, from_version: int | str) -> dict[str, str]:
    """Old label -> current label, chaining stored remaps (split classes keep their own id).

    For aggregating old annotations under the current taxonomy
    (``DawidSkene(on_unknown="map", label_map=...)``): renamed and merged classes map to
    their new ids; a split class maps to itself (the first target), since the split keeps it.

    Args:
        project: An open project.
        from_version: The version the old labels belong to.

    Returns:
        The mapping, for every class of ``from_version``.
    """
    taxonomy = project.current_taxonomy(version=from_version)
    current: dict[str, str] = {cid: cid for cid in taxonomy.class_ids}
    remaps = taxonomy_remaps(project)
    remaps = remaps[remaps["name"] == taxonomy.name]
    version = str(from_version)
    for _ in range(len(remaps)):
        step = remaps[remaps["from_version"] == version]
        if step.empty:
            break
        row = step.iloc[-1]
        current = {old: row["mapping"].get(new, [new])[0] for old, new in current.items()}
        version = str(row["to_version"])
    return current


def _family_mixed(votes: pd.DataFrame, family: set[str], min_share: float) -> set[str]:
    """Items whose runner-up vote within ``family`` has at least ``min_share`` of the votes."""
    out: set[str] = set()
    if votes.empty:
        return out
    fam = votes[votes["label"].isin(family)]
    totals = votes.groupby("item").size()
    for item, group in fam.groupby("item"):
        counts = group["label"].value_counts()
        if len(counts) >= 2 and counts.iloc[1] / totals[item] >= min_share:
            out.add(str(item))
    return out


def apply_proposals(
    project: Project,
    proposal_ids: Sequence[str] | None = None,
    *,
    applied_by: str,
    flag: Literal["evidence", "all"] = "evidence",
    min_share: float = 0.25,
    date: str | None = None,
) -> TaxonomyChange:
    """Apply pending proposals: the next taxonomy version, remapped labels, relabel flags.

    Args:
        project: An open project.
        proposal_ids: Which pending proposals; all pending ones when None.
        applied_by: Who applies them (an admin).
        flag: Which items of a split class are flagged for relabeling: ``"evidence"`` (votes
            mix the split's classes, or a proposal named the item) or ``"all"``.
        min_share: For ``"evidence"``: the share of an item's votes the runner-up class of the
            split's family must have.
        date: ISO date of the changelog entry; today when None.

    Returns:
        What changed.

    Raises:
        ReviewError: Nothing pending, an id not pending, or a proposal that does not fit the
            current taxonomy (nothing is stored then).
        TaxonomyError: The resulting taxonomy does not validate (nothing is stored).
    """
    if flag not in ("evidence", "all"):
        raise ReviewError(f"flag must be 'evidence' or 'all', got {flag!r}.")
    if not 0 < min_share <= 0.5:
        raise ReviewError(f"min_share must be in (0, 0.5], got {min_share!r}.")
    pending = proposals(project, status="pending")
    if proposal_ids is not None:
        unknown = sorted(set(proposal_ids) - set(pending["proposal_id"]))
        if unknown:
            raise ReviewError(
                f"Proposal(s) {', '.join(unknown)} are not pending (unknown, applied or "
                "rejected); list pending ones with `geolabel review apply PROJECT --list`."
            )
        pending = pending[pending["proposal_id"].isin(set(proposal_ids))]
    if pending.empty:
        raise ReviewError(
            f"No pending taxonomy proposals in {project.path}; reviewers propose changes with "
            "their decisions (`geolabel review decide ... --split ...`)."
        )
    old = project.current_taxonomy()
    props: list[TaxonomyProposal] = list(pending["proposal"])
    content = [i for i, p in enumerate(props) if p.kind != "gold_item"]
    evolved = (
        evolve_taxonomy(
            old,
            [props[i] for i in content],
            date=date,
            authors=[str(pending["proposed_by"].iloc[i]) for i in content],
        )
        if content
        else None
    )
    new = evolved.taxonomy if evolved is not None else old
    relabel: list[str] = []
    n_remapped = 0
    n_gold = 0
    now = _now()
    with project.transaction() as con:
        ensure_review_tables(con)
        if evolved is not None:
            project.add_taxonomy_version(new.name, new.version, new.to_yaml(), new.sha256)
            remap = evolved.remap
            con.execute(
                "INSERT INTO taxonomy_remaps (name, from_version, to_version, mapping, "
                "created_at) VALUES (?, ?, ?, ?, ?)",
                (
                    new.name,
                    str(old.version),
                    str(new.version),
                    json.dumps({k: list(v) for k, v in remap.mapping.items()}),
                    now,
                ),
            )
            current = project.current_consensus()
            current = current[
                (current["taxonomy_name"] == old.name)
                & (current["taxonomy_version"] == str(old.version))
            ]
            moved = remap_labels(current["label"].tolist(), remap, on_split="first")
            current = current.assign(new_label=[str(label) for label in moved.labels])
            ambiguous = set(current["item"].iloc[list(moved.ambiguous)])
            n_remapped = _append_remapped(project, current, new)
            splits = [p for p in props if p.kind == "split"]
            named = {i for p in splits for i in p.items} | {
                str(i)
                for i, p in zip(pending["item"], props, strict=True)
                if p.kind == "split" and isinstance(i, str)
            }
            if flag == "all":
                chosen = ambiguous
            else:
                votes = project.annotations()
                votes = votes[votes["item"].isin(ambiguous)]
                chosen = set()
                for p in splits:
                    chosen |= _family_mixed(votes, set(p.classes), min_share)
                family = {c for p in splits for c in p.classes}
                reviewed = set(
                    current.loc[
                        current["review_id"].notna() & current["label"].isin(family), "item"
                    ]
                )
                chosen = (chosen & ambiguous) | reviewed | named
            relabel = sorted(chosen)
            _flag_relabel(con, relabel, new, splits, now)
            # also for the loop's routing, which reads this key (geolabel.loop.rounds)
            project.set_meta("review.relabel", json.dumps(relabel))
        for pid, p in zip(pending["proposal_id"], props, strict=True):
            if p.kind == "gold_item":
                label = p.label or ""
                if evolved is not None and label in evolved.remap.mapping:
                    label = evolved.remap.targets(label)[0]
                new.get(label)  # refuses a label the taxonomy does not have
                project_items = {str(i) for i in project.items()["item"]}
                missing = [i for i in p.items if i not in project_items]
                if missing:
                    raise ReviewError(
                        f"Gold proposal {pid} names item(s) not in the project: "
                        f"{', '.join(missing)}."
                    )
                con.executemany(
                    "INSERT INTO gold_items (item_id, label, taxonomy_name, taxonomy_version, "
                    "proposal_id, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                    [(i, label, new.name, str(new.version), pid, now) for i in p.items],
                )
                n_gold += len(p.items)
            con.execute(
                "UPDATE taxonomy_proposals SET status = 'applied', applied_version = ?, "
                "resolved_by = ?, resolved_at = ? WHERE proposal_id = ?",
                (str(new.version), applied_by, now, pid),
            )
    return TaxonomyChange(
        name=new.name,
        from_version=old.version,
        to_version=new.version,
        proposal_ids=tuple(pending["proposal_id"]),
        changes=() if evolved is None else evolved.changes,
        mapping={} if evolved is None else {k: list(v) for k, v in evolved.remap.mapping.items()},
        n_remapped=n_remapped,
        relabel=tuple(relabel),
        n_gold_added=n_gold,
    )


def _append_remapped(project: Project, current: pd.DataFrame, new: Taxonomy) -> int:
    """Append the remapped consensus rows, grouped by their provenance."""
    n = 0
    current = current.assign(
        review_key=current["review_id"].fillna(""), model_key=current["model_version"].fillna("")
    )
    current = current.assign(round_key=current["round_id"].fillna(-1).astype(int))
    for keys, group in current.groupby(["review_key", "model_key", "round_key"], sort=False):
        review, model, round_id = (str(keys[0]), str(keys[1]), int(str(keys[2])))
        n += project.add_consensus(
            pd.DataFrame(
                {
                    "item": group["item"],
                    "label": group["new_label"],
                    "confidence": group["confidence"],
                    "votes": group["votes"],
                }
            ),
            method="taxonomy_remap",
            taxonomy_name=new.name,
            taxonomy_version=new.version,
            round_id=None if round_id < 0 else round_id,
            model_version=model or None,
            review_id=review or None,
        )
    return n


def _flag_relabel(
    con: sqlite3.Connection,
    items: Sequence[str],
    new: Taxonomy,
    splits: Sequence[TaxonomyProposal],
    now: str,
) -> None:
    note = "; ".join(f"{', '.join(p.classes)} split: {p.new_class} added" for p in splits)
    con.executemany(
        "INSERT INTO review_state (item_id, version, status, taxonomy_version, note, updated_at) "
        "VALUES (?, 1, 'relabel', ?, ?, ?) ON CONFLICT (item_id) DO UPDATE SET "
        "version = version + 1, status = 'relabel', taxonomy_version = excluded.taxonomy_version, "
        "note = excluded.note, updated_at = excluded.updated_at",
        [(item, str(new.version), note, now) for item in items],
    )
