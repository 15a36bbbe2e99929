"""Tests of geolabel.ingest.readers and geolabel.ingest.html: every file shape and its errors."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest

from geolabel.errors import EncodingError, IngestConfigError, InputFileError
from geolabel.ingest.config import SourceConfig
from geolabel.ingest.html import extract_page, html_to_text
from geolabel.ingest.readers import decode_bytes, read_file_source
from tests.conftest import DATA, SAMPLE
from tests.ingest_helpers import page_html, sample_notices

FEEDS = DATA / "ingest"


def source(path: Path, kind: str = "auto", **kw: object) -> SourceConfig:
    return SourceConfig(name="s", kind=kind, location=str(path), **kw)


class TestDecodeBytes:
    def test_utf8_with_bom(self) -> None:
        assert decode_bytes("\ufeffcafé".encode(), "auto", "f") == ("café", "utf-8")

    def test_cp1252_detected(self) -> None:
        assert decode_bytes("café – “quoted”".encode("cp1252"), "auto", "f") == (
            "café – “quoted”",
            "cp1252",
        )

    def test_utf16_refused(self) -> None:
        with pytest.raises(EncodingError, match="UTF-16"):
            decode_bytes("text".encode("utf-16"), "auto", "notes.txt")

    def test_neither_refused_with_the_byte(self) -> None:
        with pytest.raises(EncodingError, match=r"notes.csv is neither UTF-8 nor Windows-1252"):
            decode_bytes(b"ok \x81 bad \xff\xfe", "auto", "notes.csv")

    def test_explicit_encoding_mismatch(self) -> None:
        with pytest.raises(EncodingError, match="is not utf-8"):
            decode_bytes("café".encode("cp1252"), "utf-8", "f")


class TestExtractPage:
    def test_boilerplate_dropped_and_paragraphs_kept(self) -> None:
        notice = sample_notices()[0]
        page = extract_page(page_html(notice))
        assert page.title == notice["title"]
        assert page.published == notice["published"]
        assert page.meta["notice-id"] == notice["notice_id"]
        from geolabel.ingest.normalize import clean_text

        assert clean_text(page.text) == notice["text"]
        for junk in (
            "cookies",
            "Home",
            "Share on",
            "Related notices",
            "rights reserved",
            "analytics",
            "margin",
        ):
            assert junk not in page.text

    def test_body_without_article_uses_body(self) -> None:
        page = extract_page(
            "<html><head><title>T</title></head><body><nav>menu</nav><h1>Hearing</h1>"
            "<p>One &amp; two</p><div id='footer'>f</div></body></html>"
        )
        assert (page.title, page.text) == ("Hearing", "One & two")

    def test_fragment(self) -> None:
        assert html_to_text("<p>a<br>b</p><p>c</p><script>x</script>") == "a\nb\n\nc"


class TestTables:
    def test_csv_malformed_row_is_a_problem(self, tmp_path: Path) -> None:
        path = tmp_path / "n.csv"
        path.write_text("id,text\n1,hello\n2,too,many,fields\n")
        out = read_file_source(source(path))
        assert [r.fields["id"] for r in out.records] == ["1"]
        assert [p.code for p in out.problems] == ["malformed_row"]
        assert out.problems[0].origin == "n.csv:3"

    def test_csv_without_header(self, tmp_path: Path) -> None:
        path = tmp_path / "n.csv"
        path.write_text("\n")
        with pytest.raises(InputFileError, match="empty"):
            read_file_source(source(path))

    def test_xlsx(self, tmp_path: Path) -> None:
        path = tmp_path / "n.xlsx"
        pd.DataFrame(
            {"id": ["N1"], "text": ["A notice"], "date": [pd.Timestamp("2025-01-08")]}
        ).to_excel(path, index=False)
        out = read_file_source(source(path))
        assert out.records[0].fields == {
            "id": "N1",
            "text": "A notice",
            "date": "2025-01-08T00:00:00",
        }
        assert out.records[0].origin == "n.xlsx:2"

    def test_json_document_with_records_path(self, tmp_path: Path) -> None:
        path = tmp_path / "n.json"
        path.write_text(json.dumps({"meta": {}, "result": {"rows": [{"id": 1}, 5]}}))
        out = read_file_source(source(path, records_path="result.rows"))
        assert len(out.records) == 1 and out.problems[0].code == "malformed_record"
        with pytest.raises(InputFileError, match=r"no 'result\.nope'"):
            read_file_source(source(path, records_path="result.nope"))

    def test_json_not_parsing(self, tmp_path: Path) -> None:
        path = tmp_path / "n.json"
        path.write_text("{oops")
        with pytest.raises(InputFileError, match="not valid JSON"):
            read_file_source(source(path))

    def test_jsonl_bad_line_is_a_problem(self, tmp_path: Path) -> None:
        path = tmp_path / "n.jsonl"
        path.write_text('{"id": 1}\n{bad\n[1]\n\n{"id": 2}\n')
        out = read_file_source(source(path))
        assert len(out.records) == 2
        assert [p.code for p in out.problems] == ["malformed_json", "malformed_record"]


@pytest.fixture(scope="module")
def parcels() -> gpd.GeoDataFrame:
    return gpd.read_file(SAMPLE / "city.gpkg", layer="parcels").iloc[:3]


class TestVectors:
    def test_gpkg_layer(self) -> None:
        out = read_file_source(source(SAMPLE / "city.gpkg", layer="parcels", record="parcel"))
        assert len(out.records) == 286
        assert out.records[0].crs == "EPSG:32610"
        assert "geometry" not in out.records[0].fields

    def test_zipped_shapefile(self, tmp_path: Path, parcels: gpd.GeoDataFrame) -> None:
        shp = tmp_path / "shp" / "parcels.shp"
        shp.parent.mkdir()
        parcels[["parcel_id", "apn", "geometry"]].to_file(shp)
        archive = tmp_path / "parcels.zip"
        with zipfile.ZipFile(archive, "w") as z:
            for f in shp.parent.iterdir():
                z.write(f, f.name)
        out = read_file_source(source(archive, record="parcel"))
        assert [r.fields["parcel_id"] for r in out.records] == list(parcels["parcel_id"])
        assert out.records[0].geometry.equals(parcels.geometry.iloc[0])  # rings reoriented

    def test_not_a_vector_file(self, tmp_path: Path) -> None:
        path = tmp_path / "x.gpkg"
        path.write_text("not a geopackage")
        with pytest.raises(InputFileError, match="not a readable vector file"):
            read_file_source(source(path, record="parcel"))


class TestFeedsPagesText:
    def test_rss(self) -> None:
        out = read_file_source(source(FEEDS / "notices_feed.rss"))
        first = out.records[0].fields
        assert first["id"] == "F0001" and first["published"] == "Tue, 14 Jan 2025 17:30:00 GMT"
        assert first["text"].startswith("STREET CLOSURE NOTICE\n\nPine St.")
        assert "&" in first["text"] and "Share" not in first["text"]

    def test_atom(self) -> None:
        out = read_file_source(source(FEEDS / "notices_feed.atom"))
        (entry,) = out.records
        assert entry.fields["category"] == "planning_application"
        assert entry.fields["text"].endswith("Comments are due by February 3, 2025.")

    def test_not_a_feed(self, tmp_path: Path) -> None:
        path = tmp_path / "x.xml"
        path.write_text("<html><p>no</p></html>")
        with pytest.raises(InputFileError, match="neither an RSS"):
            read_file_source(source(path))

    def test_text_folder(self, tmp_path: Path) -> None:
        (tmp_path / "t").mkdir()
        (tmp_path / "t" / "b.txt").write_text("second")
        (tmp_path / "t" / "a.txt").write_bytes("caf\xe9".encode("latin-1"))
        out = read_file_source(source(tmp_path / "t", kind="text"))
        assert [r.fields["page"] for r in out.records] == ["a", "b"]
        assert out.records[0].fields["text"] == "café"
        assert out.encodings == {"cp1252": 1, "utf-8": 1}

    def test_empty_folder_and_missing_path(self, tmp_path: Path) -> None:
        with pytest.raises(InputFileError, match="holds no html files"):
            read_file_source(source(tmp_path, kind="html"))
        with pytest.raises(InputFileError, match="does not exist"):
            read_file_source(source(tmp_path / "nope.csv"))

    def test_folder_for_a_table_kind(self, tmp_path: Path) -> None:
        with pytest.raises(IngestConfigError, match="only html, text and feed"):
            read_file_source(source(tmp_path, kind="csv"))
