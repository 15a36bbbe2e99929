"""Per-parcel statistics of class probabilities: rasterize ids once, reduce with bincount.

Parcel ids are burned into an ``int32`` raster on the probability grid (pixel centres inside a
parcel belong to it; with ``all_touched`` every pixel a parcel touches does), one strip of rows
at a time, each pixel once. Every statistic is then one :func:`numpy.bincount` over the strip's
parcel pixels: pixel counts, counts of the argmax class (class fractions; ties go to the lower
class index) and sums of each class's probability (mean probability per class). No polygon
gets a mask of its own, so 10,000 parcels cost about what one pass over the pixels does.

Where parcels overlap, a pixel belongs to the parcel that comes later in the input. Pixels that
are nodata (NaN probabilities or outside every tile) are not counted. A parcel without a counted
pixel (outside the scene, over nodata, or smaller than a pixel without ``all_touched``) gets
``pixel_count`` 0 and NaN statistics, and a :class:`~geolabel.errors.NoDataWarning` names it.
"""

from __future__ import annotations

import json
import math
import os
import threading
import warnings
from collections.abc import Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from affine import Affine
from pyproj import CRS
from rasterio.features import rasterize
from shapely.geometry import box

from geolabel.errors import (
    BandError,
    ColumnError,
    CRSMismatchError,
    GeometryError,
    NoDataWarning,
    ReprojectionWarning,
)
from geolabel.raster._ops import argmax_max
from geolabel.raster.io import RasterInfo, open_scene_info
from geolabel.raster.tiling import TileGrid

__all__ = ["ParcelIdRaster", "ZonalAccumulator", "zonal_class_stats"]

_PREVIEW = 5
_WHOLE_GRID_PIXELS = 16_000_000  # burn the whole grid at once up to this size (64 MB of int32)


class ParcelIdRaster:
    """Parcel ordinals (1-based in input order; 0 = no parcel) on one raster grid, by rows.

    A grid of up to ``max_whole_pixels`` pixels is burned once, in one rasterization, and every
    request is a view of it; a larger grid is burned per request, only with the parcels whose
    bounds meet the requested rows, and the latest band is kept for the next request of the same
    rows. Where parcels overlap, the later parcel wins. Zonal statistics and parcel embeddings of
    one scene share one instance, so the parcels are rasterized once for both.

    Args:
        geoms: Parcel geometries in the grid's CRS (None or empty ones are skipped).
        transform: Affine transform of the grid.
        width: Grid columns.
        height: Grid rows.
        all_touched: Burn every pixel a parcel touches, not only pixels whose centre is inside.
        max_whole_pixels: Largest grid burned whole.
        lazy: Burn on the first request instead of now (a caller may start other work first,
            e.g. the model while the parcels are burned on another thread).
    """

    def __init__(
        self,
        geoms: Sequence[object],
        *,
        transform: Affine,
        width: int,
        height: int,
        all_touched: bool = False,
        max_whole_pixels: int = _WHOLE_GRID_PIXELS,
        lazy: bool = False,
    ) -> None:
        self.transform = transform
        self.shape = (int(height), int(width))
        self.all_touched = bool(all_touched)
        self._geoms = np.asarray(list(geoms), dtype=object)
        valid = np.array([g is not None and not g.is_empty for g in self._geoms], dtype=bool)
        self._valid = valid
        self._bounds = np.full((len(self._geoms), 4), np.nan)
        if valid.any():
            self._bounds[valid] = shapely.bounds(self._geoms[valid].astype(object))
        self._whole: np.ndarray | None = None
        self._band: tuple[int, int, np.ndarray] | None = None
        self._lock = threading.Lock()
        self._burn_whole = self.shape[0] * self.shape[1] <= max_whole_pixels
        if self._burn_whole and not lazy:
            self._whole = self._burn(0, self.shape[0])

    def _burn(self, row_off: int, rows: int) -> np.ndarray:
        t = self.transform @ Affine.translation(0, row_off)
        width = self.shape[1]
        xa, ya = t @ (0, 0)
        xb, yb = t @ (width, rows)
        left, right = min(xa, xb), max(xa, xb)
        bottom, top = min(ya, yb), max(ya, yb)
        b = self._bounds
        with np.errstate(invalid="ignore"):
            hit = (
                self._valid
                & (b[:, 0] < right)
                & (b[:, 2] > left)
                & (b[:, 1] < top)
                & (b[:, 3] > bottom)
            )
        out = np.zeros((rows, width), dtype=np.int32)
        which = np.flatnonzero(hit)
        if len(which):
            # GeoJSON mappings made in one vectorised call: rasterio would otherwise ask every
            # shapely geometry for its __geo_interface__, which takes several times as long.
            shapes = [json.loads(g) for g in shapely.to_geojson(self._geoms[which])]
            rasterize(
                zip(shapes, (which + 1).tolist(), strict=True),
                out=out,
                transform=t,
                all_touched=self.all_touched,
            )
        return out

    def rows(self, row_off: int, rows: int) -> np.ndarray:
        """Ordinals of rows ``row_off : row_off + rows`` (read-only; do not modify)."""
        if self._burn_whole:
            if self._whole is None:
                with self._lock:  # zonal statistics and embeddings may ask from two threads
                    if self._whole is None:
                        self._whole = self._burn(0, self.shape[0])
            return self._whole[row_off : row_off + rows]
        if self._band is None or self._band[:2] != (row_off, rows):
            self._band = (row_off, rows, self._burn(row_off, rows))
        return self._band[2]


