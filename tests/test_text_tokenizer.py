"""Tests for geolabel.text.tokenizer: the notice tokenizer adjustments."""

from __future__ import annotations

import pytest
import spacy
from spacy.util import registry

from geolabel.text.data import read_sample_annotations
from geolabel.text.tokenizer import customize_tokenizer


@pytest.fixture(scope="module")
def nlp():
    pipeline = spacy.blank("en")
    pipeline.tokenizer = customize_tokenizer(pipeline)
    return pipeline


def _tokens(nlp, text):
    return [t.text for t in nlp(text)]


class TestNoticeTokenizer:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("Main St/5th Ave", ["Main", "St", "/", "5th", "Ave"]),
            ("Oak Street- and Elm", ["Oak", "Street", "-", "and", "Elm"]),
            ("APN:123-456-789", ["APN", ":", "123-456-789"]),
            ("APN#123456789", ["APN", "#", "123456789"]),
            ("No.123-456-789", ["No", ".", "123-456-789"]),
            ("(123-456-789).", ["(", "123-456-789", ")", "."]),
            ("2025-03-03.", ["2025-03-03", "."]),
            ("Block 12,Lot 4", ["Block", "12", ",", "Lot", "4"]),
            ("9 a.m.–4 p.m.", ["9", "a.m.", "–", "4", "p.m."]),
            ("8:00 AM–4:00 PM", ["8:00", "AM", "–", "4:00", "PM"]),
            ("7:00PM", ["7:00", "PM"]),
            ("BZA-25-001.", ["BZA-25-001", "."]),
            ("Wed., March 5", ["Wed", ".", ",", "March", "5"]),
            ("by Ridgeway Ltd.", ["by", "Ridgeway", "Ltd", "."]),
        ],
    )
    def test_adjusted_cases(self, nlp, text, expected):
        assert _tokens(nlp, text) == expected

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("03/03/2025", ["03/03/2025"]),
            ("24/01234/FUL", ["24/01234", "/", "FUL"]),
            ("1-5 June", ["1", "-", "5", "June"]),
            ("call 012-4708", ["call", "012", "-", "4708"]),
            ("R-2/C-1", ["R-2", "/", "C-1"]),
            ("12–14 High St", ["12–14", "High", "St"]),
        ],
    )
    def test_unchanged_cases(self, nlp, text, expected):
        assert _tokens(nlp, text) == expected

    def test_default_tokenizer_differs(self):
        default = spacy.blank("en")
        assert _tokens(default, "Main St/5th Ave") != ["Main", "St", "/", "5th", "Ave"]
        assert "123-456-789" not in _tokens(default, "APN:123-456-789")

    def test_every_sample_gold_span_aligns(self, nlp, sample_dir):
        data = read_sample_annotations(sample_dir)
        misaligned = [
            (n.notice_id, e.text)
            for n in data.notices
            for e in n.entities
            if nlp(n.text).char_span(e.start, e.end) is None
        ]
        assert misaligned == []

    def test_registered_for_configs(self):
        factory = registry.tokenizers.get("geolabel.notice_tokenizer.v1")()
        pipeline = spacy.blank("en")
        assert [t.text for t in factory(pipeline)("St/5th")] == ["St", "/", "5th"]

    def test_survives_serialisation(self, nlp):
        copy = spacy.blank("en")
        copy.tokenizer.from_bytes(nlp.tokenizer.to_bytes())
        assert _tokens(copy, "APN:123-456-789") == ["APN", ":", "123-456-789"]
