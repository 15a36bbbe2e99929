"""Tests for geolabel.review.simulate: the simulated expert decides from the truth."""

from __future__ import annotations

import pandas as pd
import pytest

from geolabel.errors import ColumnError, InputFileError, ReviewError
from geolabel.review.simulate import SimulatedExpert
from geolabel.taxonomy import load_taxonomy
from tests.conftest import SAMPLE


@pytest.fixture(scope="module")
def v1():
    return load_taxonomy(SAMPLE / "taxonomy.yaml")


def _queue(items, hotspot="H1"):
    return pd.DataFrame({"item": items, "version": 0, "hotspot_id": hotspot})


class TestSimulatedExpert:
    def test_decides_truth_and_proposes_split_after_min_mixed(self, v1):
        truth = pd.DataFrame(
            {
                "item": ["m1", "m2", "m3", "m4", "p1"],
                "label": ["mixed_use"] * 4 + ["park"],
            }
        )
        expert = SimulatedExpert(truth, reviewer="eve", min_mixed=3)
        decisions = expert.decide(_queue(["p1", "m1", "m2", "m3", "m4"]), v1)
        assert [d.label for d in decisions] == ["park", *["residential"] * 4]
        with_proposal = [d for d in decisions if d.proposals]
        assert [d.item for d in with_proposal] == ["m3"]
        split = with_proposal[0].proposals[0]
        assert split.kind == "split" and split.new_class == "mixed_use"
        assert split.classes == ("residential", "commercial")
        assert split.items == ("m1", "m2", "m3")
        assert "H1" in split.rationale
        assert all(d.reviewer == "eve" and d.expected_version == 0 for d in decisions)
        assert "no such class" in decisions[1].rationale

    def test_no_proposal_outside_hotspots_unless_asked(self, v1):
        truth = pd.DataFrame({"item": ["m1", "m2", "m3"], "label": ["mixed_use"] * 3})
        strict = SimulatedExpert(truth, min_mixed=2).decide(_queue(["m1", "m2", "m3"], None), v1)
        assert not any(d.proposals for d in strict)
        loose = SimulatedExpert(truth, min_mixed=2, require_hotspot=False)
        assert sum(bool(d.proposals) for d in loose.decide(_queue(["m1", "m2"], None), v1)) == 1

    def test_sample_truth_and_errors(self, v1):
        expert = SimulatedExpert.from_sample(SAMPLE / "truth")
        (decision,) = expert.decide(_queue(["P0001"]), v1)
        assert decision.label == "institutional"
        with pytest.raises(ReviewError, match="no truth"):
            expert.decide(_queue(["X999"]), v1)
        with pytest.raises(InputFileError, match=r"parcels\.csv"):
            SimulatedExpert.from_sample(SAMPLE)
        with pytest.raises(ColumnError, match="label"):
            SimulatedExpert(pd.DataFrame({"item": ["a"]}))
        with pytest.raises(ReviewError, match="error_rate"):
            SimulatedExpert(pd.DataFrame({"item": ["a"], "label": ["park"]}), error_rate=2)

    def test_errors_are_seeded(self, v1):
        truth = pd.DataFrame({"item": [f"i{k}" for k in range(40)], "label": "park"})
        a = SimulatedExpert(truth, error_rate=0.5, seed=1).decide(_queue(truth["item"]), v1)
        b = SimulatedExpert(truth, error_rate=0.5, seed=1).decide(_queue(truth["item"]), v1)
        assert [d.label for d in a] == [d.label for d in b]
        assert 0 < sum(d.label != "park" for d in a) < 40
