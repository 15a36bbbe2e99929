"""Pre-label scenes on a Dask cluster: one task per scene, each worker reading its own scene.

A scene's work is :func:`~geolabel.prelabel.predict.predict_scene` (tiles read in block order,
model, mosaic, zonal statistics per parcel, embeddings), the same call the local path makes, so
the outputs are the same bit for bit when the torch thread count is the same (the local path's
``num_threads=1`` against single-threaded workers). Scenes are the unit: splitting a scene
into blocks of tiles would need the mosaic's overlap blending and the per-parcel sums merged
across workers, for little gain while a project has at least as many scenes as workers.

The parcels are sent to the cluster once (``scatter``) and shared by every scene task; each
worker loads the checkpoint itself and writes its scene's COGs to the output folder, which
must be visible at the same path on every worker.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import geopandas as gpd

from geolabel.cluster import worker_threads
from geolabel.prelabel.predict import Precision, SceneOutputs
from geolabel.raster.tiling import TileGrid

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["predict_scene_task", "predict_scenes"]


def predict_scene_task(
    model_dir: str,
    grid: TileGrid,
    parcels: gpd.GeoDataFrame,
    out_dir: str,
    *,
    batch_size: int = 32,
    precision: Precision = "fp32",
    num_threads: int | None = None,
) -> tuple[SceneOutputs, int]:
    """Pre-label one scene on a worker (or anywhere): load the model, predict, pool.

    Args:
        model_dir: Checkpoint directory.
        grid: The scene's tile grid.
        parcels: Parcels (any CRS; reprojected to the scene's).
        out_dir: Folder for the scene's COGs.
        batch_size: Tiles per forward pass.
        precision: ``fp32`` or ``bf16``.
        num_threads: Torch threads (default: the worker's thread count).

    Returns:
        The scene's outputs and the torch thread count used.
    """
    import torch

    from geolabel.prelabel.model import load_checkpoint
    from geolabel.prelabel.predict import TilePredictor, predict_scene

    threads = worker_threads(num_threads)
    torch.set_num_threads(threads)
    model, card = load_checkpoint(model_dir)
    predictor = TilePredictor(model, card, precision=precision, num_threads=threads, features=True)
    outputs = predict_scene(
        predictor, grid, parcels.to_crs(grid.scene.crs), out_dir, batch_size=batch_size
    )
    return outputs, predictor.threads


def predict_scenes(
    client: Client,
    model_dir: str | os.PathLike[str],
    grids: Sequence[TileGrid],
    parcels: gpd.GeoDataFrame,
    out_dir: str | os.PathLike[str],
    *,
    batch_size: int = 32,
    precision: Precision = "fp32",
    num_threads: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[SceneOutputs], int]:
    """Pre-label scenes on a Dask cluster, one task per scene, results in the grids' order.

    Args:
        client: A connected client (:func:`geolabel.cluster.dask_client`).
        model_dir: Checkpoint directory (seen by every worker).
        grids: One tile grid per scene.
        parcels: Parcels to pool over.
        out_dir: Output folder (seen by every worker).
        batch_size: Tiles per forward pass.
        precision: ``fp32`` or ``bf16``.
        num_threads: Torch threads per task (default: each worker's thread count).
        progress: Called with (tiles done, tiles in all) as scenes finish.

    Returns:
        The outputs of every scene, and the torch threads of the tasks.

    Raises:
        GeolabelError: A scene failed on its worker (the worker's error, re-raised).
    """
    from distributed import as_completed

    Path(out_dir).mkdir(parents=True, exist_ok=True)
    shared = client.scatter(parcels, broadcast=False)
    futures = [
        client.submit(
            predict_scene_task,
            str(model_dir),
            grid,
            shared,
            str(out_dir),
            batch_size=batch_size,
            precision=precision,
            num_threads=num_threads,
            key=f"geolabel-prelabel-{grid.scene_id}-{os.getpid()}-{id(grids)}",
            pure=False,
        )
        for grid in grids
    ]
    sizes = {f.key: len(g) for f, g in zip(futures, grids, strict=True)}
    total = sum(sizes.values())
    done = 0
    try:
        for future in as_completed(futures):
            future.result()  # raise a failed scene's error now
            done += sizes[future.key]
            if progress is not None:
                progress(done, total)
        results = [f.result() for f in futures]
    finally:
        for f in futures:
            f.release()
    return [r[0] for r in results], max((r[1] for r in results), default=1)
