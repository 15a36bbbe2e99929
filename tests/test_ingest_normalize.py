"""Tests of geolabel.ingest.normalize and geolabel.ingest.dedupe."""

from __future__ import annotations

from datetime import date

import pytest
from shapely.geometry import LineString, Polygon

from geolabel.errors import IngestConfigError
from geolabel.ingest.config import SourceConfig
from geolabel.ingest.dedupe import Deduplicator, jaccard, shingles
from geolabel.ingest.normalize import (
    clean_text,
    content_hash,
    normalize_address,
    normalize_notice,
    normalize_parcel,
    parse_date,
    repair_geometry,
)
from geolabel.ingest.records import RawRecord
from tests.ingest_helpers import sample_notices

TODAY = date(2025, 6, 1)
CONFIG = SourceConfig(name="s", kind="csv", location="x.csv", timezone="America/Los_Angeles")


class TestCleanText:
    def test_sample_texts_are_fixed_points(self) -> None:
        for n in sample_notices():
            assert clean_text(n["text"]) == n["text"]

    def test_entities_whitespace_and_paragraphs(self) -> None:
        raw = "  Pine&nbsp;St. &amp; 4th\tAve.\r\n\r\n\r\n\r\n  Second   para \u00a0\nline  "
        assert clean_text(raw) == "Pine St. & 4th Ave.\n\nSecond para\nline"
        assert clean_text(clean_text(raw)) == clean_text(raw)


class TestParseDate:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("2025-01-08", ("2025-01-08", None)),
            ("2025-01-08T00:00:00.000", ("2025-01-08", None)),
            ("2025-01-08T09:30:00", ("2025-01-08", "2025-01-08T09:30:00-08:00")),
            ("2025-01-08T05:00:00Z", ("2025-01-07", "2025-01-07T21:00:00-08:00")),
            ("Tue, 14 Jan 2025 17:30:00 GMT", ("2025-01-14", "2025-01-14T09:30:00-08:00")),
            ("January 8, 2025", ("2025-01-08", None)),
            ("01/08/2025", ("2025-01-08", None)),
            (1736359200000, ("2025-01-08", "2025-01-08T10:00:00-08:00")),
            ("2025-07-04T12:00:00", ("2025-07-04", "2025-07-04T12:00:00-07:00")),
        ],
    )
    def test_forms(self, value: object, expected: tuple[str, str | None]) -> None:
        parsed = parse_date(value, "America/Los_Angeles")
        assert (parsed.date, parsed.timestamp) == expected

    def test_dayfirst(self) -> None:
        assert parse_date("01/08/2025", dayfirst=True).date == "2025-08-01"

    @pytest.mark.parametrize("value", ["2025-02-30", "31/31/2025", "soon", "3025-01-01", "42"])
    def test_impossible(self, value: str) -> None:
        with pytest.raises(ValueError):
            parse_date(value)


class TestNormalizeAddress:
    def test_same_normaliser_as_the_linker(self) -> None:
        from geolabel.text.linking import normalize_street

        assert normalize_address("1420 N. Oak St.") == "1420 " + normalize_street("N. Oak St.")
        assert normalize_address("22-28 High St") == "22-28 high street"
        assert normalize_address("Elm Rd from 3rd Ave to 7th Ave") == (
            "elm road between 3rd avenue and 7th avenue"
        )
        assert normalize_address("Oak Street and Third Avenue") == "oak street and 3rd avenue"


