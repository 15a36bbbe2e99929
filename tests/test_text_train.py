"""Tests for geolabel.text.train: the training path on a handful of notices (a tiny model)."""

from __future__ import annotations

import pytest

from geolabel.errors import PipelineError
from geolabel.text.data import read_sample_annotations
from geolabel.text.pipeline import load_pipeline
from geolabel.text.records import AnnotatedNotice, EntitySpan
from geolabel.text.train import notices_to_docbin, split_heldout, train_pipeline


@pytest.fixture(scope="module")
def notices(sample_dir):
    return list(read_sample_annotations(sample_dir).notices)


@pytest.fixture(scope="module")
def tiny(notices, tmp_path_factory):
    """A pipeline trained for a few steps on eight notices (tests the path, not the quality)."""
    output = tmp_path_factory.mktemp("tiny") / "model"
    nlp, result = train_pipeline(notices[:8], notices[8:10], output=output, max_steps=6)
    return nlp, result, output


class TestSplitHeldout:
    def test_every_fifth(self, notices):
        train, heldout = split_heldout(notices)
        assert (len(train), len(heldout)) == (160, 40)
        assert heldout[0].notice_id == "N0005" and heldout[1].notice_id == "N0010"
        assert not {n.notice_id for n in train} & {n.notice_id for n in heldout}

    def test_bad_period(self, notices):
        with pytest.raises(PipelineError, match="every >= 2"):
            split_heldout(notices, every=1)


class TestTrainPipeline:
    def test_trains_saves_and_loads(self, tiny):
        nlp, result, output = tiny
        assert nlp.pipe_names == ["tok2vec", "ner", "rules"]
        assert result.max_steps == 6 and result.n_train == 8 and result.n_dev == 2
        assert "ADDRESS" in result.labels and "ents_f" in result.dev_scores
        loaded = load_pipeline(output)
        assert loaded.meta["geolabel"]["n_train"] == 8
        text = "Close 1420 Oak Street on March 3, 2025."
        assert [e.text for e in loaded(text).ents] == [e.text for e in nlp(text).ents]
        assert loaded.get_pipe("rules").patterns  # patterns were loaded in initialize and saved

    def test_rules_work_in_a_barely_trained_model(self, tiny):
        nlp, _, _ = tiny
        assert ("412-001-001", "PARCEL_ID") in [
            (e.text, e.label_) for e in nlp("APN 412-001-001").ents
        ]

    def test_misaligned_spans_are_widened_and_reported(self):
        import spacy

        text = "Close 1420 Oak Street now."
        notice = AnnotatedNotice("m", text, (EntitySpan(7, 21, "ADDRESS", text[7:21]),))
        docbin, snapped = notices_to_docbin(spacy.blank("en"), [notice])
        (doc,) = docbin.get_docs(spacy.blank("en").vocab)
        assert [e.text for e in doc.ents] == ["1420 Oak Street"]
        assert snapped == ["m: '420 Oak Street' (ADDRESS)"]

    def test_refuses_empty_or_unlabelled_data(self, notices):
        with pytest.raises(PipelineError, match="no training notices"):
            train_pipeline([], max_steps=1)
        blank = [AnnotatedNotice("b", "nothing here", ())]
        with pytest.raises(PipelineError, match="no entity spans"):
            train_pipeline(blank, max_steps=1)
        with pytest.raises(PipelineError, match="max_steps"):
            train_pipeline(notices[:2], max_steps=0)
