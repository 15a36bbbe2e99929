"""`geolabel import`: append annotations in one transaction, from a CSV or a platform export."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from geolabel.cli.options import JsonOption, console, handle_errors, print_json

__all__ = ["import_annotations"]

ImportFormat = Literal["csv", "labelstudio", "toloka", "sagemaker", "labelbox", "appen"]


@handle_errors
def import_annotations(
    project: Annotated[Path, typer.Argument(help="Project file (.gpkg).")],
    csv: Annotated[
        Path,
        typer.Argument(
            metavar="FILE",
            help="CSV with columns item, annotator, label (created_at, seconds optional), or a "
            "platform's export (see --format).",
        ),
    ],
    fmt: Annotated[
        ImportFormat,
        typer.Option(
            "--format",
            help="csv; labelstudio (JSON export); toloka (results TSV); sagemaker (Ground Truth "
            "output manifest); labelbox (Export v2 NDJSON); appen (full or aggregated report).",
        ),
    ] = "csv",
    output: Annotated[
        str | None,
        typer.Option(
            help="The field holding the class when there are several: Toloka OUTPUT: field, "
            "Appen answer column, Labelbox radio question."
        ),
    ] = None,
    poi_taxonomy: Annotated[
        Path | None, typer.Option(help="POI taxonomy YAML, stored with the project on first use.")
    ] = None,
    notice_taxonomy: Annotated[
        Path | None,
        typer.Option(help="Notice entity taxonomy YAML, stored with the project on first use."),
    ] = None,
    json_out: JsonOption = False,
) -> None:
    """Import annotations; importing the same file twice adds nothing."""
    from geolabel.store import Project

    with Project.open(project) as p:
        if fmt == "csv":
            result = p.import_annotations_csv(csv, allowed_labels=p.current_taxonomy().class_ids)
        else:
            from geolabel.interop import import_file

            files = {
                k: str(v)
                for k, v in (("poi", poi_taxonomy), ("notice", notice_taxonomy))
                if v is not None
            }
            interop = import_file(p, csv, fmt, output=output, taxonomy_files=files)
            if json_out:
                print_json(interop)
                return
            skipped = ", ".join(f"{n} {why}" for why, n in sorted(interop.n_skipped.items()))
            verb = (
                "was already imported; nothing added"
                if interop.already_imported
                else (f"imported {interop.n_added} new annotation(s)")
            )
            refs = f", {interop.n_references} reference(s)" if interop.n_references else ""
            console.print(
                f"{csv} ({fmt}): {verb} — {interop.n_labels} label(s), {interop.n_spans} "
                f"span(s), {interop.n_segments} drawn region(s), {interop.n_gold} gold answer(s)"
                f"{refs}{f'; left out: {skipped}' if skipped else ''}."
            )
            return
    if json_out:
        print_json(result)
        return
    if result.already_imported:
        console.print(f"{csv} was already imported; nothing added.")
    else:
        console.print(
            f"Imported {result.n_added} new annotation(s) from {csv}"
            f" ({result.n_rows} rows, {result.n_duplicates} already stored)."
        )
