"""Tile grids over scenes: exact pixel windows, an explicit edge policy, nodata skipping, the index.

A grid is built from pure functions over integers (:func:`tile_offsets`, :func:`tile_windows`);
:class:`TileGrid` only records their result for one scene, with each tile's true window, so
nothing downstream ever assumes a constant stride. :func:`tile_index` turns grids into the
``tiles`` GeoDataFrame (footprints reprojected to the project CRS, region of each tile).

Edge policy (``edge="shift"``, the default): tiles start every ``stride = size - overlap``
pixels, and the last row and column of tiles are shifted inward so that they end exactly at the
raster's edge. Every tile is full-size, every pixel is covered, and the last tile overlaps its
neighbour by more than ``overlap`` pixels (its window says by how much). ``edge="drop"`` keeps
the constant stride and leaves the pixels past the last full tile uncovered.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from affine import Affine
from pyproj import CRS
from rasterio.windows import Window
from shapely.geometry import box

from geolabel.errors import GeometryError, TilingError
from geolabel.raster.io import RasterInfo, open_scene_info

__all__ = [
    "EdgePolicy",
    "Tile",
    "TileGrid",
    "nodata_fractions",
    "tile_index",
    "tile_offsets",
    "tile_scene",
    "tile_windows",
]

EdgePolicy = Literal["shift", "drop"]
"""``shift``: last tiles moved inward, full coverage; ``drop``: constant stride, edge uncovered."""

_EDGES: tuple[str, ...] = ("shift", "drop")
_FOOTPRINT_POINTS = 16  # vertices per footprint edge, so reprojected edges may curve


def _check_grid_args(size: int, overlap: int, edge: str) -> int:
    """Validate tile size, overlap and edge policy; return the stride."""
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise TilingError(f"Tile size must be a positive whole number of pixels, got {size!r}.")
    if isinstance(overlap, bool) or not isinstance(overlap, (int, np.integer)) or overlap < 0:
        raise TilingError(f"Tile overlap must be a whole number of pixels ≥ 0, got {overlap!r}.")
    if overlap >= size:
        raise TilingError(
            f"Tile overlap ({overlap} px) must be smaller than the tile size ({size} px), or the"
            f" grid would never advance; try --overlap {size // 8}."
        )
    if edge not in _EDGES:
        raise TilingError(f"Edge policy must be one of {', '.join(_EDGES)}; got {edge!r}.")
    return int(size) - int(overlap)


def tile_offsets(length: int, size: int, overlap: int = 0, edge: EdgePolicy = "shift") -> list[int]:
    """Start offsets of the tiles along one axis.

    With ``stride = size - overlap`` and ``length >= size``:

    * ``shift``: ``n = ceil((length - size) / stride) + 1`` tiles; offsets ``k * stride`` for
      ``k < n - 1`` and ``length - size`` for the last one. The ceil is what makes the last tile
      reach the edge: ``(n - 1) * stride >= length - size``, and shifting it back to
      ``length - size`` keeps it inside. When ``length - size`` is a multiple of the stride, the
      shift is zero and the grid is regular.
    * ``drop``: ``n = floor((length - size) / stride) + 1`` tiles at ``k * stride``; the last
      ``(length - size) % stride`` pixels are not covered.

    Example: ``tile_offsets(8192, 256, 32)`` gives 37 offsets ``0, 224, ..., 7840, 7936``
    (the last one shifted from 8064 to 8192 - 256 = 7936).

    Args:
        length: Raster width or height in pixels.
        size: Tile size in pixels.
        overlap: Pixels shared by neighbouring tiles (before any edge shift).
        edge: Edge policy.

    Returns:
        Strictly increasing offsets.

    Raises:
        TilingError: Bad size, overlap or edge policy, or ``size > length``.
    """
    stride = _check_grid_args(size, overlap, edge)
    if size > length:
        raise TilingError(
            f"Tile size {size} px is larger than the raster ({length} px along one axis); use a"
            f" tile size of at most {length} px."
        )
    span = length - size
    if edge == "drop":
        return [k * stride for k in range(span // stride + 1)]
    n = math.ceil(span / stride) + 1
    return [min(k * stride, span) for k in range(n)]


def tile_windows(
    width: int, height: int, size: int, overlap: int = 0, *, edge: EdgePolicy = "shift"
) -> list[Window]:
    """Pixel windows of a tile grid over a ``width × height`` raster, in block (row-major) order.

    Offsets along each axis come from :func:`tile_offsets`; the windows are their product,
    rows outer, so a reader that follows this order walks the file top to bottom.

    Args:
        width: Raster width in pixels.
        height: Raster height in pixels.
        size: Tile size in pixels (tiles are square).
        overlap: Pixels shared by neighbouring tiles.
        edge: ``shift`` (default: full coverage, all tiles full-size) or ``drop``.

    Returns:
        One integer ``Window(col_off, row_off, size, size)`` per tile, inside the raster.

    Raises:
        TilingError: Bad parameters, or a tile larger than the raster (the message gives the
            largest size that fits).
    """
    _check_grid_args(size, overlap, edge)
    if size > width or size > height:
        raise TilingError(
            f"Tile size {size} px is larger than the raster ({width} × {height} px); use"
            f" --size {min(width, height)} or less."
        )
    rows = tile_offsets(height, size, overlap, edge)
    cols = tile_offsets(width, size, overlap, edge)
    return [Window(c, r, size, size) for r in rows for c in cols]


@dataclass(frozen=True, slots=True)
class Tile:
    """One tile: its id, its scene and its true pixel window in that scene.

    Attributes:
        tile_id: ``<scene_id>_r<row_off>_c<col_off>`` (zero-padded), stable across runs.
        scene_id: The scene the window belongs to.
        row_off: First row of the window.
        col_off: First column of the window.
        height: Rows in the window.
        width: Columns in the window.
        nodata_fraction: Share of the window's pixels that are nodata (0 when not computed).
    """

    tile_id: str
    scene_id: str
    row_off: int
    col_off: int
    height: int
    width: int
    nodata_fraction: float = 0.0

    def __post_init__(self) -> None:
        if min(self.row_off, self.col_off) < 0 or min(self.height, self.width) < 1:
            raise TilingError(
                f"Tile {self.tile_id!r} has an invalid window (row_off={self.row_off},"
                f" col_off={self.col_off}, height={self.height}, width={self.width})."
            )

    @classmethod
    def from_window(cls, scene_id: str, window: Window, nodata_fraction: float = 0.0) -> Tile:
        """Build the tile of an integer window (the id is derived from the offsets).

        Args:
            scene_id: The scene.
            window: An integer pixel window.
            nodata_fraction: Share of nodata pixels, if known.

        Returns:
            The tile.

        Raises:
            TilingError: The window has fractional offsets or sizes.
        """
        values = (window.row_off, window.col_off, window.height, window.width)
        if any(float(v) != int(v) for v in values):
            raise TilingError(f"Tile windows must be whole pixels, got {window!r}.")
        r, c, h, w = (int(v) for v in values)
        return cls(f"{scene_id}_r{r:06d}_c{c:06d}", scene_id, r, c, h, w, float(nodata_fraction))

    @property
    def window(self) -> Window:
        """The rasterio window."""
        return Window(self.col_off, self.row_off, self.width, self.height)

    @property
    def row_end(self) -> int:
        """One past the last row."""
        return self.row_off + self.height

    @property
    def col_end(self) -> int:
        """One past the last column."""
        return self.col_off + self.width


@dataclass(frozen=True, slots=True)
class TileGrid:
    """The tiles kept for one scene, with the parameters that made them.

    Attributes:
        scene: The checked scene.
        scene_id: Its id in the project (``S001``...).
        size: Tile size in pixels.
        overlap: Nominal overlap in pixels (edge tiles may overlap more; see their windows).
        edge: Edge policy.
        nodata_threshold: Tiles whose nodata fraction is at least this were skipped.
        tiles: Kept tiles, in block (row-major) order.
        n_skipped: Tiles of the full grid skipped as nodata.
    """

    scene: RasterInfo
    scene_id: str
    size: int
    overlap: int
    edge: EdgePolicy
    nodata_threshold: float
    tiles: tuple[Tile, ...]
    n_skipped: int = 0

    def __len__(self) -> int:
        return len(self.tiles)

    @property
    def stride(self) -> int:
        """Nominal distance between tile starts (``size - overlap``)."""
        return self.size - self.overlap

    @property
    def transform(self) -> Affine:
        """Affine transform of the scene."""
        return Affine(*self.scene.transform)

    def tile_transform(self, tile: Tile) -> Affine:
        """Affine transform of one tile's pixels."""
        return self.transform @ Affine.translation(tile.col_off, tile.row_off)

    def tile_bounds(self, tile: Tile) -> tuple[float, float, float, float]:
        """``(left, bottom, right, top)`` of a tile in the scene's CRS (north-up scenes)."""
        t = self.transform
        x0, y0 = t @ (tile.col_off, tile.row_off)
        x1, y1 = t @ (tile.col_end, tile.row_end)
        return (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))


