"""Prediction: the tile predictor, per-parcel pooling, embeddings, and a scene mosaicked to COGs."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import torch
from shapely.geometry import box

from geolabel.errors import GeolabelError, InputFileError
from geolabel.prelabel.embeddings import (
    ParcelEmbeddings,
    load_embeddings,
    save_embeddings,
    tile_embeddings,
)
from geolabel.prelabel.model import ModelCard, build_model
from geolabel.prelabel.predict import (
    TilePredictor,
    aligned_grid,
    model_grid,
    parcel_prelabels,
    predict_scene,
)
from geolabel.raster.io import open_scene_info, write_cog
from geolabel.raster.tiling import tile_scene
from tests.rasterdata import ORIGIN, UTM, write_tif

CLASSES = ("residential", "commercial", "road")


def _card(bands: int = 3, scale: int = 1) -> ModelCard:
    return ModelCard(
        model_version="m-test",
        classes=CLASSES,
        taxonomy_name="land_use",
        taxonomy_version="1",
        taxonomy_sha256="abc",
        bands=tuple(range(1, bands + 1)),
        band_names=tuple(f"band{b}" for b in range(1, bands + 1)),
        mean=(100.0,) * bands,
        std=(50.0,) * bands,
        config={"arch": "unet", "encoder": "resnet18", "encoder_depth": 3,
                "decoder_channels": [16, 8, 8], "weights": None},
        tile_size=32 * scale,
        epochs=1,
        training_items_sha256="x",
        n_training_items=1,
        input_scale=scale,
    )  # fmt: skip


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model(_card().model_config, 3, len(CLASSES)).eval()


class TestTilePredictor:
    def test_probabilities_and_features(self, model):
        predictor = TilePredictor(model, _card(scale=2), num_threads=1, features=True)
        batch = np.random.default_rng(0).integers(0, 255, (2, 3, 64, 64)).astype(np.uint8)
        out = predictor(batch)
        assert out.probs.shape == (2, 3, 32, 32) and out.probs.dtype == np.float32  # scale 2
        assert np.allclose(out.probs.sum(axis=1), 1.0, atol=1e-5)
        assert out.features is not None and out.features.shape[:2] == (2, 128)
        assert out.features.shape[2:] == (4, 4)  # 64 px at scale 2 → 32 px → /8 at depth 3
        up = TilePredictor(model, _card(scale=2), num_threads=1, upsample=True)(batch)
        assert up.probs.shape == (2, 3, 64, 64)
        assert np.allclose(up.probs[:, :, ::2, ::2].mean(), out.probs.mean(), atol=1e-3)

    def test_same_as_the_plain_model(self, model):
        # Folded batch norms, pooling before normalising, channels_last: the same numbers.
        card = _card(scale=2)
        batch = np.random.default_rng(2).integers(0, 255, (2, 3, 64, 64)).astype(np.float32)
        x = torch.from_numpy((batch - 100.0) / 50.0)
        x = torch.nn.functional.avg_pool2d(x, 2)
        with torch.inference_mode():
            expected = torch.softmax(model.eval()(x), dim=1).numpy()
        got = TilePredictor(model, card, num_threads=1)(batch).probs
        assert np.abs(got - expected).max() < 1e-4

    def test_nodata_pixels_are_the_band_mean(self, model):
        predictor = TilePredictor(model, _card(), num_threads=1)
        batch = np.full((1, 3, 32, 32), 100, dtype=np.uint16)  # the mean: normalises to 0
        batch[0, :, :4, :4] = 0
        valid = np.ones((1, 32, 32), dtype=bool)
        valid[0, :4, :4] = False
        masked = predictor(batch, valid).probs
        assert np.allclose(masked, predictor(np.full_like(batch, 100)).probs, atol=1e-6)

    def test_bf16_agrees_with_fp32(self, model):
        batch = np.random.default_rng(1).integers(0, 255, (2, 3, 32, 32)).astype(np.uint8)
        fp32 = TilePredictor(model, _card(), num_threads=1)(batch).probs
        bf16 = TilePredictor(model, _card(), precision="bf16", num_threads=1)(batch).probs
        assert bf16.dtype == np.float32
        assert np.abs(bf16 - fp32).max() < 0.1

    def test_streams_give_each_batch_its_single_thread_result_in_order(self, model):
        rng = np.random.default_rng(3)
        batches = [rng.integers(0, 255, (3, 3, 32, 32)).astype(np.uint8) for _ in range(7)]
        one = TilePredictor(model, _card(), num_threads=1, features=True)
        expected = [one(b) for b in batches]
        threads_before = torch.get_num_threads()
        three = TilePredictor(model, _card(), num_threads=3, features=True)
        got = list(three.map(iter(batches)))
        assert three.streams == 3 and three.threads == 3
        assert torch.get_num_threads() == threads_before  # restored after the streams
        assert len(got) == 7
        for b, (given, out), exp in zip(batches, got, expected, strict=True):
            assert given is b  # in the order given, with the batch it belongs to
            np.testing.assert_array_equal(out.probs, exp.probs)
            np.testing.assert_array_equal(out.features, exp.features)

    def test_map_takes_tile_batches_with_their_nodata(self, model):
        from geolabel.raster.reader import TileBatch

        batch = np.full((1, 3, 32, 32), 100, dtype=np.uint16)
        batch[0, :, :4, :4] = 0
        valid = np.ones((1, 32, 32), dtype=bool)
        valid[0, :4, :4] = False
        predictor = TilePredictor(model, _card(), num_threads=2)
        [(_, out)] = list(predictor.map([TileBatch(batch, (), valid)]))
        np.testing.assert_allclose(out.probs, predictor(np.full_like(batch, 100)).probs, atol=1e-6)
        with pytest.raises(GeolabelError, match=r"takes 3 band\(s\)"):
            list(predictor.map([np.zeros((1, 1, 32, 32), np.uint8)]))

    def test_batches_averaged_part_of_the_way(self, model):
        # A batch read from a 2x overview, averaged the other 2x here: the same as 4x here.
        predictor = TilePredictor(model, _card(scale=4), num_threads=1)
        batch = np.random.default_rng(4).integers(0, 255, (2, 3, 128, 128)).astype(np.float32)
        half = batch.reshape(2, 3, 64, 2, 64, 2).mean(axis=(3, 5))
        np.testing.assert_allclose(
            predictor(half, scale=2).probs, predictor(batch).probs, atol=1e-5
        )
        with pytest.raises(GeolabelError, match="cannot feed a model of input scale 4"):
            predictor(half, scale=3)

    def test_bad_inputs(self, model):
        with pytest.raises(GeolabelError, match="Unknown precision"):
            TilePredictor(model, _card(), precision="fp8")  # type: ignore[arg-type]
        with pytest.raises(GeolabelError, match=r"takes 3 band\(s\)"):
            TilePredictor(model, _card(), num_threads=1)(np.zeros((1, 1, 32, 32), np.uint8))


class TestGrids:
    def test_aligned_and_model_grids(self, tmp_path):
        path = write_tif(tmp_path / "odd.tif", np.ones((1, 70, 75), np.uint8))
        info = open_scene_info(path)
        grid = aligned_grid(info, size=32, overlap=8, scale=4)
        assert all(t.row_off % 4 == 0 and t.col_off % 4 == 0 for t in grid.tiles)
        assert max(t.col_end for t in grid.tiles) == 72  # 75 // 4 * 4: 3 columns left out
        coarse = model_grid(grid, 4)
        assert (coarse.scene.width, coarse.scene.height) == (18, 17)
        assert coarse.scene.res == (2.0, 2.0) and coarse.transform.a == 2.0
        assert {t.tile_id for t in coarse.tiles} == {t.tile_id for t in grid.tiles}
        assert all(t.height == 8 for t in coarse.tiles) and coarse.overlap == 2

    def test_misaligned_grid(self, tmp_path):
        path = write_tif(tmp_path / "odd.tif", np.ones((1, 70, 75), np.uint8))
        grid = tile_scene(path, size=32, overlap=8)  # the last tiles end at 70 and 75
        with pytest.raises(GeolabelError, match=r"not aligned.*aligned_grid"):
            model_grid(grid, 4)


class TestParcelPrelabels:
    def test_road_dropped_and_renormalised(self):
        zonal = pd.DataFrame(
            {
                "parcel_id": ["a", "b", "c"],
                "pixel_count": [10, 4, 0],
                "prob_residential": [0.6, 0.1, np.nan],
                "prob_commercial": [0.2, 0.3, np.nan],
                "prob_road": [0.2, 0.6, np.nan],
            }
        )
        pre = parcel_prelabels(zonal, CLASSES, ["residential", "commercial"])
        assert pre["item"].tolist() == ["a", "b"]  # c has no pixel
        assert pre["label"].tolist() == ["residential", "commercial"]
        assert pre["confidence"].tolist() == pytest.approx([0.75, 0.75])
        assert pre["margin"].tolist() == pytest.approx([0.5, 0.5])
        assert pre["entropy"].iloc[0] == pytest.approx(-(0.75 * np.log(0.75) + 0.25 * np.log(0.25)))
        softer = parcel_prelabels(zonal, CLASSES, ["residential", "commercial"], temperature=2.0)
        assert (softer["confidence"] < pre["confidence"]).all()
        assert softer["label"].tolist() == pre["label"].tolist()


@pytest.fixture
def scene(tmp_path):
    """A 64 × 64 3-band uint8 scene with a nodata corner, and two parcels in it."""
    rng = np.random.default_rng(0)
    pixels = rng.integers(1, 255, (3, 64, 64)).astype(np.uint8)
    pixels[:, :16, :16] = 0
    path = write_tif(tmp_path / "nodata.tif", pixels, nodata=0)
    x0, y0 = ORIGIN.c, ORIGIN.f
    parcels = gpd.GeoDataFrame(
        {"parcel_id": ["left", "right", "outside"]},
        geometry=[
            box(x0, y0 - 32, x0 + 8, y0),  # columns 0–15, every row
            box(x0 + 8, y0 - 32, x0 + 16, y0),  # columns 16–31
            box(x0 + 100, y0 - 10, x0 + 110, y0),  # not on the scene
        ],
        crs=UTM,
    )
    return path, parcels


class TestEmbeddings:
    def test_tile_embedding_skips_nodata_cells(self):
        features = np.zeros((1, 2, 2, 2), dtype=np.float32)
        features[0, :, 0, 0] = 10.0
        valid = np.ones((1, 4, 4), dtype=bool)
        valid[0, :2, :2] = False  # the cell holding the 10s
        assert tile_embeddings(features, valid)[0].tolist() == [0.0, 0.0]
        assert tile_embeddings(features)[0].tolist() == [2.5, 2.5]

    def test_parcel_means_by_pixel(self, scene):
        path, parcels = scene
        grid = tile_scene(path, size=32, overlap=0)
        emb = ParcelEmbeddings(grid, parcels)
        top_left = next(t for t in grid.tiles if t.row_off == 0 and t.col_off == 0)
        features = np.zeros((1, 2, 2), dtype=np.float32)
        features[0, :, 0] = 1.0  # the left column of cells (pixels 0–15)
        features[0, :, 1] = 3.0
        emb.add(top_left, features)
        ids, vectors = emb.result()
        assert ids == ["left", "right"]
        assert vectors[:, 0].tolist() == pytest.approx([1.0, 3.0])

    @pytest.mark.parametrize("cells", [4096, 1])  # 1: too many cells, tile by tile
    def test_batch_sums_equal_tile_by_tile(self, scene, cells, monkeypatch):
        import geolabel.prelabel.embeddings as embeddings

        monkeypatch.setattr(embeddings, "_BATCH_CELLS", cells)
        path, parcels = scene
        grid = tile_scene(path, size=32, overlap=8)
        rng = np.random.default_rng(3)
        features = rng.normal(size=(len(grid.tiles), 5, 4, 4)).astype(np.float32)
        valid = rng.random((len(grid.tiles), 32, 32)) > 0.2
        one, batch = ParcelEmbeddings(grid, parcels), ParcelEmbeddings(grid, parcels)
        for k, tile in enumerate(grid.tiles):
            one.add(tile, features[k], valid[k])
        batch.add_batch(grid.tiles[:3], features[:3], valid[:3])
        batch.add_batch(grid.tiles[3:], features[3:], valid[3:])
        (ids_one, v_one), (ids_batch, v_batch) = one.result(), batch.result()
        assert ids_one == ids_batch == ["left", "right"]  # "outside" has no pixel
        np.testing.assert_allclose(v_batch, v_one, rtol=1e-6)

    def test_round_trip_and_errors(self, tmp_path):
        path = save_embeddings(tmp_path / "e.npz", ["a", "b"], np.eye(2, dtype=np.float32))
        ids, vectors = load_embeddings(path)
        assert ids == ["a", "b"] and vectors.tolist() == [[1, 0], [0, 1]]
        with pytest.raises(InputFileError, match="does not exist"):
            load_embeddings(tmp_path / "missing.npz")
        (tmp_path / "bad.npz").write_text("not a zip")
        with pytest.raises(InputFileError, match="not a geolabel embeddings file"):
            load_embeddings(tmp_path / "bad.npz")


class TestPredictScene:
    def test_maps_parcels_tiles_embeddings(self, scene, model, tmp_path):
        path, parcels = scene
        grid = tile_scene(path, size=32, overlap=8)
        predictor = TilePredictor(model, _card(), num_threads=1, features=True)
        done = []
        out = predict_scene(predictor, grid, parcels, tmp_path / "out", batch_size=4,
                            progress=done.append)  # fmt: skip
        assert done[-1] == len(grid)
        with rasterio.open(out.class_map) as ds:
            classes = ds.read(1)
        assert classes.shape == (64, 64)
        assert (classes[:16, :16] == 255).all()  # nodata corner: no class
        assert np.isin(classes[16:, 16:], [0, 1, 2]).all()
        assert out.zonal.set_index("parcel_id").loc["outside", "pixel_count"] == 0
        assert set(out.tiles.columns) >= {"tile_id", "mean_confidence", "mean_entropy"}
        assert len(out.tiles) == len(grid) == len(out.tile_ids)
        assert out.tiles["mean_confidence"].between(1 / 3, 1).all()
        assert out.tile_embedding.shape == (len(grid), 128)
        assert out.parcel_ids == ["left", "right"]
        assert np.isfinite(out.parcel_embedding).all()

    def test_serial_runs_on_the_calling_thread_with_the_same_outputs(self, scene, model, tmp_path):
        import threading

        path, parcels = scene
        grid = tile_scene(path, size=32, overlap=8)
        threaded = predict_scene(
            TilePredictor(model, _card(), num_threads=2, features=True),
            grid, parcels, tmp_path / "threaded", batch_size=4,
        )  # fmt: skip
        seen: set[str] = set()

        def watch(_: int) -> None:
            seen.update(t.name for t in threading.enumerate())

        # The reader threads the threaded run started are kept (idle) for the next read.
        before = {t.name for t in threading.enumerate()}
        serial = predict_scene(
            TilePredictor(model, _card(), num_threads=1, features=True),
            grid, parcels, tmp_path / "serial", batch_size=4, progress=watch, serial=True,
        )  # fmt: skip
        assert seen and not any(n.startswith("geolabel-") for n in seen - before)
        pd.testing.assert_frame_equal(threaded.zonal, serial.zonal)
        pd.testing.assert_frame_equal(threaded.tiles, serial.tiles)
        np.testing.assert_array_equal(threaded.parcel_embedding, serial.parcel_embedding)
        for a, b in ((threaded.class_map, serial.class_map),
                     (threaded.confidence_map, serial.confidence_map)):  # fmt: skip
            with rasterio.open(a) as x, rasterio.open(b) as y:
                np.testing.assert_array_equal(x.read(), y.read())


class TestOverviewPath:
    @pytest.fixture
    def cog(self, tmp_path):
        """A 256 px 3-band uint8 COG (average overviews) with a nodata corner, and parcels."""
        rng = np.random.default_rng(5)
        pixels = rng.integers(1, 255, (3, 256, 256)).astype(np.uint8)
        pixels[:, :8, :8] = 0
        path = write_cog(
            tmp_path / "cog.tif", pixels, transform=ORIGIN, crs=UTM, nodata=0, blocksize=64
        )
        x0, y0 = ORIGIN.c, ORIGIN.f
        parcels = gpd.GeoDataFrame(
            {"parcel_id": [f"p{i}{j}" for i in range(4) for j in range(4)]},
            geometry=[
                box(x0 + 32 * j, y0 - 32 * (i + 1), x0 + 32 * (j + 1), y0 - 32 * i)
                for i in range(4)
                for j in range(4)
            ],
            crs=UTM,
        )
        return path, parcels

    def test_clean_tiles_come_from_the_overview(self, cog, model, tmp_path, monkeypatch):
        import geolabel.prelabel.predict as predict

        path, parcels = cog
        card = _card(scale=2)
        grid = aligned_grid(open_scene_info(path), size=64, overlap=16, scale=2)
        reads: list[tuple[int | None, int]] = []
        real = predict.iter_tile_batches

        def spy(scene, tiles=None, **kwargs):
            reads.append((kwargs.get("overview"), len(tiles)))
            return real(scene, tiles, **kwargs)

        monkeypatch.setattr(predict, "iter_tile_batches", spy)
        fast = predict_scene(
            TilePredictor(model, card, num_threads=1, features=True), grid, parcels,
            tmp_path / "fast", batch_size=4,
        )  # fmt: skip
        corner = [t for t in grid.tiles if t.nodata_fraction > 0]
        assert len(corner) == 1  # the nodata corner is read at the scene's resolution
        assert reads == [(2, len(grid.tiles) - 1), (None, 1)]
        reads.clear()
        full = predict_scene(
            TilePredictor(model, card, num_threads=1, features=True), grid, parcels,
            tmp_path / "full", batch_size=4, overviews=False,
        )  # fmt: skip
        assert reads == [(None, len(grid.tiles))]
        # GDAL rounds the overview's averages to integers: the same input up to half a unit.
        probs = [c for c in fast.zonal.columns if c.startswith("prob_")]
        np.testing.assert_allclose(fast.zonal[probs], full.zonal[probs], atol=0.02)
        with rasterio.open(fast.class_map) as a, rasterio.open(full.class_map) as b:
            assert (a.read() == b.read()).mean() > 0.97
