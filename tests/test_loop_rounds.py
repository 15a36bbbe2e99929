"""Rounds on a real generated project: simulated crowd, people via files, resuming, the demo."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from geolabel.cli.main import app
from geolabel.errors import AnnotationImportError
from geolabel.loop.collect import collect, next_wave, posteriors
from geolabel.loop.config import LoopConfig
from geolabel.loop.demo import project_from_sample, run_demo
from geolabel.loop.rounds import World, run_round
from geolabel.loop.state import add_gold, read_gold_table, round_items
from geolabel.prelabel.model import ModelConfig
from geolabel.prelabel.train import TrainConfig
from geolabel.store import Project

TINY = TrainConfig(
    model=ModelConfig(encoder_depth=3, decoder_channels=(16, 8, 8)),
    tile_size=128,
    batch_size=4,
    steps_per_epoch=3,
    max_epochs=2,
    min_epochs=1,
    num_threads=1,
)
CFG = LoopConfig(batch_size=16, min_distance_m=10.0)


@pytest.fixture(scope="module")
def sample(sample_dir) -> Path:
    """The bundled sample city (286 parcels of every class; a smaller city is all downtown)."""
    return sample_dir


def _truth(sample: Path) -> pd.DataFrame:
    return pd.read_csv(sample / "truth" / "parcels.csv", dtype={"parcel_id": str}).rename(
        columns={"parcel_id": "item", "land_use": "label"}
    )


def _project(sample: Path, path: Path) -> Path:
    return project_from_sample(sample, path, link_notices=False)


@pytest.fixture(scope="module")
def simulated(sample, tmp_path_factory):
    """A project after one simulated round (model trained in the round)."""
    path = _project(sample, tmp_path_factory.mktemp("sim") / "city.gpkg")
    with Project.open(path) as p:
        classes = list(p.current_taxonomy().parcel_class_ids)
    world = World.from_sample(sample, classes)
    report = run_round(path, config=CFG, world=world, train_config=TINY, truth=_truth(sample))
    return path, report, world


class TestGold:
    def test_store_and_read_back(self, sample, tmp_path):
        path = _project(sample, tmp_path / "g.gpkg")
        with Project.open(path) as p:
            gold = read_gold_table(p)
            assert len(gold) > 0
            item = gold.index[0]
            assert add_gold(p, pd.Series({item: gold[item]}), source="sample") == 0
            add_gold(p, pd.Series({item: "water"}), source="correction")
            assert read_gold_table(p)[item] == "water"  # the latest answer wins
            with pytest.raises(Exception, match="not in"):
                add_gold(p, pd.Series({"NOPE": "water"}), source="x")


class TestSimulatedRound:
    def test_round_finishes_with_provenance(self, simulated):
        path, report, _ = simulated
        assert report.status == "finished" and report.n_selected == CFG.batch_size
        assert sum(report.tiers.values()) == CFG.batch_size
        priced = (
            report.counts["verify"] * CFG.prices.verify
            + (report.counts["vote"] + report.counts["gold"]) * CFG.prices.crowd_vote
            + report.counts["expert"] * CFG.prices.expert
            + report.counts["audit"] * CFG.prices.audit
        )
        assert report.cost["total"] == pytest.approx(priced, abs=1e-3)
        assert 0.0 <= report.metrics["consensus_accuracy"] <= 1.0
        with Project.open(path) as p:
            cons = p.current_consensus()
            items = round_items(p, report.round_id)
            ann = p.annotations()
            assert p.rounds()["status"].tolist() == ["finished"]
            audits = p.audits(report.round_id)
        assert len(items) == CFG.batch_size
        decided = items.dropna(subset=["label"])
        assert set(decided["item"]) <= set(cons["item"])
        # Every consensus row of the round points at stored votes of its own item.
        mine = cons[cons["round_id"] == report.round_id]
        ids = dict(zip(ann["annotation_id"], ann["item"], strict=True))
        for item, votes in zip(mine["item"], mine["votes"], strict=True):
            assert votes and all(ids[v] == item for v in votes)
        assert len(audits) == report.counts["audit"] > 0

    def test_cold_start_selects_by_density_and_routing_still_reads_novelty_and_impact(
        self, sample, tmp_path, monkeypatch
    ):
        import geolabel.loop.rounds as rounds

        seen, weights = {}, []
        real_route, real_score = rounds.route, rounds.score_pool

        def spy(candidates, routing, **kwargs):
            seen.update(kwargs, items=list(candidates["item"]))
            return real_route(candidates, routing, **kwargs)

        def score_spy(pool, w, **kwargs):
            weights.append(dict(w))
            return real_score(pool, w, **kwargs)

        monkeypatch.setattr(rounds, "route", spy)
        monkeypatch.setattr(rounds, "score_pool", score_spy)
        path = _project(sample, tmp_path / "r.gpkg")
        with Project.open(path) as p:
            classes = list(p.current_taxonomy().parcel_class_ids)
            n_starter = p.annotations("parcel")["item"].nunique()
        # The starter set is below 100 labels per class: the round is a cold start.
        cfg = LoopConfig(batch_size=16, min_distance_m=10.0, cold_start_per_class=100.0)
        report = run_round(
            path, config=cfg, world=World.from_sample(sample, classes), train_config=TINY
        )
        assert weights[0] == {"density": 1.0}
        assert any(f"Cold start: {n_starter} labeled item(s)" in n for n in report.notes)
        # Selection scored density only; routing still reads novelty and impact.
        assert weights[1] == {"novelty": 1.0, "impact": 1.0}
        for signal in ("novelty", "impact"):
            values = seen[signal].reindex(seen["items"])
            assert values.notna().all() and values.between(0, 1).all()
        assert seen["novelty"].nunique() > 1 and seen["impact"].nunique() > 1

    @pytest.mark.slow
    def test_second_round_selects_other_items(self, simulated):
        path, first, world = simulated
        copy = path.with_name("second.gpkg")
        shutil.copy(path, copy)
        shutil.copytree(path.with_name("city_models"), copy.with_name("second_models"))
        report = run_round(copy, config=CFG, world=world, train_config=TINY)
        with Project.open(copy) as p:
            items = round_items(p)
        one = set(items.loc[items["round_id"] == first.round_id, "item"])
        two = set(items.loc[items["round_id"] == report.round_id, "item"])
        assert report.round_id == first.round_id + 1 and not one & two


class TestPeopleThroughFiles:
    def test_waits_then_resumes_from_imported_answers(self, simulated, sample, tmp_path):
        path, _, world = simulated
        fresh = _project(sample, tmp_path / "people.gpkg")
        shutil.copytree(path.with_name("city_models"), fresh.with_name("people_models"))
        with Project.open(fresh) as p:  # the crowd is known from earlier work
            p.add_annotators(pd.DataFrame({"annotator": world.workforce.crowd}), kind="crowd")
        first = run_round(fresh, config=CFG)
        assert first.status == "waiting" and first.tasks_file
        waves = 0
        report = first
        while report.status == "waiting":
            tasks = pd.read_csv(report.tasks_file, dtype=str)
            assert {"item", "annotator", "prelabel"} <= set(tasks.columns)
            answers = world.workforce.answer(tasks, 50 + waves)
            answer_file = tmp_path / f"answers-{waves}.csv"
            answers.to_csv(answer_file, index=False)
            report = run_round(fresh, config=CFG, annotations=answer_file)
            # Importing the same answers again changes nothing.
            with Project.open(fresh) as p:
                n = len(p.annotations())
            again = (
                run_round(fresh, config=CFG, annotations=answer_file)
                if report.status == "waiting"
                else report
            )
            with Project.open(fresh) as p:
                assert len(p.annotations()) == n
            report = again
            waves += 1
            assert waves < 15
        assert report.status == "finished" and report.round_id == first.round_id
        assert "audit-sample.csv" in report.audit.get("sample_file", "audit-sample.csv")

    def test_bad_answers_file_stores_nothing(self, simulated, sample, tmp_path):
        path, _, world = simulated
        fresh = _project(sample, tmp_path / "bad.gpkg")
        shutil.copytree(path.with_name("city_models"), fresh.with_name("bad_models"))
        with Project.open(fresh) as p:
            p.add_annotators(pd.DataFrame({"annotator": world.workforce.crowd}), kind="crowd")
            before = len(p.annotations())
        run_round(fresh, config=CFG)
        bad = tmp_path / "bad.csv"
        bad.write_text("item,annotator,label\nP0001,crowd-001,skyscraper\n")
        with pytest.raises(AnnotationImportError, match="skyscraper"):
            run_round(fresh, config=CFG, annotations=bad)
        with Project.open(fresh) as p:
            assert len(p.annotations()) == before
        result = CliRunner().invoke(app, ["round", str(fresh), "--annotations", str(bad)])
        assert result.exit_code == 1 and "Traceback" not in result.output


class TestCollect:
    def _setup(self, sample):
        truth = _truth(sample)
        world = World.from_sample(sample, ["residential", "commercial", "industrial",
                                           "institutional", "park", "water", "vacant",
                                           "construction"])  # fmt: skip
        classes = list(world.workforce.simulator.classes)
        rng = np.random.default_rng(0)
        items = truth["item"].head(40).tolist()
        rows = {}
        for item, label in zip(truth["item"], truth["label"], strict=True):
            p = rng.dirichlet([1.0] * len(classes))
            if label in classes:
                p = 0.7 * np.eye(len(classes))[classes.index(label)] + 0.3 * p
            rows[item] = p
        pre = pd.DataFrame.from_dict(rows, orient="index", columns=[f"p_{c}" for c in classes])
        pre["label"] = [classes[i] for i in pre.to_numpy().argmax(axis=1)]
        tiers = (["easy", "medium", "hard", "medium"] * 10)[: len(items)]
        routed = pd.DataFrame({"item": items, "tier": tiers})
        return world, classes, pre, routed

    def test_tiers_redundancy_and_cost(self, sample):
        world, classes, pre, routed = self._setup(sample)
        cfg = LoopConfig(seed=1)
        res = collect(routed, pre, world.workforce, cfg, classes=classes)
        d = res.decisions.set_index("item")
        assert (d["method"] != "undecided").all()
        assert (d.loc[routed.loc[routed["tier"] == "hard", "item"], "method"] == "expert").all()
        assert d["n_votes"].max() <= cfg.redundancy.max_votes
        easy = d[d["method"] == "prelabel_verified"]
        assert (easy["label"] == pre.loc[easy.index, "label"]).all()
        assert res.cost["total"] == pytest.approx(
            res.counts["verify"] * cfg.prices.verify
            + (res.counts["vote"] + res.counts["gold"]) * cfg.prices.crowd_vote
            + res.counts["expert"] * cfg.prices.expert
        )
        # Deterministic: the same seed buys the same answers.
        again = collect(routed, pre, world.workforce, cfg, classes=classes)
        assert again.votes[["item", "annotator", "label"]].equals(
            res.votes[["item", "annotator", "label"]]
        )
        # Nobody answers an item twice.
        assert not res.votes.duplicated(["item", "annotator"]).any()

    def test_posteriors_clamp_gold(self, sample):
        votes = pd.DataFrame(
            {
                "item": ["g", "g", "x", "x"],
                "annotator": ["a", "b", "a", "b"],
                "label": ["park", "park", "water", "water"],
            }
        )
        post = posteriors(votes, ["park", "water"], gold=pd.Series({"g": "water"}))
        assert post.loc["g", "water"] == 1.0 and post.loc["x", "water"] > 0.5

    def test_no_experts_is_a_clear_error(self, sample):
        world, classes, pre, routed = self._setup(sample)
        from geolabel.errors import AssignmentError

        with pytest.raises(AssignmentError, match="needs an expert"):
            next_wave(
                routed, pre, pd.DataFrame(), LoopConfig(), classes=classes,
                crowd=world.workforce.crowd, experts=[],
            )  # fmt: skip


class TestDemo:
    @pytest.mark.slow  # CI runs `geolabel demo` itself (the README's first command)
    def test_demo_two_rounds_with_report(self, sample, tmp_path):
        out = tmp_path / "demo"
        result = run_demo(
            out, rounds=2, batch_size=12, sample=sample, train_config=TINY, review=False
        )
        rounds = result.table[result.table["round"].astype(str) != "POIs"]
        assert len(rounds) == 2 and rounds["cumulative_cost"].is_monotonic_increasing
        pois = result.table[result.table["round"].astype(str) == "POIs"]
        assert len(pois) == 1 and pois["round_accuracy"].iloc[0] > 0.5
        for name in ("report.md", "report.html", "learning_curve.png", "cost_accuracy.png"):
            assert (out / name).stat().st_size > 500
        assert "cost–accuracy" in (out / "report.md").read_text(encoding="utf-8")
        # Running it again resumes: nothing more to do, the same rounds.
        again = run_demo(
            out, rounds=2, batch_size=12, sample=sample, train_config=TINY, review=False
        )
        assert len(again.table) == 2 and not again.rounds  # POIs were labeled before

    def test_demo_cli_bad_sample(self, tmp_path):
        result = CliRunner().invoke(app, ["demo", str(tmp_path / "d"), "--sample", str(tmp_path)])
        assert result.exit_code == 1 and "not a sample folder" in result.output


def test_plan_cli(simulated, tmp_path):
    path, _, _ = simulated
    out = tmp_path / "plan.toml"
    png = tmp_path / "curve.png"
    result = CliRunner().invoke(
        app,
        ["plan", str(path), "--target", "0.95", "--plot", str(png), "--write-config", str(out),
         "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["target"] == 0.95 and png.stat().st_size > 1000
    from geolabel.loop.config import load_config

    assert load_config(out).routing.easy_confidence == summary["easy_confidence"]


def test_new_classes_start_from_the_previous_encoder(tmp_path):
    """After a taxonomy split the model keeps what it learned of the imagery, not its head."""
    from dataclasses import replace

    import torch

    from geolabel.loop.rounds import _headless_weights
    from geolabel.prelabel.model import ModelConfig, build_model

    config = ModelConfig(encoder_depth=3, decoder_channels=(16, 8, 8))
    torch.manual_seed(0)
    old = build_model(config, 4, 7)
    (tmp_path / "m").mkdir()
    torch.save(old.state_dict(), tmp_path / "m" / "weights.pt")
    path = _headless_weights(tmp_path / "m")
    assert _headless_weights(tmp_path / "m") == path  # written once
    state = torch.load(path, weights_only=True)
    assert state and not any(k.startswith("segmentation_head.") for k in state)
    torch.manual_seed(1)
    new = build_model(replace(config, weights=path), 4, 8)  # one class more
    assert new.segmentation_head[0].out_channels == 8
    for name, value in new.state_dict().items():
        if not name.startswith("segmentation_head.") and value.dtype.is_floating_point:
            assert torch.equal(value, old.state_dict()[name]), name
