"""Tests of geolabel.interop: Label Studio, Toloka, SageMaker Ground Truth and GIS formats."""

from __future__ import annotations

import json
import shutil
import uuid
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import rasterio
import shapely
from affine import Affine
from typer.testing import CliRunner

from geolabel.cli.main import app
from geolabel.crowd.consensus import aggregate_project
from geolabel.errors import AnnotationImportError, InputFileError, StoreError
from geolabel.interop import (
    export_gis,
    export_label_maps,
    export_tasks,
    gold_answers,
    import_file,
    segment_annotations,
    segment_mask,
    span_annotations,
)
from geolabel.interop.geometry import (
    geometry_to_mask,
    geometry_to_percent_rings,
    mask_to_geometry,
    percent_ring_to_geometry,
)
from geolabel.interop.label_studio import labeling_config
from geolabel.interop.rle import decode_brush_rle, decode_rle, encode_brush_rle, encode_rle
from geolabel.project import init_project
from geolabel.raster.index import tile_project
from geolabel.store import Project
from geolabel.taxonomy import load_taxonomy

from .conftest import SAMPLE

runner = CliRunner()

PARCELS = ["P0001", "P0002", "P0003", "P0004", "P0005", "P0006"]
TRUTH = pd.read_csv(SAMPLE / "truth" / "parcels.csv").set_index("parcel_id")["land_use"]
NOTICE_TAXONOMY = SAMPLE / "taxonomies" / "notice_entities.yaml"
POI_TAXONOMY = SAMPLE / "taxonomies" / "poi.yaml"
TRUTH_MASK = SAMPLE / "truth" / "landuse_mask.tif"
# Label Studio SDK's mask2rle of a 4 x 5 mask (rows 1-2, cols 1-3 and pixel (3, 4) set),
# captured from label_studio_sdk.converter.brush 2.1.2.
SDK_RLE_4X5 = [0, 0, 0, 80, 57, 27, 254, 23, 0, 183, 255, 56, 5, 191, 252, 38, 1, 31, 248]


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiled sample project, built once; tests work on copies in the same folder."""
    folder = tmp_path_factory.mktemp("interop")
    init_project(
        folder / "base.gpkg",
        scenes=[SAMPLE / "scene.tif"],
        parcels=SAMPLE / "city.gpkg",
        parcels_layer="parcels",
        pois=SAMPLE / "city.gpkg",
        pois_layer="pois",
        notices=SAMPLE / "notices.jsonl",
        taxonomy=SAMPLE / "taxonomy.yaml",
    )
    tile_project(folder / "base.gpkg", size=256, overlap=0, stats_tiles=4, workers=1)
    return folder


def make_project(base_dir: Path) -> Path:
    """A fresh copy of the base project (same folder, so its scene path still resolves)."""
    path = base_dir / f"p_{uuid.uuid4().hex[:8]}.gpkg"
    shutil.copy(base_dir / "base.gpkg", path)
    return path


@pytest.fixture
def project_path(base_dir: Path) -> Path:
    return make_project(base_dir)


def add_predictions(project: Project, items: list[str], model_version: str = "m-test") -> None:
    labels = [
        str(TRUTH[i]) if TRUTH[i] in project.current_taxonomy() else "commercial" for i in items
    ]
    frame = pd.DataFrame({"item": items, "label": labels, "confidence": 0.8})
    project.add_predictions(frame, model_version=model_version)


def choice(label: str) -> list[dict]:
    return [
        {"from_name": "label", "to_name": "image", "type": "choices", "value": {"choices": [label]}}
    ]


def ls_annotation(ann_id: int, user: int, result: list[dict], **extra: object) -> dict:
    return {
        "id": ann_id,
        "completed_by": user,
        "result": result,
        "was_cancelled": False,
        "ground_truth": False,
        "created_at": f"2024-05-01T10:{ann_id:02d}:00.000000Z",
        "lead_time": 10.0 + ann_id,
        **extra,
    }


def parcel_export(tasks: list[dict], wrong: str = "water") -> list[dict]:
    """A Label Studio JSON export: 3 users per task, the third wrong on every task."""
    out = []
    n = 0
    for k, task in enumerate(tasks):
        truth = str(TRUTH[task["data"]["geolabel_item"]])
        anns = []
        for user in (1, 2, 3):
            n += 1
            anns.append(ls_annotation(n, user, choice(truth if user < 3 else wrong)))
        out.append({"id": 100 + k, "data": task["data"], "annotations": anns})
    return out


def write_json(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


# ------------------------------------------------------------------------------ RLE


class TestBrushRle:
    def test_matches_label_studio_sdk_bytes(self):
        mask = np.zeros((4, 5), dtype=bool)
        mask[1:3, 1:4] = True
        mask[3, 4] = True
        assert encode_brush_rle(mask) == SDK_RLE_4X5
        assert np.array_equal(decode_brush_rle(SDK_RLE_4X5, 4, 5), mask)

    @pytest.mark.parametrize("shape", [(1, 1), (7, 13), (64, 64), (200, 190)])
    def test_round_trip_random_and_long_runs(self, shape):
        rng = np.random.default_rng(0)
        blobs = rng.random(shape) > 0.7
        for mask in (blobs, np.zeros(shape, bool), np.ones(shape, bool)):
            assert np.array_equal(decode_brush_rle(encode_brush_rle(mask), *shape), mask)

    def test_values_round_trip(self):
        values = np.array([0, 0, 0, 5, 6, 7, 7, 255] + [9] * 70000, dtype=np.uint8)
        assert np.array_equal(decode_rle(encode_rle(values)), values)

    def test_truncated_rle_is_refused(self):
        with pytest.raises(AnnotationImportError, match="ends early"):
            decode_rle(SDK_RLE_4X5[:-4])

    def test_wrong_image_size_is_refused(self):
        with pytest.raises(AnnotationImportError, match="does not belong to this image"):
            decode_brush_rle(SDK_RLE_4X5, 5, 5)


# ------------------------------------------------------------------------------ geometry


class TestGeometry:
    def test_mask_polygons_mask_is_exact(self):
        rng = np.random.default_rng(1)
        mask = rng.random((40, 30)) > 0.6
        transform = Affine(0.5, 0, 551000, 0, -0.5, 4182512)
        geometry = mask_to_geometry(mask, transform)
        assert np.array_equal(geometry_to_mask(geometry, transform, mask.shape), mask)
        assert geometry.area == pytest.approx(mask.sum() * 0.25)

    def test_percent_rings_round_trip(self):
        mask = np.zeros((20, 40), dtype=bool)
        mask[2:9, 5:30] = True
        transform = Affine(2.0, 0, 100, 0, -2.0, 500)
        rings = geometry_to_percent_rings(mask_to_geometry(mask, transform), 40, 20, transform)
        assert len(rings) == 1
        assert all(0 <= x <= 100 and 0 <= y <= 100 for x, y in rings[0])
        back = percent_ring_to_geometry(rings[0], 40, 20, transform)
        assert np.array_equal(geometry_to_mask(back, transform, mask.shape), mask)


# ------------------------------------------------------------------------------ Label Studio


class TestLabelingConfig:
    def test_parcel_config_lists_parcel_classes_with_colours(self):
        taxonomy = load_taxonomy(SAMPLE / "taxonomy.yaml")
        root = ET.fromstring(labeling_config(taxonomy, "parcel", taxonomy.parcel_class_ids))
        choices = root.find("Choices")
        assert choices is not None and choices.get("toName") == "image"
        values = {c.get("value"): c.get("background") for c in choices.findall("Choice")}
        assert set(values) == set(taxonomy.parcel_class_ids)
        assert "road" not in values
        assert values["residential"] == taxonomy.colour_of("residential")

    def test_tile_config_has_brush_and_polygon_labels(self):
        taxonomy = load_taxonomy(SAMPLE / "taxonomy.yaml")
        root = ET.fromstring(labeling_config(taxonomy, "tile"))
        for tag in ("BrushLabels", "PolygonLabels"):
            node = root.find(tag)
            assert node is not None
            assert [n.get("value") for n in node.findall("Label")] == list(taxonomy.class_ids)

    def test_notice_config_has_span_labels(self):
        taxonomy = load_taxonomy(NOTICE_TAXONOMY)
        root = ET.fromstring(labeling_config(taxonomy, "notice"))
        assert root.find("Text").get("value") == "$text"
        assert {n.get("value") for n in root.find("Labels").findall("Label")} >= {"ADDRESS", "DATE"}


class TestLabelStudioExport:
    def test_parcel_tasks_have_chips_predictions_and_ids(self, project_path, tmp_path):
        with Project.open(project_path) as p:
            add_predictions(p, PARCELS)
            result = export_tasks(p, tmp_path / "ls", "labelstudio", "parcel", items=PARCELS)
        assert result.n_tasks == len(PARCELS) and result.n_predictions == len(PARCELS)
        tasks = json.loads(Path(result.paths[0]).read_text())
        first = tasks[0]
        assert first["data"]["geolabel_item"] == "P0001"
        assert first["data"]["geolabel_crs"] == "EPSG:32610"
        assert first["data"]["image"].startswith("/data/local-files/?d=chips/")
        prediction = first["predictions"][0]
        assert prediction["model_version"] == "m-test" and prediction["score"] == 0.8
        assert prediction["result"][0]["value"]["choices"] == [str(TRUTH["P0001"])]
        chip = tmp_path / "ls" / "chips" / "P0001.png"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with rasterio.open(chip) as src:
                assert src.driver == "PNG" and src.count == 3
                rgb = src.read()
                assert (src.width, src.height) == tuple(first["data"]["geolabel_window"][2:])
        outline = (rgb[0] == 255) & (rgb[1] == 255) & (rgb[2] == 0)
        assert outline.sum() > 20  # the parcel outline is drawn
        # the chip transform puts the parcel boundary where the outline is drawn
        with Project.open(project_path) as p:
            parcel = p.read_layer("parcels", where="parcel_id = 'P0001'").geometry.iloc[0]
        transform = Affine(*first["data"]["geolabel_transform"])
        rows, cols = np.nonzero(outline)
        xs, ys = transform @ (cols + 0.5, rows + 0.5)
        distances = shapely.distance(shapely.points(xs, ys), parcel.boundary)
        assert distances.max() < 1.5  # within 3 pixels of 0.5 m

    def test_tile_tasks_carry_brush_and_polygon_prelabels(self, project_path, tmp_path):
        with Project.open(project_path) as p:
            result = export_tasks(
                p,
                tmp_path,
                "labelstudio",
                "tile",
                items=["S001_r000000_c000000"],
                class_map=TRUTH_MASK,
            )
            codes = p.current_taxonomy().codes
        task = json.loads(Path(result.paths[0]).read_text())[0]
        with rasterio.open(TRUTH_MASK) as src:
            truth = src.read(1, window=((0, 256), (0, 256)))
        results = task["predictions"][0]["result"]
        brushes = [r for r in results if r["type"] == "brushlabels"]
        assert {r["value"]["brushlabels"][0] for r in brushes} <= set(codes)
        for r in brushes:
            label = r["value"]["brushlabels"][0]
            mask = decode_brush_rle(r["value"]["rle"], r["original_height"], r["original_width"])
            assert np.array_equal(mask, truth == codes[label])
        polygons = [r for r in results if r["type"] == "polygonlabels"]
        assert polygons and all(r["value"]["closed"] for r in polygons)

    def test_gold_goes_out_as_a_ground_truth_annotation_and_comes_back_as_gold(
        self, project_path, tmp_path
    ):
        gold = {"P0002": str(TRUTH["P0002"])}
        with Project.open(project_path) as p:
            result = export_tasks(
                p, tmp_path / "ls", "labelstudio", "parcel", items=PARCELS, gold=gold
            )
        assert result.n_gold == 1
        tasks = json.loads(Path(result.paths[0]).read_text())
        by_item = {t["data"]["geolabel_item"]: t for t in tasks}
        (annotation,) = by_item["P0002"]["annotations"]
        assert annotation == {"result": choice(gold["P0002"]), "ground_truth": True}
        assert all("annotations" not in t for i, t in by_item.items() if i != "P0002")
        # Label Studio's export keeps the imported annotation (now with an id and a user) and
        # adds the crowd's: the gold comes back as gold, not as a vote.
        export = parcel_export(tasks)
        for task in export:
            if task["data"]["geolabel_item"] == "P0002":
                task["annotations"].append(
                    ls_annotation(99, 1, annotation["result"], ground_truth=True)
                )
        with Project.open(project_path) as p:
            back = import_file(p, write_json(tmp_path / "export.json", export), "labelstudio")
            assert back.n_gold == 1 and back.n_labels == 3 * len(PARCELS)
            assert gold_answers(p).to_dict() == gold

    def test_gold_outside_the_taxonomy_or_for_tiles_is_refused(self, project_path, tmp_path):
        with Project.open(project_path) as p:
            with pytest.raises(StoreError, match=r"Gold answers use labels not in .*: nope"):
                export_tasks(p, tmp_path / "a", "labelstudio", "parcel", gold={"P0001": "nope"})
            with pytest.raises(StoreError, match="not tiles; export without --gold"):
                export_tasks(p, tmp_path / "b", "labelstudio", "tile", gold={"x": "park"})
        assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()

    def test_notice_tasks_need_the_notice_taxonomy(self, project_path, tmp_path):
        with Project.open(project_path) as p:
            with pytest.raises(StoreError, match="notice_entities"):
                export_tasks(p, tmp_path, "labelstudio", "notice")
            result = export_tasks(
                p, tmp_path, "labelstudio", "notice", items=["N0001"], taxonomy_file=NOTICE_TAXONOMY
            )
        task = json.loads(Path(result.paths[0]).read_text())[0]
        assert task["data"]["text"] and "predictions" not in task


class TestLabelStudioImport:
    def _export(self, path: Path, out: Path) -> list[dict]:
        with Project.open(path) as p:
            result = export_tasks(p, out, "labelstudio", "parcel", items=PARCELS)
        return json.loads(Path(result.paths[0]).read_text())

    def test_import_aggregate_and_reimport(self, project_path, tmp_path):
        tasks = self._export(project_path, tmp_path)
        export = parcel_export(tasks)
        export[0]["annotations"].append(ls_annotation(90, 4, choice("park"), was_cancelled=True))
        export[1]["annotations"].append(ls_annotation(91, 4, []))
        export[2]["annotations"].append(
            ls_annotation(92, 9, choice(str(TRUTH["P0003"])), ground_truth=True)
        )
        file = write_json(tmp_path / "export.json", export)
        with Project.open(project_path) as p:
            result = import_file(p, file, "labelstudio")
            assert result.n_labels == 3 * len(PARCELS)
            assert result.n_added == 3 * len(PARCELS)
            assert result.n_gold == 1
            assert result.n_skipped == {"cancelled": 1, "empty": 1}
            stored = p.annotations()
            assert set(stored["annotator"]) == {"labelstudio:1", "labelstudio:2", "labelstudio:3"}
            assert stored["seconds"].min() == 11.0
            assert stored["created_at"].iloc[0] == "2024-05-01T10:01:00.000000+00:00"
            gold = gold_answers(p)
            assert gold.to_dict() == {"P0003": str(TRUTH["P0003"])}
            consensus = aggregate_project(p, method="mv", gold=gold)
            assert consensus.n_items == len(PARCELS)
            current = p.current_consensus().set_index("item")["label"]
            assert all(current[i] == TRUTH[i] for i in PARCELS)
            again = import_file(p, file, "labelstudio")
            assert again.already_imported and again.n_added == 0
            assert len(p.annotations()) == len(stored)

    def test_overlapping_later_export_adds_only_new_answers(self, project_path, tmp_path):
        tasks = self._export(project_path, tmp_path)
        first = parcel_export(tasks[:3])
        later = parcel_export(tasks[:3])
        later[0]["annotations"].append(ls_annotation(50, 7, choice("park")))
        with Project.open(project_path) as p:
            import_file(p, write_json(tmp_path / "a.json", first), "labelstudio")
            result = import_file(p, write_json(tmp_path / "b.json", later), "labelstudio")
            assert (result.n_added, result.n_duplicates) == (1, 9)

    @pytest.mark.parametrize("tile", ["S001_r000256_c000256", "S001_r000256_c000000"])
    def test_brush_and_polygon_results_come_back_georeferenced(self, project_path, tmp_path, tile):
        with Project.open(project_path) as p:
            out = export_tasks(
                p, tmp_path, "labelstudio", "tile", items=[tile], class_map=TRUTH_MASK
            )
            codes = p.current_taxonomy().codes
        task = json.loads(Path(out.paths[0]).read_text())[0]
        preds = task["predictions"][0]["result"]
        brush = [r for r in preds if r["type"] == "brushlabels"]
        polygon = [r for r in preds if r["type"] == "polygonlabels"]
        export = [
            {
                "id": 1,
                "data": task["data"],
                "annotations": [
                    ls_annotation(1, 1, brush),
                    ls_annotation(2, 2, polygon),
                ],
            }
        ]
        file = write_json(tmp_path / "tiles.json", export)
        with rasterio.open(TRUTH_MASK) as src:
            row, col = int(tile[6:12]), int(tile[14:20])
            truth = src.read(1, window=((row, row + 256), (col, col + 256)))
        transform = Affine(*task["data"]["geolabel_transform"])
        with Project.open(project_path) as p:
            result = import_file(p, file, "labelstudio")
            assert result.n_segments == len(brush) + len(polygon)
            regions = segment_annotations(p, tile)
            assert regions.crs.to_epsg() == 32610
            layers = {i.name: i for i in p.layers()}
            assert layers["segment_annotations"].kind == "features"
            labeled = np.isin(truth, list(codes.values()))
            present = truth[labeled]
            expected = np.where(labeled, truth, 0)
            brushed = regions[regions["annotator"] == "labelstudio:1"]
            assert np.array_equal(segment_mask(brushed, transform, truth.shape, codes), expected)
            # polygons have no holes: islands are smaller polygons on top; pixels of classes
            # outside the taxonomy (holes nobody drew) are the only ones that may differ
            traced = regions[regions["annotator"] == "labelstudio:2"]
            mask = segment_mask(traced, transform, truth.shape, codes)
            assert np.array_equal(mask[labeled], expected[labeled])
            tile_votes = p.annotations(kind="tile")
            assert len(tile_votes) == 2
            dominant = pd.Series(present).value_counts().index[0]
            name = {v: k for k, v in codes.items()}[int(dominant)]
            assert set(tile_votes["label"]) == {name}
        # QGIS/GDAL opens the layer
        gdf = pyogrio.read_dataframe(project_path, layer="segment_annotations")
        assert len(gdf) == len(regions) and gdf.geometry.is_valid.all()

    def test_spans_are_stored_for_span_voting(self, project_path, tmp_path):
        with Project.open(project_path) as p:
            out = export_tasks(
                p, tmp_path, "labelstudio", "notice", items=["N0001"], taxonomy_file=NOTICE_TAXONOMY
            )
        task = json.loads(Path(out.paths[0]).read_text())[0]
        text = task["data"]["text"]
        span = {
            "from_name": "entities",
            "to_name": "text",
            "type": "labels",
            "value": {"start": 0, "end": 5, "text": text[:5], "labels": ["ORG"]},
        }
        export = [{"id": 1, "data": task["data"], "annotations": [ls_annotation(1, 1, [span])]}]
        with Project.open(project_path) as p:
            import_file(p, write_json(tmp_path / "n.json", export), "labelstudio")
            spans = span_annotations(p)
        assert spans[["item", "start", "end", "label"]].values.tolist() == [["N0001", 0, 5, "ORG"]]

    def test_pois_are_choices_from_the_poi_taxonomy(self, project_path, tmp_path):
        with Project.open(project_path) as p:
            out = export_tasks(
                p, tmp_path, "labelstudio", "poi", items=["POI0001"], taxonomy_file=POI_TAXONOMY
            )
            task = json.loads(Path(out.paths[0]).read_text())[0]
            assert task["data"]["name"] and task["data"]["geolabel_kind"] == "poi"
            export = [
                {
                    "id": 1,
                    "data": task["data"],
                    "annotations": [ls_annotation(1, 1, choice("school"))],
                }
            ]
            result = import_file(p, write_json(tmp_path / "poi.json", export), "labelstudio")
            assert result.n_added == 1
            assert p.annotations(kind="poi")["label"].tolist() == ["school"]
            export[0]["annotations"] = [ls_annotation(2, 1, choice("residential"))]
            with pytest.raises(AnnotationImportError, match="Allowed: poi: school"):
                import_file(p, write_json(tmp_path / "poi2.json", export), "labelstudio")
            # POI votes aggregate against the POI taxonomy, not land use.
            export[0]["annotations"] = [
                ls_annotation(3, 2, choice("school")),
                ls_annotation(4, 3, choice("shop")),
            ]
            import_file(p, write_json(tmp_path / "poi3.json", export), "labelstudio")
            consensus = aggregate_project(p, method="mv", kind="poi")
            assert consensus.labels == {"school": 1} and consensus.taxonomy.startswith("poi v")
            stored = p.current_consensus()
            assert stored.set_index("item").loc["POI0001", "label"] == "school"


class TestLabelStudioBadInput:
    def _count(self, path: Path) -> int:
        with Project.open(path) as p:
            return len(p.annotations())

    def test_export_of_another_project_names_the_unknown_ids(self, project_path, tmp_path):
        tasks = TestLabelStudioImport()._export(project_path, tmp_path)
        export = parcel_export(tasks)
        export[1]["data"] = {**export[1]["data"], "geolabel_item": "OTHER-17"}
        export[2]["data"] = {**export[2]["data"], "geolabel_item": "OTHER-18"}
        with Project.open(project_path) as p, pytest.raises(AnnotationImportError) as info:
            import_file(p, write_json(tmp_path / "x.json", export), "labelstudio")
        message = str(info.value)
        assert "'OTHER-17', 'OTHER-18'" in message and "another project" in message
        assert "nothing from it was stored" in message
        assert self._count(project_path) == 0

    def test_tasks_not_made_by_geolabel(self, project_path, tmp_path):
        export = [{"id": 5, "data": {"image": "x.png"}, "annotations": []}]
        with Project.open(project_path) as p, pytest.raises(AnnotationImportError, match="5"):
            import_file(p, write_json(tmp_path / "x.json", export), "labelstudio")

    def test_labels_outside_the_taxonomy(self, project_path, tmp_path):
        tasks = TestLabelStudioImport()._export(project_path, tmp_path)
        export = parcel_export(tasks, wrong="mixed_use")
        with Project.open(project_path) as p, pytest.raises(AnnotationImportError) as info:
            import_file(p, write_json(tmp_path / "x.json", export), "labelstudio")
        message = str(info.value)
        assert "'mixed_use'" in message and "P0001" in message and "task 100" in message
        assert "Allowed: parcel: residential" in message
        assert self._count(project_path) == 0

    def test_truncated_json(self, project_path, tmp_path):
        tasks = TestLabelStudioImport()._export(project_path, tmp_path)
        text = json.dumps(parcel_export(tasks))
        file = tmp_path / "cut.json"
        file.write_text(text[: len(text) // 2])
        with Project.open(project_path) as p, pytest.raises(AnnotationImportError) as info:
            import_file(p, file, "labelstudio")
        assert "truncated" in str(info.value) and "cut.json" in str(info.value)
        assert self._count(project_path) == 0

    def test_drawing_on_another_image_size(self, project_path, tmp_path):
        with Project.open(project_path) as p:
            out = export_tasks(
                p,
                tmp_path,
                "labelstudio",
                "tile",
                items=["S001_r000000_c000000"],
                class_map=TRUTH_MASK,
            )
        task = json.loads(Path(out.paths[0]).read_text())[0]
        brush = dict(task["predictions"][0]["result"][0], original_width=128)
        export = [{"id": 1, "data": task["data"], "annotations": [ls_annotation(1, 1, [brush])]}]
        with Project.open(project_path) as p, pytest.raises(AnnotationImportError, match="128"):
            import_file(p, write_json(tmp_path / "x.json", export), "labelstudio")


# ------------------------------------------------------------------------------ Toloka


TOLOKA_HEADER = (
    "INPUT:item\tINPUT:image\tOUTPUT:label\tGOLDEN:label\tHINT:text\tASSIGNMENT:link\t"
    "ASSIGNMENT:task_id\tASSIGNMENT:assignment_id\tASSIGNMENT:worker_id\tASSIGNMENT:status\t"
    "ASSIGNMENT:started\tASSIGNMENT:submitted"
)


def toloka_rows(rows: list[tuple[str, str, str, str, str]]) -> str:
    lines = [TOLOKA_HEADER]
    for k, (item, label, golden, worker, status) in enumerate(rows):
        lines.append(
            f"{item}\thttps://x/{item}.png\t{label}\t{golden}\t\thttps://toloka/{k}\tt{k}\ta{k}\t"
            f"{worker}\t{status}\t2024-05-01T10:00:{k:02d}.000\t2024-05-01T10:01:{k:02d}.000"
        )
    return "\n".join(lines) + "\n"


class TestToloka:
    def test_export_tsv_with_golden_columns(self, project_path, tmp_path):
        with Project.open(project_path) as p:
            result = export_tasks(
                p,
                tmp_path,
                "toloka",
                "parcel",
                items=PARCELS[:3],
                url_prefix="https://example.org/chips/",
                gold={"P0002": "park"},
            )
        table = pd.read_csv(result.paths[0], sep="\t", dtype=str, keep_default_na=False)
        assert list(table["INPUT:item"]) == PARCELS[:3]
        assert table["INPUT:image"].iloc[0] == "https://example.org/chips/chips/P0001.png"
        assert list(table["GOLDEN:label"]) == ["", "park", ""]
        assert table["HINT:text"].iloc[1] == "Park"
        assert json.loads(table["INPUT:geolabel_window"].iloc[0])[2] > 0
        assert result.n_gold == 1

    def test_results_rejected_excluded_gold_kept(self, project_path, tmp_path):
        file = tmp_path / "results.tsv"
        file.write_text(
            toloka_rows(
                [
                    ("P0001", "institutional", "", "w1", "ACCEPTED"),
                    ("P0001", "institutional", "", "w2", "SUBMITTED"),
                    ("P0001", "water", "", "w3", "REJECTED"),
                    ("P0002", "park", "park", "w1", "ACCEPTED"),
                    ("P0002", "", "park", "w2", "ACCEPTED"),
                ]
            )
        )
        with Project.open(project_path) as p:
            result = import_file(p, file, "toloka")
            assert (result.n_labels, result.n_added, result.n_gold) == (3, 3, 1)
            assert result.n_skipped == {"rejected": 1, "blank answer": 1}
            votes = p.annotations()
            assert set(votes["annotator"]) == {"toloka:w1", "toloka:w2"}
            assert votes["seconds"].tolist() == [60.0, 60.0, 60.0]
            assert gold_answers(p).to_dict() == {"P0002": "park"}
            assert import_file(p, file, "toloka").already_imported

    def test_results_without_worker_column(self, project_path, tmp_path):
        file = tmp_path / "results.tsv"
        text = toloka_rows([("P0001", "park", "", "w1", "ACCEPTED")])
        file.write_text(text.replace("ASSIGNMENT:worker_id", "ASSIGNMENT:user"))
        with Project.open(project_path) as p, pytest.raises(AnnotationImportError) as info:
            import_file(p, file, "toloka")
        assert "ASSIGNMENT:worker_id" in str(info.value)
        assert "ASSIGNMENT:user" in str(info.value)

    def test_unknown_label_in_results(self, project_path, tmp_path):
        file = tmp_path / "results.tsv"
        file.write_text(toloka_rows([("P0001", "farmland", "", "w1", "ACCEPTED")]))
        with Project.open(project_path) as p:
            with pytest.raises(AnnotationImportError, match=r"'farmland'.*line 2"):
                import_file(p, file, "toloka")
            assert len(p.annotations()) == 0


# ------------------------------------------------------------------------------ SageMaker


def gt_line(item_data: dict, index: int, class_map: dict | None, class_name: str | None) -> str:
    meta: dict = {
        "confidence": 0.91,
        "type": "groundtruth/image-classification",
        "job-name": "labeling-job/landuse-1",
        "human-annotated": "yes",
        "creation-date": "2024-05-01T09:00:00.000000",
    }
    if class_map is not None:
        meta["class-map"] = class_map
    if class_name is not None:
        meta["class-name"] = class_name
    return json.dumps({**item_data, "landuse": index, "landuse-metadata": meta})


class TestSageMaker:
    def _manifest(self, project_path: Path, out: Path, kind: str = "parcel", **kw) -> list[dict]:
        with Project.open(project_path) as p:
            result = export_tasks(
                p, out, "sagemaker", kind, url_prefix="s3://bucket/geolabel/", **kw
            )
        lines = Path(result.paths[0]).read_text().splitlines()
        return [json.loads(line) for line in lines]

    def test_input_manifest(self, project_path, tmp_path):
        records = self._manifest(project_path, tmp_path, items=PARCELS[:2])
        assert records[0]["source-ref"] == "s3://bucket/geolabel/chips/P0001.png"
        assert records[1]["geolabel_item"] == "P0002"
        categories = json.loads((tmp_path / "parcel_label_categories.json").read_text())
        assert "road" not in [c["label"] for c in categories["labels"]]

    def test_classification_output_manifest(self, project_path, tmp_path):
        records = self._manifest(project_path, tmp_path, items=PARCELS[:2])
        class_map = {"0": "institutional", "1": "park"}
        lines = [
            gt_line(records[0], 0, class_map, "institutional"),
            gt_line(records[1], 1, None, "park"),
            json.dumps(
                {**records[1], "landuse-metadata": {"failure-reason": "ClientError: timeout"}}
            ),
        ]
        file = tmp_path / "output.manifest"
        file.write_text("\n".join(lines) + "\n")
        with Project.open(project_path) as p:
            result = import_file(p, file, "sagemaker")
            assert (result.n_added, result.n_skipped) == (2, {"failed": 1})
            votes = p.annotations()
        assert votes["label"].tolist() == ["institutional", "park"]
        assert set(votes["annotator"]) == {"sagemaker:landuse-1"}
        assert votes["created_at"].iloc[0] == "2024-05-01T09:00:00.000000+00:00"

    def test_class_map_that_does_not_match(self, project_path, tmp_path):
        records = self._manifest(project_path, tmp_path, items=PARCELS[:1])
        file = tmp_path / "output.manifest"
        file.write_text(gt_line(records[0], 0, {"0": "Farmland", "1": "park"}, None) + "\n")
        with (
            Project.open(project_path) as p,
            pytest.raises(AnnotationImportError, match="class-map names Farmland"),
        ):
            import_file(p, file, "sagemaker")
        file.write_text(gt_line(records[0], 0, {"0": "park"}, "water") + "\n")
        with Project.open(project_path) as p:
            with pytest.raises(AnnotationImportError, match="class-map says index 0 is 'park'"):
                import_file(p, file, "sagemaker")
            assert len(p.annotations()) == 0

    def test_segmentation_output_manifest(self, project_path, tmp_path):
        tile = "S001_r000000_c000256"
        record = self._manifest(project_path, tmp_path, kind="tile", items=[tile])[0]
        with Project.open(project_path) as p:
            taxonomy = p.current_taxonomy()
        with rasterio.open(TRUTH_MASK) as src:
            truth = src.read(1, window=((0, 256), (256, 512)))
        colours = {"park": "#2ca02c", "residential": "#ff7f0e"}
        png = np.full((3, 256, 256), 255, dtype=np.uint8)
        for label, colour in colours.items():
            rgb = [int(colour[i : i + 2], 16) for i in (1, 3, 5)]
            png[:, truth == taxonomy.code_of(label)] = np.array(rgb)[:, None]
        mask_dir = tmp_path / "output" / "masks"
        mask_dir.mkdir(parents=True)
        with rasterio.open(
            mask_dir / "mask-0.png",
            "w",
            driver="PNG",
            width=256,
            height=256,
            count=3,
            dtype="uint8",
        ) as dst:
            dst.write(png)
        meta = {
            "internal-color-map": {
                "0": {"class-name": "BACKGROUND", "hex-color": "#ffffff", "confidence": 0.0},
                "1": {"class-name": "park", "hex-color": colours["park"], "confidence": 0.8},
                "2": {
                    "class-name": "residential",
                    "hex-color": colours["residential"],
                    "confidence": 0.7,
                },
            },
            "type": "groundtruth/semantic-segmentation",
            "human-annotated": "yes",
            "creation-date": "2024-05-02T09:00:00.000000",
            "job-name": "labeling-job/tiles-1",
        }
        line = {
            **record,
            "tiles-ref": "s3://bucket/output/masks/mask-0.png",
            "tiles-ref-metadata": meta,
        }
        file = tmp_path / "output.manifest"
        file.write_text(json.dumps(line) + "\n")
        with Project.open(project_path) as p:
            result = import_file(p, file, "sagemaker")
            regions = segment_annotations(p, tile)
        assert result.n_segments == sum(
            (truth == taxonomy.code_of(label)).any() for label in colours
        )
        transform = Affine(*record["geolabel_transform"])
        mask = segment_mask(regions, transform, (256, 256), taxonomy.codes)
        for label in colours:
            code = taxonomy.code_of(label)
            assert np.array_equal(mask == code, truth == code)


# ------------------------------------------------------------------------------ GIS


@pytest.fixture
def labeled_project(project_path, tmp_path) -> Path:
    tasks = TestLabelStudioImport()._export(project_path, tmp_path / "tasks")
    file = write_json(tmp_path / "export.json", parcel_export(tasks))
    with Project.open(project_path) as p:
        import_file(p, file, "labelstudio")
        aggregate_project(p, method="mv")
    return project_path


class TestGis:
    @pytest.mark.parametrize("suffix", [".gpkg", ".geojson", ".parquet"])
    def test_labeled_parcels_open_with_their_columns(self, labeled_project, tmp_path, suffix):
        out = tmp_path / f"parcels{suffix}"
        with Project.open(labeled_project) as p:
            result = export_gis(p, out)
        if suffix == ".parquet":
            gdf = gpd.read_parquet(out)
        else:
            gdf = pyogrio.read_dataframe(out)
            info = pyogrio.read_info(out)
            assert info["features"] == 286
        assert result.n_tasks == len(gdf) == 286
        for column in (
            "parcel_id",
            "label",
            "confidence",
            "agreement",
            "taxonomy_version",
            "review_status",
        ):
            assert column in gdf.columns
        epsg = 4326 if suffix == ".geojson" else 32610
        assert gdf.crs.to_epsg() == epsg
        row = gdf.set_index("parcel_id").loc["P0001"]
        assert row["label"] == TRUTH["P0001"]
        assert row["agreement"] == pytest.approx(2 / 3)
        assert row["review_status"] == "unreviewed"
        assert gdf.set_index("parcel_id").loc["P0100", "review_status"] == "unlabeled"
        if suffix == ".geojson":
            assert -123 < gdf.total_bounds[0] < -121  # longitude first, RFC 7946

    def test_class_and_confidence_cogs(self, labeled_project, tmp_path):
        with Project.open(labeled_project) as p:
            result = export_label_maps(p, tmp_path / "maps")
            codes = p.current_taxonomy().codes
            parcel = p.read_layer("parcels", where="parcel_id = 'P0001'").geometry.iloc[0]
        classes, confidence = (Path(x) for x in result.paths)
        with rasterio.open(classes) as src:
            assert src.profile["tiled"] and src.overviews(1) and src.nodata == 0
            assert src.crs.to_epsg() == 32610
            x, y = parcel.representative_point().coords[0]
            row, col = src.index(x, y)
            data = src.read(1)
            assert data[row, col] == codes[str(TRUTH["P0001"])]
            assert set(np.unique(data)) <= {0, *codes.values()}
        with rasterio.open(confidence) as src:
            values = src.read(1)
            assert np.isnan(values[0, 0]) or values[0, 0] <= 1
            assert 0 < values[row, col] <= 1

    def test_unknown_gis_suffix(self, project_path, tmp_path):
        with Project.open(project_path) as p, pytest.raises(InputFileError, match=r"x\.shp"):
            export_gis(p, tmp_path / "x.shp")


# ------------------------------------------------------------------------------ CLI


class TestCli:
    def test_export_and_import_label_studio(self, project_path, tmp_path):
        out = tmp_path / "ls"
        result = runner.invoke(
            app,
            [
                "export",
                str(project_path),
                "--format",
                "labelstudio",
                "-o",
                str(out),
                "--item",
                "P0001",
                "--item",
                "P0002",
                "--json",
            ],
        )
        assert result.exit_code == 0, result.output
        record = json.loads(result.stdout.strip().splitlines()[-1])
        assert record["n_tasks"] == 2
        tasks = json.loads((out / "parcel_tasks.json").read_text())
        file = write_json(tmp_path / "export.json", parcel_export(tasks))
        result = runner.invoke(
            app, ["import", str(project_path), str(file), "--format", "labelstudio"]
        )
        assert result.exit_code == 0, result.output
        assert "imported 6 new annotation(s)" in result.output
        result = runner.invoke(
            app, ["import", str(project_path), str(file), "--format", "labelstudio"]
        )
        assert "already imported" in result.output

    def test_bad_import_exits_1_without_traceback(self, project_path, tmp_path):
        file = tmp_path / "cut.json"
        file.write_text('[{"id": 1, "data": {')
        result = runner.invoke(
            app, ["import", str(project_path), str(file), "--format", "labelstudio"]
        )
        assert result.exit_code == 1
        assert "Traceback" not in result.output
        assert "truncated" in result.output

    def test_gis_export(self, labeled_project, tmp_path):
        out = tmp_path / "parcels.geojson"
        result = runner.invoke(
            app, ["export", str(labeled_project), "--format", "geojson", "-o", str(out)]
        )
        assert result.exit_code == 0, result.output
        assert pyogrio.read_info(out)["features"] == 286

    def test_label_studio_export_with_gold(self, project_path, tmp_path):
        gold = tmp_path / "gold.csv"
        gold.write_text(f"item,label\nP0002,{TRUTH['P0002']}\n")
        args = ["export", str(project_path), "--format", "labelstudio", "--gold", str(gold)]
        result = runner.invoke(app, [*args, "-o", str(tmp_path / "ls"), "--item", "P0002"])
        assert result.exit_code == 0, result.output
        assert "1 gold" in result.output
        task = json.loads((tmp_path / "ls" / "parcel_tasks.json").read_text())[0]
        assert task["annotations"][0]["ground_truth"] is True
        # Formats that cannot carry gold say so instead of dropping it.
        args[3] = "sagemaker"
        result = runner.invoke(app, [*args, "-o", str(tmp_path / "sm"), "--url-prefix", "s3://b/"])
        assert result.exit_code == 2 and "--gold goes out with labelstudio" in result.output
        assert not (tmp_path / "sm").exists()

    def test_platform_export_needs_url_prefix(self, project_path, tmp_path):
        result = runner.invoke(
            app, ["export", str(project_path), "--format", "toloka", "-o", str(tmp_path)]
        )
        assert result.exit_code == 2
        assert "--url-prefix" in result.output

    def test_tile_shapes_option(self, project_path, tmp_path):
        args = ["export", str(project_path), "--format", "labelstudio", "--kind", "tile"]
        args += ["--item", "S001_r000000_c000000", "--class-map", str(TRUTH_MASK)]
        result = runner.invoke(app, [*args, "-o", str(tmp_path), "--shape", "polygon"])
        assert result.exit_code == 0, result.output
        task = json.loads((tmp_path / "tile_tasks.json").read_text())[0]
        assert {r["type"] for r in task["predictions"][0]["result"]} == {"polygonlabels"}
        result = runner.invoke(app, [*args, "-o", str(tmp_path), "--shape", "circle"])
        assert result.exit_code == 1
        assert "'brush' and/or 'polygon'" in result.output

    def test_notice_tasks_with_ner_prelabels(self, project_path, tmp_path):
        result = runner.invoke(
            app,
            [
                "export",
                str(project_path),
                "--format",
                "labelstudio",
                "--kind",
                "notice",
                "--item",
                "N0001",
                "--ner",
                "--taxonomy",
                str(NOTICE_TAXONOMY),
                "-o",
                str(tmp_path),
            ],
        )
        assert result.exit_code == 0, result.output
        task = json.loads((tmp_path / "notice_tasks.json").read_text())[0]
        prediction = task["predictions"][0]
        assert prediction["model_version"]
        text = task["data"]["text"]
        labels = set(load_taxonomy(NOTICE_TAXONOMY).class_ids)
        for r in prediction["result"]:
            value = r["value"]
            assert r["type"] == "labels" and value["labels"][0] in labels
            assert text[value["start"] : value["end"]] == value["text"]
