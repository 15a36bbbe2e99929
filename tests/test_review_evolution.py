"""Tests for geolabel.review.evolution: proposals -> next taxonomy version, remaps, flags."""

from __future__ import annotations

import json

import pytest

from geolabel.errors import ModelMismatchError, ReviewError
from geolabel.review.decisions import Decision, record_decision, review_states
from geolabel.review.evolution import (
    TaxonomyProposal,
    apply_proposals,
    evolve_taxonomy,
    label_map,
    proposals,
    reject_proposals,
    taxonomy_remaps,
)
from geolabel.review.queue import project_queue
from geolabel.store import Project
from geolabel.taxonomy import load_taxonomy, remap_labels
from tests.conftest import SAMPLE
from tests.review_helpers import planted_hotspots, review_project

SPLIT = TaxonomyProposal(
    kind="split",
    classes=("residential", "commercial"),
    new_class="mixed_use",
    name="Mixed use",
    definition="Homes and shops share the buildings in comparable floor areas.",
    rationale="shops under flats",
)


@pytest.fixture(scope="module")
def v1():
    return load_taxonomy(SAMPLE / "taxonomy.yaml")


class TestTaxonomyProposal:
    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"kind": "edge_rule", "classes": ("residential",)}, "needs its text"),
            ({"kind": "split", "classes": ("residential",), "new_class": "x"}, "definition"),
            ({"kind": "merge", "classes": ("park",), "new_class": "park"}, "two classes"),
            ({"kind": "rename", "classes": ("park",)}, "new_class"),
            ({"kind": "gold_item", "items": ("P1",)}, "label"),
            ({"kind": "recolour", "classes": ("park",)}, "not one of"),
            ({"kind": "edge_rule", "classes": ("bad id",), "text": "x"}, "not a class id"),
        ],
    )
    def test_invalid(self, kwargs, message):
        with pytest.raises(ReviewError, match=message):
            TaxonomyProposal(**kwargs)

    def test_round_trip_and_unknown_keys(self):
        assert TaxonomyProposal.from_dict(SPLIT.to_dict()) == SPLIT
        with pytest.raises(ReviewError, match="colour_name"):
            TaxonomyProposal.from_dict({"kind": "split", "colour_name": "red"})


class TestEvolveTaxonomy:
    def test_split_adds_class_tree_node_and_remap(self, v1):
        evolved = evolve_taxonomy(v1, [SPLIT], date="2026-01-10", authors=["alice"])
        v2 = evolved.taxonomy
        assert v2.version == 2 and "mixed_use" in v2
        assert v2.code_of("mixed_use") not in {c.code for c in v1.classes}
        assert v2.changelog[-1].version == 2
        assert "alice" in v2.changelog[-1].changes[0]
        assert evolved.remap.targets("residential") == ("residential", "mixed_use")
        assert evolved.remap.targets("park") == ("park",)
        assert "mixed_use" in v2.decision_tree.leaves()
        answers = {n: False for n in v2.decision_tree.node_ids}
        answers |= {"built_q": True, "mixed_use_q": True}
        assert v2.decision_tree.classify(answers) == "mixed_use"
        moved = remap_labels(["residential", "park"], evolved.remap, old=v1, new=v2)
        assert moved.ambiguous == (0,)

    def test_rules_and_duplicates(self, v1):
        rule = TaxonomyProposal(kind="edge_rule", classes=("park",), text="Dog parks are park.")
        evolved = evolve_taxonomy(v1, [rule, rule])
        assert evolved.taxonomy.get("park").edge_rules[-1] == "Dog parks are park."
        assert len(evolved.changes) == 1

    def test_merge_and_rename(self, v1):
        merge = TaxonomyProposal(
            kind="merge", classes=("vacant", "construction"), new_class="vacant"
        )
        evolved = evolve_taxonomy(v1, [merge])
        assert "construction" not in evolved.taxonomy
        assert evolved.remap.targets("construction") == ("vacant",)
        assert "construction" not in evolved.taxonomy.decision_tree.leaves()
        rename = TaxonomyProposal(kind="rename", classes=("park",), new_class="green_space")
        renamed = evolve_taxonomy(v1, [rename])
        assert "green_space" in renamed.taxonomy.decision_tree.leaves()
        assert renamed.remap.targets("park") == ("green_space",)

    def test_unknown_class_and_taken_id(self, v1):
        with pytest.raises(ReviewError, match="'shops'"):
            evolve_taxonomy(
                v1, [TaxonomyProposal(kind="example", classes=("shops",), text="a shop")]
            )
        taken = TaxonomyProposal(
            kind="split", classes=("residential",), new_class="park", definition="d"
        )
        with pytest.raises(ReviewError, match="already has"):
            evolve_taxonomy(v1, [taken])

    def test_gold_only_changes_nothing(self, v1):
        gold = TaxonomyProposal(kind="gold_item", items=("P1",), label="park")
        with pytest.raises(ReviewError, match="stays current"):
            evolve_taxonomy(v1, [gold])


