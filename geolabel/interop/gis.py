"""GIS outputs: labeled parcels as GeoPackage, GeoJSON (RFC 7946) or GeoParquet; class maps as COGs.

Every parcel keeps its geometry and gets the current consensus with its provenance:
``label`` (consensus class, empty when none yet), ``confidence`` (the aggregator's probability
of that class), ``agreement`` (share of the item's votes that gave that class), ``n_votes``,
``method``, ``taxonomy_name``, ``taxonomy_version``, ``review_status`` (``reviewed`` when an
expert decision stands behind the label or the item was reviewed, ``unreviewed`` otherwise,
``unlabeled`` without consensus). GeoJSON is written in WGS 84 with ``RFC7946=YES`` (right-hand
winding, 7 decimals); GeoPackage and GeoParquet stay in the project CRS.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import rasterio.features
from affine import Affine
from rasterio.enums import Resampling

from geolabel.errors import InputFileError
from geolabel.interop.records import ExportResult
from geolabel.raster.io import write_cog
from geolabel.store import Project

__all__ = ["GIS_COLUMNS", "GisFormat", "export_gis", "export_label_maps", "labeled_parcels"]

GisFormat = Literal["gpkg", "geojson", "parquet"]

GIS_COLUMNS: Final[tuple[str, ...]] = (
    "parcel_id",
    "label",
    "confidence",
    "agreement",
    "n_votes",
    "method",
    "taxonomy_name",
    "taxonomy_version",
    "review_status",
)
"""Columns of every labeled-parcels output (besides the geometry)."""

_LAYER: Final = "labeled_parcels"


def labeled_parcels(project: Project) -> gpd.GeoDataFrame:
    """The project's parcels with their current consensus and provenance columns.

    Args:
        project: The project.

    Returns:
        One row per parcel, columns :data:`GIS_COLUMNS` + geometry, in the project CRS.
    """
    parcels = project.read_layer("parcels")
    parcels["parcel_id"] = parcels["parcel_id"].astype(str)
    consensus = project.current_consensus().set_index("item")
    votes = project.annotations(kind="parcel").set_index("annotation_id")["label"]
    reviews = set(project.reviews()["item"].astype(str))
    rows: list[tuple[object, ...]] = []
    for pid in parcels["parcel_id"]:
        if pid not in consensus.index:
            rows.append((pid, None, np.nan, np.nan, 0, None, None, None, "unlabeled"))
            continue
        c = consensus.loc[pid]
        ids = [v for v in c["votes"] if v in votes.index]
        given = votes.loc[ids] if ids else pd.Series(dtype=str)
        agreement = float((given == c["label"]).mean()) if len(given) else np.nan
        reviewed = pid in reviews or isinstance(c["review_id"], str)
        rows.append(
            (
                pid,
                str(c["label"]),
                float(c["confidence"]) if pd.notna(c["confidence"]) else np.nan,
                agreement,
                len(given),
                str(c["method"]),
                str(c["taxonomy_name"]),
                str(c["taxonomy_version"]),
                "reviewed" if reviewed else "unreviewed",
            )
        )
    table = pd.DataFrame(rows, columns=list(GIS_COLUMNS))
    table["n_votes"] = table["n_votes"].astype("int64")
    geometry = parcels.set_index("parcel_id").loc[table["parcel_id"]].geometry.to_numpy()
    return gpd.GeoDataFrame(table, geometry=geometry, crs=parcels.crs)


def export_gis(
    project: Project, path: str | os.PathLike[str], fmt: GisFormat | None = None
) -> ExportResult:
    """Write the labeled parcels as GeoPackage, GeoJSON (RFC 7946, WGS 84) or GeoParquet.

    Args:
        project: The project.
        path: Output file (``.gpkg``, ``.geojson``/``.json`` or ``.parquet``).
        fmt: Format; from the suffix when None.

    Returns:
        What was written.

    Raises:
        InputFileError: Unknown format or suffix.
    """
    out = Path(path)
    suffixes = {".gpkg": "gpkg", ".geojson": "geojson", ".json": "geojson", ".parquet": "parquet"}
    chosen = fmt or suffixes.get(out.suffix.lower())
    if chosen not in ("gpkg", "geojson", "parquet"):
        raise InputFileError(
            f"Cannot tell the GIS format of {out}: use .gpkg, .geojson or .parquet, or pass "
            "--format gpkg|geojson|parquet."
        )
    gdf = labeled_parcels(project)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    if chosen == "gpkg":
        pyogrio.write_dataframe(gdf, out, layer=_LAYER, driver="GPKG")
    elif chosen == "geojson":
        pyogrio.write_dataframe(
            gdf.to_crs("EPSG:4326"), out, driver="GeoJSON", layer=_LAYER, RFC7946="YES"
        )
    else:
        gdf.to_parquet(out, index=False)
    return ExportResult(format=chosen, kind="parcel", paths=(str(out),), n_tasks=len(gdf))


def export_label_maps(project: Project, out_dir: str | os.PathLike[str]) -> ExportResult:
    """Burn the consensus into class and confidence COGs on the (first) scene's grid.

    The class map holds taxonomy codes (``uint8``, 0 = no label, the nodata value); the
    confidence map ``float32`` with NaN as nodata. Overviews: nearest for classes, average for
    confidence.

    Args:
        project: The project.
        out_dir: Output folder.

    Returns:
        What was written (``classes.tif``, ``confidence.tif``).
    """
    from geolabel.raster.index import project_scenes

    scene_id, info = next(iter(project_scenes(project).items()))
    gdf = labeled_parcels(project).to_crs(info.crs)
    labeled = gdf[gdf["label"].notna()]
    codes = project.current_taxonomy().codes
    transform = Affine(*info.transform)
    shape = (info.height, info.width)
    classes = (
        rasterio.features.rasterize(
            (
                (g, codes[str(label)])
                for g, label in zip(labeled.geometry, labeled["label"], strict=True)
            ),
            out_shape=shape,
            transform=transform,
            fill=0,
            dtype="uint8",
        )
        if len(labeled)
        else np.zeros(shape, dtype=np.uint8)
    )
    confidence = np.full(shape, np.nan, dtype=np.float32)
    if len(labeled):
        index = rasterio.features.rasterize(
            ((g, i + 1) for i, g in enumerate(labeled.geometry)),
            out_shape=shape,
            transform=transform,
            fill=0,
            dtype="int32",
        )
        values = np.concatenate(([np.nan], labeled["confidence"].to_numpy(dtype=np.float32)))
        confidence = values[index].astype(np.float32)
    out = Path(out_dir)
    tags = {"scene_id": scene_id, "taxonomy": str(project.current_taxonomy().label)}
    class_path = write_cog(
        out / "classes.tif",
        classes,
        transform=transform,
        crs=info.crs,
        nodata=0,
        band_names=["class_code"],
        overview_resampling=Resampling.nearest,
        tags=tags,
    )
    conf_path = write_cog(
        out / "confidence.tif",
        confidence,
        transform=transform,
        crs=info.crs,
        nodata=float("nan"),
        band_names=["confidence"],
        tags=tags,
    )
    return ExportResult(
        format="cog",
        kind="parcel",
        paths=(str(class_path), str(conf_path)),
        n_tasks=len(labeled),
    )
