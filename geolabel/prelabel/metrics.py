"""Scores of a segmentation model: IoU, mIoU, pixel accuracy; uncertainty; calibration.

Uncertainty of a probability vector ``p`` (classes sorted so ``p₁ ≥ p₂ ≥ …``):
confidence ``p₁``, margin ``p₁ − p₂`` and entropy ``−Σ p log p`` (nats).

Calibration: the expected calibration error over ``B`` equal-width confidence bins is
``ECE = Σ_b (n_b / n) · |acc_b − conf_b|`` (Guo et al., 2017, "On Calibration of Modern Neural
Networks"). Temperature scaling divides log-probabilities by ``T`` and renormalises; ``T`` is fit
by minimising the negative log-likelihood of held-out labels over a bounded 1-D search.
:func:`calibrate` keeps a temperature only when it helps out of sample: the leave-one-out
negative log-likelihood (``T`` fit without item ``i``, scored on ``i``) must be below that of
the raw probabilities. Nothing is fit with fewer than ``min_items`` items, or when they are all
right (or all wrong): the likelihood then keeps growing as ``T`` goes to 0 (or infinity), and
the fit would only find the end of the search range.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar

from geolabel.prelabel.masks import IGNORE_INDEX

__all__ = [
    "Calibration",
    "SegmentationScores",
    "apply_temperature",
    "calibrate",
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


def _nll(probas: np.ndarray, labels: np.ndarray) -> float:
    rows = np.arange(len(labels))
    return float(-np.log(np.clip(probas[rows, labels], _EPS, 1.0)).mean()) if len(labels) else 0.0


@dataclass(frozen=True, slots=True)
class Calibration:
    """A calibration check of probabilities against held-out labels.

    Attributes:
        n: Items checked.
        temperature: Temperature to apply (1.0 when scaling did not help out of sample).
        fitted_temperature: Temperature fit on all items.
        applied: Whether ``temperature`` differs from 1 (scaling helped).
        ece_before: ECE of the raw probabilities.
        ece_after: ECE with ``temperature`` applied.
        nll_before: Mean negative log-likelihood of the raw probabilities.
        nll_loo: Leave-one-out NLL with a fitted temperature (what decides).
        accuracy: Share of items whose argmax is right.
        reliability_before: :func:`reliability_table` of the raw probabilities.
        reliability_after: The same with ``temperature`` applied.
        note: Why no temperature was kept, when none was.
    """

    n: int
    temperature: float
    fitted_temperature: float
    applied: bool
    ece_before: float
    ece_after: float
    nll_before: float
    nll_loo: float
    accuracy: float
    reliability_before: tuple[dict[str, float], ...]
    reliability_after: tuple[dict[str, float], ...]
    note: str = ""


def calibrate(
    probas: np.ndarray, labels: np.ndarray, *, n_bins: int = 10, min_items: int = 5
) -> Calibration:
    """Check calibration and keep a temperature only if it lowers the held-out NLL.

    Args:
        probas: ``(n, classes)`` probabilities.
        labels: ``(n,)`` class indices.
        n_bins: Confidence bins of the reliability tables and ECE.
        min_items: Fewer items than this: report only, fit nothing.

    Returns:
        The check.
    """
    labels = np.asarray(labels, dtype=np.int64)
    n = len(labels)
    nan = float("nan")
    if n == 0:
        return Calibration(0, 1.0, 1.0, False, nan, nan, nan, nan, nan, (), (), "no items")
    before = expected_calibration_error(probas, labels, n_bins)
    nll_before = _nll(probas, labels)
    accuracy = float((probas.argmax(1) == labels).mean())
    fitted, loo = 1.0, nan
    right = probas.argmax(1) == labels
    if n >= min_items and right.any() and not right.all():
        fitted = fit_temperature(probas, labels)
        losses = []
        for i in range(n):
            rest = np.arange(n) != i
            t = fit_temperature(probas[rest], labels[rest])
            losses.append(_nll(apply_temperature(probas[i : i + 1], t), labels[i : i + 1]))
        loo = float(np.mean(losses))
    applied = bool(np.isfinite(loo) and loo < nll_before)
    if n < min_items:
        note = f"fewer than {min_items} items"
    elif right.all() or not right.any():
        note = "all right" if right.all() else "all wrong"
    else:
        note = "" if applied else "did not lower the held-out NLL"
    temperature = fitted if applied else 1.0
    scaled = apply_temperature(probas, temperature) if applied else probas
    return Calibration(
        n=n,
        temperature=temperature,
        fitted_temperature=fitted,
        applied=applied,
        ece_before=before,
        ece_after=expected_calibration_error(scaled, labels, n_bins),
        nll_before=nll_before,
        nll_loo=loo,
        accuracy=accuracy,
        reliability_before=tuple(reliability_table(probas, labels, n_bins)),
        reliability_after=tuple(reliability_table(scaled, labels, n_bins)),
        note=note,
    )