class TestApplyProposals:
    def _propose(self, project: Project) -> None:
        record_decision(
            project,
            Decision("P0153", "residential", "alice", "flats over shops", proposals=(SPLIT,)),
        )

    def test_split_creates_v2_remaps_and_routes_relabel(self, tmp_path):
        with Project.open(review_project(tmp_path)) as project:
            self._propose(project)
            change = apply_proposals(project, applied_by="admin", date="2026-01-10")
            v2 = project.current_taxonomy()
            current = project.current_consensus()
            queue = project_queue(project, hotspots=planted_hotspots())
            states = review_states(project).set_index("item")
            applied = proposals(project, status="applied")
            remaps = taxonomy_remaps(project)
        assert (change.from_version, change.to_version) == (1, 2)
        assert v2.version == 2 and "mixed_use" in v2
        assert (current["taxonomy_version"] == "2").all()
        assert change.n_remapped == len(current)
        remapped = current[current["method"] == "taxonomy_remap"]
        provenance = remapped["votes"].map(len).gt(0) | remapped["review_id"].notna()
        assert provenance.all()  # every remapped label keeps its votes or its review
        assert remapped.set_index("item").loc["P0153", "review_id"].startswith("rev-")
        assert "P0153" in change.relabel
        assert project.meta["review.relabel"] == json.dumps(list(change.relabel))
        assert states.loc["P0153", "status"] == "relabel"
        assert states.loc["P0153", "version"] == 2
        head = queue.head(len(change.relabel))
        assert set(head["item"]) == set(change.relabel)
        assert (head["status"] == "relabel").all()
        assert applied["applied_version"].tolist() == ["2"]
        assert remaps["mapping"].iloc[0]["residential"] == ["residential", "mixed_use"]

    def test_relabel_then_decide_mixed_use(self, tmp_path):
        with Project.open(review_project(tmp_path)) as project:
            self._propose(project)
            apply_proposals(project, applied_by="admin")
            version = int(review_states(project).set_index("item").loc["P0153", "version"])
            record_decision(
                project, Decision("P0153", "mixed_use", "alice", "now a class", version)
            )
            row = project.current_consensus().set_index("item").loc["P0153"]
        assert row["label"] == "mixed_use" and row["taxonomy_version"] == "2"

    def test_flag_all_flags_every_split_item(self, tmp_path):
        with Project.open(review_project(tmp_path)) as project:
            self._propose(project)
            current = project.current_consensus()
            n_split = int(current["label"].isin(["residential", "commercial"]).sum())
            change = apply_proposals(project, applied_by="admin", flag="all")
        assert len(change.relabel) == n_split

    def test_models_of_the_old_version_are_refused(self, tmp_path):
        from geolabel.prelabel.model import ModelCard

        with Project.open(review_project(tmp_path)) as project:
            v1 = project.current_taxonomy()
            card = ModelCard(
                model_version="m1",
                classes=v1.class_ids,
                taxonomy_name=v1.name,
                taxonomy_version=str(v1.version),
                taxonomy_sha256=v1.sha256,
                bands=(1, 2, 3, 4),
                band_names=("r", "g", "b", "nir"),
                mean=(0.0,) * 4,
                std=(1.0,) * 4,
                config={},
                tile_size=256,
                epochs=1,
                training_items_sha256="x",
                n_training_items=1,
            )
            card.check_taxonomy(v1.name, v1.version, v1.sha256)  # fine before
            self._propose(project)
            apply_proposals(project, applied_by="admin")
            v2 = project.current_taxonomy()
        with pytest.raises(ModelMismatchError, match=r"v1.*land_use v2.*geolabel train"):
            card.check_taxonomy(v2.name, v2.version, v2.sha256)

    def test_nothing_pending_and_unknown_ids(self, tmp_path):
        with Project.open(review_project(tmp_path)) as project:
            with pytest.raises(ReviewError, match="No pending"):
                apply_proposals(project, applied_by="admin")
            self._propose(project)
            with pytest.raises(ReviewError, match="prop-nope"):
                apply_proposals(project, ["prop-nope"], applied_by="admin")
            with pytest.raises(ReviewError, match="flag"):
                apply_proposals(project, applied_by="admin", flag="some")  # type: ignore[arg-type]
            assert project.current_taxonomy().version == 1

    def test_reject(self, tmp_path):
        with Project.open(review_project(tmp_path)) as project:
            self._propose(project)
            (pid,) = proposals(project, status="pending")["proposal_id"]
            assert reject_proposals(project, [pid], by="admin", reason="not yet") == 1
            with pytest.raises(ReviewError, match="not pending"):
                reject_proposals(project, [pid], by="admin")
            assert proposals(project, status="rejected")["resolved_by"].tolist() == ["admin"]

    def test_gold_items_and_label_map(self, tmp_path):
        from geolabel.review.guidelines import gold_items

        gold = TaxonomyProposal(kind="gold_item", items=("P0002",), label="park")
        rename = TaxonomyProposal(kind="rename", classes=("park",), new_class="green_space")
        with Project.open(review_project(tmp_path)) as project:
            record_decision(
                project, Decision("P0002", "park", "alice", "a park", proposals=(gold, rename))
            )
            change = apply_proposals(project, applied_by="admin")
            stored = gold_items(project)
            mapping = label_map(project, 1)
        assert change.n_gold_added == 1
        assert stored.to_dict(orient="records") == [
            {"item": "P0002", "label": "green_space", "taxonomy_version": "2"}
        ]
        assert mapping["park"] == "green_space" and mapping["residential"] == "residential"
