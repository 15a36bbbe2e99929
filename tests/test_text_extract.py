"""Tests for geolabel.text.extract: extraction, outputs, per-parcel impacts, pre-labels."""

from __future__ import annotations

import json

import pytest

from geolabel.errors import NoticeTooLongError, PipelineError
from geolabel.text.extract import (
    IMPACT_COLUMNS,
    LINK_COLUMNS,
    extract_files,
    extract_notices,
    links_frame,
    parcel_impacts,
    prelabel_notices,
)
from geolabel.text.linking import Gazetteer
from geolabel.text.records import NoticeRecord

HEARING = (
    "The City Planning Commission will hold a public hearing on March 3, 2025, at 7:00 PM to "
    "consider rezoning 504 Birch St (APN 412-030-002) from R-2 to MU-3."
)
CLOSURE = "Oak Street from 1st Avenue to 3rd Avenue will be closed from June 1 to June 5, 2025."


@pytest.fixture(scope="module")
def gazetteer(sample_dir):
    return Gazetteer.from_file(sample_dir / "city.gpkg")


@pytest.fixture(scope="module")
def results(gazetteer):
    records = [
        NoticeRecord(
            "H1", HEARING, {"notice_id": "H1", "text": HEARING, "published": "2025-02-01"}
        ),
        NoticeRecord("C1", CLOSURE, {"notice_id": "C1", "text": CLOSURE, "kind": "street_closure"}),
        NoticeRecord("U1", "Works at 12 Nowhere Boulevard.", {}),
    ]
    return extract_notices(records, gazetteer=gazetteer, batch_size=2)


class TestExtractNotices:
    def test_entities_links_kind_and_dates(self, results):
        hearing = results[0]
        assert [(e.text, e.label) for e in hearing.entities if e.label != "ORG"] == [
            ("March 3, 2025", "DATE"),
            ("7:00 PM", "DATE"),
            ("504 Birch St", "ADDRESS"),
            ("412-030-002", "PARCEL_ID"),
            ("R-2", "ZONING"),
            ("MU-3", "ZONING"),
        ]
        assert hearing.parcel_ids == ("P0221",)
        assert hearing.kind == "zoning_hearing"  # guessed from the words
        assert hearing.dates == ("2025-03-03",)

    def test_segment_and_record_kind(self, results):
        closure = results[1]
        assert closure.kind == "street_closure"
        assert closure.parcel_ids == ("P0001", "P0002", "P0003")
        assert {link.method for link in closure.links} == {"segment"}
        assert closure.dates == ("2025-06-01", "2025-06-05")

    def test_unlinked_is_reported(self, results):
        assert [u.entity.text for u in results[2].unlinked] == ["12 Nowhere Boulevard"]

    def test_jsonl_record_keeps_input_fields(self, results):
        out = results[0].to_dict()
        assert out["published"] == "2025-02-01" and out["notice_id"] == "H1"
        assert out["parcels"] == ["P0221"]
        first = out["entities"][0]
        assert set(first) == {"start", "end", "label", "text"}
        assert HEARING[first["start"] : first["end"]] == first["text"]

    def test_parcel_impacts(self, results):
        impacts = parcel_impacts(results)
        assert list(impacts.columns) == list(IMPACT_COLUMNS)
        assert impacts["high_impact"].all()
        row = impacts.set_index("item").loc["P0221"]
        assert row["kinds"] == ["zoning_hearing"] and row["date_start"] == "2025-03-03"
        assert set(impacts["item"]) == {"P0221", "P0001", "P0002", "P0003"}

    def test_links_frame(self, results):
        frame = links_frame(results)
        assert list(frame.columns) == list(LINK_COLUMNS)
        assert len(frame) == sum(len(r.links) for r in results)

    def test_too_long(self):
        with pytest.raises(NoticeTooLongError, match="over the limit of 10"):
            extract_notices([NoticeRecord("X", "x" * 11)], max_chars=10)


class TestExtractFiles:
    def test_jsonl_out(self, tmp_path, gazetteer):
        src = tmp_path / "in.jsonl"
        src.write_text(json.dumps({"id": "a", "text": HEARING, "extra": [1, 2]}) + "\n", "utf-8")
        summary, _ = extract_files([src], tmp_path / "out.jsonl", gazetteer=gazetteer)
        (record,) = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
        assert record["extra"] == [1, 2] and record["id"] == "a"
        assert summary.n_parcels == 1 and summary.fmt == "jsonl"

    def test_geojson_out_is_wgs84_and_escapes_html(self, tmp_path, gazetteer):
        src = tmp_path / "in.csv"
        src.write_text(
            'notice_id,text\nh,"<script>alert(1)</script> Closure at 504 Birch St."\n',
            "utf-8",
        )
        extract_files([src], tmp_path / "out.geojson", gazetteer=gazetteer)
        layer = json.loads((tmp_path / "out.geojson").read_text())
        (feature,) = layer["features"]
        lon, lat = feature["geometry"]["coordinates"][0][0]
        assert -124 < lon < -121 and 37 < lat < 39  # UTM 10N sample city, in degrees
        assert feature["properties"]["parcels"] == ["P0221"]
        assert "<script>" in feature["properties"]["text"]  # kept as text
        assert "<script>" not in feature["properties"]["popup"]
        assert "&lt;script&gt;" in feature["properties"]["popup"]

    def test_geojson_needs_parcels(self, tmp_path):
        src = tmp_path / "n.txt"
        src.write_text(HEARING, "utf-8")
        with pytest.raises(PipelineError, match="GeoJSON output needs parcels"):
            extract_files([src], tmp_path / "out.geojson")


class TestPrelabels:
    def test_predictions_are_typed_records(self):
        (prediction,) = prelabel_notices([NoticeRecord("H1", HEARING)])
        assert prediction.item == "H1" and prediction.model_version == "geolabel_notices-1.0.0"
        assert len(prediction.sources) == len(prediction.spans)
        assert set(prediction.sources) <= {"rule", "model"}
        by_text = dict(zip([s.text for s in prediction.spans], prediction.sources, strict=True))
        assert by_text["412-030-002"] == "rule"
