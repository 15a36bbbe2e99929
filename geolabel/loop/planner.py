"""The cost–accuracy knob: the cheapest routing and redundancy plan that meets a target accuracy.

The planner simulates labeling the candidate items under many settings and keeps the cheapest
one whose expected accuracy reaches the target. The simulation uses only what the project
knows, never the truth:

* each item's true class is drawn from its **calibrated** pre-label probabilities (a
  calibrated model is right as often as it says, so this is the model's own view of the world);
* crowd votes are drawn from the **estimated** confusion matrices of the crowd (Dawid–Skene on
  the project's votes, :func:`estimate_workforce`), each vote from a worker picked in proportion
  to the work they did; expert decisions from the experts' estimated matrix;
* the loop's own rules decide: verify and accept when the verifier agrees with the pre-label,
  otherwise crowd votes with Bayesian posteriors (prior = pre-label, likelihood = the voter's
  estimated matrix) and dynamic overlap, escalation to an expert.

Posteriors are exact Bayes under the estimated matrices, vectorised over items, so the
whole grid (hundreds of settings × several replicates) takes seconds. :func:`plan` returns the
best settings with their expected accuracy and cost per item, and the table behind the
cost–accuracy curve that :func:`plot_cost_accuracy` draws (every setting, the Pareto front, and
uniform crowd redundancy for comparison).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from geolabel.errors import ConfigError
from geolabel.loop.config import LoopConfig, Prices, Redundancy, Routing

__all__ = [
    "PlanResult",
    "WorkforceModel",
    "estimate_workforce",
    "plan",
    "plot_cost_accuracy",
    "simulate_policy",
    "simulate_uniform",
]

EASY_GRID = (0.8, 0.9, 0.95, 0.98, 1.0)  # 1.0: (almost) nothing is verified only
HARD_GRID = (0.0, 0.35, 0.5, 0.65)
INITIAL_GRID = (1, 2, 3)
MAX_GRID = (3, 5, 7)
TARGET_GRID = (0.9, 0.95, 0.98)
_DEFAULT_CROWD_ACCURACY = 0.75
_DEFAULT_EXPERT_ACCURACY = 0.97


@dataclass(frozen=True)
class WorkforceModel:
    """What the project believes about its people.

    Attributes:
        classes: Class order of the matrices.
        crowd: ``(A, K, K)`` estimated confusion matrices of crowd workers (rows: true class).
        weights: ``(A,)`` share of votes each worker gives.
        expert: ``(K, K)`` estimated confusion of an expert decision.
        source: How the estimate was made.
    """

    classes: tuple[str, ...]
    crowd: np.ndarray
    weights: np.ndarray
    expert: np.ndarray
    source: str


def _symmetric(k: int, accuracy: float) -> np.ndarray:
    off = (1.0 - accuracy) / max(1, k - 1)
    m = np.full((k, k), off)
    np.fill_diagonal(m, accuracy)
    return m


def estimate_workforce(
    votes: pd.DataFrame | None,
    classes: Sequence[str],
    *,
    kinds: pd.Series | None = None,
    gold: pd.Series | None = None,
    min_votes: int = 60,
) -> WorkforceModel:
    """Estimate crowd and expert confusion matrices from the project's votes.

    Dawid–Skene (gold clamped) on every vote; with fewer than ``min_votes`` crowd votes the
    crowd is taken as one worker of accuracy 0.75 with symmetric errors (a cautious prior).
    Experts (``kinds == "expert"``) get the mean of their estimated matrices, or accuracy 0.97.

    Args:
        votes: ``item, annotator, label`` (None or empty: the defaults).
        classes: Class order.
        kinds: Annotator -> kind (``crowd``, ``expert``...).
        gold: Item -> known label.
        min_votes: Crowd votes needed to trust the estimate.

    Returns:
        The estimate.
    """
    from geolabel.crowd.dawid_skene import DawidSkene

    cls = tuple(classes)
    k = len(cls)
    kinds = kinds if kinds is not None else pd.Series(dtype=object)
    default = WorkforceModel(
        cls,
        _symmetric(k, _DEFAULT_CROWD_ACCURACY)[None],
        np.ones(1),
        _symmetric(k, _DEFAULT_EXPERT_ACCURACY),
        "defaults (too few votes to estimate)",
    )
    if votes is None or votes.empty or votes["annotator"].nunique() < 2:
        return default
    frame = votes[["item", "annotator", "label"]]
    is_expert = frame["annotator"].map(kinds).eq("expert")
    if int((~is_expert).sum()) < min_votes:
        return default
    g = gold[gold.index.isin(frame["item"])] if gold is not None else None
    ds = DawidSkene(classes=list(cls), n_iter=50).fit(
        frame, g if g is not None and len(g) else None
    )
    errors = ds.confusions_  # annotator x true x answered, classes in `cls` order
    names = [str(a) for a in ds.annotators_]
    counts = frame["annotator"].astype(str).value_counts()
    crowd_idx = [n for n, a in enumerate(names) if kinds.get(a) != "expert"]
    expert_idx = [n for n, a in enumerate(names) if kinds.get(a) == "expert"]
    crowd = np.asarray(errors)[crowd_idx]
    weights = np.array([counts.get(names[n], 0) for n in crowd_idx], dtype=float)
    expert = (
        np.asarray(errors)[expert_idx].mean(axis=0)
        if expert_idx
        else _symmetric(k, _DEFAULT_EXPERT_ACCURACY)
    )
    # Experts who decided alone have weak estimates; never believe them below the default.
    if np.diag(expert).mean() < _DEFAULT_EXPERT_ACCURACY:
        expert = _symmetric(k, _DEFAULT_EXPERT_ACCURACY)
    return WorkforceModel(
        cls,
        crowd,
        weights / weights.sum(),
        expert,
        f"Dawid-Skene on {len(frame)} votes of {len(names)} annotators",
    )


def _draw(rng: np.random.Generator, rows: np.ndarray) -> np.ndarray:
    """One categorical draw per row of probabilities."""
    u = rng.random((len(rows), 1))
    return np.minimum((rows.cumsum(axis=1) < u).sum(axis=1), rows.shape[1] - 1)


def _votes(
    rng: np.random.Generator, wf: WorkforceModel, truth: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """A vote per item from a random crowd worker: (answers, likelihood rows P(answer | class))."""
    who = rng.choice(len(wf.crowd), size=len(truth), p=wf.weights)
    answers = _draw(rng, wf.crowd[who, truth])
    like = wf.crowd[who, :, answers]  # (n, K): P(this answer | each class) for this worker
    return answers, like


def simulate_policy(
    probs: np.ndarray,
    wf: WorkforceModel,
    routing: Routing,
    redundancy: Redundancy,
    prices: Prices,
    *,
    rng: np.random.Generator,
    truth: np.ndarray | None = None,
) -> dict[str, float]:
    """Expected accuracy and cost per item of one setting (one replicate).

    Args:
        probs: ``(n, K)`` calibrated pre-label probabilities.
        wf: The workforce estimate.
        routing: Routing thresholds (novelty and impact are not simulated).
        redundancy: Votes, target posterior, gold rate.
        prices: Prices.
        rng: Random draws.
        truth: True classes (drawn from ``probs`` when None).

    Returns:
        ``accuracy``, ``cost_per_item`` and the share of items decided in each tier.
    """
    n = len(probs)
    y = _draw(rng, probs) if truth is None else truth
    conf = probs.max(axis=1)
    pre = probs.argmax(axis=1)
    decided = np.full(n, -1)
    cost = np.zeros(n)
    hard = conf < routing.hard_confidence
    easy = ~hard & (conf >= routing.easy_confidence)
    medium = ~hard & ~easy
    post = np.clip(probs, 1e-6, None)
    nvotes = np.zeros(n, dtype=int)
    # Verify.
    idx = np.flatnonzero(easy)
    if len(idx):
        ans, like = _votes(rng, wf, y[idx])
        # Gold questions are mixed into verify batches too (see geolabel.loop.collect).
        cost[idx] += prices.verify + prices.crowd_vote * redundancy.gold_rate / (
            1.0 - redundancy.gold_rate
        )
        agree = ans == pre[idx]
        decided[idx[agree]] = pre[idx[agree]]
        wrong = idx[~agree]
        post[wrong] *= like[~agree]
        nvotes[wrong] = 1
        medium[wrong] = True
    # Crowd waves.
    active = np.flatnonzero(medium)
    first = True
    while len(active):
        need = np.where(first, np.maximum(redundancy.initial_votes - nvotes[active], 0), 1)
        first = False
        for _ in range(int(need.max(initial=0))):
            sel = active[need > 0]
            ans, like = _votes(rng, wf, y[sel])
            post[sel] *= like
            post[sel] /= post[sel].sum(axis=1, keepdims=True)
            nvotes[sel] += 1
            cost[sel] += prices.crowd_vote / (1.0 - redundancy.gold_rate)
            need = need - 1
        top = post[active].max(axis=1)
        active = active[
            (top < redundancy.target_posterior) & (nvotes[active] < redundancy.max_votes)
        ]
    med = np.flatnonzero(medium)
    unsure = med[post[med].max(axis=1) < redundancy.target_posterior]
    if redundancy.escalate:
        hard[unsure] = True
        medium[unsure] = False
    ok = np.flatnonzero(medium & (decided < 0))
    decided[ok] = post[ok].argmax(axis=1)
    # Experts.
    idx = np.flatnonzero(hard)
    if len(idx):
        decided[idx] = _draw(rng, wf.expert[y[idx]])
        cost[idx] += prices.expert
    return {
        "accuracy": float((decided == y).mean()),
        "cost_per_item": float(cost.mean()),
        "share_easy": float((easy & ~medium & ~hard).mean()),
        "share_medium": float(medium.mean()),
        "share_hard": float(hard.mean()),
    }


def simulate_uniform(
    probs: np.ndarray,
    wf: WorkforceModel,
    votes: int,
    prices: Prices,
    *,
    gold_rate: float,
    rng: np.random.Generator,
    truth: np.ndarray | None = None,
) -> dict[str, float]:
    """Accuracy and cost of ``votes`` crowd votes per item (no model prior), as a baseline."""
    n, k = probs.shape
    y = _draw(rng, probs) if truth is None else truth
    post = np.ones((n, k))
    for _ in range(votes):
        _, like = _votes(rng, wf, y)
        post *= like
        post /= post.sum(axis=1, keepdims=True)
    return {
        "accuracy": float((post.argmax(axis=1) == y).mean()),
        "cost_per_item": votes * prices.crowd_vote / (1.0 - gold_rate),
    }


@dataclass(frozen=True)
class PlanResult:
    """The cheapest setting that meets the target, and the curve behind it.

    Attributes:
        target: Target accuracy.
        met: Whether any setting reached it (else ``config`` is the most accurate one).
        config: The chosen settings (the input config with routing and redundancy replaced).
        accuracy: Expected accuracy of the choice (mean over replicates).
        cost_per_item: Expected cost per item of the choice.
        n_items: Items planned for.
        table: Every setting: ``easy_confidence, hard_confidence, initial_votes, max_votes,
            target_posterior, accuracy, cost_per_item, share_*``, ``pareto`` flag.
        uniform: Uniform crowd redundancy for comparison: ``votes, accuracy, cost_per_item``.
        workforce: How the people were modelled.
    """

    target: float
    met: bool
    config: LoopConfig
    accuracy: float
    cost_per_item: float
    n_items: int
    table: pd.DataFrame
    uniform: pd.DataFrame
    workforce: str

    def summary(self) -> dict[str, Any]:
        """JSON-able headline of the plan."""
        r, d = self.config.routing, self.config.redundancy
        return {
            "target": self.target,
            "met": self.met,
            "accuracy": round(self.accuracy, 4),
            "cost_per_item": round(self.cost_per_item, 4),
            "n_items": self.n_items,
            "easy_confidence": r.easy_confidence,
            "hard_confidence": r.hard_confidence,
            "initial_votes": d.initial_votes,
            "max_votes": d.max_votes,
            "target_posterior": d.target_posterior,
            "workforce": self.workforce,
        }


def _pareto(table: pd.DataFrame) -> pd.Series:
    order = table.sort_values(["cost_per_item", "accuracy"], ascending=[True, False]).index
    best = -1.0
    flags = pd.Series(False, index=table.index)
    accuracy = table["accuracy"].astype(float)
    for i in order:
        if float(accuracy[i]) > best:
            flags[i] = True
            best = float(accuracy[i])
    return flags


def plan(
    probs: np.ndarray,
    workforce: WorkforceModel,
    *,
    target: float,
    config: LoopConfig | None = None,
    replicates: int = 4,
    seed: int = 0,
) -> PlanResult:
    """Search routing thresholds and redundancy for the cheapest plan meeting ``target``.

    Args:
        probs: ``(n, K)`` calibrated pre-label probabilities of the items to label.
        workforce: :func:`estimate_workforce`'s estimate.
        target: Target accuracy in (0, 1].
        config: Prices, gold rate and everything not searched (defaults when None).
        replicates: Simulations per setting (common random numbers across settings).
        seed: Seed.

    Returns:
        The plan.

    Raises:
        ConfigError: Target out of range, or no items.
    """
    if not 0.0 < target <= 1.0:
        raise ConfigError(f"The target accuracy must be in (0, 1] (got {target}).")
    if probs.ndim != 2 or len(probs) == 0:
        raise ConfigError("The planner needs pre-label probabilities of at least one item.")
    cfg = config or LoopConfig()
    rows = []
    for easy, hard, first, most, tpost in itertools.product(
        EASY_GRID, HARD_GRID, INITIAL_GRID, MAX_GRID, TARGET_GRID
    ):
        if most < first or hard > easy:
            continue
        routing = replace(cfg.routing, easy_confidence=easy, hard_confidence=hard)
        red = replace(cfg.redundancy, initial_votes=first, max_votes=most, target_posterior=tpost)
        sims = [
            simulate_policy(
                probs,
                workforce,
                routing,
                red,
                cfg.prices,
                rng=np.random.default_rng([seed, rep]),
            )
            for rep in range(replicates)
        ]
        row: dict[str, Any] = {
            "easy_confidence": easy,
            "hard_confidence": hard,
            "initial_votes": first,
            "max_votes": most,
            "target_posterior": tpost,
        }
        for key in sims[0]:
            row[key] = float(np.mean([s[key] for s in sims]))
        row["accuracy_sd"] = float(np.std([s["accuracy"] for s in sims]))
        rows.append(row)
    table = pd.DataFrame(rows)
    table["pareto"] = _pareto(table)
    uniform = pd.DataFrame(
        [
            {
                "votes": v,
                **{k: float(np.mean([x[k] for x in sims])) for k in ("accuracy", "cost_per_item")},
            }
            for v in (1, 3, 5, 7, 9)
            for sims in [
                [
                    simulate_uniform(
                        probs,
                        workforce,
                        v,
                        cfg.prices,
                        gold_rate=cfg.redundancy.gold_rate,
                        rng=np.random.default_rng([seed, rep]),
                    )
                    for rep in range(replicates)
                ]
            ]
        ]
    )
    meets = table[table["accuracy"] >= target]
    met = not meets.empty
    best = (
        meets.sort_values(["cost_per_item", "accuracy"], ascending=[True, False]).iloc[0]
        if met
        else table.sort_values(["accuracy", "cost_per_item"], ascending=[False, True]).iloc[0]
    )
    chosen = cfg.with_updates(
        routing={
            "easy_confidence": float(best["easy_confidence"]),
            "hard_confidence": float(best["hard_confidence"]),
        },
        redundancy={
            "initial_votes": int(best["initial_votes"]),
            "max_votes": int(best["max_votes"]),
            "target_posterior": float(best["target_posterior"]),
        },
    )
    return PlanResult(
        target=float(target),
        met=met,
        config=chosen,
        accuracy=float(best["accuracy"]),
        cost_per_item=float(best["cost_per_item"]),
        n_items=len(probs),
        table=table,
        uniform=uniform,
        workforce=workforce.source,
    )


def plot_cost_accuracy(
    result: PlanResult,
    path: str | os.PathLike[str],
    *,
    observed: pd.DataFrame | None = None,
) -> Path:
    """Draw the cost–accuracy curve to a PNG.

    Args:
        result: A plan.
        path: PNG to write.
        observed: Optional ``cost_per_item, accuracy, label`` points measured in rounds.

    Returns:
        The path written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = result.table
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    ax.scatter(t["cost_per_item"], t["accuracy"], s=8, c="#bbbbbb", label="settings searched")
    front = t[t["pareto"]].sort_values("cost_per_item")
    ax.plot(
        front["cost_per_item"],
        front["accuracy"],
        "-o",
        ms=3,
        c="#1f77b4",
        label="hybrid (Pareto front)",
    )
    u = result.uniform
    ax.plot(
        u["cost_per_item"], u["accuracy"], "--s", ms=4, c="#d62728", label="uniform crowd votes"
    )
    for _, r in u.iterrows():
        ax.annotate(f"{int(r['votes'])}", (r["cost_per_item"], r["accuracy"]), fontsize=7)
    ax.axhline(result.target, c="#2ca02c", lw=0.8, ls=":", label=f"target {result.target:.0%}")
    ax.scatter(
        [result.cost_per_item],
        [result.accuracy],
        marker="*",
        s=160,
        c="#ff7f0e",
        zorder=5,
        label="chosen plan",
    )
    if observed is not None and len(observed):
        ax.scatter(
            observed["cost_per_item"],
            observed["accuracy"],
            marker="D",
            s=30,
            c="k",
            zorder=6,
            label="measured rounds",
        )
    ax.set_xlabel("cost per item")
    ax.set_ylabel("expected accuracy")
    ax.set_ylim(max(0.0, min(t["accuracy"].min(), u["accuracy"].min()) - 0.02), 1.005)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title("Cost–accuracy curve (simulated with the project's estimates)", fontsize=9)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out)
    plt.close(fig)
    return out