def _scene_nodata(info: RasterInfo) -> float | None:
    """The value that marks nodata pixels: the declared nodata, or NaN for float scenes."""
    if info.nodata is not None:
        return float(info.nodata)
    if np.issubdtype(np.dtype(info.dtype), np.floating):
        return math.nan
    return None


def nodata_fractions(
    scene: RasterInfo | str | os.PathLike[str],
    windows: Sequence[Window] | Sequence[Tile],
    *,
    bands: Sequence[int] | None = None,
    workers: int = 2,
) -> np.ndarray:
    """Share of nodata pixels in each window, exactly, reading the scene once in strips.

    A pixel is nodata when **every** selected band equals the scene's nodata value (NaN counts
    as nodata in float scenes; a float scene without a declared nodata value uses NaN). An
    alpha band is data like any other band: GDAL's mask (which would follow the alpha tag) is
    not used. Scenes without nodata give zeros without reading any pixel.

    Each strip of block rows is read once; per strip, a per-row cumulative sum over columns of
    the nodata mask gives each window's count in that strip with two lookups per row, then a
    cumulative sum over rows makes it two lookups per window. Memory is one strip.

    Args:
        scene: The scene (path or checked description).
        windows: Windows (or tiles) to measure.
        bands: 1-based band indexes to consider (all bands when None).
        workers: Reader threads.

    Returns:
        ``float64`` fractions in [0, 1], one per window, in the order given.
    """
    from geolabel.raster.reader import read_strips  # reader builds on tiling

    info = scene if isinstance(scene, RasterInfo) else open_scene_info(scene)
    nodata = _scene_nodata(info)
    boxes = _window_array(windows)
    fractions = np.zeros(len(boxes), dtype=np.float64)
    if nodata is None or len(boxes) == 0:
        return fractions
    rows0, cols0, heights, widths = boxes.T
    rows1 = rows0 + heights
    col_keys, col_index = np.unique(
        np.stack([cols0, cols0 + widths], axis=1), axis=0, return_inverse=True
    )
    col_index = col_index.ravel()
    counts = np.zeros(len(boxes), dtype=np.int64)
    row_lo, row_hi = int(rows0.min()), int(rows1.max())
    for strip in read_strips(info, bands=bands, rows=(row_lo, row_hi), workers=workers):
        a, h = strip.row_off, strip.array.shape[1]
        b = a + h
        bad = _nodata_mask(strip.array, nodata)
        cum = np.zeros((h, bad.shape[1] + 1), dtype=np.int32)
        np.cumsum(bad, axis=1, out=cum[:, 1:])
        per_row = cum[:, col_keys[:, 1]] - cum[:, col_keys[:, 0]]
        pref = np.zeros((h + 1, len(col_keys)), dtype=np.int64)
        np.cumsum(per_row, axis=0, out=pref[1:])
        sel = np.flatnonzero((rows0 < b) & (rows1 > a))
        lo = np.maximum(rows0[sel], a) - a
        hi = np.minimum(rows1[sel], b) - a
        ci = col_index[sel]
        counts[sel] += pref[hi, ci] - pref[lo, ci]
    fractions[:] = counts / (heights * widths)
    return fractions


