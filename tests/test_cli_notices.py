"""Tests for `geolabel notices` (train, extract, evaluate) through the CLI."""

from __future__ import annotations

import json

import geopandas as gpd
import pandas as pd
import pytest
from typer.testing import CliRunner

from geolabel.cli.main import app
from geolabel.store import Project

runner = CliRunner()

HEARING = "Rezoning of 504 Birch St (APN 412-030-002) from R-2 to MU-3 on March 3, 2025."


@pytest.fixture
def notices_file(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text(
        json.dumps({"notice_id": "H1", "text": HEARING, "source": "gazette"}) + "\n", "utf-8"
    )
    return path


@pytest.fixture
def project(tmp_path, sample_dir):
    parcels = gpd.read_file(sample_dir / "city.gpkg", layer="parcels")
    with Project.create(tmp_path / "p.gpkg", crs="EPSG:32610") as proj:
        proj.write_layer(parcels, "parcels")
        proj.add_items(pd.DataFrame({"item": parcels["parcel_id"]}), kind="parcel")
        proj.add_notices(pd.DataFrame({"notice_id": ["S1"], "text": [HEARING]}))
    return tmp_path / "p.gpkg"


class TestNoticesExtract:
    def test_jsonl_with_parcels(self, tmp_path, notices_file, sample_dir):
        out = tmp_path / "out.jsonl"
        result = runner.invoke(
            app,
            [
                "notices",
                "extract",
                str(notices_file),
                "-o",
                str(out),
                "--parcels",
                str(sample_dir / "city.gpkg"),
            ],
        )
        assert result.exit_code == 0, result.output
        (record,) = [json.loads(line) for line in out.read_text().splitlines()]
        assert record["source"] == "gazette" and record["parcels"] == ["P0221"]
        assert {"start", "end", "label", "text"} == set(record["entities"][0])

    def test_geojson_json_summary(self, tmp_path, notices_file, sample_dir):
        out = tmp_path / "out.geojson"
        result = runner.invoke(
            app,
            [
                "notices",
                "extract",
                str(notices_file),
                "-o",
                str(out),
                "--parcels",
                str(sample_dir / "city.gpkg"),
                "--json",
            ],
        )
        assert result.exit_code == 0, result.output
        summary = json.loads(result.output)
        assert summary["fmt"] == "geojson" and summary["n_parcels"] == 1
        assert json.loads(out.read_text())["type"] == "FeatureCollection"

    def test_project_links_are_stored(self, tmp_path, project):
        out = tmp_path / "out.jsonl"
        result = runner.invoke(
            app, ["notices", "extract", "--project", str(project), "-o", str(out)]
        )
        assert result.exit_code == 0, result.output
        assert "Stored" in result.output
        with Project.open(project) as proj:
            links = proj.notice_links()
        assert set(links["item"]) == {"P0221"} and set(links["notice_id"]) == {"S1"}

    @pytest.mark.parametrize(
        ("content", "name", "message"),
        [
            (b"", "empty.jsonl", "is empty"),
            ("Caf\u00e9".encode("cp1252"), "latin.txt", "not UTF-8"),
            (b"id,body\n1,hello\n", "n.csv", "no 'text' column"),
        ],
    )
    def test_bad_input_exits_1_without_traceback(self, tmp_path, content, name, message):
        path = tmp_path / name
        path.write_bytes(content)
        result = runner.invoke(
            app, ["notices", "extract", str(path), "-o", str(tmp_path / "o.jsonl")]
        )
        assert result.exit_code == 1
        assert message in result.output
        assert "Traceback" not in result.output

    def test_missing_model(self, tmp_path, notices_file):
        result = runner.invoke(
            app,
            [
                "notices",
                "extract",
                str(notices_file),
                "-o",
                str(tmp_path / "o.jsonl"),
                "--model",
                str(tmp_path),
            ],
        )
        assert result.exit_code == 1 and "no spaCy pipeline" in result.output


class TestNoticesTrainAndEvaluate:
    def test_train_then_evaluate(self, tmp_path, data_dir):
        model = tmp_path / "model"
        result = runner.invoke(
            app,
            [
                "notices",
                "train",
                str(data_dir / "notices_independent.jsonl"),
                "-o",
                str(model),
                "--max-steps",
                "3",
                "--json",
            ],
        )
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["n_train"] == 58
        evaluated = runner.invoke(
            app,
            [
                "notices",
                "evaluate",
                str(data_dir / "notices_independent.jsonl"),
                "--model",
                str(model),
                "--json",
            ],
        )
        assert evaluated.exit_code == 0, evaluated.output
        assert set(json.loads(evaluated.output)["per_label"]) >= {"ADDRESS", "DATE"}

    def test_train_needs_data(self, tmp_path):
        result = runner.invoke(app, ["notices", "train", "-o", str(tmp_path / "m")])
        assert result.exit_code == 1 and "nothing to train on" in result.output
