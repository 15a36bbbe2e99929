"""Tests of geolabel.loop.audit: plans, strata, draws, the audits table, reports, feedback."""

from __future__ import annotations

import math
import shutil
import sqlite3

import pandas as pd
import pytest

from geolabel.errors import AuditError, ColumnError, StoreError
from geolabel.loop.audit import (
    REPORT_COLUMNS,
    AuditPlan,
    audit_feedback,
    audit_report,
    audit_strata,
    draw_audit_sample,
    plan_audit,
    record_audit,
)
from geolabel.project import init_project
from geolabel.store import Project
from tests.conftest import SAMPLE


class TestPlanAudit:
    def test_textbook_sizes(self):
        # n0 = 1.96^2 * 0.1 * 0.9 / 0.05^2 = 138.3 -> 139 for an (almost) infinite stratum.
        plan = plan_audit({"big": 10**9}, margin=0.05, expected_error=0.1)
        assert plan.sizes["big"] == 139
        # Finite population: n = n0 / (1 + (n0 - 1) / N).
        n0 = 1.959963984540054**2 * 0.09 / 0.0025
        for population in (1000, 400, 200, 60):
            expected = math.ceil(n0 / (1 + (n0 - 1) / population))
            assert plan_audit({"s": population}).sizes["s"] == expected
        assert plan_audit({"s": 1000}).sizes["s"] == 122
        assert plan_audit({"s": 400}).sizes["s"] == 103
        # Worst case p = 0.5, m = 0.05: 384.1 -> 385; at 99 %: 663.5 -> 664.
        assert plan_audit({"s": 10**9}, expected_error=0.5).sizes["s"] == 385
        assert plan_audit({"s": 10**9}, expected_error=0.5, confidence=0.99).sizes["s"] == 664

    def test_small_strata_minimum_and_empty(self):
        plan = plan_audit({"tiny": 5, "empty": 0, "rare": 100}, expected_error=0.0)
        assert dict(plan.sizes) == {"tiny": 5, "empty": 0, "rare": 10}
        assert plan.achieved_margin["tiny"] == 0.0  # audited whole

    def test_per_stratum_expected_error_and_frame(self):
        plan = plan_audit({"a": 10**9, "b": 10**9}, expected_error={"a": 0.1, "b": 0.5})
        assert (plan.sizes["a"], plan.sizes["b"]) == (139, 385)
        frame = plan.to_frame()
        assert list(frame.columns) == [
            "stratum", "population", "expected_error", "required", "size", "margin"
        ]  # fmt: skip
        assert (frame["margin"] <= 0.05 + 1e-9).all()
        assert plan.total == 139 + 385

    def test_budget_allocation(self):
        plan = plan_audit({"a": 1000, "b": 200, "c": 50}, budget=120)
        assert plan.total == 120
        assert dict(plan.required) == {"a": 122, "b": 83, "c": 37}
        assert all(10 <= plan.sizes[s] <= plan.required[s] for s in plan.strata)
        assert plan.sizes["a"] > plan.sizes["b"] > plan.sizes["c"]
        assert all(plan.achieved_margin[s] > 0.05 for s in plan.strata)
        # A budget that covers everything changes nothing.
        assert dict(plan_audit({"a": 1000}, budget=500).sizes) == {"a": 122}

    def test_plan_is_frozen(self):
        plan = plan_audit({"a": 10})
        assert isinstance(plan, AuditPlan)
        with pytest.raises(AttributeError):
            plan.margin = 0.1  # type: ignore[misc]
        with pytest.raises(TypeError):
            plan.sizes["a"] = 3  # type: ignore[index]

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"strata": {}}, "at least one stratum"),
            ({"strata": {"a": -1}}, "'a' must be a non-negative integer"),
            ({"strata": {"a": 2.5}}, "non-negative integer"),
            ({"strata": {"a": 10}, "margin": 0.0}, r"margin must be in \(0, 1\)"),
            ({"strata": {"a": 10}, "margin": -0.1}, "margin"),
            ({"strata": {"a": 10}, "confidence": 1.0}, "confidence"),
            ({"strata": {"a": 10}, "expected_error": 1.5}, "expected_error"),
            ({"strata": {"a": 10}, "expected_error": {"zzz": 0.1, "a": 0.1}}, "unknown strata zzz"),
            ({"strata": {"a": 10, "b": 5}, "expected_error": {"a": 0.1}}, "no value for strata b"),
            ({"strata": {"a": 10}, "budget": -3}, "budget"),
            ({"strata": {"a": 100, "b": 100}, "budget": 15}, "budget 15 is below the 20"),
            ({"strata": {"a": 10}, "min_per_stratum": -1}, "min_per_stratum"),
        ],
    )
    def test_bad_input(self, kwargs, match):
        strata = kwargs.pop("strata")
        with pytest.raises(AuditError, match=match):
            plan_audit(strata, **kwargs)


