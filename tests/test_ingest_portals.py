"""Tests of geolabel.ingest.portals against a loopback server with recorded responses."""

from __future__ import annotations

import json

import geopandas as gpd
import pytest

from geolabel.errors import FetchError
from geolabel.ingest.config import SourceConfig
from geolabel.ingest.portals import HttpClient, pull_portal
from geolabel.ingest.pull import collect_source
from tests.conftest import SAMPLE
from tests.ingest_helpers import Portal, sample_notices

LAYER = "/arcgis/rest/services/Parcels/FeatureServer/0"
FAST = {"backoff": 0.0, "rate_limit": 1000.0, "timeout": 2.0}


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.waits: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


class TestHttpClient:
    def test_rate_limit_spaces_requests(self) -> None:
        fake = FakeTime()
        portal = Portal()
        portal.json["/a"] = {"ok": 1}
        with portal:
            client = HttpClient(rate_limit=4.0, sleep=fake.sleep, clock=fake.clock)
            for _ in range(3):
                client.get(portal.url + "/a", what="a")
        assert fake.waits == [0.25, 0.25]  # the fake clock stands still while serving

    def test_backoff_and_retry_after(self) -> None:
        fake = FakeTime()
        portal = Portal()
        portal.json["/a"] = [1]
        portal.fault("/a", 0, "503", "429", "500")
        with portal:
            client = HttpClient(
                retries=3, backoff=0.5, rate_limit=1e6, sleep=fake.sleep, clock=fake.clock
            )
            assert client.get(portal.url + "/a", what="a", parse=json.loads) == [1]
        assert fake.waits == [0.5, 7.0, 2.0]  # 0.5 * 2**0, Retry-After: 7, 0.5 * 2**2
        assert [r.split(": ")[1] for r in client.retry_log] == [
            "HTTP 503 (retry 1 of 3)",
            "HTTP 429 (retry 2 of 3)",
            "HTTP 500 (retry 3 of 3)",
        ]

    def test_connection_refused(self) -> None:
        portal = Portal()
        url = portal.url
        portal.server.server_close()  # nothing listens there any more
        client = HttpClient(retries=1, backoff=0.0, timeout=1.0)
        with pytest.raises(FetchError, match=r"connection failed.*still after 1 retry"):
            client.get(url + "/a", what="a")


class TestArcGIS:
    def test_paging_with_max_record_count_and_reprojection(self) -> None:
        parcels = gpd.read_file(SAMPLE / "city.gpkg", layer="parcels").iloc[:25].to_crs(4326)
        parcels["OBJECTID"] = range(1, 26)
        features = json.loads(
            parcels[["OBJECTID", "parcel_id", "apn", "address", "geometry"]].to_json()
        )["features"]
        portal = Portal()
        portal.arcgis[LAYER] = ({"maxRecordCount": 10, "objectIdField": "OBJECTID"}, features)
        portal.fault(LAYER + "/query", 10, "503")
        with portal:
            config = SourceConfig(
                name="county",
                kind="arcgis",
                location=portal.url + LAYER,
                record="parcel",
                page_size=500,
                retries=2,
                **FAST,
            )
            got = collect_source(config, project_crs="EPSG:32610")
        assert got.summary.status == "ok" and len(got.records) == 25
        assert got.summary.requests == 1 + 3 + 1
        queries = [q for p, q, _ in portal.requests if p.endswith("/query")]
        assert {q["resultRecordCount"] for q in queries} == {"10"}
        assert queries[0]["f"] == "geojson" and queries[0]["orderByFields"] == "OBJECTID"
        original = gpd.read_file(SAMPLE / "city.gpkg", layer="parcels").iloc[0].geometry
        assert got.records[0].geometry.symmetric_difference(original).area < 1e-3

    def test_incremental_where(self) -> None:
        portal = Portal()
        portal.arcgis[LAYER] = (
            {"maxRecordCount": 10},
            [
                {
                    "type": "Feature",
                    "properties": {"OBJECTID": i, "text": "x" * 50},
                    "geometry": None,
                }
                for i in range(1, 6)
            ],
        )
        with portal:
            config = SourceConfig(
                name="a",
                kind="arcgis",
                location=portal.url + LAYER,
                incremental="OBJECTID",
                incremental_type="id",
                **FAST,
            )
            got = collect_source(config, watermark="3")
        assert [r.notice_id for r in got.records] == ["4", "5"]
        assert got.summary.watermark_after == "5"
        assert any(q.get("where") == "OBJECTID > 3" for _, q, _ in portal.requests)


class TestCKAN:
    def portal(self) -> Portal:
        portal = Portal()
        rows = sample_notices()[:3]
        csv_body = "id,text,published\n" + "".join(
            f'{n["notice_id"]},"{n["text"]}",{n["published"]}\n' for n in rows
        )
        portal.files["/files/notices.csv"] = ("text/csv", csv_body.encode())
        portal.json["/api/3/action/package_show"] = {
            "success": True,
            "result": {
                "resources": [
                    {"name": "notices.csv", "format": "CSV", "url": "PORTAL/files/notices.csv"},
                    {"name": "map", "format": "PDF", "url": "PORTAL/files/map.pdf"},
                ]
            },
        }
        return portal

    def test_package_show_resources(self) -> None:
        portal = self.portal()
        with portal:
            resources = portal.json["/api/3/action/package_show"]["result"]["resources"]
            for r in resources:
                r["url"] = r["url"].replace("PORTAL", portal.url)
            config = SourceConfig(
                name="ckan", kind="ckan", location=portal.url, dataset="notices", **FAST
            )
            got = collect_source(config)
        assert [r.notice_id for r in got.records] == ["N0001", "N0002", "N0003"]
        assert got.records[0].origin == "ckan notices.csv:2"
        assert portal.requests[0][1] == {"id": "notices"}

    def test_no_matching_resource_and_refusal(self) -> None:
        portal = self.portal()
        with portal:
            config = SourceConfig(
                name="ckan",
                kind="ckan",
                location=portal.url,
                dataset="notices",
                resource_formats=("xlsx",),
                **FAST,
            )
            with pytest.raises(FetchError, match=r"no resource in xlsx \(it has: CSV, PDF\)"):
                pull_portal(config)
            portal.json["/api/3/action/package_show"] = {"success": False, "error": "Not found"}
            with pytest.raises(FetchError, match="CKAN refused package_show"):
                pull_portal(config)

    def test_resource_urls_other_than_http_are_refused(self) -> None:
        portal = self.portal()
        portal.json["/api/3/action/package_show"]["result"]["resources"][0]["url"] = (
            "file:///etc/passwd"
        )
        with portal:
            config = SourceConfig(
                name="ckan", kind="ckan", location=portal.url, dataset="notices", **FAST
            )
            with pytest.raises(FetchError, match=r"not an http\(s\) URL"):
                pull_portal(config)
