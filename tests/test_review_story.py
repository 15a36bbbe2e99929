"""Tests for geolabel.review.story: the demo's review chapter end to end."""

from __future__ import annotations

import json

from geolabel.review.story import run
from geolabel.store import Project
from tests.review_helpers import planted_hotspots, review_project, sample_truth


class TestStory:
    def test_hotspot_to_taxonomy_v2(self, tmp_path):
        path = review_project(tmp_path)
        truth = sample_truth()
        said: list[str] = []
        lines = run(
            path,
            truth=truth,
            say=said.append,
            hotspots=planted_hotspots(truth),
            guidelines_dir=tmp_path / "guides",
        )
        assert lines == said
        assert lines[0].startswith("Review queue: hotspot H1 (12 parcels")
        assert "12 of them planted mixed-use" in lines[0]
        assert any("split residential, commercial: add mixed_use" in line for line in lines)
        assert any("v1 -> v2" in line and "12 of 12 planted mixed-use" in line for line in lines)
        with Project.open(path) as project:
            assert "mixed_use" in project.current_taxonomy()
            flagged = json.loads(project.meta["review.relabel"])
        mixed = set(truth.loc[truth["ambiguity"] == "mixed_use", "item"])
        assert mixed <= set(flagged)
        assert (tmp_path / "guides" / "land_use_v2.html").exists()
