"""Tests for geolabel.text.pipeline: precedence between rules and model, loading pipelines."""

from __future__ import annotations

import pytest
import spacy
from spacy.tokens import Span

from geolabel.errors import PipelineError
from geolabel.text.patterns import load_patterns
from geolabel.text.pipeline import (
    SHIPPED_MODEL,
    load_pipeline,
    model_version,
    ocr_fuzzy_compare,
    rules_over_model,
    shipped_pipeline,
)
from geolabel.text.tokenizer import customize_tokenizer


@pytest.fixture(scope="module")
def make():
    nlp = spacy.blank("en")
    nlp.tokenizer = customize_tokenizer(nlp)
    return nlp


def _span(doc, text, label, span_id=""):
    start = doc.text.index(text)
    span = doc.char_span(start, start + len(text), label=label)
    assert span is not None, text
    return Span(doc, span.start, span.end, label=label, span_id=span_id)


def _result(spans):
    return [(s.text, s.label_) for s in spans]


class TestRulesOverModel:
    def test_model_entity_without_rule_overlap_is_kept(self, make):
        doc = make("Acme Paving Co. will pave 1420 Oak Street")
        out = rules_over_model(
            [_span(doc, "Acme Paving Co.", "ORG")], [_span(doc, "1420 Oak Street", "ADDRESS")]
        )
        assert _result(out) == [("Acme Paving Co.", "ORG"), ("1420 Oak Street", "ADDRESS")]

    def test_rule_wins_an_overlap(self, make):
        doc = make("work at 612 Old Forge Rd, Tax Parcel 50-00-01234")
        model = [_span(doc, "612 Old Forge Rd,", "ADDRESS")]
        rules = [_span(doc, "612 Old Forge Rd", "ADDRESS", "address-number")]
        assert _result(rules_over_model(model, rules)) == [("612 Old Forge Rd", "ADDRESS")]

    def test_model_dates_parcel_ids_and_zoning_are_dropped(self, make):
        doc = make("at 7:00 P.M. to consider Ordinance 2025")
        model = [_span(doc, "7:00 P.M. to consider Ordinance 2025", "DATE")]
        assert rules_over_model(model, []) == []

    def test_project_may_wrap_an_address(self, make):
        doc = make("the Oak Street and 3rd Avenue Signal Upgrade starts")
        model = [_span(doc, "Oak Street and 3rd Avenue Signal Upgrade", "PROJECT")]
        rules = [_span(doc, "Oak Street and 3rd Avenue", "ADDRESS", "address-intersection")]
        assert _result(rules_over_model(model, rules)) == [
            ("Oak Street and 3rd Avenue Signal Upgrade", "PROJECT")
        ]

    def test_name_with_the_same_extent_as_an_address_loses(self, make):
        doc = make("the junction of Hatch Road and Elder Avenue")
        model = [_span(doc, "Hatch Road and Elder Avenue", "PROJECT")]
        rules = [_span(doc, "Hatch Road and Elder Avenue", "ADDRESS", "address-intersection")]
        assert _result(rules_over_model(model, rules)) == [
            ("Hatch Road and Elder Avenue", "ADDRESS")
        ]

    def test_model_name_relabelled_by_its_last_word(self, make):
        doc = make("for the Harbor Boulevard Rehabilitation Project by Tri-State Paving Inc.")
        model = [
            _span(doc, "Harbor Boulevard Rehabilitation Project", "ORG"),
            _span(doc, "Tri-State Paving Inc.", "PROJECT"),
        ]
        assert _result(rules_over_model(model, [])) == [
            ("Harbor Boulevard Rehabilitation Project", "PROJECT"),
            ("Tri-State Paving Inc.", "ORG"),
        ]

    def test_name_rules_fill_gaps_and_extend_model_names(self, make):
        doc = make("Marlow Hart Consulting LLP for Westbrook County Council")
        model = [_span(doc, "Hart Consulting LLP", "ORG")]
        rules = [
            _span(doc, "Marlow Hart Consulting LLP", "ORG", "org-company"),
            _span(doc, "Westbrook County Council", "ORG", "org-body"),
        ]
        assert _result(rules_over_model(model, rules)) == [
            ("Marlow Hart Consulting LLP", "ORG"),
            ("Westbrook County Council", "ORG"),
        ]

    def test_dates_join_into_ranges_but_not_across_kinds(self, make):
        doc = make("from Friday, June 20 at 7 p.m. until Monday, June 23 and July 1 to July 5")
        rules = [
            _span(doc, "Friday, June 20", "DATE", "date"),
            _span(doc, "7 p.m.", "DATE", "time"),
            _span(doc, "Monday, June 23", "DATE", "date"),
            _span(doc, "July 1", "DATE", "date"),
            _span(doc, "July 5", "DATE", "date"),
        ]
        assert _result(rules_over_model([], rules)) == [
            ("Friday, June 20", "DATE"),
            ("7 p.m.", "DATE"),
            ("Monday, June 23", "DATE"),
            ("July 1 to July 5", "DATE"),
        ]


class TestOcrFuzzyCompare:
    @pytest.mark.parametrize(
        ("token", "word", "expected"),
        [
            ("apri1", "april", True),
            ("0ctober", "october", True),
            ("octobre", "october", False),
            ("no.", "nov.", False),
            ("may", "may", True),
            ("man", "may", False),
        ],
    )
    def test_compare(self, token, word, expected):
        assert ocr_fuzzy_compare(token, word, 1) is expected


class TestLoadPipeline:
    def test_shipped_pipeline_loads_with_rules_and_ner(self):
        nlp = shipped_pipeline()
        assert nlp.pipe_names == ["tok2vec", "ner", "rules"]
        assert set(nlp.get_pipe("ner").labels) == {
            "ADDRESS",
            "PARCEL_ID",
            "DATE",
            "PROJECT",
            "ORG",
            "ZONING",
        }
        assert model_version(nlp) == "geolabel_notices-1.0.0"

    def test_shipped_model_uses_the_packaged_patterns(self):
        assert shipped_pipeline().get_pipe("rules").patterns == load_patterns(), (
            "the shipped model is stale: run `python -m geolabel.text.train_shipped`"
        )

    def test_shipped_model_is_small(self):
        size = sum(p.stat().st_size for p in SHIPPED_MODEL.rglob("*") if p.is_file())
        assert size < 8 * 1024 * 1024

    def test_missing_folder(self, tmp_path):
        with pytest.raises(PipelineError, match="no spaCy pipeline"):
            load_pipeline(tmp_path / "nowhere")

    def test_damaged_folder(self, tmp_path):
        (tmp_path / "config.cfg").write_text("[nlp]\nlang = 'xx-unknown'\n", encoding="utf-8")
        with pytest.raises(PipelineError, match="cannot load"):
            load_pipeline(tmp_path)
