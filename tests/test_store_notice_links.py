"""Tests for Project.add_notice_links / notice_links (the table geolabel.text stores links in)."""

from __future__ import annotations

import sqlite3

import geopandas as gpd
import pandas as pd
import pytest

from geolabel.errors import ColumnError, StoreError
from geolabel.store import Project


@pytest.fixture
def project(tmp_path, sample_dir):
    parcels = gpd.read_file(sample_dir / "city.gpkg", layer="parcels")
    proj = Project.create(tmp_path / "p.gpkg", crs="EPSG:32610")
    proj.write_layer(parcels, "parcels")
    proj.add_items(
        pd.DataFrame({"item": parcels["parcel_id"], "ref": parcels["parcel_id"]}), kind="parcel"
    )
    return proj


def _links(**change):
    row = {
        "notice_id": "N1",
        "item": "P0221",
        "method": "address_exact",
        "confidence": 1.0,
        "start": 10,
        "end": 22,
        "label": "ADDRESS",
        "text": "504 Birch St",
        "kind": "building_permit",
        "date_start": "2025-01-15",
        "date_end": "2025-01-15",
    }
    row.update(change)
    return pd.DataFrame([row])


class TestNoticeLinks:
    def test_empty_before_first_use(self, project):
        frame = project.notice_links()
        assert frame.empty and "model_version" in frame.columns

    def test_store_read_and_idempotent(self, project):
        assert project.add_notice_links(_links(), model_version="m-1") == 1
        assert project.add_notice_links(_links(), model_version="m-1") == 0
        assert project.add_notice_links(_links(), model_version="m-2") == 1
        frame = project.notice_links("m-1")
        assert frame[["notice_id", "item", "method", "kind"]].values.tolist() == [
            ["N1", "P0221", "address_exact", "building_permit"]
        ]
        assert len(project.notice_links()) == 2
        assert "notice_links" in {layer.name for layer in project.layers()}

    def test_append_only(self, project):
        project.add_notice_links(_links(), model_version="m-1")
        with (
            sqlite3.connect(project.path) as con,
            pytest.raises(sqlite3.DatabaseError, match="append-only"),
        ):
            con.execute("DELETE FROM notice_links")

    def test_unknown_parcel(self, project):
        with pytest.raises(StoreError):
            project.add_notice_links(_links(item="NOPE"), model_version="m-1")

    @pytest.mark.parametrize(
        ("change", "message"),
        [({"confidence": 2.0}, "N1"), ({"text": None}, "blank value")],
    )
    def test_bad_rows(self, project, change, message):
        with pytest.raises(ColumnError, match=message):
            project.add_notice_links(_links(**change), model_version="m-1")

    def test_missing_column(self, project):
        with pytest.raises(ColumnError, match="method"):
            project.add_notice_links(_links().drop(columns=["method"]), model_version="m-1")
