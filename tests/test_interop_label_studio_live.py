"""Live round trip through a real Label Studio server started on 127.0.0.1 (no outbound calls).

Runs when ``GEOLABEL_LABEL_STUDIO`` points at a ``label-studio`` executable (``.ci/run`` installs
it into its own virtual environment and sets it); ``GEOLABEL_LABEL_STUDIO_TEMPLATE`` may point
at a data folder whose database is already migrated, which is copied so the server starts in
seconds instead of minutes.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from affine import Affine

from geolabel.crowd.consensus import aggregate_project
from geolabel.interop import (
    export_tasks,
    gold_answers,
    import_file,
    segment_annotations,
    segment_mask,
    span_annotations,
)
from geolabel.interop.rle import encode_brush_rle
from geolabel.store import Project
from geolabel.text.crowd import SpanVote

from .conftest import SAMPLE
from .test_interop import (
    NOTICE_TAXONOMY,
    PARCELS,
    TRUTH,
    TRUTH_MASK,
    add_predictions,
    base_dir,  # noqa: F401  (module fixture)
    choice,
    make_project,
)

LABEL_STUDIO = os.environ.get("GEOLABEL_LABEL_STUDIO", "")
TEMPLATE = os.environ.get("GEOLABEL_LABEL_STUDIO_TEMPLATE", "")
TOKEN = "0123456789abcdef0123456789abcdef01234567"
ADMIN = "admin@geolabel.test"

pytestmark = [
    pytest.mark.label_studio,
    pytest.mark.skipif(
        not LABEL_STUDIO or not Path(LABEL_STUDIO).is_file(),
        reason="live Label Studio test: set GEOLABEL_LABEL_STUDIO to a label-studio executable "
        "(.ci/run installs one into .ci/ls-venv and sets it)",
    ),
]

TILE = "S001_r000256_c000000"
NOTICES = ["N0001", "N0002"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Client:
    """The few REST calls the test needs, with the legacy token."""

    def __init__(self, base: str) -> None:
        self.base = base

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base + path,
            data=data,
            method=method,
            headers={"Authorization": f"Token {TOKEN}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"{method} {path}: {exc.code} {exc.read()[:1000]!r}") from exc
        return json.loads(raw) if raw else None

    def raw(self, path: str) -> tuple[int, bytes]:
        request = urllib.request.Request(
            self.base + path, headers={"Authorization": f"Token {TOKEN}"}
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read()


def _start(data_dir: Path, document_root: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {
        **os.environ,
        "SENTRY_DSN": "",
        "FRONTEND_SENTRY_DSN": "",
        "COLLECT_ANALYTICS": "false",
        "LATEST_VERSION_CHECK": "false",
        "LOCAL_FILES_SERVING_ENABLED": "true",
        "LOCAL_FILES_DOCUMENT_ROOT": str(document_root),
    }
    command = [
        LABEL_STUDIO,
        "start",
        "--no-browser",
        "--data-dir",
        str(data_dir),
        "--internal-host",
        "127.0.0.1",
        "--port",
        str(port),
        "--username",
        ADMIN,
        "--password",
        "geolabel-test-pw",
        "--user-token",
        TOKEN,
        "--enable-legacy-api-token",
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(
                f"label-studio exited ({proc.returncode}):\n{log.read_text()[-3000:]}"
            )
        try:
            with urllib.request.urlopen(base + "/health", timeout=5) as response:
                if response.status == 200:
                    return proc, base
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(1)
    _stop(proc)
    raise AssertionError(f"label-studio did not answer on {base}:\n{log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop the server by its PID (SIGTERM, then SIGKILL)."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


def _ls_project(client: _Client, title: str, config: Path, tasks: Path, chips: Path | None) -> dict:
    project = client.call(
        "POST", "/api/projects/", {"title": title, "label_config": config.read_text()}
    )
    if chips is not None:
        client.call(
            "POST",
            "/api/storages/localfiles/",
            {
                "project": project["id"],
                "path": str(chips),
                "title": "geolabel chips",
                "use_blob_urls": False,
                "regex_filter": "",
            },
        )
    payload = json.loads(tasks.read_text())
    summary = client.call("POST", f"/api/projects/{project['id']}/import", payload)
    assert summary["task_count"] == len(payload)
    assert summary["prediction_count"] == sum(len(t.get("predictions", [])) for t in payload)
    assert summary["annotation_count"] == sum(len(t.get("annotations", [])) for t in payload)
    listing = client.call("GET", f"/api/tasks/?project={project['id']}&page_size=1000")
    ids = {t["data"]["geolabel_item"]: t["id"] for t in listing["tasks"]}
    return {"id": project["id"], "tasks": ids, "payload": payload}


def _annotate(client: _Client, task_id: int, result: list, user: int | None, **extra: Any) -> None:
    body: dict[str, Any] = {"result": result, "lead_time": 7.5, **extra}
    if user is not None:
        body["completed_by"] = user
    query = "?was_cancelled=1" if extra.get("was_cancelled") else ""
    client.call("POST", f"/api/tasks/{task_id}/annotations/{query}", body)


def _export(client: _Client, project_id: int, path: Path) -> Path:
    status, data = client.raw(
        f"/api/projects/{project_id}/export?exportType=JSON&download_all_tasks=true"
    )
    assert status == 200
    path.write_bytes(data)
    return path


class TestLabelStudioLive:
    def test_sdk_decodes_geolabel_rle_and_back(self, tmp_path):
        python = Path(LABEL_STUDIO).parent / "python"
        rng = np.random.default_rng(3)
        mask = rng.random((37, 53)) > 0.5
        mask[:, :10] = True
        script = (
            "import json, sys, numpy as np\n"
            "from label_studio_sdk.converter.brush import decode_rle, mask2rle\n"
            "d = json.load(open(sys.argv[1]))\n"
            "img = decode_rle(d['rle']).reshape(37, 53, 4)[:, :, 3]\n"
            "m = np.array(d['mask'], dtype=np.uint8) * 255\n"
            "print(json.dumps({'same': bool((img == m).all()), 'sdk': mask2rle(m)}))\n"
        )
        data = tmp_path / "rle.json"
        data.write_text(json.dumps({"rle": encode_brush_rle(mask), "mask": mask.tolist()}))
        out = subprocess.run(
            [str(python), "-c", script, str(data)], capture_output=True, text=True, check=True
        )
        answer = json.loads(out.stdout.strip().splitlines()[-1])
        assert answer["same"]
        assert answer["sdk"] == encode_brush_rle(mask)  # byte for byte

    def test_round_trip_through_a_running_label_studio(self, base_dir, tmp_path):  # noqa: F811
        root = tmp_path / "served"
        path = make_project(base_dir)
        with Project.open(path) as p:
            add_predictions(p, PARCELS, model_version="m-live")
            parcels = export_tasks(
                p,
                root / "parcels",
                "labelstudio",
                "parcel",
                items=PARCELS,
                document_root=root,
                gold={"P0003": str(TRUTH["P0003"])},  # goes out as a ground-truth annotation
            )
            tiles = export_tasks(
                p,
                root / "tiles",
                "labelstudio",
                "tile",
                items=[TILE],
                class_map=TRUTH_MASK,
                document_root=root,
            )
            notices = export_tasks(
                p,
                root / "notices",
                "labelstudio",
                "notice",
                items=NOTICES,
                taxonomy_file=NOTICE_TAXONOMY,
            )
            codes = p.current_taxonomy().codes
        data_dir = tmp_path / "ls-data"
        if TEMPLATE:
            shutil.copytree(TEMPLATE, data_dir)
        proc, base = _start(data_dir, root, tmp_path / "label-studio.log")
        try:
            client = _Client(base)
            users = [
                client.call(
                    "POST",
                    "/api/users/",
                    {
                        "email": f"ann{k}@geolabel.test",
                        "username": f"ann{k}",
                        "first_name": f"A{k}",
                    },
                )["id"]
                for k in (1, 2, 3)
            ]
            lp = _ls_project(
                client,
                "parcels",
                Path(parcels.paths[1]),
                Path(parcels.paths[0]),
                Path(parcels.chips_dir or ""),
            )
            lt = _ls_project(
                client,
                "tiles",
                Path(tiles.paths[1]),
                Path(tiles.paths[0]),
                Path(tiles.chips_dir or ""),
            )
            ln = _ls_project(
                client, "notices", Path(notices.paths[1]), Path(notices.paths[0]), None
            )
            # Label Studio serves the chips through local-files serving
            url = lp["payload"][0]["data"]["image"]
            status, png = client.raw(url)
            assert status == 200 and png[:8] == b"\x89PNG\r\n\x1a\n"
            # several users answer; the third is wrong; P0003's ground truth came with the tasks
            for item, task_id in lp["tasks"].items():
                truth = str(TRUTH[item])
                wrong = "water" if truth != "water" else "park"
                _annotate(client, task_id, choice(truth), users[0])
                _annotate(client, task_id, choice(truth), users[1])
                if item == PARCELS[-1]:
                    _annotate(client, task_id, [], users[2], was_cancelled=True)
                else:
                    _annotate(client, task_id, choice(wrong), users[2])
            # tiles: one user paints the pre-label (brush RLE), another traces it (polygons)
            tile_pred = lt["payload"][0]["predictions"][0]["result"]
            brush = [r for r in tile_pred if r["type"] == "brushlabels"]
            polygons = [r for r in tile_pred if r["type"] == "polygonlabels"]
            _annotate(client, lt["tasks"][TILE], brush, users[0])
            _annotate(client, lt["tasks"][TILE], polygons, users[1])
            # notices: the gold spans by two users, one span by the third
            gold_spans = {
                r["notice_id"]: r["entities"]
                for r in map(
                    json.loads, (SAMPLE / "truth" / "notices.jsonl").read_text().splitlines()
                )
                if r["notice_id"] in NOTICES
            }
            for item, task_id in ln["tasks"].items():
                text = ln["payload"][
                    [t["data"]["geolabel_item"] for t in ln["payload"]].index(item)
                ]["data"]["text"]
                spans = [
                    {
                        "from_name": "entities",
                        "to_name": "text",
                        "type": "labels",
                        "value": {
                            "start": s["start"],
                            "end": s["end"],
                            "text": text[s["start"] : s["end"]],
                            "labels": [s["label"]],
                        },
                    }
                    for s in gold_spans[item]
                ]
                _annotate(client, task_id, spans, users[0])
                _annotate(client, task_id, spans, users[1])
                _annotate(client, task_id, spans[:1], users[2])
            exports = {
                name: _export(client, project["id"], tmp_path / f"{name}.json")
                for name, project in (("parcels", lp), ("tiles", lt), ("notices", ln))
            }
        finally:
            _stop(proc)
        assert proc.poll() is not None

        with Project.open(path) as p:
            result = import_file(p, exports["parcels"], "labelstudio")
            assert result.n_labels == 3 * len(PARCELS) - 1
            assert result.n_skipped == {"cancelled": 1}
            assert result.n_gold == 1
            gold = gold_answers(p)
            assert gold.to_dict() == {"P0003": str(TRUTH["P0003"])}
            consensus = aggregate_project(p, method="ds", gold=gold)
            assert consensus.n_annotators == 3
            current = p.current_consensus().set_index("item")
            assert {i: current.loc[i, "label"] for i in PARCELS} == {
                i: str(TRUTH[i]) for i in PARCELS
            }
            assert (p.annotations()["seconds"] == 7.5).all()
            assert import_file(p, exports["parcels"], "labelstudio").already_imported

            tiles_result = import_file(p, exports["tiles"], "labelstudio")
            assert tiles_result.n_segments == len(brush) + len(polygons)
            regions = segment_annotations(p, TILE)
            task = lt["payload"][0]["data"]
            transform = Affine(*task["geolabel_transform"])
            with rasterio.open(TRUTH_MASK) as src:
                truth = src.read(1, window=((256, 512), (0, 256)))
            labeled = np.isin(truth, list(codes.values()))
            expected = np.where(labeled, truth, 0)
            painted = regions[regions["shape"] == "brush"]
            assert np.array_equal(segment_mask(painted, transform, truth.shape, codes), expected)
            traced = regions[regions["shape"] == "polygon"]
            mask = segment_mask(traced, transform, truth.shape, codes)
            assert np.array_equal(mask[labeled], expected[labeled])

            import_file(
                p,
                exports["notices"],
                "labelstudio",
                taxonomy_files={"notice": str(NOTICE_TAXONOMY)},
            )
            spans = span_annotations(p)
            vote = SpanVote(method="span", threshold=0.5).fit(spans)
            decided = vote.spans_
            for item in NOTICES:
                got = sorted(
                    (int(r.start), int(r.end), r.label)
                    for r in decided[decided["item"] == item].itertuples()
                )
                want = sorted((s["start"], s["end"], s["label"]) for s in gold_spans[item])
                assert got == want
