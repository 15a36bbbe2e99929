"""Annotator guidelines of a project's taxonomy, in Markdown and HTML, with gold set and changes.

Extends :func:`geolabel.taxonomy.render_guidelines` (summary table, decision tree, per class
the definition, examples, counterexamples and edge rules, the changelog) with what only the
project knows: the gold set annotators practise on (gold items added by review, plus any gold
series passed in) and the changes from the previous stored version (:func:`taxonomy_diff`).
The HTML page is self-contained (inline CSS, no scripts) and escapes every text.
"""

from __future__ import annotations

import html
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import pandas as pd

from geolabel.errors import InputFileError, ReviewError
from geolabel.review.tables import read_connection, table_exists
from geolabel.taxonomy import Taxonomy

if TYPE_CHECKING:
    from geolabel.store import Project

__all__ = [
    "gold_items",
    "project_guidelines",
    "render_guidelines_html",
    "render_guidelines_markdown",
    "taxonomy_diff",
    "write_guidelines",
]


def taxonomy_diff(old: Taxonomy, new: Taxonomy) -> list[str]:
    """Describe what changed from ``old`` to ``new``, one line per change.

    Args:
        old: The earlier version.
        new: The later version.

    Returns:
        Lines such as ``"added class Mixed use (mixed_use)"`` or ``"Residential: new edge
        rule: ..."``; empty when the content is the same.
    """
    lines: list[str] = []
    old_ids, new_ids = set(old.class_ids), set(new.class_ids)
    lines += [f"added class {new.get(c).name} ({c})" for c in new.class_ids if c not in old_ids]
    lines += [f"removed class {old.get(c).name} ({c})" for c in old.class_ids if c not in new_ids]
    for cid in (c for c in new.class_ids if c in old_ids):
        a, b = old.get(cid), new.get(cid)
        if a.name != b.name:
            lines.append(f"{cid}: renamed from {a.name!r} to {b.name!r}")
        if a.definition != b.definition:
            lines.append(f"{b.name}: definition changed to: {b.definition}")
        for attr, what in (
            ("examples", "example"),
            ("counterexamples", "counterexample"),
            ("edge_rules", "edge rule"),
        ):
            before = set(getattr(a, attr))
            lines += [f"{b.name}: new {what}: {t}" for t in getattr(b, attr) if t not in before]
            after = set(getattr(b, attr))
            lines += [f"{b.name}: {what} removed: {t}" for t in getattr(a, attr) if t not in after]
    if old.decision_tree != new.decision_tree:
        lines.append("the decision tree changed (see below)")
    return lines


def gold_items(project: Project, version: int | str | None = None) -> pd.DataFrame:
    """Return gold items added by review (``item``, ``label``, ``taxonomy_version``).

    Args:
        project: An open project.
        version: Only gold items of this taxonomy version; all when None.

    Returns:
        One row per gold item (the latest label when an item was added twice).
    """
    with read_connection(project) as con:
        if not table_exists(con, "gold_items"):
            return pd.DataFrame(columns=["item", "label", "taxonomy_version"])
        rows = con.execute(
            "SELECT item_id, label, taxonomy_version FROM gold_items "
            "WHERE ?1 IS NULL OR taxonomy_version = ?1 ORDER BY fid",
            (None if version is None else str(version),),
        ).fetchall()
    frame = pd.DataFrame.from_records(rows, columns=["item", "label", "taxonomy_version"])
    return frame.drop_duplicates("item", keep="last").reset_index(drop=True)


def _gold_rows(taxonomy: Taxonomy, gold: Mapping[str, str] | None) -> list[tuple[str, str]]:
    if not gold:
        return []
    return sorted((str(i), str(lab)) for i, lab in gold.items() if lab in taxonomy)


