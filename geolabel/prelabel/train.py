"""Train a segmentation model on labeled parcels, with a spatial split and early stopping on mIoU.

The split is spatial, never by random pixels: the scene is cut into square blocks
(``block_px``), and whole blocks go to validation (about ``val_fraction`` of the labeled pixels,
drawn with the seed), so neighbouring pixels of one parcel never sit on both sides. Training
crops are centred on labeled training pixels, drawn so that every class is seen about equally
often (rare classes are oversampled), flipped and rotated by multiples of 90°; the loss is
cross-entropy with class weights ``1 / sqrt(frequency)`` and ``ignore_index`` for unlabeled
pixels. After each epoch the model is scored on the validation blocks (per-class IoU, mIoU, pixel
accuracy); training stops when mIoU has not improved for ``patience`` epochs and the best epoch's
weights are kept.

Threads: torch runs on ``num_threads`` (default: every core, i.e. 2 here) for the model, while
crops are cut in the same thread from an in-memory array (cheap slicing), so data loading never
competes with the model for cores.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from geolabel.errors import GeolabelError
from geolabel.prelabel.masks import IGNORE_INDEX
from geolabel.prelabel.metrics import SegmentationScores, confusion_matrix, segmentation_scores
from geolabel.prelabel.model import ModelConfig, build_model

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
        tile_size: Side of training crops in pixels (a multiple of 32).
        batch_size: Crops per step.
        steps_per_epoch: Optimiser steps per epoch.
        max_epochs: Upper bound on epochs.
        patience: Epochs without validation mIoU improvement before stopping.
        lr: AdamW learning rate (cosine-annealed over ``max_epochs``).
        weight_decay: AdamW weight decay.
        val_fraction: Share of labeled pixels held out, by whole blocks.
        block_px: Side of the spatial blocks of the split.
        seed: Seed of every random draw (crops, split, initial weights).
        num_threads: Torch threads; ``None`` uses every core.
    """

    model: ModelConfig = field(default_factory=ModelConfig)
    tile_size: int = 256
    batch_size: int = 8
    steps_per_epoch: int = 12
    max_epochs: int = 12
    patience: int = 4
    lr: float = 2e-3
    weight_decay: float = 1e-4
    val_fraction: float = 0.2
    block_px: int = 256
    seed: int = 0
    num_threads: int | None = None


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
    mask: np.ndarray, *, block_px: int, val_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split a label mask into training and validation masks by whole square blocks.

    Blocks are shuffled with the seed and taken into validation until they hold
    ``val_fraction`` of the labeled pixels; a block whose classes are all already plentiful in
    training is preferred, so validation sees several classes.

    Returns:
        (train_mask, val_mask): copies of ``mask`` with the other side set to ``IGNORE_INDEX``.
    """
    cols = mask.shape[1]
    by, bx = np.indices(mask.shape)
    block = (by // block_px) * ((cols + block_px - 1) // block_px) + bx // block_px
    labeled = mask != IGNORE_INDEX
    counts = np.bincount(block[labeled], minlength=block.max() + 1)
    rng = np.random.default_rng([seed, 11])
    order = rng.permutation(np.flatnonzero(counts))
    target = val_fraction * labeled.sum()
    val_blocks: list[int] = []
    taken = 0
    for b in order:
        if taken >= target:
            break
        val_blocks.append(int(b))
        taken += counts[b]
    if len(val_blocks) == len(order):
        raise GeolabelError(
            "Too few labeled blocks for a spatial split: label parcels in more places, or lower"
            " block_px."
        )
    in_val = np.isin(block, val_blocks)
    train = mask.copy()
    val = mask.copy()
    train[in_val] = IGNORE_INDEX
    val[~in_val] = IGNORE_INDEX
    return train, val


class _CropSampler:
    """Draws training crops centred on labeled pixels, classes balanced."""

    def __init__(
        self, image: np.ndarray, mask: np.ndarray, tile: int, n_classes: int, seed: int
    ) -> None:
        self.image, self.mask, self.tile = image, mask, tile
        self.rng = np.random.default_rng([seed, 5])
        flat = mask.ravel()
        self.by_class = [np.flatnonzero(flat == c) for c in range(n_classes)]
        self.present = [c for c in range(n_classes) if len(self.by_class[c])]
        if not self.present:
            raise GeolabelError("No labeled training pixels: label some parcels first.")

    def batch(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        _, rows, cols = self.image.shape
        t = self.tile
        xs = np.empty((size, self.image.shape[0], t, t), dtype=np.float32)
        ys = np.empty((size, t, t), dtype=np.int64)
        for k in range(size):
            c = self.present[int(self.rng.integers(len(self.present)))]
            pix = self.by_class[c][int(self.rng.integers(len(self.by_class[c])))]
            r, q = divmod(int(pix), cols)
            r0 = int(np.clip(r - t // 2 + self.rng.integers(-t // 4, t // 4 + 1), 0, rows - t))
            c0 = int(np.clip(q - t // 2 + self.rng.integers(-t // 4, t // 4 + 1), 0, cols - t))
            x = self.image[:, r0 : r0 + t, c0 : c0 + t]
            y = self.mask[r0 : r0 + t, c0 : c0 + t]
            if self.rng.random() < 0.5:
                x, y = x[:, :, ::-1], y[:, ::-1]
            if self.rng.random() < 0.5:
                x, y = x[:, ::-1, :], y[::-1, :]
            turns = int(self.rng.integers(4))
            x, y = np.rot90(x, turns, axes=(1, 2)), np.rot90(y, turns)
            xs[k] = x
            ys[k] = y
        return xs, ys


def _class_weights(mask: np.ndarray, n_classes: int) -> torch.Tensor:
    counts = np.bincount(mask[mask != IGNORE_INDEX].ravel(), minlength=n_classes).astype(np.float64)
    freq = counts / max(counts.sum(), 1.0)
    w = np.where(counts > 0, 1.0 / np.sqrt(np.maximum(freq, 1e-6)), 0.0)
    w = w / w[counts > 0].mean()
    return torch.tensor(w, dtype=torch.float32)


def predict_array(
    model: nn.Module,
    image: np.ndarray,
    *,
    tile: int = 256,
    overlap: int = 32,
    batch_size: int = 8,
    temperature: float = 1.0,
) -> np.ndarray:
    """Class probabilities of every pixel of an in-memory (normalised) image.

    Tiles overlap by ``overlap`` pixels; overlapping logits are blended with a window that
    down-weights tile edges (where a convolution sees least context).

    Returns:
        ``(classes, H, W)`` float32 probabilities.
    """
    _, rows, cols = image.shape
    stride = tile - overlap
    r_starts = sorted({*range(0, max(rows - tile, 0) + 1, stride), max(rows - tile, 0)})
    c_starts = sorted({*range(0, max(cols - tile, 0) + 1, stride), max(cols - tile, 0)})
    ramp = np.minimum(np.arange(tile) + 1, np.arange(tile)[::-1] + 1).astype(np.float32)
    window = np.minimum(np.minimum.outer(ramp, ramp), overlap or 1) / (overlap or 1)
    acc: np.ndarray | None = None
    weight = np.zeros((rows, cols), dtype=np.float32)
    windows = [(r, c) for r in r_starts for c in c_starts]
    model.eval()
    with torch.inference_mode():
        for k in range(0, len(windows), batch_size):
            chunk = windows[k : k + batch_size]
            x = np.stack([image[:, r : r + tile, c : c + tile] for r, c in chunk])
            logits = model(torch.from_numpy(np.ascontiguousarray(x)))
            probs = torch.softmax(logits / temperature, dim=1).numpy()
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
    progress: Callable[[int, dict[str, float]], None] | None = None,
) -> TrainResult:
    """Train a segmentation model on a normalised image and a class-index mask.

    Args:
        image: ``(bands, H, W)`` float32, already normalised.
        mask: ``(H, W)`` class indices, ``IGNORE_INDEX`` where unknown.
        n_classes: Number of classes (mask values below it).
        config: Training settings.
        progress: Called after each epoch with the epoch number and its metrics.

    Returns:
        The best model (by validation mIoU) and the training history.
    """
    config = config or TrainConfig()
    if config.tile_size % 32 or config.tile_size > min(image.shape[1:]):
        raise GeolabelError(
            f"tile_size {config.tile_size} must be a multiple of 32 and fit in the scene"
            f" ({image.shape[2]} × {image.shape[1]} px)."
        )
    threads = config.num_threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    torch.manual_seed(config.seed)
    train_mask, val_mask = spatial_split(
        mask, block_px=config.block_px, val_fraction=config.val_fraction, seed=config.seed
    )
    model = build_model(config.model, image.shape[0], n_classes)
    model = model.to(memory_format=torch.channels_last)
    sampler = _CropSampler(image, train_mask, config.tile_size, n_classes, config.seed)
    loss_fn = nn.CrossEntropyLoss(
        weight=_class_weights(train_mask, n_classes), ignore_index=IGNORE_INDEX
    )
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    total = config.max_epochs * config.steps_per_epoch
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=config.lr, total_steps=total, pct_start=0.15
    )
    history: list[dict[str, float]] = []
    best_miou, best_epoch, best_state = -1.0, 0, None
    best_scores = SegmentationScores((), 0.0, 0.0)
    since_best = 0
    for epoch in range(1, config.max_epochs + 1):
        model.train()
        losses = []
        for _ in range(config.steps_per_epoch):
            xs, ys = sampler.batch(config.batch_size)
            x = torch.from_numpy(xs).to(memory_format=torch.channels_last)
            loss = loss_fn(model(x), torch.from_numpy(ys))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
        probs = predict_array(model, image, tile=config.tile_size, batch_size=config.batch_size)
        cm = confusion_matrix(val_mask, probs.argmax(0), n_classes)
        scores = segmentation_scores(cm)
        row = {
            "epoch": float(epoch),
            "loss": float(np.mean(losses)),
            "val_miou": scores.miou,
            "val_pixel_accuracy": scores.pixel_accuracy,
        }
        history.append(row)
        if progress is not None:
            progress(epoch, row)
        if scores.miou > best_miou + 1e-4:
            best_miou, best_epoch, since_best = scores.miou, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
            best_scores = scores
        else:
            since_best += 1
            if since_best >= config.patience:
                break
    assert best_state is not None
    model.load_state_dict(best_state)
    model.eval()
    return TrainResult(model, history, best_epoch, best_scores, train_mask, val_mask)
