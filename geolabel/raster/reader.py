"""Read tiles at the speed of one read: block-order strips, one handle per thread, batches.

:func:`iter_tile_batches` delivers tiles as contiguous ``(N, bands, H, W)`` arrays that
``torch.from_numpy`` takes without another copy. It never reads a tile on its own (overlapping
tiles would decompress the same blocks again): the scene is read in strips of whole block rows,
top to bottom, each strip once, by a small thread pool in which every thread has its own dataset
handle (GDAL handles are not thread-safe; decompression runs in parallel because rasterio
releases the GIL). The thread that read a strip copies the rows of every tile that lie in it into
the tile's place in its batch, so a strip can be dropped as soon as it is cut and a tile that
straddles two strips is assembled from both. A batch is handed out when the last strip it needs
is done; at most ``prefetch`` strips are in flight, so memory stays bounded whatever the scene's
size.

:func:`compute_band_stats` estimates per-band normalisation statistics from a random sample of
tiles; :class:`BandStats` is stored with the project (see :mod:`geolabel.raster.index`).
"""

from __future__ import annotations

import functools
import math
import os
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import rasterio
from rasterio.errors import RasterioError
from rasterio.io import DatasetReader
from rasterio.windows import Window

from geolabel.errors import BandError, RasterReadError, TilingError
from geolabel.raster.io import RasterInfo, open_scene_info
from geolabel.raster.tiling import Tile, TileGrid, _nodata_mask, _scene_nodata

__all__ = [
    "BandStats",
    "Strip",
    "TileBatch",
    "average_overview",
    "check_bands",
    "compute_band_stats",
    "iter_tile_batches",
    "read_strips",
]

_STRIP_TARGET_ROWS = 256
_PERCENTILE_SAMPLE = 1_000_000
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Strip:
    """Rows ``row_off : row_off + array.shape[1]`` of a scene, all columns.

    Attributes:
        row_off: First row.
        array: ``(bands, rows, width)`` pixels.
    """

    row_off: int
    array: np.ndarray


@dataclass(frozen=True, slots=True)
class TileBatch:
    """A batch of tiles as one contiguous array.

    Attributes:
        array: ``(N, bands, H, W)``, C-contiguous; the scene's dtype, or ``float32`` when
            normalised.
        tiles: The N tiles, in the order of ``array``.
        valid: ``(N, H, W)`` bool, False where a pixel is nodata in every band; None when the
            scene has no nodata value.
        scale: Each pixel is the average of ``scale`` × ``scale`` pixels of the scene (read
            from its overview of that factor, see :func:`average_overview`); 1 at the
            scene's resolution.
    """

    array: np.ndarray
    tiles: tuple[Tile, ...]
    valid: np.ndarray | None = None
    scale: int = 1

    def __len__(self) -> int:
        return len(self.tiles)