def decisions_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item": ["i1", "i2", "i3", "i4", "i5", "i6"],
            "tier": ["easy", "easy", "medium", "hard", "easy", "medium"],
            "confidence": [0.99, 0.95, 0.5, 0.9, 0.6, 0.97],
            "annotators": [["a1"], "a2", "a1,a3", ["expert"], [], "a2; a3"],
            "district": ["North", "North", "North", "South", "North", "East"],
        }
    )


class TestAuditStrata:
    def test_priority_and_membership(self):
        strata = audit_strata(
            decisions_frame(), new_annotators={"a3"}, known_districts={"North", "South"}
        )
        assert dict(zip(strata["item"], strata["stratum"], strict=True)) == {
            "i1": "auto_accepted",
            "i2": "auto_accepted",
            "i3": "new_annotators",  # also uncertain: the first stratum wins
            "i5": "uncertain",  # also auto-accepted
            "i6": "new_annotators",  # also a new district
        }
        everything = audit_strata(decisions_frame(), include_other=True)
        assert everything.set_index("item").loc["i4", "stratum"] == "other"

    def test_first_votes_of_each_annotator(self):
        votes = pd.DataFrame(
            {
                "item": ["i1", "i2", "i3", "i6"],
                "annotator": ["a1", "a1", "a1", "a9"],
                "created_at": ["2026-01-03", "2026-01-01", "2026-01-02", "2026-01-01"],
            }
        )
        strata = audit_strata(decisions_frame(), votes=votes, first_votes=2)
        stratum = dict(zip(strata["item"], strata["stratum"], strict=True))
        assert stratum["i2"] == stratum["i3"] == stratum["i6"] == "new_annotators"
        assert stratum["i1"] == "auto_accepted"  # a1's third vote

    def test_bad_input(self):
        with pytest.raises(ColumnError, match="tier"):
            audit_strata(decisions_frame().drop(columns=["tier"]))
        with pytest.raises(ColumnError, match="district"):
            audit_strata(decisions_frame().drop(columns=["district"]), known_districts={"N"})
        with pytest.raises(AuditError, match="more than once"):
            audit_strata(pd.concat([decisions_frame(), decisions_frame()]))
        with pytest.raises(AuditError, match="uncertain_below"):
            audit_strata(decisions_frame(), uncertain_below=2)
        with pytest.raises(ColumnError, match="annotator"):
            audit_strata(decisions_frame(), votes=pd.DataFrame({"item": ["i1"]}))


class TestDrawAuditSample:
    def members(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "item": [f"a{k:03d}" for k in range(300)] + [f"u{k:02d}" for k in range(40)],
                "stratum": ["auto_accepted"] * 300 + ["uncertain"] * 40,
            }
        )

    def test_sizes_reproducible_and_order_free(self):
        members = self.members()
        plan = plan_audit({"auto_accepted": 300, "uncertain": 40})
        sample = draw_audit_sample(plan, members, seed=7)
        counts = sample["stratum"].value_counts().to_dict()
        assert counts == dict(plan.sizes) == {"auto_accepted": 95, "uncertain": 32}
        assert not sample["item"].duplicated().any()
        shuffled = members.sample(frac=1.0, random_state=1)
        pd.testing.assert_frame_equal(sample, draw_audit_sample(plan, shuffled, seed=7))
        other = draw_audit_sample(plan, members, seed=8)
        assert set(other["item"]) != set(sample["item"])
        # A stratum's draw does not depend on the other strata.
        alone = plan_audit({"auto_accepted": 300})
        mapping = {"auto_accepted": members["item"][:300].tolist()}
        assert (
            draw_audit_sample(alone, mapping, seed=7)["item"].tolist()
            == sample.loc[sample["stratum"] == "auto_accepted", "item"].tolist()
        )

    def test_bad_input(self):
        plan = plan_audit({"uncertain": 40})
        members = self.members()
        with pytest.raises(AuditError, match="auto_accepted"):
            draw_audit_sample(plan, members, seed=0)  # a stratum the plan lacks
        with pytest.raises(AuditError, match="has 5 item"):
            draw_audit_sample(plan, {"uncertain": ["x1", "x2", "x3", "x4", "x5"]}, seed=0)
        with pytest.raises(AuditError, match="disjoint"):
            draw_audit_sample(
                plan_audit({"uncertain": 1, "auto_accepted": 1}),
                {"uncertain": ["x"], "auto_accepted": ["x"]},
                seed=0,
            )
        with pytest.raises(AuditError, match="seed"):
            draw_audit_sample(plan, {"uncertain": ["x"] * 40}, seed=-1)
        with pytest.raises(ColumnError, match="stratum"):
            draw_audit_sample(plan, members.drop(columns=["stratum"]), seed=0)


