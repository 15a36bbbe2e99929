r"""Weighted majority vote: votes count by annotator weight, from gold accuracy or given.

.. math:: \hat y_i = \arg\max_c \sum_{n:\,i_n = i} w_{a_n} [\ell_n = c]

Weights from gold use the log-odds that are optimal when errors spread evenly over the other
classes (the one-coin model): with annotator :math:`a`'s smoothed gold accuracy
:math:`p_a = (\text{right}_a + 1)/(\text{answered}_a + 2)`,

.. math:: w_a = \max\Big(0,\ \log\frac{(K - 1)\,p_a}{1 - p_a}\Big),

so a random guesser (:math:`p_a = 1/K`) gets weight 0 and cannot sway anything, and an
annotator without gold answers gets the weight of :math:`p_a = 1/2`. Given weights are used as
they are. Ties go to the class listed first in ``classes_``; gold items are clamped.

Example:
    >>> import pandas as pd
    >>> votes = pd.DataFrame({"item": ["a", "a", "a"], "annotator": ["w1", "w2", "w3"],
    ...                       "label": ["park", "water", "water"]})
    >>> wmv = WeightedMajorityVote(weights={"w1": 3.0, "w2": 1.0, "w3": 1.0})
    >>> wmv.fit_predict(votes).to_dict()
    {'a': 'park'}
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Literal, Self

import numpy as np
import pandas as pd

from geolabel.crowd.base import (
    AnnotationsInput,
    BaseAggregator,
    GoldInput,
    check_number,
    clamp_gold,
    encode_annotations,
    encode_gold,
)
from geolabel.crowd.majority_vote import shares, vote_counts
from geolabel.errors import AggregationError

__all__ = ["WeightedMajorityVote", "gold_accuracy_weights"]


def gold_accuracy_weights(right: np.ndarray, answered: np.ndarray, n_classes: int) -> np.ndarray:
    """Return the log-odds weights of the module docstring from gold counts.

    Args:
        right: Gold answers each annotator got right.
        answered: Gold answers each annotator gave.
        n_classes: :math:`K`.

    Returns:
        Non-negative weights, one per annotator.
    """
    accuracy = (right + 1.0) / (answered + 2.0)
    return np.maximum(0.0, np.log((n_classes - 1) * accuracy / (1.0 - accuracy)))


class WeightedMajorityVote(BaseAggregator):
    """Majority vote weighted per annotator (weights given, or from gold accuracy).

    Args:
        weights: Annotator -> weight (non-negative). ``None`` derives weights from the gold
            passed to :meth:`fit`.
        default_weight: Weight of annotators missing from ``weights``; ``None`` refuses them.
        classes: The taxonomy's classes; ``None`` uses the sorted labels seen.
        on_unknown: ``"reject"`` or ``"map"`` (with ``label_map``).
        label_map: Old label -> class.

    Attributes:
        labels_: Decided label per item.
        probas_: Weighted vote shares, item x class.
        weights_: Weight used for each annotator.
        skills_: Gold accuracy per annotator (smoothed), when weights came from gold.
    """

    weights_: pd.Series
    skills_: pd.Series

    def __init__(
        self,
        weights: Mapping[Hashable, float] | pd.Series | None = None,
        *,
        default_weight: float | None = None,
        classes: Sequence[Hashable] | None = None,
        on_unknown: Literal["reject", "map"] = "reject",
        label_map: Mapping[Hashable, Hashable] | None = None,
    ) -> None:
        self.weights = weights
        self.default_weight = default_weight
        self.classes = classes
        self.on_unknown = on_unknown
        self.label_map = label_map

    def fit(self, annotations: AnnotationsInput, gold: GoldInput = None) -> Self:
        """Weigh and count votes per item.

        Args:
            annotations: Columns ``item``, ``annotator``, ``label`` (optional ``created_at``).
            gold: Known answers: the source of the weights when ``weights`` is None, and
                clamped on gold items.

        Returns:
            self.

        Raises:
            ColumnError: Missing/misnamed columns or blank cells.
            LabelError: Labels outside ``classes``.
            AggregationError: Empty input, a single annotator, no weights and no gold
                answers, annotators without a weight, or negative weights.
        """
        who = type(self).__name__
        if self.default_weight is not None:
            check_number(who, "default_weight", self.default_weight, low=0)
        encoded = encode_annotations(
            annotations,
            classes=self.classes,
            on_unknown=self.on_unknown,
            label_map=self.label_map,
            min_annotators=2,
            who=who,
            stacklevel=3,
        )
        gold_codes = encode_gold(gold, encoded)
        if self.weights is None:
            if gold_codes is None or gold_codes.item.size == 0:
                raise AggregationError(
                    f"{who} needs weights: pass weights={{annotator: weight}}, or gold answers "
                    "to fit(annotations, gold) for items the annotators labelled (none of the "
                    "gold items given was annotated)."
                )
            truth = np.full(encoded.n_items, -1, dtype=np.int64)
            truth[gold_codes.item] = gold_codes.label
            vote_truth = truth[encoded.item]
            on_gold = vote_truth >= 0
            right = np.bincount(
                encoded.annotator[on_gold],
                weights=(encoded.label[on_gold] == vote_truth[on_gold]).astype(np.float64),
                minlength=encoded.n_annotators,
            )
            answered = np.bincount(encoded.annotator[on_gold], minlength=encoded.n_annotators)
            weight = gold_accuracy_weights(right, answered, encoded.n_classes)
            self.skills_ = pd.Series(
                (right + 1.0) / (answered + 2.0),
                index=encoded.annotators.rename("annotator"),
                name="skill",
            )
        else:
            given = pd.Series(self.weights, dtype=np.float64)
            weight_series = given.reindex(encoded.annotators)
            missing = weight_series.isna().to_numpy()
            if missing.any():
                if self.default_weight is None:
                    names = encoded.annotators[missing].tolist()
                    raise AggregationError(
                        f"{who}: {len(names)} annotator(s) have no weight: "
                        f"{', '.join(map(repr, names[:5]))}{' ...' if len(names) > 5 else ''}; "
                        "add them to weights or pass default_weight=."
                    )
                weight_series[missing] = float(self.default_weight)
            weight = weight_series.to_numpy(np.float64)
            if not np.isfinite(weight).all() or (weight < 0).any():
                raise AggregationError(f"{who}: weights must be finite and non-negative.")
        counts = vote_counts(
            encoded.item,
            encoded.label,
            encoded.n_items,
            encoded.n_classes,
            weights=weight[encoded.annotator],
        )
        probas = shares(counts)
        clamp_gold(probas, gold_codes)
        self._set_result(encoded, probas)
        self.weights_ = pd.Series(weight, index=self.annotators_, name="weight")
        return self

    def fit_predict(self, annotations: AnnotationsInput, gold: GoldInput = None) -> pd.Series:
        """Fit and return ``labels_``.

        Args:
            annotations: As for :meth:`fit`.
            gold: As for :meth:`fit`.

        Returns:
            The decided label per item.
        """
        return self.fit(annotations, gold).labels_

    def fit_predict_proba(
        self, annotations: AnnotationsInput, gold: GoldInput = None
    ) -> pd.DataFrame:
        """Fit and return ``probas_``.

        Args:
            annotations: As for :meth:`fit`.
            gold: As for :meth:`fit`.

        Returns:
            Weighted vote shares, item x class.
        """
        return self.fit(annotations, gold).probas_
