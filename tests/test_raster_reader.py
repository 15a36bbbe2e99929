"""Block-order tile reading, strips, band selection, normalisation statistics."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import rasterio
from rasterio.enums import Resampling
from rasterio.windows import Window

from geolabel.errors import BandError, RasterReadError, TilingError
from geolabel.raster.io import open_scene_info, write_cog
from geolabel.raster.reader import (
    BandStats,
    average_overview,
    check_bands,
    compute_band_stats,
    iter_tile_batches,
    read_strips,
)
from geolabel.raster.tiling import Tile, tile_scene

from .conftest import REAL
from .rasterdata import ORIGIN, UTM, coded, write_tif


def direct(path, tile, bands=None):
    with rasterio.open(path) as ds:
        return ds.read(bands, window=tile.window)


@pytest.fixture
def coded_scene(tmp_path):
    return write_tif(tmp_path / "coded.tif", coded(100, 90, bands=3), block=16)


class TestIterTileBatches:
    def test_batches_equal_direct_reads(self, coded_scene):
        grid = tile_scene(coded_scene, size=24, overlap=5)
        seen = []
        for batch in iter_tile_batches(grid, batch_size=4):
            assert batch.array.flags.c_contiguous and batch.array.dtype == np.uint32
            assert batch.array.shape[1:] == (3, 24, 24) and len(batch) <= 4
            assert batch.valid is None
            for tile, pixels in zip(batch.tiles, batch.array, strict=True):
                np.testing.assert_array_equal(pixels, direct(coded_scene, tile))
            seen += batch.tiles
        assert seen == list(grid.tiles)

    def test_tiles_are_delivered_in_block_order(self, coded_scene):
        grid = tile_scene(coded_scene, size=24, overlap=5)
        shuffled = list(reversed(grid.tiles[:10]))
        got = [t for b in iter_tile_batches(grid, shuffled, batch_size=3) for t in b.tiles]
        assert got == sorted(shuffled, key=lambda t: (t.row_off, t.col_off))

    def test_windows_with_a_path(self, coded_scene):
        windows = [Window(5, 70, 20, 20), Window(0, 0, 20, 20)]
        (batch,) = iter_tile_batches(coded_scene, windows, batch_size=8)
        assert [t.tile_id for t in batch.tiles] == ["S001_r000000_c000000", "S001_r000070_c000005"]
        np.testing.assert_array_equal(batch.array[1], direct(coded_scene, batch.tiles[1]))

    def test_band_selection(self, coded_scene):
        grid = tile_scene(coded_scene, size=32, overlap=0)
        batch = next(iter_tile_batches(grid, batch_size=2, bands=[3, 1]))
        np.testing.assert_array_equal(batch.array[0], direct(coded_scene, batch.tiles[0], [3, 1]))

    def test_one_worker_and_small_prefetch_give_the_same(self, coded_scene):
        grid = tile_scene(coded_scene, size=24, overlap=5)
        a = np.concatenate([b.array for b in iter_tile_batches(grid, batch_size=5)])
        b = np.concatenate(
            [b.array for b in iter_tile_batches(grid, batch_size=5, workers=1, prefetch=1)]
        )
        np.testing.assert_array_equal(a, b)

    def test_rgba_tagged_is_four_data_bands(self, data_dir):
        path = data_dir / "rgba_tagged.tif"
        assert open_scene_info(path).colorinterp[3] == "alpha"
        grid = tile_scene(path, size=16, overlap=0)
        batch = next(iter_tile_batches(grid, batch_size=4))
        assert batch.array.shape == (4, 4, 16, 16) and batch.valid is None
        with rasterio.open(path) as ds:
            everything = ds.read()
        for tile, pixels in zip(batch.tiles, batch.array, strict=True):
            np.testing.assert_array_equal(
                pixels, everything[(slice(None), *tile.window.toslices())]
            )
        assert (batch.array[:, 3] == 0).any()  # alpha zeros are delivered as data

    def test_valid_mask_and_normalisation(self, tmp_path):
        arr = np.stack([np.full((32, 32), 10, np.uint16), np.full((32, 32), 30, np.uint16)])
        arr[:, :4, :4] = 0
        path = write_tif(tmp_path / "n.tif", arr, nodata=0)
        grid = tile_scene(path, size=16, overlap=0)
        stats = compute_band_stats(grid)
        assert stats.mean == (10.0, 30.0) and stats.std == (0.0, 0.0)
        stats = BandStats.from_dict({**stats.to_dict(), "mean": [8.0, 20.0], "std": [2.0, 5.0]})
        batch = next(iter_tile_batches(grid, batch_size=1, normalise=stats))
        assert batch.array.dtype == np.float32
        assert not batch.valid[0, :4, :4].any() and batch.valid[0, 4:, 4:].all()
        assert (batch.array[0, :, :4, :4] == 0).all()
        assert (batch.array[0, 0, 4:, 4:] == 1.0).all() and (batch.array[0, 1, 4:, 4:] == 2.0).all()

    def test_normalise_with_stats_of_other_bands(self, coded_scene):
        grid = tile_scene(coded_scene, size=32, overlap=0)
        stats = compute_band_stats(grid, bands=[1, 2])
        with pytest.raises(BandError, match=r"bands \[1, 2\] of scene S001.*bands \[1, 2, 3\]"):
            next(iter_tile_batches(grid, normalise=stats))

    @pytest.mark.parametrize(
        ("bands", "fragment"),
        [
            ([0], "has 3 band"),
            ([4], "1=band1, 2=band2, 3=band3"),
            ([1, 1], "repeats"),
            ([], "does not fit"),
        ],
    )
    def test_bad_bands(self, coded_scene, bands, fragment):
        grid = tile_scene(coded_scene, size=32, overlap=0)
        with pytest.raises(BandError, match=fragment):
            next(iter_tile_batches(grid, bands=bands))

    def test_tiles_outside_the_scene(self, coded_scene):
        with pytest.raises(TilingError, match=r"reach outside .*coded.tif"):
            next(iter_tile_batches(coded_scene, [Window(80, 0, 20, 20)]))

    def test_mixed_sizes(self, coded_scene):
        with pytest.raises(TilingError, match="different sizes"):
            next(iter_tile_batches(coded_scene, [Window(0, 0, 20, 20), Window(0, 0, 10, 10)]))

    def test_path_without_tiles(self, coded_scene):
        with pytest.raises(TilingError, match="pass a TileGrid"):
            next(iter_tile_batches(coded_scene))

    @pytest.mark.parametrize("size", [0, -1, 2.5, True])
    def test_bad_batch_size(self, coded_scene, size):
        grid = tile_scene(coded_scene, size=32, overlap=0)
        with pytest.raises(TilingError, match="batch_size"):
            next(iter_tile_batches(grid, batch_size=size))

    def test_truncated_file_names_the_file_and_rows(self, tmp_path):
        rng = np.random.default_rng(0)
        path = write_tif(tmp_path / "cut.tif", rng.integers(0, 255, (1, 256, 256), np.uint8))
        size = path.stat().st_size
        with path.open("r+b") as f:
            f.truncate(size // 2)
        grid = tile_scene(path, size=64, overlap=0)
        with pytest.raises(RasterReadError, match=r"GDAL failed to read rows .* of .*cut.tif"):
            for _ in iter_tile_batches(grid):
                pass

    def test_stopping_early_closes_cleanly(self, coded_scene):
        grid = tile_scene(coded_scene, size=8, overlap=0)
        batches = iter_tile_batches(grid, batch_size=2)
        first = next(batches)
        batches.close()
        assert len(first) == 2

    @pytest.mark.skipif(not REAL.exists(), reason="shared real imagery not present")
    def test_real_one_band_uint16_epsg4326(self):
        path = REAL / "spacenet3_vegas_roads" / "road_mask_input.tif"
        grid = tile_scene(path, size=256, overlap=32)
        assert grid.scene.crs == "EPSG:4326" and len(grid) == 36
        n = 0
        for batch in iter_tile_batches(grid, batch_size=8):
            assert batch.array.dtype == np.uint16 and batch.array.shape[1:] == (1, 256, 256)
            for tile, pixels in zip(batch.tiles, batch.array, strict=True):
                np.testing.assert_array_equal(pixels, direct(path, tile))
            n += len(batch)
        assert n == 36
        stats = compute_band_stats(grid, n_tiles=8)
        assert stats.bands == (1,) and 0 < stats.mean[0] < 65535 and stats.n_tiles == 8

    @pytest.mark.skipif(not REAL.exists(), reason="shared real imagery not present")
    def test_real_three_band_uint8_with_collar(self):
        path = REAL / "landsat7_rasterio" / "RGB.byte.tif"
        grid = tile_scene(path, size=200, overlap=20, nodata_threshold=0.95)
        with rasterio.open(path) as ds:
            data = ds.read()
        for batch in iter_tile_batches(grid, batch_size=5):
            assert batch.array.dtype == np.uint8 and batch.valid is not None
            for tile, pixels, valid in zip(batch.tiles, batch.array, batch.valid, strict=True):
                expected = data[(slice(None), *tile.window.toslices())]
                np.testing.assert_array_equal(pixels, expected)
                np.testing.assert_array_equal(valid, (expected != 0).any(axis=0))
        stats = compute_band_stats(grid, n_tiles=len(grid))
        valid = (data != 0).any(axis=0)
        covered = np.zeros(valid.shape, bool)
        for t in grid.tiles:
            covered[t.window.toslices()] = True
        # Every tile sampled: the mean is the mean over the covered valid pixels, counted once
        # per tile that sees them.
        total = sum(
            data[0][t.window.toslices()][valid[t.window.toslices()]].sum() for t in grid.tiles
        )
        count = sum(valid[t.window.toslices()].sum() for t in grid.tiles)
        assert stats.mean[0] == pytest.approx(total / count)
        assert stats.minimum[0] >= 0 and stats.n_pixels == count


class TestReadStrips:
    def test_strips_cover_the_scene_once(self, coded_scene):
        strips = list(read_strips(coded_scene, workers=2))
        assert [s.row_off for s in strips] == [0]  # 16-row blocks -> 256-row strips > 100 rows
        rebuilt = np.concatenate([s.array for s in read_strips(coded_scene, strip_rows=30)], axis=1)
        with rasterio.open(coded_scene) as ds:
            np.testing.assert_array_equal(rebuilt, ds.read())

    def test_row_range(self, coded_scene):
        strips = list(read_strips(coded_scene, rows=(37, 61), strip_rows=10, bands=[2]))
        assert [s.row_off for s in strips] == [37, 47, 57]
        assert sum(s.array.shape[1] for s in strips) == 24 and strips[0].array.shape[0] == 1


class TestBandStats:
    def test_all_tiles_give_exact_statistics(self, tmp_path):
        rng = np.random.default_rng(3)
        arr = rng.normal(100, 15, size=(2, 64, 64)).astype(np.float32)
        arr[:, :8, :] = np.nan
        path = write_tif(tmp_path / "f.tif", arr)
        grid = tile_scene(path, size=32, overlap=0)
        stats = compute_band_stats(grid, n_tiles=100, seed=5)
        ok = ~np.isnan(arr[0])
        assert stats.n_tiles == 4 and stats.n_pixels == ok.sum()
        for b in range(2):
            assert stats.mean[b] == pytest.approx(float(arr[b][ok].mean()), rel=1e-6)
            assert stats.std[b] == pytest.approx(float(arr[b][ok].std()), rel=1e-5)
            assert stats.minimum[b] == pytest.approx(float(arr[b][ok].min()))
            assert stats.p2[b] == pytest.approx(float(np.percentile(arr[b][ok], 2)), rel=1e-6)

    def test_sample_is_seeded(self, sample_dir):
        grid = tile_scene(sample_dir / "scene.tif", size=128, overlap=0)
        a = compute_band_stats(grid, n_tiles=5, seed=1)
        assert a == compute_band_stats(grid, n_tiles=5, seed=1)
        assert a != compute_band_stats(grid, n_tiles=5, seed=2)

    def test_round_trip(self, sample_dir):
        grid = tile_scene(sample_dir / "scene.tif", size=512, overlap=0)
        stats = compute_band_stats(grid, n_tiles=2)
        assert BandStats.from_dict(stats.to_dict()) == stats
        with pytest.raises(BandError, match="lack mean"):
            BandStats.from_dict({k: v for k, v in stats.to_dict().items() if k != "mean"})

    def test_check_bands_default(self, sample_dir):
        assert check_bands(open_scene_info(sample_dir / "scene.tif"), None) == (1, 2, 3, 4)

    def test_bad_sample_size(self, sample_dir):
        grid = tile_scene(sample_dir / "scene.tif", size=512, overlap=0)
        with pytest.raises(TilingError, match="n_tiles"):
            compute_band_stats(grid, n_tiles=0)

    def test_tile_record(self):
        tile = Tile("x", "S001", 0, 0, 4, 4)
        assert tile.nodata_fraction == 0.0


def textured(size: int = 512, bands: int = 2, seed: int = 0) -> np.ndarray:
    """Uint16 imagery with texture at every scale (so average and nearest overviews differ)."""
    rng = np.random.default_rng(seed)
    return rng.integers(500, 4000, size=(bands, size, size)).astype(np.uint16)


class TestAverageOverview:
    def test_write_cog_overviews_are_averages(self, tmp_path):
        info = open_scene_info(
            write_cog(tmp_path / "a.tif", textured(), transform=ORIGIN, crs=UTM, blocksize=64)
        )
        assert info.overviews[:3] == (2, 4, 8)
        assert all(average_overview(info, f) for f in (2, 4, 8))
        assert not average_overview(info, 3)  # no such overview
        assert not average_overview(info, 1)

    def test_nearest_overviews_are_refused(self, tmp_path):
        path = write_cog(
            tmp_path / "n.tif", textured(), transform=ORIGIN, crs=UTM, blocksize=64,
            overview_resampling=Resampling.nearest,
        )  # fmt: skip
        assert not average_overview(open_scene_info(path), 4)

    def test_a_rewritten_file_is_checked_again(self, tmp_path):
        path = tmp_path / "s.tif"
        write_cog(path, textured(), transform=ORIGIN, crs=UTM, blocksize=64)
        assert average_overview(open_scene_info(path), 4)
        write_cog(
            path, textured(seed=1), transform=ORIGIN, crs=UTM, blocksize=64,
            overview_resampling=Resampling.nearest,
        )  # fmt: skip
        assert not average_overview(open_scene_info(path), 4)

    def test_flat_samples_give_no_verdict(self, tmp_path):
        flat = np.full((1, 512, 512), 1200, dtype=np.uint16)
        path = write_cog(tmp_path / "f.tif", flat, transform=ORIGIN, crs=UTM, blocksize=64)
        assert not average_overview(open_scene_info(path), 4)

    def test_no_overviews(self, coded_scene):
        assert not average_overview(open_scene_info(coded_scene), 2)


class TestOverviewReads:
    def test_tiles_of_the_overview_are_block_means(self, tmp_path):
        image = textured(256, bands=3)
        path = write_cog(tmp_path / "a.tif", image, transform=ORIGIN, crs=UTM, blocksize=64)
        info = open_scene_info(path)
        coarse = replace(info, width=64, height=64)
        tiles = [Tile("S001_a", "S001", 0, 0, 16, 16), Tile("S001_b", "S001", 40, 24, 16, 16)]
        (batch,) = iter_tile_batches(coarse, tiles, batch_size=4, overview=4, workers=1)
        assert batch.scale == 4 and batch.array.shape == (2, 3, 16, 16)
        for tile, pixels in zip(batch.tiles, batch.array, strict=True):
            r, c = tile.row_off * 4, tile.col_off * 4
            block = image[:, r : r + 64, c : c + 64].astype(np.float64)
            means = block.reshape(3, 16, 4, 16, 4).mean(axis=(2, 4))
            assert np.abs(pixels - means).max() <= 1.0  # GDAL rounds each level to integers

    def test_missing_overview_is_an_error(self, coded_scene):
        grid = tile_scene(coded_scene, size=24, overlap=5)
        with pytest.raises(TilingError, match="no overview of factor 4"):
            next(iter_tile_batches(grid, batch_size=4, overview=4))
