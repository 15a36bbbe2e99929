"""Tests for geolabel.review.decisions: overriding consensus, optimistic concurrency, imports."""

from __future__ import annotations

import threading

import pandas as pd
import pytest

from geolabel.errors import (
    ColumnError,
    InputFileError,
    LabelError,
    ReviewConflictError,
    ReviewError,
)
from geolabel.review.decisions import (
    Decision,
    import_decisions,
    item_version,
    record_decision,
    record_decisions,
    review_states,
)
from geolabel.review.evolution import proposals
from geolabel.review.queue import export_queue, project_queue
from geolabel.store import Project
from tests.review_helpers import planted_hotspots, review_project


class TestDecision:
    def test_rationale_required(self):
        with pytest.raises(ReviewError, match="rationale"):
            Decision("P0001", "park", "alice", "  ")

    def test_blank_label_and_bad_version(self):
        with pytest.raises(ReviewError, match="label"):
            Decision("P0001", "", "alice", "why")
        with pytest.raises(ReviewError, match="expected_version"):
            Decision("P0001", "park", "alice", "why", expected_version=-1)


class TestRecordDecision:
    def test_overrides_consensus_with_provenance(self, tmp_path):
        with Project.open(review_project(tmp_path)) as project:
            before = project.current_consensus().set_index("item").loc["P0150", "label"]
            result = record_decision(
                project, Decision("P0150", "commercial", "alice", "Shops on both floors.")
            )
            current = project.current_consensus().set_index("item").loc["P0150"]
            reviews = project.reviews().set_index("review_id").loc[result.review_id]
        assert current["label"] == "commercial"
        assert current["method"] == "expert_review"
        assert current["review_id"] == result.review_id
        assert reviews["reviewer"] == "alice"
        assert reviews["note"] == "Shops on both floors."
        assert reviews["previous_label"] == before == result.previous_label
        assert reviews["created_at"]
        assert result.version == 1

    def test_stale_version_is_a_conflict_and_writes_nothing(self, tmp_path):
        with Project.open(review_project(tmp_path)) as project:
            record_decision(project, Decision("P0150", "commercial", "alice", "why", 0))
            n_reviews = len(project.reviews())
            with pytest.raises(ReviewConflictError, match="Reload"):
                record_decision(project, Decision("P0150", "residential", "bob", "why", 0))
            assert len(project.reviews()) == n_reviews
            assert project.current_consensus().set_index("item").loc["P0150", "label"] == (
                "commercial"
            )
            assert item_version(project, "P0150") == 1

    def test_override_needs_the_version(self, tmp_path):
        with Project.open(review_project(tmp_path)) as project:
            record_decision(project, Decision("P0150", "commercial", "alice", "why"))
            with pytest.raises(ReviewConflictError, match="already decided"):
                record_decision(project, Decision("P0150", "residential", "bob", "why"))
            result = record_decision(project, Decision("P0150", "residential", "bob", "why", 1))
            assert result.version == 2 and result.previous_label == "commercial"
            states = review_states(project).set_index("item")
        assert states.loc["P0150", "status"] == "decided"

    def test_unknown_label_and_item(self, tmp_path):
        with Project.open(review_project(tmp_path)) as project:
            with pytest.raises(LabelError, match="mixed_use"):
                record_decision(project, Decision("P0150", "mixed_use", "alice", "why"))
            with pytest.raises(LabelError, match="road"):  # pixel-only, not a parcel label
                record_decision(project, Decision("P0150", "road", "alice", "why"))
            with pytest.raises(ReviewError, match="not in"):
                record_decision(project, Decision("NOPE", "park", "alice", "why"))
            assert project.reviews().empty

    def test_concurrent_deciders_on_one_version_one_wins(self, tmp_path):
        path = review_project(tmp_path)
        outcomes: list[str] = []
        lock = threading.Lock()

        def decide(name: str) -> None:
            with Project.open(path) as project:
                try:
                    record_decision(project, Decision("P0100", "park", name, "why", 0))
                    outcome = "stored"
                except ReviewConflictError:
                    outcome = "conflict"
            with lock:
                outcomes.append(outcome)

        threads = [threading.Thread(target=decide, args=(f"r{k}",)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(outcomes) == ["conflict", "conflict", "conflict", "stored"]
        with Project.open(path) as project:
            assert len(project.reviews()) == 1
            assert item_version(project, "P0100") == 1

    def test_record_decisions_reports_conflicts(self, tmp_path):
        with Project.open(review_project(tmp_path)) as project:
            batch = record_decisions(
                project,
                [
                    Decision("P0001", "institutional", "alice", "school", 0),
                    Decision("P0001", "park", "bob", "field", 0),
                ],
            )
        assert [r.item for r in batch.stored] == ["P0001"]
        assert batch.conflicts[0].reviewer == "bob"
        assert batch.conflicts[0].current_version == 1


class TestImportDecisions:
    def _filled_queue(self, project: Project, tmp_path) -> pd.DataFrame:
        q = project_queue(project, hotspots=planted_hotspots())
        (csv,) = export_queue(q.head(5), csv=tmp_path / "q.csv")
        table = pd.read_csv(csv, dtype=str, keep_default_na=False)
        table.loc[:2, "decision_label"] = "commercial"
        table.loc[:2, "decision_rationale"] = "Offices on every floor."
        table.loc[:2, "reviewer"] = "carol"
        return table

    def test_filled_queue_round_trip(self, tmp_path):
        with Project.open(review_project(tmp_path)) as project:
            table = self._filled_queue(project, tmp_path)
            table.loc[0, "proposal_kind"] = "edge_rule"
            table.loc[0, "proposal_classes"] = "commercial"
            table.loc[0, "proposal_text"] = "Offices over a shop count as commercial."
            table.to_csv(tmp_path / "filled.csv", index=False)
            batch = import_decisions(project, tmp_path / "filled.csv")
            assert len(batch.stored) == 3 and not batch.conflicts
            assert batch.stored[0].proposal_ids
            pending = proposals(project, status="pending")
            assert pending["proposal"].iloc[0].text.startswith("Offices over a shop")
            again = import_decisions(project, tmp_path / "filled.csv")
            assert not again.stored and len(again.conflicts) == 3

    def test_bad_label_stores_nothing(self, tmp_path):
        with Project.open(review_project(tmp_path)) as project:
            table = self._filled_queue(project, tmp_path)
            table.loc[1, "decision_label"] = "shops"
            table.to_csv(tmp_path / "filled.csv", index=False)
            with pytest.raises(LabelError, match="'shops'"):
                import_decisions(project, tmp_path / "filled.csv")
            assert project.reviews().empty

    def test_missing_rationale_and_reviewer_listed(self, tmp_path):
        with Project.open(review_project(tmp_path)) as project:
            table = self._filled_queue(project, tmp_path)
            table.loc[1, "decision_rationale"] = ""
            table.loc[2, "reviewer"] = ""
            table.to_csv(tmp_path / "filled.csv", index=False)
            with pytest.raises(ReviewError, match="row 3: no rationale") as info:
                import_decisions(project, tmp_path / "filled.csv")
            assert "row 4: no reviewer" in str(info.value)
            assert project.reviews().empty

    def test_missing_columns_and_file(self, tmp_path):
        (tmp_path / "d.csv").write_text("item,label\nP0001,park\n")
        with Project.open(review_project(tmp_path)) as project:
            with pytest.raises(ColumnError, match="rationale"):
                import_decisions(project, tmp_path / "d.csv")
            with pytest.raises(InputFileError, match="does not exist"):
                import_decisions(project, tmp_path / "none.csv")
            (tmp_path / "d.txt").write_text("x")
            with pytest.raises(InputFileError, match=r"\.csv, \.gpkg"):
                import_decisions(project, tmp_path / "d.txt")

    def test_jsonl_with_proposal(self, tmp_path):
        lines = (
            '{"item": "P0153", "label": "residential", "rationale": "flats over shops", '
            '"reviewer": "dan", "proposal": {"kind": "split", "classes": ["residential", '
            '"commercial"], "new_class": "mixed_use", "definition": "Homes over shops."}}\n'
        )
        (tmp_path / "d.jsonl").write_text(lines)
        with Project.open(review_project(tmp_path)) as project:
            batch = import_decisions(project, tmp_path / "d.jsonl")
            pending = proposals(project, status="pending")
        assert len(batch.stored) == 1
        assert pending["proposal"].iloc[0].new_class == "mixed_use"
        assert pending["proposal"].iloc[0].rationale == "flats over shops"

    def test_filled_geopackage_layer(self, tmp_path):
        import pyogrio

        with Project.open(review_project(tmp_path)) as project:
            q = project_queue(project, hotspots=planted_hotspots())
            (gpkg,) = export_queue(q.head(4), gpkg=tmp_path / "q.gpkg")
            layer = pyogrio.read_dataframe(gpkg, layer="review_queue")
            layer.loc[0, ["decision_label", "decision_rationale", "reviewer"]] = [
                "park",
                "mown grass and paths",
                "qgis-user",
            ]
            pyogrio.write_dataframe(layer, gpkg, layer="review_queue")
            batch = import_decisions(project, gpkg)
            assert [(r.item, r.reviewer) for r in batch.stored] == [
                (layer.loc[0, "item"], "qgis-user")
            ]
