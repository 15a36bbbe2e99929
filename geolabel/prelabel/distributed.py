"""Pre-label scenes on a Dask cluster: one task per scene, each worker reading its own scene.

A scene's work is :func:`~geolabel.prelabel.predict.predict_scene` (tiles read in block order,
model, mosaic, zonal statistics per parcel, embeddings), the same call the local path makes, so
the outputs are the same bit for bit when the torch thread count is the same (the local path's
``num_threads=1`` against single-threaded workers). Scenes are the unit: splitting a scene
into blocks of tiles would need the mosaic's overlap blending and the per-parcel sums merged
across workers, for little gain while a project has at least as many scenes as workers.

The parcels are sent to the cluster once (``scatter``) and shared by every scene task. A task
gets its scene's grid as a :class:`~geolabel.prelabel.predict.GridPlan` when the project
stores none, and builds it on the worker (building reads the scene, which the worker is about
to read anyway), so the client reads no pixel. Each worker loads the checkpoint once and keeps
it for the next tasks of the same model (:func:`cached_predictor`; a checkpoint rewritten in
place is noticed by its files' size and modification time), and writes its scene's COGs to the
output folder, which must be visible at the same path on every worker.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import geopandas as gpd

from geolabel.cluster import worker_threads
from geolabel.prelabel.model import CARD_FILE, WEIGHTS_FILE
from geolabel.prelabel.predict import GridPlan, Precision, SceneOutputs, TilePredictor
from geolabel.raster.tiling import TileGrid

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["cached_predictor", "predict_scene_task", "predict_scenes"]

_CACHE_SIZE = 2
_cache: OrderedDict[tuple[object, ...], TilePredictor] = OrderedDict()
_cache_lock = threading.Lock()


def _stamp(model_dir: Path) -> tuple[object, ...]:
    """What identifies a checkpoint's contents: its files' sizes and modification times."""
    out: list[object] = [str(model_dir.resolve())]
    for name in (CARD_FILE, WEIGHTS_FILE):
        try:
            st = (model_dir / name).stat()
        except OSError:
            return (*out, None)  # missing: load_checkpoint says so clearly
        out += [st.st_size, st.st_mtime_ns]
    return tuple(out)


def cached_predictor(
    model_dir: str | os.PathLike[str], *, precision: Precision, num_threads: int
) -> TilePredictor:
    """A predictor for a checkpoint, loaded once per process and kept for later tasks.

    The last two checkpoints (by directory, file sizes and modification times, precision and
    threads) are kept, so a worker that pre-labels many scenes of one model loads it once, and
    a checkpoint rewritten in place is loaded again.

    Args:
        model_dir: Checkpoint directory.
        precision: ``fp32`` or ``bf16``.
        num_threads: Torch threads.

    Returns:
        The predictor (with encoder features, for embeddings).

    Raises:
        InputFileError: A missing or damaged checkpoint.
        ModelMismatchError: Weights that do not fit the card.
    """
    from geolabel.prelabel.model import load_checkpoint

    stamp = _stamp(Path(model_dir))
    key = (*stamp, precision, num_threads)
    with _cache_lock:
        predictor = _cache.get(key) if stamp[-1] is not None else None
        if predictor is None:
            model, card = load_checkpoint(model_dir)
            predictor = TilePredictor(
                model, card, precision=precision, num_threads=num_threads, features=True
            )
            _cache[key] = predictor
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
        _cache.move_to_end(key)
    return predictor


def predict_scene_task(
    model_dir: str,
    grid: TileGrid | GridPlan,
    parcels: gpd.GeoDataFrame,
    out_dir: str,
    *,
    batch_size: int = 32,
    precision: Precision = "fp32",
    num_threads: int | None = None,
) -> tuple[SceneOutputs, int, TileGrid]:
    """Pre-label one scene on a worker (or anywhere): build its grid, predict, pool.

    Args:
        model_dir: Checkpoint directory.
        grid: The scene's tile grid, or the plan of one (built here).
        parcels: Parcels (any CRS; reprojected to the scene's).
        out_dir: Folder for the scene's COGs.
        batch_size: Tiles per forward pass.
        precision: ``fp32`` or ``bf16``.
        num_threads: Torch threads (default: the worker's thread count).

    Returns:
        The scene's outputs, the torch thread count used and the grid.
    """
    import torch

    from geolabel.prelabel.predict import predict_scene

    threads = worker_threads(num_threads)
    torch.set_num_threads(threads)
    predictor = cached_predictor(model_dir, precision=precision, num_threads=threads)
    # A worker of one thread gets one core from Dask: read, predict and pool on this thread
    # (reader and pooling threads would make workers on neighbouring cores fight for them).
    serial = threads == 1
    built = grid if isinstance(grid, TileGrid) else grid.build(workers=0 if serial else 2)
    outputs = predict_scene(
        predictor,
        built,
        parcels.to_crs(built.scene.crs),
        out_dir,
        batch_size=batch_size,
        serial=serial,
    )
    return outputs, predictor.threads, built


def predict_scenes(
    client: Client,
    model_dir: str | os.PathLike[str],
    grids: Sequence[TileGrid | GridPlan],
    parcels: gpd.GeoDataFrame,
    out_dir: str | os.PathLike[str],
    *,
    batch_size: int = 32,
    precision: Precision = "fp32",
    num_threads: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[SceneOutputs], int, list[TileGrid]]:
    """Pre-label scenes on a Dask cluster, one task per scene, results in the grids' order.

    Args:
        client: A connected client (:func:`geolabel.cluster.dask_client`).
        model_dir: Checkpoint directory (seen by every worker).
        grids: One tile grid, or plan of one, per scene.
        parcels: Parcels to pool over.
        out_dir: Output folder (seen by every worker).
        batch_size: Tiles per forward pass.
        precision: ``fp32`` or ``bf16``.
        num_threads: Torch threads per task (default: each worker's thread count).
        progress: Called with (tiles done, tiles in all) as scenes finish; a planned grid
            counts its tiles before the all-nodata ones are left out until it is done.

    Returns:
        The outputs of every scene, the torch threads of the tasks, and the grids.

    Raises:
        GeolabelError: A scene failed on its worker (the worker's error, re-raised).
    """
    from distributed import as_completed

    Path(out_dir).mkdir(parents=True, exist_ok=True)
    # Every worker needs them: send them to each now, rather than have a worker fetch them
    # from a busy one (whose event loop waits for its task to let go of the GIL).
    shared = client.scatter(parcels, broadcast=True)
    # Largest scenes first: a worker that frees up takes the next, so the last to finish is a
    # small one (longest-processing-time-first order).
    sizes = [len(g) if isinstance(g, TileGrid) else g.max_tiles for g in grids]
    order = sorted(range(len(grids)), key=lambda k: -sizes[k])
    submitted = [
        client.submit(
            predict_scene_task,
            str(model_dir),
            grids[k],
            shared,
            str(out_dir),
            batch_size=batch_size,
            precision=precision,
            num_threads=num_threads,
            key=f"geolabel-prelabel-{grids[k].scene_id}-{os.getpid()}-{id(grids)}",
            pure=False,
        )
        for k in order
    ]
    by_grid = dict(zip(order, submitted, strict=True))
    futures = [by_grid[k] for k in range(len(grids))]  # the grids' order
    tiles = {f.key: n for f, n in zip(futures, sizes, strict=True)}
    done = 0
    finished: dict[object, tuple[SceneOutputs, int, TileGrid]] = {}
    try:
        for future in as_completed(futures):
            finished[future.key] = future.result()  # fetched once; raises a failed scene's error
            built = finished[future.key][2]
            tiles[future.key] = len(built)
            done += len(built)
            if progress is not None:
                progress(done, sum(tiles.values()))
        results = [finished[f.key] for f in futures]
    finally:
        for f in futures:
            f.release()
    return (
        [r[0] for r in results],
        max((r[1] for r in results), default=1),
        [r[2] for r in results],
    )
