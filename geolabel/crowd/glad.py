r"""GLAD: annotator ability times item difficulty, fitted by EM with a vectorised M-step.

Model (Whitehill et al., 2009)
    Annotator :math:`a` has an ability :math:`\alpha_a \in \mathbb R` and item :math:`i` an
    inverse difficulty :math:`\beta_i = e^{b_i} > 0`. The vote is right with probability
    :math:`\sigma(\alpha_a \beta_i)` (logistic sigmoid), and otherwise one of the :math:`K - 1`
    other classes uniformly:

    .. math:: P(\ell_n = k \mid z_i = c) = \sigma(x_n)^{[k = c]}
              \left(\frac{1 - \sigma(x_n)}{K - 1}\right)^{[k \ne c]},
              \qquad x_n = \alpha_{a_n} e^{b_{i_n}}.

    A good annotator on an easy item (large :math:`x`) is almost always right; anyone on a
    hopeless item (:math:`\beta \to 0`) guesses. Gaussian priors :math:`\alpha \sim N(\mu_\alpha,
    1)`, :math:`b \sim N(\mu_b, 1)` keep the parameters finite (the same parameterisation and
    priors as crowd-kit's ``GLAD``, so results are comparable).

EM
    * **E-step**: with :math:`u_n = \log\sigma(-x_n) - \log(K-1)` and
      :math:`v_n = \log\sigma(x_n) - u_n`, :math:`L_{ic} = \log\pi_c + \sum_{n\in i} u_n +
      \sum_{n \in i} v_n [\ell_n = c]` (two ``bincount`` calls), row-max shifted, normalised;
      gold clamped; a model pre-label can replace the class prior.
    * **M-step**: maximise
      :math:`Q = \sum_n [p_n \log\sigma(x_n) + (1 - p_n)\log\sigma(-x_n)] - \tfrac12\|\alpha -
      \mu_\alpha\|^2 - \tfrac12\|b - \mu_b\|^2` over :math:`(\alpha, b)`, where
      :math:`p_n = T_{i_n \ell_n}` is the posterior that vote :math:`n` is right. Its gradient
      is :math:`\partial Q/\partial x_n = p_n - \sigma(x_n)`, so
      :math:`\partial Q/\partial\alpha_a = \sum_{n\in a}(p_n - \sigma(x_n)) e^{b_{i_n}} -
      (\alpha_a - \mu_\alpha)` and :math:`\partial Q/\partial b_i = \sum_{n \in i}(p_n -
      \sigma(x_n)) x_n - (b_i - \mu_b)`. Given :math:`b`, :math:`Q` splits into one concave
      term per ability; given :math:`\alpha`, into one term per item; so the M-step takes
      block-coordinate Newton (Fisher-scoring) sweeps, every parameter of a block at once with
      ``bincount``, and keeps a parameter's step only where its own term of :math:`Q` does not
      fall (a generalised EM step: at most ``m_step_max_iter`` sweeps from the previous
      point). One ``exp`` per vote and sweep serves both :math:`\log(1 + e^x)` and
      :math:`\sigma(x)`. The class prior is re-estimated from the posteriors.
    * Stop when the loss fell by less than ``tol`` per vote in a round (``tol=0`` runs all
      ``n_iter`` rounds).

Fitted ``skills_`` are the abilities :math:`\alpha_a`; ``difficulties_`` are
:math:`1/\beta_i = e^{-b_i}` (larger is harder). Tie-break: the class listed first in
``classes_``.

Reference: J. Whitehill, P. Ruvolo, T. Wu, J. Bergsma and J. Movellan, "Whose Vote Should Count
More: Optimal Integration of Labels from Labelers of Unknown Expertise", NeurIPS 2009.

Example:
    >>> import pandas as pd
    >>> votes = pd.DataFrame({
    ...     "item": ["a", "a", "a", "b", "b", "b"],
    ...     "annotator": ["w1", "w2", "w3", "w1", "w2", "w3"],
    ...     "label": ["park", "park", "water", "water", "water", "water"],
    ... })
    >>> GLAD().fit(votes).labels_.to_dict()
    {'a': 'park', 'b': 'water'}
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from functools import partial
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
    check_number,
    clamp_gold,
    class_prior,
    loss_converged,
    normalize_posteriors,
)
from geolabel.crowd.majority_vote import shares, vote_counts

__all__ = ["GLAD"]


class GLAD(EMAggregator):
    r"""GLAD (ability x difficulty) with gold clamping and optional model priors.

    Args:
        n_iter: Most EM rounds.
        tol: Stop when the loss (per vote) fell by less than this in a round (0: run all).
        m_step_max_iter: Most Newton sweeps per M-step.
        alpha_prior_mean: Prior mean :math:`\mu_\alpha` of the abilities.
        beta_prior_mean: Prior mean :math:`\mu_b` of the log inverse difficulties.
        smoothing: Pseudo-count added to class counts for the class prior.
        prior_weight: Exponent on a model's pre-label probabilities (1 = calibrated).
        classes: The taxonomy's classes; ``None`` uses the sorted labels seen.
        on_unknown: ``"reject"`` or ``"map"`` (with ``label_map``).
        label_map: Old label -> class.

    Attributes:
        labels_: Decided label per item.
        probas_: Posterior class probabilities, item x class.
        priors_: Class prior.
        skills_: Ability :math:`\alpha_a` per annotator.
        difficulties_: Difficulty :math:`e^{-b_i}` per item (larger is harder).
        loss_history_: Loss after each E-step.
    """

    skills_: pd.Series
    difficulties_: pd.Series

    def __init__(
        self,
        n_iter: int = 100,
        tol: float = 1e-5,
        *,
        m_step_max_iter: int = 5,
        alpha_prior_mean: float = 1.0,
        beta_prior_mean: float = 1.0,
        smoothing: float = 0.1,
        prior_weight: float = 1.0,
        classes: Sequence[Hashable] | None = None,
        on_unknown: Literal["reject", "map"] = "reject",
        label_map: Mapping[Hashable, Hashable] | None = None,
    ) -> None:
        self.n_iter = n_iter
        self.tol = tol
        self.m_step_max_iter = m_step_max_iter
        self.alpha_prior_mean = alpha_prior_mean
        self.beta_prior_mean = beta_prior_mean
        self.smoothing = smoothing
        self.prior_weight = prior_weight
        self.classes = classes
        self.on_unknown = on_unknown
        self.label_map = label_map

    @staticmethod
    def _e_step(
        encoded: EncodedAnnotations,
        alpha: np.ndarray,
        b: np.ndarray,
        log_prior: np.ndarray,
        item_prior: ItemPrior | None,
        prior_weight: float,
        gold: GoldCodes | None,
    ) -> tuple[np.ndarray, float]:
        """Return posteriors ``(K, n_items)`` and the log-likelihood of the votes.

        Args:
            encoded: The votes.
            alpha: ``(A,)`` abilities.
            b: ``(n_items,)`` log inverse difficulties.
            log_prior: ``(K,)`` log class prior.
            item_prior: Model priors of some items, or None.
            prior_weight: Exponent on the model priors.
            gold: Gold items to clamp, or None.
        """
        k = encoded.n_classes
        x = alpha[encoded.annotator] * np.exp(b)[encoded.item]
        softplus, _ = GLAD._vote_terms(x)
        wrong = -softplus - np.log(k - 1)  # log sigma(-x) - log(K - 1)
        right_bonus = x + np.log(k - 1)  # log sigma(x) - wrong, as log sigma(x) = x - softplus
        base = np.bincount(encoded.item, weights=wrong, minlength=encoded.n_items)
        log_joint = vote_counts(encoded.item, encoded.label, encoded.n_items, k, right_bonus)
        log_joint += base
        add_log_priors(log_joint, log_prior, item_prior, prior_weight)
        log_lik = normalize_posteriors(log_joint, gold)
        return log_joint, log_lik

    @staticmethod
    def _vote_terms(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r"""Return :math:`\log(1 + e^{x})` (softplus) and :math:`\sigma(x)`, sharing one ``exp``.

        With :math:`t = e^{-|x|}`: softplus :math:`= \max(x, 0) + \log(1 + t)` and
        :math:`\sigma(x) = 1/(1 + t)` for :math:`x \ge 0`, :math:`t/(1 + t)` otherwise; both are
        exact and never overflow.
        """
        t = np.exp(-np.abs(x))
        softplus = np.maximum(x, 0.0) + np.log1p(t)
        sigma = np.where(x >= 0, 1.0, t) / (1.0 + t)
        return softplus, sigma

    @staticmethod
    def _block_q(
        x: np.ndarray, p_right: np.ndarray, groups: np.ndarray, n_groups: int
    ) -> np.ndarray:
        r"""Return the votes' part of :math:`Q` summed per group (annotator or item).

        Per vote, :math:`p\log\sigma(x) + (1-p)\log\sigma(-x) = p x - \log(1 + e^x)`.
        """
        softplus, _ = GLAD._vote_terms(x)
        return np.bincount(groups, weights=p_right * x - softplus, minlength=n_groups)

    @staticmethod
    def _alpha_q(
        exp_b: np.ndarray, p_right: np.ndarray, ann: np.ndarray, n_ann: int, alpha: np.ndarray
    ) -> np.ndarray:
        """Return the votes' part of :math:`Q` per annotator, for abilities ``alpha``."""
        return GLAD._block_q(alpha[ann] * exp_b, p_right, ann, n_ann)

    @staticmethod
    def _b_q(
        alpha_v: np.ndarray, p_right: np.ndarray, item: np.ndarray, n_items: int, b: np.ndarray
    ) -> np.ndarray:
        """Return the votes' part of :math:`Q` per item, for log inverse difficulties ``b``."""
        return GLAD._block_q(alpha_v * np.exp(b)[item], p_right, item, n_items)

    def _m_step(
        self, encoded: EncodedAnnotations, probas: np.ndarray, alpha: np.ndarray, b: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        r"""Raise :math:`Q` by block-coordinate Newton sweeps; return new ``(alpha, b)``.

        Given :math:`b`, :math:`Q` is a sum of independent concave terms, one per ability
        :math:`\alpha_a`, with gradient :math:`\sum_{n \in a} (p_n - \sigma_n) e^{b_{i_n}} -
        (\alpha_a - \mu_\alpha)` and curvature :math:`-\sum_{n\in a} \sigma_n (1 - \sigma_n)
        e^{2 b_{i_n}} - 1`; given :math:`\alpha`, one term per item :math:`b_i`, with gradient
        :math:`\sum_{n \in i} (p_n - \sigma_n) x_n - (b_i - \mu_b)` and Fisher curvature
        :math:`-\sum_{n \in i}\sigma_n(1 - \sigma_n) x_n^2 - 1`. Each sweep takes one Newton
        (Fisher-scoring) step per parameter, all at once with ``bincount``, clipped to
        :math:`\pm 1`; a parameter whose own term of :math:`Q` would fall takes half the step,
        and none if that still falls. So :math:`Q` never decreases (a generalised EM step).
        Sweeps stop after ``m_step_max_iter`` or when no step exceeds ``1e-6``.
        """
        p_right = probas[encoded.label, encoded.item]
        ann, item = encoded.annotator, encoded.item
        n_ann, n_items = encoded.n_annotators, encoded.n_items
        mu_a, mu_b = float(self.alpha_prior_mean), float(self.beta_prior_mean)
        for _ in range(int(self.m_step_max_iter)):
            # Abilities, given the difficulties.
            exp_b = np.exp(b)[item]
            x = alpha[ann] * exp_b
            _, sigma = self._vote_terms(x)
            grad = np.bincount(ann, weights=(p_right - sigma) * exp_b, minlength=n_ann) - (
                alpha - mu_a
            )
            curv = np.bincount(ann, weights=sigma * (1.0 - sigma) * exp_b**2, minlength=n_ann)
            step_a = np.clip(grad / (curv + 1.0), -1.0, 1.0)
            alpha_new = self._accept(
                alpha, step_a, mu_a, partial(self._alpha_q, exp_b, p_right, ann, n_ann)
            )
            # Difficulties, given the new abilities.
            alpha_v = alpha_new[ann]
            x = alpha_v * exp_b
            _, sigma = self._vote_terms(x)
            grad = np.bincount(item, weights=(p_right - sigma) * x, minlength=n_items) - (b - mu_b)
            curv = np.bincount(item, weights=sigma * (1.0 - sigma) * x**2, minlength=n_items)
            step_b = np.clip(grad / (curv + 1.0), -1.0, 1.0)
            b_new = self._accept(
                b, step_b, mu_b, partial(self._b_q, alpha_v, p_right, item, n_items)
            )
            moved = max(float(np.abs(alpha_new - alpha).max()), float(np.abs(b_new - b).max()))
            alpha, b = alpha_new, b_new
            if moved < 1e-6:
                break
        return alpha, b

    @staticmethod
    def _accept(
        value: np.ndarray,
        step: np.ndarray,
        mean: float,
        block_q: Callable[[np.ndarray], np.ndarray],
    ) -> np.ndarray:
        """Apply ``step`` per parameter where its own term of :math:`Q` does not fall.

        Where the full step would lower the parameter's term (votes plus its Gaussian prior),
        half the step is tried; where that also lowers it, the parameter stays.
        """

        def q(v: np.ndarray) -> np.ndarray:
            return block_q(v) - 0.5 * (v - mean) ** 2

        before = q(value)
        new = value + step
        worse = q(new) < before
        if worse.any():
            half = value + 0.5 * step
            new = np.where(worse, half, new)
            still = worse & (q(new) < before)
            new = np.where(still, value, new)
        return new

    def fit(
        self,
        annotations: AnnotationsInput,
        gold: GoldInput = None,
        item_prior: pd.DataFrame | None = None,
    ) -> Self:
        """Fit abilities, difficulties and posteriors by EM.

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
        who = type(self).__name__
        check_number(who, "m_step_max_iter", self.m_step_max_iter, low=1, integer=True)
        check_number(who, "alpha_prior_mean", self.alpha_prior_mean)
        check_number(who, "beta_prior_mean", self.beta_prior_mean)
        encoded, gold_codes, prior = self._prepare(annotations, gold, item_prior)
        smoothing = float(self.smoothing)
        alpha_mean, b_mean = float(self.alpha_prior_mean), float(self.beta_prior_mean)
        n_votes = len(encoded)
        probas = shares(
            vote_counts(encoded.item, encoded.label, encoded.n_items, encoded.n_classes)
        )
        clamp_gold(probas, gold_codes)
        alpha = np.full(encoded.n_annotators, alpha_mean)
        b = np.full(encoded.n_items, b_mean)
        alpha, b = self._m_step(encoded, probas, alpha, b)
        priors = class_prior(probas, smoothing)
        history: list[float] = []
        converged = False
        for _ in range(int(self.n_iter)):
            log_prior = np.log(priors)
            probas, log_lik = self._e_step(
                encoded, alpha, b, log_prior, prior, float(self.prior_weight), gold_codes
            )
            penalty = -0.5 * float(np.sum((alpha - alpha_mean) ** 2) + np.sum((b - b_mean) ** 2))
            penalty += smoothing * float(log_prior.sum())
            history.append(-(log_lik + penalty) / n_votes)
            alpha, b = self._m_step(encoded, probas, alpha, b)
            priors = class_prior(probas, smoothing)
            if loss_converged(history, float(self.tol)):
                converged = True
                break
        self._set_em_state(encoded, probas, priors, history, converged)
        self.skills_ = pd.Series(alpha, index=self.annotators_, name="skill")
        self.difficulties_ = pd.Series(np.exp(-b), index=self.probas_.index, name="difficulty")
        return self
