"""Tests for geolabel.review.guidelines: Markdown and HTML with gold set and changes."""

from __future__ import annotations

from geolabel.review.decisions import Decision, record_decision
from geolabel.review.evolution import TaxonomyProposal, apply_proposals, evolve_taxonomy
from geolabel.review.guidelines import (
    project_guidelines,
    render_guidelines_html,
    render_guidelines_markdown,
    taxonomy_diff,
    write_guidelines,
)
from geolabel.store import Project
from geolabel.taxonomy import load_taxonomy
from tests.conftest import SAMPLE
from tests.review_helpers import review_project

SPLIT = TaxonomyProposal(
    kind="split",
    classes=("residential", "commercial"),
    new_class="mixed_use",
    definition="Homes over shops.",
)


class TestGuidelines:
    def test_diff_markdown_and_gold(self):
        v1 = load_taxonomy(SAMPLE / "taxonomy.yaml")
        v2 = evolve_taxonomy(v1, [SPLIT]).taxonomy
        diff = taxonomy_diff(v1, v2)
        assert "added class Mixed use (mixed_use)" in diff
        assert any("Residential: new counterexample" in line for line in diff)
        text = render_guidelines_markdown(v2, gold={"P0002": "park"}, previous=v1)
        assert "## Changes since v1" in text and "| `P0002` | Park (`park`) |" in text
        assert "### 3. Mixed use (`mixed_use`)" in text or "Mixed use (`mixed_use`)" in text

    def test_html_escapes_user_text(self):
        v1 = load_taxonomy(SAMPLE / "taxonomy.yaml")
        rule = TaxonomyProposal(
            kind="edge_rule", classes=("park",), text="<script>alert(1)</script> & co"
        )
        v2 = evolve_taxonomy(v1, [rule]).taxonomy
        page = render_guidelines_html(v2, previous=v1)
        assert "<script>" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in page
        assert page.startswith("<!DOCTYPE html>") and "Decision tree" in page

    def test_project_guidelines_after_apply(self, tmp_path):
        with Project.open(review_project(tmp_path)) as project:
            record_decision(
                project, Decision("P0153", "residential", "a", "mixed", proposals=(SPLIT,))
            )
            apply_proposals(project, applied_by="admin")
            md = project_guidelines(project, gold={"P0010": "vacant"})
            old = project_guidelines(project, version=1)
            paths = write_guidelines(project, tmp_path / "guides")
        assert "mixed_use" in md and "Changes since v1" in md and "`P0010`" in md
        assert "mixed_use" not in old.split("## Changelog")[0]
        assert [p.name for p in paths] == ["land_use_v2.md", "land_use_v2.html"]
        assert all(p.stat().st_size > 1000 for p in paths)
