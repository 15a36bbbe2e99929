"""Small, seeded crowds shared by the crowd tests (not a test module)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"


def synthetic_votes(
    n_items: int = 400,
    n_annotators: int = 12,
    per_item: int = 5,
    n_classes: int = 4,
    seed: int = 0,
    accuracy: tuple[float, float] = (0.55, 0.9),
) -> tuple[pd.DataFrame, pd.Series, np.ndarray]:
    """Return (votes, truth by item, true accuracy per annotator); labels are 'c0'..."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(n_classes, size=n_items)
    acc = rng.uniform(*accuracy, n_annotators)
    rows = []
    for i in range(n_items):
        for a in rng.choice(n_annotators, size=per_item, replace=False):
            if rng.random() < acc[a]:
                label = truth[i]
            else:
                label = rng.choice([c for c in range(n_classes) if c != truth[i]])
            rows.append((f"i{i:04d}", f"w{a:02d}", f"c{label}"))
    votes = pd.DataFrame(rows, columns=["item", "annotator", "label"])
    truth_s = pd.Series([f"c{t}" for t in truth], index=[f"i{i:04d}" for i in range(n_items)])
    return votes, truth_s, acc


@cache
def sample_truth() -> pd.DataFrame:
    """The sample city's truth, in the simulator's columns."""
    return pd.read_csv(SAMPLE / "truth" / "parcels.csv").rename(
        columns={"parcel_id": "item", "land_use": "label"}
    )


@cache
def sample_profiles() -> tuple:
    from geolabel.crowd.simulate import profiles_from_json

    return tuple(profiles_from_json(json.loads((SAMPLE / "truth" / "annotators.json").read_text())))


def sample_gold() -> pd.Series:
    gold = pd.read_csv(SAMPLE / "labels" / "gold.csv")
    return pd.Series(gold["label"].to_numpy(), index=gold["item"])


def sample_votes(seed: int = 0, k: int = 5) -> pd.DataFrame:
    """Votes of the sample city's simulated crowd: every parcel, k crowd votes."""
    from geolabel.crowd.simulate import CrowdSimulator

    profiles = sample_profiles()
    sim = CrowdSimulator(sample_truth(), list(profiles), list(profiles[0].classes), seed=seed)
    return sim.assign_and_label(sample_truth()["item"], k=k)
