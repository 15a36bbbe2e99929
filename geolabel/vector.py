"""Read and check vector inputs (parcels, POIs, regions): layers, columns, CRS, valid geometry.

Every check either fixes the input and says so in a :class:`InputNote` (reprojection, repaired
geometries), or raises a geolabel error that names the file and what to do. Nothing is mixed
silently: inputs in another CRS are reprojected to the project CRS and the note says from what.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import geopandas as gpd
import pyogrio
import shapely
from pyogrio.errors import DataLayerError, DataSourceError
from pyproj import CRS

from geolabel.errors import ColumnError, CRSMismatchError, GeometryError, InputFileError, LayerError

__all__ = ["InputNote", "check_polygons", "read_vector", "to_crs_checked"]


@dataclass(frozen=True, slots=True)
class InputNote:
    """Something geolabel changed in an input, reported to the user.

    Attributes:
        kind: ``reprojected`` or ``repaired``.
        message: One sentence saying what was done.
    """

    kind: str
    message: str


def read_vector(
    path: str | os.PathLike[str],
    *,
    layer: str | None = None,
    required: Sequence[str] = (),
    what: str = "layer",
    layer_option: str | None = None,
) -> gpd.GeoDataFrame:
    """Read a vector file (GeoPackage, GeoJSON, Shapefile...) with clear errors.

    Args:
        path: The file.
        layer: Layer name; required when the file has several layers.
        required: Columns that must be present.
        what: What the layer is, for messages ("parcels", "POIs").
        layer_option: The command-line option that names the layer (``--parcels-layer``), for
            messages.

    Returns:
        The features with their CRS.

    Raises:
        InputFileError: Missing or unreadable file.
        LayerError: The layer does not exist, or a multi-layer file was given without one.
        ColumnError: A required column is missing.
        CRSMismatchError: The file has no CRS.
    """
    p = Path(path)
    if not p.exists():
        raise InputFileError(f"The {what} file {p} does not exist. Check the path.")
    try:
        layers = [str(name) for name, _ in pyogrio.list_layers(p)]
    except DataSourceError as exc:
        raise InputFileError(
            f"GDAL cannot read {p} as a vector file ({exc}). Give a GeoPackage, GeoJSON or"
            " Shapefile."
        ) from exc
    if layer is None and len(layers) > 1:
        raise LayerError(
            f"{p} has several layers ({', '.join(layers)}); say which holds the {what}"
            + (f" with {layer_option} NAME." if layer_option else ".")
        )
    if layer is not None and layer not in layers:
        raise LayerError(
            f"{p} has no layer {layer!r}. Its layers are: {', '.join(layers) or '(none)'}."
        )
    try:
        gdf = gpd.read_file(p, layer=layer, engine="pyogrio")
    except (DataLayerError, DataSourceError) as exc:
        raise InputFileError(f"Could not read the {what} from {p}: {exc}") from exc
    missing = [c for c in required if c not in gdf.columns]
    if missing:
        present = [c for c in gdf.columns if c != gdf.geometry.name]
        raise ColumnError(
            f"The {what} in {p} lack the column(s) {', '.join(map(repr, missing))}. Columns"
            f" present: {', '.join(present) or '(none)'}. Rename the column in the file or name"
            " it with the matching option (e.g. --id-column)."
        )
    if gdf.crs is None:
        raise CRSMismatchError(
            f"The {what} in {p} have no CRS, so they cannot be matched to the imagery. Set the"
            f" CRS they were drawn in, e.g. `ogr2ogr -a_srs EPSG:4326 fixed.gpkg {p}`."
        )
    if gdf.crs.is_geographic and len(gdf):
        minx, miny, maxx, maxy = gdf.total_bounds
        if min(minx, miny) < -180 or maxx > 180 or maxy > 90 or miny < -90:
            raise CRSMismatchError(
                f"The {what} in {p} are declared in {gdf.crs.to_string()} (degrees), but their"
                f" coordinates reach ({minx:.0f}, {miny:.0f}, {maxx:.0f}, {maxy:.0f}), which looks"
                " projected (metres). GeoJSON without a 'crs' member means WGS 84: write the file"
                " with its real CRS, e.g. `ogr2ogr -a_srs EPSG:32610 fixed.gpkg` on it."
            )
    return gdf


def to_crs_checked(
    gdf: gpd.GeoDataFrame, crs: str, *, source: str, what: str
) -> tuple[gpd.GeoDataFrame, list[InputNote]]:
    """Reproject to ``crs`` when needed, and say so.

    Args:
        gdf: Features with a CRS.
        crs: The project CRS.
        source: File name, for the note.
        what: What the features are, for the note.

    Returns:
        The features in ``crs`` and the notes (empty when nothing was done).
    """
    target = CRS.from_user_input(crs)
    if CRS.from_user_input(gdf.crs) == target:
        return gdf, []
    src = gdf.crs.to_string()
    out = gdf.to_crs(target)
    note = InputNote(
        "reprojected",
        f"The {what} in {source} were in {src}; reprojected to the project CRS {crs}.",
    )
    return out, [note]


def check_polygons(
    gdf: gpd.GeoDataFrame,
    *,
    id_column: str,
    source: str,
    what: str = "parcels",
    invalid: Literal["repair", "reject"] = "repair",
) -> tuple[gpd.GeoDataFrame, list[InputNote]]:
    """Check polygon features: unique ids, non-empty polygons, valid geometry.

    Invalid polygons are repaired with ``shapely.make_valid`` (keeping only the polygonal part)
    when ``invalid="repair"``, and the note names them; with ``invalid="reject"``, or when repair
    leaves nothing polygonal, a :class:`GeometryError` names every offending id.

    Args:
        gdf: The features.
        id_column: Column holding the feature ids.
        source: File name, for messages.
        what: What the features are, for messages.
        invalid: ``repair`` or ``reject`` invalid geometries.

    Returns:
        The checked (possibly repaired) features, as single- or multi-polygons, and notes.

    Raises:
        ColumnError: Duplicate or missing ids.
        GeometryError: Empty, non-polygonal or unrepairable geometries.
    """
    ids = gdf[id_column]
    if ids.isna().any():
        n = int(ids.isna().sum())
        raise ColumnError(
            f"{n} of the {what} in {source} have no {id_column!r}. Every feature needs an id."
        )
    dup = ids[ids.duplicated()].astype(str).unique().tolist()
    if dup:
        raise ColumnError(
            f"{len(dup)} {id_column!r} value(s) occur more than once in {source}:"
            f" {', '.join(dup[:10])}{'...' if len(dup) > 10 else ''}. Ids must be unique."
        )
    geoms = gdf.geometry.values
    empty = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    if empty.any():
        bad = ids[empty].astype(str).tolist()
        raise GeometryError(
            f"{len(bad)} of the {what} in {source} have no geometry: {', '.join(bad[:10])}."
            " Remove them or draw their outlines."
        )
    kinds = shapely.get_type_id(geoms)
    not_poly = ~(kinds == 3) & ~(kinds == 6)  # Polygon, MultiPolygon
    if not_poly.any():
        bad = ids[not_poly].astype(str).tolist()
        raise GeometryError(
            f"{len(bad)} of the {what} in {source} are not polygons: {', '.join(bad[:10])}."
            f" {what.capitalize()} must be polygons."
        )
    notes: list[InputNote] = []
    valid = shapely.is_valid(geoms)
    if not valid.all():
        bad_ids = ids[~valid].astype(str).tolist()
        listed = ", ".join(bad_ids[:10]) + ("..." if len(bad_ids) > 10 else "")
        if invalid == "reject":
            reasons = shapely.is_valid_reason(geoms[~valid])
            raise GeometryError(
                f"{len(bad_ids)} of the {what} in {source} have invalid geometry: {listed}"
                f" (first: {reasons[0]}). Fix them in QGIS (Vector > Geometry Tools > Fix"
                " Geometries) or let geolabel repair them with --invalid repair."
            )
        repaired = shapely.make_valid(geoms[~valid])
        polys = [_polygonal(g) for g in repaired]
        lost = [i for i, g in zip(bad_ids, polys, strict=True) if g is None]
        if lost:
            raise GeometryError(
                f"{len(lost)} of the {what} in {source} are invalid and have no area left after"
                f" repair: {', '.join(lost[:10])}. Redraw them."
            )
        gdf = gdf.copy()
        gdf.loc[~valid, gdf.geometry.name] = polys
        notes.append(
            InputNote("repaired", f"Repaired {len(bad_ids)} invalid {what} geometries: {listed}.")
        )
    return gdf, notes


def _polygonal(geom: shapely.Geometry) -> shapely.Geometry | None:
    """The polygonal part of a repaired geometry, or None if it has none."""
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom if not geom.is_empty else None
    if geom.geom_type == "GeometryCollection":
        parts = [
            g for g in geom.geoms if g.geom_type in ("Polygon", "MultiPolygon") and not g.is_empty
        ]
        if parts:
            return shapely.union_all(parts)
    return None
