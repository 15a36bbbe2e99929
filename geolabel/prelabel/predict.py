"""Batched inference over a scene's tile grid, mosaicked to maps and pooled per parcel.

Per tile: read in block order (:func:`geolabel.raster.reader.iter_tile_batches`), average down
to the model's resolution (the card's ``input_scale``), normalise with the model card's
statistics, and run the model under ``torch.inference_mode`` in ``channels_last`` layout. The
probabilities are blended at the model's resolution into a :class:`~geolabel.raster.mosaic.
Mosaic` on the scene's grid coarsened by ``input_scale`` (:func:`model_grid`: the scene's
georeference, pixels ``input_scale`` times larger; the model predicts nothing finer, so nothing
is upsampled), which hands every finished strip to a :class:`~geolabel.raster.zonal.
ZonalAccumulator` (no probability raster is written and read back). The deepest encoder
features are pooled per tile and per parcel on the way (:mod:`geolabel.prelabel.embeddings`).

Per parcel, the pre-label is the argmax of the mean class probability over the parcel's pixels,
taken over the classes a parcel can have (pixel-only classes such as ``road`` are dropped and the
rest renormalised); its confidence is that maximum, with margin and entropy beside it. Per tile:
the mean confidence and mean entropy of its valid pixels, and its most common class.

Speed: batch norms are folded into the convolutions (:func:`~geolabel.prelabel.model.
fold_batchnorm`), tiles are averaged down before they are normalised, and the model runs in
``channels_last``. Over many batches (:meth:`TilePredictor.map`) it runs one batch per core at
once, each on a single torch thread (*streams*), rather than one batch at a time on every core:
the model's inputs are small (64 px at the default input scale), so a layer split across
cores spends much of its time at OpenMP barriers, and those barriers spin-wait -- a core taken
by the reader or the mosaic then stalls the whole layer. Single-threaded streams have no
barrier, so the reader, the mosaic and other processes share the cores without stalling the
model; on 2 idle cores the sample's tiles went 1.05-1.2x faster than with 2 torch threads on
one batch (1.43x -> 1.68x the naive loop's speed in ``benchmarks/prelabel.py``). One batch
at a time (``predictor(batch)``) runs on a thread count measured on the batches themselves
(:class:`~geolabel.prelabel.threads.ThreadTuner`). The mosaic, zonal statistics and
embeddings of a batch are computed on two worker threads while the model works on the next
ones. Where the scene has an overview at the model's scale that holds averages (checked on
samples, :func:`~geolabel.raster.reader.average_overview`; what :func:`~geolabel.raster.io.
write_cog` builds), tiles without nodata are read from it: ``input_scale²`` times fewer pixels
to decompress, and the same input up to GDAL's rounding (a unit of integer data).

A batch's probabilities do not depend on how many streams run: each is computed on one torch
thread, the same with 1 stream or 4 (and on a single-threaded Dask worker).

Precision: float32. bfloat16 autocast was measured on the sample on this project's CPUs (AVX2,
no native bf16; ``benchmarks/prelabel.py``): it kept 99.9% argmax agreement but took 5–10× the
time, so it is offered (``precision="bf16"``) but not the default.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args

import geopandas as gpd
import numpy as np
import pandas as pd
import torch
from torch import nn

from geolabel.errors import GeolabelError
from geolabel.prelabel.embeddings import ParcelEmbeddings, tile_embeddings
from geolabel.prelabel.metrics import apply_temperature, uncertainty
from geolabel.prelabel.model import ModelCard, ModelMismatchError, fold_batchnorm
from geolabel.prelabel.threads import (
    ThreadTuner,
    available_cores,
    one_blas_thread,
    short_gil_turns,
)
from geolabel.raster._ops import argmax_max
from geolabel.raster.io import RasterInfo
from geolabel.raster.mosaic import Mosaic
from geolabel.raster.reader import TileBatch, average_overview, iter_tile_batches
from geolabel.raster.tiling import Tile, TileGrid, tile_scene, tile_windows
from geolabel.raster.zonal import ZonalAccumulator

__all__ = [
    "GridPlan",
    "Precision",
    "SceneOutputs",
    "TileOutputs",
    "TilePredictor",
    "aligned_grid",
    "grid_plan",
    "model_grid",
    "parcel_prelabels",
    "predict_scene",
]

Precision = Literal["fp32", "bf16"]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class TileOutputs:
    """What the model says about a batch of tiles.

    Attributes:
        probs: ``(N, classes, H / s, W / s)`` float32 class probabilities at the model's
            resolution (``s``: the card's ``input_scale``), or at the tiles' own resolution
            when the predictor upsamples.
        features: ``(N, C, h, w)`` float32 deepest encoder features, when asked for.
    """

    probs: np.ndarray
    features: np.ndarray | None = None


class TilePredictor:
    """Run a checkpoint's model on batches of raw tile pixels.

    Args:
        model: The segmentation model.
        card: Its model card (bands, normalisation, input scale, temperature).
        precision: ``fp32`` (default) or ``bf16`` (autocast; see the module docstring).
        num_threads: Cores to use: torch threads for one batch, streams for
            :meth:`map` (default: one batch tuned by timing batches, see
            :class:`~geolabel.prelabel.threads.ThreadTuner`; :meth:`map` one stream per core).
        features: Also return the deepest encoder features (for embeddings).
        upsample: Return probabilities at the tiles' resolution (bilinear) instead of the
            model's.

    Raises:
        GeolabelError: Unknown precision.
    """

    def __init__(
        self,
        model: nn.Module,
        card: ModelCard,
        *,
        precision: Precision = "fp32",
        num_threads: int | None = None,
        features: bool = False,
        upsample: bool = False,
    ) -> None:
        if precision not in get_args(Precision):
            raise GeolabelError(
                f"Unknown precision {precision!r}; choose one of {', '.join(get_args(Precision))}."
            )
        self.model = fold_batchnorm(model).to(memory_format=torch.channels_last)
        self.card = card
        self.precision = precision
        self.tuner = ThreadTuner(num_threads, period=32, skip_first=True)
        self.streams = max(1, int(num_threads)) if num_threads is not None else available_cores()
        self._threads: int | None = None
        self.features = features
        self.upsample = upsample
        self._mean = torch.tensor(card.mean, dtype=torch.float32)[None, :, None, None]
        self._inv_std = 1.0 / torch.tensor(card.std, dtype=torch.float32)[None, :, None, None]

    def __call__(
        self, batch: np.ndarray, valid: np.ndarray | None = None, *, scale: int = 1
    ) -> TileOutputs:
        """Probabilities (and features) of a ``(N, bands, H, W)`` batch of raw pixels.

        Args:
            batch: Raw pixels of the card's bands, any numeric dtype.
            valid: ``(N, H, W)`` bool, False at nodata pixels (they are set to the band mean,
                as in training).
            scale: The pixels are already averages of ``scale`` × ``scale`` scene pixels (a
                read from the scene's average overview, :attr:`TileBatch.scale
                <geolabel.raster.reader.TileBatch.scale>`); the rest of the way to the
                card's ``input_scale`` is averaged here.

        Returns:
            Probabilities (at the model's resolution unless upsampling), and features when
            asked for.

        Raises:
            GeolabelError: The batch has another number of bands than the model, or ``scale``
                does not divide the card's ``input_scale``.
        """
        self._check(batch, scale)
        self.tuner.before()
        t0 = time.perf_counter()
        out = self._forward(batch, valid, scale)
        self.tuner.after(time.perf_counter() - t0, len(batch))
        self._threads = self.tuner.current
        return out

    def map(
        self,
        batches: Iterable[TileBatch] | Iterable[np.ndarray],
        *,
        streams: int | None = None,
    ) -> Iterator[tuple[Any, TileOutputs]]:
        """Predict many batches, :attr:`streams` at once, each on one torch thread.

        Args:
            batches: Raw pixel batches, or :class:`~geolabel.raster.reader.TileBatch` es
                (their ``valid`` masks are used).
            streams: Instead of :attr:`streams`; 1 runs every batch on the calling thread
                (with the predictor's torch threads).

        Yields:
            ``(batch, outputs)`` in the order given. At most ``streams + 1`` batches are in
            flight.

        Raises:
            GeolabelError: A batch has another number of bands than the model.
        """
        n = self.streams if streams is None else max(1, int(streams))
        if n == 1:
            for b in batches:
                array, valid, scale = _unpack(b)
                yield b, self(array, valid, scale=scale)
            return
        previous = torch.get_num_threads()
        torch.set_num_threads(1)
        self._threads = n
        try:
            with ThreadPoolExecutor(n, thread_name_prefix="geolabel-infer") as pool:
                inflight: deque[tuple[Any, Future[TileOutputs]]] = deque()
                for b in batches:
                    array, valid, scale = _unpack(b)
                    self._check(array, scale)
                    inflight.append((b, pool.submit(self._stream, array, valid, scale)))
                    if len(inflight) > n:
                        done, future = inflight.popleft()
                        yield done, future.result()
                while inflight:
                    done, future = inflight.popleft()
                    yield done, future.result()
        finally:
            torch.set_num_threads(previous)

    def _stream(self, batch: np.ndarray, valid: np.ndarray | None, scale: int) -> TileOutputs:
        torch.set_num_threads(1)  # this thread's OpenMP team: one thread, no barriers
        return self._forward(batch, valid, scale)

    def _check(self, batch: np.ndarray, scale: int = 1) -> None:
        if batch.ndim != 4 or batch.shape[1] != len(self.card.bands):
            raise GeolabelError(
                f"The model takes {len(self.card.bands)} band(s)"
                f" ({', '.join(self.card.band_names)}) but got a batch of shape {batch.shape}."
            )
        if scale < 1 or self.card.input_scale % scale:
            raise GeolabelError(
                f"A batch averaged {scale} × {scale} cannot feed a model of input scale"
                f" {self.card.input_scale}; read the scene at a factor that divides it."
            )

    def _forward(self, batch: np.ndarray, valid: np.ndarray | None, done: int = 1) -> TileOutputs:
        scale = self.card.input_scale // done
        with torch.inference_mode():
            x = torch.from_numpy(batch).to(torch.float32)
            if valid is not None and not valid.all():  # nodata: the band mean, 0 once normalised
                x = torch.where(torch.from_numpy(valid)[:, None], x, self._mean)
            # Average down first, then normalise: the same result (both are linear) on
            # input_scale² times fewer pixels.
            if scale > 1:
                x = torch.nn.functional.avg_pool2d(x, scale)
            x = ((x - self._mean) * self._inv_std).contiguous(memory_format=torch.channels_last)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.precision == "bf16"):
                model: Any = self.model
                feats = model.encoder(x)
                logits = model.segmentation_head(model.decoder(feats))
            probs = torch.softmax(logits.float().contiguous(), dim=1)
            if scale > 1 and self.upsample:
                probs = torch.nn.functional.interpolate(
                    probs, size=batch.shape[2:], mode="bilinear", align_corners=False
                )
            out_feats = feats[-1].float().contiguous().numpy() if self.features else None
            return TileOutputs(probs.numpy(), out_feats)

    @property
    def threads(self) -> int:
        """Cores the latest run used: torch threads of a call, or streams of :meth:`map`."""
        return self._threads if self._threads is not None else self.tuner.current


class _InlineExecutor(contextlib.AbstractContextManager["_InlineExecutor"]):
    """An executor that runs every call at once on the calling thread."""

    def submit(self, fn: Callable[..., T], /, *args: Any) -> Future[T]:
        future: Future[T] = Future()
        try:
            future.set_result(fn(*args))
        except BaseException as exc:  # handed over, as a pool thread would
            future.set_exception(exc)
        return future

    def __exit__(self, *exc: object) -> None:
        return None


def _unpack(batch: TileBatch | np.ndarray) -> tuple[np.ndarray, np.ndarray | None, int]:
    if isinstance(batch, np.ndarray):
        return batch, None, 1
    return batch.array, batch.valid, batch.scale


@dataclass(frozen=True)
class SceneOutputs:
    """What pre-labeling one scene produced.

    Attributes:
        scene_id: The scene.
        class_map: Class-map COG.
        confidence_map: Confidence COG.
        zonal: Per-parcel statistics (pixel count, class fractions, mean probabilities).
        tiles: Per tile: ``tile_id``, ``scene_id``, ``row_off``, ``col_off``,
            ``valid_fraction``, ``mean_confidence``, ``mean_entropy``, ``majority_class`` and
            ``frac_<class>`` (share of valid pixels whose most probable class it is).
        tile_ids: Tile ids of the rows of ``tile_embedding``.
        tile_embedding: ``(tiles, C)`` pooled encoder features.
        parcel_ids: Parcel ids of the rows of ``parcel_embedding``.
        parcel_embedding: ``(parcels, C)`` pooled encoder features.
    """

    scene_id: str
    class_map: Path
    confidence_map: Path
    zonal: pd.DataFrame
    tiles: pd.DataFrame
    tile_ids: list[str]
    tile_embedding: np.ndarray
    parcel_ids: list[str]
    parcel_embedding: np.ndarray


def _pool_valid(valid: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray | None:
    """Valid masks at the model's resolution: a cell is valid when most of its pixels are."""
    if valid is None:
        return None
    n, h, w = valid.shape
    fy, fx = h // shape[0], w // shape[1]
    if (fy, fx) == (1, 1):
        return valid
    cells = valid[:, : shape[0] * fy, : shape[1] * fx].reshape(n, shape[0], fy, shape[1], fx)
    return cells.mean(axis=(2, 4)) > 0.5


def _tile_rows(
    batch_tiles: Sequence[Tile], probs: np.ndarray, valid: np.ndarray | None, classes: list[str]
) -> list[dict[str, object]]:
    """Per-tile uncertainty from ``(N, classes, h, w)`` probabilities (model resolution).

    Computed for the whole batch at once: mean confidence and entropy over each tile's valid
    pixels, and the share of them whose most probable class each class is.
    """
    n, c = probs.shape[:2]
    top, conf = argmax_max(probs.transpose(1, 0, 2, 3))
    p = np.clip(probs, 1e-12, 1.0)
    ent = -np.einsum("nchw,nchw->nhw", p, np.log(p))
    v = np.ones(conf.shape, dtype=bool) if valid is None else valid
    count = v.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.where(v, conf, 0.0).sum(axis=(1, 2), dtype=np.float64) / count
        mean_ent = np.where(v, ent, 0.0).sum(axis=(1, 2), dtype=np.float64) / count
    keys = (np.arange(n)[:, None, None] * c + top)[v]
    frac = np.bincount(keys, minlength=n * c).reshape(n, c) / np.maximum(count, 1)[:, None]
    majority = frac.argmax(axis=1)
    rows: list[dict[str, object]] = []
    for k, tile in enumerate(batch_tiles):
        has = bool(count[k])
        row: dict[str, object] = {
            "tile_id": tile.tile_id,
            "scene_id": tile.scene_id,
            "row_off": tile.row_off,
            "col_off": tile.col_off,
            "valid_fraction": int(count[k]) / v[k].size,
            "mean_confidence": float(mean_conf[k]) if has else np.nan,
            "mean_entropy": float(mean_ent[k]) if has else np.nan,
            "majority_class": classes[int(majority[k])] if has else None,
        }
        row.update({f"frac_{name}": float(f) for name, f in zip(classes, frac[k], strict=True)})
        rows.append(row)
    return rows


class _SceneAccumulators:
    """What a scene's batches feed: the mosaic (zonal statistics), tile rows, embeddings.

    :meth:`add_map` and :meth:`add_stats` share nothing but the parcel id raster (which burns
    itself once under a lock), so each may run on its own thread; each must be called by one
    thread at a time, in batch order.
    """

    def __init__(
        self,
        mosaic: Mosaic,
        classes: list[str],
        embed: ParcelEmbeddings | None,
    ) -> None:
        self.mosaic = mosaic
        self.classes = classes
        self.embed = embed
        self.tile_rows: list[dict[str, object]] = []
        self.tile_ids: list[str] = []
        self.tile_vectors: list[np.ndarray] = []

    def add_map(self, tiles: Sequence[Tile], result: TileOutputs, valid: np.ndarray | None) -> None:
        """Blend a batch into the mosaic (tiles of the model-resolution grid)."""
        self.mosaic.add_batch(tiles, result.probs, valid=valid)

    def add_stats(
        self, tiles: Sequence[Tile], result: TileOutputs, valid: np.ndarray | None
    ) -> None:
        """Add a batch's tile rows and embeddings."""
        self.tile_rows.extend(_tile_rows(tiles, result.probs, valid, self.classes))
        if result.features is not None:
            self.tile_ids.extend(t.tile_id for t in tiles)
            self.tile_vectors.append(tile_embeddings(result.features, valid))
            if self.embed is not None:
                self.embed.add_batch(tiles, result.features, valid)


def model_grid(grid: TileGrid, scale: int) -> TileGrid:
    """A scene's tile grid at the model's resolution: every window and the pixel size ÷ ``scale``.

    The model sees each tile averaged over ``scale`` × ``scale`` pixels and predicts at that
    resolution; the maps and the per-parcel statistics are made on this grid (the scene's
    georeference with pixels ``scale`` times larger), so nothing is upsampled.

    Args:
        grid: The scene's grid; every tile offset and size must be a multiple of ``scale``
            (:func:`aligned_grid` makes one).
        scale: The model's input scale.

    Returns:
        The grid at the model's resolution (the same tile ids).

    Raises:
        GeolabelError: A tile is not aligned to ``scale``.
    """
    if scale == 1:
        return grid
    bad = [
        t.tile_id
        for t in grid.tiles
        if t.row_off % scale or t.col_off % scale or t.height % scale or t.width % scale
    ]
    if bad:
        raise GeolabelError(
            f"{len(bad)} tile(s) of scene {grid.scene_id} are not aligned to the model's input"
            f" scale {scale}, e.g. {bad[0]}; build the grid with aligned_grid()."
        )
    info = grid.scene
    a, b, c, d, e, f = info.transform
    coarse = replace(
        info,
        width=info.width // scale,
        height=info.height // scale,
        transform=(a * scale, b * scale, c, d * scale, e * scale, f),
        res=(info.res[0] * scale, info.res[1] * scale),
    )
    tiles = tuple(
        Tile(t.tile_id, t.scene_id, t.row_off // scale, t.col_off // scale,
             t.height // scale, t.width // scale, t.nodata_fraction)
        for t in grid.tiles
    )  # fmt: skip
    return TileGrid(
        scene=coarse,
        scene_id=grid.scene_id,
        size=grid.size // scale,
        overlap=grid.overlap // scale,
        edge=grid.edge,
        nodata_threshold=grid.nodata_threshold,
        tiles=tiles,
        n_skipped=grid.n_skipped,
    )


def aligned_grid(
    scene: RasterInfo,
    *,
    size: int,
    overlap: int,
    scale: int,
    scene_id: str = "S001",
    workers: int = 2,
) -> TileGrid:
    """A tile grid whose windows are all multiples of ``scale`` (see :func:`model_grid`).

    The grid of :func:`~geolabel.raster.tiling.tile_scene` (edge policy ``shift``, tiles
    that are all nodata skipped) over the scene's first ``width // scale * scale`` columns and
    ``height // scale * scale`` rows: the last ``width % scale`` columns and rows (fewer than
    ``scale`` pixels) are left out.

    Args:
        scene: The scene.
        size: Tile size (a multiple of ``scale``).
        overlap: Overlap (a multiple of ``scale``).
        scale: The model's input scale.
        scene_id: Scene id for the tile ids.
        workers: Threads reading the scene for its nodata (0: the calling thread).

    Returns:
        The grid.
    """
    cropped = replace(
        scene, width=scene.width // scale * scale, height=scene.height // scale * scale
    )
    grid = tile_scene(cropped, size=size, overlap=overlap, scene_id=scene_id, workers=workers)
    return replace(grid, scene=scene)


@dataclass(frozen=True, slots=True)
class GridPlan:
    """A scene's model-sized tile grid, to be built where the scene is read.

    Building a grid reads the whole scene once (tiles that are all nodata are left out, see
    :func:`~geolabel.raster.tiling.tile_scene`), so on a Dask cluster the plan travels to the
    worker that pre-labels the scene and the grid is built there, not on the client.

    Attributes:
        scene: The scene.
        scene_id: Its id (for the tile ids).
        size: Tile size (a multiple of ``scale``).
        overlap: Overlap (a multiple of ``scale``).
        scale: The model's input scale.
    """

    scene: RasterInfo
    scene_id: str
    size: int
    overlap: int
    scale: int

    def build(self, *, workers: int = 2) -> TileGrid:
        """The grid (:func:`aligned_grid`); reads the scene on ``workers`` threads (0: this one)."""
        return aligned_grid(
            self.scene,
            size=self.size,
            overlap=self.overlap,
            scale=self.scale,
            scene_id=self.scene_id,
            workers=workers,
        )

    @property
    def max_tiles(self) -> int:
        """Tiles before the nodata ones are left out (an upper bound, for progress bars)."""
        s = self.scale
        width, height = self.scene.width // s * s, self.scene.height // s * s
        return len(tile_windows(width, height, self.size, self.overlap))


def grid_plan(
    stored: TileGrid | None, scene: RasterInfo, scene_id: str, card: ModelCard
) -> TileGrid | GridPlan:
    """The project's stored grid when its tiles suit the model, else a plan of the model's size.

    Tiles suit the model when their size is a multiple of ``input_scale × 2^encoder_depth``
    and every offset a multiple of ``input_scale`` (see :func:`aligned_grid`). The planned
    grid has the card's tile size (at most the scene's size) and an overlap of 32 px (a
    quarter of the tile at most).

    Args:
        stored: The grid the project stores for the scene (``geolabel tile``), or None.
        scene: The scene.
        scene_id: Its id.
        card: The model's card.

    Returns:
        The stored grid, or the plan of a new one (:meth:`GridPlan.build`).

    Raises:
        ModelMismatchError: The scene is smaller than one model input.
    """
    scale = card.input_scale
    step = scale * 2 ** int(card.config.get("encoder_depth", 5))
    if (
        stored is not None
        and stored.size % step == 0
        and all(t.row_off % scale == 0 and t.col_off % scale == 0 for t in stored.tiles)
        and all(t.height == t.width == stored.size for t in stored.tiles)
    ):
        return stored
    size = min(card.tile_size, scene.width // scale * scale, scene.height // scale * scale)
    size = size // step * step
    if size < step:
        raise ModelMismatchError(
            f"Scene {scene.path} ({scene.width} × {scene.height} px) is smaller than one model"
            f" input ({step} px); the model cannot run on it."
        )
    overlap = min(32, size // 4) // scale * scale
    return GridPlan(scene, scene_id, size, overlap, scale)


def _scene_batches(
    grid: TileGrid,
    coarse: TileGrid,
    scale: int,
    bands: Sequence[int],
    *,
    batch_size: int,
    streams: int,
    workers: int,
    overviews: bool,
) -> Iterator[TileBatch]:
    """A grid's tiles as batches for the model.

    Tiles without nodata come from the scene's average overview at the model's scale
    ``scale``, when there is one (read as ``coarse``'s tiles, :func:`model_grid`); the others,
    and every tile when there is no such overview, at the scene's resolution (the predictor
    averages them down, nodata pixels set to the band mean first, which an overview cannot do).
    """
    clean: list[Tile] = []
    if overviews and scale > 1 and average_overview(grid.scene, scale, bands=bands):
        clean = [t for t in coarse.tiles if t.nodata_fraction == 0]
    done = {t.tile_id for t in clean}
    rest = [t for t in grid.tiles if t.tile_id not in done]
    for source, tiles, overview in ((coarse, clean, scale), (grid, rest, None)):
        if tiles:
            yield from iter_tile_batches(
                source,
                tiles,
                batch_size=_even_batches(len(tiles), batch_size, streams),
                bands=bands,
                workers=workers,
                overview=overview,
            )


def _even_batches(n: int, batch_size: int, streams: int) -> int:
    """A batch size of at most ``batch_size`` for ``n`` tiles on ``streams`` streams.

    It cuts the tiles into a multiple of ``streams`` batches of nearly one size, so that no
    stream idles at the end while another runs the last batch (196 tiles on 2 streams: 8
    batches of 25, not 6 of 32 and one of 4).
    """
    batches = math.ceil(n / batch_size)
    batches = math.ceil(batches / streams) * streams
    return max(1, math.ceil(n / batches))


def predict_scene(
    predictor: TilePredictor,
    grid: TileGrid,
    parcels: gpd.GeoDataFrame | None,
    out_dir: str | os.PathLike[str],
    *,
    batch_size: int = 32,
    progress: Callable[[int], None] | None = None,
    serial: bool = False,
    overviews: bool = True,
) -> SceneOutputs:
    """Pre-label one scene: class and confidence COGs, per-parcel and per-tile statistics.

    Tiles are read at the model's resolution from the scene's average overview where they
    can be (see ``overviews``), else at the scene's, predicted at the model's, and blended
    into a mosaic on the model-resolution grid (:func:`model_grid`), where the per-parcel
    statistics are taken too (a pixel of the coarser grid belongs to the parcel that holds its
    centre). Reading runs ahead on its own threads (:func:`iter_tile_batches`); the model runs
    on the predictor's streams (:meth:`TilePredictor.map`); blending a batch with the zonal
    statistics runs on one worker thread and its tile rows and embeddings on another while
    the model works on the next batches (numpy and torch release the GIL, so they overlap),
    one batch in post at most. numpy's BLAS is held to one thread meanwhile
    (:func:`~geolabel.prelabel.threads.one_blas_thread`), and Python's thread switch interval
    shortened so that the streams get the GIL back quickly between torch operations
    (:func:`~geolabel.prelabel.threads.short_gil_turns`).

    Args:
        predictor: The model, ready to run (features are pooled when it returns them).
        grid: The scene's tile grid (tiles aligned to the model's input scale).
        parcels: Parcels to pool over (any CRS); None skips pooling.
        out_dir: Folder for ``<scene_id>_classes.tif`` and ``<scene_id>_confidence.tif``.
        batch_size: Tiles per forward pass, at most (the tiles are cut into a multiple of
            the machine's cores of batches of nearly one size).
        progress: Called with the number of tiles done after every batch.
        serial: Read, predict and pool on the calling thread only, one step after the
            other (a Dask task on a single-threaded worker: its core is all it may use; the
            predictor should have one stream). The outputs are the same either way.
        overviews: Read tiles without nodata from the scene's overview at the model's input
            scale when it holds averages (:func:`~geolabel.raster.reader.average_overview`):
            the same input up to GDAL's rounding of the averages (a unit of the scene's
            integer values at most), ``input_scale²`` times fewer pixels to decompress.
            False reads every tile at the scene's resolution.

    Returns:
        The maps, statistics and embeddings.

    Raises:
        GeolabelError: The grid is not aligned to the model's input scale.
    """
    card = predictor.card
    scale = 1 if predictor.upsample else card.input_scale
    coarse = model_grid(grid, scale)
    coarse_tiles = {t.tile_id: t for t in coarse.tiles}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    classes = list(card.classes)
    zonal = (
        # The parcels are rasterized on a post thread, with the first batch, while the
        # model works on the next ones.
        ZonalAccumulator.for_grid(coarse, parcels, classes=classes, lazy=True)
        if parcels is not None
        else None
    )
    embed = (
        ParcelEmbeddings(coarse, parcels, id_raster=zonal.id_raster)
        if zonal is not None and parcels is not None and predictor.features
        else None
    )
    done = 0
    with (
        one_blas_thread(),
        contextlib.nullcontext() if serial else short_gil_turns(),
        Mosaic(coarse, classes=classes, zonal=zonal) as mosaic,
        _InlineExecutor() if serial else ThreadPoolExecutor(1, "geolabel-map") as maps,
        _InlineExecutor() if serial else ThreadPoolExecutor(1, "geolabel-stats") as tile_stats,
    ):
        acc = _SceneAccumulators(mosaic, classes, embed)
        pending: list[Future[None]] = []
        pending_n = 0
        batches = _scene_batches(
            grid,
            coarse,
            scale,
            card.bands,
            batch_size=batch_size,
            # The machine's cores, not this run's streams: a serial run (a Dask task) cuts
            # the same batches as a threaded one, so their outputs match bit for bit.
            streams=available_cores(),
            workers=0 if serial else 2,
            overviews=overviews,
        )
        for batch, result in predictor.map(batches, streams=1 if serial else None):
            if pending:
                for future in pending:
                    future.result()
                done += pending_n
                if progress is not None:
                    progress(done)
            tiles = [coarse_tiles[t.tile_id] for t in batch.tiles]
            valid = _pool_valid(batch.valid, result.probs.shape[2:])
            pending = [
                maps.submit(acc.add_map, tiles, result, valid),
                tile_stats.submit(acc.add_stats, tiles, result, valid),
            ]
            pending_n = len(batch)
        if pending:
            for future in pending:
                future.result()
            done += pending_n
            if progress is not None:
                progress(done)
        class_path = out / f"{grid.scene_id}_classes.tif"
        conf_path = out / f"{grid.scene_id}_confidence.tif"
        mosaic.write(class_path, conf_path)
    stats = zonal.result(warn=False) if zonal is not None else pd.DataFrame()
    parcel_ids, parcel_vectors = embed.result() if embed is not None else ([], np.zeros((0, 0)))
    return SceneOutputs(
        scene_id=grid.scene_id,
        class_map=class_path,
        confidence_map=conf_path,
        zonal=stats,
        tiles=pd.DataFrame(acc.tile_rows),
        tile_ids=acc.tile_ids,
        tile_embedding=(
            np.concatenate(acc.tile_vectors) if acc.tile_vectors else np.zeros((0, 0), np.float32)
        ),
        parcel_ids=parcel_ids,
        parcel_embedding=parcel_vectors.astype(np.float32),
    )


def parcel_prelabels(
    zonal: pd.DataFrame,
    classes: Sequence[str],
    parcel_classes: Sequence[str],
    *,
    temperature: float = 1.0,
    id_column: str = "parcel_id",
) -> pd.DataFrame:
    """Pre-label, confidence, margin and entropy per parcel from zonal mean probabilities.

    Args:
        zonal: Output of the zonal statistics (``prob_<class>`` columns).
        classes: All model classes.
        parcel_classes: Classes a parcel can take (the others are dropped and the rest
            renormalised).
        temperature: Parcel-level calibration temperature.
        id_column: Parcel id column.

    Returns:
        ``item``, ``label``, ``confidence``, ``margin``, ``entropy``, ``pixel_count`` and one
        ``p_<class>`` column per parcel class; parcels without pixels are dropped.
    """
    keep = [c for c in classes if c in set(parcel_classes)]
    have = zonal[zonal["pixel_count"] > 0]
    probs = have[[f"prob_{c}" for c in keep]].to_numpy(dtype=np.float64)
    probs = probs / np.clip(probs.sum(axis=1, keepdims=True), 1e-12, None)
    if temperature != 1.0:
        probs = apply_temperature(probs, temperature)
    u = (
        uncertainty(probs)
        if len(probs)
        else {k: np.zeros(0) for k in ("confidence", "margin", "entropy")}
    )
    frame = pd.DataFrame(
        {
            "item": have[id_column].astype(str).to_numpy(),
            "label": np.asarray(keep)[probs.argmax(axis=1)] if len(probs) else np.asarray([], str),
            "confidence": u["confidence"],
            "margin": u["margin"],
            "entropy": u["entropy"],
            "pixel_count": have["pixel_count"].to_numpy(),
        }
    )
    for k, c in enumerate(keep):
        frame[f"p_{c}"] = probs[:, k]
    return frame