class TestWilsonReport:
    def test_hand_values(self):
        results = pd.DataFrame(
            {
                "item": [f"x{k}" for k in range(30)],
                "stratum": ["auto_accepted"] * 10 + ["uncertain"] * 10 + ["new_districts"] * 10,
                "correct": [True] * 10 + [True, False] * 5 + [False] + [True] * 9,
            }
        )
        report = audit_report(results).set_index("stratum")
        assert list(audit_report(results).columns) == list(REPORT_COLUMNS)
        assert list(report.index) == ["new_districts", "uncertain", "auto_accepted"]
        z2 = 1.959963984540054**2
        # 0 errors of 10: [0, z²/n / (1 + z²/n)] = [0, 0.2775].
        row = report.loc["auto_accepted"]
        assert (row["n"], row["errors"], row["error_rate"]) == (10, 0, 0.0)
        assert row["low"] == pytest.approx(0.0, abs=1e-12)
        assert (
            row["high"]
            == pytest.approx((z2 / 10) / (1 + z2 / 10))
            == pytest.approx(0.27753, abs=1e-5)
        )
        # 5 of 10: 0.5 ± 1.96·sqrt(0.025 + z²/400)/(1 + z²/10) = [0.2366, 0.7634].
        row = report.loc["uncertain"]
        assert (row["low"], row["high"]) == (
            pytest.approx(0.23659, abs=1e-5),
            pytest.approx(0.76341, abs=1e-5),
        )
        # 1 of 10: [0.0179, 0.4042].
        row = report.loc["new_districts"]
        assert (row["low"], row["high"]) == (
            pytest.approx(0.01788, abs=1e-5),
            pytest.approx(0.40416, abs=1e-5),
        )

    def test_bad_input(self):
        with pytest.raises(ColumnError, match="correct"):
            audit_report(pd.DataFrame({"stratum": ["uncertain"]}))
        with pytest.raises(AuditError, match="true/false"):
            audit_report(pd.DataFrame({"stratum": ["uncertain"], "correct": ["maybe"]}))
        with pytest.raises(AuditError, match="confidence"):
            audit_report(pd.DataFrame({"stratum": [], "correct": []}), confidence=0)


@pytest.fixture(scope="module")
def base_project(tmp_path_factory):
    path = tmp_path_factory.mktemp("audit") / "city.gpkg"
    init_project(
        path,
        scenes=[SAMPLE / "scene.tif"],
        parcels=SAMPLE / "city.gpkg",
        parcels_layer="parcels",
        taxonomy=SAMPLE / "taxonomy.yaml",
    )
    return path


@pytest.fixture
def project(base_project, tmp_path):
    copy = tmp_path / "city.gpkg"
    shutil.copy(base_project, copy)
    with Project.open(copy) as opened:
        yield opened


def results_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item": ["P0001", "P0002", "P0003", "P0004"],
            "stratum": ["auto_accepted", "auto_accepted", "uncertain", "uncertain"],
            "label": ["residential", "commercial", "park", "vacant"],
            "audited_label": ["residential", "residential", "park", "construction"],
            "auditor": ["expert-01"] * 4,
            "correct": [True, False, "true", 0],
        }
    )


