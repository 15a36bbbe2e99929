"""Versioned label taxonomies from YAML: classes, mask codes, colours, decision tree, guidelines."""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
import json
import os
import re
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, NoReturn, TypeGuard

import yaml

from geolabel.errors import LabelError, TaxonomyError

__all__ = [
    "BACKGROUND_CODE",
    "IGNORE_CODE",
    "ITEM_KINDS",
    "MAX_CODE",
    "MIN_CODE",
    "RESERVED_CODES",
    "ChangelogEntry",
    "DecisionNode",
    "DecisionTree",
    "RemapResult",
    "Taxonomy",
    "TaxonomyClass",
    "TaxonomyRemap",
    "dump_taxonomy",
    "load_remap",
    "load_taxonomy",
    "remap_from_dict",
    "remap_labels",
    "render_guidelines",
    "taxonomy_from_dict",
    "taxonomy_from_yaml",
]

ITEM_KINDS: tuple[str, ...] = ("parcel", "pixel", "poi", "notice", "tile")
"""What a taxonomy labels; ``item_kind`` must be one of these."""

BACKGROUND_CODE = 0
"""Mask value for unlabeled / background pixels; never a class code."""

IGNORE_CODE = 255
"""Mask value for pixels the loss and the metrics ignore; never a class code."""

RESERVED_CODES: Mapping[int, str] = MappingProxyType(
    {BACKGROUND_CODE: "unlabeled/background", IGNORE_CODE: "ignore"}
)
MIN_CODE = 1
MAX_CODE = 254

_ID_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_COLOUR_RE = re.compile(r"#[0-9A-Fa-f]{6}")
_ID_RULE = "use letters, digits and underscores, starting with a letter (e.g. 'residential')"
_CODE_RULE = f"use an integer in {MIN_CODE}..{MAX_CODE} (0 and 255 are reserved)"

_TOP_REQUIRED = ("name", "version", "item_kind", "classes")
_TOP_OPTIONAL = ("description", "changelog", "decision_tree")
_CLASS_REQUIRED = ("id", "code", "name", "colour", "definition")
_CLASS_OPTIONAL = ("parent", "examples", "counterexamples", "edge_rules", "parcel")
_CLASS_LISTS = ("examples", "counterexamples", "edge_rules")
_TREE_KEYS = ("root", "nodes")
_NODE_KEYS = ("id", "question", "yes", "no")
_CHANGELOG_KEYS = ("version", "date", "changes")
_REMAP_REQUIRED = ("from_version", "to_version", "mapping")
_REMAP_OPTIONAL = ("name",)


# --------------------------------------------------------------------------------------------
# YAML reading and writing
# --------------------------------------------------------------------------------------------

_BOOL_TAG = "tag:yaml.org,2002:bool"
_YAML12_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")


class _LineDict(dict[Any, Any]):
    """A mapping read from YAML that remembers the line it starts on, for error messages."""

    __slots__ = ("line",)
    line: int


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """Safe loader with YAML 1.2 booleans, line numbers and an error on duplicate keys.

    YAML 1.1 reads ``yes``/``no``/``on``/``off`` as booleans, which would turn the decision
    tree's ``yes:``/``no:`` keys into ``True``/``False``; here only true/false are booleans.
    libyaml's parser when PyYAML has it (ten times faster than the pure-Python one).
    """


