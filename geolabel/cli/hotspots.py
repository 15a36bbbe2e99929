"""`geolabel hotspots`: significant clusters of crowd disagreement (Gi*, permutations, FDR)."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from geolabel.cli.options import JsonOption, console, handle_errors

__all__ = ["WeightsChoice", "hotspots"]


class WeightsChoice(StrEnum):
    """Spatial weights offered on the command line."""

    contiguity = "contiguity"
    knn = "knn"


@handle_errors
def hotspots(
    project: Annotated[Path, typer.Argument(help="Project file (.gpkg).")],
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="GeoPackage to write the hotspot polygons to."),
    ] = None,
    method: Annotated[str, typer.Option(help="Aggregator for the disagreement scores.")] = "ds",
    weights: Annotated[
        WeightsChoice, typer.Option(help="knn (k nearest parcels) or contiguity (touching).")
    ] = WeightsChoice.knn,
    k: Annotated[int, typer.Option(help="Neighbours for knn.")] = 6,
    alpha: Annotated[float, typer.Option(help="False-discovery rate.")] = 0.2,
    permutations: Annotated[int, typer.Option(help="Permutations per parcel.")] = 9999,
    seed: Annotated[int, typer.Option(help="Seed of the permutations.")] = 0,
    model_doubt: Annotated[
        bool,
        typer.Option(
            "--model-doubt",
            help="Also test parcels with fewer than two votes, valued by the entropy of their"
            " pre-label (early rounds, when few parcels have votes).",
        ),
    ] = False,
    json_out: JsonOption = False,
) -> None:
    """Find hotspots of disagreement among the project's parcels."""
    from geolabel.errors import InputFileError
    from geolabel.review.hotspots import project_hotspots
    from geolabel.store import Project

    with Project.open(project) as p:
        result = project_hotspots(
            p,
            method=method,
            weights=weights.value,
            k=k,
            alpha=alpha,
            permutations=permutations,
            seed=seed,
            model_uncertainty=model_doubt,
        )
    if output is not None:
        if output.suffix.lower() != ".gpkg":
            raise InputFileError(f"Write hotspots to a .gpkg file, not {output.name}.")
        try:
            import pyogrio

            pyogrio.write_dataframe(result.polygons, output, layer="hotspots", driver="GPKG")
            pyogrio.write_dataframe(
                result.items, output, layer="hotspot_items", driver="GPKG", append=True
            )
        except (OSError, pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
            raise InputFileError(f"Cannot write {output}: {exc}.") from exc
    if json_out:
        typer.echo(json.dumps(result.to_dict(), sort_keys=True, default=str))
        return
    n_sig = int(result.items["significant"].sum())
    console.print(
        f"{len(result.polygons)} hotspot(s), {n_sig} significant parcel(s) of "
        f"{len(result.items)} (Gi*, {result.weights}, {result.permutations} permutations, "
        f"FDR {result.alpha}).",
        markup=False,
    )
    for _, row in result.polygons.iterrows():
        console.print(
            f"  {row['hotspot_id']}: {row['n_items']} parcel(s), {row['area_m2']:.0f} m², "
            f"mean disagreement {row['mean_disagreement']:.2f}, {row['top_pair'] or '-'}, "
            f"{row['districts']}",
            markup=False,
        )
