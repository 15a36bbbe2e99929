"""Parcel queries on a project made from the bundled sample: filters, places, errors, CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
import shapely
from typer.testing import CliRunner

import geolabel
from geolabel.cli.main import app
from geolabel.crowd.consensus import aggregate_project
from geolabel.errors import ColumnError, CRSMismatchError, InputFileError, LayerError, QueryError
from geolabel.project import init_project
from geolabel.query import LABEL_COLUMNS, open_project, summarize, write_parcels
from geolabel.store import Project
from geolabel.taxonomy import load_taxonomy

from .conftest import SAMPLE


def _init(path, pois=SAMPLE / "city.gpkg"):
    init_project(
        path,
        scenes=[SAMPLE / "scene.tif"],
        parcels=SAMPLE / "city.gpkg",
        parcels_layer="parcels",
        pois=pois,
        pois_layer="pois",
        regions=SAMPLE / "city.gpkg",
        regions_layer="districts",
        notices=SAMPLE / "notices.jsonl",
        taxonomy=SAMPLE / "taxonomy.yaml",
    )
    return path


def label_pois(project: Project) -> None:
    """A POI labeling round stood in by one expert: POI consensus under the POI taxonomy."""
    poi_tax = load_taxonomy(SAMPLE / "taxonomies" / "poi.yaml")
    project.add_taxonomy_version(poi_tax.name, poi_tax.version, poi_tax.to_yaml(), poi_tax.sha256)
    answers = pd.read_csv(SAMPLE / "truth" / "pois.csv")
    votes = pd.DataFrame(
        {"item": answers["poi_id"], "annotator": "poi-expert", "label": answers["category"]}
    )
    project.add_annotations(votes, source="expert", annotator_kind="expert")
    stored = project.annotations(kind="poi")
    project.add_consensus(
        pd.DataFrame(
            {
                "item": stored["item"],
                "label": stored["label"],
                "confidence": 1.0,
                "votes": [[a] for a in stored["annotation_id"]],
            }
        ),
        method="expert_label",
        taxonomy_name="poi",
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    path = _init(tmp_path_factory.mktemp("query") / "city.gpkg")
    with Project.open(path) as p:
        classes = p.current_taxonomy().class_ids
        p.import_annotations_csv(SAMPLE / "labels" / "starter.csv", allowed_labels=classes)
        aggregate_project(p, method="mv")
        label_pois(p)
        # A pre-label for two parcels without consensus, and a review of one labeled parcel.
        cons = set(p.current_consensus()["item"])
        free = sorted(set(p.items("parcel")["item"]) - cons)[:2]
        p.add_predictions(
            pd.DataFrame({"item": free, "label": "industrial", "confidence": [0.9, 0.4]}),
            model_version="m1",
            allowed_labels=classes,
        )
        reviewed = sorted(cons)[0]
        p.add_review(reviewed, "expert-1", "park", previous_label="commercial")
        p.add_notice_links(
            pd.DataFrame(
                {
                    "notice_id": ["N0002", "N0001"],
                    "item": ["P0010", "P0020"],
                    "method": "exact",
                    "confidence": 1.0,
                    "start": 0,
                    "end": 5,
                    "label": "ADDRESS",
                    "text": "x",
                    "kind": ["zoning_hearing", "building_permit"],
                }
            ),
            model_version="test",
        )
    return path


@pytest.fixture(scope="module")
def everything(project):
    return pyogrio.read_dataframe(project, layer="parcels")


@pytest.fixture(scope="module")
def consensus(project):
    with Project.open(project) as p:
        cons = p.current_consensus()
        return cons[cons["item"].isin(p.items("parcel")["item"])].set_index("item")


class TestOpenProject:
    def test_lazy_export(self):
        assert geolabel.open_project is open_project
        code = (
            "import sys, geolabel; "
            "print(sorted(m for m in ('torch', 'geopandas') if m in sys.modules))"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        assert out.stdout.strip() == "[]"

    def test_what_there_is(self, project):
        q = open_project(project)
        assert q.districts == ["Northgate", "Riverside"]
        assert "commercial" in q.classes and "parcel_id" in q.columns
        assert q.notice_kinds == ["building_permit", "zoning_hearing"]


class TestParcels:
    def test_all_parcels_with_label_columns(self, project, everything, consensus):
        frame = open_project(project).parcels()
        assert len(frame) == len(everything) == 286
        assert list(frame.columns[-len(LABEL_COLUMNS) - 1 : -1]) == list(LABEL_COLUMNS)
        assert frame["parcel_id"].is_monotonic_increasing and frame.crs == everything.crs
        labeled = frame.set_index("parcel_id").loc[consensus.index]
        assert (labeled["label"] == consensus["label"]).all()
        assert (labeled["label_source"] == "consensus").all()
        assert frame["label"].isna().sum() == 286 - len(consensus) - 2

    def test_class_and_confidence_pushdown(self, project, consensus):
        q = open_project(project)
        commercial = q.parcels(cls="commercial")
        assert set(commercial["parcel_id"]) == set(
            consensus.index[consensus["label"] == "commercial"]
        )
        both = q.parcels(cls=["commercial", "vacant"], min_confidence=0.99)
        expect = consensus[
            consensus["label"].isin(["commercial", "vacant"]) & (consensus["confidence"] >= 0.99)
        ]
        assert set(both["parcel_id"]) == set(expect.index)

    def test_prediction_fallback_and_source(self, project):
        q = open_project(project)
        pre = q.parcels(label_source="prediction")
        assert len(pre) == 2 and set(pre["label"]) == {"industrial"}
        assert set(pre["model_version"]) == {"m1"} and (pre["n_votes"] == 0).all()
        doubtful = q.parcels(cls="industrial", max_confidence=0.5)
        assert list(doubtful["confidence"]) == [0.4]
        assert q.parcels(min_agreement=0.0, label_source="prediction").empty  # no votes

    def test_agreement(self, project):
        frame = open_project(project).parcels(min_agreement=0.5)
        assert len(frame) and (frame["agreement"] >= 0.5).all() and (frame["n_votes"] >= 1).all()

    def test_review_status(self, project, consensus):
        q = open_project(project)
        reviewed = q.parcels(review_status="reviewed")
        assert list(reviewed["parcel_id"]) == [sorted(consensus.index)[0]]
        assert len(q.parcels(review_status="unreviewed")) == len(consensus) + 2 - 1

    def test_taxonomy_version_and_dates(self, project, consensus):
        q = open_project(project)
        assert len(q.parcels(taxonomy_version="1")) == len(consensus) + 2
        assert q.parcels(labeled_after="2999-01-01").empty
        assert len(q.parcels(labeled_before="2999-01-01")) == len(consensus) + 2
        assert len(q.parcels(labeled_after="2000-01-01T00:00:00Z", cls="commercial")) == len(
            q.parcels(cls="commercial")
        )

    def test_district(self, project, everything):
        frame = open_project(project).parcels(district="Riverside")
        assert set(frame["parcel_id"]) == set(
            everything.loc[everything["district"] == "Riverside", "parcel_id"]
        )

    def test_bbox_uses_index_and_matches_geometry(self, project, everything):
        minx, miny, _, _ = everything.total_bounds
        box = (minx, miny, minx + 150, miny + 150)
        frame = open_project(project).parcels(bbox=box)
        expect = everything[everything.intersects(shapely.box(*box))]
        assert set(frame["parcel_id"]) == set(expect["parcel_id"]) and 0 < len(frame) < 286

    def test_bbox_in_another_crs(self, project, everything):
        minx, miny, _, _ = everything.total_bounds
        box = shapely.box(minx + 10, miny + 10, minx + 140, miny + 140)
        lonlat = gpd.GeoSeries([box], crs=everything.crs).to_crs(4326).total_bounds
        frame = open_project(project).parcels(bbox=tuple(lonlat), bbox_crs="EPSG:4326")
        assert set(frame["parcel_id"]) >= set(everything[everything.intersects(box)]["parcel_id"])

    def test_within_file_and_geometry(self, project, everything, tmp_path):
        area = everything.geometry.iloc[:40].union_all().convex_hull
        path = tmp_path / "area.geojson"
        gpd.GeoDataFrame(geometry=[area], crs=everything.crs).to_crs(4326).to_file(path)
        q = open_project(project)
        from_file = q.parcels(within=path)
        expect = everything[everything.representative_point().within(area.buffer(1e-6))]
        assert set(from_file["parcel_id"]) == set(expect["parcel_id"])
        assert set(q.parcels(within=area)["parcel_id"]) == set(expect["parcel_id"])

    def test_within_layer_of_a_multi_layer_file(self, project, everything):
        q = open_project(project)
        with pytest.raises(LayerError, match="several layers"):
            q.parcels(within=SAMPLE / "city.gpkg")
        north = q.parcels(within=SAMPLE / "city.gpkg", within_layer="districts")
        assert len(north) == len(everything)  # the districts cover the city

    def test_near_poi(self, project, everything):
        q = open_project(project)
        schools = q.pois("school")
        assert len(schools) and set(schools["category"]) == {"school"}
        frame = q.parcels(cls="commercial", near_poi=("school", 200))
        dist = everything.geometry.apply(lambda g: schools.distance(g).min())
        near = set(everything.loc[dist <= 200, "parcel_id"])
        commercial = set(q.parcels(cls="commercial")["parcel_id"])
        assert set(frame["parcel_id"]) == near & commercial

    def test_poi_category_column(self, tmp_path):
        pois = pyogrio.read_dataframe(SAMPLE / "city.gpkg", layer="pois")
        truth = pd.read_csv(SAMPLE / "truth" / "pois.csv")
        pois = pois.merge(truth[["poi_id", "category"]], on="poi_id")
        pyogrio.write_dataframe(pois, tmp_path / "pois.gpkg", layer="pois")
        path = _init(tmp_path / "p.gpkg", pois=tmp_path / "pois.gpkg")
        assert len(open_project(path).parcels(near_poi=("hospital", 100))) > 0

    def test_notices(self, project):
        frame = open_project(project).parcels(intersects_notices="zoning_hearing")
        assert list(frame["parcel_id"]) == ["P0010"]

    def test_columns_and_crs(self, project):
        frame = open_project(project).parcels(columns=["district", "label"], crs="EPSG:4326")
        assert list(frame.columns) == ["parcel_id", "district", *LABEL_COLUMNS, "geometry"]
        assert frame.crs.to_epsg() == 4326

    def test_empty_result_keeps_columns(self, project):
        frame = open_project(project).parcels(bbox=(0, 0, 1, 1))
        assert frame.empty and "label" in frame.columns
        assert summarize(frame).n_parcels == 0


class TestErrors:
    @pytest.mark.parametrize(
        ("kwargs", "error", "text"),
        [
            ({"cls": "comercial"}, QueryError, "Did you mean 'commercial'"),
            ({"district": "Downtown"}, QueryError, "Unknown district 'Downtown'"),
            ({"columns": ["zoning"]}, ColumnError, "Unknown column(s) 'zoning'"),
            ({"crs": "EPSG:999999"}, CRSMismatchError, "Unknown CRS"),
            ({"bbox": (0, 0, 1, 1), "bbox_crs": "nonsense"}, CRSMismatchError, "Unknown CRS"),
            ({"near_poi": ("schol", 500)}, QueryError, "Unknown POI category 'schol'"),
            ({"near_poi": ("school", -5)}, QueryError, "metres >= 0"),
            ({"intersects_notices": "auction"}, QueryError, "Unknown notice kind 'auction'"),
            ({"min_confidence": 1.5}, QueryError, "must be in [0, 1]"),
            ({"min_confidence": 0.9, "max_confidence": 0.1}, QueryError, "nothing can match"),
            ({"review_status": "done"}, QueryError, "Unknown review status"),
            ({"taxonomy_version": "7"}, QueryError, "Unknown taxonomy version '7'"),
            ({"labeled_after": "last week"}, QueryError, "is not a date"),
            ({"bbox": (5, 0, 1, 1)}, QueryError, "min > max"),
            ({"within": "missing.geojson"}, InputFileError, "does not exist"),
        ],
    )
    def test_bad_filters(self, project, kwargs, error, text):
        with pytest.raises(error) as info:
            open_project(project).parcels(**kwargs)
        assert text in str(info.value)

    def test_no_poi_categories(self, tmp_path):
        path = _init(tmp_path / "p.gpkg")
        with pytest.raises(QueryError, match="carry no category"):
            open_project(path).parcels(near_poi=("school", 500))

    def test_no_notice_links(self, tmp_path):
        path = _init(tmp_path / "p.gpkg")
        with pytest.raises(QueryError, match="geolabel notices extract --project"):
            open_project(path).parcels(intersects_notices="zoning_hearing")


class TestWriteParcels:
    @pytest.mark.parametrize("suffix", [".geojson", ".gpkg", ".csv"])
    def test_round_trip(self, project, tmp_path, suffix):
        frame = open_project(project).parcels(cls="commercial")
        out = write_parcels(frame, tmp_path / f"out{suffix}")
        if suffix == ".csv":
            back = pd.read_csv(out)
            assert back["geometry"].str.startswith("POLYGON").all()
        else:
            back = pyogrio.read_dataframe(out)
            assert back.crs.to_epsg() == (4326 if suffix == ".geojson" else frame.crs.to_epsg())
        assert sorted(back["parcel_id"]) == sorted(frame["parcel_id"])
        assert set(back["label"]) == {"commercial"}

    def test_bad_suffix(self, project, tmp_path):
        with pytest.raises(InputFileError, match=r"\.geojson, \.gpkg, \.csv"):
            write_parcels(open_project(project).parcels(), tmp_path / "out.shp")


class TestCli:
    def test_table_json_and_file(self, project, tmp_path):
        runner = CliRunner()
        result = runner.invoke(
            app, ["query", str(project), "--class", "commercial", "--near-poi", "school:200"]
        )
        assert result.exit_code == 0, result.output
        assert "parcel(s)" in result.output and "commercial" in result.output
        out = tmp_path / "near.gpkg"
        result = runner.invoke(
            app,
            [
                "query",
                str(project),
                "--class",
                "commercial",
                "--near-poi",
                "school:200",
                "-o",
                str(out),
                "--json",
            ],
        )
        assert result.exit_code == 0, result.output
        summary = json.loads(result.output.strip().splitlines()[-1])
        assert summary["output"] == str(out) and summary["filters"]["near_poi"] == ["school", 200.0]
        assert (
            summary["n_parcels"]
            == len(pyogrio.read_dataframe(out))
            == summary["labels"]["commercial"]
        )

    def test_bbox_district_notices(self, project):
        runner = CliRunner()
        result = runner.invoke(
            app,
            [
                "query",
                str(project),
                "--notices",
                "zoning_hearing",
                "--district",
                "Northgate",
                "--json",
            ],
        )
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["n_parcels"] == 1
        result = runner.invoke(app, ["query", str(project), "--bbox", "0,0,1,1", "--json"])
        assert json.loads(result.output)["n_parcels"] == 0

    @pytest.mark.parametrize(
        ("args", "text"),
        [
            (["--class", "shops"], "Unknown class 'shops'"),
            (["--near-poi", "school"], "CATEGORY:METRES"),
            (["--bbox", "1,2,3"], "four numbers"),
            (["--crs", "EPSG:0"], "Unknown CRS"),
            (["--columns", "nope"], "Unknown column(s) 'nope'"),
            (["-o", "out.txt"], "must end in"),
        ],
    )
    def test_errors_exit_1_without_traceback(self, project, args, text):
        result = CliRunner().invoke(app, ["query", str(project), *args])
        assert result.exit_code == 1
        assert text in result.output and "Traceback" not in result.output
