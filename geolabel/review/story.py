"""The review chapter of the demo: hotspot -> queue -> simulated expert -> taxonomy v2 -> relabel.

:func:`run` is what ``geolabel demo`` calls after the first crowd round: it ranks the review
queue (hotspots from :mod:`geolabel.review.hotspots`), lets a :class:`SimulatedExpert` decide the
top of it from the truth, applies the split the expert proposes (taxonomy v2 with
``mixed_use``; labels remapped; split parcels flagged for relabeling, also listed as JSON in the
project's ``review.relabel`` meta key for the next round's routing), regenerates the guidelines,
and returns the story as lines of text.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from geolabel.errors import ReviewError
from geolabel.review.decisions import record_decisions
from geolabel.review.evolution import apply_proposals, proposals
from geolabel.review.guidelines import write_guidelines
from geolabel.review.queue import project_queue
from geolabel.review.simulate import SimulatedExpert
from geolabel.store import Project

__all__ = ["run"]


def run(
    project_path: str | os.PathLike[str],
    *,
    truth: pd.DataFrame,
    say: Callable[[str], None] | None = None,
    limit: int = 30,
    reviewer: str = "expert-sim",
    admin: str = "admin-sim",
    min_mixed: int = 3,
    hotspots: pd.DataFrame | None = None,
    permutations: int | None = None,
    guidelines_dir: str | os.PathLike[str] | None = None,
    require_hotspot: bool = True,
    model_uncertainty: bool = False,
) -> list[str]:
    """Run the review chapter of the demo on a project.

    Args:
        project_path: The project, after a crowd round with consensus.
        truth: The simulator's truth (``item``, ``label``; ``ambiguity`` to report how many
            planted mixed-use parcels were caught).
        say: Called with each line as it happens (progress); lines are also returned.
        limit: Queue items the expert decides.
        reviewer: The simulated expert's id.
        admin: Who applies the proposals.
        min_mixed: Mixed-use decisions in one hotspot that make the expert propose the split.
        hotspots: A hotspot items frame (computed by the hotspot module when None).
        permutations: Gi* permutations when the hotspots are computed here.
        guidelines_dir: Where to write the new guidelines; ``<project>_review/guidelines``
            when None.
        require_hotspot: The expert proposes the split only from mixed-use parcels inside one
            hotspot; False lets mixed-use parcels anywhere in the decided part of the queue
            count (early rounds, when too few parcels have votes for a significant hotspot).
        model_uncertainty: Compute the hotspots with the model's doubt standing in for
            parcels with fewer than two votes
            (:func:`~geolabel.review.hotspots.project_hotspots`): what lets round 1, when
            few parcels have votes, show the hotspot.

    Returns:
        The story, one line per step.

    Raises:
        ReviewError: The project has no disputed items to review.
    """
    lines: list[str] = []

    def tell(text: str) -> None:
        lines.append(text)
        if say is not None:
            say(text)

    path = Path(project_path)
    mixed = (
        set(truth.loc[truth["ambiguity"] == "mixed_use", "item"].astype(str))
        if "ambiguity" in truth.columns
        else set()
    )
    with Project.open(path) as project:
        if hotspots is None and model_uncertainty:
            from geolabel.review.hotspots import project_hotspots

            try:
                found = project_hotspots(project, model_uncertainty=True, permutations=permutations)
                hotspots = found.items
                tell(
                    f"Hotspots (Gi*, crowd disagreement and, where fewer than two votes, the"
                    f" model's doubt): {len(found.polygons)} significant, over"
                    f" {int(found.items['significant'].sum())} parcels"
                    + (
                        f", {len(mixed & set(found.items.loc[found.items['significant'], 'item']))}"
                        f" of the {len(mixed)} planted mixed-use among them."
                        if mixed
                        else "."
                    )
                )
            except ReviewError as exc:
                tell(f"No hotspot test yet: {exc}")
        queue = project_queue(project, hotspots=hotspots, permutations=permutations)
        if queue.empty:
            raise ReviewError(f"{path}: nothing to review (no disputed items).")
        top = queue.head(max(len(mixed), 10))
        in_hotspots = top[top["in_hotspot"]]
        if len(in_hotspots):
            first = in_hotspots["hotspot_id"].iloc[0]
            members = queue[queue["hotspot_id"] == first]
            pairs = members["top_pair"].dropna()
            pair = f", mostly {pairs.mode().iloc[0]}" if len(pairs) else ""
            tell(
                f"Review queue: hotspot {first} ({len(members)} parcels{pair}) comes first; "
                f"{len(in_hotspots)} of the top {len(top)} items are in hotspots"
                + (
                    f", {len(mixed & set(top['item']))} of them planted mixed-use."
                    if mixed
                    else "."
                )
            )
        else:
            tell(f"Review queue: {len(queue)} items, no significant hotspot among the top.")
        taxonomy = project.current_taxonomy()
        expert = SimulatedExpert(
            truth, reviewer=reviewer, min_mixed=min_mixed, require_hotspot=require_hotspot
        )
        decisions = expert.decide(queue, taxonomy, limit=limit)
        batch = record_decisions(project, decisions)
        tell(
            f"Expert {reviewer} decided {len(batch.stored)} items "
            f"({len(batch.conflicts)} conflicts)."
        )
        pending = proposals(project, status="pending")
        if pending.empty:
            tell("No taxonomy change was proposed.")
            return lines
        for change_text, why in zip(
            [p.describe() for p in pending["proposal"]], pending["rationale"], strict=True
        ):
            tell(f"Proposal: {change_text}. {why}")
        change = apply_proposals(project, applied_by=admin)  # also sets meta review.relabel
        caught = f" ({len(mixed & set(change.relabel))} of {len(mixed)} planted mixed-use)"
        tell(
            f"Taxonomy {change.name} v{change.from_version} -> v{change.to_version}: "
            f"{change.n_remapped} labels remapped, {len(change.relabel)} parcels flagged for "
            f"relabeling{caught if mixed else ''}."
        )
        folder = (
            Path(guidelines_dir)
            if guidelines_dir is not None
            else path.with_name(f"{path.stem}_review") / "guidelines"
        )
        written = write_guidelines(project, folder)
        tell(f"Guidelines regenerated: {', '.join(str(p) for p in written)}.")
    return lines