def render_guidelines_markdown(
    taxonomy: Taxonomy,
    *,
    gold: Mapping[str, str] | None = None,
    previous: Taxonomy | None = None,
) -> str:
    """Render the guidelines as Markdown.

    Args:
        taxonomy: The version to describe.
        gold: Gold items (item -> label) annotators practise on.
        previous: The version before, for a "changes since" section.

    Returns:
        The Markdown text, ending with a newline.
    """
    out = [taxonomy.render_guidelines("markdown").rstrip("\n"), ""]
    if previous is not None:
        out += [f"## Changes since v{previous.version}", ""]
        diff = taxonomy_diff(previous, taxonomy)
        out += [f"- {line}" for line in diff] if diff else ["- none"]
        out.append("")
    rows = _gold_rows(taxonomy, gold)
    out += ["## Gold set", ""]
    if rows:
        out += [
            "Practise on these items; their answers are known.",
            "",
            "| Item | Label |",
            "|---|---|",
        ]
        out += [f"| `{i}` | {taxonomy.get(lab).name} (`{lab}`) |" for i, lab in rows]
    else:
        out.append("No gold items yet.")
    return "\n".join(out).rstrip("\n") + "\n"


_CSS = """
body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;
color:#222;line-height:1.45}
table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:.3rem .6rem}
.swatch{display:inline-block;width:1rem;height:1rem;border:1px solid #555;vertical-align:middle}
section.cls{border-left:.4rem solid #ccc;padding-left:1rem;margin:1.5rem 0}
code{background:#f4f4f4;padding:0 .2rem}
"""