@dataclass(frozen=True, slots=True)
class BandStats:
    """Per-band statistics of a scene, for normalisation (``(x - mean) / std``).

    Computed over the valid pixels (see :func:`geolabel.raster.tiling.nodata_fractions`) of a
    random sample of tiles.

    Attributes:
        scene_id: The scene.
        bands: 1-based band indexes the statistics belong to, in order.
        mean: Mean per band.
        std: Standard deviation per band (population).
        minimum: Minimum per band.
        maximum: Maximum per band.
        p2: 2nd percentile per band (from at most a million sampled pixels).
        p98: 98th percentile per band.
        n_tiles: Tiles sampled.
        n_pixels: Valid pixels the mean and std were computed from.
        seed: Seed of the tile sample.
    """

    scene_id: str
    bands: tuple[int, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    minimum: tuple[float, ...]
    maximum: tuple[float, ...]
    p2: tuple[float, ...]
    p98: tuple[float, ...]
    n_tiles: int
    n_pixels: int
    seed: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (lists for tuples)."""
        return {f: _plain(getattr(self, f)) for f in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BandStats:
        """Inverse of :meth:`to_dict`.

        Raises:
            BandError: A field is missing.
        """
        missing = [f for f in cls.__dataclass_fields__ if f not in data]
        if missing:
            raise BandError(
                f"Band statistics lack {', '.join(missing)}; recompute them with `geolabel tile`."
            )
        values: dict[str, Any] = {}
        for f in cls.__dataclass_fields__:
            v = data[f]
            if f == "bands":
                values[f] = tuple(int(b) for b in v)
            elif isinstance(v, list):
                values[f] = tuple(float(x) for x in v)
            else:
                values[f] = v
        return cls(**values)


def _plain(value: object) -> object:
    return list(value) if isinstance(value, tuple) else value


def check_bands(info: RasterInfo, bands: Sequence[int] | None) -> tuple[int, ...]:
    """Validate a band selection against a scene.

    Args:
        info: The scene.
        bands: 1-based band indexes (rasterio's convention), or None for all bands.

    Returns:
        The selected indexes.

    Raises:
        BandError: An index is out of range, repeated or not an integer (the message lists the
            scene's bands with their names).
    """
    if bands is None:
        return tuple(range(1, info.count + 1))
    listing = ", ".join(f"{k}={n}" for k, n in enumerate(info.band_names, start=1))
    selected = list(bands)
    bad = [
        b
        for b in selected
        if isinstance(b, bool) or not isinstance(b, (int, np.integer)) or not 1 <= b <= info.count
    ]
    if not selected or bad:
        raise BandError(
            f"Band selection {selected!r} does not fit {info.path}, which has {info.count} band(s):"
            f" {listing}. Bands are 1-based."
        )
    if len(set(selected)) != len(selected):
        raise BandError(
            f"Band selection {selected!r} repeats a band; bands of {info.path}: {listing}."
        )
    return tuple(int(b) for b in selected)


def _strip_rows(info: RasterInfo, target: int = _STRIP_TARGET_ROWS) -> int:
    """Rows per strip: whole block rows, at least ``target`` rows (or the block height)."""
    block_rows = max(1, int(info.block_shape[0]))
    return block_rows * max(1, math.ceil(target / block_rows))


_POOLS: dict[int, ThreadPoolExecutor] = {}
_POOLS_LOCK = threading.Lock()
os.register_at_fork(after_in_child=_POOLS.clear)  # a forked child has none of the threads


def _reader_threads(workers: int) -> ThreadPoolExecutor:
    """The process's pool of ``workers`` reader threads, started once and kept.

    A thread's first dataset open costs about 20 ms (GDAL and PROJ set themselves up per
    thread); threads that are kept pay it once per process, not once per scene read.
    """
    with _POOLS_LOCK:
        pool = _POOLS.get(workers)
        if pool is None:
            pool = ThreadPoolExecutor(workers, thread_name_prefix=f"geolabel-read{workers}")
            _POOLS[workers] = pool
        return pool


class _ThreadHandles:
    """Reader threads that each open their own dataset handle, closed at the end.

    The threads are the process's kept reader pool (:func:`_reader_threads`); the handles and
    scratch buffers are this reader's own.
    """

    def __init__(self, path: str, workers: int, overview_level: int | None = None) -> None:
        self.path = path
        self.overview_level = overview_level
        self._local = threading.local()
        self._lock = threading.Lock()
        self._handles: list[DatasetReader] = []
        self._futures: list[Future[Any]] = []
        # No threads at all with 0 workers: the caller's thread reads (a Dask task on a
        # single-threaded worker must not use more than its one core).
        self.executor = _reader_threads(int(workers)) if int(workers) > 0 else None

    def submit(self, fn: Callable[[T], Any], job: T) -> Future[Any]:
        """Run ``fn(job)`` on a reader thread."""
        assert self.executor is not None
        future = self.executor.submit(fn, job)
        self._futures = [f for f in self._futures if not f.done()]
        self._futures.append(future)
        return future

    def handle(self) -> DatasetReader:
        ds: DatasetReader | None = getattr(self._local, "ds", None)
        if ds is None:
            try:
                ds = (
                    rasterio.open(self.path)
                    if self.overview_level is None
                    else rasterio.open(self.path, overview_level=self.overview_level)
                )
            except RasterioError as exc:
                raise RasterReadError(f"GDAL cannot open {self.path}: {exc}") from exc
            self._local.ds = ds
            with self._lock:
                self._handles.append(ds)
        return ds

    def buffer(self, shape: tuple[int, int, int], dtype: np.dtype[Any]) -> np.ndarray:
        """This thread's scratch array of ``shape`` (reused: no fresh pages per strip)."""
        buf: np.ndarray | None = getattr(self._local, "buf", None)
        if buf is None or buf.dtype != dtype or buf.size < math.prod(shape):
            buf = np.empty(math.prod(shape), dtype=dtype)
            self._local.buf = buf
        return buf[: math.prod(shape)].reshape(shape)

    def close(self) -> None:
        """Cancel this reader's jobs that have not started, wait for the others, close."""
        for future in self._futures:
            future.cancel()
        wait(self._futures)
        self._futures.clear()
        for ds in self._handles:
            ds.close()
        self._handles.clear()


def _read(
    ds: DatasetReader,
    path: str,
    indexes: Sequence[int],
    window: Window,
    out: np.ndarray | None = None,
) -> np.ndarray:
    try:
        return ds.read(list(indexes), window=window, out=out)
    except RasterioError as exc:
        r0, r1 = int(window.row_off), int(window.row_off + window.height)
        raise RasterReadError(
            f"GDAL failed to read rows {r0}–{r1} of {path} ({exc}). The file may be truncated or"
            f" corrupt; check it with `gdalinfo -checksum {path}`."
        ) from exc


def _ordered(
    pool: _ThreadHandles,
    jobs: Sequence[T],
    work: Callable[[T], Any],
    prefetch: int,
    before_submit: Callable[[int], None] | None = None,
) -> Iterator[tuple[int, Any]]:
    """Run ``work(job)`` on the pool with at most ``prefetch`` in flight; yield in job order."""
    if pool.executor is None:  # on the caller's thread
        for k, job in enumerate(jobs):
            if before_submit is not None:
                before_submit(k)
            yield k, work(job)
        return
    pending: deque[tuple[int, Future[Any]]] = deque()
    next_job = 0
    while next_job < len(jobs) or pending:
        while next_job < len(jobs) and len(pending) < prefetch:
            if before_submit is not None:
                before_submit(next_job)
            pending.append((next_job, pool.submit(work, jobs[next_job])))
            next_job += 1
        k, future = pending.popleft()
        yield k, future.result()


def read_strips(
    scene: RasterInfo | str | os.PathLike[str],
    *,
    bands: Sequence[int] | None = None,
    rows: tuple[int, int] | None = None,
    strip_rows: int | None = None,
    workers: int = 2,
    prefetch: int | None = None,
) -> Iterator[Strip]:
    """Read a scene top to bottom in strips of whole block rows, in parallel, in order.

    Args:
        scene: The scene.
        bands: 1-based band indexes (all when None).
        rows: ``(first, end)`` rows to cover (the whole scene when None).
        strip_rows: Rows per strip (default: whole block rows, at least 256 rows).
        workers: Threads, each with its own dataset handle (0: read on the calling thread).
        prefetch: Strips in flight (default ``workers + 1``); bounds memory.

    Yields:
        Strips in row order.

    Raises:
        BandError: Bad band selection.
        RasterReadError: GDAL failed to read a strip (the message names the file and rows).
    """
    info = scene if isinstance(scene, RasterInfo) else open_scene_info(scene)
    indexes = check_bands(info, bands)
    first, end = rows if rows is not None else (0, info.height)
    step = strip_rows or _strip_rows(info)
    start = (first // step) * step if strip_rows is None else first
    jobs = [(a, min(a + step, end)) for a in range(start, end, step)]
    jobs = [(max(a, first), b) for a, b in jobs]
    pool = _ThreadHandles(info.path, workers)

    def work(job: tuple[int, int]) -> Strip:
        a, b = job
        window = Window(0, a, info.width, b - a)
        return Strip(a, _read(pool.handle(), info.path, indexes, window))

    try:
        for _, strip in _ordered(pool, jobs, work, prefetch or workers + 1):
            yield strip
    finally:
        pool.close()


@dataclass(frozen=True, slots=True)
class _Part:
    """Rows ``t0:t1`` of tile ``pos`` of batch ``batch`` come from strip rows ``s0:s1``."""

    batch: int
    pos: int
    t0: int
    t1: int
    s0: int
    s1: int
    c0: int
    c1: int


def _resolve_tiles(
    scene: TileGrid | RasterInfo | str | os.PathLike[str],
    tiles: Sequence[Tile] | Sequence[Window] | None,
) -> tuple[RasterInfo, list[Tile]]:
    if isinstance(scene, TileGrid):
        info, scene_id = scene.scene, scene.scene_id
        chosen: Sequence[Tile] | Sequence[Window] = scene.tiles if tiles is None else tiles
    else:
        info = scene if isinstance(scene, RasterInfo) else open_scene_info(scene)
        scene_id = "S001"
        if tiles is None:
            raise TilingError(
                "iter_tile_batches needs the tiles (or windows) to read when given a scene path;"
                " pass a TileGrid from tile_scene() to read all of its tiles."
            )
        chosen = tiles
    out = [t if isinstance(t, Tile) else Tile.from_window(scene_id, t) for t in chosen]
    outside = [
        t.tile_id
        for t in out
        if t.row_off < 0 or t.col_off < 0 or t.row_end > info.height or t.col_end > info.width
    ]
    if outside:
        raise TilingError(
            f"{len(outside)} tile(s) reach outside {info.path} ({info.width} × {info.height} px),"
            f" e.g. {', '.join(outside[:3])}; build windows with tile_windows(), which keeps"
            " every tile inside the raster."
        )
    shapes = {(t.height, t.width) for t in out}
    if len(shapes) > 1:
        raise TilingError(
            f"Tiles of different sizes {sorted(shapes)} cannot be stacked into one batch array;"
            " read each size separately."
        )
    out.sort(key=lambda t: (t.row_off, t.col_off))
    return info, out


def iter_tile_batches(
    scene: TileGrid | RasterInfo | str | os.PathLike[str],
    tiles: Sequence[Tile] | Sequence[Window] | None = None,
    *,
    batch_size: int = 16,
    bands: Sequence[int] | None = None,
    normalise: BandStats | None = None,
    workers: int = 2,
    prefetch: int | None = None,
    overview: int | None = None,
) -> Iterator[TileBatch]:
    """Deliver tiles as contiguous ``(N, bands, H, W)`` batches, decompressing each block once.

    Tiles are delivered in block (row-major) order, whatever order they were given in; each
    batch says which tiles it holds. Every band is read as data, an alpha-tagged fourth band
    included.

    Args:
        scene: A :class:`~geolabel.raster.tiling.TileGrid` (its tiles are read when ``tiles``
            is None), or a scene path/description together with ``tiles``.
        tiles: Tiles or integer windows to read, all of the same size, inside the scene.
        batch_size: Tiles per batch (the last batch may be smaller).
        bands: 1-based band indexes to read (all when None).
        normalise: Statistics to normalise with: the batch becomes ``float32``
            ``(x - mean) / std`` per band, and nodata pixels become 0 (the band mean).
            Their ``bands`` must equal the bands read.
        workers: Reader threads, each with its own dataset handle (0: read on the calling
            thread, no thread started).
        prefetch: Strips in flight (default ``workers + 1``). Memory is about
            ``prefetch × strip rows × width × bands`` pixels of the scene's dtype, plus the
            batches those strips touch; a strip is whole block rows, at least 256 rows.
        overview: Read the scene's overview of this decimation factor instead of the scene
            (batches have ``scale == overview``): ``scene`` and ``tiles`` are then in the
            overview's pixels, e.g. :func:`geolabel.prelabel.predict.model_grid` of the grid.
            Whether the overview holds averages is the caller's to check
            (:func:`average_overview`).

    Yields:
        Batches.

    Raises:
        TilingError: No tiles given with a path, tiles outside the scene or of mixed sizes,
            bad batch size, no overview of the factor asked for.
        BandError: Bad band selection, or statistics of other bands.
        RasterReadError: GDAL failed to read part of the scene (the message names the rows).
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise TilingError(f"batch_size must be a positive integer, got {batch_size!r}.")
    info, ordered = _resolve_tiles(scene, tiles)
    indexes = check_bands(info, bands)
    level = None
    if overview is not None:
        if overview not in info.overviews:
            raise TilingError(
                f"{info.path} has no overview of factor {overview} (it has"
                f" {list(info.overviews) or 'none'}); read the scene itself (overview=None)."
            )
        level = info.overviews.index(overview)
    mean = scale = None
    if normalise is not None:
        if tuple(normalise.bands) != indexes:
            raise BandError(
                f"The normalisation statistics are for bands {list(normalise.bands)} of scene"
                f" {normalise.scene_id}, but bands {list(indexes)} of {info.path} are read; pass"
                " the same bands, or statistics computed for them."
            )
        mean = np.asarray(normalise.mean, dtype=np.float32)[:, None, None]
        std = np.asarray(normalise.std, dtype=np.float32)
        scale = (1.0 / np.where(std > 0, std, 1.0)).astype(np.float32)[:, None, None]
    if not ordered:
        return
    nodata = _scene_nodata(info)
    tile_h, tile_w = ordered[0].height, ordered[0].width
    dtype = np.dtype(np.float32) if mean is not None else np.dtype(info.dtype)
    n_bands = len(indexes)
    groups = [ordered[i : i + batch_size] for i in range(0, len(ordered), batch_size)]

    # Plan: which rows of which tile come from which strip.
    step = _strip_rows(info)
    parts: dict[int, list[_Part]] = {}
    last_strip = []
    for b, group in enumerate(groups):
        last = 0
        for pos, t in enumerate(group):
            for s in range(t.row_off // step, (t.row_end - 1) // step + 1):
                a0, a1 = max(t.row_off, s * step), min(t.row_end, (s + 1) * step)
                parts.setdefault(s, []).append(
                    _Part(
                        b,
                        pos,
                        a0 - t.row_off,
                        a1 - t.row_off,
                        a0 - s * step,
                        a1 - s * step,
                        t.col_off,
                        t.col_end,
                    )
                )
                last = max(last, s)
        last_strip.append(last)
    strips = sorted(parts)
    buffers: dict[int, tuple[np.ndarray, np.ndarray | None]] = {}
    pixel_scale = 1 if overview is None else int(overview)

    def allocate(job: int) -> None:
        for p in parts[strips[job]]:
            if p.batch not in buffers:
                n = len(groups[p.batch])
                valid = None if nodata is None else np.empty((n, tile_h, tile_w), dtype=bool)
                buffers[p.batch] = (np.empty((n, n_bands, tile_h, tile_w), dtype=dtype), valid)

    pool = _ThreadHandles(info.path, workers, level)

    def work(s: int) -> int:
        # Runs on a pool thread: numpy releases the GIL for the copies and arithmetic, so
        # cutting, masking and normalising run on both cores, like the decompression.
        todo = parts[s]
        c0 = min(p.c0 for p in todo)
        c1 = max(p.c1 for p in todo)
        a = s * step
        window = Window(c0, a, c1 - c0, min(a + step, info.height) - a)
        scratch = pool.buffer((n_bands, int(window.height), c1 - c0), np.dtype(info.dtype))
        strip = _read(pool.handle(), info.path, indexes, window, scratch)
        targets = [buffers[p.batch] for p in todo]
        for p, (buf, valid_buf) in zip(todo, targets, strict=True):
            src = strip[:, p.s0 : p.s1, p.c0 - c0 : p.c1 - c0]
            dst = buf[p.pos, :, p.t0 : p.t1, :]
            valid = None
            if valid_buf is not None and nodata is not None:
                valid = valid_buf[p.pos, p.t0 : p.t1, :]
                np.logical_not(_nodata_mask(src, nodata), out=valid)
            if mean is None or scale is None:
                dst[...] = src
                continue
            np.subtract(src, mean, out=dst, dtype=np.float32)
            dst *= scale
            if valid is not None:
                np.copyto(dst, np.float32(0.0), where=~valid)
        return s

    next_batch = 0
    try:
        for _, s in _ordered(pool, strips, work, prefetch or workers + 1, allocate):
            while next_batch < len(groups) and last_strip[next_batch] <= s:
                array, valid = buffers.pop(next_batch)
                group = groups[next_batch]
                next_batch += 1
                yield TileBatch(array, tuple(group), valid, pixel_scale)
    finally:
        pool.close()


def average_overview(
    info: RasterInfo,
    factor: int,
    *,
    bands: Sequence[int] | None = None,
    samples: int = 4,
    size: int = 16,
) -> bool:
    """Whether the scene's overview of ``factor`` holds the averages of its pixels.

    A COG's overviews can be averages (what :func:`~geolabel.raster.io.write_cog` builds) or
    anything else (``gdaladdo``'s default is nearest neighbour); a model that averages its
    input down may read an average overview instead of the scene, at ``factor²`` times fewer
    pixels to decompress. This compares ``samples`` windows of ``size`` × ``size`` overview
    pixels, spread over the scene, with the mean of the scene's pixels beneath them. They must
    agree to within GDAL's rounding (half a unit per halving for integer data, as each level
    is built from the one before), and at least one window must tell average and nearest
    apart: on flat samples no verdict is given. Windows with a nodata pixel are left out.

    Args:
        info: The scene.
        factor: The decimation factor (2, 4, 8...).
        bands: 1-based bands to compare (all when None).
        samples: Windows to compare.
        size: Their size in overview pixels.

    Returns:
        True when the overview exists and matches; False otherwise (read the scene itself).
        The verdict is kept for the process, keyed by the file's size and modification time
        (every round of the loop pre-labels the same scenes again).
    """
    if factor < 2 or factor not in info.overviews:
        return False
    indexes = check_bands(info, bands)
    try:
        stat = os.stat(info.path)
    except OSError:
        return False
    return _average_overview(info, factor, indexes, samples, size, stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=256)
def _average_overview(
    info: RasterInfo,
    factor: int,
    indexes: tuple[int, ...],
    samples: int,
    size: int,
    file_size: int,
    mtime_ns: int,
) -> bool:
    """:func:`average_overview` of one version of a file (the last two arguments are the key)."""
    level = info.overviews.index(factor)
    rows, cols = info.height // factor, info.width // factor
    k = min(size, rows, cols)
    if k < 1:
        return False
    integer = np.issubdtype(np.dtype(info.dtype), np.integer)
    tol = 0.5 * math.ceil(math.log2(factor)) + 1e-6 if integer else 0.0
    nodata = _scene_nodata(info)
    spots = np.linspace(0.0, 1.0, max(1, samples))
    told_apart = False
    try:
        with (
            rasterio.open(info.path) as full,
            rasterio.open(info.path, overview_level=level) as small,
        ):
            by, bx = small.block_shapes[0]
            for j, f in enumerate(spots):
                # Both diagonals; each window at the corner of one of the overview's blocks, so
                # that it and the scene's pixels beneath it decompress a block each.
                r = min(int(f * (rows - k)) // by * by, rows - k)
                c = min(int((f if j % 2 else 1.0 - f) * (cols - k)) // bx * bx, cols - k)
                scene = full.read(
                    list(indexes), window=Window(c * factor, r * factor, k * factor, k * factor)
                ).astype(np.float64)
                if nodata is not None and _nodata_mask(scene, nodata).any():
                    continue
                got = small.read(list(indexes), window=Window(c, r, k, k)).astype(np.float64)
                cells = scene.reshape(len(indexes), k, factor, k, factor)
                mean = cells.mean(axis=(2, 4))
                scale = np.abs(mean).max() + 1.0
                limit = tol if integer else 1e-5 * scale
                if not np.all(np.abs(got - mean) <= limit):
                    return False
                corner = cells[:, :, 0, :, 0]  # what a nearest-neighbour overview could hold
                told_apart |= bool(np.abs(corner - mean).max() > limit)
    except RasterioError:
        return False
    return told_apart


def compute_band_stats(
    grid: TileGrid,
    *,
    n_tiles: int = 64,
    bands: Sequence[int] | None = None,
    seed: int = 0,
    workers: int = 2,
) -> BandStats:
    """Per-band statistics from a random sample of a grid's tiles.

    Mean and standard deviation are exact over the valid pixels of the sampled tiles
    (accumulated in float64); the 2nd/98th percentiles come from at most a million of those
    pixels per band, drawn with the same seed.

    Args:
        grid: The scene's tile grid.
        n_tiles: Tiles to sample (all tiles when the grid has fewer).
        bands: 1-based band indexes (all when None).
        seed: Seed of the sample.
        workers: Reader threads.

    Returns:
        The statistics.

    Raises:
        TilingError: The grid has no tiles, or ``n_tiles < 1``.
        BandError: Bad band selection.
        RasterReadError: The sampled tiles hold no valid pixel, or a read failed.
    """
    if n_tiles < 1:
        raise TilingError(f"n_tiles must be at least 1, got {n_tiles}.")
    if not grid.tiles:
        raise TilingError(f"The grid of scene {grid.scene_id} has no tiles to sample.")
    indexes = check_bands(grid.scene, bands)
    rng = np.random.default_rng(seed)
    k = min(n_tiles, len(grid.tiles))
    picked = sorted(rng.choice(len(grid.tiles), size=k, replace=False).tolist())
    sample = [grid.tiles[i] for i in picked]
    n_b = len(indexes)
    total = np.zeros(n_b)
    total_sq = np.zeros(n_b)
    lo = np.full(n_b, np.inf)
    hi = np.full(n_b, -np.inf)
    count = 0
    kept: list[np.ndarray] = []
    per_tile = max(1, _PERCENTILE_SAMPLE // k)
    for batch in iter_tile_batches(grid, sample, batch_size=8, bands=indexes, workers=workers):
        values = np.moveaxis(batch.array, 1, 0).reshape(n_b, -1)
        ok = np.ones(values.shape[1], dtype=bool)
        if batch.valid is not None:
            ok &= batch.valid.ravel()
        if values.dtype.kind == "f":
            ok &= np.isfinite(values).all(axis=0)
        v = values[:, ok].astype(np.float64)
        if v.shape[1] == 0:
            continue
        count += v.shape[1]
        total += v.sum(axis=1)
        total_sq += np.square(v).sum(axis=1)
        lo = np.minimum(lo, v.min(axis=1))
        hi = np.maximum(hi, v.max(axis=1))
        take = min(v.shape[1], per_tile * len(batch))
        kept.append(v[:, rng.choice(v.shape[1], size=take, replace=False)])
    if count == 0:
        raise RasterReadError(
            f"The {k} sampled tiles of {grid.scene.path} hold no valid pixel (nodata value"
            f" {grid.scene.nodata}); check the scene's nodata value."
        )
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))
    pooled = np.concatenate(kept, axis=1)
    p2, p98 = np.percentile(pooled, [2, 98], axis=1)
    return BandStats(
        scene_id=grid.scene_id,
        bands=indexes,
        mean=tuple(float(x) for x in mean),
        std=tuple(float(x) for x in std),
        minimum=tuple(float(x) for x in lo),
        maximum=tuple(float(x) for x in hi),
        p2=tuple(float(x) for x in p2),
        p98=tuple(float(x) for x in p98),
        n_tiles=k,
        n_pixels=int(count),
        seed=int(seed),
    )