def _nodata_mask(array: np.ndarray, nodata: float) -> np.ndarray:
    """``(H, W)`` mask of pixels where every band of a ``(bands, H, W)`` array is nodata."""
    if math.isnan(nodata):
        bad = np.isnan(array[0]) if array.dtype.kind == "f" else np.zeros(array.shape[1:], bool)
        for band in array[1:]:
            bad &= np.isnan(band)
        return bad
    bad = array[0] == nodata
    for band in array[1:]:
        bad &= band == nodata
    return bad


def _window_array(windows: Sequence[Window] | Sequence[Tile]) -> np.ndarray:
    """``(n, 4)`` int64 array of row_off, col_off, height, width."""
    out = np.zeros((len(windows), 4), dtype=np.int64)
    for i, w in enumerate(windows):
        if isinstance(w, Tile):
            out[i] = (w.row_off, w.col_off, w.height, w.width)
        else:
            out[i] = (int(w.row_off), int(w.col_off), int(w.height), int(w.width))
    return out


def tile_scene(
    scene: RasterInfo | str | os.PathLike[str],
    *,
    size: int = 256,
    overlap: int = 32,
    edge: EdgePolicy = "shift",
    nodata_threshold: float = 1.0,
    scene_id: str = "S001",
    bands: Sequence[int] | None = None,
    workers: int = 2,
) -> TileGrid:
    """Build the tile grid of one scene and skip the tiles that are (mostly) nodata.

    Args:
        scene: A GeoTIFF/COG path or its checked description.
        size: Tile size in pixels.
        overlap: Overlap in pixels (``stride = size - overlap``).
        edge: Edge policy (see the module docstring).
        nodata_threshold: Skip tiles whose nodata fraction is at least this; ``1.0`` (the
            default) skips only tiles without a single valid pixel. See :func:`nodata_fractions`
            for what counts as nodata.
        scene_id: Id of the scene, used in tile ids.
        bands: Bands that decide whether a pixel is nodata (all when None).
        workers: Reader threads for the nodata pass.

    Returns:
        The grid.

    Raises:
        InputFileError: The scene does not exist.
        RasterReadError: It cannot be read or has no CRS/geotransform.
        TilingError: Bad parameters, a tile larger than the scene, or every tile is nodata.
    """
    info = scene if isinstance(scene, RasterInfo) else open_scene_info(scene)
    if isinstance(nodata_threshold, bool) or not 0.0 < float(nodata_threshold) <= 1.0:
        raise TilingError(
            f"nodata_threshold must be in (0, 1] (the nodata share at which a tile is skipped),"
            f" got {nodata_threshold!r}."
        )
    try:
        windows = tile_windows(info.width, info.height, size, overlap, edge=edge)
    except TilingError as exc:
        raise TilingError(f"Scene {info.path}: {exc}") from None
    fractions = nodata_fractions(info, windows, bands=bands, workers=workers)
    keep = fractions < nodata_threshold
    if not keep.any():
        raise TilingError(
            f"Every one of the {len(windows)} tiles of {info.path} is at least"
            f" {nodata_threshold:.0%} nodata (nodata value {info.nodata}); check the scene's"
            " nodata value, or raise the nodata threshold."
        )
    tiles = tuple(
        Tile.from_window(scene_id, w, f)
        for w, f, k in zip(windows, fractions, keep, strict=True)
        if k
    )
    return TileGrid(
        scene=info,
        scene_id=scene_id,
        size=int(size),
        overlap=int(overlap),
        edge=edge,
        nodata_threshold=float(nodata_threshold),
        tiles=tiles,
        n_skipped=int((~keep).sum()),
    )


