"""Train a segmentation model on labeled parcels, with a spatial split and early stopping on mIoU.

The split is spatial, never by random pixels: the scene is cut into square blocks
(``block_px``); each labeled parcel belongs to the block that holds its centroid, and whole
blocks go to validation (about ``val_fraction`` of the labeled pixels, drawn with the seed), so
a parcel never sits on both sides, and no class gives up more than ``max_val_share`` of its
pixels (a class labeled on one parcel stays in training). Training crops are centred on labeled
parcels, classes drawn with square-root-tempered weights of their parcel counts (see
:class:`_CropSampler`: rare classes are oversampled, but a class of two parcels is not seen as
often as one of twenty), flipped and rotated by multiples of 90°; the loss is cross-entropy
with class weights ``frequency ** -0.5`` over the pixels of the crops as drawn, per-pixel
weights that let no parcel count for more than ``parcel_cap`` median parcels in a crop, and
unlabeled pixels ignored; half of the loss (``parcel_loss``) is instead the cross-entropy of
each labeled parcel's mean probability, one example per parcel. AdamW with a one-cycle learning
rate. After each epoch the model is scored on the validation blocks (per-class IoU, mIoU, pixel
accuracy); after ``min_epochs``, training stops when mIoU has not improved for ``patience``
epochs, and the best epoch's weights are kept. The weights scored and kept are an exponential
moving average of every step's (``ema_decay``), so that they do not swing with the last few
crops drawn.

Threads: crops are cut in the training thread from an in-memory array (cheap slicing), so data
loading never competes with the model for cores; torch's thread count is picked per epoch by
timing steps (:class:`~geolabel.prelabel.threads.ThreadTuner`, rounds of one epoch).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from geolabel.errors import GeolabelError
from geolabel.prelabel.masks import IGNORE_INDEX
from geolabel.prelabel.metrics import SegmentationScores, confusion_matrix, segmentation_scores
from geolabel.prelabel.model import ModelConfig, build_model
from geolabel.prelabel.threads import ThreadTuner
from geolabel.raster.mosaic import blend_window
from geolabel.raster.tiling import tile_offsets

__all__ = [
    "TrainConfig",
    "TrainResult",
    "downsample_image",
    "downsample_mask",
    "normalise",
    "predict_array",
    "spatial_split",
    "train_segmentation",
]


@dataclass(frozen=True, slots=True)
class TrainConfig:
    """How to train.

    Attributes:
        model: Architecture.
        tile_size: Side of training crops in pixels of the image trained on (a multiple of
            ``2 ** model.encoder_depth``). :func:`geolabel.prelabel.pipeline.train_project`
            takes it in scene pixels and divides it by the input scale: 256 scene px are
            64 px, 128 m, at the sample's 2 m.
        batch_size: Crops per step.
        steps_per_epoch: Optimiser steps per epoch.
        max_epochs: Upper bound on epochs.
        min_epochs: Epochs always run before early stopping may stop (the one-cycle learning
            rate is still high early on, and validation scores jump around).
        patience: Epochs without validation mIoU improvement before stopping.
        lr: Peak AdamW learning rate of the one-cycle schedule over ``max_epochs``.
        weight_decay: AdamW weight decay.
        class_balance: How evenly crops are spread over classes (0: as labeled parcels come,
            1: every class equally; see :class:`_CropSampler`).
        loss_balance: Class weights of the loss, ``frequency ** -loss_balance`` where
            ``frequency`` is each class's share of the labeled pixels of the crops as drawn
            (0: no weights).
        val_fraction: Share of labeled pixels held out, by whole blocks.
        max_val_share: Largest share of one class's pixels held out.
        block_px: Side of the spatial blocks of the split.
        seed: Seed of every random draw (crops, split, initial weights).
        num_threads: Torch threads; ``None`` picks them per epoch (see
            :mod:`geolabel.prelabel.threads`).
        ema_decay: Score and keep an exponential moving average of the weights (and batch-norm
            statistics), updated after every step with this decay, instead of the weights of
            the last step; 0 keeps the last step's. With a few hundred steps on a few dozen
            labeled parcels, the last step's weights swing with the last crops drawn.
        parcel_cap: Most a labeled parcel weighs in the loss of one crop, in median-size labeled
            parcels: a bigger parcel's pixels share that weight (0: every pixel weighs 1).
            Labels are burnt onto every pixel of a parcel, yet land use is a property of the
            parcel, and most of a school campus is lawn like a garden's: weighted by pixels,
            one campus outvoted fifty labeled houses on what lawn means, and the houses of a
            whole district were pre-labeled institutional (test parcel accuracy 0.47-0.52 over
            two training seeds; 0.89-0.91 without the campus's label; 0.69-0.84 with it and
            the cap).
        parcel_loss: Share of the loss that scores parcels instead of pixels: the
            cross-entropy of each labeled parcel's mean probability over its pixels in the
            crop (the rule pre-labels follow, :func:`geolabel.prelabel.predict.parcel_prelabels`),
            each parcel one example whatever its size. The rest is the per-pixel loss, which
            alone asks every lawn pixel of a campus to say "institutional"; the parcel loss
            asks only that the campus as a whole does. On two random label sets of the sample
            (84 and 108 parcels, two training seeds each) test parcel accuracy went from
            0.76 and 0.67 (pixel loss only) to 0.88 and 0.88 with 0.5; 1 (parcels only) gave
            0.79 and 0.77. 0: pixels only.
    """

    model: ModelConfig = field(default_factory=ModelConfig)
    tile_size: int = 256
    batch_size: int = 16
    steps_per_epoch: int = 20
    max_epochs: int = 12
    min_epochs: int = 6
    patience: int = 4
    lr: float = 2e-3
    weight_decay: float = 1e-4
    class_balance: float = 0.5
    loss_balance: float = 0.5
    val_fraction: float = 0.2
    max_val_share: float = 0.5
    block_px: int = 256
    seed: int = 0
    num_threads: int | None = None
    ema_decay: float = 0.9
    parcel_cap: float = 2.0
    parcel_loss: float = 0.5

    def __post_init__(self) -> None:
        problems = []
        step = 2**self.model.encoder_depth
        if self.tile_size < step or self.tile_size % step:
            problems.append(
                f"tile_size must be a multiple of 2^encoder_depth ({step}), got {self.tile_size}"
            )
        for name in ("batch_size", "steps_per_epoch", "max_epochs", "patience", "block_px"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 0.0 <= self.class_balance <= 1.0:
            problems.append(f"class_balance must be in [0, 1], got {self.class_balance}")
        if not 0.0 < self.val_fraction < 1.0:
            problems.append(f"val_fraction must be in (0, 1), got {self.val_fraction}")
        if self.lr <= 0:
            problems.append(f"lr must be positive, got {self.lr}")
        if not 0.0 <= self.ema_decay < 1.0:
            problems.append(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if not 0.0 <= self.parcel_loss <= 1.0:
            problems.append(f"parcel_loss must be in [0, 1], got {self.parcel_loss}")
        if not self.parcel_cap >= 0.0:
            problems.append(f"parcel_cap must be non-negative (0: off), got {self.parcel_cap}")
        if self.num_threads is not None and self.num_threads < 1:
            problems.append(f"num_threads must be at least 1, got {self.num_threads}")
        if problems:
            raise GeolabelError("Bad training settings: " + "; ".join(problems) + ".")


@dataclass
class TrainResult:
    """A trained model and how training went."""

    model: nn.Module
    history: list[dict[str, float]]
    best_epoch: int
    val_scores: SegmentationScores
    train_mask: np.ndarray
    val_mask: np.ndarray


def normalise(image: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """``(image - mean) / std`` per band, as float32 (bands first)."""
    m = np.asarray(mean, dtype=np.float32)[:, None, None]
    s = np.asarray(std, dtype=np.float32)[:, None, None]
    return (image.astype(np.float32) - m) / s


def downsample_image(image: np.ndarray, factor: int) -> np.ndarray:
    """Average ``factor`` × ``factor`` pixel blocks (area resampling); edges are trimmed."""
    if factor == 1:
        return image
    b, rows, cols = image.shape
    r, c = rows // factor * factor, cols // factor * factor
    view = image[:, :r, :c].reshape(b, r // factor, factor, c // factor, factor)
    return view.mean(axis=(2, 4), dtype=np.float32)


def downsample_mask(mask: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour downsampling of a class mask: the centre pixel of each block.

    Masks are never averaged: a blend of class indices is not a class.
    """
    if factor == 1:
        return mask
    o = factor // 2
    rows, cols = mask.shape
    return mask[o : rows // factor * factor : factor, o : cols // factor * factor : factor].copy()


def spatial_split(
    mask: np.ndarray,
    *,
    block_px: int,
    val_fraction: float,
    seed: int,
    groups: np.ndarray | None = None,
    max_val_share: float = 0.5,
) -> tuple[np.ndarray, np.ndarray]:
    """Split a label mask into training and validation masks by whole square blocks.

    The grid is cut into ``block_px`` squares. With ``groups`` (parcel ordinals, 0 = none),
    every pixel of a group goes with the block that holds the group's labeled centroid, so a
    parcel never sits on both sides. Blocks are visited in an order shuffled with the seed and
    moved to validation until they hold ``val_fraction`` of the labeled pixels, skipping any
    block that would put more than ``max_val_share`` of a class's pixels in validation: every
    class keeps most of its examples for training (a class labeled on one parcel only is never
    held out).

    Args:
        mask: Class indices, ``IGNORE_INDEX`` where unknown.
        block_px: Side of the blocks.
        val_fraction: Share of labeled pixels to hold out.
        seed: Seed of the block order.
        groups: Optional ``int`` raster of pixel groups that must stay together.
        max_val_share: Largest share of a class's pixels that may go to validation.

    Returns:
        (train_mask, val_mask): copies of ``mask`` with the other side set to ``IGNORE_INDEX``.

    Raises:
        GeolabelError: No block can be held out.
    """
    cols = mask.shape[1]
    n_bx = (cols + block_px - 1) // block_px
    by, bx = np.indices(mask.shape)
    unit = (by // block_px) * n_bx + bx // block_px
    labeled = mask != IGNORE_INDEX
    if groups is not None:
        g = groups.ravel()
        sel = labeled.ravel() & (g > 0)
        n_g = int(g.max()) + 1 if g.size else 1
        cnt = np.bincount(g[sel], minlength=n_g).astype(np.float64)
        r_mean = np.bincount(g[sel], weights=by.ravel()[sel], minlength=n_g) / np.maximum(cnt, 1)
        c_mean = np.bincount(g[sel], weights=bx.ravel()[sel], minlength=n_g) / np.maximum(cnt, 1)
        home = (r_mean.astype(np.int64) // block_px) * n_bx + c_mean.astype(np.int64) // block_px
        inside = groups > 0
        unit = unit.copy()
        unit[inside] = home[groups[inside]]
    n_units = int(unit.max()) + 1
    n_classes = int(mask[labeled].max()) + 1 if labeled.any() else 1
    counts = np.bincount(
        unit[labeled] * n_classes + mask[labeled].astype(np.int64),
        minlength=n_units * n_classes,
    ).reshape(n_units, n_classes)
    total = counts.sum(0)
    cap = max_val_share * total
    rng = np.random.default_rng([seed, 11])
    order = rng.permutation(np.flatnonzero(counts.sum(1)))
    target = val_fraction * labeled.sum()
    val_units: list[int] = []
    in_val = np.zeros(n_classes, dtype=np.int64)
    for u in order:
        if in_val.sum() >= target:
            break
        after = in_val + counts[u]
        if (after > cap).any():
            continue
        val_units.append(int(u))
        in_val = after
    if not val_units:
        raise GeolabelError(
            "Too few labeled blocks for a spatial split: label parcels in more places, or lower"
            " block_px."
        )
    held = np.isin(unit, val_units)
    train = mask.copy()
    val = mask.copy()
    train[held] = IGNORE_INDEX
    val[~held] = IGNORE_INDEX
    return train, val


class _CropSampler:
    """Draws training crops centred on labeled examples, classes drawn with tempered weights.

    An example is a labeled parcel when parcel ids (``groups``) are given, else all labeled
    pixels of one class. Class ``c`` is drawn with probability proportional to
    ``n_c ** (1 - balance)``, where ``n_c`` counts its examples (parcels, not pixels: one big
    school is one example, not the worth of ten houses): ``balance`` 0 follows the examples,
    1 draws every class equally often, 0.5 (square root) sits between, so a class labeled on
    two parcels is seen often enough to be learned but not so often that everything looks
    like it. Then an example of the class, then a pixel of it, is drawn uniformly; the crop is
    centred near that pixel (jittered by up to a quarter crop), flipped and rotated by a
    multiple of 90°. Pixels outside every parcel (roads) are never centres but appear in most
    crops as context. Each crop comes with per-pixel loss weights: 1, except that a labeled
    parcel with more than ``parcel_cap`` median parcels' worth of pixels in the crop shares
    that much weight over its pixels.
    """

    def __init__(
        self,
        image: np.ndarray,
        mask: np.ndarray,
        tile: int,
        n_classes: int,
        seed: int,
        balance: float = 0.5,
        groups: np.ndarray | None = None,
        parcel_cap: float = 0.0,
    ) -> None:
        self.image, self.mask, self.tile = image, mask, tile
        self.rng = np.random.default_rng([seed, 5])
        self.groups = groups
        flat = mask.ravel()
        labeled = flat != IGNORE_INDEX
        by_parcel = groups is not None and bool((labeled & (groups.ravel() > 0)).any())
        if by_parcel:
            assert groups is not None
            unit = np.where(labeled & (groups.ravel() > 0), groups.ravel(), 0)
        else:
            unit = np.where(labeled, flat.astype(np.int64) + 1, 0)
        pix = np.flatnonzero(unit)
        if not len(pix):
            raise GeolabelError("No labeled training pixels: label some parcels first.")
        order = np.argsort(unit[pix], kind="stable")
        self.pixels = pix[order]
        ids, self.starts, self.sizes = np.unique(
            unit[self.pixels], return_index=True, return_counts=True
        )
        # The class of an example is that of its first pixel (a parcel has one label).
        unit_class = flat[self.pixels[self.starts]].astype(np.int64)
        self.units_of = [np.flatnonzero(unit_class == c) for c in range(n_classes)]
        counts = np.array([len(u) for u in self.units_of], dtype=np.float64)
        weights = np.where(counts > 0, counts ** (1.0 - balance), 0.0)
        self.p = weights / weights.sum()
        self.n_units = len(ids)
        # Pixel weight cap of a parcel in one crop: parcel_cap median-size labeled parcels.
        self.cap = float(parcel_cap * np.median(self.sizes)) if by_parcel else 0.0

    def batch(self, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``size`` crops: images, class masks, per-pixel loss weights and parcel ordinals.

        Loss weights: see ``cap``. Parcel ordinals of the labeled pixels; 0 elsewhere and
        when no parcel ids were given.
        """
        _, rows, cols = self.image.shape
        t = self.tile
        xs = np.empty((size, self.image.shape[0], t, t), dtype=np.float32)
        ys = np.empty((size, t, t), dtype=np.int64)
        ws = np.ones((size, t, t), dtype=np.float32)
        gs = np.zeros((size, t, t), dtype=np.int64)
        for k in range(size):
            c = int(self.rng.choice(len(self.p), p=self.p))
            u = int(self.units_of[c][int(self.rng.integers(len(self.units_of[c])))])
            pix = self.pixels[self.starts[u] + int(self.rng.integers(self.sizes[u]))]
            r, q = divmod(int(pix), cols)
            r0 = int(np.clip(r - t // 2 + self.rng.integers(-t // 4, t // 4 + 1), 0, rows - t))
            c0 = int(np.clip(q - t // 2 + self.rng.integers(-t // 4, t // 4 + 1), 0, cols - t))
            x = self.image[:, r0 : r0 + t, c0 : c0 + t]
            y = self.mask[r0 : r0 + t, c0 : c0 + t]
            w = None
            g = None if self.groups is None else self.groups[r0 : r0 + t, c0 : c0 + t]
            if self.cap > 0:
                assert g is not None
                w = self._parcel_weights(g, y)
            if self.rng.random() < 0.5:
                x, y = x[:, :, ::-1], y[:, ::-1]
                w = None if w is None else w[:, ::-1]
                g = None if g is None else g[:, ::-1]
            turns = int(self.rng.integers(4))
            xs[k] = np.rot90(x, turns, axes=(1, 2))
            ys[k] = np.rot90(y, turns)
            if w is not None:
                ws[k] = np.rot90(w, turns)
            if g is not None:
                gs[k] = np.where(ys[k] != IGNORE_INDEX, np.rot90(g, turns), 0)
        return xs, ys, ws, gs

    def _parcel_weights(self, g: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Pixel loss weights of one crop.

        1 per pixel, except a labeled parcel with more than ``cap`` pixels in the crop: its
        pixels share ``cap`` (a campus counts as much as a few houses, not a hundred).
        """
        labeled = (g > 0) & (y != IGNORE_INDEX)
        w = np.ones(g.shape, dtype=np.float32)
        if labeled.any():
            _, inverse, counts = np.unique(g[labeled], return_inverse=True, return_counts=True)
            w[labeled] = np.minimum(1.0, self.cap / counts)[inverse]
        return w

    def class_frequencies(self, n_classes: int, n_crops: int = 128) -> np.ndarray:
        """Share of each class among the labeled pixels of ``n_crops`` crops drawn aside.

        Drawn with a generator of its own, so training draws the same crops either way.
        """
        saved = self.rng
        self.rng = np.random.default_rng([int(saved.integers(2**31)), 7])
        try:
            _, ys, ws, _ = self.batch(n_crops)
        finally:
            self.rng = saved
        seen = ys != IGNORE_INDEX
        counts = np.bincount(ys[seen], weights=ws[seen], minlength=n_classes).astype(np.float64)
        return counts / max(counts.sum(), 1.0)


def _weighted_loss(
    logits: torch.Tensor, y: torch.Tensor, pixel_w: torch.Tensor, class_w: torch.Tensor
) -> torch.Tensor:
    """Cross-entropy weighted per class and per pixel.

    Normalised by the weights, as ``nn.CrossEntropyLoss(weight=...)`` with ``reduction="mean"``
    is; ignored pixels weigh 0.
    """
    seen = y != IGNORE_INDEX
    target = torch.where(seen, y, torch.zeros_like(y))
    nll = nn.functional.cross_entropy(logits, target, reduction="none")
    w = pixel_w * class_w[target] * seen
    return (nll * w).sum() / w.sum().clamp_min(1e-12)


def _parcel_loss(
    logits: torch.Tensor, y: torch.Tensor, groups: torch.Tensor, class_w: torch.Tensor
) -> torch.Tensor:
    """Cross-entropy of each labeled parcel's mean probability, the rule pre-labels follow.

    A parcel (its pixels in one crop) is one example, whatever its size, weighted by its
    class's weight; pixels without a parcel ordinal (``groups`` 0) take no part.
    """
    seen = groups > 0
    if not bool(seen.any()):
        return logits.sum() * 0.0
    n, k = logits.shape[:2]
    probs = logits.softmax(1).permute(0, 2, 3, 1)[seen]  # (pixels, classes)
    crop = torch.arange(n, device=groups.device)[:, None, None].expand_as(groups)[seen]
    key = crop * (int(groups.max()) + 1) + groups[seen]
    _, parcel = torch.unique(key, return_inverse=True)
    m = int(parcel.max()) + 1
    sums = torch.zeros(m, k, dtype=probs.dtype).index_add_(0, parcel, probs)
    mean = sums / torch.bincount(parcel, minlength=m)[:, None].to(probs.dtype)
    label = torch.zeros(m, dtype=torch.long).scatter_(0, parcel, y[seen])
    nll = -mean.gather(1, label[:, None])[:, 0].clamp_min(1e-8).log()
    w = class_w[label]
    return (nll * w).sum() / w.sum().clamp_min(1e-12)


def _class_weights(freq: np.ndarray, power: float) -> torch.Tensor:
    """Loss weights ``freq ** -power`` (mean 1 over the classes seen; 0 for unseen ones)."""
    seen = freq > 0
    w = np.where(seen, np.maximum(freq, 1e-6) ** -power, 0.0)
    w = w / w[seen].mean()
    return torch.tensor(w, dtype=torch.float32)


def predict_array(
    model: nn.Module,
    image: np.ndarray,
    *,
    tile: int = 256,
    overlap: int = 32,
    batch_size: int = 8,
) -> np.ndarray:
    """Class probabilities of every pixel of an in-memory (normalised) image.

    The same tiling and blending as a scene's prediction, on an array: tile offsets from
    :func:`geolabel.raster.tiling.tile_offsets` (edge tiles shifted inward), probabilities
    blended with :func:`geolabel.raster.mosaic.blend_window` (edges down-weighted over the
    overlap, which is capped at a quarter tile).

    Returns:
        ``(classes, H, W)`` float32 probabilities.
    """
    _, rows, cols = image.shape
    tile = min(tile, rows, cols)
    overlap = min(overlap, tile // 4)
    window = blend_window(tile, tile, overlap)
    windows = [
        (r, c) for r in tile_offsets(rows, tile, overlap) for c in tile_offsets(cols, tile, overlap)
    ]
    acc: np.ndarray | None = None
    weight = np.zeros((rows, cols), dtype=np.float32)
    model.eval()
    with torch.inference_mode():
        for k in range(0, len(windows), batch_size):
            chunk = windows[k : k + batch_size]
            x = np.stack([image[:, r : r + tile, c : c + tile] for r, c in chunk])
            x_t = torch.from_numpy(x).contiguous(memory_format=torch.channels_last)
            probs = torch.softmax(model(x_t), dim=1).numpy()
            if acc is None:
                acc = np.zeros((probs.shape[1], rows, cols), dtype=np.float32)
            for (r, c), p in zip(chunk, probs, strict=True):
                acc[:, r : r + tile, c : c + tile] += p * window
                weight[r : r + tile, c : c + tile] += window
    assert acc is not None
    return acc / weight


def train_segmentation(
    image: np.ndarray,
    mask: np.ndarray,
    *,
    n_classes: int,
    config: TrainConfig | None = None,
    groups: np.ndarray | None = None,
    progress: Callable[[int, dict[str, float]], None] | None = None,
) -> TrainResult:
    """Train a segmentation model on a normalised image and a class-index mask.

    Args:
        image: ``(bands, H, W)`` float32, already normalised.
        mask: ``(H, W)`` class indices, ``IGNORE_INDEX`` where unknown.
        n_classes: Number of classes (mask values below it).
        config: Training settings.
        groups: Parcel ordinals on the same grid, kept on one side of the split.
        progress: Called after each epoch with the epoch number and its metrics.

    Returns:
        The best model (by validation mIoU) and the training history.

    Raises:
        GeolabelError: Crops larger than the scene, no labeled pixels, or too few labeled
            places for a spatial split.
    """
    config = config or TrainConfig()
    if config.tile_size > min(image.shape[1:]):
        raise GeolabelError(
            f"tile_size {config.tile_size} does not fit in the scene"
            f" ({image.shape[2]} × {image.shape[1]} px at the model's resolution); use smaller"
            " crops."
        )
    tuner = ThreadTuner(config.num_threads, period=config.steps_per_epoch)
    torch.manual_seed(config.seed)
    train_mask, val_mask = spatial_split(
        mask,
        block_px=config.block_px,
        val_fraction=config.val_fraction,
        seed=config.seed,
        groups=groups,
        max_val_share=config.max_val_share,
    )
    model = build_model(config.model, image.shape[0], n_classes)
    model = model.to(memory_format=torch.channels_last)
    sampler = _CropSampler(
        image,
        train_mask,
        config.tile_size,
        n_classes,
        config.seed,
        config.class_balance,
        groups,
        config.parcel_cap,
    )
    class_weights = _class_weights(sampler.class_frequencies(n_classes), config.loss_balance)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    total = config.max_epochs * config.steps_per_epoch
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=config.lr, total_steps=total, pct_start=0.15
    )
    ema = (
        torch.optim.swa_utils.AveragedModel(
            model,
            multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(config.ema_decay),
            use_buffers=True,
        )
        if config.ema_decay > 0
        else None
    )
    scored: nn.Module = ema.module if ema is not None else model
    history: list[dict[str, float]] = []
    best_miou, best_epoch, best_state = -1.0, 0, None
    best_scores = SegmentationScores((), 0.0, 0.0)
    since_best = 0
    for epoch in range(1, config.max_epochs + 1):
        t_epoch = time.perf_counter()
        model.train()
        losses = []
        for _ in range(config.steps_per_epoch):
            xs, ys, ws, gs = sampler.batch(config.batch_size)
            tuner.before()
            t0 = time.perf_counter()
            x = torch.from_numpy(xs).to(memory_format=torch.channels_last)
            logits, y = model(x), torch.from_numpy(ys)
            loss = _weighted_loss(logits, y, torch.from_numpy(ws), class_weights)
            if config.parcel_loss > 0:
                parcel = _parcel_loss(logits, y, torch.from_numpy(gs), class_weights)
                loss = (1.0 - config.parcel_loss) * loss + config.parcel_loss * parcel
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if ema is not None:
                ema.update_parameters(model)
            losses.append(float(loss.detach()))
            tuner.after(time.perf_counter() - t0)
        probs = predict_array(scored, image, tile=config.tile_size, batch_size=config.batch_size)
        cm = confusion_matrix(val_mask, probs.argmax(0), n_classes)
        scores = segmentation_scores(cm)
        row = {
            "epoch": float(epoch),
            "loss": float(np.mean(losses)),
            "val_miou": scores.miou,
            "val_pixel_accuracy": scores.pixel_accuracy,
            "threads": float(tuner.current),
            "seconds": time.perf_counter() - t_epoch,
        }
        history.append(row)
        if progress is not None:
            progress(epoch, row)
        if scores.miou > best_miou + 1e-4:
            best_miou, best_epoch, since_best = scores.miou, epoch, 0
            best_state = copy.deepcopy(scored.state_dict())
            best_scores = scores
        else:
            since_best += 1
            if since_best >= config.patience and epoch >= config.min_epochs:
                break
    assert best_state is not None
    model.load_state_dict(best_state)
    model.eval()
    return TrainResult(model, history, best_epoch, best_scores, train_mask, val_mask)
