"""Small array operations shared by the raster modules."""

from __future__ import annotations

import numpy as np

__all__ = ["argmax_max"]


def argmax_max(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index (uint8; ties go to the lower class) and value of the maximum over axis 0.

    The maximum is a contiguous reduction; the index is then found by comparing each class
    plane with it, from the last class to the first, so the lowest tying class wins. Same
    result as ``argmax(axis=0)`` and ``max(axis=0)`` on a ``(classes, rows, width)`` array,
    several times faster. At most 256 classes; all-NaN pixels get index 0 and NaN.

    Args:
        probs: ``(classes, ...)`` array.

    Returns:
        The index (uint8) and the maximum, each of shape ``probs.shape[1:]``.
    """
    best = probs.max(axis=0)
    index = np.zeros(best.shape, dtype=np.uint8)
    for k in range(probs.shape[0] - 1, 0, -1):
        np.copyto(index, np.uint8(k), where=probs[k] == best)
    np.copyto(index, np.uint8(0), where=probs[0] == best)
    return index, best
