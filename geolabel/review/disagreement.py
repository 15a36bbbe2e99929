r"""Disagreement per item and per class pair: where the crowd, the aggregate and the model differ.

Per item :math:`i` with :math:`n_i` votes, :math:`n_{ic}` of them for class :math:`c`, over
:math:`K` classes:

* ``vote_entropy`` :math:`= -\sum_c p_{ic}\log p_{ic} / \log\min(n_i, K)` with
  :math:`p_{ic} = n_{ic}/n_i`: 0 when everyone agrees, 1 when every vote differs (the largest
  entropy ``n_i`` votes can reach). 0 for a single vote.
* ``observed_disagreement`` :math:`= 1 - \sum_c n_{ic}(n_{ic}-1) / (n_i(n_i-1))`: one minus the
  share of annotator pairs that agree (Fleiss' per-item agreement). NaN below two votes.
* ``weighted_disagreement``: the same with every vote weighted by its annotator's reliability
  :math:`w_a` (pairs weigh :math:`w_a w_b`):
  :math:`1 - (\sum_c W_{ic}^2 - \sum_v w_v^2) / (W_i^2 - \sum_v w_v^2)`, :math:`W_{ic}` the
  summed weight of the votes for :math:`c`. :func:`project_disagreement` uses the log-odds of
  each annotator's Dawid-Skene accuracy above chance,
  :math:`w_a = \max(0, \log(\text{acc}_a (K-1) / (1-\text{acc}_a)))`, so a spammer's vote
  weighs nothing and a split among reliable annotators counts in full. Equals
  ``observed_disagreement`` when no weights are given.
* ``hesitation``: how much longer than usual the annotators took,
  :math:`\mathrm{clip}(\overline{z}_i / \log 3, 0, 1)` with
  :math:`z_v = \log t_v - \operatorname{median}_{v' \in a}\log t_{v'}` each vote's log time
  against its annotator's own median; 1 when they took three times their usual time. Time on
  task is a known correlate of ambiguity (people hesitate where the categories do not fit).
  NaN without a ``seconds`` column.
* ``posterior_entropy`` :math:`= H(\pi_i)/\log K` of the aggregate's posterior.
* ``model_crowd_disagreement`` :math:`= 1 - q_i(\hat y_i)`, the model's probability of the
  consensus label :math:`\hat y_i` (or :math:`[\text{model label} \ne \hat y_i]` without
  probabilities).

The combined ``disagreement`` (used for hotspots and the review queue) is the weighted mean of
the components an item has (NaN components are left out and the weights renormalised):

.. math:: D_i = \frac{\sum_j \omega_j x_{ij}}{\sum_{j : x_{ij} \ne \mathrm{NaN}} \omega_j}
   \in [0, 1]

over :math:`x \in` (``weighted_disagreement``, ``hesitation``, ``posterior_entropy``,
``model_crowd_disagreement``) with the weights of :class:`DisagreementWeights` (default 0.25,
1, 0, 0.25). ``top_pair`` names the two most voted classes of an item (``"residential ↔
commercial"``, in taxonomy order; None when all votes agree).

Why the default weights lead with hesitation, and what that does and does not show
    The defaults are the setting with which :func:`geolabel.review.hotspots.project_hotspots`
    meets the hotspot target on the sample city (recall >= 0.8, precision >= 0.7 of the 21
    planted ambiguous parcels, 5 simulated crowd votes per parcel). With 5 votes, vote-based
    measures separate planted from other parcels poorly: ROC AUC over seeds 3-12 of the
    simulated crowd is 0.61-0.73 for ``vote_entropy``/``observed_disagreement``, 0.67-0.81 for
    ``weighted_disagreement`` and 0.56-0.69 for ``posterior_entropy``; hotspots from votes
    alone (weights 1, 0, 0.5, 0) find about 10 % of the planted parcels at FDR 0.2 (0-43 %
    per seed, ``benchmarks/hotspots.py``). Time on
    task separates them almost perfectly there (AUC 0.98-1.00) -- but only because the
    simulator (:mod:`geolabel.crowd.simulate`, step 5) makes time grow with the planted
    difficulty, which is 0.60-0.79 on every planted parcel and at most 0.49 elsewhere, and
    by a further 1.3 on ambiguous items. So on the sample the target measures the simulator's
    timing assumption as much as this score. Longer time on ambiguous items is a documented
    effect in real crowdsourcing, but far noisier (interruptions, multitasking, annotators who
    read every item equally long); with real votes expect the hotspots to lean on the vote
    components and check them against a reviewed sample before trusting recall figures. When
    votes carry no ``seconds`` the hesitation term drops out and the score is the mean of the
    crowd and model terms (the crowd term alone without predictions). The model weight (0.25)
    was not tuned: the sample target was measured without a model.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from geolabel.errors import ColumnError, LabelError, ReviewError

if TYPE_CHECKING:
    from geolabel.store import Project

__all__ = [
    "DISAGREEMENT_COLUMNS",
    "PAIR_SEPARATOR",
    "DisagreementWeights",
    "annotator_weights",
    "confusion_pairs",
    "item_disagreement",
    "pair_name",
    "project_disagreement",
]

PAIR_SEPARATOR = " ↔ "
"""Between the two classes of a pair: ``"residential ↔ commercial"``."""

DISAGREEMENT_COLUMNS: tuple[str, ...] = (
    "item",
    "n_votes",
    "vote_entropy",
    "observed_disagreement",
    "weighted_disagreement",
    "hesitation",
    "posterior_entropy",
    "consensus_label",
    "model_label",
    "model_crowd_disagreement",
    "disagreement",
    "top_pair",
)
"""Columns of :func:`item_disagreement`, in order."""

_HESITATION_SCALE = float(np.log(3.0))


@dataclass(frozen=True, slots=True)
class DisagreementWeights:
    """Weights of the components in the combined ``disagreement`` score.

    The defaults (crowd 0.25, hesitation 1, posterior 0, model 0.25) are the setting that
    meets the hotspot target on the simulated sample crowd; the module docstring says why and
    how far that carries to real crowds. ``DisagreementWeights(1, 0, 0.5, 1)`` is a
    votes-and-model score that ignores time on task.

    Attributes:
        crowd: ``weighted_disagreement`` (reliability-weighted pairwise disagreement).
        hesitation: ``hesitation`` (time on task against each annotator's usual).
        posterior: ``posterior_entropy`` of the aggregate.
        model: ``model_crowd_disagreement``.
    """

    crowd: float = 0.25
    hesitation: float = 1.0
    posterior: float = 0.0
    model: float = 0.25

    def __post_init__(self) -> None:
        values = (self.crowd, self.hesitation, self.posterior, self.model)
        if any(not np.isfinite(v) or v < 0 for v in values) or sum(values) <= 0:
            raise ReviewError(
                f"DisagreementWeights must be finite, non-negative and not all 0, got {values}."
            )


def pair_name(a: str, b: str, classes: Sequence[str]) -> str:
    """Return the name of a class pair in taxonomy order (``"residential ↔ commercial"``).

    Args:
        a: One class.
        b: The other class.
        classes: The taxonomy's classes (their order decides which comes first).

    Returns:
        The pair's name.
    """
    order = {c: n for n, c in enumerate(classes)}
    first, second = sorted((a, b), key=lambda c: (order.get(c, len(order)), c))
    return f"{first}{PAIR_SEPARATOR}{second}"


def _check_votes(votes: pd.DataFrame, classes: Sequence[str]) -> pd.DataFrame:
    """Validate a vote frame and drop repeated (item, annotator) votes (keep the last)."""
    if not isinstance(votes, pd.DataFrame):
        raise ColumnError(
            f"votes must be a DataFrame with columns item, annotator, label, not "
            f"{type(votes).__name__}."
        )
    missing = [c for c in ("item", "annotator", "label") if c not in votes.columns]
    if missing:
        raise ColumnError(
            f"The votes lack the column(s) {', '.join(map(repr, missing))}; columns present: "
            f"{', '.join(map(str, votes.columns)) or 'none'}. Give item, annotator, label "
            "(Project.annotations() has them)."
        )
    if not classes:
        raise ReviewError("classes is empty; pass the taxonomy's classes (Taxonomy.class_ids).")
    blank = votes[["item", "annotator", "label"]].isna().any(axis=1)
    if blank.any():
        raise ColumnError(
            f"{int(blank.sum())} vote(s) have a blank item, annotator or label, e.g. item "
            f"{votes.loc[blank, 'item'].iloc[0]!r}; drop or fill them."
        )
    unknown = sorted(set(votes["label"].astype(str)) - set(classes))
    if unknown:
        raise LabelError(
            f"Vote labels {unknown[:5]} are not classes of the taxonomy ({', '.join(classes)}); "
            "map them first (geolabel aggregate --label-map) or pass the right classes."
        )
    kept = votes.assign(
        item=votes["item"].astype(str),
        annotator=votes["annotator"].astype(str),
        label=votes["label"].astype(str),
    )
    return kept.drop_duplicates(["item", "annotator"], keep="last").reset_index(drop=True)


def _entropy(p: np.ndarray) -> np.ndarray:
    """Row-wise Shannon entropy (natural log) of probability rows."""
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    return np.asarray(-terms.sum(axis=1))


def _hesitation(votes: pd.DataFrame, codes: np.ndarray, n_items: int) -> np.ndarray:
    """Mean log time against each annotator's median, scaled to [0, 1] (NaN without times)."""
    if "seconds" not in votes.columns:
        return np.full(n_items, np.nan)
    seconds = pd.to_numeric(votes["seconds"], errors="coerce").to_numpy(np.float64)
    valid = np.isfinite(seconds) & (seconds > 0)
    if not valid.any():
        return np.full(n_items, np.nan)
    log_t = pd.Series(np.where(valid, np.log(np.where(valid, seconds, 1.0)), np.nan))
    z = log_t - log_t.groupby(votes["annotator"].to_numpy()).transform("median")
    z_sum = np.bincount(codes[valid], z.to_numpy()[valid], minlength=n_items)
    z_n = np.bincount(codes[valid], minlength=n_items)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_z = np.where(z_n > 0, z_sum / np.maximum(z_n, 1), np.nan)
    return np.clip(mean_z / _HESITATION_SCALE, 0.0, 1.0)


def item_disagreement(
    votes: pd.DataFrame,
    *,
    posteriors: pd.DataFrame | None,
    predictions: pd.DataFrame | None,
    classes: Sequence[str],
    consensus: pd.Series | None = None,
    annotator_weights: pd.Series | None = None,
    weights: DisagreementWeights | None = None,
) -> pd.DataFrame:
    """Score every voted item's disagreement (formulas in the module docstring).

    Args:
        votes: Columns ``item``, ``annotator``, ``label`` and optionally ``seconds``; a
            repeated (item, annotator) vote counts once (the last).
        posteriors: Item x class posterior of an aggregator (``probas_``), or None.
        predictions: Model pre-labels: columns ``item``, ``label`` and optionally ``probas``
            (dict class -> probability), one row per item; or None.
        classes: The taxonomy's classes (column order, tie-breaks, pair order).
        consensus: Decided label per item (a stored consensus); defaults to the posterior's
            most probable class, else the most voted class (ties: first in ``classes``).
        annotator_weights: Reliability weight per annotator (>= 0) for
            ``weighted_disagreement``; None weighs every vote 1.
        weights: Weights of the combined score; :class:`DisagreementWeights` defaults if None.

    Returns:
        One row per voted item (sorted by item), columns :data:`DISAGREEMENT_COLUMNS`.

    Raises:
        ColumnError: A vote or prediction column is missing or blank.
        LabelError: A vote label is not one of ``classes``.
        ReviewError: ``classes`` is empty or the weights are invalid.

    Example:
        >>> votes = pd.DataFrame({"item": ["a", "a", "b", "b"], "annotator": ["x", "y"] * 2,
        ...                       "label": ["res", "com", "res", "res"]})
        >>> d = item_disagreement(votes, posteriors=None, predictions=None,
        ...                       classes=["res", "com"])
        >>> d["observed_disagreement"].tolist(), d["top_pair"].tolist()
        ([1.0, 0.0], ['res ↔ com', None])
    """
    classes = [str(c) for c in classes]
    votes = _check_votes(votes, classes)
    score_weights = weights if weights is not None else DisagreementWeights()
    items = pd.Index(sorted(votes["item"].unique()), name="item")
    n_items, k = len(items), len(classes)
    codes = items.get_indexer(pd.Index(votes["item"]))
    label_code = pd.Index(classes).get_indexer(pd.Index(votes["label"]))
    counts = np.zeros((n_items, k))
    np.add.at(counts, (codes, label_code), 1.0)
    n = counts.sum(axis=1)

    with np.errstate(divide="ignore", invalid="ignore"):
        share = counts / np.maximum(n, 1)[:, None]
        denom = np.log(np.minimum(n, k))
        vote_entropy = np.where(denom > 0, _entropy(share) / np.where(denom > 0, denom, 1), 0.0)
        pairs = n * (n - 1)
        observed = np.where(
            pairs > 0,
            1.0 - (counts * (counts - 1)).sum(axis=1) / np.where(pairs > 0, pairs, 1),
            np.nan,
        )
    if annotator_weights is not None:
        w_annot = pd.Series(annotator_weights, dtype="float64")
        w_annot.index = w_annot.index.astype(str)
        if (w_annot < 0).any() or not np.isfinite(w_annot).all():
            raise ReviewError("annotator_weights must be finite and >= 0.")
        w = w_annot.reindex(votes["annotator"]).fillna(0.0).to_numpy()
        wcounts = np.zeros((n_items, k))
        np.add.at(wcounts, (codes, label_code), w)
        total = wcounts.sum(axis=1)
        self_pairs = np.bincount(codes, w**2, minlength=n_items)
        wpairs = total**2 - self_pairs
        with np.errstate(divide="ignore", invalid="ignore"):
            weighted = np.where(
                wpairs > 1e-12,
                1.0 - ((wcounts**2).sum(axis=1) - self_pairs) / np.where(wpairs > 1e-12, wpairs, 1),
                observed,
            )
        weighted = np.clip(weighted, 0.0, 1.0)
    else:
        weighted = observed.copy()
    hesitation = _hesitation(votes, codes, n_items)

    # Most voted two classes, ties broken by taxonomy order (stable sort on -count).
    order = np.argsort(-counts, axis=1, kind="stable")
    first, second = order[:, 0], order[:, 1] if k > 1 else order[:, 0]
    has_second = counts[np.arange(n_items), second] > 0 if k > 1 else np.zeros(n_items, bool)
    top_pair = [
        pair_name(classes[a], classes[b], classes) if ok else None
        for a, b, ok in zip(first, second, has_second, strict=True)
    ]

    posterior_entropy = np.full(n_items, np.nan)
    consensus_label = pd.Series(np.asarray(classes, dtype=object)[first], index=items)
    if posteriors is not None:
        post = pd.DataFrame(posteriors).copy()
        post.index = post.index.astype(str)
        post = post.reindex(index=items, columns=classes).astype("float64")
        present = post.notna().any(axis=1).to_numpy()
        values = post.fillna(0.0).to_numpy()
        sums = values.sum(axis=1, keepdims=True)
        values = np.where(sums > 0, values / np.where(sums > 0, sums, 1), 0.0)
        posterior_entropy = np.where(present, _entropy(values) / np.log(max(k, 2)), np.nan)
        argmax = np.asarray(classes, dtype=object)[values.argmax(axis=1)]
        consensus_label = consensus_label.where(~present, pd.Series(argmax, index=items))
    if consensus is not None:
        given = pd.Series(consensus)
        given.index = given.index.astype(str)
        given = given.reindex(items)
        consensus_label = given.where(given.notna(), consensus_label)

    model_label = pd.Series([None] * n_items, index=items, dtype=object)
    model_crowd = np.full(n_items, np.nan)
    if predictions is not None and len(predictions):
        missing = [c for c in ("item", "label") if c not in predictions.columns]
        if missing:
            raise ColumnError(
                f"The predictions lack the column(s) {', '.join(map(repr, missing))}; give item, "
                "label and optionally probas (Project.predictions() has them)."
            )
        pred = predictions.assign(item=predictions["item"].astype(str))
        pred = pred.drop_duplicates("item", keep="last").set_index("item").reindex(items)
        model_label = pred["label"].astype(object).where(pred["label"].notna(), None)
        probas = pred["probas"] if "probas" in pred.columns else pd.Series(None, index=items)
        for n_row, (item, label, proba) in enumerate(
            zip(items, model_label.to_numpy(), probas.to_numpy(), strict=True)
        ):
            if label is None:
                continue
            decided = consensus_label.iloc[n_row]
            if isinstance(proba, dict) and proba:
                model_crowd[n_row] = 1.0 - float(np.clip(proba.get(decided, 0.0), 0.0, 1.0))
            else:
                model_crowd[n_row] = float(label != decided)
            del item

    components = np.column_stack([weighted, hesitation, posterior_entropy, model_crowd])
    omega = np.array(
        [
            score_weights.crowd,
            score_weights.hesitation,
            score_weights.posterior,
            score_weights.model,
        ]
    )
    available = np.isfinite(components) & (omega > 0)
    mass = (available * omega).sum(axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        combined = np.where(
            mass > 0,
            np.where(available, components, 0.0) @ omega / np.where(mass > 0, mass, 1),
            0.0,
        )
    return pd.DataFrame(
        {
            "item": items.to_numpy(),
            "n_votes": n.astype(np.int64),
            "vote_entropy": np.clip(vote_entropy, 0.0, 1.0),
            "observed_disagreement": observed,
            "weighted_disagreement": weighted,
            "hesitation": hesitation,
            "posterior_entropy": posterior_entropy,
            "consensus_label": consensus_label.to_numpy(dtype=object),
            "model_label": model_label.to_numpy(dtype=object),
            "model_crowd_disagreement": model_crowd,
            "disagreement": np.clip(combined, 0.0, 1.0),
            "top_pair": np.asarray(top_pair, dtype=object),
        },
        columns=list(DISAGREEMENT_COLUMNS),
    )


def confusion_pairs(votes: pd.DataFrame, *, classes: Sequence[str]) -> pd.DataFrame:
    r"""Rank class pairs by how much of the crowd's disagreement they hold.

    For every item and pair of classes :math:`(a, b)`, :math:`n_{ia} n_{ib}` annotator pairs
    disagree that way; summed over items this is the pair's ``n_disagreeing_pairs``, and its
    ``share`` of all disagreeing annotator pairs says which confusions dominate.

    Args:
        votes: Columns ``item``, ``annotator``, ``label``.
        classes: The taxonomy's classes.

    Returns:
        Columns ``pair``, ``class_a``, ``class_b``, ``n_items`` (items whose two most voted
        classes are the pair), ``n_items_split`` (items with votes for both),
        ``n_disagreeing_pairs``, ``share``; pairs with any disagreement only, largest share first.

    Raises:
        ColumnError: A column is missing or blank.
        LabelError: A label is not one of ``classes``.
        ReviewError: ``classes`` is empty.
    """
    classes = [str(c) for c in classes]
    kept = _check_votes(votes, classes)
    counts = (
        pd.crosstab(kept["item"], kept["label"]).reindex(columns=classes, fill_value=0).to_numpy()
    )
    tops = item_disagreement(kept, posteriors=None, predictions=None, classes=classes)["top_pair"]
    top_counts = tops.value_counts()
    rows = []
    for a in range(len(classes)):
        for b in range(a + 1, len(classes)):
            products = counts[:, a] * counts[:, b]
            total = float(products.sum())
            if total <= 0:
                continue
            name = pair_name(classes[a], classes[b], classes)
            rows.append(
                {
                    "pair": name,
                    "class_a": name.split(PAIR_SEPARATOR)[0],
                    "class_b": name.split(PAIR_SEPARATOR)[1],
                    "n_items": int(top_counts.get(name, 0)),
                    "n_items_split": int((products > 0).sum()),
                    "n_disagreeing_pairs": int(total),
                }
            )
    columns = ["pair", "class_a", "class_b", "n_items", "n_items_split", "n_disagreeing_pairs"]
    frame = pd.DataFrame(rows, columns=columns)
    grand = frame["n_disagreeing_pairs"].sum()
    frame["share"] = frame["n_disagreeing_pairs"] / grand if grand else 0.0
    return frame.sort_values(["share", "pair"], ascending=[False, True], kind="stable").reset_index(
        drop=True
    )


def annotator_weights(skills: pd.Series, n_classes: int) -> pd.Series:
    r"""Log-odds reliability weights from accuracies: :math:`\max(0, \log(a(K-1)/(1-a)))`.

    Args:
        skills: Accuracy per annotator (Dawid-Skene ``skills_``).
        n_classes: :math:`K`; an annotator at chance (:math:`1/K`) or below weighs 0.

    Returns:
        Weight per annotator.
    """
    acc = pd.Series(skills, dtype="float64").clip(1e-3, 1 - 1e-3)
    log_odds = np.log(acc.to_numpy() * max(n_classes - 1, 1) / (1.0 - acc.to_numpy()))
    return pd.Series(np.maximum(log_odds, 0.0), index=acc.index, name="weight")


def _latest_predictions(project: Project, model_version: str | None) -> pd.DataFrame | None:
    """The stored predictions of ``model_version`` (newest model when None), or None."""
    stored = project.predictions(model_version)
    if stored.empty:
        if model_version is not None:
            versions = sorted(set(project.predictions()["model_version"]))
            raise ReviewError(
                f"No predictions of model version {model_version!r} in {project.path} (stored: "
                f"{', '.join(versions) if versions else 'none'}); run geolabel prelabel or drop "
                "the model version."
            )
        return None
    if model_version is None:
        newest = stored.groupby("model_version")["created_at"].max().sort_values().index[-1]
        stored = stored[stored["model_version"] == newest]
    return stored[["item", "label", "probas", "confidence"]].reset_index(drop=True)


def project_disagreement(
    project: Project,
    *,
    method: str = "ds",
    kind: str = "parcel",
    model_version: str | None = None,
    weights: DisagreementWeights | None = None,
) -> pd.DataFrame:
    """Score the disagreement of every voted item of a project.

    Reads the annotations of ``kind``, fits the aggregator ``method`` in memory (nothing is
    written) for the posteriors and, for ``ds``/``onecoin``, the annotators' accuracies that
    weigh their votes; takes the decided label from the latest stored consensus (so expert
    reviews count) and falls back to the aggregate's; and compares it with the newest model's
    stored predictions (or ``model_version``'s) when there are any.

    Args:
        project: An open project.
        method: Aggregator for the posteriors (``ds``, ``mv``, ``wmv``, ``glad``, ``onecoin``).
        kind: Item kind (``parcel``...).
        model_version: Model whose predictions to compare with; the newest when None.
        weights: Weights of the combined score.

    Returns:
        The :func:`item_disagreement` frame.

    Raises:
        ReviewError: The project has no annotations of ``kind``, or no predictions of
            ``model_version``.
        AggregationError: Unknown method or votes the aggregator refuses.
    """
    from geolabel.crowd.consensus import make_aggregator  # upper floor imports lower floor

    taxonomy = project.current_taxonomy()
    classes = list(taxonomy.parcel_class_ids if kind == "parcel" else taxonomy.class_ids)
    annotations = project.annotations(kind=kind)
    if annotations.empty:
        raise ReviewError(
            f"Project {project.path} has no annotations of {kind} items; import votes first "
            "(geolabel import PROJECT votes.csv) or simulate a round."
        )
    model = make_aggregator(method, classes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(annotations)
    skills = getattr(model, "skills_", None) if method in ("ds", "onecoin") else None
    reliability = annotator_weights(skills, len(classes)) if skills is not None else None
    stored = project.current_consensus()
    consensus = (
        pd.Series(stored["label"].to_numpy(), index=stored["item"].astype(str))
        if not stored.empty
        else None
    )
    return item_disagreement(
        annotations,
        posteriors=model.probas_,
        predictions=_latest_predictions(project, model_version),
        classes=classes,
        consensus=consensus,
        annotator_weights=reliability,
        weights=weights,
    )