class _Dumper(yaml.SafeDumper):
    """Safe dumper matching :class:`_Loader`: ``yes``/``no`` stay unquoted, lists are indented."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        """Indent block sequences under their key instead of flush with it."""
        super().increase_indent(flow, False)


for _cls in (_Loader, _Dumper):
    _cls.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != _BOOL_TAG]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    _cls.add_implicit_resolver(_BOOL_TAG, _YAML12_BOOL, list("tTfF"))


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.Node) -> _LineDict:
    """Build a mapping that records its line and refuses duplicate keys."""
    if not isinstance(node, yaml.MappingNode):  # pragma: no cover - the tag guarantees it
        raise yaml.constructor.ConstructorError(None, None, "expected a mapping", node.start_mark)
    loader.flatten_mapping(node)
    data = _LineDict()
    data.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                "while reading a mapping",
                node.start_mark,
                "found an unusable key",
                key_node.start_mark,
            ) from None
        if key in data:
            raise yaml.constructor.ConstructorError(
                "while reading a mapping",
                node.start_mark,
                f"found duplicate key {key!r}; each key may appear only once in a mapping",
                key_node.start_mark,
            )
        data[key] = loader.construct_object(value_node, deep=True)
    return data


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    """Write multi-line strings as literal blocks and long ones folded, like a hand-written file."""
    style = "|" if "\n" in data else ">" if len(data) > 80 else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)
_Dumper.add_representer(str, _represent_str)


def _parse_yaml(text: str, source: str) -> Any:
    """Parse YAML text, turning syntax errors into a :class:`TaxonomyError` with line and column."""
    try:
        return yaml.load(text, Loader=_Loader)  # _Loader is a SafeLoader: no arbitrary objects
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise TaxonomyError(
            f"{source}: YAML error{where}: {problem}. Fix the YAML at that line and load again."
        ) from exc


def _read_yaml(path: str | os.PathLike[str], what: str) -> tuple[Any, str]:
    """Read and parse one YAML file; every failure is a :class:`TaxonomyError` naming the file."""
    p = Path(path)
    source = str(p)
    if not p.exists():
        raise TaxonomyError(
            f"{source}: {what} file not found; check the path "
            f"(relative paths are resolved from {Path.cwd()})"
        )
    if p.is_dir():
        raise TaxonomyError(f"{source}: is a directory; pass the path of a {what} .yaml file")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise TaxonomyError(f"{source}: is not UTF-8 text; save the {what} as UTF-8") from exc
    except OSError as exc:
        raise TaxonomyError(f"{source}: cannot read the {what} file ({exc.strerror})") from exc
    return _parse_yaml(text, source), source


def _to_yaml_text(data: Mapping[str, Any], header: str) -> str:
    body = yaml.dump(
        dict(data),
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=88,
    )
    return f"{header}\n{body}"


# --------------------------------------------------------------------------------------------
# Validation of plain data: every check appends one line to ``problems``
# --------------------------------------------------------------------------------------------


def _at(label: str, raw: object) -> str:
    """Name a place in the data, with its YAML line when known."""
    line = getattr(raw, "line", None)
    return f"{label} (line {line})" if line else label


def _suggest(word: object, options: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for a near miss, else an empty string."""
    if not isinstance(word, str):
        return ""
    opts = list(options)
    folded = {o.casefold(): o for o in opts}
    if word.casefold() in folded and folded[word.casefold()] != word:
        return f" (did you mean {folded[word.casefold()]!r}?)"
    close = difflib.get_close_matches(word, opts, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _kind_of(value: object) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, str):
        return f"the string {value!r}"
    return f"{type(value).__name__} {value!r}"


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_identifier(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and _ID_RE.fullmatch(value) is not None


def _check_keys(
    problems: list[str],
    where: str,
    raw: Mapping[Any, Any],
    required: Sequence[str],
    optional: Sequence[str],
) -> None:
    """Report missing or empty required keys and unknown keys (with a did-you-mean)."""
    allowed = (*required, *optional)
    for key in required:
        if key not in raw:
            problems.append(f"{where}: missing required key {key!r}")
        elif raw[key] is None:
            hint = ""
            if key == "colour":
                hint = ' (an unquoted "#" starts a YAML comment: write colour: "#e8c547")'
            problems.append(f"{where}: key {key!r} is empty{hint}")
    for key in raw:
        if key not in allowed:
            problems.append(
                f"{where}: unknown key {key!r}{_suggest(key, allowed)}; "
                f"allowed keys are {', '.join(allowed)}"
            )


def _check_identifier(problems: list[str], where: str, key: str, value: object) -> str | None:
    """Return ``value`` if it is a valid identifier; report it unless it is absent."""
    if _is_identifier(value):
        return value
    if value is not None:
        problems.append(f"{where}: {key} {value!r} is not a valid identifier; {_ID_RULE}")
    return None


def _check_text(problems: list[str], where: str, key: str, value: object) -> None:
    if value is None:
        return
    if not isinstance(value, str) or not value.strip():
        problems.append(f"{where}: {key} must be a non-empty string, got {_kind_of(value)}")


def _check_text_list(problems: list[str], where: str, key: str, value: object) -> None:
    if value is None:
        return
    if not isinstance(value, list | tuple):
        problems.append(
            f"{where}: {key} must be a list of strings, got {_kind_of(value)}; "
            "write each entry on its own '- ' line"
        )
        return
    for k, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            problems.append(f"{where}: {key}[{k}] must be a non-empty string, got {_kind_of(item)}")


def _check_positive_int(problems: list[str], where: str, key: str, value: object) -> int | None:
    """Return ``value`` if it is a positive integer; report it unless it is absent."""
    if _is_int(value) and value >= 1:
        return value
    if value is not None:
        problems.append(
            f"{where}: {key} must be a positive integer (1, 2, ...), got {value!r}; "
            "write it without quotes or decimals"
        )
    return None


def _check_class_fields(problems: list[str], where: str, raw: object) -> None:
    """Check one class on its own: keys, id, code, name, colour, parent, texts, ``parcel``."""
    if not isinstance(raw, Mapping):
        problems.append(
            f"{where}: expected a mapping with keys {', '.join(_CLASS_REQUIRED)}, "
            f"got {_kind_of(raw)}"
        )
        return
    _check_keys(problems, where, raw, _CLASS_REQUIRED, _CLASS_OPTIONAL)
    _check_identifier(problems, where, "id", raw.get("id"))
    code = raw.get("code")
    if code is not None:
        if not _is_int(code):
            problems.append(f"{where}: code {code!r} is not an integer; {_CODE_RULE}")
        elif code in RESERVED_CODES:
            problems.append(
                f"{where}: code {code} is reserved for {RESERVED_CODES[code]} in masks; "
                f"use a code in {MIN_CODE}..{MAX_CODE}"
            )
        elif not MIN_CODE <= code <= MAX_CODE:
            problems.append(f"{where}: code {code} is out of range; {_CODE_RULE}")
    _check_text(problems, where, "name", raw.get("name"))
    colour = raw.get("colour")
    if colour is not None and (not isinstance(colour, str) or not _COLOUR_RE.fullmatch(colour)):
        problems.append(
            f"{where}: colour {colour!r} is not a hex colour; "
            'write it as a quoted "#rrggbb" string, e.g. "#e8c547"'
        )
    parent = raw.get("parent")
    if parent is not None:
        _check_identifier(problems, where, "parent", parent)
    _check_text(problems, where, "definition", raw.get("definition"))
    for key in _CLASS_LISTS:
        _check_text_list(problems, where, key, raw.get(key))
    parcel = raw.get("parcel")
    if parcel is not None and not isinstance(parcel, bool):
        problems.append(f"{where}: parcel must be true or false, got {parcel!r}")


def _class_where(index: int, raw: object) -> str:
    cid = raw.get("id") if isinstance(raw, Mapping) else None
    label = f"class {cid!r}" if _is_identifier(cid) else f"classes[{index}]"
    return _at(label, raw)


def _check_classes(problems: list[str], classes: object) -> tuple[list[str], set[str]]:
    """Check the class list and its cross-class rules; return (valid ids, ids with parcel false)."""
    if not isinstance(classes, list | tuple) or not classes:
        problems.append(
            f"classes: must be a non-empty list of classes, got {_kind_of(classes)}; "
            "add at least one '- id: ...' entry"
        )
        return [], set()
    ids: list[str] = []
    non_parcel: set[str] = set()
    first_id: dict[str, str] = {}
    first_folded: dict[str, str] = {}
    first_code: dict[int, str] = {}
    first_colour: dict[str, str] = {}
    first_name: dict[str, str] = {}
    parents: dict[str, tuple[str, str]] = {}
    for i, raw in enumerate(classes):
        where = _class_where(i, raw)
        _check_class_fields(problems, where, raw)
        if not isinstance(raw, Mapping):
            continue
        cid = raw.get("id")
        if _is_identifier(cid):
            if cid in first_id:
                problems.append(
                    f"{where}: duplicate class id {cid!r}, already used by {first_id[cid]}; "
                    "class ids must be unique"
                )
            elif cid.casefold() in first_folded:
                problems.append(
                    f"{where}: class id {cid!r} differs only in case from "
                    f"{first_folded[cid.casefold()]}; make the ids differ by more than case"
                )
            else:
                first_id[cid] = where
                first_folded[cid.casefold()] = where
                ids.append(cid)
                if raw.get("parcel") is False:
                    non_parcel.add(cid)
                parent = raw.get("parent")
                if _is_identifier(parent):
                    parents[cid] = (parent, where)
        code = raw.get("code")
        if _is_int(code) and MIN_CODE <= code <= MAX_CODE:
            if code in first_code:
                problems.append(
                    f"{where}: duplicate code {code}, already used by {first_code[code]}; "
                    f"give every class its own code in {MIN_CODE}..{MAX_CODE}"
                )
            else:
                first_code[code] = where
        colour = raw.get("colour")
        if isinstance(colour, str) and _COLOUR_RE.fullmatch(colour):
            if colour.lower() in first_colour:
                problems.append(
                    f"{where}: colour {colour!r} is already used by "
                    f"{first_colour[colour.lower()]}; give every class a distinct colour"
                )
            else:
                first_colour[colour.lower()] = where
        name = raw.get("name")
        if isinstance(name, str) and name.strip():
            if name.strip().casefold() in first_name:
                problems.append(
                    f"{where}: name {name!r} is already used by "
                    f"{first_name[name.strip().casefold()]}; display names must be unique"
                )
            else:
                first_name[name.strip().casefold()] = where
    _check_parents(problems, parents, set(ids))
    return ids, non_parcel


def _check_parents(
    problems: list[str], parents: Mapping[str, tuple[str, str]], ids: Collection[str]
) -> None:
    """Parents must be other known classes, and following parents must never loop."""
    links: dict[str, str] = {}
    for cid, (parent, where) in parents.items():
        if parent == cid:
            problems.append(f"{where}: class {cid!r} is its own parent; set parent to null")
        elif parent not in ids:
            problems.append(
                f"{where}: parent {parent!r} is not a class id in this taxonomy"
                f"{_suggest(parent, ids)}; use the id of another class, or null"
            )
        else:
            links[cid] = parent
    reported: set[frozenset[str]] = set()
    for start in links:
        path: list[str] = []
        seen: dict[str, int] = {}
        node = start
        while node in links and node not in seen:
            seen[node] = len(path)
            path.append(node)
            node = links[node]
        if node in seen:
            cycle = path[seen[node] :]
            if frozenset(cycle) not in reported:
                reported.add(frozenset(cycle))
                problems.append(
                    f"{parents[cycle[0]][1]}: parent cycle "
                    f"{' -> '.join([*cycle, cycle[0]])}; the hierarchy must be a tree, "
                    "so set one of these parents to null"
                )


def _node_mapping(raw: Mapping[Any, Any]) -> dict[Any, Any]:
    """Map YAML-1.1 boolean keys (``yes:`` read as ``True``) back to ``"yes"``/``"no"``."""
    return {("yes" if k is True else "no" if k is False else k): v for k, v in raw.items()}


def _check_tree(
    problems: list[str],
    raw: object,
    class_ids: Collection[str] | None,
    non_parcel: Collection[str] = (),
) -> None:
    """Check a decision tree: node fields, targets, root, cycles and unreachable nodes.

    Args:
        problems: List the problems are appended to.
        raw: The ``decision_tree`` mapping.
        class_ids: Valid class ids. ``None`` checks the structure only: any target that is not
            a node id is then taken to be a class.
        non_parcel: Class ids that cannot label a parcel; answers may not lead to them.
    """
    where = _at("decision_tree", raw)
    if not isinstance(raw, Mapping):
        problems.append(f"{where}: expected a mapping with keys root, nodes; got {_kind_of(raw)}")
        return
    _check_keys(problems, where, raw, _TREE_KEYS, ())
    nodes = raw.get("nodes")
    node_where: dict[str, str] = {}
    answers: list[tuple[str | None, str, str, str]] = []  # (node id, answer, target, where)
    if nodes is not None and (not isinstance(nodes, list | tuple) or not nodes):
        problems.append(
            f"{where}: nodes must be a non-empty list of {{id, question, yes, no}}, "
            f"got {_kind_of(nodes)}"
        )
    elif nodes is not None:
        for j, node_raw in enumerate(nodes):
            if not isinstance(node_raw, Mapping):
                problems.append(
                    f"{_at(f'decision_tree.nodes[{j}]', node_raw)}: expected a mapping with keys "
                    f"{', '.join(_NODE_KEYS)}, got {_kind_of(node_raw)}"
                )
                continue
            node = _node_mapping(node_raw)
            nid = node.get("id")
            label = f"decision node {nid!r}" if _is_identifier(nid) else f"decision_tree.nodes[{j}]"
            nwhere = _at(label, node_raw)
            _check_keys(problems, nwhere, node, _NODE_KEYS, ())
            owner: str | None = None
            nid = _check_identifier(problems, nwhere, "id", nid)
            if nid is not None:
                if nid in node_where:
                    problems.append(
                        f"{nwhere}: duplicate node id {nid!r}, already used by {node_where[nid]}; "
                        "node ids must be unique"
                    )
                elif class_ids is not None and nid in class_ids:
                    problems.append(
                        f"{nwhere}: node id {nid!r} is also a class id; rename the node "
                        f"(e.g. '{nid}_q') so an answer cannot mean both"
                    )
                else:
                    node_where[nid] = nwhere
                    owner = nid
            _check_text(problems, nwhere, "question", node.get("question"))
            for answer in ("yes", "no"):
                target = node.get(answer)
                if target is None:
                    continue
                if not isinstance(target, str):
                    problems.append(
                        f"{nwhere}: answer {answer!r} must name a node or class id, "
                        f"got {_kind_of(target)}"
                    )
                    continue
                answers.append((owner, answer, target, nwhere))
            if isinstance(node.get("yes"), str) and node.get("yes") == node.get("no"):
                problems.append(
                    f"{nwhere}: both answers lead to {node['yes']!r}, so the question decides "
                    "nothing; point one answer elsewhere or remove the node"
                )
    edges: dict[str, list[str]] = {nid: [] for nid in node_where}
    for owner, answer, target, nwhere in answers:
        if target in node_where:
            if owner is not None:
                edges[owner].append(target)
        elif class_ids is None:
            continue
        elif target not in class_ids:
            problems.append(
                f"{nwhere}: answer {answer!r} leads to {target!r}, which is neither a node id nor "
                f"a class id{_suggest(target, [*node_where, *class_ids])}"
            )
        elif target in non_parcel:
            problems.append(
                f"{nwhere}: answer {answer!r} leads to class {target!r}, which cannot label a "
                "parcel (parcel: false); point it at a parcel class"
            )
    root = raw.get("root")
    if root is None:
        return
    if not isinstance(root, str) or root not in node_where:
        problems.append(
            f"{where}: root {root!r} is not a node id{_suggest(root, node_where)}; "
            "set root to the id of the first question"
        )
        return
    reached = _walk_tree(problems, where, root, edges)
    for nid, nwhere in node_where.items():
        if nid not in reached:
            problems.append(
                f"{nwhere}: node {nid!r} cannot be reached from root {root!r}; "
                "point an answer at it or delete it"
            )


def _walk_tree(
    problems: list[str], where: str, root: str, edges: Mapping[str, Sequence[str]]
) -> set[str]:
    """Depth-first walk from ``root``; report each cycle once and return the nodes reached."""
    reached = {root}
    path = [root]
    on_path = {root}
    stack: list[Iterator[str]] = [iter(edges[root])]
    reported: set[frozenset[str]] = set()
    while stack:
        nxt = next(stack[-1], None)
        if nxt is None:
            stack.pop()
            on_path.discard(path.pop())
        elif nxt in on_path:
            cycle = path[path.index(nxt) :]
            if frozenset(cycle) not in reported:
                reported.add(frozenset(cycle))
                problems.append(
                    f"{where}: cycle {' -> '.join([*cycle, nxt])}; every path from the root "
                    "must end at a class"
                )
        elif nxt not in reached:
            reached.add(nxt)
            path.append(nxt)
            on_path.add(nxt)
            stack.append(iter(edges[nxt]))
    return reached


def _check_changelog(problems: list[str], raw: object, version: int | None) -> None:
    if not isinstance(raw, list | tuple):
        problems.append(
            f"changelog: must be a list of {{version, date, changes}}, got {_kind_of(raw)}"
        )
        return
    seen: dict[int, str] = {}
    for k, entry in enumerate(raw):
        where = _at(f"changelog[{k}]", entry)
        if not isinstance(entry, Mapping):
            problems.append(
                f"{where}: expected a mapping with keys version, date, changes; "
                f"got {_kind_of(entry)}"
            )
            continue
        _check_keys(problems, where, entry, _CHANGELOG_KEYS, ())
        v = _check_positive_int(problems, where, "version", entry.get("version"))
        if v is not None:
            if v in seen:
                problems.append(f"{where}: a changelog entry for v{v} already exists at {seen[v]}")
            else:
                seen[v] = where
            if version is not None and v > version:
                problems.append(
                    f"{where}: entry for v{v} is newer than the taxonomy version {version}; "
                    "bump the taxonomy version or fix the entry"
                )
        date = entry.get("date")
        if date is not None and _iso_date(date) is None:
            problems.append(f"{where}: date {date!r} is not a date; write it as YYYY-MM-DD")
        changes = entry.get("changes")
        if isinstance(changes, list | tuple) and not changes:
            problems.append(f"{where}: changes is empty; say what changed in v{v}")
        _check_text_list(problems, where, "changes", changes)


def _iso_date(value: object) -> str | None:
    """Return ``value`` as an ISO date string, or ``None`` when it is not a plain date."""
    if isinstance(value, dt.datetime):
        return None
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value).isoformat()
        except ValueError:
            return None
    return None


