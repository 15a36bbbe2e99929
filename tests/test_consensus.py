"""Aggregating a project into stored consensus (geolabel/crowd/consensus.py) and the
``geolabel aggregate`` / ``geolabel annotators`` commands, on a real project file."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
from typer.testing import CliRunner

from geolabel.cli.main import app
from geolabel.crowd.consensus import aggregate_project, read_gold, read_label_map
from geolabel.errors import AggregationError, ColumnError, InputFileError, LabelError
from geolabel.project import init_project
from geolabel.store import Project
from tests.crowd_helpers import SAMPLE, sample_truth, sample_votes

runner = CliRunner()
GOLD = SAMPLE / "labels" / "gold.csv"


def run(*args):
    result = runner.invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


@pytest.fixture(scope="module")
def base_project(tmp_path_factory):
    path = tmp_path_factory.mktemp("crowd") / "city.gpkg"
    init_project(
        path,
        scenes=[SAMPLE / "scene.tif"],
        parcels=SAMPLE / "city.gpkg",
        parcels_layer="parcels",
        regions=SAMPLE / "city.gpkg",
        regions_layer="districts",
        taxonomy=SAMPLE / "taxonomy.yaml",
    )
    with Project.open(path) as project:
        project.add_annotations(sample_votes(seed=0), source="simulator")
    return path


@pytest.fixture
def project(base_project, tmp_path):
    copy = tmp_path / "city.gpkg"
    shutil.copy(base_project, copy)
    return copy


class TestAggregateProject:
    def test_consensus_with_provenance(self, project):
        with Project.open(project) as p:
            result = aggregate_project(p, method="ds", gold=read_gold(GOLD))
            current = p.current_consensus()
            annotations = p.annotations()
        assert result.n_items == 286 and result.n_votes == 1430 and result.n_gold == 24
        assert result.method == "dawid_skene" and result.written and result.converged
        assert len(current) == 286 and set(current["method"]) == {"dawid_skene"}
        assert set(current["taxonomy_version"]) == {"1"} and current["model_version"].isna().all()
        row = current.iloc[0]
        mine = annotations[annotations["item"] == row["item"]]["annotation_id"]
        assert sorted(row["votes"]) == sorted(mine)
        gold = read_gold(GOLD)
        decided = current.set_index("item")["label"]
        assert (decided[gold.index] == gold).all()

    def test_model_prior_is_recorded(self, project):
        classes = sorted(set(sample_truth()["label"]) - {"mixed_use"})
        with Project.open(project) as p:
            truth = sample_truth().set_index("item")["label"]
            probas = [
                {c: (0.6 if c == t else 0.4 / (len(classes) - 1)) for c in classes} for t in truth
            ]
            p.add_predictions(
                pd.DataFrame({"item": truth.index, "label": truth.where(truth.isin(classes),
                              "residential"), "probas": probas}),
                model_version="sim-0",
            )  # fmt: skip
            result = aggregate_project(p, method="glad", model_version="sim-0", write=True)
            current = p.current_consensus()
        assert result.model_version == "sim-0" and set(current["model_version"]) == {"sim-0"}
        with Project.open(project) as p, pytest.raises(AggregationError, match=r"No predictions"):
            aggregate_project(p, model_version="nope")
        with (
            Project.open(project) as p,
            pytest.raises(AggregationError, match=r"ds, onecoin, glad"),
        ):
            aggregate_project(p, method="mv", model_version="sim-0")

    def test_dry_run_stores_nothing(self, project):
        with Project.open(project) as p:
            result = aggregate_project(p, method="onecoin", write=False)
            assert not result.written and p.current_consensus().empty

    def test_labels_outside_the_taxonomy(self, project, tmp_path):
        extra = pd.DataFrame(
            {
                "item": ["P0001", "P0002"],
                "annotator": ["late-1", "late-2"],
                "label": ["shop", "shop"],
            }
        )
        with Project.open(project) as p:
            p.add_annotations(extra, source="other")
            with pytest.raises(LabelError, match=r"'shop' \(2 votes\)"):
                aggregate_project(p, method="mv")
            mapping = tmp_path / "map.yaml"
            mapping.write_text("shop: commercial\n")
            result = aggregate_project(p, method="mv", label_map=read_label_map(mapping))
        assert result.n_mapped == 2


class TestReaders:
    def test_gold_file_problems(self, tmp_path):
        with pytest.raises(InputFileError, match=r"Cannot read gold"):
            read_gold(tmp_path / "none.csv")
        bad = tmp_path / "gold.csv"
        bad.write_text("parcel,answer\nP1,park\n")
        with pytest.raises(ColumnError, match=r"'item', 'label'"):
            read_gold(bad)

    def test_label_map_forms(self, tmp_path):
        csv = tmp_path / "m.csv"
        csv.write_text("from,to\nshop,commercial\n")
        assert read_label_map(csv) == {"shop": "commercial"}
        bad = tmp_path / "m.yaml"
        bad.write_text("- shop\n")
        with pytest.raises(ColumnError, match=r"YAML mapping"):
            read_label_map(bad)
        text = tmp_path / "m.txt"
        text.write_text("x")
        with pytest.raises(InputFileError, match=r"must be .yaml"):
            read_label_map(text)


class TestAggregateCommand:
    def test_default_method_with_gold(self, project):
        result = run("aggregate", project, "--gold", GOLD)
        assert result.exit_code == 0, result.output
        assert "Stored consensus for 286 item(s) by dawid_skene" in result.output
        assert "24 gold item(s) clamped" in result.output

    @pytest.mark.parametrize("method", ["mv", "onecoin", "glad"])
    def test_methods_json(self, project, method):
        data = json.loads(run("aggregate", project, "--method", method, "--json").output)
        assert data["n_items"] == 286 and data["written"]

    def test_wmv_needs_gold(self, project):
        result = run("aggregate", project, "--method", "wmv")
        assert result.exit_code == 1 and "needs weights" in result.output
        assert run("aggregate", project, "--method", "wmv", "--gold", GOLD).exit_code == 0

    def test_bad_inputs_exit_cleanly(self, project, tmp_path):
        assert run("aggregate", project, "--method", "em").exit_code == 2
        missing = run("aggregate", tmp_path / "none.gpkg")
        assert missing.exit_code == 1 and "does not exist" in missing.output
        assert run("aggregate", project, "--gold", tmp_path / "g.csv").exit_code == 1
        empty = tmp_path / "empty.gpkg"
        Project.create(empty, crs="EPSG:32610").add_taxonomy_version(*_sample_taxonomy_args())
        result = run("aggregate", empty)
        assert result.exit_code == 1 and "No annotations to aggregate" in result.output

    def test_duplicates_are_reported(self, project):
        with Project.open(project) as p:
            first = p.annotations().iloc[0]
            again = pd.DataFrame(
                {"item": [first["item"]], "annotator": [first["annotator"]], "label": ["water"],
                 "created_at": ["2027-01-01T00:00:00Z"]}
            )  # fmt: skip
            p.add_annotations(again, source="late")
        result = run("aggregate", project, "--method", "mv", "--dry-run")
        assert result.exit_code == 0 and "1 duplicate vote" in result.output
        assert "kept the latest" in result.output.lower()


def _sample_taxonomy_args():
    from geolabel.taxonomy import load_taxonomy

    tax = load_taxonomy(SAMPLE / "taxonomy.yaml")
    return tax.name, tax.version, tax.to_yaml(), tax.sha256


class TestAnnotatorsCommand:
    def test_table(self, project):
        result = run("annotators", project, "--gold", GOLD)
        assert result.exit_code == 0, result.output
        assert "Fleiss' kappa" in result.output and "Northgate" in result.output
        assert "crowd-030" in result.output

    def test_json(self, project):
        result = run("annotators", project, "--json")
        lines = result.output.strip().splitlines()
        assert result.exit_code == 0 and len(lines) == 1
        data = json.loads(lines[0])
        assert data["n_annotators"] == 30 and len(data["drift"]) == 30
        assert {"spammer_score", "gold_ci_low", "confusion"} <= set(data["annotators"][0])
