"""Mosaicking per-tile probabilities: the blend window, constants, coverage, memory, outputs."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import rasterio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geolabel.errors import MosaicError
from geolabel.raster.mosaic import CLASS_NODATA, Mosaic, blend_window
from geolabel.raster.reader import iter_tile_batches
from geolabel.raster.tiling import Tile, tile_scene

from .conftest import REAL
from .rasterdata import write_tif

CLASSES = ("built", "green", "water")


def read(path, band=None):
    with rasterio.open(path) as ds:
        return ds.read(band), ds.profile, ds.tags()


class TestBlendWindow:
    def test_linear_ramp(self):
        w = blend_window(8, 8, 4)
        ramp = [0.125, 0.375, 0.625, 0.875, 0.875, 0.625, 0.375, 0.125]
        np.testing.assert_allclose(w, np.outer(ramp, ramp))
        assert w.dtype == np.float32 and w.min() > 0

    def test_interior_is_one(self):
        w = blend_window(64, 64, 8)
        assert (w[8:56, 8:56] == 1).all() and w[0, 0] == pytest.approx((0.5 / 8) ** 2)

    def test_neighbours_cross_fade(self):
        """In the overlap of two neighbours of a regular grid the weights sum to one."""
        size, overlap = 32, 8
        ramp = blend_window(size, size, overlap)[size // 2]
        np.testing.assert_allclose(ramp[-overlap:] + ramp[:overlap], 1.0)

    def test_uniform_and_no_overlap(self):
        assert (blend_window(5, 7, 3, "uniform") == 1).all()
        assert (blend_window(5, 7, 0) == 1).all()

    def test_unknown_kind(self):
        with pytest.raises(MosaicError, match="linear, uniform"):
            blend_window(4, 4, 1, "gaussian")


def constant_mosaic(grid, values, tmp, **kwargs):
    with Mosaic(grid, CLASSES, probabilities=True, **kwargs) as mosaic:
        for batch in iter_tile_batches(grid, batch_size=3):
            probs = np.broadcast_to(
                np.asarray(values, np.float32)[None, :, None, None],
                (len(batch), len(CLASSES), grid.size, grid.size),
            )
            mosaic.add_batch(batch.tiles, probs, batch.valid)
        return mosaic.write(
            tmp / "class.tif", tmp / "conf.tif", probabilities_path=tmp / "probs.tif"
        )


class TestMosaic:
    @settings(
        max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(
        width=st.integers(8, 300),
        height=st.integers(8, 300),
        size=st.integers(8, 64),
        overlap=st.integers(0, 16),
        p=st.floats(0.05, 0.95),
        blend=st.sampled_from(["linear", "uniform"]),
    )
    def test_constant_prediction_gives_the_constant(
        self, tmp_path_factory, width, height, size, overlap, p, blend
    ):
        size = min(size, width, height)
        overlap = min(overlap, size - 1)
        tmp = tmp_path_factory.mktemp("m")
        scene = write_tif(tmp / "s.tif", np.ones((1, height, width), np.uint8))
        grid = tile_scene(scene, size=size, overlap=overlap)
        values = (p * 0.3, p * 0.7, 1 - p)
        result = constant_mosaic(grid, values, tmp, blend=blend)
        classes, _, tags = read(result.class_path, 1)
        confidence, _, _ = read(result.confidence_path, 1)
        probs, _, _ = read(result.probabilities_path)
        assert (classes == int(np.argmax(values))).all()
        # Equal up to float32 rounding of sums over up to (size / stride)² tiles.
        np.testing.assert_allclose(confidence, max(values), rtol=1e-5)
        for k, v in enumerate(values):
            np.testing.assert_allclose(probs[k], v, rtol=1e-5)
        assert json.loads(tags["classes"]) == list(CLASSES)
        assert result.n_pixels_covered == width * height

    def test_outputs_have_the_scene_georeference(self, sample_dir, tmp_path):
        grid = tile_scene(sample_dir / "scene.tif", size=256, overlap=32)
        result = constant_mosaic(grid, (0.2, 0.5, 0.3), tmp_path)
        _, scene_profile, _ = read(sample_dir / "scene.tif", 1)
        for path, dtype in ((result.class_path, "uint8"), (result.confidence_path, "float32")):
            with rasterio.open(path) as ds:
                assert ds.transform == scene_profile["transform"] and ds.crs == scene_profile["crs"]
                assert ds.dtypes[0] == dtype and ds.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
                assert ds.overviews(1) == [2, 4, 8]
        _, class_profile, _ = read(result.class_path, 1)
        assert class_profile["nodata"] == CLASS_NODATA

    def test_blend_is_the_weighted_mean_of_overlapping_tiles(self, tmp_path):
        """Two tiles side by side: the overlap cross-fades from one prediction to the other."""
        scene = write_tif(tmp_path / "s.tif", np.ones((1, 16, 28), np.uint8))
        grid = tile_scene(scene, size=16, overlap=4)
        assert [t.col_off for t in grid.tiles] == [0, 12]
        with Mosaic(grid, ("a", "b"), probabilities=True) as mosaic:
            left, right = grid.tiles
            mosaic.add(left, np.stack([np.ones((16, 16)), np.zeros((16, 16))]).astype(np.float32))
            mosaic.add(right, np.stack([np.zeros((16, 16)), np.ones((16, 16))]).astype(np.float32))
            result = mosaic.write(
                tmp_path / "c.tif", tmp_path / "f.tif", probabilities_path=tmp_path / "p.tif"
            )
        probs, _, _ = read(result.probabilities_path)
        row = probs[0, 8]
        ramp = blend_window(16, 16, 4)[8]
        expected_overlap = ramp[12:] / (ramp[12:] + ramp[:4])
        np.testing.assert_allclose(row[:12], 1.0)
        np.testing.assert_allclose(row[12:16], expected_overlap, rtol=1e-6)
        np.testing.assert_allclose(row[16:], 0.0)
        np.testing.assert_allclose(probs[0] + probs[1], 1.0, rtol=1e-6)
        classes, _, _ = read(result.class_path, 1)
        assert (classes[:, :14] == 0).all() and (classes[:, 14:] == 1).all()

    def test_skipped_and_nodata_pixels_stay_uncovered(self, tmp_path):
        arr = np.full((1, 32, 32), 9, np.uint8)
        arr[0, :16, :16] = 0  # one whole tile of nodata: skipped
        arr[0, 20, 20] = 0  # one nodata pixel inside a kept tile
        grid = tile_scene(write_tif(tmp_path / "s.tif", arr, nodata=0), size=16, overlap=0)
        assert len(grid) == 3
        result = constant_mosaic(grid, (0.1, 0.1, 0.8), tmp_path)
        classes, _, _ = read(result.class_path, 1)
        confidence, _, _ = read(result.confidence_path, 1)
        assert (classes[:16, :16] == CLASS_NODATA).all() and classes[20, 20] == CLASS_NODATA
        assert np.isnan(confidence[:16, :16]).all() and np.isnan(confidence[20, 20])
        assert (classes[16:, :16] == 2).all() and result.n_pixels_covered == 32 * 32 - 256 - 1

    def test_memory_is_bounded_in_block_order(self, tmp_path):
        scene = write_tif(tmp_path / "s.tif", np.ones((1, 2048, 64), np.uint8), block=64)
        grid = tile_scene(scene, size=64, overlap=8)
        most = 0
        with Mosaic(grid, ("a", "b")) as mosaic:
            probs = np.full((2, 64, 64), 0.5, np.float32)
            for tile in grid.tiles:
                mosaic.add(tile, probs)
                most = max(most, mosaic.open_strips)
            assert mosaic.open_strips == 0  # every strip was written as soon as it was complete
            mosaic.write(tmp_path / "c.tif", tmp_path / "f.tif")
        assert most <= 2  # of 8 strips of 256 rows

    def test_errors(self, sample_dir, tmp_path):
        grid = tile_scene(sample_dir / "scene.tif", size=512, overlap=0)
        good = np.full((3, 512, 512), 1 / 3, np.float32)
        with Mosaic(grid, CLASSES) as mosaic:
            stranger = Tile("S009_r000000_c000000", "S009", 0, 0, 512, 512)
            with pytest.raises(MosaicError, match="not a tile of the grid of scene S001"):
                mosaic.add(stranger, good)
            with pytest.raises(MosaicError, match=r"shape \(2, 512, 512\); expected \(3, 512"):
                mosaic.add(grid.tiles[0], good[:2])
            with pytest.raises(MosaicError, match="pass floating-point"):
                mosaic.add(grid.tiles[0], good.astype(np.uint8))
            with pytest.raises(MosaicError, match="valid mask"):
                mosaic.add(grid.tiles[0], good, np.ones((2, 2), bool))
            mosaic.add(grid.tiles[0], good)
            with pytest.raises(MosaicError, match="already added"):
                mosaic.add(grid.tiles[0], good)
            with pytest.raises(MosaicError, match="came with 2 probability arrays"):
                mosaic.add_batch(grid.tiles[1:2], np.stack([good, good]))
            with pytest.raises(MosaicError, match="comes twice in one batch"):
                mosaic.add_batch([grid.tiles[1]] * 2, np.stack([good, good]))
            with pytest.raises(MosaicError, match="already added"):
                mosaic.add_batch(grid.tiles[:2], np.stack([good, good]))
            assert mosaic.n_added == 1  # a refused batch adds nothing
            with pytest.raises(MosaicError, match="3 of the grid's 4 tiles were never added"):
                mosaic.write(tmp_path / "c.tif", tmp_path / "f.tif")
            with pytest.raises(MosaicError, match="probabilities=True"):
                mosaic.write(tmp_path / "c.tif", tmp_path / "f.tif", probabilities_path="p.tif")
            result = mosaic.write(tmp_path / "c.tif", tmp_path / "f.tif", allow_missing=True)
            assert result.n_tiles == 1 and result.n_pixels_covered == 512 * 512
            with pytest.raises(MosaicError, match="already written"):
                mosaic.add(grid.tiles[1], good)

    @pytest.mark.parametrize(
        ("classes", "kwargs", "fragment"),
        [
            ((), {}, "between 1 and 254"),
            (("a", "a"), {}, "repeat"),
            (("a",), {"strip_rows": 100}, "multiple of 256"),
            (("a",), {"blend": "gauss"}, "linear, uniform"),
        ],
    )
    def test_bad_construction(self, sample_dir, classes, kwargs, fragment):
        grid = tile_scene(sample_dir / "scene.tif", size=512, overlap=0)
        with pytest.raises(MosaicError, match=fragment):
            Mosaic(grid, classes, **kwargs)

    def test_staging_files_are_removed(self, sample_dir, tmp_path):
        grid = tile_scene(sample_dir / "scene.tif", size=512, overlap=0)
        with Mosaic(grid, CLASSES, workdir=tmp_path):
            assert len(list(tmp_path.iterdir())) == 1
        assert list(tmp_path.iterdir()) == []
        assert not math.isnan(blend_window(2, 2, 1)[0, 0])


class TestArgmaxMax:
    def test_matches_numpy_and_ties_go_to_the_lower_class(self):
        from geolabel.raster._ops import argmax_max

        rng = np.random.default_rng(0)
        probs = rng.integers(0, 3, size=(5, 40, 30)).astype(np.float32)  # many ties
        index, best = argmax_max(probs)
        assert index.dtype == np.uint8
        np.testing.assert_array_equal(index, np.argmax(probs, axis=0))
        np.testing.assert_array_equal(best, probs.max(axis=0))


class TestRealImagery:
    @pytest.mark.skipif(not REAL.exists(), reason="shared real imagery not present")
    def test_mosaic_on_an_epsg4326_scene(self, tmp_path):
        path = REAL / "spacenet3_vegas_roads" / "road_mask_input.tif"
        grid = tile_scene(path, size=256, overlap=32)
        with Mosaic(grid, ("road", "other")) as mosaic:
            for batch in iter_tile_batches(grid, batch_size=9):
                p = (batch.array[:, :1] > 600).astype(np.float32)  # a brightness "model"
                mosaic.add_batch(batch.tiles, np.concatenate([p, 1 - p], axis=1))
            result = mosaic.write(tmp_path / "c.tif", tmp_path / "f.tif")
        with rasterio.open(path) as scene, rasterio.open(result.class_path) as out:
            assert out.crs == scene.crs and out.transform == scene.transform
            assert out.shape == scene.shape
            bright = scene.read(1) > 600
            classes = out.read(1)
        # Tiles agree wherever they overlap, so the blend reproduces the per-pixel rule.
        np.testing.assert_array_equal(classes == 0, bright)
