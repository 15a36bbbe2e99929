"""`geolabel query`: labeled parcels filtered by label, place and notices, shown or exported."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Column, Table

from geolabel.cli.options import JsonOption, console, handle_errors, print_json
from geolabel.errors import QueryError

__all__ = ["parse_bbox", "parse_near_poi", "query"]

_SHOWN_COLUMNS = ("parcel_id", "address", "district", "label", "confidence", "label_source")


def parse_near_poi(value: str) -> tuple[str, float]:
    """Parse ``CATEGORY:METRES`` (``school:500``).

    Raises:
        QueryError: Not of that form.
    """
    category, sep, metres = value.rpartition(":")
    try:
        distance = float(metres)
    except ValueError:
        distance = float("nan")
    if not sep or not category or distance != distance:  # NaN: not a number
        raise QueryError(
            f"--near-poi {value!r} must be CATEGORY:METRES, e.g. --near-poi school:500."
        )
    return category, distance


def parse_bbox(value: str) -> tuple[float, float, float, float]:
    """Parse ``MINX,MINY,MAXX,MAXY``.

    Raises:
        QueryError: Not four numbers.
    """
    parts = [p.strip() for p in value.split(",")]
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        numbers = []
    if len(numbers) != 4:
        raise QueryError(
            f"--bbox {value!r} must be four numbers MINX,MINY,MAXX,MAXY (in the project CRS, "
            "or in --bbox-crs)."
        )
    return numbers[0], numbers[1], numbers[2], numbers[3]


@handle_errors
def query(
    project: Annotated[Path, typer.Argument(help="The project .gpkg.")],
    cls: Annotated[
        list[str] | None,
        typer.Option("--class", help="Current label is this class (repeat for several)."),
    ] = None,
    min_confidence: Annotated[
        float | None, typer.Option("--min-confidence", help="Label confidence at least this.")
    ] = None,
    max_confidence: Annotated[
        float | None, typer.Option("--max-confidence", help="Label confidence at most this.")
    ] = None,
    min_agreement: Annotated[
        float | None,
        typer.Option("--min-agreement", help="Share of the consensus votes that agree, at least."),
    ] = None,
    review_status: Annotated[
        str | None, typer.Option("--review-status", help="reviewed or unreviewed.")
    ] = None,
    taxonomy_version: Annotated[
        str | None, typer.Option("--taxonomy-version", help="Labels of this taxonomy version.")
    ] = None,
    source: Annotated[
        str | None, typer.Option("--source", help="consensus or prediction (pre-label).")
    ] = None,
    district: Annotated[
        list[str] | None, typer.Option("--district", help="Parcels of this district (repeat).")
    ] = None,
    labeled_after: Annotated[
        str | None, typer.Option("--labeled-after", help="Labeled on/after (ISO date).")
    ] = None,
    labeled_before: Annotated[
        str | None, typer.Option("--labeled-before", help="Labeled before (ISO date).")
    ] = None,
    bbox: Annotated[
        str | None, typer.Option("--bbox", help="MINX,MINY,MAXX,MAXY (project CRS or --bbox-crs).")
    ] = None,
    bbox_crs: Annotated[
        str | None, typer.Option("--bbox-crs", help="CRS of --bbox, e.g. EPSG:4326.")
    ] = None,
    within: Annotated[
        Path | None, typer.Option("--within", help="Polygon file: parcels inside it.")
    ] = None,
    within_layer: Annotated[
        str | None, typer.Option("--within-layer", help="Layer of --within with several.")
    ] = None,
    near_poi: Annotated[
        str | None,
        typer.Option("--near-poi", help="CATEGORY:METRES, e.g. school:500."),
    ] = None,
    notices: Annotated[
        list[str] | None,
        typer.Option("--notices", help="Parcels linked to a notice of this kind (repeat)."),
    ] = None,
    columns: Annotated[
        str | None, typer.Option("--columns", help="Parcel columns to keep, comma-separated.")
    ] = None,
    crs: Annotated[str | None, typer.Option("--crs", help="Reproject the output.")] = None,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write .geojson, .gpkg or .csv.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=0, help="Rows shown on screen.")] = 20,
    json_out: JsonOption = False,
) -> None:
    """Query labeled parcels ("commercial parcels within 500 m of a school") and export them."""
    from geolabel.query import open_project, summarize, write_parcels

    filters: dict[str, Any] = {
        "cls": cls or None,
        "min_confidence": min_confidence,
        "max_confidence": max_confidence,
        "min_agreement": min_agreement,
        "review_status": review_status,
        "taxonomy_version": taxonomy_version,
        "label_source": source,
        "district": district or None,
        "labeled_after": labeled_after,
        "labeled_before": labeled_before,
        "bbox": parse_bbox(bbox) if bbox is not None else None,
        "bbox_crs": bbox_crs,
        "within": str(within) if within is not None else None,
        "within_layer": within_layer,
        "near_poi": parse_near_poi(near_poi) if near_poi is not None else None,
        "intersects_notices": notices or None,
        "columns": [c.strip() for c in columns.split(",") if c.strip()] if columns else None,
        "crs": crs,
    }
    given = {k: v for k, v in filters.items() if v is not None}
    frame = open_project(project).parcels(**given)
    written = str(write_parcels(frame, output)) if output is not None else None
    summary = summarize(frame, output=written, filters=given)
    if json_out:
        print_json(summary)
        return
    shown = [c for c in _SHOWN_COLUMNS if c in frame.columns]
    table = Table(*(Column(c, no_wrap=True) for c in shown))
    for row in frame[shown].head(limit).itertuples(index=False):
        table.add_row(*(_cell(v) for v in row))
    if limit and len(frame):
        console.print(table)
    more = f" (first {limit} shown)" if len(frame) > limit else ""
    labels = ", ".join(f"{k or 'unlabeled'} {v}" for k, v in summary.labels.items())
    console.print(f"{summary.n_parcels} parcel(s){more}" + (f": {labels}." if labels else "."))
    if written is not None:
        console.print(f"Wrote {written}.")


def _cell(value: object) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)
