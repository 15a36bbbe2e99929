"""Acceptance and pull-level tests of geolabel.ingest: three shapes, one set of records."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from geolabel.errors import StoreError
from geolabel.ingest import SourceConfig, SourceList, Thresholds, render_html, render_markdown
from geolabel.ingest.portals import HttpClient
from geolabel.ingest.pull import collect_source, run_pull
from geolabel.ingest.tables import provenance, pulls
from geolabel.project import init_project
from geolabel.store import Project
from tests.conftest import SAMPLE
from tests.ingest_helpers import (
    CSV_FIELDS,
    SOCRATA_FIELDS,
    Portal,
    sample_notices,
    socrata_rows,
    write_csv,
    write_pages,
)

TZ = "America/Los_Angeles"
NOW = datetime(2026, 2, 1, tzinfo=UTC)
RESOURCE = "/resource/abcd-1234.json"


def make_project(path: Path, *, notices: bool = False) -> Path:
    init_project(
        path,
        scenes=[SAMPLE / "scene.tif"],
        parcels=SAMPLE / "city.gpkg",
        parcels_layer="parcels",
        regions=SAMPLE / "city.gpkg",
        regions_layer="districts",
        notices=SAMPLE / "notices.jsonl" if notices else None,
        taxonomy=SAMPLE / "taxonomy.yaml",
    )
    return path


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("shapes")
    notices = sample_notices()
    return {
        "csv": write_csv(notices, root / "notices.csv"),
        "pages": write_pages(notices, root / "pages"),
    }


@pytest.fixture(scope="module")
def base_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_project(tmp_path_factory.mktemp("proj") / "base.gpkg")


@pytest.fixture
def project(base_project: Path, tmp_path: Path) -> Path:
    target = tmp_path / "city.gpkg"
    target.write_bytes(base_project.read_bytes())
    return target


def csv_source(path: Path, **kw: object) -> SourceConfig:
    return SourceConfig(
        name="city-csv", kind="csv", location=str(path), fields=CSV_FIELDS, timezone=TZ, **kw
    )


def pages_source(path: Path) -> SourceConfig:
    return SourceConfig(name="saved-pages", kind="html", location=str(path), timezone=TZ)


def socrata_source(url: str, **kw: object) -> SourceConfig:
    settings: dict[str, object] = {
        "fields": SOCRATA_FIELDS,
        "timezone": TZ,
        "page_size": 50,
        "timeout": 0.4,
        "retries": 2,
        "backoff": 0.01,
        "rate_limit": 1000.0,
        "user_agent": "geolabel-test/1.0",
    }
    settings.update(kw)
    return SourceConfig(name="open-data", kind="socrata", location=url + RESOURCE, **settings)


def faulty_portal() -> Portal:
    portal = Portal(delay=1.0)
    portal.socrata[RESOURCE] = socrata_rows(sample_notices())
    portal.fault(RESOURCE, 50, "503")
    portal.fault(RESOURCE, 100, "timeout")
    portal.fault(RESOURCE, 150, "malformed")
    return portal


class TestThreeShapes:
    """The acceptance: CSV, saved pages and Socrata JSON give the same normalised records."""

    def test_same_records_from_three_shapes(self, shapes: dict[str, Path]) -> None:
        expected = [
            {
                "notice_id": n["notice_id"],
                "text": n["text"],
                "kind": n["kind"],
                "published": n["published"],
                "published_at": None,
                "title": n["title"],
            }
            for n in sample_notices()
        ]
        from_csv = collect_source(csv_source(shapes["csv"]), now=NOW)
        from_pages = collect_source(pages_source(shapes["pages"]), now=NOW)
        with faulty_portal() as portal:
            from_portal = collect_source(socrata_source(portal.url), now=NOW)
        for got in (from_csv, from_pages, from_portal):
            assert got.summary.status == "ok", got.summary.error
            assert got.problems == ()
            assert [r.record() for r in got.records] == expected
        assert from_csv.summary.encodings == {"cp1252": 1}
        assert from_pages.summary.encodings == {"utf-8": 200}
        retries = from_portal.summary.retries
        assert len(retries) == 3
        assert "socrata page 2: HTTP 503" in retries[0]
        assert "socrata page 3: timeout" in retries[1]
        assert "socrata page 4: malformed page" in retries[2]
        assert from_portal.summary.requests == 5 + 3  # 4 full pages + 1 empty, 3 retries
        assert {ua for _, _, ua in portal.requests} == {"geolabel-test/1.0"}

    def test_pull_finds_the_duplicates_and_keeps_provenance(
        self, project: Path, shapes: dict[str, Path]
    ) -> None:
        with faulty_portal() as portal, Project.open(project) as proj:
            sources = SourceList(
                (
                    csv_source(shapes["csv"]),
                    pages_source(shapes["pages"]),
                    socrata_source(portal.url),
                )
            )
            report = run_pull(proj, sources, now=NOW)
            assert report.status == "ok", report.failures
            assert (report.n_in, report.n_out, report.n_duplicates) == (600, 200, 400)
            assert report.n_notices == 200 and report.n_dropped == 0
            stored = proj.notices()
            assert len(stored) == 200
            assert set(stored.columns) >= {"notice_id", "text", "kind", "published", "title"}
            assert (stored["source"] == "city-csv").all()
            assert len(proj.items(kind="notice")) == 200
            prov = provenance(proj, "N0042")
            assert sorted(prov["source"]) == ["city-csv", "open-data", "saved-pages"]
            assert sorted(prov["status"]) == ["added", "duplicate", "duplicate"]
            assert set(prov["canonical_id"].dropna()) == {"N0042"}
            assert set(prov["origin"]) == {
                "notices.csv:43",
                "pages/N0042.html",
                "socrata page 1 #42",
            }
            markdown = render_markdown(report)
            assert "HTTP 503" in markdown and "timeout after 0.4 s" in markdown
            assert "malformed page" in markdown
            assert "| N0042 | open-data | socrata page 1 #42 | exact | N0042 |" in markdown

    def test_ingested_notices_feed_the_notice_reader(
        self, project: Path, shapes: dict[str, Path], tmp_path: Path
    ) -> None:
        from geolabel.text.data import read_notice_records

        with Project.open(project) as proj:
            run_pull(proj, SourceList((csv_source(shapes["csv"]),)), now=NOW)
            frame = proj.notices()
        out = tmp_path / "stored.jsonl"
        frame.to_json(out, orient="records", lines=True, force_ascii=False)
        records = read_notice_records(out)
        assert [r.notice_id for r in records][:3] == ["N0001", "N0002", "N0003"]
        assert records[0].text == sample_notices()[0]["text"]


class TestAcrossPulls:
    def test_second_pull_and_init_notices_are_duplicates(
        self, tmp_path: Path, shapes: dict[str, Path]
    ) -> None:
        project = make_project(tmp_path / "with_notices.gpkg", notices=True)
        with Project.open(project) as proj:
            report = run_pull(proj, SourceList((pages_source(shapes["pages"]),)), now=NOW)
            assert report.status == "ok"
            assert (report.n_out, report.n_duplicates) == (0, 200)
            assert all(d.stored_before for d in report.duplicates)

    def test_near_duplicate_republished_with_a_new_date(
        self, project: Path, tmp_path: Path
    ) -> None:
        notices = sample_notices()[:5]
        first = tmp_path / "first.jsonl"
        first.write_text("\n".join(json.dumps(n) for n in notices))
        again = dict(notices[0])
        again["notice_id"] = "R0001"
        again["published"] = "2025-01-20"
        again["text"] = again["text"].replace("January 15, 2025", "January 29, 2025")
        second = tmp_path / "second.jsonl"
        second.write_text(json.dumps(again))
        with Project.open(project) as proj:
            run_pull(proj, [SourceConfig(name="a", kind="jsonl", location=str(first))], now=NOW)
            report = run_pull(
                proj, [SourceConfig(name="b", kind="jsonl", location=str(second))], now=NOW
            )
            assert report.n_near_duplicates == 1 and report.n_out == 0
            copy = report.duplicates[0]
            assert (copy.record_id, copy.canonical_id, copy.match) == ("R0001", "N0001", "near")
            assert 0.75 <= copy.similarity < 1
            assert "R0001" not in set(proj.notices()["notice_id"])
            prov = provenance(proj, "N0001")
            assert list(prov["status"]) == ["added", "near_duplicate"]

    def test_incremental_socrata_pull_asks_only_for_newer_rows(self, project: Path) -> None:
        notices = sample_notices()
        portal = Portal()
        portal.socrata[RESOURCE] = socrata_rows(notices[:120])
        with portal, Project.open(project) as proj:
            config = socrata_source(portal.url, incremental="publish_date")
            first = run_pull(proj, [config], now=NOW)
            assert first.n_out == 120
            newest = max(r["publish_date"] for r in portal.socrata[RESOURCE])
            assert first.sources[0].watermark_after == newest
            portal.socrata[RESOURCE] = socrata_rows(notices)  # the city published 80 more
            portal.requests.clear()
            second = run_pull(proj, [config], now=NOW)
            assert (
                second.n_in
                == second.n_out
                == len([n for n in notices if f"{n['published']}T00:00:00.000" > newest])
            )
            wheres = {q.get("$where") for _, q, _ in portal.requests}
            assert wheres == {f"publish_date > '{newest}'"}
            assert len(proj.notices()) == 120 + second.n_out

    def test_incremental_file_pull_skips_older_records(self, project: Path, tmp_path: Path) -> None:
        notices = sample_notices()
        path = tmp_path / "feed.jsonl"
        path.write_text("\n".join(json.dumps(n) for n in notices[:50]))
        config = SourceConfig(name="jl", kind="jsonl", location=str(path), incremental="published")
        with Project.open(project) as proj:
            assert run_pull(proj, [config], now=NOW).n_out == 50
            path.write_text("\n".join(json.dumps(n) for n in notices[:80]))
            report = run_pull(proj, [config], now=NOW)
        newest = max(n["published"] for n in notices[:50])
        newer = [n for n in notices[50:80] if n["published"] > newest]
        assert report.sources[0].n_older == 80 - len(newer)
        assert report.n_out == len(newer)


class TestFailures:
    def test_portal_failing_after_retries_fails_the_pull_and_stores_nothing(
        self, project: Path
    ) -> None:
        portal = Portal(delay=1.0)
        portal.socrata[RESOURCE] = socrata_rows(sample_notices())
        portal.fault(RESOURCE, 100, "503", "500", "503")
        with portal, Project.open(project) as proj:
            report = run_pull(proj, [socrata_source(portal.url)], now=NOW)
            assert report.status == "failed"
            assert report.sources[0].status == "failed"
            assert "socrata page 3: HTTP 503, still after 2 retries" in report.sources[0].error
            assert len(report.sources[0].retries) == 2
            assert proj.notices().empty
            history = pulls(proj)
            assert list(history["status"]) == ["failed"]
            assert "sources_read" in render_markdown(report)

    def test_persistent_timeout_and_malformed_page(self, project: Path) -> None:
        portal = Portal(delay=0.8)
        portal.socrata[RESOURCE] = socrata_rows(sample_notices())
        portal.socrata["/resource/other.json"] = socrata_rows(sample_notices())
        portal.fault(RESOURCE, 0, "timeout", "timeout")
        portal.fault("/resource/other.json", 50, "malformed", "malformed")
        with portal, Project.open(project) as proj:
            slow = socrata_source(portal.url, timeout=0.3, retries=1)
            broken = SourceConfig(
                name="broken",
                kind="socrata",
                location=portal.url + "/resource/other.json",
                fields=SOCRATA_FIELDS,
                retries=1,
                backoff=0.0,
                rate_limit=1000.0,
                page_size=50,
            )
            report = run_pull(proj, [slow, broken], now=NOW)
        errors = {s.name: s.error for s in report.sources}
        assert "timeout after 0.3 s, still after 1 retry" in errors["open-data"]
        assert "malformed page" in errors["broken"]
        assert report.status == "failed"
        html = render_html(report)
        assert "timeout after 0.3 s" in html and "malformed page" in html

    def test_not_found_is_not_retried(self, project: Path) -> None:
        with Portal() as portal, Project.open(project) as proj:
            client = HttpClient(retries=3, backoff=0.0, rate_limit=1000.0)
            config = socrata_source(portal.url + "/missing")
            report = run_pull(proj, [config], now=NOW, clients={config.name: client})
        assert client.requests == 1 and client.retry_log == []
        assert "HTTP 404" in (report.sources[0].error or "")

    def test_failed_thresholds_store_nothing_and_keep_earlier_pulls(
        self, project: Path, tmp_path: Path
    ) -> None:
        good = tmp_path / "good.jsonl"
        good.write_text("\n".join(json.dumps(n) for n in sample_notices()[:10]))
        bad = tmp_path / "bad.jsonl"
        rows = [dict(n, text="Too short.") for n in sample_notices()[10:14]]
        rows.append(sample_notices()[14])
        bad.write_text("\n".join(json.dumps(r) for r in rows))
        with Project.open(project) as proj:
            assert (
                run_pull(
                    proj, [SourceConfig(name="g", kind="jsonl", location=str(good))], now=NOW
                ).status
                == "ok"
            )
            report = run_pull(
                proj, [SourceConfig(name="b", kind="jsonl", location=str(bad))], now=NOW
            )
            assert report.status == "failed"
            assert report.dropped_by_reason == {"short_text": 4}
            assert any(f.startswith("short_text_fraction") for f in report.failures)
            assert len(proj.notices()) == 10  # the earlier pull is untouched, nothing added
            assert list(pulls(proj)["status"]) == ["ok", "failed"]

    def test_error_half_way_through_writing_rolls_back_the_pull(
        self, project: Path, shapes: dict[str, Path], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        import geolabel.ingest.pull as pull_module

        with Project.open(project) as proj:
            before = proj.summary()

            def explode(*args: object, **kwargs: object) -> int:
                raise StoreError("disk full (simulated)")

            monkeypatch.setattr(pull_module, "insert_parcels", explode)
            with pytest.raises(StoreError, match="disk full"):
                run_pull(proj, [csv_source(shapes["csv"])], now=NOW)
            assert proj.notices().empty
            assert proj.summary() == before
            assert pulls(proj).empty

    def test_drift_against_the_previous_pull(self, project: Path, tmp_path: Path) -> None:
        notices = sample_notices()
        first = tmp_path / "first.jsonl"
        first.write_text("\n".join(json.dumps(n) for n in notices[:100]))
        with Project.open(project) as proj:
            config = SourceConfig(name="feed", kind="jsonl", location=str(first))
            run_pull(proj, [config], now=NOW)
            first.write_text("\n".join(json.dumps({**n, "kind": ""}) for n in notices[100:120]))
            strict = SourceList((config,), Thresholds(max_volume_change=0.5))
            report = run_pull(proj, strict, now=NOW)
        checks = {c.name: c for c in report.checks}
        assert report.volume_change == pytest.approx(-0.8)
        assert report.fill_rate_changes["notice.kind"] == pytest.approx(-1.0)
        assert not checks["volume_change"].passed and not checks["fill_rate_drop"].passed
        assert report.status == "failed"
        assert "Drift against pull-" in render_markdown(report)


class TestParcels:
    def test_parcels_repaired_rejected_outside_and_reprojected(
        self, project: Path, tmp_path: Path
    ) -> None:
        import geopandas as gpd
        from shapely.geometry import Point, Polygon

        city = gpd.read_file(SAMPLE / "city.gpkg", layer="parcels").iloc[:4]
        new = city[["parcel_id", "apn", "address", "geometry"]].copy()
        new["parcel_id"] = ["X1", "X2", "X3", "X4"]
        new["address"] = ["102 Oak St.", "  204 oak street ", "5 N. Elm Rd", None]
        x0, y0 = 551100.0, 4182100.0
        bowtie = Polygon([(x0, y0), (x0 + 20, y0 + 20), (x0 + 20, y0), (x0, y0 + 20)])
        far = Polygon([(0, 0), (10, 0), (10, 10), (0, 10)])
        extra = gpd.GeoDataFrame(
            {
                "parcel_id": ["BOW", "FAR", "PT"],
                "apn": ["900-1", "900-2", "900-3"],
                "address": ["1 Bow St", "2 Far St", "3 Point St"],
            },
            geometry=[bowtie, far, Point(x0, y0).buffer(0)],
            crs=city.crs,
        )
        parcels = pd.concat([new, city.iloc[:1], extra], ignore_index=True)
        parcels = gpd.GeoDataFrame(parcels, geometry="geometry", crs=city.crs).to_crs(4326)
        path = tmp_path / "parcels.geojson"
        parcels.to_file(path, driver="GeoJSON")
        config = SourceConfig(name="county", kind="geojson", location=str(path), record="parcel")
        with Project.open(project) as proj:
            report = run_pull(
                proj,
                SourceList(
                    (config,),
                    Thresholds(
                        max_dropped_fraction=None,
                        max_geometry_rejected_fraction=None,
                        max_outside_fraction=None,
                    ),
                ),
                now=NOW,
            )
            assert report.status == "ok", report.failures
            assert report.dropped_by_reason == {"geometry_rejected": 1, "outside_area": 1}
            assert report.notes_by_reason == {"geometry_repaired": 1}
            assert report.n_duplicates == 1  # P0001 is the project's own parcel
            layer = proj.read_layer("ingest_parcels")
        assert layer.crs.to_epsg() == 32610
        assert sorted(layer["parcel_id"]) == ["BOW", "X1", "X2", "X3", "X4"]
        by_id = layer.set_index("parcel_id")
        assert by_id.loc["X1", "address_normalized"] == "102 oak street"
        assert by_id.loc["X2", "address_normalized"] == "204 oak street"
        assert by_id.loc["X3", "address_normalized"] == "5 north elm road"
        assert by_id.geometry.is_valid.all()
        original = city.set_index("parcel_id").geometry.iloc[0]
        assert by_id.loc["X1", "geometry"].symmetric_difference(original).area < 1e-3
        assert by_id.loc["BOW", "geometry"].area == pytest.approx(200.0)
        md = render_markdown(report)
        for code in ("geometry_repaired", "geometry_rejected", "outside_area"):
            assert code in md


class TestQAReport:
    def test_every_record_problem_is_counted_and_shown(self, project: Path, tmp_path: Path):
        good = sample_notices()[:6]
        lines = [json.dumps(n) for n in good]
        lines += [
            json.dumps({"notice_id": "M1", "headline": "no text field"}),
            "{not json",
            json.dumps({"notice_id": "W1", "text": 12345}),
            json.dumps({"notice_id": "E1", "text": "   "}),
            json.dumps({"notice_id": "S1", "text": "Closed today."}),
            json.dumps(
                {
                    **good[1],
                    "notice_id": "F1",
                    "text": "A future notice " * 5,
                    "published": "2026-03-01",
                }
            ),
            json.dumps(
                {
                    **good[2],
                    "notice_id": "I1",
                    "text": "An impossible notice " * 5,
                    "published": "2025-02-30",
                }
            ),
            json.dumps({**good[3], "notice_id": "D1"}),
            json.dumps({**good[4], "notice_id": "N0001", "text": "Another text " * 10}),
        ]
        path = tmp_path / "mixed.jsonl"
        path.write_text("\n".join(lines))
        loose = Thresholds(
            max_dropped_fraction=None,
            max_schema_fraction=None,
            max_short_fraction=None,
            max_date_fraction=None,
        )
        config = SourceConfig(name="mixed", kind="jsonl", location=str(path), timezone=TZ)
        with Project.open(project) as proj:
            report = run_pull(proj, SourceList((config,), loose), now=NOW)
            assert sorted(proj.notices()["notice_id"]) == [
                "F1",
                "N0001",
                "N0002",
                "N0003",
                "N0004",
                "N0005",
                "N0006",
            ]
            stored = pulls(proj)["report"].iloc[0]
        assert report.status == "ok"
        expected = {
            "empty_text": 1,
            "id_conflict": 1,
            "impossible_date": 1,
            "malformed_json": 1,
            "missing_field": 1,
            "short_text": 1,
            "wrong_type": 1,
        }
        assert report.dropped_by_reason == expected
        assert report.notes_by_reason == {"future_date": 1}
        assert (report.n_in, report.n_out, report.n_dropped, report.n_duplicates) == (15, 7, 7, 1)
        assert report.n_in == report.n_out + report.n_dropped + report.n_duplicates
        checks = {c.name: c for c in report.checks}
        assert checks["schema_fraction"].value == pytest.approx(4 / 15, abs=1e-4)
        assert checks["short_text_fraction"].value == pytest.approx(2 / 15, abs=1e-4)
        assert checks["date_fraction"].value == pytest.approx(2 / 15, abs=1e-4)
        markdown, page = render_markdown(report), render_html(report)
        for code in [*expected, "future_date"]:
            assert code in markdown and code in page
        assert stored["dropped_by_reason"] == expected  # the JSON kept with the pull
        assert report.fill_rates["notice.kind"] == 1.0
