"""Tests for geolabel.text.data: annotated formats, notice files and every bad input."""

from __future__ import annotations

import json

import pytest

from geolabel.errors import (
    ColumnError,
    EncodingError,
    InputFileError,
    NoticeTooLongError,
    SpanError,
)
from geolabel.text.data import (
    read_annotated,
    read_notice_records,
    read_sample_annotations,
    read_text_file,
)
from geolabel.text.pipeline import MAX_NOTICE_CHARS

TEXT = "Close 1420 Oak Street on March 3, 2025."


def _write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


class TestReadAnnotated:
    def test_jsonl(self, tmp_path):
        path = _write_jsonl(
            tmp_path / "a.jsonl",
            [
                {
                    "notice_id": "A1",
                    "text": TEXT,
                    "entities": [
                        {"start": 25, "end": 38, "label": "DATE"},
                        {"start": 6, "end": 21, "label": "ADDRESS", "text": "1420 Oak Street"},
                    ],
                }
            ],
        )
        data = read_annotated(path)
        assert data.fmt == "jsonl"
        (notice,) = data.notices
        assert notice.notice_id == "A1"
        assert [(e.text, e.label) for e in notice.entities] == [
            ("1420 Oak Street", "ADDRESS"),
            ("March 3, 2025", "DATE"),
        ]

    def test_prodigy_keeps_only_accepted(self, tmp_path):
        span = {"start": 6, "end": 21, "label": "ADDRESS", "token_start": 1, "token_end": 3}
        path = _write_jsonl(
            tmp_path / "p.jsonl",
            [
                {"text": TEXT, "spans": [span], "answer": "accept", "_input_hash": 1},
                {"text": TEXT, "spans": [], "answer": "reject", "_input_hash": 2},
                {"text": TEXT, "spans": [], "answer": "ignore", "_input_hash": 3},
            ],
        )
        data = read_annotated(path)
        assert (data.fmt, len(data.notices), data.n_skipped) == ("prodigy", 1, 2)
        assert data.notices[0].entities[0].text == "1420 Oak Street"

    def test_label_studio(self, tmp_path):
        result = {
            "value": {"start": 6, "end": 21, "text": "1420 Oak Street", "labels": ["ADDRESS"]},
            "from_name": "label",
            "to_name": "text",
            "type": "labels",
        }
        tasks = [
            {"id": 7, "data": {"text": TEXT}, "annotations": [{"result": [result]}]},
            {"id": 8, "data": {"text": TEXT}, "annotations": [{"was_cancelled": True}]},
            {"id": 9, "data": {"text": TEXT}, "annotations": []},
        ]
        path = tmp_path / "ls.json"
        path.write_text(json.dumps(tasks), encoding="utf-8")
        data = read_annotated(path)
        assert (data.fmt, len(data.notices), data.n_skipped) == ("label-studio", 1, 2)
        assert data.notices[0].notice_id == "7"
        assert data.notices[0].entities[0].label == "ADDRESS"

    def test_sample(self, sample_dir):
        data = read_sample_annotations(sample_dir)
        assert len(data.notices) == 200
        assert sum(len(n.entities) for n in data.notices) == 1305

    @pytest.mark.parametrize(
        ("entities", "message"),
        [
            ([{"start": 6, "end": 999, "label": "ADDRESS"}], "outside the text"),
            ([{"start": 6, "end": 21, "label": "ADDRESS", "text": "Oak"}], "fix the offsets"),
            (
                [
                    {"start": 6, "end": 21, "label": "ADDRESS"},
                    {"start": 11, "end": 21, "label": "ADDRESS"},
                ],
                "overlap",
            ),
            ([{"start": 6, "label": "ADDRESS"}], "needs integer"),
            ([{"start": 6, "end": 21, "label": "address"}], "upper-case"),
        ],
    )
    def test_bad_spans(self, tmp_path, entities, message):
        path = _write_jsonl(tmp_path / "bad.jsonl", [{"text": TEXT, "entities": entities}])
        with pytest.raises(SpanError, match=message):
            read_annotated(path)

    def test_unknown_format(self, tmp_path):
        path = _write_jsonl(tmp_path / "x.jsonl", [{"body": TEXT}])
        with pytest.raises(InputFileError, match="cannot tell the annotation format"):
            read_annotated(path)


