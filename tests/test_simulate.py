"""Tests for geolabel.crowd.simulate: the simulated crowd of the sample city."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from geolabel.crowd.simulate import (
    DEFAULT_FALLBACK,
    AnnotatorProfile,
    CrowdSimulator,
    make_crowd,
    profiles_from_json,
    profiles_to_json,
)
from geolabel.errors import ColumnError, GeolabelError, LabelError

CLASSES = [
    "residential",
    "commercial",
    "industrial",
    "institutional",
    "park",
    "water",
    "vacant",
    "construction",
]


def make_truth(
    n: int,
    *,
    labels: list[str] | None = None,
    ambiguity: str = "none",
    alt_label: str | None = None,
    difficulty: float = 0.0,
    prefix: str = "p",
) -> pd.DataFrame:
    """Truth with ``n`` items cycling through ``labels`` (all classes by default)."""
    labels = labels or CLASSES
    return pd.DataFrame(
        {
            "item": [f"{prefix}{i:04d}" for i in range(n)],
            "label": [labels[i % len(labels)] for i in range(n)],
            "alt_label": [alt_label] * n,
            "ambiguity": [ambiguity] * n,
            "difficulty": [difficulty] * n,
            "district": ["north"] * n,
        }
    )


def all_pairs(truth: pd.DataFrame, profiles: list[AnnotatorProfile]) -> pd.DataFrame:
    """Every annotator labels every item, in item order."""
    return pd.DataFrame(
        [(item, p.annotator_id) for p in profiles for item in truth["item"]],
        columns=["item", "annotator"],
    )


def accuracy(votes: pd.DataFrame, truth: pd.DataFrame) -> pd.Series:
    merged = votes.merge(truth[["item", "label"]], on="item", suffixes=("", "_true"))
    return (merged["label"] == merged["label_true"]).groupby(merged["annotator"]).mean()


@pytest.fixture(scope="module")
def crowd() -> list[AnnotatorProfile]:
    return make_crowd(CLASSES, 30, spammer_rate=0.2, n_experts=3, seed=7)


@pytest.fixture(scope="module")
def easy() -> pd.DataFrame:
    return make_truth(400)


@pytest.fixture(scope="module")
def easy_votes(
    crowd: list[AnnotatorProfile], easy: pd.DataFrame
) -> tuple[list[AnnotatorProfile], pd.DataFrame]:
    """Every annotator, rested (no fatigue), labels 400 easy items."""
    rested = [dataclasses.replace(p, fatigue=0.0) for p in crowd]
    votes = CrowdSimulator(easy, rested, CLASSES, seed=3).label(all_pairs(easy, rested))
    return rested, votes


class TestAnnotatorProfile:
    def test_coerces_sequences_to_tuples(self):
        profile = AnnotatorProfile("a", "crowd", ["x", "y"], np.array([[0.9, 0.1], [0.2, 0.8]]))
        assert profile.classes == ("x", "y")
        assert profile.confusion == ((0.9, 0.1), (0.2, 0.8))
        assert profile.accuracy == {"x": 0.9, "y": 0.8}
        hash(profile)  # frozen and fully immutable

    def test_is_frozen(self):
        profile = AnnotatorProfile("a", "crowd", ("x", "y"), ((1.0, 0.0), (0.0, 1.0)))
        with pytest.raises(dataclasses.FrozenInstanceError):
            profile.fatigue = 0.5  # type: ignore[misc]

    @pytest.mark.parametrize(
        ("changes", "message"),
        [
            ({"confusion": ((0.9, 0.2), (0.0, 1.0))}, "rows must sum to 1"),
            ({"confusion": ((1.0,),)}, "must be 2x2"),
            ({"confusion": ((1.5, -0.5), (0.0, 1.0))}, "non-negative"),
            ({"kind": "robot"}, "kind must be one of"),
            ({"fatigue": 1.5}, "fatigue must be in"),
            ({"alt_rate": -0.1}, "alt_rate must be in"),
            ({"session_length": 0}, "session_length must be >= 1"),
            ({"median_seconds": 0.0}, "median_seconds must be > 0"),
            ({"annotator_id": ""}, "non-empty string"),
        ],
    )
    def test_rejects_invalid_parameters(self, changes, message):
        fields = {
            "annotator_id": "a",
            "kind": "crowd",
            "classes": ("x", "y"),
            "confusion": ((0.9, 0.1), (0.2, 0.8)),
        }
        with pytest.raises(GeolabelError, match=message):
            AnnotatorProfile(**{**fields, **changes})

    def test_rejects_repeated_classes(self):
        with pytest.raises(LabelError, match="repeat"):
            AnnotatorProfile("a", "crowd", ("x", "x"), ((1.0, 0.0), (0.0, 1.0)))


class TestMakeCrowd:
    def test_counts_ids_and_kinds(self, crowd):
        assert len(crowd) == 33
        assert [p.annotator_id for p in crowd[:2]] == ["crowd-001", "crowd-002"]
        assert [p.annotator_id for p in crowd[30:]] == ["expert-01", "expert-02", "expert-03"]
        kinds = Counter(p.kind for p in crowd)
        assert kinds == {"crowd": 24, "spammer": 6, "expert": 3}
        assert all(p.classes == tuple(CLASSES) for p in crowd)

    def test_rows_are_stochastic(self, crowd):
        for p in crowd:
            np.testing.assert_allclose(p.matrix.sum(axis=1), 1.0, atol=1e-9)

    def test_same_seed_same_crowd_and_different_seed_differs(self, crowd):
        assert make_crowd(CLASSES, 30, spammer_rate=0.2, n_experts=3, seed=7) == crowd
        assert make_crowd(CLASSES, 30, spammer_rate=0.2, n_experts=3, seed=8) != crowd

    def test_experts_do_not_depend_on_crowd_size(self, crowd):
        assert make_crowd(CLASSES, 5, n_experts=3, seed=7)[5:] == crowd[30:]

    def test_skill_ranges(self, crowd):
        workers = [np.mean(list(p.accuracy.values())) for p in crowd if p.kind == "crowd"]
        assert min(workers) >= 0.5 and max(workers) <= 0.97
        assert max(workers) - min(workers) > 0.2  # skill really varies
        experts = [p.matrix.diagonal() for p in crowd if p.kind == "expert"]
        assert all(acc.mean() >= 0.97 and acc.min() >= 0.94 for acc in experts)

    def test_spammers_are_uniform_or_constant(self):
        spammers = [
            p for p in make_crowd(CLASSES, 40, spammer_rate=0.5, seed=1) if p.kind == "spammer"
        ]
        assert len(spammers) == 20
        shapes = set()
        for p in spammers:
            m = p.matrix
            assert (m == m[0]).all(), "a spammer's answer must not depend on the truth"
            shapes.add("constant" if m[0].max() == 1.0 else "uniform")
            if m[0].max() < 1.0:
                np.testing.assert_allclose(m[0], 1 / len(CLASSES))
        assert shapes == {"constant", "uniform"}

    def test_confusions_follow_realistic_pairs(self, crowd):
        def top_error(p: AnnotatorProfile, cls: str) -> str:
            row = dict(zip(CLASSES, p.matrix[CLASSES.index(cls)], strict=True))
            del row[cls]
            return max(row, key=row.__getitem__)

        workers = [p for p in crowd if p.kind == "crowd"]
        assert all(top_error(p, "residential") == "commercial" for p in workers)
        share = np.mean([top_error(p, "construction") == "vacant" for p in workers])
        assert share >= 0.8

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"n_annotators": -1}, "n_annotators must be a non-negative integer"),
            ({"n_annotators": 0, "n_experts": 0}, "at least one"),
            ({"spammer_rate": 1.5}, "spammer_rate must be in"),
            ({"seed": -3}, "seed must be an integer"),
        ],
    )
    def test_rejects_bad_arguments(self, kwargs, message):
        with pytest.raises(GeolabelError, match=message):
            make_crowd(CLASSES, **kwargs)

    def test_rejects_too_few_classes(self):
        with pytest.raises(LabelError, match="at least two"):
            make_crowd(["residential"])


class TestProfilesJson:
    def test_round_trip_is_exact(self, crowd):
        text = json.dumps(profiles_to_json(crowd))
        assert profiles_from_json(json.loads(text)) == crowd

    def test_rejects_other_formats(self):
        with pytest.raises(GeolabelError, match="expected format"):
            profiles_from_json({"format": "something.else", "annotators": []})

    def test_names_missing_keys(self, crowd):
        data = profiles_to_json(crowd[:1])
        del data["annotators"][0]["confusion"]
        with pytest.raises(GeolabelError, match=r"missing keys \['confusion'\]"):
            profiles_from_json(data)


class TestCrowdSimulatorInput:
    def test_missing_truth_columns_are_named_with_available(self, crowd):
        truth = make_truth(4).drop(columns=["difficulty", "ambiguity"])
        with pytest.raises(
            ColumnError, match=r"\['ambiguity', 'difficulty'\]; available: \['item'"
        ):
            CrowdSimulator(truth, crowd, CLASSES)

    def test_repeated_items(self, crowd):
        truth = pd.concat([make_truth(3), make_truth(1)], ignore_index=True)
        with pytest.raises(ColumnError, match=r"repeats items: \['p0000'\]"):
            CrowdSimulator(truth, crowd, CLASSES)

    def test_unknown_ambiguity(self, crowd):
        with pytest.raises(ColumnError, match="unknown values \\['fuzzy'\\]"):
            CrowdSimulator(make_truth(3, ambiguity="fuzzy"), crowd, CLASSES)

    def test_difficulty_out_of_range(self, crowd):
        with pytest.raises(ColumnError, match="difficulty"):
            CrowdSimulator(make_truth(3, difficulty=1.2), crowd, CLASSES)

    def test_borderline_needs_alt_label(self, crowd):
        with pytest.raises(ColumnError, match="need an 'alt_label'"):
            CrowdSimulator(make_truth(3, ambiguity="borderline"), crowd, CLASSES)

    def test_label_without_class_or_fallback_is_named(self, crowd):
        truth = make_truth(3, labels=["residential", "greenhouse"])
        with pytest.raises(LabelError, match=r"\['greenhouse'\] are not in classes"):
            CrowdSimulator(truth, crowd, CLASSES)

    def test_custom_fallback_resolves_label(self, crowd):
        truth = make_truth(40, labels=["greenhouse"])
        sim = CrowdSimulator(truth, crowd, CLASSES, fallback={"greenhouse": {"industrial": 2.0}})
        experts = [p.annotator_id for p in crowd if p.kind == "expert"]
        votes = sim.assign_and_label(truth["item"], 3, experts)
        assert (votes["label"] == "industrial").mean() > 0.9

    def test_default_fallback_needs_its_classes(self):
        classes = ["park", "water", "vacant"]
        truth = make_truth(3, labels=["mixed_use"])
        with pytest.raises(LabelError, match="mixed_use"):
            CrowdSimulator(truth, make_crowd(classes, 3, seed=0), classes)
        assert "mixed_use" in DEFAULT_FALLBACK

    def test_fallback_to_unknown_class(self, crowd):
        with pytest.raises(LabelError, match=r"targets \['shop'\]"):
            CrowdSimulator(make_truth(3), crowd, CLASSES, fallback={"mixed_use": {"shop": 1.0}})

    def test_profiles_for_other_classes(self, crowd):
        with pytest.raises(LabelError, match="same classes"):
            CrowdSimulator(make_truth(3), crowd, [*CLASSES, "mixed_use"])

    def test_profile_class_order_does_not_matter(self, crowd, easy):
        order = list(reversed(CLASSES))
        perm = [CLASSES.index(c) for c in order]
        flipped = [
            dataclasses.replace(p, classes=tuple(order), confusion=p.matrix[np.ix_(perm, perm)])
            for p in crowd
        ]
        tasks = all_pairs(easy.head(20), crowd)
        pd.testing.assert_frame_equal(
            CrowdSimulator(easy, flipped, CLASSES).label(tasks),
            CrowdSimulator(easy, crowd, CLASSES).label(tasks),
        )

    def test_repeated_annotator_ids(self, crowd):
        with pytest.raises(GeolabelError, match="unique"):
            CrowdSimulator(make_truth(3), [crowd[0], crowd[0]], CLASSES)

    def test_bad_start(self, crowd):
        with pytest.raises(GeolabelError, match="ISO-8601"):
            CrowdSimulator(make_truth(3), crowd, CLASSES, start="next tuesday")


class TestLabel:
    @pytest.fixture
    def sim(self, crowd, easy):
        return CrowdSimulator(easy, crowd, CLASSES, seed=11)

    def test_same_seed_same_frame(self, crowd, easy):
        tasks = all_pairs(easy.head(60), crowd)
        first = CrowdSimulator(easy, crowd, CLASSES, seed=11).label(tasks)
        second = CrowdSimulator(easy, crowd, CLASSES, seed=11).label(tasks)
        pd.testing.assert_frame_equal(first, second)
        assert first.to_csv(index=False) == second.to_csv(index=False)
        assert list(first.columns) == ["item", "annotator", "label", "created_at", "seconds"]

    def test_different_seed_differs(self, crowd, easy):
        tasks = all_pairs(easy.head(60), crowd)
        first = CrowdSimulator(easy, crowd, CLASSES, seed=11).label(tasks)
        other = CrowdSimulator(easy, crowd, CLASSES, seed=12).label(tasks)
        assert (first["label"] != other["label"]).mean() > 0.05
        assert (first["seconds"] != other["seconds"]).mean() > 0.5

    def test_appending_tasks_keeps_earlier_votes(self, sim, crowd, easy):
        tasks = all_pairs(easy.head(40), crowd[:5])
        more = pd.concat([tasks, all_pairs(easy.iloc[40:80], crowd)], ignore_index=True)
        pd.testing.assert_frame_equal(sim.label(more).head(len(tasks)), sim.label(tasks))

    def test_other_annotators_do_not_change_a_vote(self, sim, crowd, easy):
        alone = sim.label(all_pairs(easy.head(50), crowd[:1]))
        # Interleave five more annotators' tasks; the first annotator's queue keeps its order.
        tasks = all_pairs(easy.head(50), crowd[:6]).sort_values("item", kind="stable")
        mixed = sim.label(tasks)
        mine = mixed[mixed["annotator"] == crowd[0].annotator_id].reset_index(drop=True)
        pd.testing.assert_frame_equal(mine, alone)

    def test_accuracy_on_easy_items_matches_profile(self, easy_votes, easy):
        rested, votes = easy_votes
        observed = accuracy(votes, easy)
        true_class = easy["label"].map(CLASSES.index).to_numpy()
        for p in rested:
            expected = p.matrix.diagonal()[true_class].mean()
            tolerance = 4 * np.sqrt(expected * (1 - expected) / len(easy)) + 0.01
            assert abs(observed[p.annotator_id] - expected) <= tolerance, p.annotator_id

    def test_spammers_near_chance(self, easy_votes, easy):
        rested, votes = easy_votes
        observed = accuracy(votes, easy)
        for p in rested:
            if p.kind != "spammer":
                continue
            assert abs(observed[p.annotator_id] - 1 / len(CLASSES)) < 0.06
            answers = votes.loc[votes["annotator"] == p.annotator_id, "label"]
            if p.matrix.max() == 1.0:
                assert answers.nunique() == 1
            else:
                assert answers.nunique() == len(CLASSES)

    def test_experts_high(self, easy_votes, easy):
        rested, votes = easy_votes
        observed = accuracy(votes, easy)
        experts = [p.annotator_id for p in rested if p.kind == "expert"]
        crowd_ids = [p.annotator_id for p in rested if p.kind == "crowd"]
        assert (observed[experts] >= 0.95).all()
        assert observed[experts].min() > observed[crowd_ids].median()

    def test_residential_commercial_is_the_top_confusion(self, easy_votes, easy):
        rested, votes = easy_votes
        honest = {p.annotator_id for p in rested if p.kind != "spammer"}
        merged = votes[votes["annotator"].isin(honest)].merge(
            easy[["item", "label"]], on="item", suffixes=("", "_true")
        )
        wrong = merged[merged["label"] != merged["label_true"]]
        pairs = Counter(frozenset(p) for p in zip(wrong["label"], wrong["label_true"], strict=True))
        ranked = [pair for pair, _ in pairs.most_common()]
        assert ranked[0] == {"residential", "commercial"}
        assert frozenset({"vacant", "construction"}) in ranked[:2]

    def test_mixed_use_splits_between_residential_and_commercial(self, crowd):
        truth = make_truth(200, labels=["mixed_use"], ambiguity="mixed_use")
        sim = CrowdSimulator(truth, crowd, CLASSES, seed=5)
        experts = [p.annotator_id for p in crowd if p.kind == "expert"]
        votes = sim.assign_and_label(truth["item"], 3, experts)
        share = votes["label"].value_counts(normalize=True)
        assert 0.4 <= share["residential"] <= 0.6
        assert 0.4 <= share["commercial"] <= 0.6
        # Items split too: not every expert agrees on a mixed-use parcel.
        assert (votes.groupby("item")["label"].nunique() > 1).mean() > 0.5

    def test_borderline_items_get_alt_label(self, crowd):
        truth = make_truth(
            300, labels=["park"], ambiguity="borderline", alt_label="vacant", prefix="b"
        )
        votes = CrowdSimulator(truth, crowd, CLASSES, seed=5).label(all_pairs(truth, crowd))
        kind = {p.annotator_id: p.kind for p in crowd}
        alt = (votes["label"] == "vacant").groupby(votes["annotator"].map(kind)).mean()
        assert 0.25 <= alt["crowd"] <= 0.55
        assert 0.05 <= alt["expert"] < alt["crowd"] - 0.1
        easy = make_truth(300, labels=["park"], prefix="b")
        base = CrowdSimulator(easy, crowd, CLASSES, seed=5).label(all_pairs(easy, crowd))
        assert (base["label"] == "vacant").mean() < alt["crowd"] - 0.2

    def test_fatigue_lowers_accuracy_late_in_long_sessions(self, crowd):
        workers = [dataclasses.replace(p, session_length=300) for p in crowd if p.kind == "crowd"]
        truth = make_truth(300, prefix="f")
        votes = CrowdSimulator(truth, workers, CLASSES, seed=2).label(all_pairs(truth, workers))
        correct = votes["label"].to_numpy() == np.tile(truth["label"].to_numpy(), len(workers))
        position = np.tile(np.arange(len(truth)), len(workers))
        early, late = correct[position < 50].mean(), correct[position >= 250].mean()
        assert late < early - 0.1
        # Rested again after a break: a new session starts fresh.
        rested = [dataclasses.replace(p, session_length=50) for p in workers]
        again = CrowdSimulator(truth, rested, CLASSES, seed=2).label(all_pairs(truth, rested))
        correct_again = again["label"].to_numpy() == np.tile(truth["label"], len(workers))
        assert correct_again[position >= 250].mean() > late + 0.05

    def test_difficulty_lowers_accuracy(self, crowd):
        hard = make_truth(200, difficulty=0.8, prefix="h")
        easy = make_truth(200, difficulty=0.0, prefix="h")
        honest = [p for p in crowd if p.kind != "spammer"]
        votes_hard = CrowdSimulator(hard, honest, CLASSES, seed=4).label(all_pairs(hard, honest))
        votes_easy = CrowdSimulator(easy, honest, CLASSES, seed=4).label(all_pairs(easy, honest))
        assert accuracy(votes_hard, hard).mean() < accuracy(votes_easy, easy).mean() - 0.15
        assert votes_hard["seconds"].median() > 1.5 * votes_easy["seconds"].median()

    def test_spammers_do_not_slow_down_on_hard_items(self, crowd):
        spammers = [p for p in crowd if p.kind == "spammer"]
        hard = make_truth(200, difficulty=1.0, ambiguity="borderline", alt_label="park")
        easy = make_truth(200)
        seconds_hard = CrowdSimulator(hard, spammers, CLASSES).label(all_pairs(hard, spammers))
        seconds_easy = CrowdSimulator(easy, spammers, CLASSES).label(all_pairs(easy, spammers))
        pd.testing.assert_series_equal(seconds_hard["seconds"], seconds_easy["seconds"])

    def test_seconds_and_spammer_speed(self, easy_votes):
        rested, votes = easy_votes
        kind = votes["annotator"].map({p.annotator_id: p.kind for p in rested})
        assert (votes["seconds"] >= 1.0).all()
        medians = votes["seconds"].groupby(kind).median()
        assert medians["spammer"] < medians["crowd"] / 2 < medians["expert"]

    def test_created_at_sessions(self, sim, crowd, easy):
        profile = crowd[0]
        votes = sim.label(all_pairs(easy.head(profile.session_length + 5), [profile]))
        stamps = pd.to_datetime(votes["created_at"], format="%Y-%m-%dT%H:%M:%SZ", utc=True)
        assert stamps.is_monotonic_increasing
        first = stamps.iloc[: profile.session_length]
        assert first.iloc[0] >= pd.Timestamp("2026-01-05T09:00:00Z")
        assert first.iloc[-1] < pd.Timestamp("2026-01-05T13:00:00Z")
        assert (
            stamps.iloc[profile.session_length :].dt.date == pd.Timestamp("2026-01-06").date()
        ).all()
        later = sim.label(votes[["item", "annotator"]], start="2026-02-01T09:00:00Z")
        assert later["created_at"].str.startswith("2026-02-01").iloc[0]
        assert later["label"].equals(votes["label"])

    def test_empty_tasks(self, sim):
        votes = sim.label(pd.DataFrame({"item": [], "annotator": []}))
        assert votes.empty
        assert list(votes.columns) == ["item", "annotator", "label", "created_at", "seconds"]

    def test_missing_task_columns(self, sim):
        tasks = pd.DataFrame({"item": ["p0000"], "worker": ["crowd-001"]})
        with pytest.raises(ColumnError, match=r"\['annotator'\]; available: \['item', 'worker'\]"):
            sim.label(tasks)

    def test_unknown_items_are_listed(self, sim):
        tasks = pd.DataFrame({"item": ["p0000", "zz1", "zz2"], "annotator": ["crowd-001"] * 3})
        with pytest.raises(ColumnError, match=r"2 items not in truth, e\.g\. \['zz1', 'zz2'\]"):
            sim.label(tasks)

    def test_unknown_annotators_are_listed(self, sim):
        tasks = pd.DataFrame({"item": ["p0000"], "annotator": ["ghost"]})
        with pytest.raises(ColumnError, match=r"annotators not in profiles, e\.g\. \['ghost'\]"):
            sim.label(tasks)

    def test_duplicate_tasks(self, sim):
        tasks = pd.DataFrame({"item": ["p0000", "p0000"], "annotator": ["crowd-001"] * 2})
        with pytest.raises(ColumnError, match=r"repeat 1 \(item, annotator\) pairs"):
            sim.label(tasks)


class TestAssignAndLabel:
    @pytest.fixture
    def sim(self, crowd, easy):
        return CrowdSimulator(easy, crowd, CLASSES, seed=1)

    def test_distinct_annotators_and_balanced_load(self, sim, easy):
        votes = sim.assign_and_label(easy["item"].head(101), 5)
        per_item = votes.groupby("item")["annotator"]
        assert (per_item.size() == 5).all()
        assert (per_item.nunique() == 5).all()
        load = votes["annotator"].value_counts()
        assert len(load) == 30  # default pool: every non-expert
        assert load.max() - load.min() <= 1
        assert not votes["annotator"].str.startswith("expert").any()

    def test_co_annotator_groups_mix(self, sim, easy):
        votes = sim.assign_and_label(easy["item"].head(120), 3)
        groups = votes.groupby("item")["annotator"].apply(frozenset)
        assert groups.nunique() > 60

    def test_expert_pool(self, sim, crowd, easy):
        experts = [p.annotator_id for p in crowd if p.kind == "expert"]
        votes = sim.assign_and_label(easy["item"].head(10), 2, experts)
        assert set(votes["annotator"]) <= set(experts)
        assert votes["annotator"].value_counts().agg(np.ptp) <= 1

    def test_deterministic(self, sim, easy):
        items = easy["item"].head(50)
        pd.testing.assert_frame_equal(
            sim.assign_and_label(items, 3), sim.assign_and_label(items, 3)
        )

    @pytest.mark.parametrize(
        ("items", "k", "pool", "message"),
        [
            (
                ["p0000"],
                4,
                ["crowd-001", "crowd-002"],
                "k must be an integer from 1 to the pool size",
            ),
            (["p0000"], 0, None, "k must be an integer"),
            (
                ["p0000"],
                1,
                ["crowd-001", "nobody"],
                r"annotator_pool has 1 unknown ids, e\.g\. \['nobody'\]",
            ),
            (["p0000", "p0000"], 1, None, r"items repeats \['p0000'\]"),
            (["p0000", "nowhere"], 1, None, r"items has 1 unknown ids"),
            (["p0000"], 1, ["crowd-001", "crowd-001"], "annotator_pool repeats"),
        ],
    )
    def test_bad_input(self, sim, items, k, pool, message):
        with pytest.raises(GeolabelError, match=message):
            sim.assign_and_label(items, k, pool)
