"""Tests for `geolabel review` (queue, decide, import, apply, guidelines)."""

from __future__ import annotations

import json

import pandas as pd
from typer.testing import CliRunner

from geolabel.cli.main import app
from tests.review_helpers import review_project

runner = CliRunner()


class TestReviewCli:
    def test_queue_exports_and_json(self, tmp_path):
        project = review_project(tmp_path)
        result = runner.invoke(
            app,
            [
                "review",
                "queue",
                str(project),
                "--top",
                "3",
                "--no-hotspots",
                "--csv",
                str(tmp_path / "q.csv"),
                "--gpkg",
                str(tmp_path / "q.gpkg"),
                "--json",
            ],
        )
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout.strip().splitlines()[-1])
        assert data["n_items"] == 286 and len(data["top"]) == 3
        assert (tmp_path / "q.gpkg").exists()
        assert "decision_label" in pd.read_csv(tmp_path / "q.csv").columns

    def test_decide_conflict_import_apply_guidelines(self, tmp_path):
        project = str(review_project(tmp_path))
        ok = runner.invoke(
            app,
            [
                "review",
                "decide",
                project,
                "P0153",
                "residential",
                "--reviewer",
                "alice",
                "--rationale",
                "flats over shops",
                "--propose",
                "split",
                "--classes",
                "residential,commercial",
                "--new-class",
                "mixed_use",
                "--definition",
                "Homes over shops.",
            ],
        )
        assert ok.exit_code == 0, ok.output
        assert "P0153: residential" in ok.stdout and "pending" in ok.stdout
        again = runner.invoke(
            app,
            [
                "review",
                "decide",
                project,
                "P0153",
                "commercial",
                "--reviewer",
                "bob",
                "--rationale",
                "shops",
            ],
        )
        assert again.exit_code == 1
        assert "already decided" in again.output and "Traceback" not in again.output
        listed = runner.invoke(app, ["review", "apply", project, "--list", "--json"])
        assert (
            json.loads(listed.stdout)[0]["change"] == "split residential, commercial: add mixed_use"
        )
        applied = runner.invoke(
            app,
            [
                "review",
                "apply",
                project,
                "--by",
                "admin",
                "--guidelines",
                str(tmp_path / "guides"),
                "--json",
            ],
        )
        assert applied.exit_code == 0, applied.output
        change = json.loads(applied.stdout)
        assert change["to_version"] == 2 and "P0153" in change["relabel"]
        assert (tmp_path / "guides" / "land_use_v2.html").exists()
        html = runner.invoke(app, ["review", "guidelines", project, "-o", str(tmp_path / "g.html")])
        assert html.exit_code == 0 and "mixed_use" in (tmp_path / "g.html").read_text()
        pd.DataFrame(
            {
                "item": ["P0153"],
                "decision_label": ["mixed_use"],
                "decision_rationale": ["v2"],
                "reviewer": ["alice"],
                "version": [0],
            }
        ).to_csv(tmp_path / "d.csv", index=False)
        stale = runner.invoke(app, ["review", "import", project, str(tmp_path / "d.csv")])
        assert stale.exit_code == 1 and "Conflict" in stale.output

    def test_errors_exit_cleanly(self, tmp_path):
        project = str(review_project(tmp_path))
        nothing = runner.invoke(app, ["review", "apply", project])
        assert nothing.exit_code == 1 and "No pending" in nothing.output
        bad = runner.invoke(
            app,
            ["review", "decide", project, "P0001", "shops", "--reviewer", "a", "--rationale", "x"],
        )
        assert bad.exit_code == 1 and "'shops'" in bad.output
        fmt = runner.invoke(app, ["review", "guidelines", project, "-o", str(tmp_path / "g.pdf")])
        assert fmt.exit_code == 1 and ".md or .html" in fmt.output
        missing = runner.invoke(app, ["review", "queue", str(tmp_path / "none.gpkg")])
        assert missing.exit_code == 1 and "No geolabel project" in missing.output

    def test_serve_refuses_bad_inputs(self, tmp_path):
        project = str(review_project(tmp_path))
        nomap = runner.invoke(app, ["serve", project, "--map", str(tmp_path / "none.html")])
        assert nomap.exit_code == 1 and "does not exist" in nomap.output
        missing = runner.invoke(app, ["serve", str(tmp_path / "none.gpkg")])
        assert missing.exit_code == 1 and "No geolabel project" in missing.output
