"""`geolabel map`: one self-contained HTML map of a project (works with no network)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from geolabel.cli.options import JsonOption, console, err_console, handle_errors, print_json

__all__ = ["map_command"]


@handle_errors
def map_command(
    project: Annotated[Path, typer.Argument(help="Project file (.gpkg).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="HTML file to write.")] = Path(
        "map.html"
    ),
    method: Annotated[str, typer.Option(help="Aggregator for the disagreement scores.")] = "ds",
    max_image_px: Annotated[
        int, typer.Option(help="Longest side of the scene image in pixels.")
    ] = 1024,
    permutations: Annotated[int, typer.Option(help="Permutations for the hotspots.")] = 999,
    json_out: JsonOption = False,
) -> None:
    """Write the scene, labels, disagreement, hotspots, notices, POIs and tiles as one map."""
    from geolabel.review.maps import project_map
    from geolabel.store import Project

    with Project.open(project) as p:
        result = project_map(
            p, output, method=method, max_image_px=max_image_px, permutations=permutations
        )
    if json_out:
        print_json(result)
        return
    for note in result.skipped:
        err_console.print(f"Note: skipped {note}", markup=False)
    console.print(
        f"Wrote {result.path} ({result.n_bytes / 1e6:.1f} MB) with layers: "
        f"{', '.join(result.layers)}.",
        markup=False,
    )
