"""`geolabel init`: create a project GeoPackage from scenes and parcels."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from geolabel.cli.options import JsonOption, console, handle_errors, print_json

__all__ = ["init"]


@handle_errors
def init(
    project: Annotated[Path, typer.Argument(help="Project file to create (.gpkg).")],
    scene: Annotated[
        list[Path], typer.Option("--scene", help="GeoTIFF/COG scene (repeat for several).")
    ],
    parcels: Annotated[
        Path, typer.Option("--parcels", help="Parcel polygons (GeoPackage, GeoJSON...).")
    ],
    parcels_layer: Annotated[str | None, typer.Option(help="Layer of --parcels.")] = None,
    id_column: Annotated[str, typer.Option(help="Column of unique parcel ids.")] = "parcel_id",
    taxonomy: Annotated[
        Path | None, typer.Option(help="Land-use taxonomy YAML (default: geolabel's land use v1).")
    ] = None,
    pois: Annotated[Path | None, typer.Option(help="POI points (need a poi_id column).")] = None,
    pois_layer: Annotated[str | None, typer.Option(help="Layer of --pois.")] = None,
    regions: Annotated[Path | None, typer.Option(help="Region (district) polygons.")] = None,
    regions_layer: Annotated[str | None, typer.Option(help="Layer of --regions.")] = None,
    region_column: Annotated[str, typer.Option(help="Column naming each region.")] = "district",
    notices: Annotated[Path | None, typer.Option(help="Municipal notices (JSON Lines).")] = None,
    streets: Annotated[
        Path | None,
        typer.Option(help="Street lines with a name column (link notices' addresses to parcels)."),
    ] = None,
    streets_layer: Annotated[str | None, typer.Option(help="Layer of --streets.")] = None,
    crs: Annotated[
        str | None, typer.Option(help="Project CRS, e.g. EPSG:32610 (default: the first scene's).")
    ] = None,
    invalid: Annotated[
        str, typer.Option(help="What to do with invalid parcel geometries: repair or reject.")
    ] = "repair",
    force: Annotated[
        bool, typer.Option("--force", help="Replace an existing project file.")
    ] = False,
    json_out: JsonOption = False,
) -> None:
    """Create a project from scenes and parcels (and optionally POIs, regions, notices, streets)."""
    from geolabel.project import init_project

    if invalid not in ("repair", "reject"):
        raise typer.BadParameter("use 'repair' or 'reject'.", param_hint="--invalid")
    policy: Literal["repair", "reject"] = "repair" if invalid == "repair" else "reject"
    result = init_project(
        project,
        scenes=scene,
        parcels=parcels,
        parcels_layer=parcels_layer,
        id_column=id_column,
        taxonomy=taxonomy,
        pois=pois,
        pois_layer=pois_layer,
        regions=regions,
        regions_layer=regions_layer,
        region_column=region_column,
        notices=notices,
        streets=streets,
        streets_layer=streets_layer,
        crs=crs,
        invalid=policy,
        overwrite=force,
    )
    if json_out:
        print_json(result)
        return
    for note in result.notes:
        console.print(f"[yellow]Note:[/] {note.message}")
    from geolabel.cli.info import print_project_summary

    print_project_summary(result.summary)
