"""Tile grids: offsets, windows, edge policy, nodata skipping and the tile index."""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyproj import CRS
from rasterio.windows import Window
from shapely.geometry import box

from geolabel.errors import GeometryError, InputFileError, RasterReadError, TilingError
from geolabel.raster.io import open_scene_info
from geolabel.raster.reader import iter_tile_batches
from geolabel.raster.tiling import (
    Tile,
    nodata_fractions,
    tile_index,
    tile_offsets,
    tile_scene,
    tile_windows,
)

from .conftest import REAL
from .rasterdata import coded, write_tif


@st.composite
def grids(draw, max_side=400):
    """(width, height, size, overlap), at most about 40 tiles per axis."""
    width = draw(st.integers(1, max_side))
    height = draw(st.integers(1, max_side))
    lo = min(max(1, max(width, height) // 40), width, height)
    size = draw(st.integers(lo, min(width, height)))
    stride = draw(st.integers(min(lo, size), size))
    return width, height, size, size - stride


class TestTileOffsets:
    def test_benchmark_grid_has_1369_tiles(self):
        offsets = tile_offsets(8192, 256, 32)
        assert len(offsets) == 37 and len(tile_windows(8192, 8192, 256, 32)) == 1369
        assert offsets[:3] == [0, 224, 448] and offsets[-2:] == [7840, 7936]

    def test_regular_grid_is_not_shifted(self):
        assert tile_offsets(1024, 256, 32) == [0, 224, 448, 672, 768]
        assert tile_offsets(480, 256, 32) == [0, 224]

    def test_drop_keeps_the_stride_and_leaves_the_edge(self):
        assert tile_offsets(1000, 256, 0, "drop") == [0, 256, 512]

    @given(grids())
    def test_count_formula(self, g):
        width, _, size, overlap = g
        stride = size - overlap
        assert len(tile_offsets(width, size, overlap)) == math.ceil((width - size) / stride) + 1
        assert len(tile_offsets(width, size, overlap, "drop")) == (width - size) // stride + 1

    @given(grids())
    def test_steps_are_the_stride_except_the_shifted_last(self, g):
        width, _, size, overlap = g
        offsets = tile_offsets(width, size, overlap)
        steps = np.diff(offsets)
        assert (steps[:-1] == size - overlap).all()
        assert ((steps > 0) & (steps <= size - overlap)).all()
        assert offsets[0] == 0 and offsets[-1] == width - size


class TestTileWindows:
    @settings(max_examples=150, deadline=None)
    @given(grids(max_side=300))
    def test_full_coverage_and_inside_the_raster(self, g):
        width, height, size, overlap = g
        covered = np.zeros((height, width), dtype=bool)
        for w in tile_windows(width, height, size, overlap):
            assert w.col_off >= 0 and w.row_off >= 0
            assert w.col_off + w.width <= width and w.row_off + w.height <= height
            assert (w.width, w.height) == (size, size)
            covered[w.row_off : w.row_off + w.height, w.col_off : w.col_off + w.width] = True
        assert covered.all()

    @given(grids())
    def test_block_order_and_no_duplicates(self, g):
        windows = tile_windows(*g)
        keys = [(w.row_off, w.col_off) for w in windows]
        assert keys == sorted(keys) and len(set(keys)) == len(keys)

    @given(grids())
    def test_drop_stays_inside(self, g):
        width, height, size, overlap = g
        for w in tile_windows(width, height, size, overlap, edge="drop"):
            assert w.col_off + size <= width and w.row_off + size <= height

    @pytest.mark.parametrize(
        ("args", "fragment"),
        [
            ((100, 80, 128, 0), "larger than the raster \\(100 × 80 px\\); use --size 80"),
            ((100, 100, 0, 0), "positive whole number"),
            ((100, 100, 32, 32), "must be smaller than the tile size"),
            ((100, 100, 32, -1), "≥ 0"),
            ((100, 100, 32.5, 0), "positive whole number"),
        ],
    )
    def test_bad_parameters(self, args, fragment):
        with pytest.raises(TilingError, match=fragment):
            tile_windows(*args)

    def test_bad_edge_policy(self):
        with pytest.raises(TilingError, match="shift, drop"):
            tile_windows(100, 100, 32, 0, edge="pad")


class TestTile:
    def test_from_window_and_back(self):
        tile = Tile.from_window("S002", Window(224, 448, 256, 256), 0.25)
        assert tile.tile_id == "S002_r000448_c000224"
        assert tile.window == Window(224, 448, 256, 256)
        assert (tile.row_end, tile.col_end) == (704, 480)

    def test_fractional_window_is_refused(self):
        with pytest.raises(TilingError, match="whole pixels"):
            Tile.from_window("S001", Window(0.5, 0, 10, 10))

    def test_invalid_window_is_refused(self):
        with pytest.raises(TilingError, match="invalid window"):
            Tile("t", "S001", -1, 0, 10, 10)


class TestTileScene:
    @settings(
        max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(g=grids(max_side=70))
    def test_windows_recorded_exactly(self, tmp_path_factory, g):
        """Every tile's pixels are the scene's pixels at the window it records."""
        width, height, size, overlap = g
        path = write_tif(tmp_path_factory.mktemp("g") / "coded.tif", coded(height, width))
        grid = tile_scene(path, size=size, overlap=overlap)
        assert [t.window for t in grid.tiles] == tile_windows(width, height, size, overlap)
        seen = 0
        for batch in iter_tile_batches(grid, batch_size=7):
            for tile, pixels in zip(batch.tiles, batch.array, strict=True):
                rows, cols = np.mgrid[tile.row_off : tile.row_end, tile.col_off : tile.col_end]
                np.testing.assert_array_equal(pixels[0], rows * 1000 + cols)
                seen += 1
        assert seen == len(grid)

    def test_sample_scene(self, sample_dir):
        grid = tile_scene(sample_dir / "scene.tif", size=256, overlap=32, scene_id="S001")
        assert len(grid) == 25 and grid.n_skipped == 0 and grid.stride == 224
        assert grid.tiles[-1].window == Window(768, 768, 256, 256)
        left, bottom, right, top = grid.tile_bounds(grid.tiles[0])
        assert (left, top, right - left, top - bottom) == (551_000.0, 4_182_512.0, 128.0, 128.0)

    def test_nodata_collar_is_skipped_by_threshold(self, tmp_path):
        arr = np.full((2, 64, 64), 7, dtype=np.uint16)
        arr[:, :, :24] = 0  # a 24-column collar on the left
        arr[1, 0, 0] = 5  # one pixel valid in band 2 only: still valid
        path = write_tif(tmp_path / "collar.tif", arr, nodata=0)
        full = tile_scene(path, size=16, overlap=0)
        fractions = {t.col_off: t.nodata_fraction for t in full.tiles if t.row_off == 0}
        assert fractions == {16: 0.5, 32: 0.0, 48: 0.0, 0: 1 - 1 / 256}
        assert full.n_skipped == 3  # columns 0..15 of rows 16..63
        strict = tile_scene(path, size=16, overlap=0, nodata_threshold=0.5)
        assert strict.n_skipped == 8 and len(strict) == 8

    def test_all_nodata_scene(self, tmp_path):
        path = write_tif(tmp_path / "empty.tif", np.zeros((1, 32, 32), np.uint8), nodata=0)
        with pytest.raises(TilingError, match=r"Every one of the 4 tiles .*empty.tif"):
            tile_scene(path, size=16, overlap=0)

    @pytest.mark.parametrize("threshold", [0, 1.5, -0.1, True])
    def test_bad_threshold(self, data_dir, threshold):
        with pytest.raises(TilingError, match="nodata_threshold"):
            tile_scene(data_dir / "scene_small.tif", size=16, nodata_threshold=threshold)

    @pytest.mark.parametrize(
        ("fixture", "exc", "fragment"),
        [
            ("nocrs.tif", RasterReadError, "has no CRS"),
            ("no_geotransform.tif", RasterReadError, "no geotransform"),
            ("not_a_raster.tif", RasterReadError, "cannot read"),
            ("missing.tif", InputFileError, "does not exist"),
        ],
    )
    def test_bad_scenes_name_the_file(self, data_dir, fixture, exc, fragment):
        with pytest.raises(exc, match=fragment) as err:
            tile_scene(data_dir / fixture, size=16, overlap=0)
        assert fixture in str(err.value)

    def test_tile_larger_than_scene_names_it(self, data_dir):
        with pytest.raises(TilingError, match=r"scene_small.tif.*use --size 32 or less"):
            tile_scene(data_dir / "scene_small.tif", size=64, overlap=0)

    def test_float_scene_nan_is_nodata(self, tmp_path):
        arr = np.ones((1, 32, 32), dtype=np.float32)
        arr[0, :16, :16] = np.nan
        grid = tile_scene(write_tif(tmp_path / "f.tif", arr), size=16, overlap=0)
        assert len(grid) == 3 and grid.n_skipped == 1

    @pytest.mark.skipif(not REAL.exists(), reason="shared real imagery not present")
    def test_real_landsat_collar(self):
        path = REAL / "landsat7_rasterio" / "RGB.byte.tif"
        grid = tile_scene(path, size=128, overlap=16, nodata_threshold=0.9)
        import rasterio

        with rasterio.open(path) as ds:
            data = ds.read()
        bad = (data == 0).all(axis=0)
        all_windows = tile_windows(791, 718, 128, 16)
        expected = [bad[w.toslices()].mean() for w in all_windows]
        assert grid.n_skipped == sum(f >= 0.9 for f in expected) > 0
        for tile in grid.tiles:
            assert tile.nodata_fraction == pytest.approx(bad[tile.window.toslices()].mean())


class TestNodataFractions:
    def test_exact_against_brute_force(self, tmp_path):
        rng = np.random.default_rng(1)
        arr = rng.integers(0, 3, size=(3, 97, 83)).astype(np.uint8)
        arr[:, 40:60, 10:70] = 0
        path = write_tif(tmp_path / "r.tif", arr, nodata=0, block=16)
        windows = [
            Window(int(c), int(r), int(w), int(h))
            for c, r, w, h in zip(
                rng.integers(0, 60, 40),
                rng.integers(0, 70, 40),
                rng.integers(1, 24, 40),
                rng.integers(1, 28, 40),
                strict=True,
            )
        ]
        bad = (arr == 0).all(axis=0)
        expected = [bad[w.toslices()].mean() for w in windows]
        np.testing.assert_allclose(nodata_fractions(path, windows), expected)

    def test_alpha_band_is_data_not_a_mask(self, data_dir):
        """rgba_tagged.tif tags band 4 alpha (with zeros in it); it has no nodata value."""
        import rasterio

        path = data_dir / "rgba_tagged.tif"
        with rasterio.open(path) as ds:
            assert (ds.read(4) == 0).any() and (ds.read_masks(1) == 0).any()
        grid = tile_scene(path, size=16, overlap=0)
        assert len(grid) == 4 and all(t.nodata_fraction == 0 for t in grid.tiles)

    def test_no_nodata_reads_nothing(self, tmp_path):
        path = write_tif(tmp_path / "x.tif", np.zeros((1, 20, 20), np.uint8))
        assert nodata_fractions(path, [Window(0, 0, 20, 20)]).tolist() == [0.0]


class TestTileIndex:
    def test_footprints_in_project_crs_and_regions(self, tmp_path, sample_dir):
        utm = tile_scene(sample_dir / "scene.tif", size=512, overlap=0, scene_id="S001")
        # A second scene in geographic coordinates over the same place.
        geo_path = write_tif(
            tmp_path / "geo.tif",
            np.ones((1, 64, 64), np.float32),
            crs="EPSG:4326",
            transform=__import__("affine").Affine(1e-5, 0, -122.4195, 0, -1e-5, 37.7785),
        )
        geo = tile_scene(geo_path, size=32, overlap=0, scene_id="S002")
        regions = gpd.read_file(sample_dir / "city.gpkg", layer="districts").rename(
            columns={"district": "region"}
        )
        index = tile_index([utm, geo], "EPSG:32610", regions=regions.to_crs("EPSG:4326"))
        assert CRS.from_user_input(index.crs).to_epsg() == 32610
        assert list(index.columns[:7]) == [
            "tile_id",
            "scene_id",
            "row_off",
            "col_off",
            "height",
            "width",
            "nodata_fraction",
        ]
        assert len(index) == 4 + 4
        first = index.iloc[0]
        assert first.geometry.equals(box(551_000, 4_182_256, 551_256, 4_182_512))
        assert (first.left, first.top, first.scene_crs) == (551_000.0, 4_182_512.0, "EPSG:32610")
        assert set(index.loc[index.scene_id == "S001", "region"]) == {"Northgate", "Riverside"}
        s2 = index[index.scene_id == "S002"]
        assert (s2.scene_crs == "EPSG:4326").all() and s2.region.isna().all()
        # 32 px of 1e-5 degrees is about 28 m by 36 m at this latitude, curved a little.
        assert s2.geometry.area.between(900, 1100).all()
        assert len(s2.iloc[0].geometry.exterior.coords) > 5

    def test_duplicate_scene_ids(self, sample_dir):
        grid = tile_scene(sample_dir / "scene.tif", size=512, overlap=0)
        with pytest.raises(TilingError, match="scene id 'S001'"):
            tile_index([grid, grid], "EPSG:32610")

    def test_regions_without_column(self, sample_dir):
        grid = tile_scene(sample_dir / "scene.tif", size=512, overlap=0)
        regions = gpd.GeoDataFrame({"name": ["a"]}, geometry=[box(0, 0, 1, 1)], crs="EPSG:32610")
        with pytest.raises(GeometryError, match="no 'region' column"):
            tile_index([grid], "EPSG:32610", regions=regions)

    def test_scene_info_is_reused(self, data_dir):
        info = open_scene_info(data_dir / "scene_small.tif")
        grid = tile_scene(info, size=16, overlap=4)
        assert grid.scene is info and len(grid) == 9


@pytest.mark.skipif(not REAL.exists(), reason="shared real imagery not present")
class TestRealImagery:
    def test_epsg4326_footprints_in_utm(self):
        grid = tile_scene(REAL / "spacenet3_vegas_roads" / "road_mask_input.tif", size=256)
        index = tile_index([grid], "EPSG:32611")
        side = 256 * 0.3  # about 0.3 m pixels
        assert index.geometry.is_valid.all() and len(index) == 36
        assert index.geometry.area.between(0.7 * side**2, 1.3 * side**2).all()
        assert (index.scene_crs == "EPSG:4326").all()
        assert index.left.between(-116, -115).all() and index.top.between(36, 37).all()
