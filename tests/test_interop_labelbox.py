"""Tests of geolabel.interop.labelbox: MAL pre-labels out, Export v2 NDJSON in."""

# ruff: noqa: F811  (pytest fixtures imported from test_interop are parameters here)

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
from affine import Affine
from typer.testing import CliRunner

from geolabel.cli.main import app
from geolabel.crowd.majority_vote import MajorityVote
from geolabel.errors import AnnotationImportError, InputFileError
from geolabel.interop import (
    export_tasks,
    gold_answers,
    import_file,
    segment_annotations,
    segment_mask,
    span_annotations,
)
from geolabel.interop._common import read_png
from geolabel.interop.labelbox import prelabel_lines, tile_frames
from geolabel.interop.records import TaskRecord
from geolabel.interop.tasks import ensure_tile_items
from geolabel.store import Project

from .conftest import DATA
from .test_interop import (  # noqa: F401  (fixtures)
    NOTICE_TAXONOMY,
    TRUTH,
    TRUTH_MASK,
    add_predictions,
    base_dir,
    project_path,
)

runner = CliRunner()
FIXTURES = DATA / "interop"
PROJECT_ID = "clp000000000000000000000a"


def export_row(data_row: dict, labels: list[dict]) -> dict:
    """One Export v2 line for a data row made from geolabel's data_rows.json entry."""
    return {
        "data_row": {
            "id": f"cdr-{data_row['global_key']}",
            "global_key": data_row["global_key"],
            "row_data": data_row["row_data"],
        },
        "attachments": data_row.get("attachments", []),
        "projects": {PROJECT_ID: {"name": "p", "labels": labels, "project_details": {}}},
    }


def lb_label(lid: str, who: str, *, answer=None, objects=(), seconds=5.0, **details) -> dict:
    classifications = []
    if answer is not None:
        classifications = [
            {"name": "label", "value": "label", "radio_answer": {"name": answer, "value": answer}}
        ]
    return {
        "id": lid,
        "label_details": {
            "created_at": f"2024-05-01T10:{len(lid):02d}:00+00:00",
            "created_by": who,
            **details,
        },
        "performance_details": {"seconds_to_create": seconds, "skipped": False},
        "annotations": {
            "objects": list(objects),
            "classifications": classifications,
            "relationships": [],
        },
    }


