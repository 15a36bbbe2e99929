"""Small GeoTIFFs written on demand for the raster tests (real files on disk, tiny and seeded)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from affine import Affine

UTM = "EPSG:32610"
ORIGIN = Affine(0.5, 0.0, 551_000.0, 0.0, -0.5, 4_182_016.0)


def write_tif(
    path: Path,
    array: np.ndarray,
    *,
    crs: str | None = UTM,
    transform: Affine | None = ORIGIN,
    nodata: float | None = None,
    tiled: bool = True,
    block: int = 16,
    **profile: object,
) -> Path:
    """Write ``array`` (``(bands, H, W)`` or ``(H, W)``) as a GeoTIFF and return the path."""
    if array.ndim == 2:
        array = array[None]
    count, height, width = array.shape
    base: dict[str, object] = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": count,
        "dtype": array.dtype.name,
        "crs": crs,
        "transform": transform,
        "nodata": nodata,
        "photometric": "MINISBLACK",
        "compress": "DEFLATE",
    }
    if tiled and width >= block and height >= block:
        base.update(tiled=True, blockxsize=block, blockysize=block)
    base.update(profile)
    with rasterio.Env(GDAL_PAM_ENABLED="NO"), rasterio.open(path, "w", **base) as ds:
        ds.write(array)
    return path


def coded(height: int, width: int, bands: int = 1, dtype: str = "uint32") -> np.ndarray:
    """Pixels that say where they are: ``band * 10**7 + row * 1000 + col``."""
    rows, cols = np.mgrid[0:height, 0:width]
    base = rows * 1000 + cols
    return np.stack([base + b * 10_000_000 for b in range(bands)]).astype(dtype)
