"""`geolabel import`: append annotations from a CSV file to a project, in one transaction."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from geolabel.cli.options import JsonOption, console, handle_errors, print_json

__all__ = ["import_annotations"]


@handle_errors
def import_annotations(
    project: Annotated[Path, typer.Argument(help="Project file (.gpkg).")],
    csv: Annotated[
        Path,
        typer.Argument(
            help="CSV with columns item, annotator, label (created_at, seconds optional)."
        ),
    ],
    json_out: JsonOption = False,
) -> None:
    """Import annotations; importing the same file twice adds nothing."""
    from geolabel.store import Project

    with Project.open(project) as p:
        result = p.import_annotations_csv(csv, allowed_labels=p.current_taxonomy().class_ids)
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
