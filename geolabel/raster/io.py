"""Open, check and write GeoTIFF/COG scenes: what geolabel needs from a raster, said up front.

A scene must have a CRS and a real geotransform (not GDAL's identity default); errors name the
file and the GDAL command that fixes it. Writing goes through :func:`write_cog`, which tiles,
compresses, builds overviews and marks every band as data (``photometric="MINISBLACK"``), so a
4-band R, G, B, NIR image is never read back with band 4 as alpha.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.enums import ColorInterp, Resampling
from rasterio.errors import RasterioIOError
from rasterio.shutil import copy as rio_copy
from rasterio.windows import Window

from geolabel.errors import InputFileError, RasterReadError

__all__ = ["CogStripWriter", "RasterInfo", "open_scene_info", "write_cog"]


@dataclass(frozen=True, slots=True)
class RasterInfo:
    """What geolabel knows about a scene after checking it.

    Attributes:
        path: The file.
        width: Columns in pixels.
        height: Rows in pixels.
        count: Number of bands.
        dtype: Numpy dtype name of the bands.
        crs: CRS as an authority string (``EPSG:32610``) or WKT when there is no code.
        transform: The six affine coefficients (a, b, c, d, e, f).
        bounds: (left, bottom, right, top) in ``crs``.
        nodata: The nodata value, or None.
        band_names: Band descriptions, or ``band1``... when the file has none.
        colorinterp: GDAL's colour interpretation of each band (``alpha`` is worth a look).
        block_shape: (rows, cols) of the internal blocks of band 1.
        overviews: Decimation factors of band 1's overviews.
        res: Pixel size (x, y) in CRS units.
    """

    path: str
    width: int
    height: int
    count: int
    dtype: str
    crs: str
    transform: tuple[float, float, float, float, float, float]
    bounds: tuple[float, float, float, float]
    nodata: float | None
    band_names: tuple[str, ...]
    colorinterp: tuple[str, ...]
    block_shape: tuple[int, int]
    overviews: tuple[int, ...]
    res: tuple[float, float]


def _crs_string(crs: rasterio.crs.CRS) -> str:
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.to_wkt()


def open_scene_info(path: str | os.PathLike[str]) -> RasterInfo:
    """Check that a file is a georeferenced raster geolabel can use, and describe it.

    Args:
        path: A GeoTIFF, COG or any raster GDAL reads.

    Returns:
        The checked description.

    Raises:
        InputFileError: The file does not exist.
        RasterReadError: GDAL cannot read it, or it has no CRS or no geotransform.
    """
    p = Path(path)
    if not p.exists():
        raise InputFileError(f"Scene {p} does not exist. Check the path.")
    try:
        with rasterio.open(p) as ds:
            if ds.crs is None:
                raise RasterReadError(
                    f"Scene {p} has no CRS, so its pixels cannot be placed on the map. Assign the"
                    f" CRS it was produced in, e.g. `gdal_edit.py -a_srs EPSG:32610 {p}`."
                )
            if ds.transform == Affine.identity() and not ds.gcps[0]:
                raise RasterReadError(
                    f"Scene {p} has no geotransform (pixel size and origin), so it cannot be"
                    f" placed on the map. Set one, e.g. `gdal_edit.py -a_ullr ULX ULY LRX LRY {p}`,"
                    " or georeference it with `gdalwarp`."
                )
            if ds.transform == Affine.identity():
                raise RasterReadError(
                    f"Scene {p} is georeferenced by ground control points only. Warp it to a grid"
                    f" first: `gdalwarp -t_srs EPSG:XXXX {p} warped.tif`."
                )
            if ds.transform.b != 0 or ds.transform.d != 0:
                raise RasterReadError(
                    f"Scene {p} has a rotated geotransform, which geolabel does not tile. Warp it"
                    f" north-up first: `gdalwarp {p} north_up.tif`."
                )
            names = tuple(d or f"band{k}" for k, d in enumerate(ds.descriptions, start=1))
            t = ds.transform
            return RasterInfo(
                path=str(p),
                width=ds.width,
                height=ds.height,
                count=ds.count,
                dtype=ds.dtypes[0],
                crs=_crs_string(ds.crs),
                transform=(t.a, t.b, t.c, t.d, t.e, t.f),
                bounds=tuple(ds.bounds),
                nodata=ds.nodata,
                band_names=names,
                colorinterp=tuple(ci.name for ci in ds.colorinterp),
                block_shape=tuple(ds.block_shapes[0]),
                overviews=tuple(ds.overviews(1)),
                res=tuple(ds.res),
            )
    except RasterioIOError as exc:
        raise RasterReadError(
            f"GDAL cannot read {p} as a raster ({exc}). Is it a GeoTIFF? Try `gdalinfo {p}`."
        ) from exc


def write_cog(
    path: str | os.PathLike[str],
    array: np.ndarray,
    *,
    transform: Affine,
    crs: str,
    nodata: float | None = None,
    band_names: Sequence[str] | None = None,
    blocksize: int = 256,
    overview_resampling: Resampling = Resampling.average,
    tags: dict[str, str] | None = None,
) -> Path:
    """Write a Cloud-Optimized GeoTIFF whose every band is data (never alpha).

    The image is first written as a tiled GeoTIFF with internal overviews (factors 2, 4, 8...
    down to one block), then copied with ``COPY_SRC_OVERVIEWS=YES`` so that the overviews precede
    the full-resolution data, as the COG layout requires. Deflate with the horizontal predictor.

    Args:
        path: Output file.
        array: ``(bands, H, W)`` or ``(H, W)`` array.
        transform: Affine transform of the grid.
        crs: CRS of the grid.
        nodata: Nodata value to record, if any.
        band_names: One description per band.
        blocksize: Internal tile size in pixels.
        overview_resampling: Resampling for overviews (``nearest`` for class maps).
        tags: Extra dataset metadata.

    Returns:
        The written path.
    """
    if array.ndim == 2:
        array = array[None]
    count, height, width = array.shape
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    predictor = 2 if np.issubdtype(array.dtype, np.integer) else 3
    profile = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": count,
        "dtype": array.dtype.name,
        "crs": crs,
        "transform": transform,
        "nodata": nodata,
        "tiled": True,
        "blockxsize": blocksize,
        "blockysize": blocksize,
        "compress": "DEFLATE",
        "predictor": predictor,
        "photometric": "MINISBLACK",
        "interleave": "pixel" if count > 1 else "band",
    }
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        staging = Path(tmp) / "staging.tif"
        with rasterio.Env(GDAL_PAM_ENABLED="NO"):
            with rasterio.open(staging, "w", **profile) as ds:
                ds.write(array)
                ds.colorinterp = [ColorInterp.gray] + [ColorInterp.undefined] * (count - 1)
                for k, name in enumerate(band_names or (), start=1):
                    ds.set_band_description(k, name)
                if tags:
                    ds.update_tags(**tags)
                factors = []
                f = 2
                while max(width, height) / f >= blocksize / 2 and f <= 64:
                    factors.append(f)
                    f *= 2
                if factors:
                    ds.build_overviews(factors, overview_resampling)
            rio_copy(
                staging,
                out,
                driver="GTiff",
                copy_src_overviews=True,
                tiled=True,
                blockxsize=blocksize,
                blockysize=blocksize,
                compress="DEFLATE",
                predictor=predictor,
                photometric="MINISBLACK",
                interleave=profile["interleave"],
            )
    return out


class CogStripWriter:
    """Write a COG strip by strip, so a scene larger than memory never sits in one array.

    Rows are written into an uncompressed tiled staging GeoTIFF in ``workdir`` (disk, not
    memory: a scene larger than RAM is fine); :meth:`finish` builds the overviews from it (GDAL
    reads it block by block) and copies it to a COG with ``COPY_SRC_OVERVIEWS=YES``, laid out
    as :func:`write_cog` does (deflate with a predictor, ``photometric=MINISBLACK``), compressing
    once, on ``num_threads`` threads, at zlib level ``deflate_level`` (1 for data that hardly
    compresses, such as float probabilities: the same size in two thirds of the time). Strips
    of whole block rows (multiples of ``blocksize`` rows, starting on one) are written without
    reading anything back.

    Example:
        >>> with CogStripWriter(tmp, width=w, height=h, count=1, dtype="uint8",  # doctest: +SKIP
        ...                     transform=t, crs="EPSG:32610") as writer:
        ...     for row_off, rows in strips:
        ...         writer.write_rows(rows, row_off)
        ...     writer.finish("out.tif")
    """

    def __init__(
        self,
        workdir: str | os.PathLike[str],
        *,
        width: int,
        height: int,
        count: int,
        dtype: str,
        transform: Affine,
        crs: str,
        nodata: float | None = None,
        band_names: Sequence[str] | None = None,
        blocksize: int = 256,
        overview_resampling: Resampling = Resampling.average,
        tags: dict[str, str] | None = None,
        num_threads: int = 2,
        deflate_level: int = 6,
    ) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="cog-", dir=workdir))
        self._zlevel = int(deflate_level)
        self._threads = str(max(1, int(num_threads)))
        self._staging = self._dir / "staging.tif"
        self._blocksize = blocksize
        self._resampling = overview_resampling
        self.width, self.height, self.count = width, height, count
        self._predictor = 2 if np.issubdtype(np.dtype(dtype), np.integer) else 3
        self._interleave = "pixel" if count > 1 else "band"
        with rasterio.Env(GDAL_PAM_ENABLED="NO"):
            self._ds = rasterio.open(
                self._staging,
                "w",
                driver="GTiff",
                width=width,
                height=height,
                count=count,
                dtype=dtype,
                crs=crs,
                transform=transform,
                nodata=nodata,
                tiled=True,
                blockxsize=blocksize,
                blockysize=blocksize,
                compress="NONE",
                photometric="MINISBLACK",
                interleave=self._interleave,
                BIGTIFF="IF_SAFER",
            )
        self._ds.colorinterp = [ColorInterp.gray] + [ColorInterp.undefined] * (count - 1)
        for k, name in enumerate(band_names or (), start=1):
            self._ds.set_band_description(k, name)
        if tags:
            self._ds.update_tags(**tags)

    def __enter__(self) -> CogStripWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def write_rows(self, array: np.ndarray, row_off: int) -> None:
        """Write rows ``row_off : row_off + array.shape[-2]``, all columns.

        Args:
            array: ``(bands, rows, width)`` or ``(rows, width)``.
            row_off: First row.

        Raises:
            ValueError: The rows do not fit the raster, or the writer is finished.
        """
        if self._ds.closed:
            raise ValueError("CogStripWriter.write_rows after finish() or close().")
        if array.ndim == 2:
            array = array[None]
        bands, rows, width = array.shape
        if bands != self.count or width != self.width or not 0 <= row_off <= self.height - rows:
            raise ValueError(
                f"Rows of shape {array.shape} at row {row_off} do not fit a"
                f" {self.count} × {self.height} × {self.width} raster."
            )
        self._ds.write(array, window=Window(0, row_off, width, rows))

    def finish(self, path: str | os.PathLike[str]) -> Path:
        """Build overviews and write the COG to ``path``; the staging file is removed.

        Args:
            path: Output file.

        Returns:
            The written path.
        """
        self._ds.close()
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        factors = []
        f = 2
        while max(self.width, self.height) / f >= self._blocksize / 2 and f <= 64:
            factors.append(f)
            f *= 2
        with rasterio.Env(GDAL_PAM_ENABLED="NO", GDAL_NUM_THREADS=self._threads):
            if factors:
                with rasterio.open(self._staging, "r+") as ds:
                    ds.build_overviews(factors, self._resampling)
            rio_copy(
                self._staging,
                out,
                driver="GTiff",
                copy_src_overviews=True,
                tiled=True,
                blockxsize=self._blocksize,
                blockysize=self._blocksize,
                compress="DEFLATE",
                predictor=self._predictor,
                ZLEVEL=self._zlevel,
                photometric="MINISBLACK",
                interleave=self._interleave,
                BIGTIFF="IF_SAFER",
                NUM_THREADS=self._threads,
            )
        self.close()
        return out

    def close(self) -> None:
        """Discard the staging file (after :meth:`finish`, or to abandon the output)."""
        if not self._ds.closed:
            self._ds.close()
        for leftover in self._dir.glob("*"):
            leftover.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            self._dir.rmdir()