def _taxonomy_problems(data: object) -> list[str]:
    """Every problem in a taxonomy mapping, one line each, in document order."""
    problems: list[str] = []
    if data is None:
        return [f"the taxonomy is empty; expected a mapping with keys {', '.join(_TOP_REQUIRED)}"]
    if not isinstance(data, Mapping):
        return [
            f"top level: expected a mapping with keys {', '.join(_TOP_REQUIRED)}, "
            f"got {_kind_of(data)}"
        ]
    _check_keys(problems, "top level", data, _TOP_REQUIRED, _TOP_OPTIONAL)
    _check_identifier(problems, "top level", "name", data.get("name"))
    version = _check_positive_int(problems, "top level", "version", data.get("version"))
    kind = data.get("item_kind")
    if kind is not None and kind not in ITEM_KINDS:
        problems.append(
            f"top level: item_kind {kind!r} is not known{_suggest(kind, ITEM_KINDS)}; "
            f"use one of {', '.join(ITEM_KINDS)}"
        )
    description = data.get("description")
    if description is not None and not isinstance(description, str):
        problems.append(f"top level: description must be a string, got {_kind_of(description)}")
    if data.get("changelog") is not None:
        _check_changelog(problems, data["changelog"], version)
    classes = data.get("classes")
    ids, non_parcel = _check_classes(problems, classes) if classes is not None else ([], set())
    tree = data.get("decision_tree")
    if tree is not None:
        # Without a usable class list every leaf would look unknown; check the structure only.
        _check_tree(
            problems,
            tree,
            ids if ids else None,
            non_parcel if kind == "parcel" else (),
        )
    return problems