class TestRecordAudit:
    def test_round_trip(self, project):
        round_id = project.start_round()
        assert project.audits().empty
        assert record_audit(project, results_frame(), round_id=round_id) == 4
        assert record_audit(project, results_frame(), round_id=round_id) == 0  # idempotent
        stored = project.audits(round_id=round_id)
        assert list(stored.columns) == [
            "item", "stratum", "label", "audited_label", "auditor", "correct", "round_id",
            "created_at",
        ]  # fmt: skip
        assert stored["correct"].tolist() == [True, False, True, False]
        assert stored["round_id"].tolist() == [round_id] * 4
        assert "expert-01" in set(project.annotators()["annotator"])
        report = audit_report(project).set_index("stratum")
        assert report.loc["auto_accepted", "errors"] == 1 and report.loc["uncertain", "n"] == 2
        assert audit_report(project, round_id=round_id + 1).empty

    def test_append_only_and_registered(self, project):
        record_audit(project, results_frame())
        with sqlite3.connect(project.path) as con:
            with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                con.execute("DELETE FROM audits")
            kind = con.execute(
                "SELECT data_type FROM gpkg_contents WHERE table_name = 'audits'"
            ).fetchone()
        assert kind == ("attributes",)

    def test_bad_input(self, project):
        good = results_frame()
        with pytest.raises(ColumnError, match="auditor"):
            record_audit(project, good.drop(columns=["auditor"]))
        with pytest.raises(AuditError, match="unknown strata zzz"):
            record_audit(project, good.assign(stratum="zzz"))
        with pytest.raises(AuditError, match="unknown strata auto_accepted"):
            record_audit(project, good, strata=["uncertain"])
        with pytest.raises(AuditError, match="disagrees"):
            record_audit(project, good.assign(correct=True))
        with pytest.raises(AuditError, match="true/false"):
            record_audit(project, good.assign(correct="perhaps"))
        with pytest.raises(ColumnError, match="blank 'audited_label'"):
            record_audit(project, good.assign(audited_label=[None, "a", "b", "c"]))
        with pytest.raises(StoreError, match="not in the project"):
            record_audit(project, good.assign(item="NOPE"))
        with pytest.raises(StoreError, match="Round 99"):
            record_audit(project, good, round_id=99)
        assert project.audits().empty  # nothing half-written


def report_of(stratum: str, n: int, errors: int) -> pd.DataFrame:
    return audit_report(
        pd.DataFrame(
            {"stratum": [stratum] * n, "correct": [False] * errors + [True] * (n - errors)}
        )
    )


class TestAuditFeedback:
    def test_threshold_rules(self):
        thresholds = {"easy_confidence": 0.9, "target_posterior": 0.95}
        # 6 of 40 wrong: upper bound 0.29 > 0.05 -> raise by step.
        up = audit_feedback(
            report_of("auto_accepted", 40, 6), tolerance=0.05, thresholds=thresholds
        )
        assert up.thresholds == {"easy_confidence": pytest.approx(0.92), "target_posterior": 0.95}
        assert up.changes[0].stratum == "auto_accepted" and "raise" in up.changes[0].reason
        # 0 of 100 wrong: upper bound 0.037 < 0.5 * 0.1 -> lower by step / 2.
        down = audit_feedback(
            report_of("auto_accepted", 100, 0), tolerance=0.1, thresholds=thresholds
        )
        assert down.thresholds["easy_confidence"] == pytest.approx(0.89)
        # Too few audited to lower: keep.
        keep = audit_feedback(
            report_of("auto_accepted", 5, 0), tolerance=0.9, thresholds=thresholds
        )
        assert keep.thresholds["easy_confidence"] == 0.9 and "keep" in keep.changes[0].reason
        # The uncertain stratum steers the posterior target; bounds hold.
        capped = audit_feedback(
            report_of("uncertain", 20, 10), tolerance=0.05, thresholds={"target_posterior": 0.99}
        )
        assert capped.thresholds["target_posterior"] == pytest.approx(0.995)
        assert audit_feedback(report_of("uncertain", 20, 10), tolerance=0.05).thresholds == {}

    def test_trust_from_audited_items(self):
        results = pd.DataFrame(
            {"item": [f"i{k}" for k in range(20)], "audited_label": ["park"] * 20}
        )
        votes = pd.DataFrame(
            {
                "item": [f"i{k}" for k in range(20)] * 2 + ["i0"],
                "annotator": ["good"] * 20 + ["bad"] * 20 + ["once"],
                "label": ["park"] * 20 + ["park"] * 8 + ["water"] * 12 + ["park"],
            }
        )
        fb = audit_feedback(
            report_of("uncertain", 20, 0), tolerance=0.1, results=results, votes=votes,
            n_classes=8,
        )  # fmt: skip
        assert fb.answered == {"bad": 20, "good": 20, "once": 1}
        assert fb.right == {"bad": 8, "good": 20, "once": 1}
        assert fb.trust["good"] > fb.trust["once"] > 1.0 > fb.trust["bad"] >= 0.0
        assert fb.as_dict()["trust"] == dict(fb.trust)

    def test_bad_input(self):
        report = report_of("auto_accepted", 10, 1)
        with pytest.raises(AuditError, match="tolerance"):
            audit_feedback(report, tolerance=0)
        with pytest.raises(ColumnError, match="audit_report"):
            audit_feedback(report.drop(columns=["high"]), tolerance=0.1)
        with pytest.raises(ColumnError, match="annotator"):
            audit_feedback(
                report, tolerance=0.1, results=pd.DataFrame({"item": [], "audited_label": []}),
                votes=pd.DataFrame({"item": [], "label": []}),
            )  # fmt: skip
