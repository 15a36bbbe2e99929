"""Task assignment with redundancy and hidden gold (geolabel/crowd/assignment.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import kstest

from geolabel.crowd import assign_tasks, load_assignment, save_assignment
from geolabel.crowd.assignment import task_id_for
from geolabel.errors import AssignmentError, ColumnError, StoreError
from geolabel.store import Project

ITEMS = [f"p{i:04d}" for i in range(600)]
ANNOTATORS = [f"w{j:02d}" for j in range(25)]
GOLD = {f"g{i:02d}": "park" for i in range(30)}


@pytest.fixture(scope="module")
def batch():
    return assign_tasks(
        ITEMS, ANNOTATORS, redundancy=3, gold=GOLD, gold_rate=0.1, round_id=None, seed=0
    )


class TestAssignTasks:
    def test_redundancy_and_no_annotator_twice(self, batch):
        tasks = batch.tasks
        real = tasks[~tasks["is_gold"]]
        assert (real.groupby("item").size() == 3).all() and set(real["item"]) == set(ITEMS)
        assert not tasks.duplicated(["item", "annotator"]).any()

    def test_balanced_load(self, batch):
        real = batch.tasks[~batch.tasks["is_gold"]].groupby("annotator").size()
        assert real.max() - real.min() <= 1 and real.sum() == 1800

    def test_gold_rate_per_annotator(self, batch):
        share = batch.tasks.groupby("annotator")["is_gold"].mean()
        assert share.between(0.08, 0.12).all()
        used = batch.tasks[batch.tasks["is_gold"]].groupby("item").size()
        assert used.max() - used.min() <= 1  # gold wears evenly

    def test_gold_cannot_be_told_apart(self, batch):
        tasks = batch.tasks
        exported = batch.export()
        assert list(exported.columns) == ["task_id", "item", "annotator", "position"]
        assert tasks["task_id"].str.fullmatch(r"t-[0-9a-f]{16}").all()
        # Gold sits anywhere in a queue: its relative positions are uniform.
        size = tasks.groupby("annotator")["position"].transform("size")
        relative = (tasks["position"] + 0.5) / size
        assert kstest(relative[tasks["is_gold"]], "uniform").pvalue > 0.01
        assert (tasks.groupby("annotator")["position"].apply(sorted).map(
            lambda p: p == list(range(len(p)))
        )).all()  # fmt: skip

    def test_spread_policy_keeps_gold_coming(self):
        batch = assign_tasks(ITEMS, ANNOTATORS, redundancy=3, gold=GOLD, gold_rate=0.1,
                             gold_position="spread", seed=1)  # fmt: skip
        for _, queue in batch.tasks.groupby("annotator"):
            gold_at = np.sort(queue.loc[queue["is_gold"], "position"].to_numpy())
            assert np.diff(gold_at).max() < 2.5 * len(queue) / len(gold_at)

    def test_exclude_earlier_pairs(self):
        done = pd.DataFrame({"item": ["p0000"] * 3, "annotator": ["w00", "w01", "w02"]})
        batch = assign_tasks(ITEMS[:50], ANNOTATORS[:5], redundancy=2, exclude=done, seed=2)
        mine = batch.tasks[batch.tasks["item"] == "p0000"]
        assert set(mine["annotator"]) <= {"w03", "w04"}
        with pytest.raises(AssignmentError, match=r"only 2 annotator.*redundancy=3"):
            assign_tasks(ITEMS[:50], ANNOTATORS[:5], redundancy=3, exclude=done, seed=2)
        with pytest.raises(ColumnError, match=r"'annotator'"):
            assign_tasks(ITEMS, ANNOTATORS, exclude=pd.DataFrame({"item": ["p0000"]}))

    def test_deterministic_with_a_seed(self):
        a = assign_tasks(ITEMS[:40], ANNOTATORS[:6], redundancy=2, seed=5)
        b = assign_tasks(ITEMS[:40], ANNOTATORS[:6], redundancy=2, seed=5)
        assert a.tasks.equals(b.tasks)

    @pytest.mark.parametrize(
        ("kwargs", "fragment"),
        [
            ({"redundancy": 26}, "from 1 to the number of annotators (25)"),
            ({"redundancy": 0}, "redundancy must be"),
            ({"gold_rate": 0.2}, "needs gold items"),
            ({"gold_rate": 1.0, "gold": GOLD}, "gold_rate must be in"),
            ({"gold_position": "first", "gold": GOLD, "gold_rate": 0.1}, "random, spread"),
        ],
    )
    def test_bad_requests(self, kwargs, fragment):
        with pytest.raises(AssignmentError) as err:
            assign_tasks(ITEMS, ANNOTATORS, **kwargs)
        assert fragment in str(err.value)

    def test_bad_ids(self):
        with pytest.raises(AssignmentError, match=r"repeat"):
            assign_tasks(["a", "a"], ANNOTATORS)
        with pytest.raises(AssignmentError, match=r"No items"):
            assign_tasks([], ANNOTATORS)
        with pytest.raises(AssignmentError, match=r"No annotators"):
            assign_tasks(ITEMS, [])


class TestStoreRoundTrip:
    def test_save_and_load(self, tmp_path):
        project = Project.create(tmp_path / "p.gpkg", crs="EPSG:32610")
        items = pd.DataFrame({"item": ITEMS[:60] + list(GOLD), "kind": "parcel"})
        project.add_items(items)
        round_id = project.start_round({"redundancy": 3})
        batch = assign_tasks(ITEMS[:60], ANNOTATORS[:8], redundancy=3, gold=GOLD,
                             gold_rate=0.2, round_id=round_id, seed=3)  # fmt: skip
        assert save_assignment(project, batch) == len(batch.tasks)
        assert save_assignment(project, batch) == 0  # idempotent
        back = load_assignment(project, round_id)
        assert back.redundancy == 3 and back.gold_rate == pytest.approx(batch.tasks.is_gold.mean())
        expected = batch.tasks.assign(round_id=batch.tasks["round_id"].astype("Int64"))
        pd.testing.assert_frame_equal(back.tasks, expected, check_dtype=False)
        stored = project.tasks(round_id).set_index("task_id")
        first = batch.tasks.iloc[0]
        assert first["task_id"] == task_id_for(first["item"], first["annotator"], round_id)
        assert stored.loc[first["task_id"], "item"] == first["item"]

    def test_unknown_items_and_empty_store(self, tmp_path):
        project = Project.create(tmp_path / "p.gpkg", crs="EPSG:32610")
        with pytest.raises(AssignmentError, match=r"No tasks stored"):
            load_assignment(project)
        with pytest.raises(StoreError, match=r"not in the project"):
            save_assignment(project, assign_tasks(["zz"], ["w1"], redundancy=1))