class TestNormalizeNotice:
    def record(self, **fields: object) -> RawRecord:
        return RawRecord(fields, "x.csv:2")

    def test_mapping_aliases_and_values(self) -> None:
        config = SourceConfig(
            name="s",
            kind="csv",
            location="x",
            fields={"text": "Body"},
            values={"kind": {"BP": "building_permit"}},
        )
        notice, problems = normalize_notice(
            self.record(ID="N1", Body="A" * 50, TYPE="BP", Subject=" T "), config, today=TODAY
        )
        assert notice is not None and problems == []
        assert (notice.notice_id, notice.kind, notice.title) == ("N1", "building_permit", "T")

    @pytest.mark.parametrize(
        ("fields", "code"),
        [
            ({"id": "1", "body": ""}, "empty_text"),
            ({"id": "1", "body": "Too short"}, "short_text"),
            ({"id": "1", "headline": "no text"}, "missing_field"),
            ({"id": "1", "text": 5}, "wrong_type"),
            ({"id": "1", "text": "x" * 50, "date": "2025-02-30"}, "impossible_date"),
        ],
    )
    def test_dropped(self, fields: dict[str, object], code: str) -> None:
        notice, problems = normalize_notice(self.record(**fields), CONFIG, today=TODAY)
        assert notice is None
        assert [(p.code, p.dropped) for p in problems] == [(code, True)]

    def test_future_date_is_kept_with_a_note(self) -> None:
        notice, problems = normalize_notice(
            self.record(id="1", text="x" * 50, date="2025-06-02"), CONFIG, today=TODAY
        )
        assert notice is not None and notice.published == "2025-06-02"
        assert [(p.code, p.dropped) for p in problems] == [("future_date", False)]

    def test_missing_id_is_generated_from_content(self) -> None:
        notice, problems = normalize_notice(self.record(text="x" * 50), CONFIG, today=TODAY)
        assert notice is not None and notice.notice_id.startswith("s-")
        assert problems[0].code == "generated_id"

    def test_content_hash_ignores_case_and_punctuation(self) -> None:
        assert content_hash("T", "Pine St. closed") == content_hash("t", "pine st closed!")
        assert content_hash("T", "Pine St closed") != content_hash("T", "Elm St closed")


class TestGeometry:
    def test_repair_bowtie(self) -> None:
        fixed, note = repair_geometry(Polygon([(0, 0), (2, 2), (2, 0), (0, 2)]))
        assert fixed is not None and fixed.is_valid and fixed.area == pytest.approx(2.0)
        assert note is not None and note.startswith("repaired: Self-intersection")

    def test_reject(self) -> None:
        assert repair_geometry(LineString([(0, 0), (1, 1)]))[1] == (
            "rejected: a LineString, not a polygon"
        )
        assert repair_geometry(Polygon())[0] is None

    def test_wkt_table_needs_a_crs(self) -> None:
        config = SourceConfig(name="s", kind="csv", location="x", record="parcel")
        raw = RawRecord({"parcel_id": "A", "wkt": "POLYGON ((0 0, 1 0, 1 1, 0 0))"}, "x:2")
        with pytest.raises(IngestConfigError, match="no CRS; set crs"):
            normalize_parcel(raw, config, project_crs="EPSG:32610")
        parcel, _ = normalize_parcel(
            raw,
            SourceConfig(name="s", kind="csv", location="x", record="parcel", crs="EPSG:32610"),
            project_crs="EPSG:32610",
        )
        assert parcel is not None and parcel.geometry.area == pytest.approx(0.5)

    def test_bad_wkt_rejected(self) -> None:
        config = SourceConfig(name="s", kind="csv", location="x", record="parcel", crs="EPSG:32610")
        raw = RawRecord({"parcel_id": "A", "wkt": "POLYGON ((0 0, 1"}, "x:2")
        parcel, problems = normalize_parcel(raw, config, project_crs="EPSG:32610")
        assert parcel is None and problems[0].code == "geometry_rejected"


class TestDeduplicator:
    def test_shingles_and_jaccard(self) -> None:
        assert shingles("a b c", k=5) == frozenset({"a b c"})
        assert len(shingles("one two three four five six", k=5)) == 2
        assert jaccard(frozenset(), frozenset()) == 0.0

    def test_exact_near_and_new(self) -> None:
        texts = [n["text"] for n in sample_notices()]
        dedupe = Deduplicator(0.75, 5)
        dedupe.seed([("N1", "h1", texts[0])])
        assert dedupe.check("X", "h1", texts[0]).kind == "exact"  # type: ignore[union-attr]
        near = dedupe.check("R1", "h2", texts[0].replace("January 15", "January 29"))
        assert near is not None and near.kind == "near" and near.canonical_id == "N1"
        assert near.stored
        assert all(dedupe.check(f"N{i}", f"n{i}", t) is None for i, t in enumerate(texts[1:]))

    def test_distinct_sample_notices_are_not_near_duplicates(self) -> None:
        dedupe = Deduplicator(0.75, 5)
        matches = [dedupe.check(str(i), str(i), n["text"]) for i, n in enumerate(sample_notices())]
        assert matches == [None] * 200

    def test_exact_only(self) -> None:
        dedupe = Deduplicator(None)
        assert dedupe.check("a", "h", "text") is None
        assert dedupe.check("b", "h2", "text") is None
