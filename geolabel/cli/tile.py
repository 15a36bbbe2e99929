"""`geolabel tile`: build a project's tile index and band statistics."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from geolabel.cli.options import JsonOption, console, handle_errors, print_json

if TYPE_CHECKING:
    from geolabel.raster.index import TileIndexResult

__all__ = ["print_tile_result", "tile"]


@handle_errors
def tile(
    project: Annotated[Path, typer.Argument(help="The project .gpkg (made by geolabel init).")],
    size: Annotated[int, typer.Option("--size", min=1, help="Tile size in pixels.")] = 256,
    overlap: Annotated[
        int, typer.Option("--overlap", min=0, help="Pixels shared by neighbouring tiles.")
    ] = 32,
    nodata_threshold: Annotated[
        float,
        typer.Option(
            "--nodata-threshold",
            help="Skip tiles whose nodata share is at least this (1.0: only all-nodata tiles).",
        ),
    ] = 1.0,
    edge: Annotated[
        str,
        typer.Option(help="Edge policy: shift (last tiles moved inward, full cover) or drop."),
    ] = "shift",
    stats_tiles: Annotated[
        int, typer.Option("--stats-tiles", min=1, help="Tiles sampled for band statistics.")
    ] = 64,
    seed: Annotated[int, typer.Option(help="Seed of the statistics sample.")] = 0,
    force: Annotated[
        bool, typer.Option("--force", help="Replace an existing tile index and statistics.")
    ] = False,
    json_out: JsonOption = False,
) -> None:
    """Tile the project's scenes; store the `tiles` layer and per-band normalisation statistics."""
    from geolabel.raster.index import tile_project

    if edge not in ("shift", "drop"):
        raise typer.BadParameter("use 'shift' or 'drop'.", param_hint="--edge")
    result = tile_project(
        project,
        size=size,
        overlap=overlap,
        edge="shift" if edge == "shift" else "drop",
        nodata_threshold=nodata_threshold,
        stats_tiles=stats_tiles,
        seed=seed,
        overwrite=force,
    )
    if json_out:
        print_json(result)
    else:
        print_tile_result(result)


def print_tile_result(r: TileIndexResult) -> None:
    """Print a tiling result as a table."""
    console.print(
        f"[bold]{r.project}[/]: {r.n_tiles} tiles of {r.size} px, overlap {r.overlap} px,"
        f" edge {r.edge}, layer '{r.layer}' ({r.crs})"
    )
    t = Table("scene", "size (px)", "bands", "CRS", "tiles", "skipped (nodata)", "mean", "std")
    for s in r.scenes:
        t.add_row(
            s.scene_id,
            f"{s.width} × {s.height}",
            f"{s.bands} {s.dtype}",
            s.crs,
            str(s.n_tiles),
            str(s.n_skipped),
            ", ".join(f"{v:.4g}" for v in s.stats.mean),
            ", ".join(f"{v:.4g}" for v in s.stats.std),
        )
    console.print(t)