class TestReadNoticeRecords:
    def test_jsonl_keeps_fields(self, tmp_path):
        path = _write_jsonl(tmp_path / "n.jsonl", [{"notice_id": "X", "text": TEXT, "kind": "k"}])
        (record,) = read_notice_records(path)
        assert record.notice_id == "X"
        assert record.fields == {"notice_id": "X", "text": TEXT, "kind": "k"}

    def test_csv_with_text_column(self, tmp_path):
        path = tmp_path / "n.csv"
        path.write_text(f'id,body\n1,"{TEXT}"\n2,"Second, with a comma"\n', encoding="utf-8")
        records = read_notice_records(path, text_column="body")
        assert [r.notice_id for r in records] == ["1", "2"]
        assert records[1].text == "Second, with a comma"

    def test_text_file_is_one_notice(self, tmp_path):
        path = tmp_path / "hearing.txt"
        path.write_text(TEXT, encoding="utf-8")
        (record,) = read_notice_records(path)
        assert (record.notice_id, record.text) == ("hearing", TEXT)

    def test_html_is_kept_as_text(self, tmp_path):
        markup = '<p onclick="alert(1)">Close <b>1420 Oak Street</b></p><script>x()</script>'
        path = _write_jsonl(tmp_path / "h.jsonl", [{"text": markup}])
        (record,) = read_notice_records(path)
        assert record.text == markup

    # ---- bad input -------------------------------------------------------------------

    def test_empty_file(self, tmp_path):
        path = tmp_path / "empty.jsonl"
        path.write_text("", encoding="utf-8")
        with pytest.raises(InputFileError, match=r"empty.jsonl is empty"):
            read_notice_records(path)

    def test_whitespace_only_file(self, tmp_path):
        path = tmp_path / "blank.txt"
        path.write_text("  \n\n", encoding="utf-8")
        with pytest.raises(InputFileError, match="is empty"):
            read_notice_records(path)

    def test_non_utf8_is_named(self, tmp_path):
        path = tmp_path / "latin.txt"
        path.write_bytes("Caf\u00e9 at 12 Rue Street".encode("cp1252"))
        with pytest.raises(EncodingError, match=r"not UTF-8.*0xe9 at offset 3 \(line 1\).*iconv"):
            read_notice_records(path)

    def test_utf16_is_named(self, tmp_path):
        path = tmp_path / "wide.txt"
        path.write_bytes(TEXT.encode("utf-16"))
        with pytest.raises(EncodingError, match="UTF-16"):
            read_text_file(path)

    def test_huge_notice_is_refused(self, tmp_path):
        path = _write_jsonl(tmp_path / "big.jsonl", [{"text": "x " * MAX_NOTICE_CHARS}])
        with pytest.raises(NoticeTooLongError, match="over the limit of 100,000"):
            read_notice_records(path)

    def test_limit_can_be_raised(self, tmp_path):
        path = _write_jsonl(tmp_path / "big.jsonl", [{"text": "x " * 60_000}])
        assert len(read_notice_records(path, max_chars=200_000)) == 1

    def test_csv_without_text_column(self, tmp_path):
        path = tmp_path / "n.csv"
        path.write_text("id,body\n1,hello\n", encoding="utf-8")
        with pytest.raises(
            ColumnError, match=r"no 'text' column.*columns: id, body.*--text-column"
        ):
            read_notice_records(path)

    def test_jsonl_without_text_field(self, tmp_path):
        path = _write_jsonl(tmp_path / "n.jsonl", [{"body": TEXT}])
        with pytest.raises(ColumnError, match=r"n.jsonl:1 has no 'text' field"):
            read_notice_records(path)

    def test_blank_text(self, tmp_path):
        path = _write_jsonl(tmp_path / "n.jsonl", [{"text": "   "}])
        with pytest.raises(ColumnError, match="is blank"):
            read_notice_records(path)

    def test_bad_json_line(self, tmp_path):
        path = tmp_path / "n.jsonl"
        path.write_text('{"text": "ok"}\n{"text": \n', encoding="utf-8")
        with pytest.raises(InputFileError, match=r"n.jsonl:2 is not valid JSON"):
            read_notice_records(path)

    def test_duplicate_ids(self, tmp_path):
        path = _write_jsonl(
            tmp_path / "n.jsonl", [{"id": "1", "text": "a"}, {"id": "1", "text": "b"}]
        )
        with pytest.raises(ColumnError, match="appears twice"):
            read_notice_records(path)

    def test_missing_file(self, tmp_path):
        with pytest.raises(InputFileError, match="does not exist"):
            read_notice_records(tmp_path / "nope.jsonl")