def render_guidelines_html(
    taxonomy: Taxonomy,
    *,
    gold: Mapping[str, str] | None = None,
    previous: Taxonomy | None = None,
) -> str:
    """Render the guidelines as one self-contained HTML page (every text escaped).

    Args:
        taxonomy: The version to describe.
        gold: Gold items (item -> label) annotators practise on.
        previous: The version before, for a "changes since" section.

    Returns:
        The HTML document.
    """
    e = html.escape
    title = f"{taxonomy.label}: annotation guidelines"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{e(title)}</h1>",
        f"<p>Taxonomy <code>{e(taxonomy.name)}</code>, version {taxonomy.version}, labels each "
        f"{e(taxonomy.item_kind)}. SHA-256 <code>{e(taxonomy.sha256[:12])}</code>.</p>",
    ]
    if taxonomy.description:
        parts.append(f"<p>{e(taxonomy.description)}</p>")
    parts.append("<h2>Classes</h2><table><tr><th>Code</th><th>Id</th><th>Name</th>")
    parts.append("<th>Colour</th><th>Parcel label</th></tr>")
    for c in taxonomy.classes:
        parts.append(
            f"<tr><td>{c.code}</td><td><code>{e(c.id)}</code></td><td>{e(c.name)}</td>"
            f'<td><span class="swatch" style="background:{e(c.colour)}"></span> '
            f"<code>{e(c.colour)}</code></td><td>{'yes' if c.parcel else 'no (pixel-only)'}"
            "</td></tr>"
        )
    parts.append("</table>")
    tree = taxonomy.decision_tree
    if tree is not None:
        parts.append("<h2>Decision tree</h2>")
        numbers: dict[str, int] = {}

        def node_html(node_id: str) -> str:
            node = tree.node(node_id)
            numbers[node_id] = len(numbers) + 1
            items = []
            for answer, target in (("Yes", node.yes), ("No", node.no)):
                if target in numbers:
                    items.append(f"<li>{answer}: go to Q{numbers[target]} above.</li>")
                elif target in tree.node_ids:
                    items.append(f"<li>{answer}:<ul>{node_html(target)}</ul></li>")
                else:
                    cls = taxonomy.get(target)
                    items.append(
                        f"<li>{answer}: <strong>{e(cls.name)}</strong> (<code>{e(cls.id)}"
                        "</code>)</li>"
                    )
            return f"<li>Q{numbers[node_id]}. {e(node.question)}<ul>{''.join(items)}</ul></li>"

        parts.append(f"<ul>{node_html(tree.root)}</ul>")
    parts.append("<h2>Class definitions</h2>")
    for c in taxonomy.classes:
        parts.append(
            f'<section class="cls" id="class-{e(c.id)}" style="border-color:{e(c.colour)}">'
            f"<h3>{c.code}. {e(c.name)} (<code>{e(c.id)}</code>)</h3><p>{e(c.definition)}</p>"
        )
        for title_text, values in (
            ("Examples", c.examples),
            (f"Counterexamples (not {c.name})", c.counterexamples),
            ("Edge rules", c.edge_rules),
        ):
            if values:
                lis = "".join(f"<li>{e(v)}</li>" for v in values)
                parts.append(f"<h4>{e(title_text)}</h4><ul>{lis}</ul>")
        parts.append("</section>")
    if previous is not None:
        diff = taxonomy_diff(previous, taxonomy)
        lis = "".join(f"<li>{e(line)}</li>" for line in diff) or "<li>none</li>"
        parts.append(f"<h2>Changes since v{previous.version}</h2><ul>{lis}</ul>")
    parts.append("<h2>Gold set</h2>")
    rows = _gold_rows(taxonomy, gold)
    if rows:
        parts.append("<p>Practise on these items; their answers are known.</p>")
        parts.append("<table><tr><th>Item</th><th>Label</th></tr>")
        parts += [
            f"<tr><td><code>{e(i)}</code></td><td>{e(taxonomy.get(lab).name)}</td></tr>"
            for i, lab in rows
        ]
        parts.append("</table>")
    else:
        parts.append("<p>No gold items yet.</p>")
    if taxonomy.changelog:
        parts.append("<h2>Changelog</h2><ul>")
        for entry in sorted(taxonomy.changelog, key=lambda x: x.version, reverse=True):
            lis = "".join(f"<li>{e(ch)}</li>" for ch in entry.changes)
            parts.append(f"<li>v{entry.version} ({e(entry.date)})<ul>{lis}</ul></li>")
        parts.append("</ul>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def project_guidelines(
    project: Project,
    fmt: Literal["markdown", "html"] = "markdown",
    *,
    version: int | str | None = None,
    gold: Mapping[str, str] | None = None,
) -> str:
    """Render the guidelines of a stored taxonomy version, with its gold set and changes.

    Args:
        project: An open project.
        fmt: ``"markdown"`` or ``"html"``.
        version: Taxonomy version; the current one when None.
        gold: Extra gold items (item -> label, e.g. from ``labels/gold.csv``), merged with
            the gold items added by review for that version.

    Returns:
        The document.

    Raises:
        ReviewError: Unknown format.
        StoreError: The version is not stored.
    """
    if fmt not in ("markdown", "html"):
        raise ReviewError(f"Unknown guidelines format {fmt!r}; use 'markdown' or 'html'.")
    taxonomy = project.current_taxonomy(version=version)
    versions = project.taxonomy_versions()
    names: list[str] = [str(v) for v in versions.loc[versions["name"] == taxonomy.name, "version"]]
    previous = None
    if str(taxonomy.version) in names:
        k = names.index(str(taxonomy.version))
        if k > 0:
            previous = project.current_taxonomy(taxonomy.name, names[k - 1])
    merged = dict(gold or {})
    stored = gold_items(project, taxonomy.version)
    merged.update(zip(stored["item"], stored["label"], strict=True))
    render = render_guidelines_html if fmt == "html" else render_guidelines_markdown
    return render(taxonomy, gold=merged, previous=previous)


def write_guidelines(
    project: Project,
    directory: str | os.PathLike[str],
    *,
    gold: Mapping[str, str] | None = None,
) -> list[Path]:
    """Write ``<name>_v<N>.md`` and ``.html`` guidelines of the current version into a folder.

    Args:
        project: An open project.
        directory: Output folder (created if missing).
        gold: Extra gold items.

    Returns:
        The two paths.

    Raises:
        InputFileError: The folder cannot be created or written.
    """
    out = Path(directory)
    taxonomy = project.current_taxonomy()
    try:
        out.mkdir(parents=True, exist_ok=True)
        paths = []
        for fmt, suffix in (("markdown", "md"), ("html", "html")):
            path = out / f"{taxonomy.name}_v{taxonomy.version}.{suffix}"
            path.write_text(project_guidelines(project, fmt, gold=gold), encoding="utf-8")  # type: ignore[arg-type]
            paths.append(path)
    except OSError as exc:
        raise InputFileError(f"Cannot write guidelines into {out}: {exc}") from exc
    return paths
