"""Tests of `geolabel ingest` (pull, file, history) through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from geolabel.cli.main import app
from geolabel.store import Project
from tests.ingest_helpers import (
    SOCRATA_FIELDS,
    Portal,
    sample_notices,
    socrata_rows,
    write_csv,
    write_pages,
)

runner = CliRunner()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    path = tmp_path / "p.gpkg"
    Project.create(path, crs="EPSG:32610").close()
    return path


@pytest.fixture
def notices_csv(tmp_path: Path) -> Path:
    return write_csv(sample_notices()[:20], tmp_path / "notices.csv")


def stored(project: Path) -> int:
    with Project.open(project) as proj:
        return len(proj.notices())


class TestIngestFile:
    def test_csv_with_mapping_json_and_html_report(
        self, project: Path, notices_csv: Path, tmp_path: Path
    ) -> None:
        report = tmp_path / "qa.html"
        args = [
            "ingest",
            "file",
            str(project),
            str(notices_csv),
            "--timezone",
            "America/Los_Angeles",
            "--report",
            str(report),
            "--json",
        ]
        for pair in (
            "text=Body",
            "notice_id=ID",
            "published=Date Posted",
            "title=Subject",
            "kind=Notice Type",
        ):
            args += ["--map", pair]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout)
        assert (data["n_in"], data["n_out"], data["status"]) == (20, 20, "ok")
        assert data["sources"][0]["encodings"] == {"cp1252": 1}
        assert "<h2>Checks</h2>" in report.read_text()
        assert stored(project) == 20

    def test_dry_run_stores_nothing(self, project: Path, notices_csv: Path) -> None:
        result = runner.invoke(
            app,
            [
                "ingest",
                "file",
                str(project),
                str(notices_csv),
                "--map",
                "text=Body",
                "--map",
                "notice_id=ID",
                "--dry-run",
            ],
        )
        assert result.exit_code == 0, result.output
        assert "DRY-RUN" in result.stdout and stored(project) == 0

    def test_short_texts_fail_the_pull(self, project: Path, tmp_path: Path) -> None:
        path = tmp_path / "short.jsonl"
        path.write_text(
            "\n".join(json.dumps({"id": f"S{i}", "text": "Too short."}) for i in range(3))
        )
        report = tmp_path / "qa.md"
        result = runner.invoke(
            app, ["ingest", "file", str(project), str(path), "--report", str(report)]
        )
        assert result.exit_code == 1
        assert "QA failed" in result.stderr and "short_text_fraction" in result.stderr
        assert "Traceback" not in result.output
        assert "| FAIL | short_text_fraction |" in report.read_text()
        assert stored(project) == 0

    @pytest.mark.parametrize(
        ("extra", "message"),
        [
            (["--map", "Body"], "write it as geolabel_field=source_field"),
            (["--map", "body=Body"], "unknown geolabel field"),
            (["--kind", "pdf"], "unknown kind 'pdf'"),
            (["--timezone", "Nowhere/City"], "unknown time zone"),
            (["--report", "qa.txt"], "use a .md"),
        ],
    )
    def test_wrong_options(
        self, project: Path, notices_csv: Path, extra: list[str], message: str
    ) -> None:
        result = runner.invoke(app, ["ingest", "file", str(project), str(notices_csv), *extra])
        assert result.exit_code == 1
        assert message in result.stderr and "Traceback" not in result.output

    def test_missing_file_and_project(self, project: Path, tmp_path: Path) -> None:
        result = runner.invoke(app, ["ingest", "file", str(project), str(tmp_path / "x.csv")])
        assert result.exit_code == 1 and "does not exist" in result.stderr
        result = runner.invoke(app, ["ingest", "file", str(tmp_path / "none.gpkg"), str(project)])
        assert result.exit_code == 1 and "Error" in result.stderr


class TestIngestPull:
    def test_pull_from_a_source_list_with_a_portal(self, project: Path, tmp_path: Path) -> None:
        notices = sample_notices()[:60]
        write_pages(notices[:10], tmp_path / "pages")
        portal = Portal(delay=1.0)
        portal.socrata["/resource/n.json"] = socrata_rows(notices)
        portal.fault("/resource/n.json", 25, "503")
        with portal:
            fields = ", ".join(f'{k} = "{v}"' for k, v in SOCRATA_FIELDS.items())
            (tmp_path / "sources.toml").write_text(
                f"""
[qa]
min_text_chars = 30

[[source]]
name = "portal"
kind = "socrata"
location = "{portal.url}/resource/n.json"
timezone = "America/Los_Angeles"
page_size = 25
backoff = 0.01
rate_limit = 100
incremental = "publish_date"
fields = {{ {fields} }}

[[source]]
name = "pages"
kind = "html"
location = "pages"
"""
            )
            report = tmp_path / "qa.md"
            result = runner.invoke(
                app,
                [
                    "ingest",
                    "pull",
                    str(project),
                    "--sources",
                    str(tmp_path / "sources.toml"),
                    "--report",
                    str(report),
                ],
            )
            assert result.exit_code == 0, result.output
            assert "60 new" in result.stdout and "10 exact" in result.stdout
            text = report.read_text()
            assert "portal: socrata page 2: HTTP 503 (retry 1 of 3)" in text
            again = runner.invoke(
                app,
                [
                    "ingest",
                    "pull",
                    str(project),
                    "-s",
                    str(tmp_path / "sources.toml"),
                    "--only",
                    "portal",
                    "--json",
                ],
            )
        assert again.exit_code == 0, again.output
        data = json.loads(again.stdout)
        assert data["n_in"] == 0 and data["sources"][0]["n_older"] == 0
        history = runner.invoke(app, ["ingest", "history", str(project), "--json"])
        rows = json.loads(history.stdout)
        assert [r["status"] for r in rows] == ["ok", "ok"]
        assert rows[0]["sources"] == ["pages", "portal"] and rows[0]["n_out"] == 60
        assert stored(project) == 60

    def test_bad_source_list(self, project: Path, tmp_path: Path) -> None:
        path = tmp_path / "s.toml"
        path.write_text("[[source]]\nname = 'a'\nkind = 'gopher'\nlocation = 'x'\n")
        result = runner.invoke(app, ["ingest", "pull", str(project), "--sources", str(path)])
        assert result.exit_code == 1
        assert "unknown kind 'gopher'" in result.stderr and "Traceback" not in result.output

    def test_history_of_a_new_project(self, project: Path) -> None:
        result = runner.invoke(app, ["ingest", "history", str(project)])
        assert result.exit_code == 0 and "no ingest pulls yet" in result.stdout
