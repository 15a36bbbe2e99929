"""Tests for geolabel.store: real GeoPackage files on disk, real SQLite."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
from shapely.geometry import Point, box

from geolabel import store
from geolabel.errors import (
    AnnotationImportError,
    CRSMismatchError,
    LayerError,
    ProjectExistsError,
    ProjectNotFoundError,
    StoreError,
)
from geolabel.store import (
    APPEND_ONLY_TABLES,
    SCHEMA_VERSION,
    TABLES,
    ImportResult,
    LayerInfo,
    Project,
    ProjectSummary,
    annotation_id_for,
)

CRS = "EPSG:32633"
LABELS = ("residential", "commercial", "industrial", "green")
ITEMS = [f"p{i}" for i in range(1, 7)]


def write_csv(
    path: Path, rows: Sequence[tuple[str, ...]], header: str = "item,annotator,label"
) -> Path:
    path.write_text("\n".join([header, *(",".join(r) for r in rows)]) + "\n", encoding="utf-8")
    return path


def parcels_frame(crs: str | None = CRS) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "parcel_id": ITEMS,
            "area_m2": [100.0, 250.5, 80.25, 1200.0, 42.0, 999.0],
            "zone": ["R1", "C2", "I1", "R1", "G", "C2"],
            "floors": [1, 3, 2, 10, 0, 4],
        },
        geometry=[box(i * 10, 0, i * 10 + 8, 8) for i in range(6)],
        crs=crs,
    )


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """A project with six parcel items and one taxonomy version."""
    proj = Project.create(tmp_path / "city.gpkg", crs=CRS, name="city")
    proj.add_items(pd.DataFrame({"item": ITEMS}), kind="parcel")
    proj.add_taxonomy_version("land_use", "1.0", "classes: [residential]\n", "sha-1")
    return proj


def count_rows(path: Path, table: str) -> int:
    with sqlite3.connect(path) as con:
        return int(con.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


class TestProjectCreateOpen:
    def test_spatial_layer_round_trip(self, tmp_path: Path) -> None:
        path = tmp_path / "city.gpkg"
        parcels = parcels_frame()
        with Project.create(path, crs=CRS) as proj:
            proj.write_layer(parcels, "parcels")

        reopened = Project.open(path)
        back = reopened.read_layer("parcels")

        assert reopened.crs == CRS
        assert back.crs == parcels.crs
        assert list(back.columns) == list(parcels.columns)
        pd.testing.assert_frame_equal(
            pd.DataFrame(back.drop(columns="geometry")),
            pd.DataFrame(parcels.drop(columns="geometry")),
        )
        assert back.geometry.geom_equals(parcels.geometry).all()

    def test_file_is_a_valid_geopackage(self, tmp_path: Path) -> None:
        path = Project.create(tmp_path / "p.gpkg", crs=CRS).path
        with sqlite3.connect(path) as con:
            assert con.execute("PRAGMA application_id").fetchone()[0] == 0x47504B47
            assert con.execute("PRAGMA user_version").fetchone()[0] >= 10200
            assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            assert con.execute("PRAGMA foreign_key_check").fetchall() == []
            types = dict(con.execute("SELECT table_name, data_type FROM gpkg_contents"))
        assert {t: "attributes" for t in TABLES}.items() <= types.items()

    def test_layers_visible_to_pyogrio_including_tables(self, project: Project) -> None:
        project.write_layer(parcels_frame(), "parcels")

        listed = dict(pyogrio.list_layers(project.path))

        assert set(TABLES) | {"parcels"} <= set(listed)
        assert listed["parcels"] == "Polygon"
        assert listed["annotations"] is None
        items = pyogrio.read_dataframe(project.path, layer="items")
        assert sorted(items["item_id"]) == sorted(ITEMS)

    def test_layers_reports_kinds_counts_and_crs(self, project: Project) -> None:
        project.write_layer(parcels_frame(), "parcels")

        infos = {info.name: info for info in project.layers()}

        assert infos["parcels"] == LayerInfo("parcels", "features", 6, CRS, "POLYGON")
        assert infos["items"] == LayerInfo("items", "attributes", 6, None, None)
        assert infos["meta"].count == 5

    def test_project_without_spatial_layers(self, project: Project) -> None:
        assert all(info.kind == "attributes" for info in project.layers())
        with pytest.raises(LayerError, match="none yet"):
            project.read_layer("parcels")

    def test_meta_records_project(self, project: Project) -> None:
        meta = project.meta
        assert meta["schema_version"] == str(SCHEMA_VERSION)
        assert meta["name"] == "city"
        assert meta["crs"] == CRS
        assert meta["created_at"].endswith("+00:00")
        assert meta["geolabel_version"]

    def test_refuses_to_overwrite_existing_project(self, project: Project) -> None:
        with pytest.raises(ProjectExistsError, match="overwrite=True"):
            Project.create(project.path, crs=CRS)
        assert count_rows(project.path, "items") == len(ITEMS)

    def test_overwrite_replaces_project(self, project: Project) -> None:
        fresh = Project.create(project.path, crs="EPSG:3857", overwrite=True)
        assert fresh.crs == "EPSG:3857"
        assert count_rows(project.path, "items") == 0

    def test_failed_overwrite_keeps_old_file(
        self, project: Project, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def broken_write(*args: object, **kwargs: object) -> None:
            raise OSError("disk full")

        monkeypatch.setattr(store.pyogrio, "write_dataframe", broken_write)

        with pytest.raises(StoreError, match="disk full"):
            Project.create(project.path, crs=CRS, overwrite=True)
        assert count_rows(project.path, "items") == len(ITEMS)
        assert [p.name for p in project.path.parent.iterdir()] == ["city.gpkg"]

    def test_bad_crs_is_refused(self, tmp_path: Path) -> None:
        with pytest.raises(CRSMismatchError, match="EPSG:32633"):
            Project.create(tmp_path / "p.gpkg", crs="not a crs")
        assert not (tmp_path / "p.gpkg").exists()

    def test_open_missing_file(self, tmp_path: Path) -> None:
        with pytest.raises(ProjectNotFoundError, match="geolabel init") as info:
            Project.open(tmp_path / "nope.gpkg")
        assert "does not exist" in str(info.value)
        assert isinstance(info.value, FileNotFoundError)

    def test_open_plain_geopackage(self, tmp_path: Path) -> None:
        path = tmp_path / "plain.gpkg"
        pyogrio.write_dataframe(parcels_frame(), path, layer="parcels", driver="GPKG")
        with pytest.raises(ProjectNotFoundError, match=r"not a geolabel project.*geolabel init"):
            Project.open(path)

    def test_open_non_sqlite_file(self, tmp_path: Path) -> None:
        path = tmp_path / "notes.gpkg"
        path.write_text("item,label\n")
        with pytest.raises(ProjectNotFoundError, match="not a GeoPackage"):
            Project.open(path)

    def test_newer_schema_asks_to_upgrade(self, project: Project) -> None:
        with sqlite3.connect(project.path) as con:
            con.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
        with pytest.raises(StoreError, match=r"newer geolabel.*Upgrade"):
            Project.open(project.path)

    def test_closed_project_refuses_calls(self, project: Project) -> None:
        with project:
            pass
        assert project.closed
        with pytest.raises(StoreError, match="closed"):
            project.annotations()


class TestSetMeta:
    def test_set_replace_and_reopen(self, project):
        project.set_meta("tiling", json.dumps({"size": 256}))
        project.set_meta("tiling", json.dumps({"size": 128}))
        assert json.loads(project.meta["tiling"]) == {"size": 128}
        assert count_rows(project.path, "meta") == 6
        assert json.loads(Project.open(project.path).meta["tiling"]) == {"size": 128}

    @pytest.mark.parametrize("key", ["crs", "schema_version", "bad key", ""])
    def test_refuses_defining_and_malformed_keys(self, project, key):
        with pytest.raises(StoreError, match="cannot be set"):
            project.set_meta(key, "x")
        assert Project.open(project.path).crs == CRS


class TestWriteLayer:
    def test_crs_mismatch_names_both_crs(self, project: Project) -> None:
        wgs84 = parcels_frame().to_crs("EPSG:4326")
        with pytest.raises(CRSMismatchError) as info:
            project.write_layer(wgs84, "parcels")
        message = str(info.value)
        assert "EPSG:4326" in message
        assert "EPSG:32633" in message
        assert "to_crs" in message
        assert "parcels" not in dict(pyogrio.list_layers(project.path))

    def test_missing_crs(self, project: Project) -> None:
        with pytest.raises(CRSMismatchError, match="no CRS"):
            project.write_layer(parcels_frame(crs=None), "parcels")

    def test_refuses_to_replace_existing_layer(self, project: Project) -> None:
        project.write_layer(parcels_frame(), "parcels")
        with pytest.raises(StoreError, match=r"already exists.*overwrite=True"):
            project.write_layer(parcels_frame().iloc[:2], "parcels")
        assert len(project.read_layer("parcels")) == 6

        info = project.write_layer(parcels_frame().iloc[:2], "parcels", overwrite=True)
        assert info.count == 2
        assert len(project.read_layer("parcels")) == 2

    @pytest.mark.parametrize("name", ["annotations", "gpkg_contents", "rtree_x", "bad name"])
    def test_reserved_or_invalid_names(self, project: Project, name: str) -> None:
        with pytest.raises(StoreError):
            project.write_layer(parcels_frame(), name)
        assert count_rows(project.path, "annotations") == 0

    def test_read_layer_pushdown(self, project: Project) -> None:
        project.write_layer(parcels_frame(), "parcels")
        assert sorted(project.read_layer("parcels", where="zone = 'C2'")["parcel_id"]) == [
            "p2",
            "p6",
        ]
        assert list(project.read_layer("parcels", bbox=(0, 0, 5, 5))["parcel_id"]) == ["p1"]

    def test_read_plain_table_as_layer(self, project: Project) -> None:
        with pytest.raises(LayerError, match=r"plain table.*Project.items"):
            project.read_layer("items")

    def test_points_layer(self, project: Project) -> None:
        pois = gpd.GeoDataFrame({"name": ["school"]}, geometry=[Point(1, 2)], crs=CRS)
        assert project.write_layer(pois, "pois").geometry_type == "POINT"

    def test_not_inside_transaction(self, project: Project) -> None:
        with pytest.raises(StoreError, match="transaction"), project.transaction():
            project.write_layer(parcels_frame(), "parcels")


class TestImportAnnotations:
    ROWS = (
        ("p1", "w1", "residential"),
        ("p2", "w1", "commercial"),
        ("p1", "w2", "residential"),
        ("p2", "w2", "industrial"),
    )

    def test_same_file_twice_adds_nothing(self, project: Project, tmp_path: Path) -> None:
        csv = write_csv(tmp_path / "votes.csv", self.ROWS)

        first = project.import_annotations_csv(csv, allowed_labels=LABELS)
        second = project.import_annotations_csv(csv, allowed_labels=LABELS)

        assert first == ImportResult(first.import_id, 4, 4, 0, False)
        assert second == ImportResult(first.import_id, 4, 0, 4, True)
        assert len(project.annotations()) == 4
        assert len(project.imports()) == 1

    def test_overlapping_file_adds_only_new_rows(self, project: Project, tmp_path: Path) -> None:
        project.import_annotations_csv(write_csv(tmp_path / "a.csv", self.ROWS[:2]))
        overlap = write_csv(tmp_path / "b.csv", self.ROWS)  # half already stored

        result = project.import_annotations_csv(overlap, allowed_labels=LABELS)

        assert (result.n_rows, result.n_added, result.n_duplicates) == (4, 2, 2)
        assert not result.already_imported
        stored = project.annotations()
        assert sorted(zip(stored["item"], stored["annotator"], stored["label"], strict=True)) == (
            sorted(self.ROWS)
        )

    def test_bad_label_in_last_row_rolls_back_everything(
        self, project: Project, tmp_path: Path
    ) -> None:
        project.import_annotations_csv(write_csv(tmp_path / "a.csv", self.ROWS[:2]))
        before = project.annotations()
        rows = [("p3", "w9", "green"), ("p4", "w9", "residential"), ("p5", "w9", "forestt")]

        with pytest.raises(AnnotationImportError) as info:
            project.import_annotations_csv(
                write_csv(tmp_path / "bad.csv", rows), allowed_labels=LABELS
            )

        message = str(info.value)
        assert "'forestt' (1 row)" in message
        assert "allowed labels: commercial, green, industrial, residential" in message
        assert "nothing from it was stored" in message
        pd.testing.assert_frame_equal(project.annotations(), before)
        assert "w9" not in set(project.annotators()["annotator"])
        assert len(project.imports()) == 1

    def test_failure_after_inserting_rolls_back(
        self, project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        project.import_annotations_csv(write_csv(tmp_path / "a.csv", self.ROWS[:2]))
        real_insert = store._insert_annotations

        def insert_then_fail(*args: object, **kwargs: object) -> int:
            real_insert(*args, **kwargs)  # type: ignore[arg-type]
            raise RuntimeError("power cut")

        monkeypatch.setattr(store, "_insert_annotations", insert_then_fail)
        with pytest.raises(RuntimeError, match="power cut"):
            project.import_annotations_csv(write_csv(tmp_path / "b.csv", self.ROWS[2:]))

        assert count_rows(project.path, "annotations") == 2
        assert count_rows(project.path, "imports") == 1
        assert set(project.annotators()["annotator"]) == {"w1"}

    def test_unknown_items_are_listed_and_counted(self, project: Project, tmp_path: Path) -> None:
        rows = [("p1", "w1", "green"), ("x9", "w1", "green"), ("x7", "w2", "green")]
        with pytest.raises(AnnotationImportError, match=r"2 item\(s\) not in the project.*'x7'"):
            project.import_annotations_csv(write_csv(tmp_path / "a.csv", rows))
        assert count_rows(project.path, "annotations") == 0

    def test_aliased_column_is_not_guessed(self, project: Project, tmp_path: Path) -> None:
        csv = write_csv(tmp_path / "a.csv", self.ROWS, header="item,worker_id,label")
        with pytest.raises(AnnotationImportError) as info:
            project.import_annotations_csv(csv)
        message = str(info.value)
        assert "'annotator'" in message
        assert "columns present: item, worker_id, label" in message
        assert "'worker_id' -> 'annotator'" in message

    def test_bad_row_names_its_line(self, project: Project, tmp_path: Path) -> None:
        csv = write_csv(
            tmp_path / "a.csv",
            [("p1", "w1", "green", "2024-05-01T10:00:00Z"), ("p2", "w1", "green", "yesterday")],
            header="item,annotator,label,created_at",
        )
        with pytest.raises(AnnotationImportError, match="line 3: created_at 'yesterday'"):
            project.import_annotations_csv(csv)
        assert count_rows(project.path, "annotations") == 0

    def test_ids_do_not_depend_on_source_or_timestamp_spelling(
        self, project: Project, tmp_path: Path
    ) -> None:
        csv = write_csv(
            tmp_path / "a.csv",
            [("p1", "w1", "green", "2024-05-01T12:00:00+02:00")],
            header="item,annotator,label,created_at",
        )
        project.import_annotations_csv(csv)
        frame = pd.DataFrame(
            {
                "item": ["p1"],
                "annotator": ["w1"],
                "label": ["green"],
                "created_at": ["2024-05-01 10:00"],
            }
        )

        result = project.add_annotations(frame, source="toloka")

        assert (result.n_added, result.already_imported) == (0, False)
        stored = project.annotations()
        assert stored["created_at"].tolist() == ["2024-05-01T10:00:00.000000+00:00"]
        assert stored["annotation_id"].tolist() == [
            annotation_id_for("p1", "w1", "green", "2024-05-01T10:00:00.000000+00:00")
        ]

    def test_source_ids_are_kept_and_conflicts_refused(
        self, project: Project, tmp_path: Path
    ) -> None:
        header = "item,annotator,label,annotation_id,seconds"
        project.import_annotations_csv(
            write_csv(tmp_path / "a.csv", [("p1", "w1", "green", "ls-1", "12.5")], header)
        )
        assert project.annotations()["annotation_id"].tolist() == ["ls-1"]
        assert project.annotations()["seconds"].tolist() == [12.5]

        with pytest.raises(AnnotationImportError, match="reused for a different"):
            project.import_annotations_csv(
                write_csv(tmp_path / "b.csv", [("p2", "w1", "green", "ls-1", "3")], header)
            )

    def test_dataframe_import_is_idempotent_and_adds_annotators(self, project: Project) -> None:
        frame = pd.DataFrame(
            {"item": ["p1", "p2"], "annotator": ["sim-1", "sim-2"], "label": ["green", "green"]}
        )

        first = project.add_annotations(frame, source="simulator", annotator_kind="simulated")
        again = project.add_annotations(frame.copy(), source="simulator")

        assert (first.n_added, again.n_added, again.already_imported) == (2, 0, True)
        annotators = project.annotators()
        assert annotators["kind"].tolist() == ["simulated", "simulated"]
        assert set(project.annotations()["source"]) == {"simulator"}

    def test_dataframe_import_checks_labels(self, project: Project) -> None:
        frame = pd.DataFrame(
            {"item": ["p1", "p2", "p3"], "annotator": ["a"] * 3, "label": ["x", "x", "green"]}
        )
        with pytest.raises(AnnotationImportError, match=r"'x' \(2 rows\)"):
            project.add_annotations(frame, source="api", allowed_labels=LABELS)
        assert count_rows(project.path, "annotations") == 0

    def test_transaction_groups_calls(self, project: Project, tmp_path: Path) -> None:
        bad = write_csv(tmp_path / "bad.csv", [("p7", "w1", "nope")])
        with pytest.raises(AnnotationImportError), project.transaction():
            project.add_items(pd.DataFrame({"item": ["p7"], "kind": ["poi"]}))
            project.import_annotations_csv(bad, allowed_labels=LABELS)
        assert "p7" not in set(project.items()["item"])

    def test_annotations_filter_by_kind(self, project: Project) -> None:
        project.add_items(pd.DataFrame({"item": ["t1"]}), kind="tile")
        frame = pd.DataFrame({"item": ["p1", "t1"], "annotator": ["a", "a"], "label": ["g", "g"]})
        project.add_annotations(frame, source="api")
        assert project.annotations(kind="tile")["item"].tolist() == ["t1"]
        assert len(project.annotations()) == 2


class TestAppendOnly:
    @pytest.mark.parametrize("table", APPEND_ONLY_TABLES)
    @pytest.mark.parametrize("statement", ["UPDATE {t} SET created_at = 'x'", "DELETE FROM {t}"])
    def test_triggers_refuse_changes_from_any_client(
        self, project: Project, tmp_path: Path, table: str, statement: str
    ) -> None:
        csv = write_csv(tmp_path / "a.csv", [("p1", "w1", "green")])
        project.import_annotations_csv(csv)
        project.add_notices(pd.DataFrame({"notice_id": ["n1"], "text": ["Permit granted"]}))
        aid = project.annotations()["annotation_id"].tolist()
        review = project.add_review("p1", "expert-1", "green")
        project.add_predictions(
            pd.DataFrame({"item": ["p1"], "label": ["green"]}), model_version="m1"
        )
        project.add_consensus(
            pd.DataFrame({"item": ["p1"], "label": ["green"], "votes": [aid]}),
            method="majority_vote",
            review_id=review,
        )
        before = count_rows(project.path, table)
        assert before > 0

        with (
            sqlite3.connect(project.path) as con,
            pytest.raises(sqlite3.IntegrityError, match="append-only"),
        ):
            con.execute(statement.format(t=table))
        assert count_rows(project.path, table) == before

    def test_store_error_through_transaction(self, project: Project, tmp_path: Path) -> None:
        project.import_annotations_csv(write_csv(tmp_path / "a.csv", [("p1", "w1", "green")]))

        with pytest.raises(StoreError, match=r"append-only.*new row") as info:  # noqa: SIM117
            with project.transaction() as con:
                con.execute("UPDATE annotations SET label = 'residential'")
        assert isinstance(info.value.__cause__, sqlite3.IntegrityError)
        assert project.annotations()["label"].tolist() == ["green"]

        with pytest.raises(StoreError, match="append-only"), project.transaction() as con:
            con.execute("DELETE FROM annotations")
        assert len(project.annotations()) == 1

    def test_rounds_are_frozen_once_finished(self, project: Project) -> None:
        round_id = project.start_round({"strategy": "entropy", "budget": 50})
        project.finish_round(round_id)
        with pytest.raises(StoreError, match="already finished"):
            project.finish_round(round_id)
        with (
            pytest.raises(StoreError, match="finished round cannot change"),
            project.transaction() as con,
        ):
            con.execute("UPDATE rounds SET status = 'running'")
        rounds = project.rounds()
        assert rounds["status"].tolist() == ["finished"]
        assert rounds["config"].tolist() == [{"budget": 50, "strategy": "entropy"}]


class TestConsensus:
    @pytest.fixture
    def votes(self, project: Project) -> pd.DataFrame:
        frame = pd.DataFrame(
            {
                "item": ["p1", "p1", "p1", "p2", "p2"],
                "annotator": ["a", "b", "c", "a", "b"],
                "label": ["green", "green", "residential", "commercial", "commercial"],
            }
        )
        project.add_annotations(frame, source="api", allowed_labels=LABELS)
        return project.annotations()

    def test_provenance_round_trip(self, project: Project, votes: pd.DataFrame) -> None:
        round_id = project.start_round()
        p1_votes = votes.loc[votes["item"] == "p1", "annotation_id"].tolist()
        p2_votes = votes.loc[votes["item"] == "p2", "annotation_id"].tolist()

        project.add_consensus(
            pd.DataFrame(
                {
                    "item": ["p1", "p2"],
                    "label": ["green", "commercial"],
                    "confidence": [0.67, 1.0],
                    "votes": [p1_votes, p2_votes],
                }
            ),
            method="majority_vote",
            round_id=round_id,
            model_version="unet-0.3",
            taxonomy_name="land_use",
            taxonomy_version="1.0",
            allowed_labels=LABELS,
        )

        current = project.current_consensus()
        assert current["item"].tolist() == ["p1", "p2"]
        row = current.iloc[0]
        assert row["label"] == "green"
        assert row["confidence"] == pytest.approx(0.67)
        assert row["method"] == "majority_vote"
        assert row["round_id"] == round_id
        assert row["model_version"] == "unet-0.3"
        assert (row["taxonomy_name"], row["taxonomy_version"]) == ("land_use", "1.0")
        assert row["votes"] == p1_votes
        assert pd.isna(row["review_id"])

    def test_current_is_latest_and_history_is_kept(
        self, project: Project, votes: pd.DataFrame
    ) -> None:
        p1_votes = votes.loc[votes["item"] == "p1", "annotation_id"].tolist()
        project.add_consensus(
            pd.DataFrame({"item": ["p1"], "label": ["green"], "votes": [p1_votes]}),
            method="majority_vote",
        )
        review = project.add_review(
            "p1", "expert-1", "residential", previous_label="green", note="houses under trees"
        )
        project.add_consensus(
            pd.DataFrame({"item": ["p1"], "label": ["residential"], "confidence": [1.0]}),
            method="expert_review",
            review_id=review,
        )

        current = project.current_consensus()
        assert current["label"].tolist() == ["residential"]
        assert current["review_id"].tolist() == [review]
        history = project.consensus_history("p1")
        assert history["label"].tolist() == ["green", "residential"]
        assert history["method"].tolist() == ["majority_vote", "expert_review"]
        assert project.reviews()["previous_label"].tolist() == ["green"]

    def test_votes_must_belong_to_the_item(self, project: Project, votes: pd.DataFrame) -> None:
        p2_votes = votes.loc[votes["item"] == "p2", "annotation_id"].tolist()
        with pytest.raises(StoreError, match="not stored annotations of their item"):
            project.add_consensus(
                pd.DataFrame({"item": ["p1"], "label": ["green"], "votes": [p2_votes]}),
                method="majority_vote",
            )
        assert project.current_consensus().empty

    def test_rows_need_provenance(self, project: Project) -> None:
        with pytest.raises(StoreError, match="no provenance"):
            project.add_consensus(pd.DataFrame({"item": ["p1"], "label": ["green"]}), method="x")

    def test_taxonomy_version_must_be_stored(self, project: Project) -> None:
        with pytest.raises(StoreError, match=r"land_use version 9\.9.*stored: land_use 1\.0"):
            project.add_consensus(
                pd.DataFrame({"item": ["p1"], "label": ["green"]}),
                method="prelabel_accepted",
                model_version="unet-0.3",
                taxonomy_version="9.9",
            )


class TestTaxonomyAndPredictions:
    def test_taxonomy_versions(self, project: Project) -> None:
        assert (
            project.add_taxonomy_version("land_use", "1.0", "classes: [residential]\n", "sha-1")
            is False
        )
        assert (
            project.add_taxonomy_version("land_use", "1.1", "classes: [green]\n", "sha-2") is True
        )

        assert project.taxonomy() == "classes: [green]\n"
        assert project.taxonomy(version="1.0") == "classes: [residential]\n"
        with pytest.raises(StoreError, match="different content"):
            project.add_taxonomy_version("land_use", "1.0", "classes: []\n", "sha-3")
        with pytest.raises(StoreError, match="not stored"):
            project.taxonomy("poi_category")

    def test_predictions_resume_adds_nothing(self, project: Project) -> None:
        frame = pd.DataFrame(
            {
                "item": ["p1", "p2"],
                "label": ["green", "residential"],
                "confidence": [0.9, 0.55],
                "probas": [
                    {"green": 0.9, "residential": 0.1},
                    {"green": 0.45, "residential": 0.55},
                ],
            }
        )
        assert project.add_predictions(frame, model_version="unet-0.3") == 2
        assert project.add_predictions(frame, model_version="unet-0.3") == 0

        stored = project.predictions("unet-0.3")
        assert stored["probas"].tolist()[0] == {"green": 0.9, "residential": 0.1}
        assert stored["taxonomy_version"].tolist() == ["1.0", "1.0"]


class TestNotices:
    def test_round_trip_keeps_other_fields(self, project: Project) -> None:
        notices = pd.DataFrame(
            {
                "notice_id": ["n1", "n2"],
                "text": ["Permit granted at 12 Elm St.", "Demolition notice, 4 Oak Ave."],
                "date": ["2024-05-01", None],
                "parcels": [["p1"], ["p2", "p3"]],
            }
        )

        assert project.add_notices(notices) == 2
        assert project.add_notices(notices) == 0

        back = project.notices()
        assert back["notice_id"].tolist() == ["n1", "n2"]
        assert back["parcels"].tolist() == [["p1"], ["p2", "p3"]]
        assert back["date"].tolist()[0] == "2024-05-01"
        assert pd.isna(back["date"].tolist()[1])

    def test_changed_notice_is_refused(self, project: Project) -> None:
        project.add_notices(pd.DataFrame({"notice_id": ["n1"], "text": ["original"]}))
        with pytest.raises(StoreError, match=r"different content.*'n1'"):
            project.add_notices(pd.DataFrame({"notice_id": ["n1"], "text": ["edited"]}))
        assert project.notices()["text"].tolist() == ["original"]


class TestTaxonomyModuleIntegration:
    def test_stored_taxonomy_parses_and_drives_imports(self, tmp_path: Path) -> None:
        from geolabel.taxonomy import load_taxonomy

        tax = load_taxonomy(Path(__file__).parents[1] / "data" / "sample" / "taxonomy.yaml")
        proj = Project.create(tmp_path / "p.gpkg", crs=CRS)
        proj.add_items(pd.DataFrame({"item": ["p1"]}), kind="parcel")

        assert proj.add_taxonomy_version(tax.name, tax.version, tax.to_yaml(), tax.sha256)
        assert not proj.add_taxonomy_version(tax.name, tax.version, tax.to_yaml(), tax.sha256)

        current = proj.current_taxonomy(tax.name)
        assert current == tax
        label = current.class_ids[0]
        csv = write_csv(tmp_path / "v.csv", [("p1", "w1", label), ("p1", "w2", "not-a-class")])
        with pytest.raises(AnnotationImportError, match="'not-a-class'"):
            proj.import_annotations_csv(csv, allowed_labels=current.class_ids)
        assert proj.taxonomy_versions()["version"].tolist() == [str(tax.version)]


class TestSummary:
    def test_counts(self, project: Project, tmp_path: Path) -> None:
        project.write_layer(parcels_frame(), "parcels")
        project.add_items(pd.DataFrame({"item": ["s1"], "kind": ["poi"]}))
        project.import_annotations_csv(
            write_csv(tmp_path / "a.csv", [("p1", "w1", "green"), ("p2", "w2", "green")])
        )
        aid = project.annotations()["annotation_id"].tolist()
        project.start_round()
        project.add_consensus(
            pd.DataFrame({"item": ["p1"], "label": ["green"], "votes": [aid[:1]]}), method="mv"
        )
        project.add_consensus(
            pd.DataFrame({"item": ["p1"], "label": ["green"], "votes": [aid[:1]]}), method="ds"
        )

        summary = project.summary()

        assert isinstance(summary, ProjectSummary)
        assert summary.name == "city"
        assert summary.crs == CRS
        assert summary.layers[0] == LayerInfo("parcels", "features", 6, CRS, "POLYGON")
        layer_counts = {info.name: info.count for info in summary.layers}
        assert set(TABLES) <= set(layer_counts)
        assert layer_counts["consensus"] == 2
        assert (summary.taxonomy_name, summary.taxonomy_version) == ("land_use", "1.0")
        assert summary.counts == {
            "items": 7,
            "annotations": 2,
            "annotators": 2,
            "consensus": 1,
            "rounds": 1,
            "imports": 1,
            "notices": 0,
            "taxonomy_versions": 1,
        }
        assert summary.items_by_kind == {"parcel": 6, "poi": 1, "tile": 0, "notice": 0}
        assert json.loads(json.dumps(dataclasses.asdict(summary)))["layers"][0]["count"] == 6
        with pytest.raises(dataclasses.FrozenInstanceError):
            summary.name = "other"  # type: ignore[misc]

    def test_empty_project(self, tmp_path: Path) -> None:
        summary = Project.create(tmp_path / "e.gpkg", crs=CRS).summary()
        assert all(info.kind == "attributes" for info in summary.layers)
        assert summary.taxonomy_name is None
        assert set(summary.counts.values()) == {0}
