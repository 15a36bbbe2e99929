"""The command line on real files; every wrong input exits cleanly, without a traceback."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from geolabel.cli.main import app
from geolabel.store import Project

runner = CliRunner()


def run(*args: str):
    result = runner.invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def sample_init_args(sample_dir, project):
    return [
        "init", project, "--scene", sample_dir / "scene.tif",
        "--parcels", sample_dir / "city.gpkg", "--parcels-layer", "parcels",
        "--pois", sample_dir / "city.gpkg", "--pois-layer", "pois",
        "--regions", sample_dir / "city.gpkg", "--regions-layer", "districts",
        "--notices", sample_dir / "notices.jsonl", "--taxonomy", sample_dir / "taxonomy.yaml",
        "--streets", sample_dir / "city.gpkg", "--streets-layer", "streets",
    ]  # fmt: skip


@pytest.fixture(scope="module")
def project(sample_dir, tmp_path_factory):
    path = tmp_path_factory.mktemp("proj") / "demo.gpkg"
    result = run(*sample_init_args(sample_dir, path))
    assert result.exit_code == 0, result.output
    return path


class TestInfo:
    def test_folder_table(self, sample_dir):
        result = run("info", sample_dir)
        assert result.exit_code == 0
        for word in ("scene.tif", "parcels", "EPSG:32610", "land_use v1", "notices.jsonl"):
            assert word in result.output

    def test_folder_json_is_one_line(self, sample_dir):
        result = run("info", sample_dir, "--json")
        lines = result.output.strip().splitlines()
        assert len(lines) == 1
        data = json.loads(lines[0])
        assert data["scenes"][0]["count"] == 4 and data["taxonomy"] == "land_use v1"
        assert {v["layer"] for v in data["vectors"]} == {"parcels", "pois", "streets", "districts"}
        assert data["crs"] == ["EPSG:32610"]

    def test_project_json(self, project):
        data = json.loads(run("info", project, "--json").output)
        assert data["crs"] == "EPSG:32610" and data["taxonomy_version"] == "1"
        assert data["items_by_kind"]["parcel"] == 286 and data["counts"]["notices"] == 200
        layers = {layer["name"]: layer for layer in data["layers"]}
        assert layers["parcels"]["count"] == 286 and layers["scenes"]["count"] == 1

    @pytest.mark.parametrize("target", ["missing.gpkg", "nowhere/"])
    def test_missing_path(self, tmp_path, target):
        result = run("info", tmp_path / target)
        assert result.exit_code == 1 and "does not exist" in result.output

    def test_empty_folder(self, tmp_path):
        result = run("info", tmp_path)
        assert result.exit_code == 1 and "holds no scene" in result.output

    def test_gpkg_that_is_not_a_project(self, sample_dir):
        result = run("info", sample_dir / "city.gpkg")
        assert result.exit_code == 1 and "geolabel init" in result.output


class TestInit:
    def test_sample_project_opens_in_gdal(self, project):
        import pyogrio

        layers = {name for name, _ in pyogrio.list_layers(project)}
        assert {"parcels", "pois", "regions", "streets", "scenes", "annotations", "items"} <= layers

    def test_streets_reach_the_notice_gazetteer(self, project, sample_dir, tmp_path):
        from geolabel.text.linking import Gazetteer

        with Project.open(project) as p:
            streets = p.read_layer("streets")
            gazetteer = Gazetteer.from_project(p)
        assert streets.crs.to_epsg() == 32610 and "1st Avenue" in set(streets["name"])
        assert "1st Avenue" in gazetteer.streets.values()
        # A streets file without names is refused before anything is written.
        bad = tmp_path / "streets.geojson"
        streets[["geometry"]].to_file(bad)
        args = sample_init_args(sample_dir, tmp_path / "p.gpkg")[:-4]
        result = run(*args, "--streets", bad)
        assert result.exit_code == 1 and "name" in result.output
        assert not (tmp_path / "p.gpkg").exists()
        # Unnamed streets link nothing: left out, and the user is told.
        some = streets[["name", "geometry"]].head(3).copy()
        some.loc[some.index[0], "name"] = None
        some.to_file(tmp_path / "some.geojson")
        result = run(*args, "--streets", tmp_path / "some.geojson")
        assert result.exit_code == 0, result.output
        assert "1 street(s)" in result.output and "no name" in result.output
        with Project.open(tmp_path / "p.gpkg") as p:
            assert list(p.read_layer("streets")["name"]) == list(some["name"].iloc[1:])

    def test_refuses_to_overwrite(self, sample_dir, project):
        before = project.read_bytes()
        result = run(*sample_init_args(sample_dir, project))
        assert result.exit_code == 1 and "--force" in result.output
        assert project.read_bytes() == before

    def test_reprojects_parcels_and_says_so(self, data_dir, tmp_path):
        result = run("init", tmp_path / "p.gpkg", "--scene", data_dir / "scene_small.tif",
                     "--parcels", data_dir / "parcels_wgs84.geojson")  # fmt: skip
        assert result.exit_code == 0, result.output
        assert "EPSG:4326" in result.output and "reprojected" in result.output
        with Project.open(tmp_path / "p.gpkg") as p:
            assert p.read_layer("parcels").crs.to_epsg() == 32610

    def test_repairs_invalid_geometry_and_names_it(self, data_dir, tmp_path):
        result = run("init", tmp_path / "p.gpkg", "--scene", data_dir / "scene_small.tif",
                     "--parcels", data_dir / "parcels_invalid.geojson")  # fmt: skip
        assert (
            result.exit_code == 0
            and "Repaired 1 invalid" in result.output
            and "BOW" in result.output
        )

    def test_alpha_tagged_scene_is_read_as_data(self, data_dir, tmp_path):
        result = run("init", tmp_path / "p.gpkg", "--scene", data_dir / "rgba_tagged.tif",
                     "--parcels", data_dir / "parcels.geojson")  # fmt: skip
        assert result.exit_code == 0 and "as alpha" in result.output

    @pytest.mark.parametrize(
        ("scene", "parcels", "extra", "fragment"),
        [
            ("nocrs.tif", "parcels.geojson", [], "has no CRS"),
            ("no_geotransform.tif", "parcels.geojson", [], "no geotransform"),
            ("not_a_raster.tif", "parcels.geojson", [], "cannot read"),
            ("missing.tif", "parcels.geojson", [], "does not exist"),
            ("scene_small.tif", "parcels_no_id.geojson", [], "lack the column(s) 'parcel_id'"),
            ("scene_small.tif", "parcels_no_id.geojson", ["--id-column", "apn"], "'apn'"),
            ("scene_small.tif", "parcels_nocrs.gpkg", [], "have no CRS"),
            ("scene_small.tif", "parcels_utm_as_wgs84.geojson", [], "looks projected"),
            ("scene_small.tif", "parcels_invalid.geojson", ["--invalid", "reject"], "BOW"),
            ("scene_small.tif", "parcels_unrepairable.geojson", [], "FLAT"),
            ("scene_small.tif", "parcels_dup_ids.geojson", [], "more than once"),
            ("scene_small.tif", "parcels_points.geojson", [], "not polygons"),
            ("scene_small.tif", "parcels_outside.geojson", [], "overlap the scene"),
            (
                "scene_small.tif",
                "parcels.geojson",
                ["--taxonomy", "taxonomy_invalid.yaml"],
                "residential",
            ),
            ("scene_small.tif", "parcels.geojson", ["--crs", "EPSG:4326"], "geographic"),
        ],
    )
    def test_bad_inputs_exit_cleanly_and_write_nothing(
        self, data_dir, tmp_path, scene, parcels, extra, fragment
    ):
        extra = [str(data_dir / e) if e.endswith(".yaml") else e for e in extra]
        target = tmp_path / "p.gpkg"
        result = run(
            "init", target, "--scene", data_dir / scene, "--parcels", data_dir / parcels, *extra
        )
        assert result.exit_code == 1, result.output
        assert "Error:" in result.output and fragment in " ".join(result.output.split())
        assert not target.exists()
        assert list(tmp_path.iterdir()) == []  # no staging file left behind

    def test_multilayer_parcels_need_a_layer(self, sample_dir, tmp_path):
        result = run("init", tmp_path / "p.gpkg", "--scene", sample_dir / "scene.tif",
                     "--parcels", sample_dir / "city.gpkg")  # fmt: skip
        assert result.exit_code == 1 and "--parcels-layer" in result.output

    def test_invalid_policy_flag(self, data_dir, tmp_path):
        result = run("init", tmp_path / "p.gpkg", "--scene", data_dir / "scene_small.tif",
                     "--parcels", data_dir / "parcels.geojson", "--invalid", "ignore")  # fmt: skip
        assert result.exit_code == 2 and "repair" in result.output


class TestImport:
    def test_import_is_idempotent(self, sample_dir, project, tmp_path):
        copy = tmp_path / "proj.gpkg"
        shutil.copy(project, copy)
        first = json.loads(
            run("import", copy, sample_dir / "labels" / "starter.csv", "--json").output
        )
        assert first["n_added"] == 45 and not first["already_imported"]
        second = json.loads(
            run("import", copy, sample_dir / "labels" / "starter.csv", "--json").output
        )
        assert second["n_added"] == 0 and second["already_imported"]
        with Project.open(copy) as p:
            assert len(p.annotations()) == 45

    def test_bad_label_rolls_back_everything(self, data_dir, tmp_path):
        proj = tmp_path / "p.gpkg"
        assert run("init", proj, "--scene", data_dir / "scene_small.tif", "--parcels",
                   data_dir / "parcels.geojson").exit_code == 0  # fmt: skip
        assert run("import", proj, data_dir / "votes.csv").exit_code == 0
        result = run("import", proj, data_dir / "votes_bad_label.csv")
        assert result.exit_code == 1 and "shopping_mall" in result.output
        with Project.open(proj) as p:
            assert len(p.annotations()) == 4  # the first import intact, nothing from the failed one

    def test_misnamed_columns(self, data_dir, tmp_path):
        proj = tmp_path / "p.gpkg"
        run(
            "init",
            proj,
            "--scene",
            data_dir / "scene_small.tif",
            "--parcels",
            data_dir / "parcels.geojson",
        )
        result = run("import", proj, data_dir / "votes_misnamed.csv")
        assert result.exit_code == 1 and "item_id" in result.output


class TestTaxonomyCommands:
    def test_check_valid(self, sample_dir):
        result = run("taxonomy", "check", sample_dir / "taxonomy.yaml")
        assert result.exit_code == 0 and "is valid" in result.output

    def test_check_invalid_lists_every_problem(self, data_dir):
        result = run("taxonomy", "check", data_dir / "taxonomy_invalid.yaml")
        assert result.exit_code == 1
        out = " ".join(result.output.split())
        assert "residential" in out and "colour" in out and "mall" in out

    def test_guidelines(self, sample_dir, tmp_path):
        out = tmp_path / "g.md"
        assert run("taxonomy", "guidelines", sample_dir / "taxonomy.yaml", "-o", out).exit_code == 0
        text = out.read_text()
        assert "Residential" in text and "Construction" in text


class TestSampleCommand:
    def test_bad_size(self, tmp_path):
        result = run("sample", tmp_path / "s", "--size", "1000")
        assert result.exit_code == 2 and "multiple of 64" in result.output

    def test_version(self):
        result = run("--version")
        assert result.exit_code == 0 and result.output.startswith("geolabel ")