def _footprint(bounds: tuple[float, float, float, float], crs: str, to_crs: CRS) -> object:
    poly = box(*bounds)
    if CRS.from_user_input(crs).equals(to_crs):
        return poly
    width = max(bounds[2] - bounds[0], bounds[3] - bounds[1])
    dense = poly.segmentize(width / _FOOTPRINT_POINTS)
    return gpd.GeoSeries([dense], crs=crs).to_crs(to_crs).iloc[0]


def tile_index(
    grids: Iterable[TileGrid],
    crs: str,
    *,
    regions: gpd.GeoDataFrame | None = None,
    region_column: str = "region",
) -> gpd.GeoDataFrame:
    """The tile index: one row per tile, footprints in ``crs``.

    Each footprint is the tile's rectangle in its scene's CRS (kept as ``left``, ``bottom``,
    ``right``, ``top`` and ``scene_crs``), densified to 16 vertices per edge and reprojected to
    ``crs``, so tiles of scenes in other CRSs (EPSG:4326...) keep their true shape.

    A tile's region is the region that contains the tile footprint's centre (``None`` when no
    region does; the first region in the layer's order when several overlap).

    Args:
        grids: Tile grids, one per scene.
        crs: The project CRS.
        regions: Region polygons (any CRS; reprojected) with ``region_column``.
        region_column: Column naming each region.

    Returns:
        Columns ``tile_id``, ``scene_id``, ``row_off``, ``col_off``, ``height``, ``width``,
        ``nodata_fraction``, ``scene_crs``, ``left``, ``bottom``, ``right``, ``top``, ``region``
        and the footprint geometry in ``crs``.

    Raises:
        TilingError: Two grids share a scene id.
        GeometryError: ``regions`` has no CRS or lacks ``region_column``.
    """
    target = CRS.from_user_input(crs)
    frames: list[pd.DataFrame] = []
    geoms: list[object] = []
    seen: set[str] = set()
    for grid in grids:
        if grid.scene_id in seen:
            raise TilingError(f"Two tile grids have the scene id {grid.scene_id!r}.")
        seen.add(grid.scene_id)
        scene_crs = grid.scene.crs
        offsets = np.array(
            [(t.row_off, t.col_off, t.height, t.width) for t in grid.tiles], dtype=np.int64
        ).reshape(-1, 4)
        rows, cols, heights, widths = offsets.T
        a, _, c, _, e, f = grid.transform[:6]  # north-up: the bounds of each window at once
        x0, x1 = c + a * cols, c + a * (cols + widths)
        y0, y1 = f + e * rows, f + e * (rows + heights)
        part = pd.DataFrame(
            {
                "tile_id": [t.tile_id for t in grid.tiles],
                "scene_id": [t.scene_id for t in grid.tiles],
                "row_off": rows,
                "col_off": cols,
                "height": heights,
                "width": widths,
                "nodata_fraction": [t.nodata_fraction for t in grid.tiles],
                "scene_crs": scene_crs,
                "left": np.minimum(x0, x1),
                "bottom": np.minimum(y0, y1),
                "right": np.maximum(x0, x1),
                "top": np.maximum(y0, y1),
            },
            columns=list(_INDEX_COLUMNS[:-1]),
        )
        frames.append(part)
        corners = part[["left", "bottom", "right", "top"]].to_numpy(dtype=float)
        if CRS.from_user_input(scene_crs).equals(target):  # once per scene, not per tile
            geoms.extend(shapely.box(*corners.T) if len(corners) else [])
        else:
            geoms.extend(_footprint(tuple(b), scene_crs, target) for b in corners)
    table = (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(columns=list(_INDEX_COLUMNS[:-1]))
    )
    index = gpd.GeoDataFrame(table, geometry=geoms, crs=target)
    index["region"] = _regions_of(index, regions, region_column) if len(index) else []
    index["region"] = index["region"].astype(object)
    return index[[*_INDEX_COLUMNS, "geometry"]]


