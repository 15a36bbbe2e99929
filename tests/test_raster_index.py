"""Tiling a project: the tiles layer, stored statistics and grids read back from the store."""

from __future__ import annotations

import json
import shutil

import pytest

from geolabel.errors import InputFileError, LayerError, StoreError, TilingError
from geolabel.project import init_project
from geolabel.raster.index import (
    BAND_STATS_KEY,
    TILING_KEY,
    project_band_stats,
    project_scenes,
    project_tile_grids,
    tile_project,
)
from geolabel.raster.tiling import tile_scene
from geolabel.store import Project


def make_project(sample_dir, folder, scene=None):
    path = folder / "city.gpkg"
    init_project(
        path,
        scenes=[scene or sample_dir / "scene.tif"],
        parcels=sample_dir / "city.gpkg",
        parcels_layer="parcels",
        regions=sample_dir / "city.gpkg",
        regions_layer="districts",
        taxonomy=sample_dir / "taxonomy.yaml",
    )
    return path


@pytest.fixture(scope="module")
def tiled(sample_dir, tmp_path_factory):
    path = make_project(sample_dir, tmp_path_factory.mktemp("tiled"))
    result = tile_project(path, size=256, overlap=32, stats_tiles=10)
    return path, result


class TestTileProject:
    def test_layer_and_result(self, tiled):
        path, result = tiled
        assert (result.n_tiles, result.size, result.overlap, result.crs) == (
            25,
            256,
            32,
            "EPSG:32610",
        )
        (scene,) = result.scenes
        assert (scene.scene_id, scene.n_tiles, scene.n_skipped, scene.bands) == ("S001", 25, 0, 4)
        with Project.open(path) as project:
            layer = project.read_layer("tiles")
            info = {i.name: i for i in project.layers()}["tiles"]
        assert info.count == 25 and info.crs == "EPSG:32610"
        assert set(layer.region) == {"Northgate", "Riverside"}
        assert layer.tile_id.is_unique and layer.geometry.area.eq(128.0 * 128.0).all()

    def test_meta_holds_tiling_and_stats(self, tiled):
        path, result = tiled
        with Project.open(path) as project:
            tiling = json.loads(project.meta[TILING_KEY])
            stats = json.loads(project.meta[BAND_STATS_KEY])
        assert tiling["size"] == 256 and tiling["scenes"]["S001"]["n_tiles"] == 25
        assert stats["S001"]["n_tiles"] == 10
        assert project_band_stats(path)["S001"] == result.scenes[0].stats

    def test_grids_read_back_equal_the_computed_grid(self, tiled, sample_dir):
        path, _ = tiled
        grids = project_tile_grids(path)
        fresh = tile_scene(sample_dir / "scene.tif", size=256, overlap=32, scene_id="S001")
        assert grids["S001"].tiles == fresh.tiles
        assert (grids["S001"].size, grids["S001"].overlap, grids["S001"].edge) == (256, 32, "shift")

    def test_rerun_needs_overwrite(self, tiled):
        path, _ = tiled
        with pytest.raises(StoreError, match=r"already has a tile index \(25 tiles\).*--force"):
            tile_project(path)

    def test_overwrite_replaces(self, sample_dir, tmp_path):
        path = make_project(sample_dir, tmp_path)
        tile_project(path, size=512, overlap=0, stats_tiles=2)
        result = tile_project(path, size=256, overlap=0, stats_tiles=2, overwrite=True)
        assert result.n_tiles == 16 and len(project_tile_grids(path)["S001"]) == 16

    def test_tile_larger_than_scene(self, sample_dir, tmp_path):
        path = make_project(sample_dir, tmp_path)
        with pytest.raises(TilingError, match=r"scene.tif: Tile size 2048 px .*--size 1024"):
            tile_project(path, size=2048)
        with Project.open(path) as project:
            assert "tiles" not in {i.name for i in project.layers()}

    def test_missing_scene_file(self, sample_dir, tmp_path):
        scene = tmp_path / "scene.tif"
        shutil.copy(sample_dir / "scene.tif", scene)
        path = make_project(sample_dir, tmp_path, scene=scene)
        scene.unlink()
        with pytest.raises(InputFileError, match=r"Scene S001 of project .* is scene.tif"):
            tile_project(path)

    def test_not_tiled_yet(self, sample_dir, tmp_path):
        path = make_project(sample_dir, tmp_path)
        with pytest.raises(StoreError, match=r"not been tiled yet.*geolabel tile"):
            project_tile_grids(path)
        with pytest.raises(StoreError, match="not been tiled yet"):
            project_band_stats(path)

    def test_project_without_scenes(self, tmp_path):
        path = tmp_path / "empty.gpkg"
        Project.create(path, crs="EPSG:32610").close()
        with pytest.raises(LayerError, match=r"no scenes to tile.*geolabel init"):
            project_scenes(path)

    def test_scene_changed_since_tiling(self, sample_dir, tmp_path):
        import numpy as np

        from .rasterdata import ORIGIN, write_tif

        scene = write_tif(tmp_path / "s.tif", np.ones((1, 600, 600), np.uint16), block=64)
        path = make_project(sample_dir, tmp_path, scene=scene)
        tile_project(path, size=256, overlap=0, stats_tiles=1)
        write_tif(scene, np.ones((1, 500, 600), np.uint16), transform=ORIGIN)
        with pytest.raises(TilingError, match=r"was 600 × 600 px when tiled.*--force"):
            project_tile_grids(path)
