"""Tests for geolabel.review.maps: layers, escaping, no network, and the page in Chromium."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from geolabel.cli.main import app
from geolabel.review.hotspots import HotspotResult
from geolabel.review.maps import LAYER_NAMES, MapResult, build_map, project_map

EVIL = "<script>window.__pwned = 1</script>"
_REMOTE_ASSET = re.compile(
    r"""<(?:script|link)\b[^>]*(?:src|href)\s*=\s*["']?(?:https?:)?//[^"'>\s]*""", re.I
)


def _truth(sample: Path) -> pd.DataFrame:
    return pd.read_csv(sample / "truth" / "parcels.csv").rename(
        columns={"parcel_id": "item", "land_use": "label"}
    )


@pytest.fixture(scope="module")
def small_sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated 512-px sample city (43 parcels, 40 notices)."""
    from geolabel.synth.sample import write_sample

    out = tmp_path_factory.mktemp("map_sample") / "city"
    write_sample(out, size_px=512, n_notices=40)
    return out


@pytest.fixture(scope="module")
def voted(small_sample: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project of the small sample with 5 simulated crowd votes per parcel and a consensus.

    No predictions, tiles or notice links: those layers are skipped.
    """
    from geolabel.crowd.consensus import aggregate_project
    from geolabel.crowd.simulate import CrowdSimulator, profiles_from_json
    from geolabel.project import init_sample_project
    from geolabel.store import Project

    path = tmp_path_factory.mktemp("map_project") / "voted.gpkg"
    init_sample_project(small_sample, path)
    truth = _truth(small_sample)
    annotators = json.loads((small_sample / "truth" / "annotators.json").read_text())
    profiles = profiles_from_json(annotators)
    votes = CrowdSimulator(truth, profiles, list(profiles[0].classes), seed=0).assign_and_label(
        truth["item"], k=5
    )
    with Project.open(path) as project:
        classes = list(project.current_taxonomy().parcel_class_ids)
        project.add_annotations(votes, source="simulator", allowed_labels=classes)
        aggregate_project(project, method="ds")
    return path


@pytest.fixture(scope="module")
def full(voted: Path, small_sample: Path) -> Path:
    """The voted project plus pre-labels, a tile grid, notice links and a hostile notice."""
    from geolabel.raster.index import tile_project
    from geolabel.store import Project

    path = voted.with_name("full.gpkg")
    shutil.copy(voted, path)
    truth = _truth(small_sample)
    with Project.open(path) as project:
        classes = list(project.current_taxonomy().parcel_class_ids)
        # Pre-labels as a model would store them: the true class where the taxonomy has it.
        rng = np.random.default_rng(0)
        rows = []
        for item, label in zip(truth["item"], truth["label"], strict=True):
            label = label if label in classes else classes[0]
            top = float(rng.uniform(0.5, 0.95))
            other = next(c for c in classes if c != label)
            rows.append(
                {
                    "item": item,
                    "label": label,
                    "confidence": top,
                    "probas": {label: top, other: 1 - top},
                }
            )
        project.add_predictions(pd.DataFrame(rows), model_version="test-model-1")
        tile_project(project, size=256, overlap=0)
        # Notice links from the sample's gold references (the NER pipeline has its own tests).
        gold = [json.loads(line) for line in (small_sample / "truth" / "notices.jsonl").open()]
        links = []
        for notice in gold:
            for parcel in notice["parcel_ids"]:
                entity = notice["entities"][0]
                links.append(
                    {
                        "notice_id": notice["notice_id"],
                        "item": parcel,
                        "method": "gold",
                        "confidence": 1.0,
                        "start": entity["start"],
                        "end": entity["end"],
                        "label": entity["label"],
                        "text": entity["text"],
                    }
                )
        first = truth["item"].iloc[0]
        project.add_notices(
            pd.DataFrame(
                {"notice_id": ["N-EVIL"], "title": [EVIL], "text": [f"Hearing {EVIL} at 5 pm."]}
            )
        )
        links.append(
            {
                "notice_id": "N-EVIL",
                "item": first,
                "method": "gold",
                "confidence": 1.0,
                "start": 8,
                "end": 8 + len(EVIL),
                "label": "ORG",
                "text": EVIL,
            }
        )
        project.add_notice_links(pd.DataFrame(links), model_version="gold")
    return path


