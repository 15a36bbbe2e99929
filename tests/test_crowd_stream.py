"""Streaming annotations from the store in chunks (geolabel/crowd/stream.py) and consensus on it."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from geolabel.crowd.base import encode_annotations
from geolabel.crowd.consensus import aggregate_project, make_aggregator
from geolabel.crowd.dawid_skene import DawidSkene
from geolabel.crowd.stream import iter_annotations, read_encoded_annotations, vote_ids
from geolabel.errors import AggregationError, AggregationWarning, LabelError, StoreError
from geolabel.project import init_project
from geolabel.store import Project
from tests.crowd_helpers import SAMPLE, sample_votes


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """The sample city with 5 simulated votes per parcel, plus late duplicate votes."""
    path = tmp_path_factory.mktemp("stream") / "city.gpkg"
    init_project(
        path,
        scenes=[SAMPLE / "scene.tif"],
        parcels=SAMPLE / "city.gpkg",
        parcels_layer="parcels",
        taxonomy=SAMPLE / "taxonomy.yaml",
    )
    with Project.open(path) as p:
        votes = sample_votes(seed=0)
        p.add_annotations(votes, source="simulator")
        again = votes.iloc[:7].copy()
        again["label"] = "vacant"
        again["created_at"] = "2100-01-01T00:00:00Z"
        p.add_annotations(again, source="late")
    return path


@pytest.fixture(scope="module")
def classes(project):
    with Project.open(project) as p:
        return list(p.current_taxonomy().parcel_class_ids)


def _assert_same(a, b):
    for name in ("item", "annotator", "label", "rows"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    for name in ("items", "annotators", "classes"):
        assert list(getattr(a, name)) == list(getattr(b, name))
    assert (a.n_duplicates, a.n_mapped) == (b.n_duplicates, b.n_mapped)


class TestIterAnnotations:
    def test_chunks_make_the_whole_table(self, project):
        with Project.open(project) as p:
            chunks = list(iter_annotations(p, kind="parcel", chunksize=500))
            whole = p.annotations(kind="parcel")
        assert [len(c) for c in chunks] == [500, 500, 437]
        joined = pd.concat(chunks, ignore_index=True)
        pd.testing.assert_frame_equal(joined, whole, check_dtype=False)

    @pytest.mark.parametrize(
        ("kwargs", "text"),
        [
            ({"kind": "building"}, "Unknown item kind"),
            ({"chunksize": 0}, "at least 1"),
            ({"columns": ("item", "worker")}, "Unknown annotation column"),
        ],
    )
    def test_bad_arguments(self, project, kwargs, text):
        with Project.open(project) as p, pytest.raises(StoreError, match=text):
            next(iter_annotations(p, **kwargs))


class TestReadEncoded:
    @pytest.mark.parametrize("chunksize", [7, 100, 10_000])
    def test_same_as_encoding_the_frame(self, project, classes, chunksize):
        with Project.open(project) as p:
            with pytest.warns(AggregationWarning, match="7 duplicate vote"):
                streamed = read_encoded_annotations(p, classes=classes, chunksize=chunksize)
            with pytest.warns(AggregationWarning, match="7 duplicate vote"):
                expect = encode_annotations(p.annotations(kind="parcel"), classes=classes)
        _assert_same(streamed.encoded, expect)
        assert len(streamed.stamps) == 1437

    def test_observed_classes(self, project):
        with Project.open(project) as p, warnings.catch_warnings():
            warnings.simplefilter("ignore", AggregationWarning)
            streamed = read_encoded_annotations(p, classes=None, chunksize=64)
            expect = encode_annotations(p.annotations(kind="parcel"))
        _assert_same(streamed.encoded, expect)

    def test_vote_ids_are_the_kept_votes(self, project, classes):
        with Project.open(project) as p, warnings.catch_warnings():
            warnings.simplefilter("ignore", AggregationWarning)
            streamed = read_encoded_annotations(p, classes=classes, chunksize=300)
            ids = vote_ids(p, streamed, chunksize=300)
            annotations = p.annotations(kind="parcel")
        enc = streamed.encoded
        assert len(ids) == enc.n_items and sum(map(len, ids)) == len(enc)
        kept = annotations.iloc[enc.rows]
        first = enc.items[0]
        assert sorted(ids[0]) == sorted(kept.loc[kept["item"] == first, "annotation_id"])
        late = set(annotations.loc[annotations["source"] == "late", "annotation_id"])
        assert late <= {i for per_item in ids for i in per_item}  # the latest duplicate wins

    def test_estimators_take_encoded_votes(self, project, classes):
        with Project.open(project) as p, warnings.catch_warnings():
            warnings.simplefilter("ignore", AggregationWarning)
            streamed = read_encoded_annotations(p, classes=classes, chunksize=200)
            frame = p.annotations(kind="parcel")
            from_frame = DawidSkene(classes=classes).fit(frame)
        from_stream = DawidSkene(classes=classes).fit(streamed.encoded)
        pd.testing.assert_frame_equal(from_stream.probas_, from_frame.probas_)
        with pytest.raises(LabelError, match="encode them with the estimator's classes"):
            DawidSkene(classes=classes[::-1]).fit(streamed.encoded)

    def test_unknown_label_and_empty(self, project, tmp_path):
        with Project.open(project) as p, pytest.raises(LabelError, match="not in the taxonomy"):
            read_encoded_annotations(p, classes=["residential", "commercial"], chunksize=50)
        empty = tmp_path / "empty.gpkg"
        init_project(
            empty,
            scenes=[SAMPLE / "scene.tif"],
            parcels=SAMPLE / "city.gpkg",
            parcels_layer="parcels",
            taxonomy=SAMPLE / "taxonomy.yaml",
        )
        with Project.open(empty) as p, pytest.raises(AggregationError, match="No annotations"):
            read_encoded_annotations(p)


class TestStreamedConsensus:
    @pytest.mark.parametrize("method", ["ds", "mv"])
    def test_chunked_consensus_equals_whole_frame_fit(self, project, classes, method):
        with Project.open(project) as p, warnings.catch_warnings():
            warnings.simplefilter("ignore", AggregationWarning)
            result = aggregate_project(p, method=method, chunksize=97, write=False)
            model = make_aggregator(method, classes).fit(p.annotations(kind="parcel"))
        assert result.n_votes == 1430 and result.n_duplicates == 7 and not result.written
        expect = model.labels_.value_counts()
        assert result.labels == {str(k): int(v) for k, v in expect.items()}