def _fail(source: str, problems: Sequence[str], what: str = "taxonomy") -> NoReturn:
    n = len(problems)
    header = f"{source}: invalid {what}, {n} problem{'s' if n != 1 else ''}; fix and load again:"
    raise TaxonomyError("\n".join([header, *(f"  - {p}" for p in problems)]))


# --------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------


def _clean_texts(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(v.strip() if isinstance(v, str) else v for v in values)


@dataclass(frozen=True, slots=True)
class TaxonomyClass:
    """One class of a taxonomy: its identity, mask code, colour and annotation guidance.

    Attributes:
        id: Identifier used in labels and files (``residential``, ``PARCEL_ID``).
        code: Mask value, an integer in 1..254 (0 = unlabeled/background, 255 = ignore).
        name: Display name for maps and guidelines.
        colour: ``#rrggbb`` hex colour, stored lower-case.
        definition: What belongs in the class, written for annotators.
        parent: Id of the parent class, or ``None`` at the top of the hierarchy.
        examples: Typical members.
        counterexamples: Look-alikes that do NOT belong here (and where they go instead).
        edge_rules: Rules for the hard cases, e.g. shops with flats above.
        parcel: Whether a whole parcel may carry this label (``False`` for pixel-only classes
            such as roads).
    """

    id: str
    code: int
    name: str
    colour: str
    definition: str
    parent: str | None = None
    examples: tuple[str, ...] = ()
    counterexamples: tuple[str, ...] = ()
    edge_rules: tuple[str, ...] = ()
    parcel: bool = True

    def __post_init__(self) -> None:
        problems: list[str] = []
        _check_class_fields(problems, f"class {self.id!r}", self._fields())
        if problems:
            _fail(f"class {self.id!r}", problems, "taxonomy class")
        object.__setattr__(self, "colour", self.colour.lower())
        object.__setattr__(self, "name", self.name.strip())
        object.__setattr__(self, "definition", self.definition.strip())
        for key in _CLASS_LISTS:
            object.__setattr__(self, key, _clean_texts(getattr(self, key)))

    def _fields(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "code": self.code,
            "name": self.name,
            "colour": self.colour,
            "parent": self.parent,
            "definition": self.definition,
            "examples": self.examples,
            "counterexamples": self.counterexamples,
            "edge_rules": self.edge_rules,
            "parcel": self.parcel,
        }

    def to_dict(self) -> dict[str, Any]:
        """Return the class as plain data (lists, not tuples), every key present."""
        data = self._fields()
        for key in _CLASS_LISTS:
            data[key] = list(data[key])
        return data


@dataclass(frozen=True, slots=True)
class DecisionNode:
    """One yes/no question of a decision tree; each answer names a node id or a class id."""

    id: str
    question: str
    yes: str
    no: str

    def __post_init__(self) -> None:
        if isinstance(self.question, str):  # other types are reported by the tree's checks
            object.__setattr__(self, "question", self.question.strip())

    def to_dict(self) -> dict[str, str]:
        """Return the node as plain data."""
        return {"id": self.id, "question": self.question, "yes": self.yes, "no": self.no}


@dataclass(frozen=True, slots=True)
class DecisionTree:
    """A short yes/no decision tree that leads an annotator from ``root`` to a class.

    Structure is checked on construction (unique node ids, known root, no cycles, every node
    reachable); that leaves name real classes is checked by :class:`Taxonomy`.
    """

    root: str
    nodes: tuple[DecisionNode, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "nodes", tuple(self.nodes))
        problems: list[str] = []
        if not all(isinstance(n, DecisionNode) for n in self.nodes):
            problems.append("decision_tree: nodes must be DecisionNode records")
        else:
            _check_tree(problems, self.to_dict(), class_ids=None)
        if problems:
            _fail("decision tree", problems, "decision tree")

    @property
    def node_ids(self) -> tuple[str, ...]:
        """Node ids in file order."""
        return tuple(n.id for n in self.nodes)

    def node(self, node_id: str) -> DecisionNode:
        """Return the node with this id.

        Raises:
            TaxonomyError: If no node has this id.
        """
        for n in self.nodes:
            if n.id == node_id:
                return n
        raise TaxonomyError(
            f"no decision node {node_id!r}{_suggest(node_id, self.node_ids)}; "
            f"nodes are {', '.join(self.node_ids)}"
        )

    def leaves(self) -> tuple[str, ...]:
        """Class ids the tree can end at, in the order a depth-first walk (yes first) meets them."""
        ids = set(self.node_ids)
        out: list[str] = []
        seen: set[str] = set()

        def visit(node_id: str) -> None:
            if node_id in seen:
                return
            seen.add(node_id)
            node = self.node(node_id)
            for target in (node.yes, node.no):
                if target in ids:
                    visit(target)
                elif target not in out:
                    out.append(target)

        visit(self.root)
        return tuple(out)

    def classify(self, answers: Mapping[str, bool]) -> str:
        """Follow the tree from the root with ``answers`` (node id -> yes?) to a class id.

        Raises:
            TaxonomyError: If a question on the path has no answer.
        """
        ids = set(self.node_ids)
        current = self.root
        while current in ids:
            node = self.node(current)
            if node.id not in answers:
                raise TaxonomyError(
                    f"no answer for decision node {node.id!r} ({node.question!r}); "
                    "answers must cover every question on the path"
                )
            current = node.yes if answers[node.id] else node.no
        return current

    def to_dict(self) -> dict[str, Any]:
        """Return the tree as plain data."""
        return {"root": self.root, "nodes": [n.to_dict() for n in self.nodes]}


@dataclass(frozen=True, slots=True)
class ChangelogEntry:
    """What changed in one taxonomy version; ``date`` is an ISO ``YYYY-MM-DD`` string."""

    version: int
    date: str
    changes: tuple[str, ...]

    def __post_init__(self) -> None:
        problems: list[str] = []
        raw = {"version": self.version, "date": self.date, "changes": self.changes}
        _check_changelog(problems, [raw], None)
        if problems:
            _fail(f"changelog entry v{self.version}", problems, "changelog entry")
        object.__setattr__(self, "date", _iso_date(self.date))
        object.__setattr__(self, "changes", _clean_texts(self.changes))

    def to_dict(self) -> dict[str, Any]:
        """Return the entry as plain data."""
        return {"version": self.version, "date": self.date, "changes": list(self.changes)}


@dataclass(frozen=True, slots=True)
class Taxonomy:
    """A versioned set of classes, with a decision tree and a changelog.

    Build one with :func:`load_taxonomy` or :func:`taxonomy_from_dict`; constructing it
    directly runs the same validation. Equality and :attr:`sha256` ignore YAML formatting:
    two files that say the same thing are equal.

    Attributes:
        name: Identifier of the taxonomy (``land_use``).
        version: Positive integer, bumped on every change that alters labels.
        item_kind: What it labels, one of :data:`ITEM_KINDS`.
        classes: The classes, in display order.
        description: Free text shown at the top of the guidelines.
        decision_tree: Optional yes/no tree leading to classes.
        changelog: What changed in each version.
    """

    name: str
    version: int
    item_kind: str
    classes: tuple[TaxonomyClass, ...]
    description: str = ""
    decision_tree: DecisionTree | None = None
    changelog: tuple[ChangelogEntry, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "classes", tuple(self.classes))
        object.__setattr__(self, "changelog", tuple(self.changelog))
        source = f"taxonomy {self.name!r}"
        if not all(isinstance(c, TaxonomyClass) for c in self.classes):
            _fail(source, ["classes must be TaxonomyClass records; use taxonomy_from_dict()"])
        if not all(isinstance(e, ChangelogEntry) for e in self.changelog):
            _fail(source, ["changelog must hold ChangelogEntry records"])
        if self.decision_tree is not None and not isinstance(self.decision_tree, DecisionTree):
            _fail(source, ["decision_tree must be a DecisionTree or None"])
        problems = _taxonomy_problems(self.to_dict())
        if problems:
            _fail(source, problems)
        object.__setattr__(self, "description", (self.description or "").strip())

    # -- lookups ------------------------------------------------------------------------------

    def __contains__(self, label: object) -> bool:
        return any(c.id == label for c in self.classes)

    def __iter__(self) -> Iterator[TaxonomyClass]:
        return iter(self.classes)

    def __len__(self) -> int:
        return len(self.classes)

    @property
    def label(self) -> str:
        """``name vN``, how messages and guidelines refer to this taxonomy."""
        return f"{self.name} v{self.version}"

    @property
    def class_ids(self) -> tuple[str, ...]:
        """Class ids in file order."""
        return tuple(c.id for c in self.classes)

    @property
    def parcel_class_ids(self) -> tuple[str, ...]:
        """Ids of the classes a whole parcel may carry (``parcel: true``), in file order."""
        return tuple(c.id for c in self.classes if c.parcel)

    @property
    def codes(self) -> dict[str, int]:
        """A new ``{class id: mask code}`` dict."""
        return {c.id: c.code for c in self.classes}

    @property
    def colours(self) -> dict[str, str]:
        """A new ``{class id: "#rrggbb"}`` dict."""
        return {c.id: c.colour for c in self.classes}

    def get(self, class_id: str) -> TaxonomyClass:
        """Return the class with this id.

        Raises:
            LabelError: If the id is not in the taxonomy; the message lists the valid ids.
        """
        for cls in self.classes:
            if cls.id == class_id:
                return cls
        raise LabelError(
            f"{class_id!r} is not a class of taxonomy {self.label}"
            f"{_suggest(class_id, self.class_ids)}; valid ids: {', '.join(self.class_ids)}"
        )

    def code_of(self, class_id: str) -> int:
        """Return the mask code of a class.

        Raises:
            LabelError: If the id is not in the taxonomy.
        """
        return self.get(class_id).code

    def colour_of(self, class_id: str) -> str:
        """Return the ``#rrggbb`` colour of a class.

        Raises:
            LabelError: If the id is not in the taxonomy.
        """
        return self.get(class_id).colour

    def id_of_code(self, code: int) -> str:
        """Return the class id that a mask code stands for.

        Raises:
            LabelError: If the code is reserved (0, 255) or not used by any class.
        """
        if code in RESERVED_CODES:
            raise LabelError(
                f"code {code} is reserved for {RESERVED_CODES[code]} and has no class; "
                "handle it before looking up class ids"
            )
        for cls in self.classes:
            if cls.code == code:
                return cls.id
        used = ", ".join(f"{c.code} {c.id}" for c in self.classes)
        raise LabelError(
            f"code {code!r} is not used by taxonomy {self.label}; codes in use: {used}"
        )

    def ancestors(self, class_id: str) -> tuple[str, ...]:
        """Return the parent, grandparent, ... of a class, nearest first.

        Raises:
            LabelError: If the id is not in the taxonomy.
        """
        out: list[str] = []
        parent = self.get(class_id).parent
        while parent is not None:
            out.append(parent)
            parent = self.get(parent).parent
        return tuple(out)

    def children(self, class_id: str) -> tuple[str, ...]:
        """Return the ids of the direct children of a class, in file order.

        Raises:
            LabelError: If the id is not in the taxonomy.
        """
        self.get(class_id)
        return tuple(c.id for c in self.classes if c.parent == class_id)

    def validate_labels(self, labels: Iterable[object], *, parcels_only: bool = False) -> None:
        """Check that every label is a class id of this taxonomy.

        Args:
            labels: Labels to check, e.g. a column of annotations.
            parcels_only: Also refuse pixel-only classes (``parcel: false``), for labels that
                are meant to describe whole parcels.

        Raises:
            LabelError: Listing every unknown label (with its count) and the allowed ones.
        """
        allowed = self.parcel_class_ids if parcels_only else self.class_ids
        notes = {cid: "pixel-only, parcel: false" for cid in self.class_ids if cid not in allowed}
        _check_members(
            labels,
            allowed,
            f"taxonomy {self.label}" + (" as parcel labels" if parcels_only else ""),
            "Fix the labels, or move old labels to this version with remap_labels()",
            notes,
        )

    # -- serialisation ------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Return the taxonomy as plain data (every key present), the form :attr:`sha256` hashes."""
        return {
            "name": self.name,
            "version": self.version,
            "item_kind": self.item_kind,
            "description": self.description,
            "changelog": [e.to_dict() for e in self.changelog],
            "classes": [c.to_dict() for c in self.classes],
            "decision_tree": None if self.decision_tree is None else self.decision_tree.to_dict(),
        }

    def to_yaml(self) -> str:
        """Return the taxonomy as YAML that :func:`taxonomy_from_yaml` reads back equal.

        Defaults (``parent: null``, ``parcel: true``, empty lists) are left out.
        """
        data = self.to_dict()
        if not data["description"]:
            del data["description"]
        if not data["changelog"]:
            del data["changelog"]
        if data["decision_tree"] is None:
            del data["decision_tree"]
        for cls in data["classes"]:
            if cls["parent"] is None:
                del cls["parent"]
            if cls["parcel"]:
                del cls["parcel"]
            for key in _CLASS_LISTS:
                if not cls[key]:
                    del cls[key]
        return _to_yaml_text(data, f"# {self.label} taxonomy; sha256 {self.sha256}")

    @property
    def sha256(self) -> str:
        """SHA-256 of the canonical JSON of :meth:`to_dict`, for provenance records.

        Key order, quoting, comments, defaults written out or not and surrounding whitespace
        do not change it; any change to ids, codes, colours, texts, tree or changelog does.
        """
        canonical = json.dumps(
            self.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def render_guidelines(self, fmt: Literal["markdown", "text"] = "markdown") -> str:
        """Return annotator guidelines; see :func:`render_guidelines`."""
        return render_guidelines(self, fmt)


def _check_members(
    labels: Iterable[object],
    allowed: Sequence[str],
    context: str,
    fix: str,
    notes: Mapping[str, str] | None = None,
) -> None:
    """Raise :class:`LabelError` listing every label not in ``allowed``, with counts."""
    allowed_set = set(allowed)
    unknown: Counter[str] = Counter()
    examples: dict[str, object] = {}
    for label in labels:
        if isinstance(label, str) and label in allowed_set:
            continue
        key = repr(label)
        unknown[key] += 1
        examples.setdefault(key, label)
    if not unknown:
        return
    parts = []
    for key, count in list(unknown.items())[:20]:
        label = examples[key]
        note = (notes or {}).get(label) if isinstance(label, str) else None
        extra = f" ({note})" if note else _suggest(label, allowed)
        parts.append(f"{key}{extra}" + (f" x{count}" if count > 1 else ""))
    if len(unknown) > 20:
        parts.append(f"and {len(unknown) - 20} more")
    total = sum(unknown.values())
    raise LabelError(
        f"{total} label{'s' if total != 1 else ''} not in {context}: {', '.join(parts)}. "
        f"Allowed: {', '.join(allowed)}. {fix}."
    )


# --------------------------------------------------------------------------------------------
# Building, loading and dumping
# --------------------------------------------------------------------------------------------


def taxonomy_from_dict(data: Mapping[str, Any], source: str = "<dict>") -> Taxonomy:
    """Validate plain data (as read from YAML) and build a :class:`Taxonomy`.

    All problems are collected and reported together, one line each.

    Args:
        data: Mapping following the taxonomy YAML schema.
        source: Name of where the data came from, used in error messages.

    Returns:
        The taxonomy.

    Raises:
        TaxonomyError: Listing every problem found, each with where it is and how to fix it.
    """
    problems = _taxonomy_problems(data)
    if problems:
        _fail(source, problems)
    tree = data.get("decision_tree")
    return Taxonomy(
        name=data["name"],
        version=data["version"],
        item_kind=data["item_kind"],
        description=data.get("description") or "",
        classes=tuple(
            TaxonomyClass(
                id=c["id"],
                code=c["code"],
                name=c["name"],
                colour=c["colour"],
                definition=c["definition"],
                parent=c.get("parent"),
                examples=tuple(c.get("examples") or ()),
                counterexamples=tuple(c.get("counterexamples") or ()),
                edge_rules=tuple(c.get("edge_rules") or ()),
                parcel=c.get("parcel", True) is not False,
            )
            for c in data["classes"]
        ),
        decision_tree=None
        if tree is None
        else DecisionTree(
            root=tree["root"],
            nodes=tuple(
                DecisionNode(id=n["id"], question=n["question"], yes=n["yes"], no=n["no"])
                for n in map(_node_mapping, tree["nodes"])
            ),
        ),
        changelog=tuple(
            ChangelogEntry(
                version=e["version"], date=_iso_date(e["date"]) or "", changes=tuple(e["changes"])
            )
            for e in data.get("changelog") or ()
        ),
    )


def taxonomy_from_yaml(text: str, source: str = "<string>") -> Taxonomy:
    """Parse YAML text and build a :class:`Taxonomy`.

    Args:
        text: The YAML document.
        source: Name used in error messages.

    Returns:
        The taxonomy.

    Raises:
        TaxonomyError: On a YAML error (with line and column) or invalid content.
    """
    return taxonomy_from_dict(_parse_yaml(text, source), source)


def load_taxonomy(path: str | os.PathLike[str]) -> Taxonomy:
    """Load and validate a taxonomy YAML file.

    Args:
        path: Path of the ``.yaml`` file.

    Returns:
        The taxonomy.

    Raises:
        TaxonomyError: If the file is missing or unreadable, is not valid YAML (the message
            gives the line), or breaks any rule of the schema (all problems are listed).
    """
    data, source = _read_yaml(path, "taxonomy")
    return taxonomy_from_dict(data, source)


def dump_taxonomy(taxonomy: Taxonomy, path: str | os.PathLike[str]) -> Path:
    """Write a taxonomy as YAML (see :meth:`Taxonomy.to_yaml`), replacing any existing file.

    Args:
        taxonomy: The taxonomy to write.
        path: Destination ``.yaml`` path; its directory must exist.

    Returns:
        The path written.

    Raises:
        TaxonomyError: If the file cannot be written.
    """
    p = Path(path)
    try:
        p.write_text(taxonomy.to_yaml(), encoding="utf-8")
    except OSError as exc:
        raise TaxonomyError(
            f"{p}: cannot write the taxonomy ({exc.strerror}); "
            "check that the directory exists and is writable"
        ) from exc
    return p


# --------------------------------------------------------------------------------------------
# Guidelines
# --------------------------------------------------------------------------------------------


def render_guidelines(taxonomy: Taxonomy, fmt: Literal["markdown", "text"] = "markdown") -> str:
    """Render annotator guidelines for a taxonomy.

    The document holds a summary table (code, id, name, colour, whether it may label a
    parcel), the decision tree as nested yes/no bullets, each class's definition, examples,
    counterexamples and edge rules, and the changelog.

    Args:
        taxonomy: The taxonomy to describe.
        fmt: ``"markdown"``, or ``"text"`` for plain text without markup.

    Returns:
        The guidelines, ending with a newline.

    Raises:
        TaxonomyError: If ``fmt`` is not a known format.
    """
    if fmt not in ("markdown", "text"):
        raise TaxonomyError(f"unknown guideline format {fmt!r}; use 'markdown' or 'text'")
    md = fmt == "markdown"
    out: list[str] = []

    def heading(level: int, text: str) -> None:
        if md:
            out.extend([f"{'#' * level} {text}", ""])
        else:
            out.extend([text, "=-~"[level - 1] * len(text), ""])

    def code(text: object) -> str:
        return f"`{text}`" if md else str(text)

    def strong(text: str) -> str:
        return f"**{text}**" if md else text

    def bullets(title: str, items: Sequence[str]) -> None:
        if items:
            out.extend([f"{strong(title)}", "", *(f"- {item}" for item in items), ""])

    def class_ref(class_id: str) -> str:
        cls = taxonomy.get(class_id)
        return f"{strong(cls.name)} ({code(cls.id)})"

    heading(1, f"{taxonomy.label}: annotation guidelines")
    out.extend(
        [
            f"Taxonomy {code(taxonomy.name)}, version {taxonomy.version}, labels each "
            f"{taxonomy.item_kind}. SHA-256 {code(taxonomy.sha256[:12])}.",
            "",
        ]
    )
    if taxonomy.description:
        out.extend([taxonomy.description, ""])

    heading(2, "Classes")
    rows = [
        (str(c.code), c.id, c.name, c.colour, "yes" if c.parcel else "no (pixel-only)")
        for c in taxonomy.classes
    ]
    header = ("Code", "Id", "Name", "Colour", "Parcel label")
    if md:
        out.append("| " + " | ".join(header) + " |")
        out.append("|---:|---|---|---|---|")
        out.extend(f"| {r[0]} | `{r[1]}` | {r[2]} | `{r[3]}` | {r[4]} |" for r in rows)
    else:
        widths = [max(len(x) for x in col) for col in zip(header, *rows, strict=False)]
        for r in (header, *rows):
            out.append("  ".join(x.ljust(w) for x, w in zip(r, widths, strict=True)).rstrip())
    out.extend(
        [
            "",
            f"Mask code {BACKGROUND_CODE} means {RESERVED_CODES[BACKGROUND_CODE]} and "
            f"{IGNORE_CODE} means {RESERVED_CODES[IGNORE_CODE]}; neither is a class.",
            "",
        ]
    )

    tree = taxonomy.decision_tree
    if tree is not None:
        heading(2, "Decision tree")
        out.extend(
            ["Start at the first question and follow your answers until you reach a class.", ""]
        )
        numbers: dict[str, int] = {}

        def render_node(node_id: str, depth: int) -> None:
            node = tree.node(node_id)
            numbers[node_id] = len(numbers) + 1
            out.append(f"{'  ' * depth}- Q{numbers[node_id]}. {node.question}")
            for answer, target in (("Yes", node.yes), ("No", node.no)):
                pad = "  " * (depth + 1)
                if target in numbers:
                    out.append(f"{pad}- {answer}: go to Q{numbers[target]} above.")
                elif target in tree.node_ids:
                    out.append(f"{pad}- {answer}:")
                    render_node(target, depth + 2)
                else:
                    out.append(f"{pad}- {answer}: {class_ref(target)}")

        render_node(tree.root, 0)
        out.append("")
        missing = [c for c in taxonomy.class_ids if c not in tree.leaves()]
        if missing:
            out.extend(
                [
                    "The tree does not lead to: "
                    + ", ".join(class_ref(c) for c in missing)
                    + "; label those from the definitions below.",
                    "",
                ]
            )

    heading(2, "Class definitions")
    for cls in taxonomy.classes:
        heading(3, f"{cls.code}. {cls.name} ({code(cls.id)})")
        facts = [f"Colour {code(cls.colour)}."]
        if cls.parent is not None:
            facts.append(f"Part of {class_ref(cls.parent)}.")
        if not cls.parcel:
            facts.append("Pixel-only: never the label of a whole parcel.")
        out.extend([" ".join(facts), "", cls.definition, ""])
        bullets("Examples", cls.examples)
        bullets(f"Counterexamples (not {cls.name})", cls.counterexamples)
        bullets("Edge rules", cls.edge_rules)

    if taxonomy.changelog:
        heading(2, "Changelog")
        for entry in sorted(taxonomy.changelog, key=lambda e: e.version, reverse=True):
            out.append(f"- v{entry.version} ({entry.date})")
            out.extend(f"  - {change}" for change in entry.changes)
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


# --------------------------------------------------------------------------------------------
# Moving labels between versions
# --------------------------------------------------------------------------------------------


def _remap_problems(data: object) -> list[str]:
    if not isinstance(data, Mapping):
        return [
            f"top level: expected a mapping with keys {', '.join(_REMAP_REQUIRED)}, "
            f"got {_kind_of(data)}"
        ]
    problems: list[str] = []
    _check_keys(problems, "top level", data, _REMAP_REQUIRED, _REMAP_OPTIONAL)
    if data.get("name") is not None:
        _check_identifier(problems, "top level", "name", data["name"])
    for key in ("from_version", "to_version"):
        _check_positive_int(problems, "top level", key, data.get(key))
    mapping = data.get("mapping")
    if mapping is None:
        return problems
    if not isinstance(mapping, Mapping) or not mapping:
        problems.append(
            f"mapping: must be a non-empty mapping of old id -> new id (or a list of new ids for "
            f"a split), got {_kind_of(mapping)}"
        )
        return problems
    for old, new in mapping.items():
        where = _at(f"mapping {old!r}", mapping)
        _check_identifier(problems, where, "old id", old)
        targets = [new] if isinstance(new, str) else new
        if not isinstance(targets, list | tuple) or not targets:
            problems.append(
                f"{where}: must map to a new class id or a non-empty list of ids, "
                f"got {_kind_of(new)}"
            )
            continue
        for target in targets:
            _check_identifier(problems, where, "target", target)
        if len(set(map(repr, targets))) != len(targets):
            problems.append(f"{where}: lists the same target twice")
    return problems


@dataclass(frozen=True, slots=True)
class TaxonomyRemap:
    """How labels of one taxonomy version become labels of another.

    Each old class id maps to one new id (a rename or a merge when several old ids share a
    target) or to a list of new ids (a split: the old label no longer decides the new one, so
    those items need another look).

    Attributes:
        from_version: Version the labels come from.
        to_version: Version they go to.
        mapping: Old id -> new id, or old id -> list of new ids. Stored as old id -> tuple.
        name: Taxonomy name, checked against both taxonomies when given.
    """

    from_version: int
    to_version: int
    mapping: Mapping[str, str | Sequence[str]]
    name: str | None = None

    def __post_init__(self) -> None:
        problems = _remap_problems(
            {
                "from_version": self.from_version,
                "to_version": self.to_version,
                "mapping": self.mapping,
                "name": self.name,
            }
        )
        if problems:
            _fail(f"remap v{self.from_version}->v{self.to_version}", problems, "taxonomy remap")
        normalised = {
            old: (new,) if isinstance(new, str) else tuple(new) for old, new in self.mapping.items()
        }
        object.__setattr__(self, "mapping", normalised)

    def targets(self, old_id: str) -> tuple[str, ...]:
        """Return the new ids an old id maps to (more than one for a split).

        Raises:
            LabelError: If the old id is not mapped.
        """
        new = self.mapping.get(old_id)
        if new is None:
            raise LabelError(
                f"{old_id!r} is not mapped by remap v{self.from_version}->v{self.to_version}"
                f"{_suggest(old_id, self.mapping)}; mapped ids: {', '.join(self.mapping)}"
            )
        return (new,) if isinstance(new, str) else tuple(new)

    @property
    def splits(self) -> dict[str, tuple[str, ...]]:
        """Old ids that map to more than one new id, with their targets."""
        return {old: self.targets(old) for old in self.mapping if len(self.targets(old)) > 1}

    def check(self, old: Taxonomy | None = None, new: Taxonomy | None = None) -> None:
        """Check the remap against the taxonomies it connects.

        Every old class must be mapped, every mapped id must exist in ``old``, every target in
        ``new``, and the versions (and name, if set) must match.

        Args:
            old: The taxonomy the labels come from, or ``None`` to skip its checks.
            new: The taxonomy they go to, or ``None`` to skip its checks.

        Raises:
            TaxonomyError: Listing every problem.
        """
        problems: list[str] = []
        for side, tax, version in (("old", old, self.from_version), ("new", new, self.to_version)):
            if tax is None:
                continue
            if tax.version != version:
                problems.append(
                    f"the remap expects {side} version {version}, but the {side} taxonomy is "
                    f"{tax.label}"
                )
            if self.name is not None and tax.name != self.name:
                problems.append(
                    f"the remap is for taxonomy {self.name!r}, but the {side} taxonomy is "
                    f"{tax.name!r}"
                )
        if old is not None:
            problems.extend(
                f"old class {cid!r} is not mapped; map it to a class of v{self.to_version} "
                "(or to a list of classes for a split)"
                for cid in old.class_ids
                if cid not in self.mapping
            )
            problems.extend(
                f"maps {cid!r}, which is not a class of {old.label}{_suggest(cid, old.class_ids)}"
                for cid in self.mapping
                if cid not in old
            )
        if new is not None:
            problems.extend(
                f"maps {cid!r} to {target!r}, which is not a class of {new.label}"
                f"{_suggest(target, new.class_ids)}"
                for cid in self.mapping
                for target in self.targets(cid)
                if target not in new
            )
        if problems:
            _fail(f"remap v{self.from_version}->v{self.to_version}", problems, "taxonomy remap")

    def to_dict(self) -> dict[str, Any]:
        """Return the remap as plain data: single targets as strings, splits as lists."""
        data: dict[str, Any] = {} if self.name is None else {"name": self.name}
        data["from_version"] = self.from_version
        data["to_version"] = self.to_version
        data["mapping"] = {
            old: self.targets(old)[0] if len(self.targets(old)) == 1 else list(self.targets(old))
            for old in self.mapping
        }
        return data


def remap_from_dict(data: Mapping[str, Any], source: str = "<dict>") -> TaxonomyRemap:
    """Validate plain data and build a :class:`TaxonomyRemap`.

    Args:
        data: ``{from_version, to_version, mapping, name?}``.
        source: Name used in error messages.

    Returns:
        The remap.

    Raises:
        TaxonomyError: Listing every problem.
    """
    problems = _remap_problems(data)
    if problems:
        _fail(source, problems, "taxonomy remap")
    return TaxonomyRemap(
        from_version=data["from_version"],
        to_version=data["to_version"],
        mapping=dict(data["mapping"]),
        name=data.get("name"),
    )


def load_remap(path: str | os.PathLike[str]) -> TaxonomyRemap:
    """Load a remap YAML file (see :func:`remap_from_dict`).

    Args:
        path: Path of the ``.yaml`` file.

    Returns:
        The remap.

    Raises:
        TaxonomyError: If the file is missing, not valid YAML, or invalid.
    """
    data, source = _read_yaml(path, "remap")
    return remap_from_dict(data, source)


@dataclass(frozen=True, slots=True)
class RemapResult:
    """Labels moved to a new taxonomy version, one entry per input label.

    Attributes:
        labels: The new label, or ``None`` where a split leaves it undecided
            (``on_split="unset"``).
        candidates: Every new label each item could take (one for renames and merges).
        ambiguous: Positions of the items whose old class was split; they need review.
    """

    labels: tuple[str | None, ...]
    candidates: tuple[tuple[str, ...], ...]
    ambiguous: tuple[int, ...]


def remap_labels(
    labels: Iterable[str],
    remap: TaxonomyRemap,
    *,
    old: Taxonomy | None = None,
    new: Taxonomy | None = None,
    on_split: Literal["unset", "first"] = "unset",
) -> RemapResult:
    """Move labels from one taxonomy version to another.

    Args:
        labels: Old class ids, one per item.
        remap: The mapping between the versions.
        old: The old taxonomy; when given, the remap is checked against it.
        new: The new taxonomy; when given, the remap is checked against it.
        on_split: For an item whose old class was split, ``"unset"`` gives ``None`` and
            ``"first"`` gives the first target listed. Either way the item is in ``ambiguous``.

    Returns:
        New labels, all candidates per item, and the positions of ambiguous items.

    Raises:
        TaxonomyError: If the remap does not fit ``old``/``new``, or ``on_split`` is unknown.
        LabelError: If a label is not mapped by the remap (all such labels are listed).
    """
    if on_split not in ("unset", "first"):
        raise TaxonomyError(f"unknown on_split {on_split!r}; use 'unset' or 'first'")
    remap.check(old, new)
    items = list(labels)
    _check_members(
        items,
        list(remap.mapping),
        f"remap v{remap.from_version}->v{remap.to_version}",
        "Add the missing ids to the remap's mapping, or fix the labels",
    )
    candidates = tuple(remap.targets(label) for label in items)
    ambiguous = tuple(i for i, c in enumerate(candidates) if len(c) > 1)
    new_labels = tuple(c[0] if len(c) == 1 or on_split == "first" else None for c in candidates)
    return RemapResult(labels=new_labels, candidates=candidates, ambiguous=ambiguous)
