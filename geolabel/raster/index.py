"""Tile a project's scenes and keep the grid with the project: the ``tiles`` layer and stats.

:func:`tile_project` builds each scene's :class:`~geolabel.raster.tiling.TileGrid` (scenes
read in their own CRS), writes the ``tiles`` layer (footprints in the project CRS, region of
each tile from the ``regions`` layer when the project has one) and stores two JSON values in
the project's ``meta`` table: ``tiling`` (size, overlap, edge policy, nodata threshold, tiles
per scene) and ``band_stats`` (per-scene :class:`~geolabel.raster.reader.BandStats`). Later
steps read them back with :func:`project_tile_grids` and :func:`project_band_stats`, without
touching a pixel.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from geolabel.errors import InputFileError, LayerError, StoreError, TilingError
from geolabel.raster.io import RasterInfo, open_scene_info
from geolabel.raster.reader import BandStats, compute_band_stats
from geolabel.raster.tiling import EdgePolicy, Tile, TileGrid, tile_index, tile_scene
from geolabel.store import Project

__all__ = [
    "BAND_STATS_KEY",
    "TILES_LAYER",
    "TILING_KEY",
    "SceneTiles",
    "TileIndexResult",
    "project_band_stats",
    "project_scenes",
    "project_tile_grids",
    "tile_project",
]

TILES_LAYER = "tiles"
"""Name of the tile index layer."""
TILING_KEY = "tiling"
"""``meta`` key of the grid parameters (JSON)."""
BAND_STATS_KEY = "band_stats"
"""``meta`` key of the per-scene band statistics (JSON)."""


@dataclass(frozen=True, slots=True)
class SceneTiles:
    """The tiling of one scene.

    Attributes:
        scene_id: Scene id in the project.
        path: The scene file.
        width: Columns.
        height: Rows.
        bands: Band count.
        dtype: Pixel type.
        crs: The scene's CRS (tiles are read in it).
        n_tiles: Tiles kept.
        n_skipped: Tiles skipped as nodata.
        stats: Band statistics from a sample of the kept tiles.
    """

    scene_id: str
    path: str
    width: int
    height: int
    bands: int
    dtype: str
    crs: str
    n_tiles: int
    n_skipped: int
    stats: BandStats


@dataclass(frozen=True, slots=True)
class TileIndexResult:
    """What :func:`tile_project` stored.

    Attributes:
        project: The project file.
        layer: The tile index layer.
        crs: The project CRS (of the footprints).
        size: Tile size in pixels.
        overlap: Overlap in pixels.
        edge: Edge policy.
        nodata_threshold: Nodata share at which tiles were skipped.
        n_tiles: Tiles in the index.
        scenes: Per-scene details.
    """

    project: str
    layer: str
    crs: str
    size: int
    overlap: int
    edge: str
    nodata_threshold: float
    n_tiles: int
    scenes: tuple[SceneTiles, ...]


def _open(project: Project | str | os.PathLike[str]) -> tuple[Project, bool]:
    if isinstance(project, Project):
        return project, False
    return Project.open(project), True


def project_scenes(project: Project | str | os.PathLike[str]) -> dict[str, RasterInfo]:
    """The project's scenes by id, each checked (paths are relative to the project file).

    Args:
        project: A project or its path.

    Returns:
        Checked scene descriptions by scene id, in id order.

    Raises:
        LayerError: The project has no ``scenes`` layer.
        InputFileError: A scene file has moved or been deleted (the message names it).
        RasterReadError: A scene cannot be read any more.
    """
    proj, close = _open(project)
    try:
        try:
            scenes = proj.read_layer("scenes")
        except LayerError as exc:
            raise LayerError(
                f"Project {proj.path} has no scenes to tile ({exc}). Create it with"
                " `geolabel init PROJECT --scene SCENE.tif ...`."
            ) from None
        out: dict[str, RasterInfo] = {}
        for scene_id, rel in sorted(zip(scenes["scene_id"], scenes["path"], strict=True)):
            path = (proj.path.parent / str(rel)).resolve()
            if not path.exists():
                raise InputFileError(
                    f"Scene {scene_id} of project {proj.path} is {rel} (relative to the project"
                    f" file, i.e. {path}), which does not exist; put the file back there."
                )
            out[str(scene_id)] = open_scene_info(path)
        return out
    finally:
        if close:
            proj.close()


def tile_project(
    project: Project | str | os.PathLike[str],
    *,
    size: int = 256,
    overlap: int = 32,
    edge: EdgePolicy = "shift",
    nodata_threshold: float = 1.0,
    stats_tiles: int = 64,
    seed: int = 0,
    workers: int = 2,
    overwrite: bool = False,
) -> TileIndexResult:
    """Tile every scene of a project, store the tile index and the band statistics.

    Args:
        project: A project or its path.
        size: Tile size in pixels.
        overlap: Overlap in pixels.
        edge: Edge policy (see :mod:`geolabel.raster.tiling`).
        nodata_threshold: Skip tiles whose nodata share is at least this.
        stats_tiles: Tiles sampled per scene for the band statistics.
        seed: Seed of that sample.
        workers: Reader threads.
        overwrite: Replace an existing ``tiles`` layer and statistics.

    Returns:
        What was stored.

    Raises:
        StoreError: The project already has a tile index and ``overwrite`` is False.
        TilingError: Bad grid parameters, or a tile larger than a scene (the message names it).
        InputFileError: A scene file is missing.
        RasterReadError: A scene cannot be read.
    """
    proj, close = _open(project)
    try:
        existing = {info.name: info for info in proj.layers()}
        if TILES_LAYER in existing and not overwrite:
            raise StoreError(
                f"Project {proj.path} already has a tile index ({existing[TILES_LAYER].count}"
                " tiles); pass --force (overwrite=True) to rebuild it and its band statistics."
            )
        scenes = project_scenes(proj)
        grids: list[TileGrid] = []
        summaries: list[SceneTiles] = []
        for scene_id, info in scenes.items():
            grid = tile_scene(
                info,
                size=size,
                overlap=overlap,
                edge=edge,
                nodata_threshold=nodata_threshold,
                scene_id=scene_id,
                workers=workers,
            )
            stats = compute_band_stats(grid, n_tiles=stats_tiles, seed=seed, workers=workers)
            grids.append(grid)
            summaries.append(
                SceneTiles(
                    scene_id=scene_id,
                    path=info.path,
                    width=info.width,
                    height=info.height,
                    bands=info.count,
                    dtype=info.dtype,
                    crs=info.crs,
                    n_tiles=len(grid),
                    n_skipped=grid.n_skipped,
                    stats=stats,
                )
            )
        regions = proj.read_layer("regions") if "regions" in existing else None
        index = tile_index(grids, proj.crs, regions=regions)
        proj.write_layer(index, TILES_LAYER, overwrite=True)
        tiling = {
            "size": int(size),
            "overlap": int(overlap),
            "edge": edge,
            "nodata_threshold": float(nodata_threshold),
            "scenes": {
                s.scene_id: {
                    "n_tiles": s.n_tiles,
                    "n_skipped": s.n_skipped,
                    "width": s.width,
                    "height": s.height,
                }
                for s in summaries
            },
        }
        with proj.transaction():
            proj.set_meta(TILING_KEY, json.dumps(tiling, sort_keys=True))
            proj.set_meta(
                BAND_STATS_KEY,
                json.dumps({s.scene_id: s.stats.to_dict() for s in summaries}, sort_keys=True),
            )
        return TileIndexResult(
            project=str(proj.path),
            layer=TILES_LAYER,
            crs=proj.crs,
            size=int(size),
            overlap=int(overlap),
            edge=edge,
            nodata_threshold=float(nodata_threshold),
            n_tiles=len(index),
            scenes=tuple(summaries),
        )
    finally:
        if close:
            proj.close()


def _meta_json(proj: Project, key: str) -> Any:
    raw = proj.meta.get(key)
    if raw is None:
        raise StoreError(
            f"Project {proj.path} has not been tiled yet (no {key!r} in its meta table); run"
            f" `geolabel tile {proj.path}` first."
        )
    return json.loads(raw)


def project_band_stats(project: Project | str | os.PathLike[str]) -> dict[str, BandStats]:
    """The band statistics stored by :func:`tile_project`, by scene id.

    Args:
        project: A project or its path.

    Returns:
        Statistics by scene id.

    Raises:
        StoreError: The project has not been tiled.
    """
    proj, close = _open(project)
    try:
        data = _meta_json(proj, BAND_STATS_KEY)
        return {str(k): BandStats.from_dict(v) for k, v in sorted(data.items())}
    finally:
        if close:
            proj.close()


def project_tile_grids(project: Project | str | os.PathLike[str]) -> dict[str, TileGrid]:
    """The tile grids stored by :func:`tile_project`, rebuilt from the ``tiles`` layer.

    Args:
        project: A project or its path.

    Returns:
        Grids by scene id; tiles in block order.

    Raises:
        StoreError: The project has not been tiled.
        TilingError: A scene's size changed since it was tiled (re-run ``geolabel tile``).
        InputFileError: A scene file is missing.
    """
    proj, close = _open(project)
    try:
        tiling = _meta_json(proj, TILING_KEY)
        scenes = project_scenes(proj)
        layer = proj.read_layer(TILES_LAYER)
        grids: dict[str, TileGrid] = {}
        for scene_id, info in scenes.items():
            rows = layer[layer["scene_id"] == scene_id]
            recorded = tiling["scenes"].get(scene_id)
            if recorded is None:
                continue
            if (recorded["width"], recorded["height"]) != (info.width, info.height):
                raise TilingError(
                    f"Scene {scene_id} ({info.path}) is {info.width} × {info.height} px but was"
                    f" {recorded['width']} × {recorded['height']} px when tiled; run"
                    f" `geolabel tile {proj.path} --force` again."
                )
            tiles = sorted(
                (
                    Tile(
                        str(r.tile_id),
                        scene_id,
                        int(r.row_off),
                        int(r.col_off),
                        int(r.height),
                        int(r.width),
                        float(r.nodata_fraction),
                    )
                    for r in rows.itertuples(index=False)
                ),
                key=lambda t: (t.row_off, t.col_off),
            )
            grids[scene_id] = TileGrid(
                scene=info,
                scene_id=scene_id,
                size=int(tiling["size"]),
                overlap=int(tiling["overlap"]),
                edge=tiling["edge"],
                nodata_threshold=float(tiling["nodata_threshold"]),
                tiles=tuple(tiles),
                n_skipped=int(recorded["n_skipped"]),
            )
        return grids
    finally:
        if close:
            proj.close()
