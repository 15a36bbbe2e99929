"""Routing by difficulty: each selected item goes to the tier where human time is spent best.

Tiers, checked in this order:

``hard`` (an expert)
    Known edge cases (items flagged for relabeling after a taxonomy change, items in a
    disagreement hotspot, items whose earlier votes disagreed), calibrated confidence below
    ``routing.hard_confidence``, or novelty above ``routing.hard_novelty`` (nothing like it has
    been labeled, so neither the model nor the crowd's gold covers it).
``easy`` (verify)
    Confidence at or above ``routing.easy_confidence``, and not high impact when
    ``routing.impact_to_medium`` is set. One person sees the pre-label and accepts or corrects
    it; a correction sends the item on to the medium tier in the same round.
``medium`` (crowd)
    Everything else: ``redundancy.initial_votes`` crowd votes with gold mixed in, then one more
    at a time while the posterior is below ``redundancy.target_posterior``, up to
    ``redundancy.max_votes`` (dynamic overlap); still unsure after that goes to an expert when
    ``redundancy.escalate`` is set.

The reason for each decision is kept, so a round's report can say why an item cost what it did.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Final, Literal

import pandas as pd

from geolabel.errors import ColumnError
from geolabel.loop.config import Routing

__all__ = ["TIERS", "Tier", "route"]

Tier = Literal["easy", "medium", "hard"]
TIERS: Final[tuple[str, ...]] = ("easy", "medium", "hard")


def route(
    candidates: pd.DataFrame,
    routing: Routing,
    *,
    edge_cases: Collection[str] = (),
    novelty: pd.Series | None = None,
    impact: pd.Series | None = None,
) -> pd.DataFrame:
    """Put every candidate in a tier.

    Args:
        candidates: ``item`` and ``confidence`` (calibrated pre-label confidence; NaN for items
            without a pre-label, which go to the medium tier).
        routing: Thresholds.
        edge_cases: Items that always go to an expert (flagged, in hotspots, disputed before).
        novelty: Item -> novelty percentile in [0, 1] (``novelty`` scorer), if known.
        impact: Item -> impact percentile in [0, 1] (``impact`` scorer), if known.

    Returns:
        ``item``, ``tier``, ``reason``, in candidate order.

    Raises:
        ColumnError: ``item`` or ``confidence`` is missing.
    """
    missing = [c for c in ("item", "confidence") if c not in candidates.columns]
    if missing:
        raise ColumnError(
            f"Routing needs column(s) {', '.join(missing)} (columns:"
            f" {', '.join(map(str, candidates.columns))})."
        )
    items = candidates["item"].astype(str)
    conf = candidates["confidence"].astype(float).to_numpy()
    nov = items.map(novelty).astype(float).fillna(0.0).to_numpy() if novelty is not None else None
    imp = items.map(impact).astype(float).fillna(0.0).to_numpy() if impact is not None else None
    edge = set(map(str, edge_cases))
    tiers: list[str] = []
    reasons: list[str] = []
    for k, item in enumerate(items):
        c = conf[k]
        if item in edge:
            tier, why = "hard", "known edge case (flagged, hotspot or disputed before)"
        elif c == c and c < routing.hard_confidence:
            tier, why = "hard", f"confidence {c:.2f} < {routing.hard_confidence:.2f}"
        elif nov is not None and nov[k] > routing.hard_novelty:
            tier, why = "hard", f"novelty {nov[k]:.2f} > {routing.hard_novelty:.2f}"
        elif c != c:
            tier, why = "medium", "no pre-label"
        elif c >= routing.easy_confidence:
            if routing.impact_to_medium and imp is not None and imp[k] >= routing.impact_quantile:
                tier, why = "medium", f"high impact ({imp[k]:.2f}); not verified only"
            else:
                tier, why = "easy", f"confidence {c:.2f} >= {routing.easy_confidence:.2f}"
        else:
            tier, why = "medium", f"confidence {c:.2f} between the thresholds"
        tiers.append(tier)
        reasons.append(why)
    return pd.DataFrame({"item": items.to_numpy(), "tier": tiers, "reason": reasons})
