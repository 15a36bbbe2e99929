"""`geolabel tile` on real project files: output, JSON, wrong input, and no torch import."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from geolabel.cli.main import app
from geolabel.project import init_project

runner = CliRunner()


def run(*args):
    result = runner.invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def make_project(sample_dir, folder):
    path = folder / "demo.gpkg"
    init_project(
        path,
        scenes=[sample_dir / "scene.tif"],
        parcels=sample_dir / "city.gpkg",
        parcels_layer="parcels",
        regions=sample_dir / "city.gpkg",
        regions_layer="districts",
        taxonomy=sample_dir / "taxonomy.yaml",
    )
    return path


@pytest.fixture
def project(sample_dir, tmp_path):
    return make_project(sample_dir, tmp_path)


@pytest.fixture(scope="module")
def untiled(sample_dir, tmp_path_factory):
    """A project that the tests below never manage to tile (every call is refused)."""
    return make_project(sample_dir, tmp_path_factory.mktemp("untiled"))


class TestTile:
    def test_table_then_refusal_then_force_json(self, project):
        result = run("tile", project, "--stats-tiles", "4")
        assert result.exit_code == 0, result.output
        assert "25 tiles of 256 px, overlap 32 px" in result.output and "S001" in result.output
        again = run("tile", project)
        assert again.exit_code == 1 and "already has a tile index" in again.output
        forced = run("tile", project, "--size", "512", "--overlap", "0", "--force", "--json")
        assert forced.exit_code == 0
        lines = forced.output.strip().splitlines()
        assert len(lines) == 1
        data = json.loads(lines[0])
        assert data["n_tiles"] == 4 and data["scenes"][0]["stats"]["bands"] == [1, 2, 3, 4]

    @pytest.mark.parametrize(
        ("args", "code", "fragment"),
        [
            (["--size", "4096"], 1, "use --size 1024 or less"),
            (["--overlap", "256"], 1, "must be smaller than the tile size"),
            (["--nodata-threshold", "0"], 1, "nodata_threshold must be in (0, 1]"),
            (["--edge", "pad"], 2, "use 'shift' or 'drop'"),
            (["--size", "0"], 2, "greater than or equal to 1"),
        ],
    )
    def test_wrong_input_exits_cleanly(self, untiled, args, code, fragment):
        result = run("tile", untiled, *args)
        assert result.exit_code == code
        assert fragment in " ".join(result.output.split())

    def test_missing_project(self, tmp_path):
        result = run("tile", tmp_path / "nope.gpkg")
        assert result.exit_code == 1 and "No geolabel project" in result.output

    def test_does_not_import_torch(self, project):
        code = (
            "import sys\n"
            "from typer.testing import CliRunner\n"
            "from geolabel.cli.main import app\n"
            f"r = CliRunner().invoke(app, ['tile', {str(project)!r}, '--stats-tiles', '2'])\n"
            "assert r.exit_code == 0, r.output\n"
            "print('torch' in sys.modules)\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        assert out.stdout.strip() == "False"