def _one_hotspot(path: Path) -> HotspotResult:
    """A hotspot over the ten parcels nearest the south-west corner (input for rendering).

    Built directly rather than by Gi* (tested in test_review_hotspots), so the map tests do not
    pay numba's one-off compilation of esda's kernels.
    """
    import geopandas as gpd
    import shapely

    from geolabel.review.hotspots import project_parcels
    from geolabel.store import Project

    with Project.open(path) as project:
        parcels = project_parcels(project)
    centroids = parcels.geometry.centroid
    corner = (centroids.x - centroids.x.min()) + (centroids.y - centroids.y.min())
    hot = corner.rank(method="first").to_numpy() <= 10
    items = pd.DataFrame(
        {
            "item": parcels["item"],
            "disagreement": np.where(hot, 0.9, 0.1),
            "gi_z": np.where(hot, 3.0, -0.5),
            "p_value": np.where(hot, 0.001, 0.6),
            "q_value": np.where(hot, 0.02, 0.8),
            "significant": hot,
            "hotspot_id": np.where(hot, "H1", None),
        }
    )
    polygons = gpd.GeoDataFrame(
        {
            "hotspot_id": ["H1"],
            "n_items": [int(hot.sum())],
            "area_m2": [float(parcels.geometry[hot].area.sum())],
            "mean_disagreement": [0.9],
            "top_pair": [f"residential ↔ {EVIL}"],
            "districts": ["Northgate"],
            "items": [", ".join(sorted(parcels.loc[hot, "item"]))],
        },
        geometry=[shapely.union_all(parcels.geometry[hot].buffer(0.5))],
        crs=parcels.crs,
    )
    return HotspotResult(
        items=items, polygons=polygons, weights="knn (k=6)", alpha=0.2, permutations=999
    )


@pytest.fixture(scope="module")
def full_map(full: Path, tmp_path_factory: pytest.TempPathFactory) -> MapResult:
    from geolabel.store import Project

    hotspots = _one_hotspot(full)
    out = tmp_path_factory.mktemp("maps") / "full.html"
    with Project.open(full) as project:
        return project_map(project, out, hotspots=hotspots, max_image_px=256)


class TestProjectMap:
    def test_every_layer_with_a_full_project(self, full_map: MapResult):
        assert full_map.layers == LAYER_NAMES
        assert full_map.skipped == ()
        page = Path(full_map.path).read_text(encoding="utf-8")
        for name in LAYER_NAMES:
            assert json.dumps(name) in page or name in page
        assert "data:image/png;base64," in page  # the scene is embedded

    def test_missing_layers_are_skipped_with_a_note(self, voted: Path, tmp_path: Path):
        from geolabel.store import Project

        with Project.open(voted) as project:
            result = project_map(
                project, tmp_path / "m.html", max_image_px=128, compute_hotspots=False
            )
        assert "Pre-labels" not in result.layers
        assert "Hotspots: not computed (compute_hotspots=False)" in result.skipped
        assert any(s.startswith("Pre-labels: no predictions") for s in result.skipped)
        assert any(s.startswith("Tile grid:") for s in result.skipped)
        assert any(s.startswith("Notices:") for s in result.skipped)
        assert {"Scene (RGB)", "Consensus", "Disagreement", "POIs"} <= set(result.layers)
        named = {s.split(":")[0] for s in result.skipped}
        assert set(result.layers) | named == set(LAYER_NAMES)  # each layer is drawn or explained

    def test_user_strings_are_escaped(self, full_map: MapResult):
        page = Path(full_map.path).read_text(encoding="utf-8")
        assert "N-EVIL" in page
        assert "__pwned" in page  # the notice is on the map ...
        assert EVIL not in page  # ... but never as markup: not raw, and not merely JSON-escaped
        assert "\\u003cscript\\u003ewindow.__pwned" not in page
        html_escaped = "&lt;script&gt;window.__pwned"
        assert html_escaped in page or html_escaped.replace("&", "\\u0026") in page

    def test_no_remote_script_or_stylesheet(self, full_map: MapResult):
        page = Path(full_map.path).read_text(encoding="utf-8")
        assert _REMOTE_ASSET.findall(page) == []
        for tag in re.findall(r"<(?:script|link)\b[^>]*>", page, re.I):
            assert not re.search(r"(?:src|href)\s*=\s*[\"']?https?://", tag, re.I), tag
        assert "<script>" in page and "L.map(" in page  # Leaflet is inlined

    @pytest.mark.slow
    def test_build_map_and_cli(self, voted: Path, tmp_path: Path):
        """Slow: computing hotspots compiles esda's numba kernels (~45 s CPU) once per process."""
        out = build_map(voted, tmp_path / "built.html", permutations=199)
        assert out == tmp_path / "built.html" and out.stat().st_size > 10_000
        runner = CliRunner()
        args = ["map", str(voted), "-o", str(tmp_path / "cli.html"), "--json"]
        result = runner.invoke(app, [*args, "--max-image-px", "128", "--permutations", "199"])
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout.strip().splitlines()[-1])
        assert "Consensus" in data["layers"]

    def test_cli_and_build_map_refuse_a_missing_project(self, tmp_path: Path):
        from geolabel.errors import GeolabelError

        missing = CliRunner().invoke(app, ["map", str(tmp_path / "nope.gpkg")])
        assert missing.exit_code == 1 and "Traceback" not in missing.output
        assert "nope.gpkg" in missing.output
        with pytest.raises(GeolabelError, match=r"nope\.gpkg"):
            build_map(tmp_path / "nope.gpkg", tmp_path / "x.html")


