"""Turn a class map into land-use polygons: ``rasterio.features.shapes``, then simplify.

Connected pixels of one class become one polygon (4-connectivity by default, so diagonal
touches do not merge). Simplification runs on the polygons as one coverage
(:func:`shapely.coverage_simplify`), so neighbours keep sharing their edges: no slivers or
gaps appear between them. The class map is read whole, as ``uint8`` (one byte per pixel).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Literal

import geopandas as gpd
import numpy as np
import rasterio
import shapely
from affine import Affine
from rasterio.errors import RasterioError
from rasterio.features import shapes
from shapely.geometry import shape

from geolabel.errors import CRSMismatchError, RasterReadError
from geolabel.raster.io import open_scene_info
from geolabel.raster.mosaic import CLASS_NODATA

__all__ = ["polygonize_class_map"]


def polygonize_class_map(
    class_map: np.ndarray | str | os.PathLike[str],
    *,
    classes: Sequence[str] | None = None,
    transform: Affine | None = None,
    crs: str | None = None,
    nodata: int | None = CLASS_NODATA,
    simplify: float | None = None,
    min_area: float = 0.0,
    connectivity: Literal[4, 8] = 4,
) -> gpd.GeoDataFrame:
    """Polygonize a class map.

    Args:
        class_map: ``(H, W)`` integer array, or a class-map raster (band 1; such as
            :meth:`Mosaic.write`'s ``class_path``).
        classes: Class names by index; read from the raster's ``classes`` tag when None, else
            the labels are the indexes as text.
        transform: Affine transform of an array (read from the file otherwise).
        crs: CRS of an array (read from the file otherwise).
        nodata: Class value that is not polygonized (the file's nodata value for a raster).
        simplify: Simplification tolerance in CRS units; one pixel when None, 0 for none.
        min_area: Drop polygons smaller than this (CRS units², after simplification).
        connectivity: 4 or 8.

    Returns:
        Columns ``class_id``, ``label``, ``area`` and the polygons, in ``crs``.

    Raises:
        CRSMismatchError: An array came without ``transform`` or ``crs``.
        RasterReadError: The file cannot be read.
    """
    if isinstance(class_map, np.ndarray):
        if transform is None or crs is None:
            raise CRSMismatchError(
                "A class-map array has no georeference of its own: pass transform= and crs=, or"
                " pass the path of the class-map raster."
            )
        array = class_map
    else:
        info = open_scene_info(class_map)
        try:
            with rasterio.open(info.path) as ds:
                array = ds.read(1)
                tags = ds.tags()
        except RasterioError as exc:
            raise RasterReadError(f"GDAL failed to read {info.path}: {exc}") from exc
        transform, crs = Affine(*info.transform), info.crs
        nodata = None if info.nodata is None else int(info.nodata)
        if classes is None and "classes" in tags:
            classes = json.loads(tags["classes"])
    if array.dtype.kind not in "iu":
        array = array.astype(np.int32)
    if array.dtype not in (np.uint8, np.uint16, np.int16, np.int32):
        array = array.astype(np.int32)
    mask = None if nodata is None else array != nodata
    ids: list[int] = []
    geoms: list[object] = []
    for geom, value in shapes(array, mask=mask, connectivity=connectivity, transform=transform):
        ids.append(int(value))
        geoms.append(shape(geom))
    polys = np.asarray(geoms, dtype=object)
    tolerance = abs(transform.a) if simplify is None else float(simplify)
    if tolerance > 0 and len(polys):
        polys = shapely.coverage_simplify(polys, tolerance)
    names = list(classes) if classes is not None else None
    labels = [names[i] if names is not None and 0 <= i < len(names) else str(i) for i in ids]
    gdf = gpd.GeoDataFrame(
        {"class_id": np.asarray(ids, dtype=np.int64), "label": labels},
        geometry=list(polys),
        crs=crs,
    )
    gdf["area"] = gdf.geometry.area
    if min_area > 0:
        gdf = gdf[gdf["area"] >= min_area].reset_index(drop=True)
    return gdf[["class_id", "label", "area", "geometry"]]
