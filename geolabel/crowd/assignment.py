r"""Task assignment: redundancy per item, balanced load, and gold questions nobody can spot.

:func:`assign_tasks` gives every item to ``redundancy`` distinct annotators and mixes in gold
questions (items whose answer is known) at a rate per annotator:

1. **Real items.** Items are taken in a seeded random order; each goes to the ``redundancy``
   annotators with the least load so far (ties broken at random), skipping annotators who
   already have the item (in this batch or, through ``exclude``, in earlier rounds). Loads
   then differ by at most one whenever nothing is excluded.
2. **Gold.** An annotator with :math:`n` real tasks gets :math:`g = \operatorname{round}(n\,r
   / (1 - r))` gold tasks, so gold is a share :math:`r` (``gold_rate``) of their queue. Gold
   items are drawn least-used first (ties at random) so they wear evenly, and never one the
   annotator has already seen.
3. **Positions.** Each annotator's queue is shuffled; gold goes to ``gold_position``:
   ``"random"`` (uniformly random slots) or ``"spread"`` (one random slot in each of :math:`g`
   equal stretches of the queue, so gold keeps coming all session long).

Gold tasks look exactly like the others: the same columns, task ids derived the same way
(from item, annotator and round), and positions drawn at random. What annotators see is
:meth:`TaskAssignment.export`, which has no ``is_gold`` column. The full assignment is stored
with :func:`save_assignment` (the project's ``tasks`` table) and read back with
:func:`load_assignment`.

Example:
    >>> a = assign_tasks(["p1", "p2", "p3", "p4"], ["w1", "w2", "w3"], redundancy=2,
    ...                  gold={"g1": "park", "g2": "water"}, gold_rate=0.25, seed=0)
    >>> sorted(a.loads().tolist())
    [3, 4, 4]
    >>> "is_gold" in a.export().columns
    False
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from geolabel.errors import AssignmentError, ColumnError

if TYPE_CHECKING:
    from geolabel.store import Project

__all__ = [
    "GoldPosition",
    "TaskAssignment",
    "assign_tasks",
    "load_assignment",
    "save_assignment",
    "task_id_for",
]

GoldPosition = Literal["random", "spread"]
_POSITIONS: tuple[str, ...] = ("random", "spread")
TASK_COLUMNS: tuple[str, ...] = ("task_id", "item", "annotator", "round_id", "is_gold", "position")


def task_id_for(item: str, annotator: str, round_id: int | None) -> str:
    """Return the task id of ``(item, annotator, round)``, as the project store derives it.

    Args:
        item: Item id.
        annotator: Annotator id.
        round_id: Round, or None.

    Returns:
        ``"t-"`` and 16 hex digits of the sha256 of the JSON list ``[item, annotator, round]``.
    """
    payload = json.dumps([item, annotator, round_id], sort_keys=True, ensure_ascii=False)
    return f"t-{hashlib.sha256(payload.encode('utf-8')).hexdigest()[:16]}"


@dataclass(frozen=True, slots=True)
class TaskAssignment:
    """A batch of tasks: which annotator labels which item, in which order.

    Attributes:
        tasks: Columns ``task_id``, ``item``, ``annotator``, ``round_id`` (nullable Int64),
            ``is_gold`` (bool) and ``position`` (0-based place in the annotator's queue),
            sorted by annotator then position.
        redundancy: Annotators per real item.
        gold_rate: Target share of gold in each annotator's queue.
        gold_position: ``"random"`` or ``"spread"``.
        seed: Seed of the random choices.
    """

    tasks: pd.DataFrame
    redundancy: int
    gold_rate: float
    gold_position: str
    seed: int | None

    def loads(self) -> pd.Series:
        """Return the number of tasks per annotator (gold included).

        Returns:
            Task count indexed by annotator.
        """
        return self.tasks.groupby("annotator", sort=True).size().rename("tasks")

    def export(self, annotator: Hashable | None = None) -> pd.DataFrame:
        """Return the tasks as annotators see them: no ``is_gold`` column.

        Args:
            annotator: Only this annotator's queue.

        Returns:
            Columns ``task_id``, ``item``, ``annotator``, ``position``, in queue order.
        """
        tasks = (
            self.tasks if annotator is None else self.tasks[self.tasks["annotator"] == annotator]
        )
        return tasks[["task_id", "item", "annotator", "position"]].reset_index(drop=True)


def _unique_list(values: Iterable[Hashable], what: str) -> list[str]:
    out = [str(v) for v in values]
    if any(not v.strip() for v in out):
        raise AssignmentError(f"{what} holds a blank id; give every {what[:-1]} an id.")
    dupes = sorted(v for v, n in Counter(out).items() if n > 1)
    if dupes:
        raise AssignmentError(f"{what} repeat {dupes[:5]}; list each once.")
    return out


def _gold_items(gold: Mapping[Hashable, Hashable] | pd.Series | pd.DataFrame | None) -> list[str]:
    if gold is None:
        return []
    if isinstance(gold, pd.DataFrame):
        if "item" not in gold.columns:
            present = ", ".join(map(str, gold.columns))
            raise ColumnError(f"gold lacks the column 'item'; columns present: {present}.")
        return sorted({str(v) for v in gold["item"].dropna()})
    if isinstance(gold, pd.Series):
        return sorted({str(v) for v in gold.index})
    return sorted({str(k) for k in gold})


def assign_tasks(
    items: Iterable[Hashable],
    annotators: Iterable[Hashable],
    *,
    redundancy: int = 3,
    gold: Mapping[Hashable, Hashable] | pd.Series | pd.DataFrame | None = None,
    gold_rate: float = 0.0,
    gold_position: GoldPosition = "random",
    exclude: pd.DataFrame | None = None,
    round_id: int | None = None,
    seed: int | None = 0,
) -> TaskAssignment:
    """Assign items to annotators with redundancy, balanced load and hidden gold.

    Args:
        items: Item ids to label (gold items may be among them; they then also count as real
            items).
        annotators: Annotator ids available.
        redundancy: Distinct annotators per real item.
        gold: Gold items (their answers are not needed here): a mapping/Series keyed by item
            or a frame with an ``item`` column.
        gold_rate: Target share of gold in each annotator's queue, in ``[0, 1)``.
        gold_position: ``"random"`` or ``"spread"`` (see the module docstring).
        exclude: ``(item, annotator)`` pairs never to assign (e.g. ``project.annotations()``
            of earlier rounds).
        round_id: Round the tasks belong to (stored with them).
        seed: Seed of the random choices (``None`` for fresh randomness).

    Returns:
        The assignment.

    Raises:
        AssignmentError: No items or annotators, repeated or blank ids, redundancy out of
            range or more than the annotators who can still take an item, a bad rate or
            position policy, or a gold rate without gold items.
        ColumnError: ``exclude`` or ``gold`` lacks its columns.
    """
    item_list = _unique_list(items, "items")
    pool = _unique_list(annotators, "annotators")
    if not item_list:
        raise AssignmentError("No items to assign; pass the item ids to label.")
    if not pool:
        raise AssignmentError("No annotators to assign to; pass at least one annotator id.")
    if (
        isinstance(redundancy, bool)
        or not isinstance(redundancy, int | np.integer)
        or not 1 <= redundancy <= len(pool)
    ):
        raise AssignmentError(
            f"redundancy must be an integer from 1 to the number of annotators ({len(pool)}), "
            f"got {redundancy!r}: an item never goes to the same annotator twice."
        )
    if not isinstance(gold_rate, int | float) or not 0.0 <= gold_rate < 1.0:
        raise AssignmentError(f"gold_rate must be in [0, 1), got {gold_rate!r}.")
    if gold_position not in _POSITIONS:
        raise AssignmentError(
            f"gold_position must be one of {', '.join(_POSITIONS)}, got {gold_position!r}."
        )
    gold_list = _gold_items(gold)
    if gold_rate > 0 and not gold_list:
        raise AssignmentError(
            f"gold_rate={gold_rate} needs gold items; pass gold= (e.g. the items of "
            "labels/gold.csv), or set gold_rate=0."
        )
    rng = np.random.default_rng(seed)
    n_ann = len(pool)
    ann_index = {a: j for j, a in enumerate(pool)}
    seen: dict[str, set[int]] = {}
    if exclude is not None:
        missing = [c for c in ("item", "annotator") if c not in exclude.columns]
        if missing:
            raise ColumnError(
                f"exclude lacks the column(s) {', '.join(map(repr, missing))}; it lists "
                "(item, annotator) pairs already done, like project.annotations()."
            )
        for it, an in zip(
            exclude["item"].astype(str), exclude["annotator"].astype(str), strict=True
        ):
            if an in ann_index:
                seen.setdefault(it, set()).add(ann_index[an])
    load = np.zeros(n_ann, dtype=np.int64)
    rows_item: list[str] = []
    rows_ann: list[int] = []
    for idx in rng.permutation(len(item_list)):
        item = item_list[idx]
        done = seen.setdefault(item, set())
        key = load + rng.random(n_ann)
        if done:
            key[list(done)] = np.inf
        if np.isinf(key).sum() > n_ann - redundancy:
            raise AssignmentError(
                f"Item {item!r} can go to only {n_ann - len(done)} annotator(s) who have not "
                f"labelled it yet, fewer than redundancy={redundancy}; add annotators or lower "
                "the redundancy."
            )
        pick = np.argpartition(key, redundancy - 1)[:redundancy]
        load[pick] += 1
        done.update(int(p) for p in pick)
        rows_item.extend([item] * redundancy)
        rows_ann.extend(int(p) for p in pick)
    gold_flags = [False] * len(rows_item)
    if gold_rate > 0:
        gold_use = np.zeros(len(gold_list), dtype=np.int64)
        for j in range(n_ann):
            n_gold = round(load[j] * gold_rate / (1.0 - gold_rate))
            if n_gold == 0:
                continue
            allowed = np.array([j not in seen.get(g, ()) for g in gold_list])
            n_gold = min(n_gold, int(allowed.sum()))
            key = np.where(allowed, gold_use + rng.random(len(gold_list)), np.inf)
            for g in np.argsort(key, kind="stable")[:n_gold]:
                gold_use[g] += 1
                seen.setdefault(gold_list[g], set()).add(j)
                rows_item.append(gold_list[g])
                rows_ann.append(j)
                gold_flags.append(True)
    frame = pd.DataFrame({"item": rows_item, "annotator_code": rows_ann, "is_gold": gold_flags})
    positions = np.empty(len(frame), dtype=np.int64)
    for _j, where in frame.groupby("annotator_code", sort=True).indices.items():
        flags = frame["is_gold"].to_numpy()[where]
        positions[where] = _queue_positions(flags, gold_position, rng)
    frame["position"] = positions
    frame["annotator"] = np.asarray(pool, dtype=object)[frame["annotator_code"].to_numpy()]
    frame["round_id"] = pd.array([round_id] * len(frame), dtype="Int64")
    frame["task_id"] = [
        task_id_for(i, a, round_id) for i, a in zip(frame["item"], frame["annotator"], strict=True)
    ]
    frame = frame.sort_values(["annotator_code", "position"], kind="stable")
    tasks = frame[list(TASK_COLUMNS)].reset_index(drop=True)
    return TaskAssignment(
        tasks=tasks,
        redundancy=int(redundancy),
        gold_rate=float(gold_rate),
        gold_position=gold_position,
        seed=seed,
    )


def _queue_positions(is_gold: np.ndarray, policy: str, rng: np.random.Generator) -> np.ndarray:
    """Return a queue position for each task of one annotator (gold placed by ``policy``)."""
    n = is_gold.size
    n_gold = int(is_gold.sum())
    if policy == "spread" and n_gold:
        edges = np.linspace(0, n, n_gold + 1)
        lows, highs = np.ceil(edges[:-1]).astype(int), np.ceil(edges[1:]).astype(int)
        gold_slots = lows + (rng.random(n_gold) * np.maximum(highs - lows, 1)).astype(int)
        gold_slots = np.minimum(gold_slots, n - 1)
    else:
        gold_slots = rng.choice(n, size=n_gold, replace=False)
    free = np.setdiff1d(np.arange(n), gold_slots)
    positions = np.empty(n, dtype=np.int64)
    positions[is_gold] = rng.permutation(gold_slots)
    positions[~is_gold] = rng.permutation(free)
    return positions


def save_assignment(project: Project, assignment: TaskAssignment) -> int:
    """Store an assignment in the project's ``tasks`` table (task ids already stored are kept).

    Args:
        project: An open project whose items include every assigned item.
        assignment: From :func:`assign_tasks`.

    Returns:
        Number of tasks added.

    Raises:
        StoreError: Unknown items or round (nothing is stored).
    """
    return project.add_tasks(assignment.tasks)


def load_assignment(project: Project, round_id: int | None = None) -> TaskAssignment:
    """Read stored tasks back as an assignment.

    Args:
        project: An open project.
        round_id: Only this round's tasks.

    Returns:
        The assignment; ``redundancy`` is the most common number of annotators per real
        item, ``gold_rate`` the observed share of gold.

    Raises:
        AssignmentError: No tasks are stored (for that round).
    """
    tasks = project.tasks(round_id)
    if tasks.empty:
        where = "" if round_id is None else f" for round {round_id}"
        raise AssignmentError(
            f"No tasks stored in {project.path}{where}; assign and save some with "
            "assign_tasks(...) and save_assignment(project, assignment)."
        )
    tasks = tasks[list(TASK_COLUMNS)].sort_values(["annotator", "position"], kind="stable")
    real = tasks[~tasks["is_gold"]]
    per_item = real.groupby("item").size()
    return TaskAssignment(
        tasks=tasks.reset_index(drop=True),
        redundancy=int(per_item.mode().iloc[0]) if len(per_item) else 0,
        gold_rate=float(tasks["is_gold"].mean()),
        gold_position="unknown",
        seed=None,
    )
