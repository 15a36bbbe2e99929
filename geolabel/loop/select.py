"""Active learning: which items to label next, as weighted scorers and a spatially diverse batch.

Each scorer maps the candidate pool (one row per unlabeled item) to a value in [0, 1], higher
meaning "human time is worth more here":

``random``
    A uniform draw: the baseline every other strategy must beat.
``least_confidence``
    ``1 - confidence`` of the calibrated pre-label.
``margin``
    ``1 - (p_top1 - p_top2)``.
``entropy``
    Entropy of the pre-label probabilities over ``log(K)``.
``boundary``
    Items close to a decision boundary between two classes: ``max(0, 1 - margin / 0.2)``, so
    only near-ties score (unlike ``margin``, which ranks every item).
``novelty``
    How unlike the labeled set an item is: the cosine distance of its embedding (pooled encoder
    features, :mod:`geolabel.prelabel.embeddings`) to the nearest labeled item, as a percentile
    among the candidates; items of a district with no label yet score 1.
``density``
    How typical an item is of the candidates (representativeness, the "information density" of
    Settles & Craven 2008, with nearest neighbours so a pool of several kinds of parcel has
    several dense places): the mean cosine similarity of its embedding to its 10 most similar
    candidates (among a seeded sample of at most 1,000). Uncertainty alone favours outliers (a lone
    vacant lot, a water body), and a model trained on a batch of them learns a skewed mix of
    classes; weighted with ``entropy``, ``density`` asks for uncertain items that stand for
    many others.
``impact``
    Items that matter beyond the map: named in municipal notices (``impact`` column: number of
    notice links) and large parcels (``area_m2``), as percentiles averaged; a user's own hook
    (``impact_fn``) may add a column of its own.

:func:`combined_score` ranks the pool by the weighted mean of the scores (each score as a
percentile among the candidates first, so scales do not matter), and :func:`diverse_batch`
takes the best items greedily, skipping any closer than a minimum distance to one already
taken (relaxed by halves when the batch cannot be filled), so one round does not spend itself
on one block. Given :func:`embedding_clusters` as well, it also takes at most one item per
cluster of the candidates' embeddings (k-means into as many clusters as the batch has items):
the batch then spreads over what the parcels look like, not only over where they are, and
uncertainty cannot spend a round on one confusing kind of parcel (the sampling bias of pure
uncertainty sampling; Zhdanov 2019, "Diverse mini-batch active learning").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

import numpy as np
import pandas as pd

from geolabel.errors import ColumnError, ConfigError

__all__ = [
    "SCORERS",
    "combined_score",
    "diverse_batch",
    "embedding_clusters",
    "score_pool",
]

_BOUNDARY_MARGIN: Final = 0.2


def _percentile(values: pd.Series) -> pd.Series:
    """Rank as a fraction in [0, 1] (ties share their average rank); a constant gives 0.5."""
    if len(values) <= 1 or values.nunique(dropna=True) <= 1:
        return pd.Series(0.5, index=values.index)
    return (values.rank(method="average") - 1.0) / (len(values) - 1.0)


def _need(pool: pd.DataFrame, columns: tuple[str, ...], scorer: str) -> None:
    missing = [c for c in columns if c not in pool.columns]
    if missing:
        raise ColumnError(
            f"The {scorer!r} scorer needs column(s) {', '.join(missing)} in the candidate pool"
            f" (columns: {', '.join(map(str, pool.columns))}); pre-label the items first"
            " (`geolabel prelabel`)."
        )


def _random(pool: pd.DataFrame, ctx: _Context) -> pd.Series:
    return pd.Series(ctx.rng.random(len(pool)), index=pool.index)


def _least_confidence(pool: pd.DataFrame, ctx: _Context) -> pd.Series:
    _need(pool, ("confidence",), "least_confidence")
    return 1.0 - pool["confidence"].astype(float)


def _margin(pool: pd.DataFrame, ctx: _Context) -> pd.Series:
    _need(pool, ("margin",), "margin")
    return 1.0 - pool["margin"].astype(float)


def _entropy(pool: pd.DataFrame, ctx: _Context) -> pd.Series:
    _need(pool, ("entropy",), "entropy")
    k = max(2, ctx.n_classes)
    return (pool["entropy"].astype(float) / np.log(k)).clip(0.0, 1.0)


def _boundary(pool: pd.DataFrame, ctx: _Context) -> pd.Series:
    _need(pool, ("margin",), "boundary")
    return (1.0 - pool["margin"].astype(float) / _BOUNDARY_MARGIN).clip(lower=0.0)


def _novelty(pool: pd.DataFrame, ctx: _Context) -> pd.Series:
    score = pd.Series(0.5, index=pool.index)
    if ctx.embeddings is not None and ctx.labeled_items:
        have, a = _embedded(ctx.embeddings, pool["item"], np.float64)
        labeled, b = _embedded(ctx.embeddings, ctx.labeled_items, np.float64)
        if have and labeled:
            nearest = 1.0 - (a @ b.T).max(axis=1)
            dist = pd.Series(nearest, index=have)
            mapped = pool["item"].map(dist)
            score = _percentile(mapped.fillna(mapped.median() if mapped.notna().any() else 0.0))
    if "district" in pool.columns and ctx.labeled_districts is not None:
        new = ~pool["district"].isin(ctx.labeled_districts) & pool["district"].notna()
        score = score.where(~new, 1.0)
    return score


_DENSITY_SAMPLE: Final = 1000
_DENSITY_NEIGHBOURS: Final = 10


def _density(pool: pd.DataFrame, ctx: _Context) -> pd.Series:
    if ctx.embeddings is None:
        raise ColumnError(
            "The 'density' scorer needs the parcels' embeddings (written by `geolabel"
            " prelabel`); pre-label the items first or drop the scorer."
        )
    have, a = _embedded(ctx.embeddings, pool["item"], np.float32)
    if len(have) < 2:
        return pd.Series(0.5, index=pool.index)
    ref_idx = np.arange(len(a))
    if len(a) > _DENSITY_SAMPLE:
        ref_idx = np.sort(ctx.rng.choice(len(a), size=_DENSITY_SAMPLE, replace=False))
    ref = a[ref_idx]
    k = min(_DENSITY_NEIGHBOURS, len(ref_idx) - 1)
    out = np.empty(len(a))
    for lo in range(0, len(a), 4096):  # bounded memory: 4096 x 1000 similarities at a time
        sims = a[lo : lo + 4096] @ ref.T
        rows = np.arange(lo, lo + len(sims))
        sims[rows[:, None] == ref_idx[None, :]] = -np.inf  # not its own neighbour
        out[lo : lo + len(sims)] = -np.partition(-sims, k - 1, axis=1)[:, :k].mean(axis=1)
    dense = pd.Series(out, index=have)
    mapped = pool["item"].map(dense)
    return mapped.fillna(mapped.median())


def _embedded(
    embeddings: pd.DataFrame, items: Iterable[str], dtype: type[np.floating[Any]]
) -> tuple[list[str], np.ndarray]:
    """The items that have an embedding (in their order), and those embeddings at unit length."""
    have = [i for i in items if i in embeddings.index]
    return have, _unit(embeddings.loc[have].to_numpy(dtype))


def _unit(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norm > 0, norm, 1.0)


def _impact(pool: pd.DataFrame, ctx: _Context) -> pd.Series:
    parts = []
    if "impact" in pool.columns:
        parts.append(_percentile(pool["impact"].astype(float).fillna(0.0)))
    if "area_m2" in pool.columns:
        parts.append(_percentile(pool["area_m2"].astype(float).fillna(0.0)))
    if ctx.impact_fn is not None:
        extra = pd.Series(ctx.impact_fn(pool), index=pool.index, dtype=float)
        parts.append(_percentile(extra.fillna(0.0)))
    if not parts:
        raise ColumnError(
            "The 'impact' scorer needs an 'impact' (notice links) or 'area_m2' column, or an"
            " impact_fn; none is there."
        )
    return sum(parts[1:], parts[0]) / len(parts)


class _Context:
    """What scorers may look at beyond the pool."""

    def __init__(
        self,
        *,
        rng: np.random.Generator,
        n_classes: int,
        embeddings: pd.DataFrame | None,
        labeled_items: list[str],
        labeled_districts: set[str] | None,
        impact_fn: Callable[[pd.DataFrame], object] | None,
    ) -> None:
        self.rng = rng
        self.n_classes = n_classes
        self.embeddings = embeddings
        self.labeled_items = labeled_items
        self.labeled_districts = labeled_districts
        self.impact_fn = impact_fn


SCORERS: Final[Mapping[str, Callable[[pd.DataFrame, _Context], pd.Series]]] = {
    "random": _random,
    "least_confidence": _least_confidence,
    "margin": _margin,
    "entropy": _entropy,
    "boundary": _boundary,
    "novelty": _novelty,
    "density": _density,
    "impact": _impact,
}
"""The scorers by name (see the module docstring)."""


def score_pool(
    pool: pd.DataFrame,
    weights: Mapping[str, float],
    *,
    n_classes: int,
    seed: int = 0,
    embeddings: pd.DataFrame | None = None,
    labeled_items: list[str] | None = None,
    labeled_districts: set[str] | None = None,
    impact_fn: Callable[[pd.DataFrame], object] | None = None,
) -> pd.DataFrame:
    """Every weighted scorer's value per candidate, and their combination.

    Args:
        pool: One row per candidate: ``item`` and the columns the weighted scorers need.
        weights: Scorer name -> non-negative weight; zero weights are skipped.
        n_classes: Number of classes (entropy normalisation).
        seed: Seed of the ``random`` scorer.
        embeddings: Item-indexed embedding rows (``novelty``, ``density``).
        labeled_items: Items already labeled (``novelty``).
        labeled_districts: Districts with a label already (``novelty``).
        impact_fn: The user's impact hook: pool -> one number per row (``impact``).

    Returns:
        The pool's ``item`` and one column per used scorer plus ``score`` (the weighted mean of
        the scorers' percentiles), in pool order.

    Raises:
        ConfigError: Unknown scorer or no positive weight.
        ColumnError: The pool lacks ``item`` or a scorer's column.
    """
    if "item" not in pool.columns:
        raise ColumnError("The candidate pool needs an 'item' column.")
    unknown = sorted(set(weights) - set(SCORERS))
    if unknown:
        raise ConfigError(
            f"Unknown selection scorer(s) {', '.join(unknown)}; use {', '.join(sorted(SCORERS))}."
        )
    used = {k: float(w) for k, w in weights.items() if w > 0}
    if not used:
        raise ConfigError("Selection needs at least one scorer with a positive weight.")
    ctx = _Context(
        rng=np.random.default_rng([seed, 7]),
        n_classes=n_classes,
        embeddings=embeddings,
        labeled_items=list(labeled_items or []),
        labeled_districts=labeled_districts,
        impact_fn=impact_fn,
    )
    frame = pd.DataFrame({"item": pool["item"].astype(str).to_numpy()}, index=pool.index)
    total = pd.Series(0.0, index=pool.index)
    for name, weight in used.items():
        values = SCORERS[name](pool, ctx).astype(float)
        frame[name] = values
        total += weight * _percentile(values)
    frame["score"] = total / sum(used.values())
    return frame.reset_index(drop=True)


def combined_score(pool: pd.DataFrame, weights: Mapping[str, float], **kwargs: object) -> pd.Series:
    """The combined score alone, indexed by item (see :func:`score_pool`)."""
    scored = score_pool(pool, weights, **kwargs)  # type: ignore[arg-type]
    return pd.Series(scored["score"].to_numpy(), index=scored["item"], name="score")


def embedding_clusters(
    embeddings: pd.DataFrame, items: list[str], n: int, *, seed: int = 0
) -> pd.Series:
    """Group candidates by what they look like: k-means of their unit embeddings.

    Args:
        embeddings: Item-indexed embedding rows (pooled encoder features).
        items: The candidates; those without an embedding are left out.
        n: Number of clusters (the batch size); fewer when there are fewer candidates.
        seed: Seed of the k-means++ start.

    Returns:
        Item -> cluster number, for the candidates that have an embedding.
    """
    from scipy.cluster.vq import kmeans2

    have = [i for i in dict.fromkeys(items) if i in embeddings.index]
    k = min(int(n), len(have))
    if k <= 1:
        return pd.Series(0, index=pd.Index(have, dtype=object), dtype=int)
    x = _unit(embeddings.loc[have].to_numpy(np.float64))
    _, labels = kmeans2(x, k, minit="++", seed=np.random.default_rng([seed, 11]))
    return pd.Series(labels.astype(int), index=pd.Index(have, dtype=object))


def diverse_batch(
    scores: pd.Series,
    xy: pd.DataFrame,
    n: int,
    *,
    min_distance: float,
    clusters: pd.Series | None = None,
) -> list[str]:
    """The ``n`` best-scored items, no two closer than ``min_distance`` where possible.

    Greedy in score order; when fewer than ``n`` items pass, the distance is halved and the
    remaining items are tried again (down to zero), so a batch is always filled when the pool
    is large enough.

    Args:
        scores: Item -> score (higher first; ties in item order).
        xy: Item-indexed ``x``, ``y`` coordinates in metres (projected CRS).
        n: Batch size.
        min_distance: Smallest distance between two chosen items, in the units of ``xy``.
        clusters: Item -> cluster (:func:`embedding_clusters`): at most one item per cluster
            while the distance is relaxed; items without a cluster are not held back by it.
            Only when that cannot fill the batch are further items of a cluster taken.

    Returns:
        Chosen items, best first.

    Raises:
        ColumnError: ``xy`` lacks an item of ``scores`` or the ``x``/``y`` columns.
    """
    if n <= 0 or scores.empty:
        return []
    if not {"x", "y"} <= set(xy.columns):
        raise ColumnError("diverse_batch needs item-indexed 'x' and 'y' columns.")
    missing = scores.index.difference(xy.index)
    if len(missing):
        raise ColumnError(
            f"{len(missing)} scored item(s) have no coordinates, e.g. {missing[0]!r}."
        )
    order = scores.sort_values(ascending=False, kind="stable").index
    pts = xy.loc[order, ["x", "y"]].to_numpy(np.float64)
    group = (
        clusters.reindex(order).fillna(-1).to_numpy(np.int64)
        if clusters is not None
        else np.full(len(order), -1, dtype=np.int64)
    )
    chosen: list[int] = []
    used: set[int] = set()
    taken = np.zeros(len(order), dtype=bool)
    for one_per_cluster in (True, False) if clusters is not None else (False,):
        distance = float(min_distance)
        while len(chosen) < min(n, len(order)):
            for k in range(len(order)):
                if taken[k] or (one_per_cluster and group[k] >= 0 and group[k] in used):
                    continue
                if chosen and distance > 0:
                    d = np.hypot(*(pts[chosen] - pts[k]).T)
                    if d.min() < distance:
                        continue
                chosen.append(k)
                taken[k] = True
                used.add(int(group[k]))
                if len(chosen) == n:
                    break
            if distance == 0:
                break
            distance = distance / 2 if distance > 1e-3 else 0.0
    return [str(order[k]) for k in chosen]
