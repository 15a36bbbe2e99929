"""Pre-labeling on a Dask LocalCluster of 2 worker processes gives exactly the local outputs."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
from typer.testing import CliRunner

from geolabel.cli.main import app
from geolabel.cluster import dask_client, local_cluster, worker_threads
from geolabel.errors import ClusterError
from geolabel.prelabel.embeddings import load_embeddings
from geolabel.prelabel.pipeline import prelabel_project, train_project
from geolabel.project import init_project
from geolabel.store import Project

from .test_prelabel_pipeline import TINY, _make_project


@pytest.fixture(scope="module")
def two_scenes(tmp_path_factory):
    """A model trained on a 256-px city, and a project of that city seen in two scenes."""
    from geolabel.synth.sample import write_sample

    root = tmp_path_factory.mktemp("dist")
    sample = root / "sample"
    write_sample(sample, size_px=256, n_notices=10)
    trained = _make_project(sample, root / "train.gpkg")
    report = train_project(trained, config=TINY)
    second = root / "scene_b.tif"
    shutil.copy(sample / "scene.tif", second)
    project = root / "two.gpkg"
    init_project(
        project,
        scenes=[sample / "scene.tif", second],
        parcels=sample / "city.gpkg",
        parcels_layer="parcels",
        taxonomy=sample / "taxonomy.yaml",
    )
    shutil.copy(project, root / "two_dask.gpkg")
    shutil.copy(project, root / "two_cli.gpkg")
    return root, Path(report.model_dir)


@pytest.fixture(scope="module")
def cluster():
    with local_cluster(2, dashboard=False) as c:
        yield c


def _started_with(variable: str) -> bool:
    with open("/proc/self/environ", "rb") as f:
        return variable.encode() in f.read().split(b"\0")


def _predictor_id(model_dir: str) -> int:
    from geolabel.prelabel.distributed import cached_predictor

    return id(cached_predictor(model_dir, precision="fp32", num_threads=1))


def _raster(path: str) -> np.ndarray:
    with rasterio.open(path) as ds:
        return ds.read()


class TestPredictScenes:
    def test_identical_to_local(self, two_scenes, cluster):
        root, model = two_scenes
        local = prelabel_project(root / "two.gpkg", model, batch_size=4, num_threads=1)
        dask = prelabel_project(
            root / "two_dask.gpkg",
            model,
            out_dir=root / "dask_out",
            batch_size=4,
            scheduler=cluster.scheduler_address,
        )
        assert len(local.class_maps) == len(dask.class_maps) == 2
        assert dask.threads == 1 and any("2 worker(s)" in n for n in dask.notes)
        for a, b in zip(
            [*local.class_maps, *local.confidence_maps],
            [*dask.class_maps, *dask.confidence_maps],
            strict=True,
        ):
            assert Path(a).name == Path(b).name
            np.testing.assert_array_equal(_raster(a), _raster(b))
        pd.testing.assert_frame_equal(pd.read_csv(local.parcels_csv), pd.read_csv(dask.parcels_csv))
        pd.testing.assert_frame_equal(pd.read_csv(local.tiles_csv), pd.read_csv(dask.tiles_csv))
        for a, b in ((local.parcel_embeddings, dask.parcel_embeddings),
                     (local.tile_embeddings, dask.tile_embeddings)):  # fmt: skip
            ids_a, emb_a = load_embeddings(a)
            ids_b, emb_b = load_embeddings(b)
            assert list(ids_a) == list(ids_b)
            np.testing.assert_array_equal(emb_a, emb_b)
        with Project.open(root / "two.gpkg") as p:
            stored_local = p.predictions().drop(columns="created_at")
        with Project.open(root / "two_dask.gpkg") as p:
            stored_dask = p.predictions().drop(columns="created_at")
        assert len(stored_local) == local.n_parcels > 0
        pd.testing.assert_frame_equal(stored_local, stored_dask)

    def test_progress_counts_the_built_grids(self, two_scenes, cluster, tmp_path):
        root, model = two_scenes
        project = root / "two_progress.gpkg"  # beside the scenes: their paths are relative
        shutil.copy(root / "two.gpkg", project)
        calls: list[tuple[int, int]] = []
        report = prelabel_project(
            project,
            model,
            out_dir=tmp_path / "out",
            batch_size=4,
            scheduler=cluster.scheduler_address,
            progress=lambda done, total: calls.append((done, total)),
        )
        assert len(calls) == 2  # one per scene
        assert calls[-1] == (report.n_tiles, report.n_tiles)
        assert all(done <= total for done, total in calls)

    def test_worker_loads_a_model_once_and_notices_a_rewrite(self, two_scenes, cluster, tmp_path):
        import os

        from distributed import Client

        _, model = two_scenes
        copy = tmp_path / "model"
        shutil.copytree(model, copy)
        with Client(cluster) as client:
            worker = next(iter(client.nthreads()))

            def ident() -> int:
                return client.submit(
                    _predictor_id, str(copy), workers=[worker], pure=False
                ).result()

            first, again = ident(), ident()
            weights = copy / "weights.pt"
            stat = weights.stat()
            os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
            assert first == again != ident()

    def test_damaged_model_on_a_worker(self, two_scenes, cluster, tmp_path):
        root, model = two_scenes
        broken = tmp_path / "model"
        shutil.copytree(model, broken)
        (broken / "weights.pt").write_bytes(b"not a checkpoint")
        project = root / "two_broken.gpkg"
        shutil.copy(root / "two.gpkg", project)
        result = CliRunner().invoke(
            app,
            ["prelabel", str(project), "--model", str(broken),
             "--scheduler", cluster.scheduler_address],
        )  # fmt: skip
        assert result.exit_code != 0
        assert "damaged" in result.output and "Traceback" not in result.output

    def test_cli_scheduler_flag(self, two_scenes, cluster):
        root, model = two_scenes
        result = CliRunner().invoke(
            app,
            ["prelabel", str(root / "two_cli.gpkg"), "--model", str(model), "--batch-size", "4",
             "--scheduler", cluster.scheduler_address, "--json"],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        assert '"n_parcels": 14' in result.output and "Ran on Dask" in result.output


class TestCluster:
    def test_unreachable_scheduler(self):
        with (
            pytest.raises(ClusterError, match="Cannot reach the Dask scheduler"),
            dask_client("tcp://127.0.0.1:9", timeout=1),
        ):
            pass

    def test_bad_worker_count(self):
        with (
            pytest.raises(ClusterError, match="at least one worker"),
            dask_client("local", n_workers=0),
        ):
            pass

    def test_workers_start_with_the_mmap_threshold(self, cluster):
        # In the environment the process was started with (glibc reads it then), not set later.
        from distributed import Client

        with Client(cluster) as client:
            assert all(client.run(_started_with, "MALLOC_MMAP_THRESHOLD_=33554432").values())

    def test_worker_threads(self, cluster):
        from distributed import Client

        assert worker_threads(3) == 3 and worker_threads() == 1  # here: not on a worker
        with Client(cluster) as client:
            assert client.submit(worker_threads, pure=False).result() == 1
