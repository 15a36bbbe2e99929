"""`geolabel info`: summarise a project file or a data folder."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from geolabel.cli.options import JsonOption, console, handle_errors, print_json

if TYPE_CHECKING:
    from geolabel.project import FolderSummary
    from geolabel.store import ProjectSummary

__all__ = ["info", "print_folder_summary", "print_project_summary"]


@handle_errors
def info(
    path: Annotated[
        Path, typer.Argument(help="A project .gpkg or a data folder such as data/sample.")
    ],
    json_out: JsonOption = False,
) -> None:
    """Summarise a project (layers, counts, CRS, taxonomy version) or a data folder."""
    from geolabel.project import FolderSummary, describe

    summary = describe(path)
    if json_out:
        print_json(summary)
    elif isinstance(summary, FolderSummary):
        print_folder_summary(summary)
    else:
        print_project_summary(summary)


def print_folder_summary(s: FolderSummary) -> None:
    """Print a data folder's summary as tables."""
    console.print(
        f"[bold]{s.path}[/]  CRS: {', '.join(s.crs) or 'none'}  taxonomy: {s.taxonomy or 'none'}"
    )
    if s.scenes:
        t = Table("scene", "size (px)", "bands", "dtype", "pixel", "nodata", "CRS", title="Scenes")
        for r in s.scenes:
            t.add_row(
                Path(r.path).name if Path(r.path).parent == Path(s.path) else r.path,
                f"{r.width} × {r.height}",
                f"{r.count} ({', '.join(r.band_names)})",
                r.dtype,
                f"{r.res[0]:g}",
                str(r.nodata),
                r.crs,
            )
        console.print(t)
    if s.vectors:
        t = Table("file", "layer", "geometry", "features", "CRS", title="Vector layers")
        for v in s.vectors:
            t.add_row(v.path, v.layer, v.geometry_type or "-", str(v.count), v.crs or "-")
        console.print(t)
    if s.tables:
        t = Table("file", "records", title="Tables")
        for name, n in s.tables.items():
            t.add_row(name, str(n))
        console.print(t)
    if s.taxonomy_classes:
        console.print(f"Taxonomy classes: {', '.join(s.taxonomy_classes)}")
    if s.truth:
        console.print(f"Truth (read only to score the pipeline): {', '.join(s.truth)}")


def print_project_summary(s: ProjectSummary) -> None:
    """Print a project's summary as tables."""
    tax = f"{s.taxonomy_name} v{s.taxonomy_version}" if s.taxonomy_name else "none"
    console.print(f"[bold]{s.path}[/]  project: {s.name}  CRS: {s.crs}  taxonomy: {tax}")
    t = Table("layer / table", "kind", "rows", "geometry", "CRS", title="Contents")
    for layer in s.layers:
        t.add_row(
            layer.name, layer.kind, str(layer.count), layer.geometry_type or "-", layer.crs or "-"
        )
    console.print(t)
    counts = ", ".join(f"{k}: {v}" for k, v in s.counts.items())
    console.print(counts)
