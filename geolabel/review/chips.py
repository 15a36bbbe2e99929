"""Image chips for the review app: the scene around a parcel, with its outline, as a cached PNG.

:func:`render_chip` reads the window of the project's scene around the parcel (plus a margin),
resampled to at most ``size`` pixels on its long side, stretches bands 1-3 (red, green, blue)
between their 2nd and 98th percentiles, burns the parcel outline in yellow
(:func:`rasterio.features.rasterize` of the boundary, every touched pixel) and writes a PNG with
GDAL's PNG driver. Chips are cached under a file name derived from a hash of the item id, so no
user-given text ever becomes part of a path.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from geolabel.errors import LayerError, ReviewError

if TYPE_CHECKING:
    from geolabel.store import Project

__all__ = ["chip_cache_dir", "render_chip"]

_OUTLINE = (255, 230, 0)


def chip_cache_dir(project: Project) -> Path:
    """Return the default chip cache folder: ``<project>_review/chips`` beside the project."""
    return project.path.with_name(f"{project.path.stem}_review") / "chips"


def render_chip(
    project: Project,
    item: str,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    size: int = 256,
    margin_m: float = 15.0,
) -> Path:
    """Return the PNG chip of a parcel, rendering it on first request.

    Args:
        project: An open project.
        item: A parcel item id.
        cache_dir: Where chips are kept; :func:`chip_cache_dir` when None.
        size: Largest side of the chip in pixels.
        margin_m: Context around the parcel, in metres of the project CRS.

    Returns:
        The path of the PNG.

    Raises:
        ReviewError: The item is not a parcel of the project, or no scene covers it.
        LayerError: The project has no parcels or scenes layer.
    """
    import rasterio
    from affine import Affine
    from rasterio.enums import Resampling
    from rasterio.features import rasterize
    from rasterio.warp import transform_geom
    from rasterio.windows import from_bounds

    from geolabel.raster.index import project_scenes

    folder = Path(cache_dir) if cache_dir is not None else chip_cache_dir(project)
    digest = hashlib.sha256(f"{item}|{size}|{margin_m}".encode()).hexdigest()[:24]
    target = folder / f"{digest}.png"
    if target.is_file():
        return target
    parcels = project.read_layer("parcels")
    match = parcels[parcels["parcel_id"].astype(str) == item]
    if match.empty:
        raise ReviewError(f"Item {item!r} is not a parcel of {project.path}; no chip to show.")
    geom = match.geometry.iloc[0]
    scenes = project.read_layer("scenes")
    covering = scenes[scenes.intersects(geom.centroid)]
    if covering.empty:
        raise ReviewError(f"No scene of {project.path} covers parcel {item!r}.")
    scene_id = str(covering["scene_id"].iloc[0])
    infos = project_scenes(project)
    if scene_id not in infos:  # pragma: no cover - the layer and project_scenes agree
        raise LayerError(f"Scene {scene_id} of {project.path} is not readable.")
    with rasterio.open(infos[scene_id].path) as src:
        shape = transform_geom(project.crs, src.crs, geom.__geo_interface__)
        from shapely.geometry import shape as to_shape

        parcel = to_shape(shape)
        minx, miny, maxx, maxy = parcel.buffer(margin_m).bounds
        window = from_bounds(minx, miny, maxx, maxy, transform=src.transform)
        window = window.round_offsets().round_lengths()
        scale = max(window.width, window.height) / size
        out_w = max(1, round(window.width / max(scale, 1.0)))
        out_h = max(1, round(window.height / max(scale, 1.0)))
        bands = [1, 2, 3] if src.count >= 3 else [1, 1, 1]
        data = src.read(
            bands,
            window=window,
            out_shape=(3, out_h, out_w),
            boundless=True,
            fill_value=0,
            resampling=Resampling.average,
        ).astype("float64")
        transform = src.window_transform(window) @ Affine.scale(
            window.width / out_w, window.height / out_h
        )
    rgb = np.zeros((3, out_h, out_w), dtype="uint8")
    for k in range(3):
        band = data[k]
        valid = band[band > 0]
        lo, hi = np.percentile(valid, [2, 98]) if valid.size else (0.0, 1.0)
        rgb[k] = np.clip((band - lo) / max(hi - lo, 1e-9) * 255, 0, 255).astype("uint8")
    outline = rasterize(
        [(parcel.boundary, 1)],
        out_shape=(out_h, out_w),
        transform=transform,
        all_touched=True,
        dtype="uint8",
    ).astype(bool)
    for k, value in enumerate(_OUTLINE):
        rgb[k][outline] = value
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{digest}.{os.getpid()}.tmp.png"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(
            tmp, "w", driver="PNG", width=out_w, height=out_h, count=3, dtype="uint8"
        ) as dst:
            dst.write(rgb)
    for extra in folder.glob(f".{digest}.{os.getpid()}.tmp.png.aux.xml"):
        extra.unlink(missing_ok=True)
    os.replace(tmp, target)
    return target
