"""`geolabel review`: the expert review queue, decisions, decision files and taxonomy changes."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from geolabel.cli.options import JsonOption, console, err_console, handle_errors, print_json

__all__ = ["app"]

app = typer.Typer(
    help="Review disputed items: queue, decide, import decisions, apply taxonomy changes.",
    no_args_is_help=True,
)

ProjectArg = Annotated[Path, typer.Argument(help="The project GeoPackage.")]


@app.command("queue")
@handle_errors
def queue(
    project_path: ProjectArg,
    top: Annotated[int, typer.Option("--top", help="Rows to print.", min=1)] = 20,
    gpkg: Annotated[
        Path | None, typer.Option("--gpkg", help="Write the queue as a GeoPackage layer here.")
    ] = None,
    csv: Annotated[Path | None, typer.Option("--csv", help="Write the queue as CSV here.")] = None,
    include_decided: Annotated[
        bool, typer.Option("--include-decided", help="Keep items already decided.")
    ] = False,
    permutations: Annotated[
        int | None,
        typer.Option("--permutations", help="Gi* permutations for the hotspots.", min=99),
    ] = None,
    no_hotspots: Annotated[
        bool, typer.Option("--no-hotspots", help="Rank without the Gi* hotspots (faster).")
    ] = False,
    json_out: JsonOption = False,
) -> None:
    """Rank items for expert review (hotspots, disagreement, impact, model-crowd conflict)."""
    from geolabel.review.queue import export_queue, project_queue
    from geolabel.store import Project

    with Project.open(project_path) as project:
        q = project_queue(
            project,
            include_decided=include_decided,
            permutations=permutations,
            use_hotspots=not no_hotspots,
        )
    written = export_queue(q, gpkg=gpkg, csv=csv) if gpkg is not None or csv is not None else []
    head = q.head(top).drop(columns="geometry")
    if json_out:
        print_json(
            {
                "n_items": len(q),
                "written": [str(p) for p in written],
                "top": head.astype(object).where(head.notna(), None).to_dict(orient="records"),
            }
        )
        return
    from rich.table import Table

    table = Table("rank", "item", "priority", "status", "reason", "district", title="Review queue")
    for row in head.itertuples():
        table.add_row(
            str(row.rank),
            str(row.item),
            f"{row.priority:.3f}",
            str(row.status),
            str(row.reason),
            "" if row.district is None else str(row.district),
        )
    console.print(table)
    console.print(f"{len(q)} item(s) in the queue.")
    for path in written:
        console.print(f"Wrote {path}")


@app.command("decide")
@handle_errors
def decide(
    project_path: ProjectArg,
    item: Annotated[str, typer.Argument(help="The item decided.")],
    label: Annotated[str, typer.Argument(help="The final label.")],
    reviewer: Annotated[str, typer.Option("--reviewer", help="Who decides.")],
    rationale: Annotated[str, typer.Option("--rationale", help="Why this label.")],
    version: Annotated[
        int | None,
        typer.Option("--version", help="The item's version you reviewed (to override a decision)."),
    ] = None,
    propose: Annotated[
        str | None,
        typer.Option(
            "--propose",
            help="Propose a taxonomy change: edge_rule, counterexample, example, gold_item, "
            "split, merge or rename.",
        ),
    ] = None,
    classes: Annotated[
        str | None, typer.Option("--classes", help="Classes of the proposal, comma-separated.")
    ] = None,
    text: Annotated[str | None, typer.Option("--text", help="Rule/example text.")] = None,
    new_class: Annotated[
        str | None, typer.Option("--new-class", help="New class id (split, rename, merge).")
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="New class display name.")] = None,
    definition: Annotated[
        str | None, typer.Option("--definition", help="New class definition (split).")
    ] = None,
    json_out: JsonOption = False,
) -> None:
    """Record an expert decision; it overrides the consensus, with provenance."""
    from geolabel.review.decisions import Decision, record_decision
    from geolabel.review.evolution import TaxonomyProposal
    from geolabel.store import Project

    proposals: tuple[TaxonomyProposal, ...] = ()
    if propose is not None:
        proposals = (
            TaxonomyProposal.from_dict(
                {
                    "kind": propose,
                    "classes": [c.strip() for c in (classes or "").split(",") if c.strip()],
                    "text": text or "",
                    "new_class": new_class,
                    "name": name,
                    "definition": definition,
                    "items": [item] if propose in ("gold_item", "split") else [],
                    "label": label if propose == "gold_item" else None,
                    "rationale": rationale,
                }
            ),
        )
    with Project.open(project_path) as project:
        result = record_decision(
            project, Decision(item, label, reviewer, rationale, version, proposals)
        )
    if json_out:
        print_json(result)
        return
    was = f" (was {result.previous_label})" if result.previous_label else ""
    console.print(
        f"{result.item}: {result.label}{was}, decided by {result.reviewer} "
        f"[{result.review_id}, version {result.version}]."
    )
    for pid in result.proposal_ids:
        console.print(f"Proposal {pid} is pending; apply it with `geolabel review apply`.")


@app.command("import")
@handle_errors
def import_decisions(
    project_path: ProjectArg,
    path: Annotated[
        Path, typer.Argument(help="Decisions: the filled-in queue (.csv/.gpkg) or .jsonl.")
    ],
    reviewer: Annotated[
        str | None, typer.Option("--reviewer", help="Reviewer of rows without one.")
    ] = None,
    layer: Annotated[str | None, typer.Option("--layer", help="GeoPackage layer.")] = None,
    json_out: JsonOption = False,
) -> None:
    """Import decisions; rows decided by someone else since the export are refused (exit 1)."""
    from geolabel.review.decisions import import_decisions as run
    from geolabel.store import Project

    with Project.open(project_path) as project:
        batch = run(project, path, reviewer=reviewer, layer=layer)
    if json_out:
        print_json(asdict(batch))
    else:
        console.print(f"Stored {len(batch.stored)} decision(s) from {path}.")
        for conflict in batch.conflicts:
            err_console.print(f"Conflict: {conflict.message}")
    if batch.conflicts:
        raise typer.Exit(code=1)


@app.command("apply")
@handle_errors
def apply(
    project_path: ProjectArg,
    by: Annotated[str, typer.Option("--by", help="Who applies (an admin).")] = "admin",
    proposal: Annotated[
        list[str] | None, typer.Option("--proposal", help="Only these proposal ids.")
    ] = None,
    flag: Annotated[
        str, typer.Option("--flag", help="Items of a split class to relabel: evidence or all.")
    ] = "evidence",
    guidelines: Annotated[
        Path | None, typer.Option("--guidelines", help="Write the new guidelines into this folder.")
    ] = None,
    list_only: Annotated[bool, typer.Option("--list", help="List pending proposals only.")] = False,
    reject: Annotated[
        bool, typer.Option("--reject", help="Reject the --proposal ids instead of applying.")
    ] = False,
    json_out: JsonOption = False,
) -> None:
    """Apply pending taxonomy proposals: next version, remapped labels, relabel flags."""
    from geolabel.errors import ReviewError
    from geolabel.review.evolution import apply_proposals, proposals, reject_proposals
    from geolabel.review.guidelines import write_guidelines
    from geolabel.store import Project

    with Project.open(project_path) as project:
        if list_only:
            pending = proposals(project, status="pending")
            rows = [
                {"proposal_id": pid, "by": who, "item": it, "change": p.describe()}
                for pid, who, it, p in zip(
                    pending["proposal_id"],
                    pending["proposed_by"],
                    pending["item"],
                    pending["proposal"],
                    strict=True,
                )
            ]
            if json_out:
                print_json(rows)
            else:
                for row in rows:
                    console.print(f"{row['proposal_id']}  {row['by']}  {row['change']}")
                console.print(f"{len(rows)} pending proposal(s).")
            return
        if reject:
            if not proposal:
                raise ReviewError("--reject needs the --proposal ids to reject.")
            n = reject_proposals(project, proposal, by=by)
            console.print(f"Rejected {n} proposal(s).")
            return
        if flag not in ("evidence", "all"):
            raise ReviewError(f"--flag must be 'evidence' or 'all', got {flag!r}.")
        change = apply_proposals(
            project,
            proposal,
            applied_by=by,
            flag="all" if flag == "all" else "evidence",
        )
        written = write_guidelines(project, guidelines) if guidelines is not None else []
    if json_out:
        print_json({**asdict(change), "guidelines": [str(p) for p in written]})
        return
    console.print(
        f"Taxonomy {change.name} v{change.from_version} -> v{change.to_version}: "
        f"{len(change.proposal_ids)} proposal(s) applied, {change.n_remapped} label(s) remapped, "
        f"{len(change.relabel)} item(s) flagged for relabeling, {change.n_gold_added} gold item(s)."
    )
    for line in change.changes:
        console.print(f"- {line}")
    for path in written:
        console.print(f"Wrote {path}")


@app.command("guidelines")
@handle_errors
def guidelines(
    project_path: ProjectArg,
    output: Annotated[Path, typer.Option("-o", "--output", help="A .md or .html file.")],
    version: Annotated[
        int | None, typer.Option("--version", help="Taxonomy version (default: current).")
    ] = None,
    gold: Annotated[
        Path | None, typer.Option("--gold", help="Gold CSV (item,label) to list as well.")
    ] = None,
) -> None:
    """Render the project's annotator guidelines with gold set and changes (Markdown or HTML)."""
    from geolabel.crowd.consensus import read_gold
    from geolabel.errors import InputFileError
    from geolabel.review.guidelines import project_guidelines
    from geolabel.store import Project

    fmt = {".md": "markdown", ".html": "html", ".htm": "html"}.get(output.suffix.lower())
    if fmt is None:
        raise InputFileError(f"{output}: write guidelines to a .md or .html file.")
    gold_map = None
    if gold is not None:
        series = read_gold(gold)
        gold_map = {str(k): str(v) for k, v in series.items()}
    with Project.open(project_path) as project:
        text = project_guidelines(
            project, "html" if fmt == "html" else "markdown", version=version, gold=gold_map
        )
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputFileError(f"Cannot write {output}: {exc}") from exc
    console.print(f"Wrote guidelines to {output}")
