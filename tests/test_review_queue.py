"""Tests for geolabel.review.queue: ranking, routing of relabel items, exports."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
from shapely.geometry import box

from geolabel.errors import ColumnError, InputFileError, ReviewError
from geolabel.review.queue import (
    DECISION_COLUMNS,
    QUEUE_COLUMNS,
    QueueWeights,
    build_queue,
    export_queue,
    project_queue,
)
from geolabel.store import Project
from tests.review_helpers import planted_hotspots, review_project, sample_truth


def _disagreement() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item": ["a", "b", "c", "d"],
            "n_votes": [5, 5, 5, 5],
            "vote_entropy": [0.9, 0.2, 0.5, 0.5],
            "observed_disagreement": [0.6, 0.1, 0.4, 0.4],
            "posterior_entropy": [0.5, 0.1, 0.3, 0.3],
            "consensus_label": ["residential", "park", "commercial", "commercial"],
            "model_label": ["commercial", "park", "commercial", "commercial"],
            "model_crowd_disagreement": [0.8, 0.0, 0.0, 0.0],
            "disagreement": [0.9, 0.1, 0.5, 0.5],
            "top_pair": ["residential ↔ commercial", None, None, None],
        }
    )


def _hotspots() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item": ["a", "b", "c", "d"],
            "gi_z": [0.1, 3.2, 0.0, 0.0],
            "p_value": [0.5, 0.001, 0.9, 0.9],
            "q_value": [0.6, 0.01, 0.9, 0.9],
            "significant": [False, True, False, False],
            "hotspot_id": [None, "H1", None, None],
        }
    )


def _parcels() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"parcel_id": ["a", "b", "c", "d"], "district": ["N", "N", "S", "S"]},
        geometry=[box(0, 0, 10, 10), box(10, 0, 20, 10), box(0, 10, 50, 60), box(50, 0, 51, 1)],
        crs="EPSG:32610",
    )


class TestBuildQueue:
    def test_hotspot_members_rank_first(self):
        q = build_queue(_disagreement(), _hotspots())
        assert q["item"].iloc[0] == "b"
        assert q.loc[0, "in_hotspot"] and q.loc[0, "hotspot_id"] == "H1"
        assert list(q["rank"]) == [1, 2, 3, 4]
        assert list(q.columns) == [*QUEUE_COLUMNS, "geometry"]

    def test_larger_hotspots_lead(self):
        # c and d alone in small hotspots; b in one of nine parcels (eight not in the queue:
        # unvoted parcels the model doubted). Same disagreement for c and b: the size decides.
        hot = pd.DataFrame(
            {
                "item": ["a", "b", "c", "d", *[f"u{k}" for k in range(8)]],
                "significant": [False, True, True, True, *[True] * 8],
                "hotspot_id": [None, "H1", "H2", "H3", *["H1"] * 8],
            }
        )
        frame = _disagreement().assign(disagreement=[0.9, 0.5, 0.5, 0.5])
        frame["model_crowd_disagreement"] = 0.0
        q = build_queue(frame, hot)
        assert q["item"].tolist()[:3] == ["b", "c", "d"]
        assert "u0" not in set(q["item"])
        prio = q.set_index("item")["priority"]
        assert prio["b"] - prio["c"] == pytest.approx(0.4 * (1 - (1 / 9) ** 0.5), abs=1e-6)

    def test_without_hotspots_disagreement_and_conflict_rank(self):
        q = build_queue(_disagreement())
        assert list(q["item"]) == ["a", "c", "d", "b"]
        assert "model says commercial" in q.loc[0, "reason"]

    def test_ties_broken_by_item_and_impact_from_area_and_notices(self):
        links = pd.DataFrame({"notice_id": ["N1", "N2", "N2"], "item": ["d", "d", "d"]})
        q = build_queue(_disagreement(), parcels=_parcels(), notice_links=links)
        row_d = q.set_index("item").loc["d"]
        assert row_d["n_notices"] == 2
        # c and d tie on disagreement; c is the large parcel, d has two notices
        assert q.set_index("item").loc["c", "area_m2"] == 2500.0
        assert row_d["district"] == "S"
        assert q.geometry.notna().all() and q.crs == "EPSG:32610"

    def test_relabel_items_come_first_and_decided_drop_out(self):
        q = build_queue(
            _disagreement(),
            _hotspots(),
            relabel=["d", "z"],
            decided=["b"],
            versions={"d": 3},
        )
        assert list(q["item"][:2]) == ["d", "z"]
        assert set(q.loc[q["status"] == "relabel", "item"]) == {"d", "z"}
        assert "b" not in set(q["item"])
        assert q.set_index("item").loc["d", "version"] == 3

    def test_missing_column_is_named(self):
        with pytest.raises(ColumnError, match="disagreement"):
            build_queue(_disagreement().drop(columns="disagreement"))
        with pytest.raises(ColumnError, match="hotspot_id"):
            build_queue(_disagreement(), _hotspots().drop(columns="hotspot_id"))

    def test_duplicate_items_refused(self):
        frame = pd.concat([_disagreement(), _disagreement().head(1)])
        with pytest.raises(ColumnError, match="more than once"):
            build_queue(frame)

    def test_scores_above_one_are_scaled(self):
        frame = _disagreement().assign(disagreement=[9.0, 1.0, 4.5, 4.5])
        q = build_queue(frame)
        assert q["disagreement"].max() == 1.0

    def test_negative_scores_refused(self):
        with pytest.raises(ColumnError, match="negative"):
            build_queue(_disagreement().assign(disagreement=[-1.0, 0, 0, 0]))

    def test_weights_validated(self):
        with pytest.raises(ReviewError, match="hotspot"):
            QueueWeights(hotspot=-1)


class TestProjectQueue:
    def test_planted_mixed_use_hotspot_heads_the_queue(self, tmp_path):
        path = review_project(tmp_path)
        truth = sample_truth()
        mixed = set(truth.loc[truth["ambiguity"] == "mixed_use", "item"])
        with Project.open(path) as project:
            q = project_queue(project, hotspots=planted_hotspots(truth))
        assert set(q.head(len(mixed))["item"]) == mixed
        assert q["district"].notna().all()
        assert (q["version"] == 0).all()

    def test_notice_links_raise_impact(self, tmp_path):
        path = review_project(tmp_path)
        with Project.open(path) as project:
            base = project_queue(project, hotspots=planted_hotspots()).set_index("item")
            project.add_notice_links(
                pd.DataFrame(
                    {
                        "notice_id": ["N001"],
                        "item": ["P0005"],
                        "method": ["exact"],
                        "confidence": [1.0],
                        "start": [0],
                        "end": [5],
                        "label": ["ADDRESS"],
                        "text": ["1 Main"],
                    }
                ),
                model_version="test",
            )
            linked = project_queue(project, hotspots=planted_hotspots()).set_index("item")
        assert linked.loc["P0005", "n_notices"] == 1
        assert linked.loc["P0005", "impact"] > base.loc["P0005", "impact"]


class TestExportQueue:
    def test_gpkg_and_csv(self, tmp_path):
        q = build_queue(_disagreement(), _hotspots(), parcels=_parcels())
        gpkg, csv = export_queue(q, gpkg=tmp_path / "q.gpkg", csv=tmp_path / "q.csv")
        layer = pyogrio.read_dataframe(gpkg, layer="review_queue")
        assert len(layer) == 4 and layer.crs == "EPSG:32610"
        table = pd.read_csv(csv)
        for column in (*DECISION_COLUMNS, "x", "y", "version", "item"):
            assert column in table.columns
        assert table.loc[table["item"] == "a", "x"].iloc[0] == 5.0

    def test_no_target_or_missing_folder(self, tmp_path):
        q = build_queue(_disagreement())
        with pytest.raises(InputFileError, match="give a GeoPackage"):
            export_queue(q)
        with pytest.raises(InputFileError, match="does not exist"):
            export_queue(q, csv=tmp_path / "nope" / "q.csv")

    def test_queue_without_geometry_exports(self, tmp_path):
        q = build_queue(_disagreement())
        (gpkg,) = export_queue(q, gpkg=tmp_path / "q.gpkg")
        assert len(pyogrio.read_dataframe(gpkg, layer="review_queue", read_geometry=False)) == 4