class ZonalAccumulator:
    """Accumulate per-parcel class statistics strip by strip on one raster grid.

    Feed it strips of probabilities with :meth:`add_strip` (a :class:`~geolabel.raster.mosaic.
    Mosaic` does so as it finishes each strip) and read :meth:`result`.

    Args:
        parcels: Parcel polygons with ``id_column`` (reprojected to ``crs`` if needed).
        classes: Class names, in probability-channel order.
        transform: Affine transform of the grid.
        width: Grid columns.
        height: Grid rows.
        crs: CRS of the grid.
        id_column: Column of unique parcel ids.
        all_touched: Count every pixel a parcel touches (pixels on shared edges then go to
            the later parcel), not only pixels whose centre is inside.
        lazy: Rasterize the parcels when the first strip comes, not now (see
            :class:`ParcelIdRaster`); the inputs are checked now either way.

    Raises:
        ColumnError: ``id_column`` is missing or its ids repeat.
        CRSMismatchError: The parcels have no CRS.
        GeometryError: No parcel overlaps the grid.
    """

    def __init__(
        self,
        parcels: gpd.GeoDataFrame,
        *,
        classes: Sequence[str],
        transform: Affine,
        width: int,
        height: int,
        crs: str,
        id_column: str = "parcel_id",
        all_touched: bool = False,
        lazy: bool = False,
    ) -> None:
        if id_column not in parcels.columns:
            raise ColumnError(
                f"The parcels have no {id_column!r} column (columns:"
                f" {', '.join(map(str, parcels.columns))}); pass id_column=."
            )
        ids = parcels[id_column]
        if ids.duplicated().any():
            dup = ids[ids.duplicated()].astype(str).tolist()
            raise ColumnError(
                f"Parcel ids in {id_column!r} repeat: {', '.join(dup[:_PREVIEW])}; each parcel"
                " needs a unique id."
            )
        if parcels.crs is None:
            raise CRSMismatchError(
                "The parcels have no CRS, so they cannot be placed on the probability grid; set"
                " it with gdf.set_crs(...)."
            )
        target = CRS.from_user_input(crs)
        if not CRS.from_user_input(parcels.crs).equals(target, ignore_axis_order=True):
            warnings.warn(
                f"The parcels were in {parcels.crs.to_string()}; reprojected to the raster's"
                f" {crs} for zonal statistics.",
                ReprojectionWarning,
                stacklevel=2,
            )
            parcels = parcels.to_crs(target)
        self.classes = tuple(str(c) for c in classes)
        self.transform = transform
        self.shape = (int(height), int(width))
        self.id_column = id_column
        self.all_touched = bool(all_touched)
        self._ids = ids.tolist()
        n, c = len(self._ids), len(self.classes)
        x0, y0 = transform @ (0, 0)
        x1, y1 = transform @ (width, height)
        grid_box = box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
        if n and not parcels.intersects(grid_box).any():
            raise GeometryError(
                f"None of the {n} parcels overlap the raster (bounds {grid_box.bounds} in {crs});"
                " check that both are of the same place and that the parcels' CRS is right."
            )
        self.id_raster = ParcelIdRaster(
            parcels.geometry.values,
            transform=transform,
            width=width,
            height=height,
            all_touched=all_touched,
            lazy=lazy,
        )
        self._count = np.zeros(n + 1, dtype=np.int64)
        self._class_count = np.zeros((n + 1) * c, dtype=np.int64)
        self._prob_sum = np.zeros((n + 1, c), dtype=np.float64)

    @classmethod
    def for_grid(
        cls,
        grid: TileGrid,
        parcels: gpd.GeoDataFrame,
        *,
        classes: Sequence[str],
        id_column: str = "parcel_id",
        all_touched: bool = False,
        lazy: bool = False,
    ) -> ZonalAccumulator:
        """An accumulator on a tile grid's scene grid (for :class:`Mosaic`'s ``zonal``).

        Args:
            grid: The scene's tile grid.
            parcels: Parcel polygons.
            classes: Class names.
            id_column: Column of unique parcel ids.
            all_touched: See the class.
            lazy: See the class.

        Returns:
            The accumulator.
        """
        info = grid.scene
        return cls(
            parcels,
            classes=classes,
            transform=grid.transform,
            width=info.width,
            height=info.height,
            crs=info.crs,
            id_column=id_column,
            all_touched=all_touched,
            lazy=lazy,
        )

    def add_strip(
        self,
        row_off: int,
        probs: np.ndarray,
        valid: np.ndarray | None = None,
        *,
        top: np.ndarray | None = None,
    ) -> None:
        """Add rows ``row_off : row_off + rows`` of the probability grid.

        Args:
            row_off: First row.
            probs: ``(classes, rows, width)`` probabilities; NaN pixels are not counted.
            valid: ``(rows, width)`` bool; False pixels are not counted.
            top: The most probable class of each pixel (lower index on ties), when the caller
                has it already; computed here when None.

        Raises:
            BandError: ``probs`` has the wrong number of classes or width.
        """
        c = len(self.classes)
        if probs.ndim != 3 or probs.shape[0] != c or probs.shape[2] != self.shape[1]:
            raise BandError(
                f"Probabilities of shape {probs.shape} do not fit {c} classes on a grid"
                f" {self.shape[1]} px wide."
            )
        ids = self.id_raster.rows(row_off, probs.shape[1])
        keep = ids > 0
        if valid is not None:
            keep &= valid
        if probs.dtype.kind == "f":
            keep &= ~np.isnan(probs[0])
        if not keep.any():
            return
        # Pixels not counted go to bin 0, which is dropped: every reduction below runs over
        # the whole strip's contiguous planes, without gathering the parcel pixels first.
        flat = np.where(keep, ids, 0).ravel().astype(np.intp)
        n1 = len(self._ids) + 1
        self._count += np.bincount(flat, minlength=n1)
        if top is None:
            top, _ = argmax_max(probs)
        self._class_count += np.bincount(flat * c + top.ravel(), minlength=n1 * c)
        for k in range(c):
            self._prob_sum[:, k] += np.bincount(flat, weights=probs[k].ravel(), minlength=n1)

    def result(self, *, warn: bool = True) -> pd.DataFrame:
        """The statistics so far.

        Args:
            warn: Warn (:class:`~geolabel.errors.NoDataWarning`) about parcels without pixels.

        Returns:
            One row per parcel, in input order: ``id_column``, ``pixel_count``,
            ``frac_<class>`` (share of the parcel's pixels whose most probable class it is),
            ``prob_<class>`` (mean probability), ``majority_class`` (highest fraction; missing
            without pixels).
        """
        c = len(self.classes)
        count = self._count[1:]
        with np.errstate(invalid="ignore", divide="ignore"):
            fractions = self._class_count.reshape(-1, c)[1:] / count[:, None]
            means = self._prob_sum[1:] / count[:, None]
        data: dict[str, object] = {self.id_column: self._ids, "pixel_count": count}
        for k, name in enumerate(self.classes):
            data[f"frac_{name}"] = fractions[:, k]
        for k, name in enumerate(self.classes):
            data[f"prob_{name}"] = means[:, k]
        majority = np.argmax(np.nan_to_num(fractions, nan=-1.0), axis=1) if c else []
        data["majority_class"] = [
            self.classes[m] if n > 0 else None for m, n in zip(majority, count, strict=True)
        ]
        frame = pd.DataFrame(data)
        empty = [str(i) for i, n in zip(self._ids, count, strict=True) if n == 0]
        if warn and empty:
            more = f" and {len(empty) - _PREVIEW} more" if len(empty) > _PREVIEW else ""
            warnings.warn(
                f"{len(empty)} parcel(s) got no pixel (outside the scene, over nodata, or"
                f" smaller than a pixel): {', '.join(empty[:_PREVIEW])}{more}. Their statistics"
                " are NaN.",
                NoDataWarning,
                stacklevel=2,
            )
        return frame