def write_ndjson(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def count(path: Path) -> tuple[int, int]:
    with Project.open(path) as p:
        return len(p.annotations()), len(gold_answers(p))


def consensus(votes: pd.DataFrame) -> dict[str, str]:
    return MajorityVote().fit_predict(votes[["item", "annotator", "label"]]).to_dict()


class TestLabelboxExport:
    def test_parcel_prelabels_data_rows_and_ontology(self, project_path, tmp_path):
        with Project.open(project_path) as p:
            add_predictions(p, ["P0001", "P0002"])
            out = export_tasks(
                p,
                tmp_path,
                "labelbox",
                "parcel",
                items=["P0001", "P0002", "P0003"],
                url_prefix="https://chips.example.org/",
            )
        assert (out.n_tasks, out.n_predictions) == (3, 2)
        lines = [json.loads(x) for x in Path(out.paths[0]).read_text().splitlines()]
        assert [x["dataRow"] for x in lines] == [{"globalKey": "P0001"}, {"globalKey": "P0002"}]
        for line in lines:
            assert set(line) == {"uuid", "dataRow", "name", "answer"}
            assert (
                line["name"] == "label"
                and line["answer"]["name"] == TRUTH[line["dataRow"]["globalKey"]]
            )
        rows = json.loads(Path(out.paths[1]).read_text())
        assert rows[0]["global_key"] == "P0001" and rows[0]["media_type"] == "IMAGE"
        assert rows[0]["row_data"] == "https://chips.example.org/chips/P0001.png"
        geo = json.loads(rows[0]["attachments"][0]["value"])
        assert geo["geolabel_item"] == "P0001" and len(geo["geolabel_transform"]) == 6
        ontology = json.loads(Path(out.paths[2]).read_text())
        options = [o["value"] for o in ontology["classifications"][0]["options"]]
        assert "road" not in options and "residential" in options
        again = export_tasks(
            Project.open(project_path),
            tmp_path / "again",
            "labelbox",
            "parcel",
            items=["P0001", "P0002", "P0003"],
            url_prefix="https://chips.example.org/",
        )
        assert Path(again.paths[0]).read_text() == Path(out.paths[0]).read_text()

    def test_tile_masks_are_composite_pngs_with_class_colours(self, project_path, tmp_path):
        tile = "S001_r000256_c000256"
        with Project.open(project_path) as p:
            out = export_tasks(
                p,
                tmp_path,
                "labelbox",
                "tile",
                items=[tile],
                class_map=TRUTH_MASK,
                url_prefix="https://x.org/",
            )
            taxonomy = p.current_taxonomy()
        lines = [json.loads(x) for x in Path(out.paths[0]).read_text().splitlines()]
        assert lines and all(
            x["mask"]["instanceURI"] == f"https://x.org/masks/{tile}.png" for x in lines
        )
        rgb = read_png((tmp_path / "masks" / f"{tile}.png").read_bytes(), "mask")
        with rasterio.open(TRUTH_MASK) as src:
            truth = src.read(1, window=((256, 512), (256, 512)))
        for line in lines:
            code = taxonomy.codes[line["name"]]
            painted = np.all(rgb == np.array(line["mask"]["colorRGB"])[:, None, None], axis=0)
            assert np.array_equal(painted, truth == code)

    def test_tile_polygons_in_pixels_and_notice_spans_inclusive(self, project_path, tmp_path):
        with Project.open(project_path) as p:
            out = export_tasks(
                p,
                tmp_path,
                "labelbox",
                "tile",
                items=["S001_r000000_c000000"],
                class_map=TRUTH_MASK,
                url_prefix="https://x.org/",
                shape="polygon",
            )
            lines = [json.loads(x) for x in Path(out.paths[0]).read_text().splitlines()]
            assert lines and all("polygon" in x and "mask" not in x for x in lines)
            points = [pt for x in lines for pt in x["polygon"]]
            assert all(0 <= pt["x"] <= 256 and 0 <= pt["y"] <= 256 for pt in points)
            notes = export_tasks(
                p,
                tmp_path / "n",
                "labelbox",
                "notice",
                items=["N0001"],
                taxonomy_file=NOTICE_TAXONOMY,
            )
        rows = json.loads(Path(notes.paths[1]).read_text())
        text = rows[0]["row_data"]
        assert rows[0]["media_type"] == "TEXT" and text
        task = TaskRecord(
            "N0001", "notice", "base", "EPSG:32610", text=text, spans=((0, 5, "ORG"),)
        )
        (line,) = prelabel_lines(task)
        # Labelbox's end is the last character: the span is text[start : end + 1]
        assert line["location"] == {"start": 0, "end": 4} and line["name"] == "ORG"

    def test_unknown_shape_is_refused(self, project_path, tmp_path):
        with (
            Project.open(project_path) as p,
            pytest.raises(InputFileError, match="'mask' or 'polygon'"),
        ):
            export_tasks(p, tmp_path, "labelbox", "tile", url_prefix="x/", shape="brush")


class TestLabelboxImport:
    def test_documented_export_consensus_benchmark_and_skips(self, project_path):
        with Project.open(project_path) as p:
            result = import_file(p, FIXTURES / "labelbox_export_v2.ndjson", "labelbox")
            assert (result.n_labels, result.n_added, result.n_gold) == (8, 8, 1)
            assert result.n_skipped == {"skipped": 1, "duplicate label": 3}
            votes = p.annotations(kind="parcel")
            assert gold_answers(p).to_dict() == {"P0002": "park"}
        assert set(votes["annotator"]) == {
            "labelbox:ana@example.org",
            "labelbox:ben@example.org",
            "labelbox:cai@example.org",
        }
        assert votes["seconds"].tolist()[:2] == [12.5, 8.0]
        assert votes["created_at"].iloc[0].startswith("2024-05-01T10:01:00")
        assert consensus(votes) == {"P0001": "institutional", "P0002": "park", "P0003": "water"}

    def test_reimport_changes_nothing(self, project_path):
        file = FIXTURES / "labelbox_export_v2.ndjson"
        with Project.open(project_path) as p:
            import_file(p, file, "labelbox")
        before = count(project_path)
        with Project.open(project_path) as p:
            again = import_file(p, file, "labelbox")
        assert again.already_imported and again.n_added == 0
        assert count(project_path) == before

    def test_round_trip_parcels_to_the_same_consensus(self, project_path, tmp_path):
        items = ["P0001", "P0002", "P0003", "P0004"]
        with Project.open(project_path) as p:
            add_predictions(p, items)
            out = export_tasks(p, tmp_path, "labelbox", "parcel", items=items, url_prefix="u/")
        prelabels = {
            x["dataRow"]["globalKey"]: x["answer"]["name"]
            for x in map(json.loads, Path(out.paths[0]).read_text().splitlines())
        }
        rng = np.random.default_rng(3)
        classes = ["residential", "commercial", "park", "water"]
        votes = []
        rows = []
        for k, data_row in enumerate(json.loads(Path(out.paths[1]).read_text())):
            item = data_row["global_key"]
            labels = []
            for w, who in enumerate(("ana", "ben", "cai")):
                answer = prelabels[item] if w < 2 or k % 2 else str(rng.choice(classes))
                votes.append({"item": item, "annotator": f"labelbox:{who}", "label": answer})
                labels.append(lb_label(f"l{k}{w}", who, answer=answer))
            rows.append(export_row(data_row, labels))
        expected = consensus(pd.DataFrame(votes))
        with Project.open(project_path) as p:
            import_file(p, write_ndjson(tmp_path / "export.ndjson", rows), "labelbox")
            stored = p.annotations(kind="parcel")
        assert sorted(map(tuple, stored[["item", "annotator", "label"]].values.tolist())) == sorted(
            (v["item"], v["annotator"], v["label"]) for v in votes
        )
        assert consensus(stored) == expected == prelabels

    @pytest.mark.parametrize("shape", ["mask", "polygon"])
    def test_round_trip_tile_drawings_georeferenced(self, project_path, tmp_path, shape):
        tile = "S001_r000256_c000256"
        lb_dir = tmp_path / "lb"
        with Project.open(project_path) as p:
            out = export_tasks(
                p,
                lb_dir,
                "labelbox",
                "tile",
                items=[tile],
                class_map=TRUTH_MASK,
                url_prefix="https://x.org/",
                shape=shape,
            )
            codes = p.current_taxonomy().codes
        data_row = json.loads(Path(out.paths[1]).read_text())[0]
        objects = []
        for x in map(json.loads, Path(out.paths[0]).read_text().splitlines()):
            obj = {"feature_id": x["uuid"], "name": x["name"], "value": x["name"]}
            if shape == "mask":
                # Export v2 composite masks: one PNG, each instance by its colour
                obj.update(
                    annotation_kind="ImageSegmentationMask",
                    composite_mask={
                        "url": x["mask"]["instanceURI"],
                        "color_rgb": x["mask"]["colorRGB"],
                    },
                )
            else:
                obj.update(annotation_kind="ImagePolygon", polygon=x["polygon"])
            objects.append(obj)
        # the export lies beside the downloaded masks (never fetched)
        file = write_ndjson(
            lb_dir / "export.ndjson",
            [export_row(data_row, [lb_label("l1", "ana", objects=objects)])],
        )
        with rasterio.open(TRUTH_MASK) as src:
            truth = src.read(1, window=((256, 512), (256, 512)))
        geo = json.loads(data_row["attachments"][0]["value"])
        transform = Affine(*geo["geolabel_transform"])
        with Project.open(project_path) as p:
            result = import_file(p, file, "labelbox")
            assert result.n_segments >= len({o["name"] for o in objects}) > 0
            regions = segment_annotations(p, tile)
        labeled = np.isin(truth, list(codes.values()))
        mask = segment_mask(regions, transform, truth.shape, codes)
        assert np.array_equal(mask[labeled], truth[labeled])

    def test_tiles_without_attachment_use_the_tile_grid(self, project_path, tmp_path):
        tile = "S001_r000000_c000000"
        square = [{"x": 10, "y": 10}, {"x": 50, "y": 10}, {"x": 50, "y": 40}, {"x": 10, "y": 40}]
        row = export_row(
            {"global_key": tile, "row_data": "x"},
            [lb_label("l1", "ana", objects=[{"name": "park", "polygon": square}])],
        )
        with Project.open(project_path) as p:
            ensure_tile_items(p)
            import_file(p, write_ndjson(tmp_path / "e.ndjson", [row]), "labelbox")
            regions = segment_annotations(p, tile)
            frame = tile_frames(p)[tile]
        pixel_area = abs(frame.transform.a * frame.transform.e)
        assert regions["area"].tolist() == [pytest.approx(40 * 30 * pixel_area)]
        minx, _, _, maxy = regions.geometry.iloc[0].bounds
        assert (minx, maxy) == pytest.approx(frame.transform * (10, 10))

    def test_ner_spans_end_inclusive(self, project_path, tmp_path):
        with Project.open(project_path) as p:
            text = str(p.notices().set_index("notice_id").loc["N0001", "text"])
        ner = {
            "name": "ORG",
            "value": "ORG",
            "annotation_kind": "TextEntity",
            "location": {"start": 0, "end": 4, "token": text[:5]},
        }
        row = export_row(
            {"global_key": "N0001", "row_data": text}, [lb_label("l1", "ana", objects=[ner])]
        )
        with Project.open(project_path) as p:
            from geolabel.interop.tasks import kind_taxonomy

            kind_taxonomy(p, "notice", NOTICE_TAXONOMY)
            import_file(p, write_ndjson(tmp_path / "n.ndjson", [row]), "labelbox")
            spans = span_annotations(p)
        assert spans[["item", "start", "end", "label", "text"]].values.tolist() == [
            ["N0001", 0, 5, "ORG", text[:5]]
        ]


class TestLabelboxBadInput:
    def test_malformed_line_is_named_and_nothing_stored(self, project_path):
        with Project.open(project_path) as p, pytest.raises(AnnotationImportError) as info:
            import_file(p, FIXTURES / "labelbox_export_malformed.ndjson", "labelbox")
        assert "line 2 is not JSON" in str(info.value) and "truncated" in str(info.value)
        assert count(project_path) == (0, 0)

    def test_unknown_label_is_named_and_nothing_stored(self, project_path):
        with Project.open(project_path) as p, pytest.raises(AnnotationImportError) as info:
            import_file(p, FIXTURES / "labelbox_export_unknown_label.ndjson", "labelbox")
        message = str(info.value)
        assert "'mixed_use'" in message and "P0001" in message and "label cl3" in message
        assert count(project_path) == (0, 0)

    def test_data_row_without_global_key(self, project_path, tmp_path):
        row = export_row({"global_key": "", "row_data": "x"}, [lb_label("l1", "a", answer="park")])
        with (
            Project.open(project_path) as p,
            pytest.raises(AnnotationImportError, match="global_key"),
        ):
            import_file(p, write_ndjson(tmp_path / "e.ndjson", [row]), "labelbox")

    def test_prelabel_file_given_instead_of_export(self, project_path, tmp_path):
        line = {
            "uuid": "u",
            "dataRow": {"globalKey": "P0001"},
            "name": "label",
            "answer": {"name": "park"},
        }
        with (
            Project.open(project_path) as p,
            pytest.raises(AnnotationImportError, match="pre-label NDJSON"),
        ):
            import_file(p, write_ndjson(tmp_path / "e.ndjson", [line]), "labelbox")

    def test_mask_not_downloaded(self, project_path, tmp_path):
        obj = {
            "name": "park",
            "feature_id": "f1",
            "mask": {"url": "https://api.labelbox.com/masks/f1"},
        }
        row = export_row(
            {"global_key": "S001_r000000_c000000", "row_data": "x"},
            [lb_label("l1", "a", objects=[obj])],
        )
        with (
            Project.open(project_path) as p,
            pytest.raises(AnnotationImportError, match="never fetches"),
        ):
            import_file(p, write_ndjson(tmp_path / "e.ndjson", [row]), "labelbox")
        assert count(project_path) == (0, 0)


class TestLabelboxCli:
    def test_export_import_and_bad_file(self, project_path, tmp_path):
        args = ["export", str(project_path), "--format", "labelbox", "-o", str(tmp_path / "lb")]
        result = runner.invoke(app, [*args, "--item", "P0001"])
        assert result.exit_code == 2 and "--url-prefix" in result.output
        result = runner.invoke(
            app, [*args, "--item", "P0001", "--url-prefix", "https://x/", "--json"]
        )
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout.strip().splitlines()[-1])["format"] == "labelbox"
        file = FIXTURES / "labelbox_export_v2.ndjson"
        result = runner.invoke(
            app, ["import", str(project_path), str(file), "--format", "labelbox"]
        )
        assert result.exit_code == 0, result.output
        assert "imported 8 new annotation(s)" in result.output and "1 skipped" in result.output
        bad = FIXTURES / "labelbox_export_malformed.ndjson"
        result = runner.invoke(app, ["import", str(project_path), str(bad), "--format", "labelbox"])
        assert result.exit_code == 1 and "Traceback" not in result.output
        assert "line 2" in result.output
