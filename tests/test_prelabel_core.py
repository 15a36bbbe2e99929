"""Pre-label building blocks: label masks, metrics, calibration, checkpoints, the spatial split."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pytest
import torch
from affine import Affine
from shapely.geometry import box

from geolabel.errors import InputFileError, LabelError
from geolabel.prelabel.masks import IGNORE_INDEX, burn_labels
from geolabel.prelabel.metrics import (
    apply_temperature,
    confusion_matrix,
    expected_calibration_error,
    fit_temperature,
    segmentation_scores,
    uncertainty,
)
from geolabel.prelabel.model import (
    ModelCard,
    ModelConfig,
    ModelMismatchError,
    build_model,
    hash_ids,
    load_checkpoint,
    save_checkpoint,
)
from geolabel.prelabel.train import downsample_image, downsample_mask, spatial_split

CLASSES = ["residential", "commercial", "park", "road"]
T = Affine(1.0, 0, 0, 0, -1.0, 20.0)


@pytest.fixture
def parcels():
    return gpd.GeoDataFrame(
        {"parcel_id": ["a", "b", "c"]},
        geometry=[box(0, 10, 10, 20), box(10, 10, 20, 20), box(0, 0, 10, 8)],
        crs="EPSG:32610",
    )


class TestBurnLabels:
    def test_hand_counted_mask(self, parcels):
        m = burn_labels(parcels, {"a": "residential", "b": "park"}, classes=CLASSES,
                        transform=T, shape=(20, 20), erode_px=0)  # fmt: skip
        assert (m[:10, :10] == 0).all() and (m[:10, 10:] == 2).all()
        assert (m[12:20, :10] == IGNORE_INDEX).all()  # parcel c is unlabeled
        assert (m[10:12, :] == 3).all() and (m[12:, 10:] == 3).all()  # outside parcels: road

    def test_erosion_ignores_edges(self, parcels):
        m = burn_labels(parcels, {"a": "residential", "b": "park"}, classes=CLASSES,
                        transform=T, shape=(20, 20), erode_px=1)  # fmt: skip
        assert m[5, 9] == IGNORE_INDEX and m[5, 10] == IGNORE_INDEX  # the shared edge
        assert m[9, 5] == IGNORE_INDEX  # next to the street
        assert m[10, 5] == 3  # the street itself is not eroded
        assert m[5, 5] == 0 and m[5, 15] == 2
        assert m[0, 0] == 0 and m[5, 19] == 2  # the scene border is not an edge

    def test_outside_ignored_when_no_road_class(self, parcels):
        m = burn_labels(parcels, {"a": "park"}, classes=CLASSES, transform=T, shape=(20, 20),
                        outside_class=None, erode_px=0)  # fmt: skip
        assert m[11, 5] == IGNORE_INDEX

    def test_unknown_label(self, parcels):
        with pytest.raises(LabelError, match="'mall'"):
            burn_labels(parcels, {"a": "mall"}, classes=CLASSES, transform=T, shape=(20, 20))


class TestMetrics:
    def test_confusion_and_iou(self):
        truth = np.array([[0, 0, 1, 1], [2, 2, IGNORE_INDEX, 1]])
        pred = np.array([[0, 1, 1, 1], [2, 0, 0, 1]])
        cm = confusion_matrix(truth, pred, 3)
        assert cm.sum() == 7 and cm[0, 0] == 1 and cm[0, 1] == 1 and cm[2, 0] == 1
        s = segmentation_scores(cm)
        assert s.iou[1] == pytest.approx(3 / 4)  # tp 3, fn 0, fp 1
        assert s.iou[0] == pytest.approx(1 / 3)
        assert s.pixel_accuracy == pytest.approx(5 / 7)

    def test_uncertainty(self):
        u = uncertainty(np.array([[0.7, 0.2, 0.1], [1 / 3, 1 / 3, 1 / 3]]))
        assert u["confidence"][0] == pytest.approx(0.7) and u["margin"][0] == pytest.approx(0.5)
        assert u["entropy"][1] == pytest.approx(np.log(3))

    def test_temperature_fixes_overconfidence(self):
        rng = np.random.default_rng(0)
        n = 4000
        labels = rng.integers(0, 3, n)
        # Overconfident: always 0.95 on a guess that is right 60% of the time.
        guess = np.where(rng.random(n) < 0.6, labels, (labels + 1) % 3)
        probas = np.full((n, 3), 0.025)
        probas[np.arange(n), guess] = 0.95
        t = fit_temperature(probas, labels)
        assert t > 1.5
        before = expected_calibration_error(probas, labels)
        after = expected_calibration_error(apply_temperature(probas, t), labels)
        assert before > 0.3 and after < 0.05


class TestSplitAndResample:
    def test_spatial_split_is_by_block(self):
        mask = np.zeros((64, 64), dtype=np.uint8)
        train, val = spatial_split(mask, block_px=16, val_fraction=0.25, seed=0)
        assert ((train != IGNORE_INDEX) ^ (val != IGNORE_INDEX)).all()
        v = (val != IGNORE_INDEX).reshape(4, 16, 4, 16)
        per_block = v.any(axis=(1, 3)) == v.all(axis=(1, 3))
        assert per_block.all()  # every block is wholly on one side
        assert 0.2 <= (val != IGNORE_INDEX).mean() <= 0.35

    def test_downsampling(self):
        img = np.arange(16, dtype=np.float32).reshape(1, 4, 4)
        assert downsample_image(img, 2)[0, 0, 0] == pytest.approx((0 + 1 + 4 + 5) / 4)
        mask = np.array(
            [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11], [12, 13, 14, 15]], dtype=np.uint8
        )
        assert downsample_mask(mask, 2).tolist() == [[5, 7], [13, 15]]


class TestCheckpoint:
    def _card(self, **kw):
        base = dict(model_version="", classes=tuple(CLASSES), taxonomy_name="land_use",
                    taxonomy_version="1", taxonomy_sha256="abc", bands=(1, 2, 3, 4),
                    band_names=("red", "green", "blue", "nir"), mean=(1.0,) * 4, std=(2.0,) * 4,
                    config={"arch": "unet", "encoder": "resnet18", "encoder_depth": 3,
                            "decoder_channels": [32, 16, 8], "weights": None},
                    tile_size=64, epochs=1, training_items_sha256=hash_ids(["b", "a"]),
                    n_training_items=2)  # fmt: skip
        base.update(kw)
        return ModelCard(**base)

    def test_round_trip_and_version(self, tmp_path):
        card = self._card()
        torch.manual_seed(0)
        model = build_model(card.model_config, 4, len(CLASSES))
        written = save_checkpoint(tmp_path / "m", model, card)
        assert written.model_version.startswith("m-") and written.versions["torch"]
        loaded, card2 = load_checkpoint(tmp_path / "m")
        assert card2 == written
        x = torch.randn(1, 4, 64, 64)
        model.eval()
        with torch.inference_mode():
            assert torch.allclose(model(x), loaded(x))
        data = json.loads((tmp_path / "m" / "model_card.json").read_text())
        assert data["classes"] == CLASSES and data["training_items_sha256"] == hash_ids(["a", "b"])

    def test_refuses_other_taxonomy(self):
        card = self._card()
        card.check_taxonomy("land_use", 1, "abc")
        with pytest.raises(ModelMismatchError, match=r"`geolabel train"):
            card.check_taxonomy("land_use", 2)
        with pytest.raises(ModelMismatchError):
            card.check_taxonomy("land_use", "1", "other-sha")

    def test_missing_checkpoint(self, tmp_path):
        with pytest.raises(InputFileError, match=r"model_card\.json"):
            load_checkpoint(tmp_path)

    def test_bad_architecture(self):
        from geolabel.errors import GeolabelError

        with pytest.raises(GeolabelError, match="Unknown architecture"):
            ModelConfig(arch="transformer")  # type: ignore[arg-type]
        with pytest.raises(GeolabelError, match="Unknown encoder"):
            build_model(ModelConfig(encoder="no-such-encoder"), 4, 3)
