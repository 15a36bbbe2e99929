r"""One-coin Dawid-Skene: one accuracy per annotator, errors spread evenly over other classes.

Model
    Annotator :math:`a` answers the true class with probability :math:`s_a` (the skill) and
    each of the :math:`K - 1` other classes with probability :math:`(1 - s_a)/(K - 1)`. It is
    Dawid-Skene with confusion matrices constrained to
    :math:`\theta^a = s_a I + \frac{1 - s_a}{K - 1}(1 - I)`: :math:`A` parameters instead of
    :math:`AK(K-1)`, so it needs fewer votes per annotator and cannot overfit a small crowd.

EM, vectorised
    With :math:`u_n = \log\frac{1 - s_{a_n}}{K - 1}` and
    :math:`v_n = \log s_{a_n} - u_n` per vote, the E-step is
    :math:`L_{ic} = \log\pi_c + \sum_{n \in i} u_n + \sum_{n \in i} v_n [\ell_n = c]`:
    two ``numpy.bincount`` calls over the votes, in log space, row-max shifted. The M-step is
    :math:`s_a = (\sum_{n \in a} T_{i_n \ell_n} + \alpha) / (|a| + 2\alpha)` (a Beta smoothing
    :math:`\alpha`), where :math:`T` are the posteriors. Gold items are clamped in every
    E-step; a model pre-label can replace the class prior per item. Stopping as in
    :class:`~geolabel.crowd.dawid_skene.DawidSkene`.

Tie-break: equal posteriors go to the class listed first in ``classes_``.

Example:
    >>> import pandas as pd
    >>> votes = pd.DataFrame({
    ...     "item": ["a", "a", "a", "b", "b", "b"],
    ...     "annotator": ["w1", "w2", "w3", "w1", "w2", "w3"],
    ...     "label": ["park", "park", "water", "water", "water", "water"],
    ... })
    >>> OneCoinDawidSkene().fit(votes).labels_.to_dict()
    {'a': 'park', 'b': 'water'}
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Literal, Self

import numpy as np
import pandas as pd

from geolabel.crowd.base import (
    AnnotationsInput,
    EMAggregator,
    EncodedAnnotations,
    GoldCodes,
    GoldInput,
    ItemPrior,
    add_log_priors,
    clamp_gold,
    class_prior,
    loss_converged,
    normalize_posteriors,
)
from geolabel.crowd.majority_vote import shares, vote_counts

__all__ = ["OneCoinDawidSkene"]

_EPS = 1e-12


class OneCoinDawidSkene(EMAggregator):
    """One-coin Dawid-Skene (one skill per annotator) with gold clamping and model priors.

    Args:
        n_iter: Most EM rounds.
        tol: Stop when the loss (per vote) fell by less than this in a round (0: run all).
        smoothing: Beta pseudo-count added to correct and wrong counts, and to class counts.
        prior_weight: Exponent on a model's pre-label probabilities (1 = calibrated).
        classes: The taxonomy's classes; ``None`` uses the sorted labels seen.
        on_unknown: ``"reject"`` or ``"map"`` (with ``label_map``) for labels outside
            ``classes``.
        label_map: Old label -> class.

    Attributes:
        labels_: Decided label per item.
        probas_: Posterior class probabilities, item x class.
        priors_: Class prior.
        skills_: Probability that each annotator answers the true class.
        loss_history_: Loss after each E-step (non-increasing).
    """

    skills_: pd.Series

    def __init__(
        self,
        n_iter: int = 100,
        tol: float = 1e-5,
        *,
        smoothing: float = 0.1,
        prior_weight: float = 1.0,
        classes: Sequence[Hashable] | None = None,
        on_unknown: Literal["reject", "map"] = "reject",
        label_map: Mapping[Hashable, Hashable] | None = None,
    ) -> None:
        self.n_iter = n_iter
        self.tol = tol
        self.smoothing = smoothing
        self.prior_weight = prior_weight
        self.classes = classes
        self.on_unknown = on_unknown
        self.label_map = label_map

    @staticmethod
    def _e_step(
        encoded: EncodedAnnotations,
        skills: np.ndarray,
        log_prior: np.ndarray,
        item_prior: ItemPrior | None,
        prior_weight: float,
        gold: GoldCodes | None,
    ) -> tuple[np.ndarray, float]:
        """Return posteriors ``(K, n_items)`` and the log-likelihood of the votes.

        Args:
            encoded: The votes.
            skills: ``(A,)`` skills :math:`s_a`.
            log_prior: ``(K,)`` log class prior.
            item_prior: Model priors of some items, or None.
            prior_weight: Exponent on the model priors.
            gold: Gold items to clamp, or None.
        """
        k = encoded.n_classes
        s = np.clip(skills, _EPS, 1.0 - _EPS)
        wrong = np.log((1.0 - s) / (k - 1))
        right_bonus = np.log(s) - wrong
        base = np.bincount(
            encoded.item, weights=wrong[encoded.annotator], minlength=encoded.n_items
        )
        log_joint = vote_counts(
            encoded.item, encoded.label, encoded.n_items, k, weights=right_bonus[encoded.annotator]
        )
        log_joint += base
        add_log_priors(log_joint, log_prior, item_prior, prior_weight)
        log_lik = normalize_posteriors(log_joint, gold)
        return log_joint, log_lik

    @staticmethod
    def _m_step(encoded: EncodedAnnotations, probas: np.ndarray, smoothing: float) -> np.ndarray:
        """Return the skills ``(A,)``: smoothed expected share of correct answers.

        Args:
            encoded: The votes.
            probas: ``(K, n_items)`` posteriors.
            smoothing: Beta pseudo-count.
        """
        correct = probas[encoded.label, encoded.item]
        hits = np.bincount(encoded.annotator, weights=correct, minlength=encoded.n_annotators)
        totals = np.bincount(encoded.annotator, minlength=encoded.n_annotators)
        return (hits + smoothing) / (totals + 2.0 * smoothing)

    def fit(
        self,
        annotations: AnnotationsInput,
        gold: GoldInput = None,
        item_prior: pd.DataFrame | None = None,
    ) -> Self:
        """Fit skills and posteriors by EM.

        Args:
            annotations: Columns ``item``, ``annotator``, ``label`` (optional ``created_at``).
            gold: Known answers (``item -> label``), clamped in every E-step.
            item_prior: Model pre-label probabilities, indexed by item, one column per class.

        Returns:
            self.

        Raises:
            ColumnError: Missing/misnamed columns, blank cells, bad gold or prior frames.
            LabelError: Labels outside ``classes``.
            AggregationError: Empty input, a single annotator, or a bad parameter.

        Warns:
            AggregationWarning: Duplicate votes dropped.
        """
        encoded, gold_codes, prior = self._prepare(annotations, gold, item_prior)
        smoothing = float(self.smoothing)
        n_votes = len(encoded)
        probas = shares(
            vote_counts(encoded.item, encoded.label, encoded.n_items, encoded.n_classes)
        )
        clamp_gold(probas, gold_codes)
        skills = self._m_step(encoded, probas, smoothing)
        priors = class_prior(probas, smoothing)
        history: list[float] = []
        converged = False
        for _ in range(int(self.n_iter)):
            log_prior = np.log(priors)
            probas, log_lik = self._e_step(
                encoded, skills, log_prior, prior, float(self.prior_weight), gold_codes
            )
            s = np.clip(skills, _EPS, 1.0 - _EPS)
            penalty = smoothing * float(np.log(s).sum() + np.log1p(-s).sum() + log_prior.sum())
            history.append(-(log_lik + penalty) / n_votes)
            skills = self._m_step(encoded, probas, smoothing)
            priors = class_prior(probas, smoothing)
            if loss_converged(history, float(self.tol)):
                converged = True
                break
        self._set_em_state(encoded, probas, priors, history, converged)
        self.skills_ = pd.Series(skills, index=self.annotators_, name="skill")
        return self