def zonal_class_stats(
    probabilities: np.ndarray | str | os.PathLike[str],
    parcels: gpd.GeoDataFrame,
    *,
    classes: Sequence[str],
    id_column: str = "parcel_id",
    transform: Affine | None = None,
    crs: str | None = None,
    all_touched: bool = False,
    workers: int = 2,
) -> pd.DataFrame:
    """Class fractions, mean probability per class and pixel count of every parcel.

    Args:
        probabilities: ``(classes, H, W)`` array, or a per-class probability raster (such as
            :meth:`Mosaic.write`'s ``probabilities_path``), read in strips.
        parcels: Parcel polygons with ``id_column``.
        classes: Class names, in channel/band order.
        id_column: Column of unique parcel ids.
        transform: Affine transform of an array (read from the file otherwise).
        crs: CRS of an array (read from the file otherwise).
        all_touched: See :class:`ZonalAccumulator`.
        workers: Reader threads for a file.

    Returns:
        See :meth:`ZonalAccumulator.result`.

    Raises:
        BandError: The number of classes does not match the channels.
        CRSMismatchError: An array came without ``transform`` or ``crs``; parcels without CRS.
        ColumnError: Missing or repeated parcel ids.
        GeometryError: No parcel overlaps the raster.
        RasterReadError: The file cannot be read.
    """
    from geolabel.raster.reader import read_strips

    names = tuple(str(c) for c in classes)
    if isinstance(probabilities, np.ndarray):
        if transform is None or crs is None:
            raise CRSMismatchError(
                "A probability array has no georeference of its own: pass transform= and crs="
                " (the scene's), or pass the path of a probability raster."
            )
        if probabilities.ndim != 3 or probabilities.shape[0] != len(names):
            raise BandError(
                f"Probabilities of shape {probabilities.shape} do not match {len(names)} classes"
                " (expected classes × height × width)."
            )
        _, height, width = probabilities.shape
        acc = ZonalAccumulator(
            parcels,
            classes=names,
            transform=transform,
            width=width,
            height=height,
            crs=crs,
            id_column=id_column,
            all_touched=all_touched,
        )
        acc.add_strip(0, probabilities)
        return acc.result()
    info: RasterInfo = open_scene_info(probabilities)
    if info.count != len(names):
        raise BandError(
            f"{info.path} has {info.count} band(s) but {len(names)} classes were given"
            f" ({', '.join(names)}); pass the per-class probability raster and its class names."
        )
    acc = ZonalAccumulator(
        parcels,
        classes=names,
        transform=Affine(*info.transform),
        width=info.width,
        height=info.height,
        crs=info.crs,
        id_column=id_column,
        all_touched=all_touched,
    )
    nodata = info.nodata
    for strip in read_strips(info, workers=workers):
        values = strip.array
        valid = None
        if nodata is not None and not math.isnan(nodata):
            valid = ~(values == nodata).all(axis=0)
        acc.add_strip(strip.row_off, values, valid)
    return acc.result()
