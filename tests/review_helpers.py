"""Shared builders for the review tests: a sample project with simulated votes and consensus."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from tests.conftest import SAMPLE

_TEMPLATES: dict[Path, Path] = {}


def sample_truth() -> pd.DataFrame:
    """The sample's truth as the crowd simulator wants it (item, label, alt_label...)."""
    truth = pd.read_csv(SAMPLE / "truth" / "parcels.csv")
    return truth.rename(columns={"parcel_id": "item", "land_use": "label"})


def planted_hotspots(truth: pd.DataFrame | None = None) -> pd.DataFrame:
    """A hand-built hotspot items frame: the planted mixed-use block is hotspot H1."""
    truth = sample_truth() if truth is None else truth
    significant = truth["ambiguity"] == "mixed_use"
    return pd.DataFrame(
        {
            "item": truth["item"],
            "gi_z": significant.astype(float) * 3.0,
            "p_value": 0.01,
            "q_value": 0.02,
            "significant": significant,
            "hotspot_id": ["H1" if s else None for s in significant],
        }
    )


def _build(path: Path) -> None:
    from geolabel.crowd.consensus import aggregate_project
    from geolabel.crowd.simulate import CrowdSimulator, make_crowd
    from geolabel.project import init_sample_project
    from geolabel.store import Project

    init_sample_project(SAMPLE, path, name="city")
    truth = sample_truth()
    with Project.open(path) as project:
        classes = list(project.current_taxonomy().parcel_class_ids)
        crowd = make_crowd(classes, n_annotators=20, seed=0)
        votes = CrowdSimulator(truth, crowd, classes, seed=0).assign_and_label(truth["item"], k=5)
        project.add_annotations(votes, source="simulator", allowed_labels=classes)
        aggregate_project(project, method="mv")


def review_project(tmp_path: Path) -> Path:
    """Copy a cached sample project (votes + majority-vote consensus) into ``tmp_path``.

    The template lives beside ``tmp_path`` (same depth), so the project's relative scene path
    still points at ``data/sample/scene.tif`` after the copy.
    """
    root = tmp_path.parent
    template = _TEMPLATES.get(root)
    if template is None or not template.exists():
        folder = root / "review_template"
        folder.mkdir(exist_ok=True)
        template = folder / "city.gpkg"
        if not template.exists():
            staging = folder / "staging.gpkg"
            staging.unlink(missing_ok=True)
            _build(staging)
            staging.rename(template)
        _TEMPLATES[root] = template
    target = tmp_path / "city.gpkg"
    shutil.copy(template, target)
    return target
