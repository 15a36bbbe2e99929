"""Tests for geolabel.text.evaluate, the independent fixture, and the shipped model's scores."""

from __future__ import annotations

import importlib.util

import pytest

from geolabel.errors import SpanError
from geolabel.text.data import read_annotated, read_sample_annotations
from geolabel.text.evaluate import evaluate_pipeline, evaluate_spans, label_score
from geolabel.text.pipeline import shipped_pipeline
from geolabel.text.records import AnnotatedNotice, EntitySpan
from geolabel.text.train import split_heldout

TEXT = "Close 1420 Oak Street on March 3, 2025."
ADDRESS = EntitySpan(6, 21, "ADDRESS", "1420 Oak Street")
DATE = EntitySpan(25, 38, "DATE", "March 3, 2025")


def _load_fixture_script(data_dir):
    spec = importlib.util.spec_from_file_location(
        "make_ind", data_dir / "make_notices_independent.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class TestEvaluateSpans:
    def test_counts(self):
        gold = [AnnotatedNotice("n", TEXT, (ADDRESS, DATE))]
        wrong_end = EntitySpan(25, 32, "DATE", "March 3")
        result = evaluate_spans(gold, [[ADDRESS, wrong_end]])
        scores = {s.label: s for s in result.per_label}
        assert (scores["ADDRESS"].tp, scores["ADDRESS"].fp, scores["ADDRESS"].fn) == (1, 0, 0)
        assert (scores["DATE"].tp, scores["DATE"].fp, scores["DATE"].fn) == (0, 1, 1)
        assert result.micro.f1 == pytest.approx(0.5)

    def test_label_score_edges(self):
        assert label_score("X", 0, 0, 0).f1 == 0.0
        assert label_score("X", 2, 0, 2).recall == 0.5

    def test_lengths_must_match(self):
        with pytest.raises(SpanError, match="one prediction list per gold notice"):
            evaluate_spans([AnnotatedNotice("n", TEXT, ())], [])


class TestIndependentFixture:
    def test_jsonl_is_current(self, data_dir):
        module = _load_fixture_script(data_dir)
        rendered = module.render(module.read_source(data_dir / "notices_independent.txt"))
        assert rendered == (data_dir / "notices_independent.jsonl").read_text(encoding="utf-8")

    def test_size_and_styles(self, data_dir):
        data = read_annotated(data_dir / "notices_independent.jsonl")
        assert len(data.notices) >= 40
        assert sum(len(n.entities) for n in data.notices) > 200

    def test_markup_parser(self, data_dir):
        module = _load_fixture_script(data_dir)
        text, entities = module.parse_markup("At [1420 Oak Street](ADDRESS) on [May 1](DATE).")
        assert text == "At 1420 Oak Street on May 1."
        assert [(e["start"], e["end"], e["label"]) for e in entities] == [
            (3, 18, "ADDRESS"),
            (22, 27, "DATE"),
        ]


class TestShippedModelScores:
    """The shipped model's quality on held-out data (the benchmark prints the full report)."""

    def test_sample_heldout(self, sample_dir):
        _, heldout = split_heldout(list(read_sample_annotations(sample_dir).notices))
        assert evaluate_pipeline(shipped_pipeline(), heldout).micro.f1 >= 0.95

    def test_independent_set(self, data_dir):
        notices = list(read_annotated(data_dir / "notices_independent.jsonl").notices)
        assert evaluate_pipeline(shipped_pipeline(), notices).micro.f1 >= 0.80
