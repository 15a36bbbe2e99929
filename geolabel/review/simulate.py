"""A simulated expert for the demo and the tests: decides queue items from the truth.

Like the simulated crowd (:mod:`geolabel.crowd.simulate`), the expert reads the "world": the
true label of every item. It works down the review queue and decides each item:

* an item whose true class is in the taxonomy gets that class (an expert is right; with
  ``error_rate`` > 0 it sometimes picks the item's plausible second class instead);
* an item whose true class the taxonomy lacks (``mixed_use`` under land-use v1) gets the label
  the taxonomy's edge rule prescribes (``fallback``: shops with flats above of equal floor
  area are residential in v1), with a rationale that says so;
* once ``min_mixed`` decided items of one hotspot are truly of the same missing class, the
  decision that completes the count carries a proposal to split the classes those items fall
  between (``split_classes``: residential and commercial) and add the missing class, with a
  rationale naming the hotspot and the parcels. The proposal is made once per class.

After the split is applied (taxonomy v2 has ``mixed_use``), the relabel items come first in the
queue and the same expert labels them ``mixed_use``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from geolabel.errors import ColumnError, InputFileError, ReviewError
from geolabel.review.decisions import Decision
from geolabel.review.evolution import TaxonomyProposal
from geolabel.taxonomy import Taxonomy

__all__ = ["MIXED_USE_DEFINITION", "SimulatedExpert"]

MIXED_USE_DEFINITION = (
    "Parcels where homes and shops, offices or services share the buildings in comparable "
    "floor areas, typically one or two storeys of shops or offices with flats above."
)
"""Definition the simulated expert proposes for ``mixed_use``."""

_DEFAULT_FALLBACK: Mapping[str, str] = {"mixed_use": "residential"}


class SimulatedExpert:
    """An expert reviewer that decides from the truth and proposes the missing class.

    Args:
        truth: One row per item: ``item`` and ``label`` (the true class, possibly one the
            taxonomy lacks), optional ``alt_label`` (a plausible second class).
        reviewer: The expert's annotator id.
        min_mixed: Decided items of one hotspot, truly of a missing class, that trigger the
            split proposal.
        split_classes: The classes the missing class is carved out of.
        fallback: Missing true class -> the label the current taxonomy's edge rules give it.
        require_hotspot: Count only items in a hotspot (``hotspot_id`` in the queue) towards
            ``min_mixed``; with False every decided item counts (under one pseudo-hotspot).
        error_rate: Probability of answering the ``alt_label`` (or another class) instead of
            the truth.
        seed: Seed of the errors.

    Example:
        >>> expert = SimulatedExpert.from_sample("data/sample/truth")  # doctest: +SKIP
        >>> decisions = expert.decide(queue, project.current_taxonomy(), limit=20)  # doctest: +SKIP
        >>> record_decisions(project, decisions)  # doctest: +SKIP
    """

    def __init__(
        self,
        truth: pd.DataFrame,
        *,
        reviewer: str = "expert-sim",
        min_mixed: int = 3,
        split_classes: Sequence[str] = ("residential", "commercial"),
        fallback: Mapping[str, str] | None = None,
        require_hotspot: bool = True,
        error_rate: float = 0.0,
        seed: int = 0,
    ) -> None:
        missing = [c for c in ("item", "label") if c not in truth.columns]
        if missing:
            raise ColumnError(
                f"SimulatedExpert: the truth frame lacks {', '.join(missing)} (it has "
                f"{', '.join(map(str, truth.columns))}); use SimulatedExpert.from_sample(dir) "
                "for a sample's truth/parcels.csv."
            )
        if min_mixed < 1:
            raise ReviewError(f"min_mixed must be >= 1, got {min_mixed}.")
        if not 0.0 <= error_rate <= 1.0:
            raise ReviewError(f"error_rate must be in [0, 1], got {error_rate}.")
        if not reviewer.strip():
            raise ReviewError("SimulatedExpert needs a reviewer id.")
        frame = truth.assign(item=truth["item"].astype(str)).drop_duplicates("item", keep="last")
        self._truth = frame.set_index("item")["label"].astype(str)
        self._alt = (
            frame.set_index("item")["alt_label"]
            if "alt_label" in frame.columns
            else pd.Series(dtype=object)
        )
        self.reviewer = reviewer
        self.min_mixed = int(min_mixed)
        self.split_classes = tuple(split_classes)
        self.fallback = dict(_DEFAULT_FALLBACK if fallback is None else fallback)
        self.require_hotspot = require_hotspot
        self.error_rate = float(error_rate)
        self._rng = np.random.default_rng(seed)
        self._missing_seen: dict[tuple[str, str], list[str]] = {}
        self._proposed: set[str] = set()

    @classmethod
    def from_sample(cls, truth_dir: str | os.PathLike[str], **kwargs: object) -> SimulatedExpert:
        """Build the expert from a sample's ``truth/parcels.csv`` (``parcel_id``, ``land_use``).

        Args:
            truth_dir: The sample's ``truth`` folder.
            **kwargs: Passed to the constructor.

        Returns:
            The expert.

        Raises:
            InputFileError: The file is missing.
        """
        path = Path(truth_dir) / "parcels.csv"
        if not path.is_file():
            raise InputFileError(
                f"{path} does not exist; give the truth/ folder of a sample made by "
                "`geolabel sample`."
            )
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
        truth = pd.DataFrame(
            {
                "item": raw["parcel_id"],
                "label": raw["land_use"],
                "alt_label": raw.get("alt_label", pd.Series([""] * len(raw))).replace("", None),
            }
        )
        return cls(truth, **kwargs)  # type: ignore[arg-type]

    def _answer(self, item: str, taxonomy: Taxonomy) -> tuple[str, str, str | None]:
        """Return (label, rationale, missing true class or None) for one item."""
        allowed = taxonomy.parcel_class_ids
        true = self._truth.get(item)
        if true is None:
            raise ReviewError(
                f"SimulatedExpert has no truth for item {item!r}; give a truth frame that "
                "covers the queue."
            )
        if true in allowed:
            label = true
            if self.error_rate and self._rng.random() < self.error_rate:
                alt = self._alt.get(item)
                others = [c for c in allowed if c != true]
                label = (
                    alt
                    if isinstance(alt, str) and alt in allowed
                    else str(self._rng.choice(others))
                )
            why = f"Imagery and records show {taxonomy.get(label).name.lower()} use."
            return label, why, None
        label = self.fallback.get(true) or next(
            (c for c in self.split_classes if c in allowed), allowed[0]
        )
        why = (
            f"Truly {true.replace('_', ' ')} (shops or offices with flats above); "
            f"{taxonomy.label} has no such class, so labelled {label} by its floor-area edge "
            "rule and flagged."
        )
        return label, why, true

    def decide(
        self, queue: pd.DataFrame, taxonomy: Taxonomy, *, limit: int | None = None
    ) -> list[Decision]:
        """Decide the first ``limit`` items of the queue (all when None), in queue order.

        Args:
            queue: The review queue (``item``; ``version`` and ``hotspot_id`` when present).
            taxonomy: The current taxonomy.
            limit: How many items to decide.

        Returns:
            One decision per item; the one completing ``min_mixed`` missing-class items in a
            hotspot carries the split proposal.

        Raises:
            ColumnError: The queue has no ``item`` column.
            ReviewError: An item has no truth.
        """
        if "item" not in queue.columns:
            raise ColumnError("SimulatedExpert.decide: the queue has no 'item' column.")
        rows = queue.head(limit) if limit is not None else queue
        decisions: list[Decision] = []
        for row in rows.to_dict(orient="records"):
            item = str(row["item"])
            label, why, missing = self._answer(item, taxonomy)
            version = row.get("version")
            expected = None if version is None or pd.isna(version) else int(version)
            proposals: tuple[TaxonomyProposal, ...] = ()
            hotspot = row.get("hotspot_id")
            in_hotspot = isinstance(hotspot, str) and hotspot != ""
            if (
                missing is not None
                and missing not in taxonomy
                and (in_hotspot or not self.require_hotspot)
            ):
                key = (str(hotspot) if in_hotspot else "all", missing)
                seen = self._missing_seen.setdefault(key, [])
                seen.append(item)
                if len(seen) >= self.min_mixed and missing not in self._proposed:
                    proposals = (self._split_proposal(missing, key[0], seen, taxonomy),)
                    self._proposed.add(missing)
            decisions.append(Decision(item, label, self.reviewer, why, expected, proposals))
        return decisions

    def _split_proposal(
        self, missing: str, hotspot: str, items: Sequence[str], taxonomy: Taxonomy
    ) -> TaxonomyProposal:
        classes = tuple(c for c in self.split_classes if c in taxonomy)
        names = " nor ".join(taxonomy.get(c).name.lower() for c in classes)
        where = f"hotspot {hotspot}" if hotspot != "all" else "the queue"
        return TaxonomyProposal(
            kind="split",
            classes=classes,
            new_class=missing,
            name=missing.replace("_", " ").capitalize(),
            definition=MIXED_USE_DEFINITION if missing == "mixed_use" else f"{missing} use.",
            question=(
                "Do homes and shops, offices or services share the buildings in comparable "
                "floor areas (for example shops with flats above)?"
            ),
            text="A block of ground-floor shops with two storeys of flats above.",
            items=tuple(items),
            rationale=(
                f"{len(items)} parcels decided in {where} ({', '.join(items[:6])}"
                f"{'...' if len(items) > 6 else ''}) are shops with flats above: neither "
                f"{names} describes them, the crowd splits between the two, and the "
                "floor-area rule of the current version decides them arbitrarily. A "
                f"{missing.replace('_', ' ')} class makes these labels consistent."
            ),
        )