_INDEX_COLUMNS = (
    "tile_id",
    "scene_id",
    "row_off",
    "col_off",
    "height",
    "width",
    "nodata_fraction",
    "scene_crs",
    "left",
    "bottom",
    "right",
    "top",
    "region",
)


def _regions_of(
    index: gpd.GeoDataFrame, regions: gpd.GeoDataFrame | None, column: str
) -> list[object]:
    if regions is None or len(regions) == 0:
        return [None] * len(index)
    if regions.crs is None:
        raise GeometryError(
            "The regions layer has no CRS; set it (gdf.set_crs(...)) before tiling."
        )
    if column not in regions.columns:
        raise GeometryError(
            f"The regions layer has no {column!r} column (columns:"
            f" {', '.join(map(str, regions.columns))})."
        )
    reg = regions[[column, "geometry"]].to_crs(index.crs).reset_index(drop=True)
    centres = gpd.GeoDataFrame(geometry=index.geometry.centroid, crs=index.crs)
    joined = gpd.sjoin(centres, reg, how="left", predicate="within")
    joined = joined.sort_values("index_right", kind="stable", na_position="last")
    joined = joined[~joined.index.duplicated(keep="first")]
    return [None if pd.isna(v) else v for v in joined[column].reindex(index.index).tolist()]
