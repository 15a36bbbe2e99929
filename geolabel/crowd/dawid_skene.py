r"""Dawid-Skene: full per-annotator confusion matrices, fitted by EM in log space.

Model
    Item :math:`i` has a latent true class :math:`z_i` with prior :math:`\pi` (or a model's
    pre-label :math:`q_i`, see :func:`~geolabel.crowd.base.add_log_priors`). Annotator
    :math:`a` answers :math:`k` for an item of class :math:`c` with probability
    :math:`\theta^a_{ck}` (row :math:`c` of the annotator's confusion matrix), independently
    of the other annotators given :math:`z_i`.

EM, vectorised
    Votes are encoded once as a sparse item x response matrix :math:`V` (``scipy.sparse`` CSR),
    where response :math:`r = aK + k` is "annotator :math:`a` answered :math:`k`".

    * **E-step** (log space): :math:`L = V \log\Theta + \log\pi`, one multi-vector sparse
      product, where row :math:`aK + k` of the :math:`AK \times K` table :math:`\log\Theta`
      holds :math:`\log\theta^a_{ck}` for every true class :math:`c`. :math:`L` is turned
      class-major (:math:`K \times n_{items}`), so that the per-item reductions over the few
      classes run over contiguous rows; each item is shifted by its maximum before
      :math:`\exp` and normalised into posteriors :math:`T`; gold items are clamped to the
      one-hot of their truth.
    * **M-step**: expected counts :math:`N = V^\top T^\top` (the transposed product, on a CSC
      view of the same arrays), i.e. :math:`N^a_{ck}`; with Dirichlet smoothing :math:`\alpha`
      on every cell and :math:`\delta` (``diagonal_prior``) more on the diagonal,
      :math:`\theta^a_{ck} = (N^a_{ck} + \alpha + \delta[k = c]) / \sum_{k'} (N^a_{ck'} +
      \alpha + \delta[k' = c])` and :math:`\pi_c \propto \sum_i T_{ci} + \alpha`.

    No pandas in the loop: two sparse products, one ``exp`` and one ``log`` over
    :math:`K \times n_{items}` arrays per round. The loop works in float32 (the sparse
    products, the log-likelihoods, which after the shift lie in :math:`[-60, 0]` for typical
    votes, and the posteriors), which halves the memory traffic and doubles the speed of
    ``exp``; the log-likelihood is summed and the confusion matrices are normalised in float64.
    Memory is :math:`O(n_{votes})` for :math:`V` (8 bytes per vote) plus
    :math:`O(n_{items} K)` for the posteriors.

Start and stop
    EM starts from the majority-vote shares (gold clamped) and a first M-step. Each round
    records the loss (negative log-posterior per vote: votes given the parameters, plus the
    Dirichlet terms) in ``loss_history_``; EM never increases it (beyond float32 rounding,
    about :math:`10^{-8}` per vote). The loop stops when the loss
    fell by less than ``tol`` per vote in the last round (``tol=0`` runs all ``n_iter``
    rounds) — it keeps going while the estimates still improve, whatever the round count.

Tie-break: equal posteriors go to the class listed first in ``classes_``.

Reference: A. P. Dawid and A. M. Skene, "Maximum Likelihood Estimation of Observer Error-Rates
Using the EM Algorithm", *Applied Statistics* 28(1), 1979, 20-28.

Example:
    >>> import pandas as pd
    >>> votes = pd.DataFrame({
    ...     "item": ["a", "a", "a", "b", "b", "b"],
    ...     "annotator": ["w1", "w2", "w3", "w1", "w2", "w3"],
    ...     "label": ["park", "park", "water", "water", "water", "water"],
    ... })
    >>> ds = DawidSkene(n_iter=50).fit(votes)
    >>> ds.labels_.to_dict()
    {'a': 'park', 'b': 'water'}
    >>> ds.confusions_.shape  # annotators x true class x answered class
    (3, 2, 2)
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Literal, Self

import numpy as np
import pandas as pd
import scipy.sparse as sp

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

__all__ = ["DawidSkene", "response_matrix"]

_EPS = 1e-12


def response_matrix(encoded: EncodedAnnotations) -> sp.csr_array:
    """Return the sparse item x response matrix :math:`V` (response ``annotator * K + label``).

    Args:
        encoded: Annotations sorted by item (as :func:`encode_annotations` returns them).

    Returns:
        A float32 CSR array of shape ``(n_items, n_annotators * K)`` with a 1 per vote.
    """
    n_responses = encoded.n_annotators * encoded.n_classes
    index_dtype = np.int32 if n_responses < 2**31 and len(encoded) < 2**31 else np.int64
    indices = encoded.annotator.astype(index_dtype) * encoded.n_classes + encoded.label
    indptr = np.zeros(encoded.n_items + 1, dtype=index_dtype)
    np.cumsum(np.bincount(encoded.item, minlength=encoded.n_items), out=indptr[1:])
    data = np.ones(len(encoded), dtype=np.float32)
    return sp.csr_array((data, indices, indptr), shape=(encoded.n_items, n_responses))


class DawidSkene(EMAggregator):
    r"""Dawid-Skene with Dirichlet smoothing, gold clamping and optional model priors.

    Args:
        n_iter: Most EM rounds.
        tol: Stop when the loss (per vote) fell by less than this in a round (0: run all
            ``n_iter`` rounds).
        smoothing: Dirichlet pseudo-count added to every confusion cell and class count.
        diagonal_prior: Extra pseudo-count on the diagonal of every confusion matrix: a prior
            belief that annotators mostly answer the true class, which keeps annotators with
            few votes from being read as confused (0 for plain Dirichlet smoothing).
        prior_weight: Exponent on a model's pre-label probabilities (1 = calibrated).
        classes: The taxonomy's classes (column order, tie-break order); ``None`` uses the
            sorted labels seen.
        on_unknown: ``"reject"`` refuses labels outside ``classes``; ``"map"`` maps them with
            ``label_map`` first.
        label_map: Old label -> class, used with ``on_unknown="map"``.

    Attributes:
        labels_: Decided label per item (``agg_label``).
        probas_: Posterior class probabilities, item x class.
        priors_: Class prior :math:`\pi`.
        confusions_: ``(n_annotators, K, K)`` array, ``[a, true, answered]``; rows sum to 1.
        skills_: Each annotator's expected accuracy :math:`\sum_c \pi_c \theta^a_{cc}`.
        loss_history_: Loss after each E-step (non-increasing).
    """

    confusions_: np.ndarray
    skills_: pd.Series

    def __init__(
        self,
        n_iter: int = 100,
        tol: float = 1e-5,
        *,
        smoothing: float = 0.1,
        diagonal_prior: float = 1.0,
        prior_weight: float = 1.0,
        classes: Sequence[Hashable] | None = None,
        on_unknown: Literal["reject", "map"] = "reject",
        label_map: Mapping[Hashable, Hashable] | None = None,
    ) -> None:
        self.n_iter = n_iter
        self.tol = tol
        self.smoothing = smoothing
        self.diagonal_prior = diagonal_prior
        self.prior_weight = prior_weight
        self.classes = classes
        self.on_unknown = on_unknown
        self.label_map = label_map

    @staticmethod
    def _e_step(
        votes: sp.csr_array,
        log_table: np.ndarray,
        log_prior: np.ndarray,
        item_prior: ItemPrior | None,
        prior_weight: float,
        gold: GoldCodes | None,
    ) -> tuple[np.ndarray, float]:
        r"""Return the posteriors ``(K, n_items)`` and the log-likelihood of the votes.

        Args:
            votes: Item x response matrix :math:`V`.
            log_table: ``(A*K, K)`` table; row ``a*K + k``, column ``c`` holds
                :math:`\log\theta^a_{ck}`.
            log_prior: ``(K,)`` log class prior.
            item_prior: Model priors of some items, or None.
            prior_weight: Exponent on the model priors.
            gold: Gold items to clamp, or None.
        """
        # One multi-vector sparse product (n_items, K), then class-major for the reductions.
        log_joint = np.ascontiguousarray(np.asarray(votes @ log_table.astype(votes.dtype)).T)
        add_log_priors(log_joint, log_prior, item_prior, prior_weight)
        log_lik = normalize_posteriors(log_joint, gold)
        return log_joint, log_lik

    @staticmethod
    def _m_step(
        votes: sp.csr_array,
        probas: np.ndarray,
        n_annotators: int,
        smoothing: float,
        diagonal_prior: float = 0.0,
    ) -> np.ndarray:
        """Return the confusion matrices ``(A, K, K)`` ``[a, true, answered]`` from posteriors.

        Args:
            votes: Item x response matrix :math:`V`.
            probas: ``(K, n_items)`` posteriors.
            n_annotators: :math:`A`.
            smoothing: Dirichlet pseudo-count per cell.
            diagonal_prior: Extra pseudo-count on each diagonal cell.
        """
        k = probas.shape[0]
        item_major = np.ascontiguousarray(probas.T, dtype=votes.dtype)  # (n_items, K)
        counts = np.asarray(votes.T @ item_major, dtype=np.float64)  # [a*K + answered, true]
        confusions = counts.reshape(n_annotators, k, k).transpose(0, 2, 1) + smoothing
        confusions += diagonal_prior * np.eye(k)
        totals = confusions.sum(axis=2, keepdims=True)
        totals[totals <= 0] = 1.0
        confusions /= totals
        return confusions

    @staticmethod
    def _log_table(confusions: np.ndarray) -> np.ndarray:
        r"""Return the ``(A*K, K)`` table of :math:`\log\theta^a_{ck}` for the E-step."""
        n_annotators, k, _ = confusions.shape
        table = np.log(np.clip(confusions, _EPS, None)).transpose(0, 2, 1)  # [a, answered, true]
        return np.ascontiguousarray(table).reshape(n_annotators * k, k)

    def fit(
        self,
        annotations: AnnotationsInput,
        gold: GoldInput = None,
        item_prior: pd.DataFrame | None = None,
    ) -> Self:
        """Fit confusion matrices and posteriors by EM.

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
        check_number(type(self).__name__, "diagonal_prior", self.diagonal_prior, low=0)
        encoded, gold_codes, prior = self._prepare(annotations, gold, item_prior)
        smoothing, diagonal = float(self.smoothing), float(self.diagonal_prior)
        votes = response_matrix(encoded)
        n_votes, k = len(encoded), encoded.n_classes
        probas = shares(
            vote_counts(encoded.item, encoded.label, encoded.n_items, encoded.n_classes)
        )
        clamp_gold(probas, gold_codes)
        confusions = self._m_step(votes, probas, encoded.n_annotators, smoothing, diagonal)
        priors = class_prior(probas, smoothing)
        history: list[float] = []
        converged = False
        for _ in range(int(self.n_iter)):
            log_table = self._log_table(confusions)
            log_prior = np.log(priors)
            probas, log_lik = self._e_step(
                votes, log_table, log_prior, prior, float(self.prior_weight), gold_codes
            )
            penalty = smoothing * (float(log_table.sum()) + float(log_prior.sum()))
            diagonal_logs = np.trace(log_table.reshape(-1, k, k), axis1=1, axis2=2)
            penalty += diagonal * float(diagonal_logs.sum())
            history.append(-(log_lik + penalty) / n_votes)
            confusions = self._m_step(votes, probas, encoded.n_annotators, smoothing, diagonal)
            priors = class_prior(probas, smoothing)
            if loss_converged(history, float(self.tol)):
                converged = True
                break
        self._set_em_state(encoded, probas, priors, history, converged)
        self.confusions_ = confusions
        accuracy = np.einsum("c,acc->a", priors, confusions)
        self.skills_ = pd.Series(accuracy, index=self.annotators_, name="skill")
        return self

    def confusion(self, annotator: Hashable) -> pd.DataFrame:
        """Return one annotator's confusion matrix as a labelled frame.

        Args:
            annotator: Annotator id.

        Returns:
            Rows: true class; columns: answered class; rows sum to 1.

        Raises:
            NotFittedError: Before :meth:`fit`.
            KeyError: Unknown annotator.
        """
        position = self.annotators_.get_loc(annotator)
        return pd.DataFrame(
            self.confusions_[position],
            index=self.classes_.rename("true"),
            columns=self.classes_.rename("answered"),
        )
