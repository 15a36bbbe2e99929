"""Training pieces: the class-keeping split, crop sampling, threads, settings, a short run."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from geolabel.errors import GeolabelError
from geolabel.prelabel.masks import IGNORE_INDEX
from geolabel.prelabel.model import ModelConfig
from geolabel.prelabel.threads import (
    ThreadTuner,
    available_cores,
    default_threads,
    one_blas_thread,
    short_gil_turns,
)
from geolabel.prelabel.train import (
    TrainConfig,
    _class_weights,
    _CropSampler,
    _parcel_loss,
    _weighted_loss,
    predict_array,
    spatial_split,
    train_segmentation,
)


def _parcel_grid(n: int = 8, size: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """An ``n × n`` grid of square parcels of ``size`` px: ordinals 1.. and a mask."""
    side = n * size
    r, c = np.indices((side, side))
    groups = (r // size) * n + c // size + 1
    mask = np.zeros((side, side), dtype=np.uint8)
    return groups.astype(np.int32), mask


class TestSpatialSplit:
    def test_parcels_stay_whole(self):
        # Blocks of 12 px cut through the 8-px parcels; every parcel goes with one block.
        groups, mask = _parcel_grid()
        train, val = spatial_split(mask, block_px=12, val_fraction=0.3, seed=1, groups=groups)
        for g in np.unique(groups):
            inside = groups == g
            in_val = val[inside] != IGNORE_INDEX
            assert in_val.all() or not in_val.any()
        assert ((train != IGNORE_INDEX) ^ (val != IGNORE_INDEX)).all()

    def test_rare_class_is_never_held_out(self):
        groups, mask = _parcel_grid()
        mask[groups == 10] = 1  # one parcel of class 1
        mask[(groups == 20) | (groups == 30)] = 2  # two parcels of class 2
        for seed in range(6):
            train, val = spatial_split(mask, block_px=8, val_fraction=0.3, seed=seed, groups=groups)
            assert (train == 1).sum() == 64 and (val == 1).sum() == 0
            assert (train == 2).sum() >= 64  # at most one of the two goes to validation

    def test_unlabeled_pixels_stay_ignored(self):
        groups, mask = _parcel_grid()
        mask[groups <= 8] = IGNORE_INDEX
        train, val = spatial_split(mask, block_px=16, val_fraction=0.2, seed=0, groups=groups)
        assert ((train == IGNORE_INDEX) & (val == IGNORE_INDEX))[groups <= 8].all()

    def test_too_few_blocks(self):
        mask = np.zeros((16, 16), dtype=np.uint8)
        with pytest.raises(GeolabelError, match="Too few labeled blocks"):
            spatial_split(mask, block_px=16, val_fraction=0.2, seed=0)


class TestCropSampler:
    def _sampler(self, balance: float) -> _CropSampler:
        groups, mask = _parcel_grid(n=8, size=8)
        mask[:] = 0  # 63 parcels of class 0
        mask[groups == 1] = 1  # one parcel of class 1
        image = np.zeros((2, 64, 64), dtype=np.float32)
        return _CropSampler(image, mask, 16, 2, seed=0, balance=balance, groups=groups)

    @pytest.mark.parametrize(
        ("balance", "share"), [(0.0, 1 / 64), (0.5, 1 / (1 + np.sqrt(63))), (1.0, 0.5)]
    )
    def test_class_draws_follow_parcel_counts(self, balance, share):
        sampler = self._sampler(balance)
        assert sampler.p[1] == pytest.approx(share)

    def test_crops_are_in_bounds_and_augmented(self):
        sampler = self._sampler(1.0)
        xs, ys, ws, gs = sampler.batch(32)
        assert xs.shape == (32, 2, 16, 16) and ys.shape == ws.shape == gs.shape == (32, 16, 16)
        # Parcel ordinals travel with the labels through flips and turns.
        assert ((gs > 0) == (ys != IGNORE_INDEX)).all()
        assert (ys == 1).any()  # the rare parcel is seen
        assert (ws == 1).all()  # parcels of one size: nothing is capped

    def test_a_big_parcel_weighs_as_much_as_its_cap(self):
        groups, mask = _parcel_grid(n=8, size=8)
        mask[:] = 0
        groups[:32, :32] = 1  # one 32 x 32 "campus" (class 1) among 8 x 8 "houses"
        mask[:32, :32] = 1
        mask[groups == 64] = IGNORE_INDEX  # an unlabeled house
        image = np.zeros((2, 64, 64), dtype=np.float32)
        sampler = _CropSampler(image, mask, 16, 2, seed=0, groups=groups, parcel_cap=2.0)
        assert sampler.cap == 2 * 64  # two median (8 x 8) parcels
        g = groups[24:40, 24:40]  # a crop with 64 campus px, houses of 16-64 px, one unlabeled
        w = sampler._parcel_weights(g, mask[24:40, 24:40])
        assert (w[g == 1] == 1).all()  # 64 campus px: under the cap
        _, ys, ws, _ = sampler.batch(64)
        capped = [k for k in range(64) if (ys[k] == 1).sum() > sampler.cap]
        assert capped  # crops centred on the campus hold more than the cap
        for k in capped:
            assert ws[k][ys[k] == 1].sum() == pytest.approx(sampler.cap)
            assert (ws[k][ys[k] == 0] == 1).all()
        off = _CropSampler(image, mask, 16, 2, seed=0, groups=groups, parcel_cap=0.0)
        assert (off.batch(8)[2] == 1).all()

    def test_weighted_loss_is_cross_entropy_with_unit_pixel_weights(self):
        gen = torch.Generator().manual_seed(0)
        logits = torch.randn(2, 3, 4, 4, generator=gen)
        y = torch.randint(0, 3, (2, 4, 4), generator=gen)
        y[0, 0, 0] = IGNORE_INDEX
        cw = torch.tensor([1.0, 2.0, 0.5])
        ref = torch.nn.CrossEntropyLoss(weight=cw, ignore_index=IGNORE_INDEX)(logits, y)
        got = _weighted_loss(logits, y, torch.ones(2, 4, 4), cw)
        assert float(got) == pytest.approx(float(ref), rel=1e-6)
        # Halving every pixel weight changes nothing; zeroing one sample leaves the other.
        assert float(_weighted_loss(logits, y, torch.full((2, 4, 4), 0.5), cw)) == pytest.approx(
            float(ref), rel=1e-6
        )
        only = torch.ones(2, 4, 4)
        only[1] = 0
        ref0 = torch.nn.CrossEntropyLoss(weight=cw, ignore_index=IGNORE_INDEX)(logits[:1], y[:1])
        assert float(_weighted_loss(logits, y, only, cw)) == pytest.approx(float(ref0), rel=1e-6)

    def test_parcel_loss_scores_each_parcels_mean_probability(self):
        gen = torch.Generator().manual_seed(1)
        logits = torch.randn(2, 3, 4, 4, generator=gen)
        # Crop 0: parcel 5 (class 2) on 12 pixels, parcel 7 (class 0) on 4; crop 1: parcel 5
        # again (a separate example: another crop) on 2 pixels, the rest no parcel.
        groups = torch.zeros(2, 4, 4, dtype=torch.long)
        groups[0, :3], groups[0, 3] = 5, 7
        groups[1, 0, :2] = 5
        y = torch.full((2, 4, 4), IGNORE_INDEX, dtype=torch.long)
        y[0, :3], y[0, 3], y[1, 0, :2] = 2, 0, 2
        cw = torch.tensor([1.0, 3.0, 0.5])
        p = logits.softmax(1)
        examples = [
            (p[0, :, :3].mean((1, 2))[2], 0.5),
            (p[0, :, 3].mean(1)[0], 1.0),
            (p[1, :, 0, :2].mean(1)[2], 0.5),
        ]
        ref = sum(-float(q.log()) * w for q, w in examples) / sum(w for _, w in examples)
        got = _parcel_loss(logits, y, groups, cw)
        assert float(got) == pytest.approx(ref, rel=1e-5)
        # Each parcel is one example whatever its size: no weight by pixels.
        assert float(got) != pytest.approx(
            float(_weighted_loss(logits, y, torch.ones(2, 4, 4), cw))
        )
        # No parcel in the batch: zero, and still differentiable.
        none = _parcel_loss(logits.requires_grad_(), y, torch.zeros_like(groups), cw)
        assert float(none.detach()) == 0.0 and none.requires_grad

    def test_no_labels(self):
        mask = np.full((32, 32), IGNORE_INDEX, dtype=np.uint8)
        with pytest.raises(GeolabelError, match="No labeled training pixels"):
            _CropSampler(np.zeros((1, 32, 32), np.float32), mask, 16, 2, seed=0)

    def test_class_weights(self):
        w = _class_weights(np.array([0.75, 0.25, 0.0]), 0.5)
        assert w[2] == 0 and w[1] / w[0] == pytest.approx(np.sqrt(3))
        assert w[:2].mean() == pytest.approx(1.0)


class TestThreads:
    def test_gil_turns_and_blas_threads_are_restored(self):
        import sys

        from threadpoolctl import threadpool_info

        before = sys.getswitchinterval()
        blas = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
        with short_gil_turns(0.0003), one_blas_thread():
            assert sys.getswitchinterval() == pytest.approx(0.0003)
            assert all(i["num_threads"] == 1 for i in threadpool_info() if i["user_api"] == "blas")
        assert sys.getswitchinterval() == before
        assert [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"] == blas

    def test_explicit_count_is_used(self):
        assert default_threads(3) == 3
        assert 1 <= default_threads() <= available_cores()

    def test_tuner_keeps_the_faster_setting(self, monkeypatch):
        monkeypatch.setattr("geolabel.prelabel.threads.available_cores", lambda: 2)
        before = torch.get_num_threads()
        try:
            tuner = ThreadTuner(None, period=4, skip_first=True)
            tuner.before()  # the first call is not timed
            tuner.after(9.0, 16)
            tuner.before()
            assert torch.get_num_threads() == 1
            tuner.after(0.5, 16)
            tuner.before()
            assert torch.get_num_threads() == 2
            tuner.after(2.0, 16)  # two threads were slower per tile
            assert tuner.current == 1
            tuner.before()
            assert torch.get_num_threads() == 1
            tuner.after(0.5, 16)
            tuner.before()
            tuner.after(0.5, 16)  # end of the round
            tuner.before()  # a new round probes again
            assert torch.get_num_threads() == 1
            tuner.after(1.0, 16)
            tuner.before()
            tuner.after(0.2, 16)  # now two threads win
            assert tuner.current == 2
        finally:
            torch.set_num_threads(before)

    def test_explicit_count_is_not_tuned(self):
        before = torch.get_num_threads()
        try:
            tuner = ThreadTuner(1, period=2)
            for seconds in (9.0, 0.1, 9.0):
                tuner.before()
                assert torch.get_num_threads() == 1
                tuner.after(seconds)
        finally:
            torch.set_num_threads(before)


class TestTrainConfig:
    def test_bad_settings_are_listed(self):
        with pytest.raises(GeolabelError, match=r"2\^encoder_depth \(16\), got 100.*class_balance"):
            TrainConfig(tile_size=100, class_balance=2.0)
        with pytest.raises(GeolabelError, match=r"ema_decay must be in \[0, 1\), got 1.0"):
            TrainConfig(ema_decay=1.0)
        with pytest.raises(GeolabelError, match=r"parcel_cap must be non-negative \(0: off\)"):
            TrainConfig(parcel_cap=-1.0)
        with pytest.raises(GeolabelError, match="parcel_cap"):
            TrainConfig(parcel_cap=float("nan"))
        with pytest.raises(GeolabelError, match=r"parcel_loss must be in \[0, 1\], got 1.5"):
            TrainConfig(parcel_loss=1.5)


class TestTrainSegmentation:
    @pytest.mark.parametrize(
        ("ema_decay", "parcels", "parcel_loss"),
        [
            (0.0, False, 0.5),
            (0.9, False, 0.5),
            (0.9, True, 0.0),
            (0.9, True, 0.5),
            (0.9, True, 1.0),
        ],
    )
    def test_learns_two_textures(self, ema_decay, parcels, parcel_loss):
        # Left half bright, right half dark: a tiny model separates them in a few steps, with
        # the pixel loss, the parcel loss (labels on a grid of parcels), or both.
        rng = np.random.default_rng(0)
        image = rng.normal(0, 0.1, (2, 64, 64)).astype(np.float32)
        image[:, :, :32] += 1.0
        groups, mask = _parcel_grid(8, 8)
        mask[:, 32:] = 1
        if not parcels:
            groups[:] = 0
        config = TrainConfig(
            model=ModelConfig(encoder_depth=3, decoder_channels=(16, 8, 8)),
            tile_size=32,
            batch_size=4,
            steps_per_epoch=6,
            max_epochs=3,
            min_epochs=1,
            block_px=16,
            lr=1e-2,
            num_threads=1,
            ema_decay=ema_decay,
            parcel_loss=parcel_loss,
        )
        seen = []
        result = train_segmentation(
            image,
            mask,
            n_classes=2,
            config=config,
            groups=groups,
            progress=lambda e, r: seen.append(e),
        )
        assert seen == list(range(1, len(result.history) + 1))
        probs = predict_array(result.model, image, tile=32, overlap=8)
        assert probs.shape == (2, 64, 64)
        assert np.allclose(probs.sum(0), 1.0, atol=1e-4)
        assert (probs.argmax(0) == mask).mean() > 0.9
        assert result.val_scores.pixel_accuracy > 0.9
