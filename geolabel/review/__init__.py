"""Expert review: disagreement, hotspots, maps, the review queue, decisions and taxonomy evolution.

Submodules load on first use (``geolabel.review.build_queue`` imports ``geolabel.review.queue``
then), so importing the package stays light. To export a name, add it to ``_LAZY`` with the
module that defines it.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY: dict[str, str] = {
    # disagreement.py, hotspots.py, maps.py: where the crowd disagrees, on a map
    "DisagreementWeights": "geolabel.review.disagreement",
    "confusion_pairs": "geolabel.review.disagreement",
    "item_disagreement": "geolabel.review.disagreement",
    "project_disagreement": "geolabel.review.disagreement",
    "HotspotResult": "geolabel.review.hotspots",
    "find_hotspots": "geolabel.review.hotspots",
    "hex_bins": "geolabel.review.hotspots",
    "project_hotspots": "geolabel.review.hotspots",
    "MapResult": "geolabel.review.maps",
    "project_map": "geolabel.review.maps",
    # queue.py: the expert review queue
    "QueueWeights": "geolabel.review.queue",
    "build_queue": "geolabel.review.queue",
    "export_queue": "geolabel.review.queue",
    "project_queue": "geolabel.review.queue",
    # decisions.py: expert decisions with optimistic concurrency
    "Decision": "geolabel.review.decisions",
    "DecisionResult": "geolabel.review.decisions",
    "import_decisions": "geolabel.review.decisions",
    "record_decision": "geolabel.review.decisions",
    "record_decisions": "geolabel.review.decisions",
    # evolution.py: taxonomy proposals and new taxonomy versions
    "TaxonomyChange": "geolabel.review.evolution",
    "TaxonomyProposal": "geolabel.review.evolution",
    "apply_proposals": "geolabel.review.evolution",
    "evolve_taxonomy": "geolabel.review.evolution",
    # simulate.py: the simulated expert of the demo
    "SimulatedExpert": "geolabel.review.simulate",
    # guidelines.py, reviewers.py: guidelines with gold set and changes; web app reviewers
    "project_guidelines": "geolabel.review.guidelines",
    "add_reviewer": "geolabel.review.reviewers",
}

__all__ = sorted(_LAZY)  # every name is resolved by __getattr__ below


def __getattr__(name: str) -> Any:
    """Import the submodule that defines ``name`` on first access."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'geolabel.review' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
