r"""Majority vote: each item gets the label most of its annotators gave.

.. math:: \hat y_i = \arg\max_c \sum_{n:\,i_n = i} [\ell_n = c]

``probas_`` holds the vote shares. **Tie-break**: when two or more classes share the top
count, the class listed first in ``classes_`` wins — the first in sorted order when
``classes`` is not given, else the first in ``classes`` (deterministic, independent of the
row order). Gold items, when given, are clamped to their known answer.

Example:
    >>> import pandas as pd
    >>> votes = pd.DataFrame({"item": ["a", "a", "b", "b"], "annotator": ["w1", "w2", "w1", "w2"],
    ...                       "label": ["park", "park", "water", "park"]})
    >>> MajorityVote().fit_predict(votes).to_dict()
    {'a': 'park', 'b': 'park'}
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Mapping, Sequence
from typing import Literal, Self

import numpy as np
import pandas as pd

from geolabel.crowd.base import (
    AnnotationsInput,
    BaseAggregator,
    clamp_gold,
    encode_annotations,
    encode_gold,
)
from geolabel.errors import AggregationWarning

__all__ = ["MajorityVote", "vote_counts"]


def vote_counts(
    item: np.ndarray,
    label: np.ndarray,
    n_items: int,
    n_classes: int,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """Return the ``(n_classes, n_items)`` matrix of (weighted) votes per class and item.

    Class-major, like the posteriors of the EM models: reductions over the few classes of an
    item then run over contiguous rows.

    Args:
        item: Item code per vote.
        label: Class code per vote.
        n_items: Number of items.
        n_classes: Number of classes.
        weights: Weight per vote; ``None`` counts each vote once.

    Returns:
        Float64 counts.
    """
    flat = label.astype(np.int64) * n_items + item
    counts = np.bincount(flat, weights=weights, minlength=n_items * n_classes)
    return counts.astype(np.float64, copy=False).reshape(n_classes, n_items)


def shares(counts: np.ndarray) -> np.ndarray:
    """Normalise ``(K, n)`` vote counts to shares per item (items without weight: uniform)."""
    total = counts.sum(axis=0)
    out = np.divide(counts, total, out=np.empty_like(counts), where=total > 0)
    out[:, total <= 0] = 1.0 / counts.shape[0]
    return out


class MajorityVote(BaseAggregator):
    """Majority vote with a documented deterministic tie-break (see the module docstring).

    Args:
        classes: The taxonomy's classes (column order of ``probas_`` and tie-break order);
            ``None`` uses the sorted labels seen.
        on_unknown: ``"reject"`` refuses labels outside ``classes``; ``"map"`` maps them with
            ``label_map`` first.
        label_map: Old label -> class, used with ``on_unknown="map"``.

    Attributes:
        labels_: Decided label per item (``agg_label``).
        probas_: Vote shares, item x class.
        counts_: Vote counts, item x class (a DataFrame like ``probas_``).
    """

    counts_: pd.DataFrame

    def __init__(
        self,
        classes: Sequence[Hashable] | None = None,
        *,
        on_unknown: Literal["reject", "map"] = "reject",
        label_map: Mapping[Hashable, Hashable] | None = None,
    ) -> None:
        self.classes = classes
        self.on_unknown = on_unknown
        self.label_map = label_map

    def fit(
        self,
        annotations: AnnotationsInput,
        gold: pd.Series | pd.DataFrame | Mapping[Hashable, Hashable] | None = None,
    ) -> Self:
        """Count votes per item.

        Args:
            annotations: Columns ``item``, ``annotator``, ``label`` (optional ``created_at``).
            gold: Known answers (``item -> label``); gold items get their known answer.

        Returns:
            self.

        Raises:
            ColumnError: Missing/misnamed columns or blank cells.
            LabelError: Labels outside ``classes``.
            AggregationError: Empty input.

        Warns:
            AggregationWarning: Duplicate votes dropped, or a single annotator (whose labels
                are then returned as they are).
        """
        encoded = encode_annotations(
            annotations,
            classes=self.classes,
            on_unknown=self.on_unknown,
            label_map=self.label_map,
            who=type(self).__name__,
            stacklevel=3,
        )
        if encoded.n_annotators == 1:
            warnings.warn(
                f"All votes come from one annotator ({encoded.annotators[0]!r}): the majority "
                "vote is that annotator's labels, with no check by anyone else.",
                AggregationWarning,
                stacklevel=2,
            )
        counts = vote_counts(encoded.item, encoded.label, encoded.n_items, encoded.n_classes)
        probas = shares(counts)
        clamp_gold(probas, encode_gold(gold, encoded))
        self._set_result(encoded, probas)
        self.counts_ = pd.DataFrame(
            counts.T, index=self.probas_.index, columns=self.probas_.columns
        )
        return self

    def fit_predict(
        self,
        annotations: AnnotationsInput,
        gold: pd.Series | pd.DataFrame | Mapping[Hashable, Hashable] | None = None,
    ) -> pd.Series:
        """Fit and return ``labels_``.

        Args:
            annotations: As for :meth:`fit`.
            gold: As for :meth:`fit`.

        Returns:
            The decided label per item.
        """
        return self.fit(annotations, gold).labels_

    def fit_predict_proba(
        self,
        annotations: AnnotationsInput,
        gold: pd.Series | pd.DataFrame | Mapping[Hashable, Hashable] | None = None,
    ) -> pd.DataFrame:
        """Fit and return ``probas_``.

        Args:
            annotations: As for :meth:`fit`.
            gold: As for :meth:`fit`.

        Returns:
            Vote shares, item x class.
        """
        return self.fit(annotations, gold).probas_
