"""`geolabel export`: labeled parcels for GIS, or tasks for a labeling platform."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from geolabel.cli.options import JsonOption, console, handle_errors, print_json

__all__ = ["export"]

ExportFormat = Literal[
    "gpkg", "geojson", "parquet", "cog", "labelstudio", "toloka", "sagemaker", "labelbox", "appen"
]
Kind = Literal["parcel", "poi", "tile", "notice"]


@handle_errors
def export(
    project: Annotated[Path, typer.Argument(help="Project file (.gpkg).")],
    fmt: Annotated[
        ExportFormat,
        typer.Option(
            "--format",
            help="gpkg/geojson/parquet: labeled parcels; cog: class and confidence maps; "
            "labelstudio/toloka/sagemaker/labelbox/appen: tasks.",
        ),
    ],
    out: Annotated[Path, typer.Option("-o", "--out", help="Output file (GIS formats) or folder.")],
    kind: Annotated[Kind, typer.Option(help="Item kind of the tasks.")] = "parcel",
    url_prefix: Annotated[
        str | None,
        typer.Option(
            help="Base URL of the chips folder (Label Studio default: its local-files URL; "
            "Toloka, Labelbox, Appen: https://...; SageMaker: s3://bucket/prefix/)."
        ),
    ] = None,
    document_root: Annotated[
        Path | None,
        typer.Option(help="Label Studio: LOCAL_FILES_DOCUMENT_ROOT chip paths are relative to."),
    ] = None,
    gold: Annotated[
        Path | None,
        typer.Option(
            help="CSV item,label of gold (control) tasks (Toloka, Appen; Label Studio: a"
            " ground-truth annotation)."
        ),
    ] = None,
    model_version: Annotated[
        str | None, typer.Option(help="Pre-labels of this model (latest when omitted).")
    ] = None,
    class_map: Annotated[
        Path | None, typer.Option(help="Raster of taxonomy class codes pre-labeling tiles.")
    ] = None,
    ner: Annotated[bool, typer.Option(help="Pre-label notices with the NER pipeline.")] = False,
    shape: Annotated[
        list[str] | None,
        typer.Option(
            help="Tile pre-labels as brush and/or polygon (repeatable; both by default); "
            "Labelbox: mask or polygon."
        ),
    ] = None,
    taxonomy: Annotated[
        Path | None, typer.Option(help="POI or notice taxonomy YAML (stored on first use).")
    ] = None,
    item: Annotated[
        list[str] | None, typer.Option("--item", help="Only this item (repeatable).")
    ] = None,
    json_out: JsonOption = False,
) -> None:
    """Export labeled parcels (GIS) or tasks with pre-labels and geolabel ids (platforms)."""
    from geolabel.store import Project

    with Project.open(project) as p:
        if fmt in ("gpkg", "geojson", "parquet"):
            from geolabel.interop import export_gis

            result = export_gis(p, out, fmt)
        elif fmt == "cog":
            from geolabel.interop import export_label_maps

            result = export_label_maps(p, out)
        else:
            from geolabel.crowd.consensus import read_gold
            from geolabel.interop import export_tasks

            options: dict[str, object] = {"taxonomy_file": taxonomy}
            if gold is not None:
                if fmt not in ("labelstudio", "toloka", "appen"):
                    raise typer.BadParameter(
                        f"--gold goes out with labelstudio, toloka and appen tasks, not {fmt}."
                    )
                options["gold"] = read_gold(gold).astype(str).to_dict()
            if fmt == "labelstudio":
                options.update(
                    model_version=model_version,
                    class_map=class_map,
                    notice_prelabels=ner,
                    document_root=document_root,
                    shapes=tuple(shape or ("brush", "polygon")),
                )
                if url_prefix is not None:
                    options["url_prefix"] = url_prefix
            elif fmt == "labelbox":
                if url_prefix is None and kind != "notice":
                    raise typer.BadParameter(f"--url-prefix is required for {fmt} {kind} tasks.")
                if shape is not None and len(shape) != 1:
                    raise typer.BadParameter("Labelbox takes one --shape: mask or polygon.")
                options.update(
                    url_prefix=url_prefix,
                    model_version=model_version,
                    class_map=class_map,
                    notice_prelabels=ner,
                    shape=(shape or ["mask"])[0],
                )
            else:
                if url_prefix is None:
                    raise typer.BadParameter(f"--url-prefix is required for {fmt}.")
                options["url_prefix"] = url_prefix
                if fmt == "sagemaker":
                    options["class_map"] = class_map
            result = export_tasks(p, out, fmt, kind, items=item, **options)
    if json_out:
        print_json(result)
        return
    extra = f", {result.n_predictions} with pre-labels" if result.n_predictions else ""
    gold_text = f", {result.n_gold} gold" if result.n_gold else ""
    console.print(
        f"Wrote {result.n_tasks} {result.kind or ''} row(s){extra}{gold_text} ({fmt}): "
        + ", ".join(result.paths)
        + (f"; chips in {result.chips_dir}" if result.chips_dir else "")
    )
