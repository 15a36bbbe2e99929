"""Scores of a segmentation model: IoU, mIoU, pixel accuracy; uncertainty; calibration.

Uncertainty of a probability vector ``p`` (classes sorted so ``p₁ ≥ p₂ ≥ …``):
confidence ``p₁``, margin ``p₁ − p₂`` and entropy ``−Σ p log p`` (nats).

Calibration: the expected calibration error over ``B`` equal-width confidence bins is
``ECE = Σ_b (n_b / n) · |acc_b − conf_b|`` (Guo et al., 2017, "On Calibration of Modern Neural
Networks"). Temperature scaling divides log-probabilities by ``T`` and renormalises; ``T`` is fit
by minimising the negative log-likelihood of held-out labels over a bounded 1-D search.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar

from geolabel.prelabel.masks import IGNORE_INDEX

__all__ = [
    "SegmentationScores",
    "apply_temperature",
    "confusion_matrix",
    "expected_calibration_error",
    "fit_temperature",
    "reliability_table",
    "segmentation_scores",
    "uncertainty",
]

_EPS = 1e-12


def confusion_matrix(truth: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Pixel confusion matrix (rows truth, columns prediction), ignoring ``IGNORE_INDEX``."""
    t = truth.ravel()
    keep = t != IGNORE_INDEX
    idx = t[keep].astype(np.int64) * n_classes + pred.ravel()[keep].astype(np.int64)
    return np.bincount(idx, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


@dataclass(frozen=True, slots=True)
class SegmentationScores:
    """Pixel scores of a segmentation.

    Attributes:
        iou: Per-class IoU; None for classes absent from the truth.
        miou: Mean IoU over the classes present in the truth.
        pixel_accuracy: Share of labeled pixels predicted right.
    """

    iou: tuple[float | None, ...]
    miou: float
    pixel_accuracy: float


def segmentation_scores(cm: np.ndarray) -> SegmentationScores:
    """Per-class IoU (None for classes absent from the truth), mIoU and pixel accuracy."""
    tp = np.diag(cm).astype(np.float64)
    union = cm.sum(0) + cm.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(cm.sum(1) > 0, tp / union, np.nan)
    total = cm.sum()
    return SegmentationScores(
        iou=tuple(None if np.isnan(v) else float(v) for v in iou),
        miou=float(np.nanmean(iou)) if np.isfinite(iou).any() else 0.0,
        pixel_accuracy=float(tp.sum() / total) if total else 0.0,
    )


def uncertainty(probas: np.ndarray) -> dict[str, np.ndarray]:
    """Confidence, margin and entropy of each row of an ``(n, classes)`` probability array."""
    p = np.clip(probas, _EPS, 1.0)
    top2 = -np.partition(-p, 1, axis=1)[:, :2]
    return {
        "confidence": top2[:, 0],
        "margin": top2[:, 0] - top2[:, 1],
        "entropy": -(p * np.log(p)).sum(1),
    }


def apply_temperature(probas: np.ndarray, temperature: float) -> np.ndarray:
    """Rescale probabilities by a temperature (``T > 1`` softens, ``T < 1`` sharpens)."""
    logp = np.log(np.clip(probas, _EPS, 1.0)) / temperature
    logp -= logp.max(axis=1, keepdims=True)
    e = np.exp(logp)
    return e / e.sum(axis=1, keepdims=True)


def fit_temperature(probas: np.ndarray, labels: np.ndarray) -> float:
    """Temperature minimising the NLL of ``labels`` (class indices) under ``probas``."""
    if len(labels) == 0:
        return 1.0
    rows = np.arange(len(labels))

    def nll(log_t: float) -> float:
        q = apply_temperature(probas, float(np.exp(log_t)))
        return float(-np.log(np.clip(q[rows, labels], _EPS, 1.0)).mean())

    res = minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return float(np.exp(res.x))


def reliability_table(
    probas: np.ndarray, labels: np.ndarray, n_bins: int = 10
) -> list[dict[str, float]]:
    """Per confidence bin: count, mean confidence and accuracy (a reliability diagram's data)."""
    conf = probas.max(1)
    correct = probas.argmax(1) == labels
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1]), 0, n_bins - 1)
    rows = []
    for b in range(n_bins):
        sel = which == b
        if sel.any():
            rows.append(
                {
                    "lo": float(edges[b]),
                    "hi": float(edges[b + 1]),
                    "n": int(sel.sum()),
                    "confidence": float(conf[sel].mean()),
                    "accuracy": float(correct[sel].mean()),
                }
            )
    return rows


def expected_calibration_error(probas: np.ndarray, labels: np.ndarray, n_bins: int = 10) -> float:
    """ECE over ``n_bins`` equal-width confidence bins (0 for empty input)."""
    n = len(labels)
    if n == 0:
        return 0.0
    return float(
        sum(
            r["n"] / n * abs(r["accuracy"] - r["confidence"])
            for r in reliability_table(probas, labels, n_bins)
        )
    )
