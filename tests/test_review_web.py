"""Tests for the review web app (geolabel.review.web.app): API, pages, security, concurrency."""

from __future__ import annotations

import contextlib
import random
import shutil
import socket
import threading
import time
import warnings
from collections import Counter
from pathlib import Path

import httpx
import pandas as pd
import pytest
import rasterio
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from geolabel.cli.main import app as cli
from geolabel.errors import ReviewerAuthError, ReviewError
from geolabel.review.chips import render_chip
from geolabel.review.decisions import review_states
from geolabel.review.reviewers import (
    add_reviewer,
    authenticate,
    hash_token,
    reviewers,
    revoke_reviewer,
)
from geolabel.review.web.app import create_app
from geolabel.store import Project
from tests.review_helpers import planted_hotspots, review_project

SCRIPT = "<script>alert('pwned')</script>"


def _setup(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    path = review_project(tmp_path)
    with Project.open(path) as project:
        tokens = {
            "alice": add_reviewer(project, "alice"),
            "root": add_reviewer(project, "root", role="admin"),
        }
        project.add_notices(pd.DataFrame({"notice_id": ["X1"], "text": [f"Hearing {SCRIPT}"]}))
        project.add_notice_links(
            pd.DataFrame(
                {
                    "notice_id": ["X1"],
                    "item": ["P0153"],
                    "method": ["exact"],
                    "confidence": [1.0],
                    "start": [0],
                    "end": [7],
                    "label": ["ADDRESS"],
                    "text": [SCRIPT],
                }
            ),
            model_version="test",
        )
    return path, tokens


@pytest.fixture
def client(tmp_path):
    path, tokens = _setup(tmp_path)
    app = create_app(path, chip_dir=tmp_path / "chips", hotspots=planted_hotspots())
    with TestClient(app) as c:
        yield c, path, tokens


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class TestReviewers:
    def test_tokens_are_stored_hashed(self, tmp_path):
        path = review_project(tmp_path)
        with Project.open(path) as project:
            token = add_reviewer(project, "alice")
            assert authenticate(project, token).reviewer_id == "alice"
            assert token.encode() not in path.read_bytes()
            assert hash_token(token).encode() in path.read_bytes()
            with pytest.raises(ReviewError, match="already exists"):
                add_reviewer(project, "alice")
            with pytest.raises(ReviewError, match="not valid"):
                add_reviewer(project, "al ice")
            with pytest.raises(ReviewerAuthError, match="not valid"):
                authenticate(project, token + "x")
            with pytest.raises(ReviewerAuthError, match="needs a reviewer token"):
                authenticate(project, None)
            revoke_reviewer(project, "alice")
            with pytest.raises(ReviewerAuthError):
                authenticate(project, token)
            assert reviewers(project)["revoked_at"].notna().all()

    def test_cli_add_prints_token(self, tmp_path):
        path = review_project(tmp_path)
        result = CliRunner().invoke(cli, ["reviewers", "add", str(path), "bob", "--admin"])
        assert result.exit_code == 0, result.output
        token = result.stdout.strip()
        with Project.open(path) as project:
            assert authenticate(project, token).role == "admin"
        again = CliRunner().invoke(cli, ["reviewers", "add", str(path), "bob"])
        assert again.exit_code == 1 and "already exists" in again.output


class TestChips:
    def test_chip_has_the_outline_and_is_cached(self, tmp_path):
        with Project.open(review_project(tmp_path)) as project:
            chip = render_chip(project, "P0153", cache_dir=tmp_path / "chips")
            mtime = chip.stat().st_mtime_ns
            assert render_chip(project, "P0153", cache_dir=tmp_path / "chips") == chip
            assert chip.stat().st_mtime_ns == mtime
            with pytest.raises(ReviewError, match="not a parcel"):
                render_chip(project, "../../etc/passwd", cache_dir=tmp_path / "chips")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            with rasterio.open(chip) as src:
                rgb = src.read()
        yellow = (rgb[0] == 255) & (rgb[1] == 230) & (rgb[2] == 0)
        assert yellow.sum() > 20 and rgb.std() > 10
        assert [p.name for p in (tmp_path / "chips").iterdir()] == [chip.name]


class TestApi:
    def test_queue_and_filters(self, client):
        c, _, _ = client
        data = c.get("/api/queue", params={"limit": 5}).json()
        assert data["n_items"] == 286 and len(data["items"]) == 5
        assert data["items"][0]["hotspot_id"] == "H1"
        h1 = c.get("/api/queue", params={"hotspot": "H1", "limit": 100}).json()
        assert h1["n_items"] == 12
        north = c.get("/api/queue", params={"district": "Riverside"}).json()
        assert {r["district"] for r in north["items"]} == {"Riverside"}
        pair = h1["items"][0]["top_pair"]
        if pair:
            reverse = " ↔ ".join(reversed(pair.split(" ↔ ")))
            assert c.get("/api/queue", params={"pair": reverse}).json()["n_items"] >= 1

    def test_item_detail(self, client):
        c, _, _ = client
        d = c.get("/api/items/P0153").json()
        assert d["version"] == 0 and d["status"] == "open"
        assert len(d["votes"]) == 5
        assert all(v["reliability"]["ds_accuracy"] > 0 for v in d["votes"])
        assert d["notices"][0]["text"] == f"Hearing {SCRIPT}"
        assert {c["id"] for c in d["classes_in_play"]} >= {d["consensus"]["label"]}
        assert [lab["key"] for lab in d["taxonomy"]["labels"]][:2] == ["1", "2"]
        assert c.get("/api/items/NOPE").status_code == 404

    def test_decide_conflict_and_refusals(self, client):
        c, path, tokens = client
        body = {"item": "P0153", "label": "residential", "rationale": "flats", "version": 0}
        assert c.post("/api/decisions", json=body).status_code == 401
        wrong = c.post("/api/decisions", json=body, headers=_auth("not-a-token"))
        assert wrong.status_code == 401 and "not valid" in wrong.json()["error"]
        ok = c.post("/api/decisions", json=body, headers=_auth(tokens["alice"]))
        assert ok.status_code == 201 and ok.json()["reviewer"] == "alice"
        again = c.post("/api/decisions", json=body, headers=_auth(tokens["root"]))
        assert again.status_code == 409 and "Reload" in again.json()["error"]
        bad = dict(body, label="shops", version=1)
        assert c.post("/api/decisions", json=bad, headers=_auth(tokens["alice"])).status_code == 422
        gone = dict(body, item="NOPE")
        assert (
            c.post("/api/decisions", json=gone, headers=_auth(tokens["alice"])).status_code == 404
        )
        with Project.open(path) as project:
            reviews = project.reviews()
        assert reviews["reviewer"].tolist() == ["alice"]
        assert c.get("/api/queue", params={"hotspot": "H1"}).json()["n_items"] == 11

    def test_proposal_and_admin_apply(self, client):
        c, _, tokens = client
        body = {
            "item": "P0153",
            "label": "residential",
            "rationale": "shops under flats",
            "version": 0,
            "proposal": {
                "kind": "split",
                "classes": ["residential", "commercial"],
                "new_class": "mixed_use",
                "definition": "Homes over shops.",
            },
        }
        stored = c.post("/api/decisions", json=body, headers=_auth(tokens["alice"])).json()
        assert len(stored["proposal_ids"]) == 1
        page = c.get("/taxonomy").text
        assert "split residential, commercial: add mixed_use" in page
        assert (
            c.post("/api/proposals/apply", json={}, headers=_auth(tokens["alice"])).status_code
            == 401
        )
        applied = c.post("/api/proposals/apply", json={}, headers=_auth(tokens["root"]))
        assert applied.status_code == 200 and applied.json()["to_version"] == 2
        first = c.get("/api/queue", params={"limit": 1}).json()["items"][0]
        assert first["status"] == "relabel"
        assert "Mixed use" in c.get("/guidelines").text

    def test_pages_escape_user_text(self, client):
        c, _, _ = client
        page = c.get("/items/P0153")
        assert page.status_code == 200
        assert SCRIPT not in page.text
        assert "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;" in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert c.get("/queue").status_code == 200
        assert c.get("/map").status_code == 200
        assert c.get("/items/P0153/chip.png").headers["content-type"] == "image/png"
        assert c.get("/items/NOPE/chip.png").status_code == 404
        assert c.get(f"/items/{SCRIPT}").text.count("<script>alert") == 0

    def test_no_request_path_reaches_the_file_system(self, client):
        c, _, _ = client
        assert c.get("/static/app.js").status_code == 200
        for path in ("/static/..%2F..%2Fapp.py", "/static/%2e%2e/app.py", "/static/app.py"):
            assert c.get(path).status_code == 404
        assert c.get("/items/..%2F..%2Fcity.gpkg/chip.png").status_code == 404


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _server(app):
    import uvicorn

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(600):  # bounded wait for the server to listen
        if server.started:
            break
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


class TestConcurrency:
    @pytest.mark.parametrize(
        "n_items", [40, pytest.param(200, marks=pytest.mark.slow, id="200-slow")]
    )
    def test_eight_reviewers_decide_concurrently(self, tmp_path, n_items):
        path = review_project(tmp_path)
        with Project.open(path) as project:
            tokens = [add_reviewer(project, f"r{k}") for k in range(8)]
        app = create_app(path, chip_dir=tmp_path / "chips", hotspots=planted_hotspots())
        with _server(app) as base:
            with httpx.Client(base_url=base, timeout=120) as http:
                queue = http.get("/api/queue", params={"limit": n_items}).json()["items"]
            items = [(row["item"], row["version"]) for row in queue]
            assert len(items) == n_items
            plans: list[list[tuple[str, int]]] = [[] for _ in tokens]
            for k, entry in enumerate(items):  # every item goes to two reviewers
                plans[k % 8].append(entry)
                plans[(k + 3) % 8].append(entry)
            results: list[tuple[str, int, str | None]] = []
            lock = threading.Lock()

            def work(k: int) -> None:
                plan = plans[k][:]
                random.Random(k).shuffle(plan)
                with httpx.Client(base_url=base, timeout=120) as http:
                    for item, version in plan:
                        r = http.post(
                            "/api/decisions",
                            json={
                                "item": item,
                                "label": "commercial",
                                "rationale": f"decided by r{k}",
                                "version": version,
                            },
                            headers=_auth(tokens[k]),
                        )
                        review_id = r.json().get("review_id") if r.status_code == 201 else None
                        with lock:
                            results.append((item, r.status_code, review_id))

            threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        assert len(results) == 2 * n_items
        assert Counter(status for _, status, _ in results).keys() <= {201, 409}
        stored = [(item, rid) for item, status, rid in results if status == 201]
        assert sorted(item for item, _ in stored) == sorted(item for item, _ in items)
        with Project.open(path) as project:
            reviews = project.reviews()
            states = review_states(project).set_index("item")
            current = project.current_consensus().set_index("item")
        assert len(reviews) == n_items  # none lost, none duplicated
        assert set(reviews["review_id"]) == {rid for _, rid in stored}
        decided = [item for item, _ in items]
        assert (states.loc[decided, "version"] == 1).all()
        assert set(current.loc[decided, "review_id"]) == set(reviews["review_id"])


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian chromium is not installed")
class TestBrowser:
    def test_decide_with_a_shortcut(self, tmp_path):
        playwright = pytest.importorskip("playwright.sync_api")
        path, tokens = _setup(tmp_path)
        app = create_app(path, chip_dir=tmp_path / "chips", hotspots=planted_hotspots())
        shot = tmp_path / "item_page.png"
        with _server(app) as base, playwright.sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=shutil.which("chromium"),
                args=[
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                ],
            )
            try:
                page = browser.new_page()
                page.goto(f"{base}/queue")
                page.fill("#token", tokens["alice"])
                page.click("#token-form button")
                first = page.locator("a.item-link").first
                item = first.inner_text()
                first.click()
                page.wait_for_selector("#decision")
                page.fill("#rationale", "Shops with flats above, decided in the browser.")
                page.keyboard.press("Escape")  # leave the text box so keys choose labels
                page.keyboard.press("2")
                assert page.locator("input[name=label]:checked").get_attribute("value") == (
                    "commercial"
                )
                page.keyboard.press("Control+Enter")
                page.wait_for_selector("#decision-status.ok")
                # Polled from here: wait_for_function's in-page polling evaluates a string,
                # which the page's Content-Security-Policy refuses once the chip is slow.
                for _ in range(200):
                    if page.evaluate("document.getElementById('chip').naturalWidth") > 0:
                        break
                    page.wait_for_timeout(100)
                else:
                    pytest.fail("the chip image never loaded")
                page.screenshot(path=str(shot), full_page=True)
            finally:
                browser.close()
        with Project.open(path) as project:
            reviews = project.reviews()
        assert reviews[["item", "reviewer", "label"]].values.tolist() == [
            [item, "alice", "commercial"]
        ]
        assert shot.stat().st_size > 20_000  # the screenshot stays in pytest's tmp folder
