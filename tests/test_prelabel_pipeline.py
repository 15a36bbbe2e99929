"""Train and pre-label a generated 256-px sample city end to end; bad inputs; the CLI commands."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from typer.testing import CliRunner

from geolabel.cli.main import app
from geolabel.errors import GeolabelError, InputFileError, StoreError
from geolabel.prelabel.embeddings import load_embeddings
from geolabel.prelabel.model import (
    ModelConfig,
    ModelMismatchError,
    build_model,
    load_checkpoint,
    save_checkpoint,
)
from geolabel.prelabel.pipeline import (
    TILE_LAYER,
    auto_input_scale,
    latest_model,
    prelabel_project,
    train_project,
    training_labels,
)
from geolabel.prelabel.train import TrainConfig
from geolabel.project import init_project
from geolabel.raster.io import open_scene_info
from geolabel.store import Project

TINY = TrainConfig(
    model=ModelConfig(encoder_depth=3, decoder_channels=(16, 8, 8)),
    tile_size=128,
    batch_size=4,
    steps_per_epoch=3,
    max_epochs=2,
    min_epochs=1,
    num_threads=1,
)


def _make_project(sample: Path, path: Path, *, starter: bool = True) -> Path:
    init_project(
        path,
        scenes=[sample / "scene.tif"],
        parcels=sample / "city.gpkg",
        parcels_layer="parcels",
        taxonomy=sample / "taxonomy.yaml",
    )
    if starter:
        with Project.open(path) as p:
            p.import_annotations_csv(
                sample / "labels" / "starter.csv",
                allowed_labels=p.current_taxonomy().class_ids,
                annotator_kind="expert",
            )
    return path


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    from geolabel.synth.sample import write_sample

    out = tmp_path_factory.mktemp("city") / "sample"
    write_sample(out, size_px=256, n_notices=40)
    return out


@pytest.fixture(scope="module")
def trained(sample, tmp_path_factory):
    root = tmp_path_factory.mktemp("proj")
    project = _make_project(sample, root / "city.gpkg")
    report = train_project(project, config=TINY)
    return project, report


@pytest.fixture(scope="module")
def prelabeled(trained):
    project, report = trained
    return project, report, prelabel_project(project, batch_size=4, num_threads=1)


def _copy(project: Path, name: str) -> Path:
    """A copy of a project (and its models) beside it, so relative scene paths still hold."""
    target = project.with_name(name)
    shutil.copy(project, target)
    models = project.with_name(f"{project.stem}_models")
    if models.exists():
        shutil.copytree(models, target.with_name(f"{target.stem}_models"))
    return target


class TestTrainProject:
    def test_checkpoint_card(self, trained, sample):
        _, report = trained
        model_dir = Path(report.model_dir)
        assert model_dir.parent.name == "city_models" and model_dir.name == report.model_version
        _, card = load_checkpoint(model_dir)
        assert card.model_version == report.model_version
        assert card.bands == (1, 2, 3, 4) and card.dtype == "uint16"
        # 0.5 m pixels would be seen at 2 m (4), but 128-px crops keep 64 px: 2.
        assert card.input_scale == 2
        assert card.taxonomy_name == "land_use" and card.taxonomy_version == "1"
        assert card.classes[-1] == "road" and card.label_source == "starter"
        starter = pd.read_csv(sample / "labels" / "starter.csv")
        assert card.n_training_items == starter["item"].nunique() == report.n_training_parcels
        assert len(card.mean) == 4 and all(s > 0 for s in card.std)
        assert card.versions["torch"] and card.train_config["batch_size"] == 4
        assert 1 <= report.epochs <= 2 and set(card.val_metrics) >= {"miou", "iou", "calibration"}
        assert 0.0 <= report.val_miou <= 1.0 and report.calibration.n == report.n_val_parcels

    def test_training_labels_majority(self, trained):
        project, _ = trained
        with Project.open(project) as p:
            labels = training_labels(p, "starter")
        assert set(labels.values()) <= {"commercial", "vacant"}


class TestPrelabelProject:
    def test_outputs(self, prelabeled):
        project, train_report, r = prelabeled
        assert r.model_version == train_report.model_version
        out = Path(r.out_dir)
        assert out == project.with_name("city_prelabels") / r.model_version
        with rasterio.open(r.class_maps[0]) as ds:  # at the model's 1 m pixels
            assert ds.shape == (128, 128) and ds.dtypes[0] == "uint8" and ds.res == (1.0, 1.0)
        parcels = pd.read_csv(r.parcels_csv)
        assert len(parcels) == r.n_parcels == 14
        assert parcels["confidence"].between(0, 1).all()
        assert (parcels["margin"] <= parcels["confidence"]).all()
        probs = parcels.filter(like="p_").to_numpy()
        assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-6) and "p_road" not in parcels
        tiles = pd.read_csv(r.tiles_csv)
        assert len(tiles) == r.n_tiles and tiles["mean_entropy"].ge(0).all()
        ids, emb = load_embeddings(r.parcel_embeddings)
        assert sorted(ids) == sorted(parcels["item"]) and emb.shape[0] == len(ids)
        tile_ids, tile_emb = load_embeddings(r.tile_embeddings)
        assert sorted(tile_ids) == sorted(tiles["tile_id"]) and tile_emb.shape[1] == emb.shape[1]
        assert json.loads((out / "prelabel.json").read_text())["n_parcels"] == 14

    def test_stored_with_model_version(self, prelabeled):
        project, _, r = prelabeled
        with Project.open(project) as p:
            stored = p.predictions(r.model_version)
            layer = p.read_layer(TILE_LAYER)
        assert len(stored) == r.n_added == 14
        assert stored["probas"].map(lambda d: abs(sum(d.values()) - 1) < 1e-4).all()
        assert set(layer["model_version"]) == {r.model_version} and len(layer) == r.n_tiles

    def test_rerun_adds_nothing(self, prelabeled, tmp_path):
        project, _, r = prelabeled
        again = prelabel_project(project, r.model_dir, out_dir=tmp_path, num_threads=1)
        assert again.n_added == 0 and again.label_counts == r.label_counts
        with Project.open(project) as p:
            assert len(p.read_layer(TILE_LAYER)) == r.n_tiles  # replaced, not appended

    def test_latest_model(self, trained):
        project, report = trained
        assert latest_model(project) == Path(report.model_dir)


class TestBadInputs:
    def test_no_labels(self, sample, tmp_path):
        project = _make_project(sample, tmp_path / "empty.gpkg", starter=False)
        with pytest.raises(StoreError, match=r"no parcel annotations.*geolabel import"):
            train_project(project, config=TINY)
        with pytest.raises(StoreError, match="no consensus labels"):
            train_project(project, labels="consensus", config=TINY)

    def test_unknown_encoder_before_reading(self, trained):
        project, _ = trained
        bad = replace(TINY, model=replace(TINY.model, encoder="resnet-9000"))
        with pytest.raises(GeolabelError, match=r"Unknown encoder 'resnet-9000'.*resnet18"):
            train_project(project, config=bad)

    def test_no_model_yet(self, sample, tmp_path):
        project = _make_project(sample, tmp_path / "fresh.gpkg")
        with pytest.raises(InputFileError, match=r"no trained model yet.*geolabel train"):
            prelabel_project(project)

    def test_missing_and_corrupt_model_dir(self, trained, tmp_path):
        project, report = trained
        with pytest.raises(InputFileError, match="does not exist"):
            prelabel_project(project, tmp_path / "nowhere")
        bad = tmp_path / "bad"
        shutil.copytree(report.model_dir, bad)
        (bad / "weights.pt").write_bytes(b"not torch")
        with pytest.raises(InputFileError, match="damaged"):
            prelabel_project(project, bad)
        (bad / "model_card.json").write_text("{broken")
        with pytest.raises(InputFileError, match="not a readable model card"):
            prelabel_project(project, bad)
        (bad / "model_card.json").write_text("{}")
        with pytest.raises(InputFileError, match="lacks model_version, classes"):
            prelabel_project(project, bad)

    def test_other_taxonomy_version(self, trained, tmp_path):
        project, report = trained
        other = tmp_path / "v2"
        shutil.copytree(report.model_dir, other)
        card = json.loads((other / "model_card.json").read_text())
        card["taxonomy_version"] = "2"
        (other / "model_card.json").write_text(json.dumps(card))
        with pytest.raises(ModelMismatchError, match=r"taxonomy land_use v2.*geolabel train"):
            prelabel_project(project, other)

    def test_other_band_count(self, trained, tmp_path):
        # A model trained on 3-band imagery, for this project's taxonomy, meets a 4-band scene.
        project, report = trained
        _, card = load_checkpoint(report.model_dir)
        rgb = replace(card, bands=(1, 2, 3), band_names=("r", "g", "b"), mean=card.mean[:3],
                      std=card.std[:3], model_version="")  # fmt: skip
        save_checkpoint(tmp_path / "rgb", build_model(rgb.model_config, 3, len(rgb.classes)), rgb)
        with pytest.raises(ModelMismatchError, match=r"takes 3 band\(s\) \(r, g, b\).*has 4"):
            prelabel_project(project, tmp_path / "rgb")

    def test_no_scenes(self, trained):
        project, report = trained
        bare = _copy(project, "bare.gpkg")
        with Project.open(bare) as p:
            scenes = p.read_layer("scenes")
            p.write_layer(scenes.iloc[0:0], "scenes", overwrite=True)
        with pytest.raises(StoreError, match=r"no scenes.*--scene"):
            train_project(bare, config=TINY)
        with pytest.raises(StoreError, match="no scenes"):
            prelabel_project(bare, report.model_dir)


class TestAutoInputScale:
    def test_powers_of_two_towards_2m(self, sample):
        info = open_scene_info(sample / "scene.tif")
        assert auto_input_scale(info) == 4
        assert auto_input_scale(replace(info, res=(30.0, 30.0))) == 1
        assert auto_input_scale(replace(info, res=(0.05, 0.05))) == 8


class TestCli:
    def test_train_and_prelabel(self, trained):
        project, _ = trained
        copy = _copy(project, "cli.gpkg")
        runner = CliRunner()
        args = ["train", str(copy), "--epochs", "1", "--steps", "2", "--batch-size", "4"]
        res = runner.invoke(app, [*args, "--threads", "1", "--json"])
        assert res.exit_code == 0, res.output
        report = json.loads(res.stdout.strip().splitlines()[-1])
        assert report["epochs"] == 1 and report["labels"] == "starter"
        res = runner.invoke(app, ["prelabel", str(copy), "--threads", "1"])
        assert res.exit_code == 0, res.output
        assert f"Model {report['model_version']}" in res.stdout  # the newest model was used
        assert "pre-labeled 14 parcel(s)" in res.stdout
        parcels = gpd.read_file(copy, layer="parcels")
        assert len(parcels) == 14

    def test_errors_exit_1_without_traceback(self, trained, tmp_path):
        project, _ = trained
        runner = CliRunner()
        res = runner.invoke(app, ["prelabel", str(project), "--model", str(tmp_path / "none")])
        assert res.exit_code == 1 and "does not exist" in res.output
        assert "Traceback" not in res.output
        res = runner.invoke(app, ["train", str(project), "--encoder", "nope"])
        assert res.exit_code == 1 and "Unknown encoder 'nope'" in res.output
        res = runner.invoke(app, ["train", str(project), "--labels", "crowd"])
        assert res.exit_code == 2  # a usage error, named by click
