"""Collect human answers for routed items: verify, crowd votes with dynamic overlap, experts.

:func:`collect` runs the tiers of :mod:`geolabel.loop.route` against a :class:`Workforce`
(people behind a platform, or the simulated crowd of :class:`SimulatedWorkforce`) in waves:

1. **Verify** (easy): one crowd worker sees the pre-label. If they answer the same class, the
   pre-label is accepted; otherwise the item moves to the medium tier, the verifier's answer
   counting as its first vote.
2. **Crowd** (medium): ``initial_votes`` votes from distinct workers, gold questions mixed in at
   ``gold_rate``. Then Dawid–Skene (gold clamped, calibrated pre-labels as item priors, every
   earlier vote of the project included so annotator estimates use all evidence) gives each
   item a posterior; items whose top class is below ``target_posterior`` get one more vote,
   wave after wave, up to ``max_votes`` (Toloka's dynamic overlap).
3. **Expert** (hard, and medium items still unsure at ``max_votes`` when ``escalate``): one
   expert decision, which is final.

Every answer is returned with its tier and purpose (``verify``, ``vote``, ``gold``, ``expert``)
and every unit of work is priced with :class:`~geolabel.loop.config.Prices`, so a round reports
what it bought and what it cost.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd

from geolabel.crowd.dawid_skene import DawidSkene
from geolabel.crowd.simulate import CrowdSimulator
from geolabel.errors import AssignmentError, ColumnError
from geolabel.loop.config import LoopConfig

__all__ = [
    "MAX_WAVES",
    "CollectResult",
    "SimulatedWorkforce",
    "Wave",
    "Workforce",
    "collect",
    "next_wave",
    "posteriors",
    "price",
]

MAX_WAVES = 12
"""Waves of questions per batch at most; the last one settles what is left."""


class Workforce(Protocol):
    """People who answer tasks: ``crowd`` and ``experts`` ids, and :meth:`answer`."""

    crowd: Sequence[str]
    experts: Sequence[str]

    def answer(self, tasks: pd.DataFrame, wave: int) -> pd.DataFrame:
        """Answer ``item``/``annotator`` tasks.

        Returns ``item, annotator, label, created_at, seconds`` in task order.
        """
        ...


class SimulatedWorkforce:
    """The simulated crowd and experts of :mod:`geolabel.crowd.simulate` as a workforce.

    Args:
        simulator: The simulator (its profiles include the experts, ``kind == "expert"``).
        start: First day of work; wave ``w`` starts ``w`` hours later (sessions rest fatigue).
    """

    def __init__(self, simulator: CrowdSimulator, *, start: str = "2026-01-05T09:00:00Z") -> None:
        self.simulator = simulator
        self.crowd: Sequence[str] = [
            p.annotator_id for p in simulator.profiles if p.kind != "expert"
        ]
        self.experts: Sequence[str] = [
            p.annotator_id for p in simulator.profiles if p.kind == "expert"
        ]
        self._start = pd.Timestamp(start)

    def answer(self, tasks: pd.DataFrame, wave: int) -> pd.DataFrame:
        """Answer tasks as the simulated people would (deterministic per item and annotator)."""
        start = self._start + pd.Timedelta(hours=int(wave))
        return self.simulator.label(tasks[["item", "annotator"]], start=start)


@dataclass(frozen=True)
class CollectResult:
    """What collecting answers for one batch produced.

    Attributes:
        votes: Every answer: ``item, annotator, label, created_at, seconds, tier, purpose``
            (``verify``, ``vote``, ``gold``, ``expert``).
        decisions: One row per routed item: ``item``, ``label``, ``confidence`` (posterior of
            the label; 1 for expert decisions), ``tier`` (as routed), ``final_tier`` (where it
            was decided), ``method`` (``prelabel_verified``, ``crowd``, ``expert``),
            ``n_votes``.
        counts: Units of work bought: ``verify``, ``vote``, ``gold``, ``expert``.
        cost: Price of each kind of work and ``total``.
        waves: Waves of crowd votes run.
    """

    votes: pd.DataFrame
    decisions: pd.DataFrame
    counts: Mapping[str, int]
    cost: Mapping[str, float]
    waves: int


def posteriors(
    votes: pd.DataFrame,
    classes: Sequence[str],
    *,
    gold: pd.Series | None = None,
    prior: pd.DataFrame | None = None,
    shrink_votes: float = 10.0,
) -> pd.DataFrame:
    """Posterior class probabilities of every voted item, for deciding when to stop asking.

    Annotator confusion matrices are estimated by Dawid–Skene on the votes alone (gold
    clamped), never with the model's pre-labels: a confident model would otherwise teach EM that
    people who disagree with it are confused. Each annotator's matrix is shrunk towards the
    crowd's mean matrix by ``n / (n + shrink_votes)`` (``n``: their votes), so someone with a
    handful of votes does not count as an oracle. The posterior of an item is then its prior
    (the calibrated pre-label, or the class shares DS estimated) times the likelihood of its
    votes under those matrices; gold items are clamped to their answer.

    Args:
        votes: ``item, annotator, label`` (other columns ignored).
        classes: Class order of the result.
        gold: Item -> known label.
        prior: Item-indexed class probabilities (pre-labels).
        shrink_votes: Pseudo-votes of the crowd's mean matrix in each annotator's estimate.

    Returns:
        Item x class posterior probabilities.
    """
    classes = list(classes)
    frame = votes[["item", "annotator", "label"]].astype(str)
    frame = frame.drop_duplicates(["item", "annotator"], keep="last")
    if frame.empty:
        return pd.DataFrame(columns=classes, dtype=float)
    k = len(classes)
    g = None
    if gold is not None:
        g = gold[gold.index.isin(frame["item"])]
        g = g if len(g) else None
    if frame["annotator"].nunique() >= 2:
        ds = DawidSkene(classes=classes, n_iter=50).fit(frame, g)
        conf = np.asarray(ds.confusions_, dtype=np.float64)
        names = pd.Index([str(a) for a in ds.annotators_])
        class_prior = np.asarray(ds.priors_.reindex(classes).fillna(1.0 / k), dtype=np.float64)
    else:  # one annotator: assume a 0.75-accurate person
        names = pd.Index(frame["annotator"].unique())
        conf = np.full((1, k, k), 0.25 / max(1, k - 1))
        conf[0][np.diag_indices(k)] = 0.75
        class_prior = np.full(k, 1.0 / k)
    n_a = frame["annotator"].value_counts().reindex(names).fillna(0).to_numpy(np.float64)
    mean = (conf * n_a[:, None, None]).sum(axis=0) / max(n_a.sum(), 1.0)
    w = (n_a / (n_a + shrink_votes))[:, None, None]
    conf = np.clip(w * conf + (1.0 - w) * mean, 1e-4, None)
    conf /= conf.sum(axis=2, keepdims=True)
    items = pd.Index(frame["item"].unique())
    log_post = np.tile(np.log(np.clip(class_prior, 1e-9, None)), (len(items), 1))
    if prior is not None:
        p = prior.reindex(index=items, columns=classes)
        have = p.notna().all(axis=1).to_numpy()
        vals = p.to_numpy(np.float64)
        log_post[have] = np.log(
            np.clip(vals[have] / vals[have].sum(axis=1, keepdims=True), 1e-9, None)
        )
    code = {c: n for n, c in enumerate(classes)}
    ii = items.get_indexer(pd.Index(frame["item"]))
    aa = names.get_indexer(pd.Index(frame["annotator"]))
    ll = frame["label"].map(code).to_numpy()
    ok = ~pd.isna(ll)
    ll = ll[ok].astype(np.int64)
    np.add.at(log_post, ii[ok], np.log(conf[aa[ok], :, ll]))
    log_post -= log_post.max(axis=1, keepdims=True)
    post = np.exp(log_post)
    post /= post.sum(axis=1, keepdims=True)
    out = pd.DataFrame(post, index=items, columns=classes)
    if g is not None:
        for item, label in g.items():
            if str(item) in out.index and label in code:
                out.loc[str(item)] = 0.0
                out.at[str(item), label] = 1.0
    return out


class _Assigner:
    """Least-loaded workers who have not answered an item yet; ties broken at random."""

    def __init__(self, workers: Sequence[str], seen: pd.DataFrame, seed: int) -> None:
        if not workers:
            raise AssignmentError("No workers to assign tasks to.")
        self.workers = list(workers)
        self.load: Counter[str] = Counter()
        self.done: dict[str, set[str]] = {}
        for item, annotator in zip(seen["item"], seen["annotator"], strict=True):
            self.done.setdefault(str(item), set()).add(str(annotator))
        self.rng = np.random.default_rng([seed, 11])

    def pick(self, item: str, n: int) -> list[str]:
        taken = self.done.setdefault(item, set())
        free = [w for w in self.workers if w not in taken]
        if not free:
            return []
        jitter = self.rng.random(len(free))
        order = sorted(range(len(free)), key=lambda k: (self.load[free[k]], jitter[k]))
        chosen = [free[k] for k in order[:n]]
        for w in chosen:
            self.load[w] += 1
            taken.add(w)
        return chosen


_ANSWER_COLUMNS = ["item", "annotator", "label", "created_at", "seconds", "tier", "purpose"]
_TASK_COLUMNS = ["item", "annotator", "tier", "purpose"]


@dataclass(frozen=True)
class Wave:
    """The state of a batch after the answers so far, and the tasks still to ask.

    Attributes:
        tasks: ``item, annotator, tier, purpose`` to ask next (empty when the batch is done).
        decisions: One row per routed item (see :class:`CollectResult`); ``method`` is
            ``undecided`` for items still waiting.
    """

    tasks: pd.DataFrame
    decisions: pd.DataFrame

    @property
    def done(self) -> bool:
        """Whether nothing is left to ask."""
        return self.tasks.empty


def next_wave(
    routed: pd.DataFrame,
    prelabels: pd.DataFrame,
    answers: pd.DataFrame,
    config: LoopConfig,
    *,
    classes: Sequence[str],
    crowd: Sequence[str],
    experts: Sequence[str],
    gold: pd.Series | None = None,
    history: pd.DataFrame | None = None,
    wave: int = 0,
    last: bool = False,
) -> Wave:
    """Decide what is settled and what to ask next, from the answers of the batch so far.

    A pure function of its inputs, so a round interrupted between waves resumes from the
    stored answers alone: verify the easy items; for each verified item whose verifier disagreed
    and each medium item, votes up to ``initial_votes``, then one more while the posterior is
    below ``target_posterior`` and the item has fewer than ``max_votes``; an expert for the hard
    items and, with ``escalate``, for medium items still unsure at ``max_votes``. Gold questions
    are mixed into every wave of crowd tasks at ``gold_rate``.

    Args:
        routed: ``item`` and ``tier``.
        prelabels: Item-indexed ``label`` and ``p_<class>`` columns (calibrated).
        answers: Answers of this batch so far: ``item, annotator, label, purpose``
            (``verify``, ``vote``, ``gold``, ``expert``).
        config: Redundancy, prices and seed.
        classes: The taxonomy's classes.
        crowd: Crowd worker ids.
        experts: Expert ids.
        gold: Item -> known answer.
        history: Earlier votes of the project (annotator estimates; never re-asked).
        wave: Wave number (seeds the draws of this wave).
        last: No more waves will run (the wave cap was reached): every item still waiting is
            decided from what is there (the posterior's top class), never left undecided.

    Returns:
        The tasks to ask and the decisions so far.

    Raises:
        ColumnError: ``routed`` lacks ``item`` or ``tier``.
        AssignmentError: An expert is needed and there is none.
    """
    for col in ("item", "tier"):
        if col not in routed.columns:
            raise ColumnError(f"Routed items need an {col!r} column.")
    red = config.redundancy
    classes = list(classes)
    prob_cols = [f"p_{c}" for c in classes]
    prior = (
        prelabels[prob_cols].set_axis(classes, axis=1).clip(lower=1e-6)
        if all(c in prelabels.columns for c in prob_cols)
        else None
    )
    pre_label = prelabels["label"].to_dict() if "label" in prelabels.columns else {}
    history = (
        history[["item", "annotator", "label"]]
        if history is not None and len(history)
        else pd.DataFrame(columns=["item", "annotator", "label"])
    )
    answers = answers if len(answers) else pd.DataFrame(columns=_ANSWER_COLUMNS)
    gold = gold if gold is not None else pd.Series(dtype=object)
    items = routed["item"].astype(str).tolist()
    tier_of = dict(zip(items, routed["tier"], strict=True))
    seen = pd.concat([history, answers[["item", "annotator", "label"]]], ignore_index=True)
    assigner = _Assigner(crowd, seen, config.seed + 1000 * wave)
    # Plain lists per item and purpose: (annotator, label) in answer order.
    by_item: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for item, annotator, answer, purpose in zip(
        answers["item"].astype(str),
        answers["annotator"].astype(str),
        answers["label"].astype(str),
        answers["purpose"].astype(str),
        strict=True,
    ):
        by_item.setdefault((item, purpose), []).append((annotator, answer))

    def of(item: str, purpose: str) -> list[tuple[str, str]]:
        return by_item.get((item, purpose), [])

    need_post = [i for i in items if of(i, "vote") or of(i, "verify")]
    post = pd.DataFrame(columns=classes, dtype=float)
    if need_post:
        voted = pd.concat([history, answers[answers["purpose"] != "expert"]], ignore_index=True)
        post = posteriors(voted, classes, gold=gold if len(gold) else None, prior=prior)
    tasks: list[tuple[str, str, str, str]] = []
    rows = []
    expert_load: Counter[str] = Counter(answers.loc[answers["purpose"] == "expert", "annotator"])
    for item in items:
        tier = tier_of[item]
        final, conf, method = tier, float("nan"), "undecided"
        label: str | None = None
        expert = of(item, "expert")
        verify = of(item, "verify")
        crowd_votes = len(verify) + len(of(item, "vote"))
        p = pd.Series(post.loc[item], dtype=float) if item in post.index else None
        if expert:
            final, label, conf, method = "hard", expert[-1][1], 1.0, "expert"
        elif tier == "hard":
            final = "hard"
        elif tier == "easy" and not verify:
            if who := assigner.pick(item, 1):
                tasks.append((item, who[0], "easy", "verify"))
        elif tier == "easy" and verify[0][1] == pre_label.get(item):
            label = verify[0][1]
            conf = float(p[label]) if p is not None and label in p.index else float("nan")
            method = "prelabel_verified"
        else:
            final = "medium"
            top = float(p.max()) if p is not None else 0.0
            if last and p is not None:
                label, conf, method = str(p.idxmax()), top, "crowd"
            elif crowd_votes < red.initial_votes:
                n = red.initial_votes - crowd_votes
                tasks += [(item, w, tier, "vote") for w in assigner.pick(item, n)]
            elif top < red.target_posterior and crowd_votes < red.max_votes:
                tasks += [(item, w, tier, "vote") for w in assigner.pick(item, 1)]
            elif top < red.target_posterior and red.escalate:
                final = "hard"
            elif p is not None:
                label, conf, method = str(p.idxmax()), top, "crowd"
        if final == "hard" and method == "undecided" and not last:
            if not experts:
                raise AssignmentError(
                    f"Item {item} needs an expert but the workforce has none; add experts or"
                    " set routing.hard_confidence to 0 and redundancy.escalate to false."
                )
            # An expert who has not labeled the item before (a relabel after a taxonomy change
            # goes to fresh eyes), the least loaded first.
            answered = assigner.done.get(item, set())
            who_e = min(experts, key=lambda e: (e in answered, expert_load[e], e))
            expert_load[who_e] += 1
            tasks.append((item, who_e, tier, "expert"))
        rows.append(
            {
                "item": item,
                "label": label,
                "confidence": conf,
                "tier": tier,
                "final_tier": final,
                "method": method,
                "n_votes": crowd_votes,
            }
        )
    n_crowd = sum(1 for t in tasks if t[3] in ("verify", "vote"))
    gold_items = [str(i) for i in gold.index]
    if gold_items and red.gold_rate > 0 and n_crowd:
        n = round(n_crowd * red.gold_rate / (1.0 - red.gold_rate))
        rng = np.random.default_rng([config.seed, 13, wave])
        for item in rng.choice(gold_items, size=n, replace=True):
            if who := assigner.pick(str(item), 1):
                tasks.append((str(item), who[0], "medium", "gold"))
    return Wave(pd.DataFrame(tasks, columns=_TASK_COLUMNS), pd.DataFrame(rows))


def price(answers: pd.DataFrame, config: LoopConfig) -> tuple[dict[str, int], dict[str, float]]:
    """Units of work in ``answers`` (by ``purpose``) and what they cost."""
    counts = {k: int((answers["purpose"] == k).sum()) for k in ("verify", "vote", "gold", "expert")}
    p = config.prices
    cost = {
        "verify": counts["verify"] * p.verify,
        "vote": counts["vote"] * p.crowd_vote,
        "gold": counts["gold"] * p.crowd_vote,
        "expert": counts["expert"] * p.expert,
    }
    cost["total"] = float(sum(cost.values()))
    return counts, cost


def collect(
    routed: pd.DataFrame,
    prelabels: pd.DataFrame,
    workforce: Workforce,
    config: LoopConfig,
    *,
    classes: Sequence[str],
    gold: pd.Series | None = None,
    history: pd.DataFrame | None = None,
) -> CollectResult:
    """Run a batch to the end against a workforce, wave by wave (see :func:`next_wave`).

    Args:
        routed: ``item`` and ``tier`` (from :func:`geolabel.loop.route.route`).
        prelabels: Item-indexed ``label`` and ``p_<class>`` columns (calibrated).
        workforce: Who answers.
        config: Prices, redundancy and the seed.
        classes: The taxonomy's classes.
        gold: Item -> known label, for gold questions and clamping.
        history: Earlier votes of the project (``item, annotator, label``).

    Returns:
        The answers, decisions, counts and cost.
    """
    answers = pd.DataFrame(columns=_ANSWER_COLUMNS)
    wave = 0
    while True:
        # At the wave cap, what is left is settled from the answers there are (last=True).
        last = wave >= MAX_WAVES
        step = next_wave(
            routed,
            prelabels,
            answers,
            config,
            classes=classes,
            crowd=workforce.crowd,
            experts=workforce.experts,
            gold=gold,
            history=history,
            wave=wave,
            last=last,
        )
        if step.done or last:
            break
        got = workforce.answer(step.tasks[["item", "annotator"]], wave).copy()
        got["tier"] = step.tasks["tier"].to_numpy()
        got["purpose"] = step.tasks["purpose"].to_numpy()
        answers = got if answers.empty else pd.concat([answers, got], ignore_index=True)
        wave += 1
    counts, cost = price(answers, config)
    return CollectResult(
        votes=answers, decisions=step.decisions, counts=counts, cost=cost, waves=wave
    )
