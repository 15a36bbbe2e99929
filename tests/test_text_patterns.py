"""Tests for geolabel.text.patterns: the span-ruler patterns and the committed JSONL."""

from __future__ import annotations

import json

import pytest

from geolabel.errors import InputFileError
from geolabel.text.extract import doc_entities
from geolabel.text.patterns import PATTERNS_PATH, build_patterns, load_patterns, write_patterns
from geolabel.text.pipeline import build_rules_pipeline


@pytest.fixture(scope="module")
def rules():
    return build_rules_pipeline()


def _spans(rules, text):
    return [(e.text, e.label) for e in doc_entities(rules(text))]


class TestPatternFile:
    def test_committed_file_is_current(self, tmp_path):
        target = tmp_path / "patterns.jsonl"
        write_patterns(target)
        assert target.read_bytes() == PATTERNS_PATH.read_bytes(), (
            "run `python -m geolabel.text.patterns` to regenerate the pattern file"
        )

    def test_round_trip(self):
        assert load_patterns() == [json.loads(json.dumps(p)) for p in build_patterns()]

    def test_every_pattern_has_label_and_id(self):
        for pattern in build_patterns():
            assert pattern["label"] in {"ADDRESS", "PARCEL_ID", "DATE", "ZONING", "ORG", "PROJECT"}
            assert pattern["id"]

    def test_bad_file(self, tmp_path):
        bad = tmp_path / "bad.jsonl"
        bad.write_text('{"label": "DATE"}\n', encoding="utf-8")
        with pytest.raises(InputFileError, match="needs 'label' and 'pattern'"):
            load_patterns(bad)
        with pytest.raises(InputFileError, match="cannot read"):
            load_patterns(tmp_path / "missing.jsonl")


class TestRules:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("on March 3, 2025, at 7:00 PM", [("March 3, 2025", "DATE"), ("7:00 PM", "DATE")]),
            ("from 1 June to 30 September 2025 daily", [("1 June to 30 September 2025", "DATE")]),
            ("between 9 a.m. and 4 p.m. each day", [("9 a.m. and 4 p.m.", "DATE")]),
            ("Hours: 9 a.m.–4 p.m.", [("9 a.m.–4 p.m.", "DATE")]),
            ("Issued: Wed., January 15, 2025", [("Wed., January 15, 2025", "DATE")]),
            ("due 03/03/2025 and 2025-03-10", [("03/03/2025", "DATE"), ("2025-03-10", "DATE")]),
            ("by Apri1 22, 2025 (OCR)", [("Apri1 22, 2025", "DATE")]),
            ("Ordinance No. 2025-11", []),
            ("Monday through Friday", []),
            (
                "APN 123-456-789 and APN: 123456789",
                [("123-456-789", "PARCEL_ID"), ("123456789", "PARCEL_ID")],
            ),
            ("Assessor's Parcel No. 412-001-001", [("412-001-001", "PARCEL_ID")]),
            ("known as Block 12, Lot 4", [("Block 12, Lot 4", "PARCEL_ID")]),
            ("Lot 1: parks; Lot 2: verges", []),
            ("rezone from R-2 to MU-3", [("R-2", "ZONING"), ("MU-3", "ZONING")]),
            ("zoned P and zoned OS", [("P", "ZONING"), ("OS", "ZONING")]),
            ("ZONING MAP AMENDMENT", []),
            ("Case BZA-25-001", []),
            ("the 1420 Oak Street site", [("1420 Oak Street", "ADDRESS")]),
            ("at 504 Birch St.", [("504 Birch St.", "ADDRESS")]),
            ("at 504 Birch Street.", [("504 Birch Street", "ADDRESS")]),
            (
                "Elm Road between 3rd and 7th Street",
                [("Elm Road between 3rd and 7th Street", "ADDRESS")],
            ),
            (
                "Oak St between 3rd Ave and 6th Ave.",
                [("Oak St between 3rd Ave and 6th Ave", "ADDRESS")],
            ),
            ("Main St/5th Ave is closed", [("Main St/5th Ave", "ADDRESS")]),
            (
                "the intersection of Oak Street and 3rd Avenue",
                [("Oak Street and 3rd Avenue", "ADDRESS")],
            ),
            ("via Pike Street, Market Street and Dale Road", []),
            ("the 400 block of Elm Street", [("400 block of Elm Street", "ADDRESS")]),
            ("land at 22-28 High Street", [("22-28 High Street", "ADDRESS")]),
            ("a 5 acre park", []),
            ("traffic detoured via Birch Street.", []),
        ],
    )
    def test_rule_spans(self, rules, text, expected):
        assert _spans(rules, text) == expected

    def test_lead_words_are_trimmed(self, rules):
        doc = rules("APN: 123456789")
        assert [e.text for e in doc.ents] == ["123456789"]
        assert [s.text for s in doc.spans["rules"]] == ["APN: 123456789"]

    def test_rule_entities_carry_their_pattern(self, rules):
        doc = rules("at 1420 Oak Street on 2025-03-03")
        assert [e.id_ for e in doc.ents] == ["rule:address-number", "rule:date"]
