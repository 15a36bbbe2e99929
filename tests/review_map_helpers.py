"""A sample project with the sample crowd's votes, for the disagreement/hotspot/map tests."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd

from tests.conftest import SAMPLE

_TEMPLATES: dict[tuple[int, bool], Path] = {}


def sample_truth() -> pd.DataFrame:
    """The sample's truth in the simulator's columns."""
    return pd.read_csv(SAMPLE / "truth" / "parcels.csv").rename(
        columns={"parcel_id": "item", "land_use": "label"}
    )


def crowd_votes(seed: int = 0, k: int = 5) -> pd.DataFrame:
    """k votes per parcel from the sample's crowd profiles (experts excluded)."""
    from geolabel.crowd.simulate import CrowdSimulator, profiles_from_json

    profiles = profiles_from_json(json.loads((SAMPLE / "truth" / "annotators.json").read_text()))
    classes = list(profiles[0].classes)
    sim = CrowdSimulator(sample_truth(), profiles, classes, seed=seed)
    return sim.assign_and_label(sample_truth()["item"], k=k)


def voted_project(dst: Path, *, seed: int = 0, aggregate: bool = True) -> Path:
    """Copy (building once per session) the sample project with crowd votes into ``dst``."""
    from geolabel.crowd.consensus import aggregate_project
    from geolabel.project import init_sample_project
    from geolabel.store import Project

    key = (seed, aggregate)
    template = _TEMPLATES.get(key)
    if template is None or not template.exists():
        template = Path(dst).parent / f"_template_{seed}_{int(aggregate)}.gpkg"
        init_sample_project(SAMPLE, template, overwrite=True)
        with Project.open(template) as project:
            classes = list(project.current_taxonomy().parcel_class_ids)
            project.add_annotations(crowd_votes(seed), source="simulator", allowed_labels=classes)
            if aggregate:
                aggregate_project(project, method="ds")
        _TEMPLATES[key] = template
    shutil.copy(template, dst)
    return Path(dst)