class TestMapInBrowser:
    def test_renders_offline_in_chromium(self, full_map: MapResult, tmp_path: Path):
        chromium = shutil.which("chromium")
        if chromium is None:
            pytest.skip("Debian chromium is not installed (apt-get install chromium)")
        sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

        page_url = Path(full_map.path).resolve().as_uri()
        blocked: list[str] = []

        def only_the_page(route: Any, request: Any) -> None:
            if request.url.startswith("file://") or request.url.startswith("data:"):
                route.continue_()
            else:
                blocked.append(request.url)
                route.abort()

        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=chromium,
                args=[
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                ],
            )
            try:
                page = browser.new_page(viewport={"width": 1000, "height": 700})
                page.route("**/*", only_the_page)
                page.goto(page_url, wait_until="load")
                assert page.evaluate("typeof window.L") == "object"
                assert page.evaluate("typeof window.__pwned") == "undefined"
                control = page.locator(".leaflet-control-layers-overlays").inner_text()
                for name in full_map.layers:
                    assert name in control, (name, control)
                # Switch the notices on and open the hostile notice's popup: text, not markup.
                overlays = page.locator(".leaflet-control-layers-overlays label")
                overlays.filter(has_text="Notices").locator("input").check()
                popup = page.evaluate(
                    """() => {
                        const map = Object.values(window).find((v) => v instanceof L.Map);
                        let found = null;
                        map.eachLayer((layer) => {
                            const props = layer.feature && layer.feature.properties;
                            if (!found && props && String(props.popup).includes("N-EVIL")) {
                                layer.fire("click", { latlng: layer.getLatLng() }, true);
                                const box = document.querySelector(".leaflet-popup-content");
                                found = {
                                    text: box.textContent,
                                    scripts: box.querySelectorAll("script").length,
                                };
                            }
                        });
                        return found;
                    }"""
                )
                assert popup is not None and EVIL in popup["text"] and popup["scripts"] == 0
                assert page.evaluate("typeof window.__pwned") == "undefined"
                page.wait_for_timeout(300)
                shot = tmp_path / "map.png"
                page.screenshot(path=str(shot))
            finally:
                browser.close()
        assert blocked == []  # the page asked for nothing from the network

        from PIL import Image

        pixels = np.asarray(Image.open(shot).convert("RGB"), dtype=np.float64)
        assert pixels.std(axis=(0, 1)).mean() > 10.0  # not a blank page
        assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 200
