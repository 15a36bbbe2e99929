"""Tests for geolabel.text.crowd: consensus spans and pairwise span agreement."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from geolabel.errors import ColumnError, NotFittedError
from geolabel.text.crowd import SpanVote, span_agreement

TEXT = "Close 1420 Oak Street on March 3, 2025."
ADDRESS = (6, 21, "ADDRESS")  # 1420 Oak Street
DATE = (25, 38, "DATE")  # March 3, 2025


def _frame(rows):
    return pd.DataFrame(rows, columns=["item", "annotator", "start", "end", "label"])


@pytest.fixture
def votes():
    return _frame(
        [
            ("n1", "a", *ADDRESS),
            ("n1", "a", *DATE),
            ("n1", "b", *ADDRESS),
            ("n1", "b", 25, 32, "DATE"),  # "March 3" only
            ("n1", "c", 11, 21, "ADDRESS"),  # "Oak Street" only
            ("n1", "c", *DATE),
            ("n2", "a", 0, 5, "ORG"),
            ("n2", "b", None, None, None),  # saw n2, marked nothing
        ]
    )


class TestSpanVote:
    def test_span_majority(self, votes):
        spans = SpanVote().fit_predict(votes)
        got = [(r.item, r.start, r.end, r.label) for r in spans.itertuples()]
        assert got == [("n1", *ADDRESS), ("n1", *DATE)]
        assert spans["support"].tolist() == pytest.approx([2 / 3, 2 / 3])
        assert spans["annotators"].tolist() == [["a", "b"], ["a", "c"]]

    def test_silence_counts_when_stated(self, votes):
        spans = SpanVote().fit(votes).spans_
        assert "n2" not in set(spans["item"])  # 1 of 2 is not a majority
        assert SpanVote().fit(votes).n_annotators_ == {"n1": 3, "n2": 2}

    def test_weights(self, votes):
        spans = SpanVote(weights={"b": 3.0}).fit_predict(votes)
        dates = spans[spans["label"] == "DATE"]
        assert (dates["start"].tolist(), dates["end"].tolist()) == ([25], [32])

    def test_token_vote(self, votes):
        spans = SpanVote(method="token").fit_predict(votes, {"n1": TEXT, "n2": "Acme paves."})
        got = [
            (r.item, TEXT[r.start : r.end], r.label) for r in spans.itertuples() if r.item == "n1"
        ]
        assert got == [("n1", "1420 Oak Street", "ADDRESS"), ("n1", "March 3, 2025", "DATE")]

    def test_token_vote_needs_texts(self, votes):
        with pytest.raises(ColumnError, match="needs the texts"):
            SpanVote(method="token").fit(votes)

    def test_not_fitted(self):
        with pytest.raises(NotFittedError):
            _ = SpanVote().spans_

    @pytest.mark.parametrize(
        ("frame", "message"),
        [
            (pd.DataFrame({"item": ["x"]}), "lack column"),
            (_frame([("n", "a", 5, 2, "DATE")]), "start < end"),
            (_frame([("n", "a", 1, None, "DATE")]), "some of start, end, label"),
        ],
    )
    def test_bad_input(self, frame, message):
        with pytest.raises(ColumnError, match=message):
            SpanVote().fit(frame)

    def test_bad_parameters(self, votes):
        with pytest.raises(ColumnError, match="threshold"):
            SpanVote(threshold=1.5).fit(votes)
        with pytest.raises(ColumnError, match="method"):
            SpanVote(method="vote").fit(votes)  # type: ignore[arg-type]


class TestSpanAgreement:
    def test_pairwise_f1_per_label(self, votes):
        table = span_agreement(votes).set_index("label")
        # ADDRESS: a-b 1.0, a-c 0.0, b-c 0.0 -> 1/3; DATE: a-b 0, a-c 1, b-c 0 -> 1/3
        assert table.loc["ADDRESS", "pairwise_f1"] == pytest.approx(1 / 3)
        assert table.loc["DATE", "pairwise_f1"] == pytest.approx(1 / 3)
        assert table.loc["ADDRESS", "n_pairs"] == 3
        # ORG: only the a-b pair shares n2; a marked ORG, b nothing -> F1 0
        assert table.loc["ORG", "pairwise_f1"] == 0.0 and table.loc["ORG", "n_pairs"] == 1
        assert table.loc["ALL", "n_spans"] == 7

    def test_perfect_agreement(self):
        frame = _frame([("n", "a", *ADDRESS), ("n", "b", *ADDRESS)])
        table = span_agreement(frame).set_index("label")
        assert table.loc["ADDRESS", "pairwise_f1"] == 1.0

    def test_no_pairs(self):
        table = span_agreement(_frame([("n", "a", *ADDRESS)])).set_index("label")
        assert math.isnan(table.loc["ADDRESS", "pairwise_f1"])
