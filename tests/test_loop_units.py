"""The loop's parts on small frames: settings, scorers, diverse batches, routing, the planner."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from geolabel.cli.main import app
from geolabel.errors import ColumnError, ConfigError
from geolabel.loop.config import COLD_START_SELECTION, LoopConfig, Routing, load_config
from geolabel.loop.planner import (
    WorkforceModel,
    estimate_workforce,
    plan,
    plot_cost_accuracy,
    simulate_policy,
    simulate_uniform,
)
from geolabel.loop.route import route
from geolabel.loop.select import diverse_batch, embedding_clusters, score_pool

K = 3


class TestConfig:
    def test_defaults_are_valid_and_round_trip(self):
        cfg = LoopConfig()
        assert cfg.routing.hard_confidence < cfg.routing.easy_confidence
        assert cfg.to_dict()["prices"]["expert"] > cfg.to_dict()["prices"]["crowd_vote"]

    def test_toml_and_yaml(self, tmp_path):
        toml = tmp_path / "loop.toml"
        toml.write_text(
            "batch_size = 12\n[prices]\nexpert = 2.5\n[redundancy]\nmax_votes = 9\n"
            "[selection]\nmargin = 1\nrandom = 0.5\n"
        )
        cfg = load_config(toml)
        assert cfg.batch_size == 12 and cfg.prices.expert == 2.5
        assert cfg.redundancy.max_votes == 9 and cfg.prices.verify == LoopConfig().prices.verify
        assert dict(cfg.selection) == {"margin": 1.0, "random": 0.5}
        yml = tmp_path / "loop.yaml"
        yml.write_text("routing:\n  easy_confidence: 0.8\n")
        assert load_config(yml).routing.easy_confidence == 0.8
        assert cfg.cluster_batch is True
        yml.write_text("cluster_batch: false\n")
        assert load_config(yml).cluster_batch is False
        yml.write_text("cluster_batch: 1\n")
        with pytest.raises(ConfigError, match="cluster_batch must be true or false"):
            load_config(yml)

    def test_cold_start_selects_by_density_until_enough_labels_per_class(self, tmp_path):
        cfg = LoopConfig()  # 4 per class: 8 classes need 32 labeled items
        assert dict(cfg.selection_for(12, 8)) == {"density": 1.0}
        assert cfg.selection_for(31, 8) is COLD_START_SELECTION
        assert cfg.selection_for(32, 8) is cfg.selection
        # No embeddings to score density on: the weights as configured.
        assert cfg.selection_for(12, 8, embeddings=False) is cfg.selection
        toml = tmp_path / "loop.toml"
        toml.write_text("cold_start_per_class = 0\n")
        off = load_config(toml)
        assert off.selection_for(0, 8) is off.selection
        assert LoopConfig(cold_start_per_class=2).selection_for(15, 8) is COLD_START_SELECTION

    @pytest.mark.parametrize(
        ("text", "fragment"),
        [
            ("batchsize = 3\n", "unknown key(s) batchsize"),
            ("[prices]\nexpertt = 1\n", "unknown key(s) in [prices]: expertt"),
            ("[routing]\neasy_confidence = 1.5\n", "routing.easy_confidence must be in [0, 1]"),
            ("[redundancy]\ninitial_votes = 5\nmax_votes = 3\n", "redundancy.max_votes (3)"),
            ("[selection]\nluck = 1\n", "selection.luck is not a scorer"),
            ("cold_start_per_class = -1\n", "cold_start_per_class must be non-negative"),
            ("cold_start_per_class = 'few'\n", "cold_start_per_class must be a number"),
            ("[prices]\nverify = 'cheap'\n", "prices.verify"),
            ("batch_size = [1\n", "is not valid TOML"),
        ],
    )
    def test_bad_settings_name_the_key(self, tmp_path, text, fragment):
        path = tmp_path / "bad.toml"
        path.write_text(text)
        with pytest.raises(ConfigError) as err:
            load_config(path)
        assert fragment in str(err.value)

    def test_missing_and_wrong_kind_of_file(self, tmp_path):
        with pytest.raises(ConfigError, match="does not exist"):
            load_config(tmp_path / "nope.toml")
        other = tmp_path / "loop.json"
        other.write_text("{}")
        with pytest.raises(ConfigError, match=r"\.toml or \.yaml"):
            load_config(other)

    def test_cli_refuses_bad_settings_cleanly(self, tmp_path):
        bad = tmp_path / "bad.toml"
        bad.write_text("[routing]\nhard_confidence = 0.99\neasy_confidence = 0.5\n")
        result = CliRunner().invoke(app, ["round", str(tmp_path / "p.gpkg"), "--config", str(bad)])
        assert result.exit_code == 1
        assert "hard_confidence" in result.output and "Traceback" not in result.output


def _pool() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item": ["a", "b", "c", "d"],
            "confidence": [0.95, 0.5, 0.7, 0.4],
            "margin": [0.9, 0.05, 0.5, 0.15],
            "entropy": [0.2, 1.0, 0.7, 1.05],
            "district": ["n", "n", "s", "e"],
            "impact": [0, 3, 0, 1],
            "area_m2": [100.0, 400.0, 200.0, 100.0],
        }
    )


class TestScorers:
    def test_uncertainty_scorers_rank_as_defined(self):
        scored = score_pool(
            _pool(), {"least_confidence": 1, "entropy": 1, "margin": 1}, n_classes=K
        )
        assert scored.set_index("item")["least_confidence"].idxmax() == "d"
        assert scored.set_index("item")["margin"].idxmax() == "b"
        assert scored["score"].between(0, 1).all()
        assert scored.set_index("item")["score"].idxmin() == "a"

    def test_boundary_scores_only_near_ties(self):
        b = score_pool(_pool(), {"boundary": 1}, n_classes=K).set_index("item")["boundary"]
        assert b["a"] == 0 and b["c"] == 0 and b["b"] > b["d"] > 0

    def test_novelty_new_district_and_embedding_distance(self):
        emb = pd.DataFrame(
            [[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.7, 0.7], [1.0, 0.05]],
            index=["a", "b", "c", "d", "lab"],
        )
        nov = score_pool(
            _pool(),
            {"novelty": 1},
            n_classes=K,
            embeddings=emb,
            labeled_items=["lab"],
            labeled_districts={"n", "s"},
        ).set_index("item")["novelty"]
        assert nov["d"] == 1.0  # district e has no label
        assert nov["c"] > nov["b"] > nov["a"] or nov["c"] > nov["a"]

    def test_impact_hook_and_random_is_seeded(self):
        hook = score_pool(_pool(), {"impact": 1}, n_classes=K, impact_fn=lambda f: f["area_m2"] * 0)
        assert hook.set_index("item")["impact"].idxmax() == "b"
        r1 = score_pool(_pool(), {"random": 1}, n_classes=K, seed=3)["random"]
        r2 = score_pool(_pool(), {"random": 1}, n_classes=K, seed=3)["random"]
        assert r1.equals(r2)

    def test_bad_weights_and_columns(self):
        with pytest.raises(ConfigError, match="Unknown selection scorer"):
            score_pool(_pool(), {"luck": 1}, n_classes=K)
        with pytest.raises(ConfigError, match="positive weight"):
            score_pool(_pool(), {"entropy": 0}, n_classes=K)
        with pytest.raises(ColumnError, match="'margin' scorer needs"):
            score_pool(_pool().drop(columns="margin"), {"margin": 1}, n_classes=K)


class TestDiverseBatch:
    def test_spreads_then_relaxes(self):
        xy = pd.DataFrame({"x": [0, 1, 2, 100, 101], "y": [0, 0, 0, 0, 0]}, index=list("abcde"))
        scores = pd.Series([0.9, 0.8, 0.7, 0.6, 0.5], index=list("abcde"))
        assert diverse_batch(scores, xy, 2, min_distance=50) == ["a", "d"]
        # Three items with min distance 50 cannot be found: the distance is relaxed.
        batch = diverse_batch(scores, xy, 3, min_distance=50)
        assert batch[:2] == ["a", "d"] and len(batch) == 3 and len(set(batch)) == 3
        everything = diverse_batch(scores, xy, 10, min_distance=50)
        assert sorted(everything) == list("abcde")

    def test_one_item_per_embedding_cluster(self):
        # Six items far apart; a, b, c look alike (one cluster), d, e, f another.
        xy = pd.DataFrame({"x": np.arange(6) * 100.0, "y": 0.0}, index=list("abcdef"))
        emb = pd.DataFrame(
            [[1, 0.0], [1, 0.05], [1, -0.05], [0, 1.0], [0.05, 1], [-0.05, 1]], index=list("abcdef")
        )
        clusters = embedding_clusters(emb, list("abcdef"), 2, seed=3)
        assert clusters["a"] == clusters["b"] == clusters["c"] != clusters["d"]
        assert clusters["d"] == clusters["e"] == clusters["f"]
        scores = pd.Series([0.9, 0.8, 0.7, 0.6, 0.5, 0.4], index=list("abcdef"))
        # Spatial spread alone takes the two best, which look alike; clusters take one of each.
        assert diverse_batch(scores, xy, 2, min_distance=50) == ["a", "b"]
        assert diverse_batch(scores, xy, 2, min_distance=50, clusters=clusters) == ["a", "d"]
        # More items than clusters: one of each first, then the best of the rest.
        assert diverse_batch(scores, xy, 3, min_distance=50, clusters=clusters) == ["a", "d", "b"]
        # An item without an embedding is not held back by the clusters.
        partial = embedding_clusters(emb.drop(index="b"), list("abcdef"), 2, seed=3)
        assert "b" not in partial.index
        assert diverse_batch(scores, xy, 2, min_distance=50, clusters=partial) == ["a", "b"]

    def test_density_prefers_typical_items(self):
        rng = np.random.default_rng(0)
        emb = pd.DataFrame(
            np.r_[
                rng.normal([5, 0, 0], 0.3, (20, 3)),
                rng.normal([0, 5, 0], 0.3, (12, 3)),
                [[0, 0, 5]],
            ],
            index=[f"i{k}" for k in range(33)],
        )
        pool = pd.DataFrame({"item": emb.index})
        dense = score_pool(pool, {"density": 1}, n_classes=3, embeddings=emb).set_index("item")
        # Both groups are dense places; the lone item is not.
        assert dense.loc["i32", "density"] < dense["density"].drop("i32").min() - 0.5
        assert dense.loc["i32", "score"] == 0.0
        # With entropy, a typical uncertain item beats an equally uncertain outlier.
        pool = pool.assign(entropy=np.where(pool["item"].isin(["i3", "i32"]), 1.0, 0.1))
        both = score_pool(pool, {"entropy": 1, "density": 1}, n_classes=3, embeddings=emb)
        best = both.sort_values("score", ascending=False)["item"].tolist()
        assert best[0] == "i3"
        with pytest.raises(ColumnError, match="embeddings"):
            score_pool(pool, {"density": 1}, n_classes=3)

    def test_fewer_candidates_than_clusters(self):
        emb = pd.DataFrame([[1.0, 0.0]], index=["a"])
        assert embedding_clusters(emb, ["a", "zz"], 5).to_dict() == {"a": 0}
        assert embedding_clusters(emb, [], 5).empty

    def test_missing_coordinates(self):
        with pytest.raises(ColumnError, match="no coordinates"):
            diverse_batch(
                pd.Series([1.0], index=["z"]), pd.DataFrame({"x": [], "y": []}), 1, min_distance=1
            )


class TestRoute:
    def test_tiers_and_reasons(self):
        cands = pd.DataFrame(
            {"item": list("abcdef"), "confidence": [0.97, 0.7, 0.3, 0.95, 0.99, np.nan]}
        )
        out = route(
            cands,
            Routing(easy_confidence=0.9, hard_confidence=0.45),
            edge_cases={"e"},
            impact=pd.Series({"d": 0.95}),
        ).set_index("item")
        assert out.loc["a", "tier"] == "easy"
        assert out.loc["b", "tier"] == "medium"
        assert out.loc["c", "tier"] == "hard" and "0.30" in out.loc["c", "reason"]
        assert out.loc["d", "tier"] == "medium" and "impact" in out.loc["d", "reason"]
        assert out.loc["e", "tier"] == "hard" and "edge case" in out.loc["e", "reason"]
        assert out.loc["f", "tier"] == "medium"

    def test_novelty_sends_to_an_expert(self):
        cands = pd.DataFrame({"item": ["a"], "confidence": [0.99]})
        out = route(cands, Routing(hard_novelty=0.9), novelty=pd.Series({"a": 0.95}))
        assert out["tier"].tolist() == ["hard"]

    def test_missing_confidence(self):
        with pytest.raises(ColumnError, match="confidence"):
            route(pd.DataFrame({"item": ["a"]}), Routing())


def _workforce(acc: float, n: int = 5, expert: float = 0.99) -> WorkforceModel:
    m = np.full((K, K), (1 - acc) / (K - 1))
    np.fill_diagonal(m, acc)
    e = np.full((K, K), (1 - expert) / (K - 1))
    np.fill_diagonal(e, expert)
    return WorkforceModel(("a", "b", "c"), np.stack([m] * n), np.full(n, 1 / n), e, "test")


def _probs(n: int = 400, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.dirichlet([0.3] * K, size=n)


class TestPlanner:
    def test_perfect_people_are_always_right(self):
        wf = _workforce(1.0 - 1e-9)
        out = simulate_policy(
            _probs(), wf, Routing(), LoopConfig().redundancy, LoopConfig().prices,
            rng=np.random.default_rng(0),
        )  # fmt: skip
        assert out["accuracy"] > 0.99

    def test_more_uniform_votes_help(self):
        wf = _workforce(0.7)
        accs = [
            simulate_uniform(
                _probs(), wf, v, LoopConfig().prices, gold_rate=0.1, rng=np.random.default_rng(1)
            )["accuracy"]
            for v in (1, 5, 9)
        ]
        assert accs[0] < accs[1] < accs[2]

    def test_plan_is_the_cheapest_that_meets_the_target(self, tmp_path):
        result = plan(_probs(), _workforce(0.8), target=0.95, replicates=2)
        assert result.met and result.accuracy >= 0.95
        meets = result.table[result.table["accuracy"] >= 0.95]
        assert result.cost_per_item == pytest.approx(meets["cost_per_item"].min())
        assert result.table["pareto"].any()
        png = plot_cost_accuracy(result, tmp_path / "curve.png")
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000

    def test_unreachable_target_returns_the_most_accurate(self):
        result = plan(_probs(200), _workforce(0.4, expert=0.9), target=0.99, replicates=2)
        assert not result.met
        assert result.accuracy == pytest.approx(result.table["accuracy"].max())

    def test_bad_target(self):
        with pytest.raises(ConfigError, match="target accuracy"):
            plan(_probs(), _workforce(0.8), target=1.5)

    def test_estimate_falls_back_to_defaults_with_few_votes(self):
        votes = pd.DataFrame({"item": ["x", "y"], "annotator": ["u", "v"], "label": ["a", "b"]})
        wf = estimate_workforce(votes, ["a", "b", "c"])
        assert "defaults" in wf.source and wf.crowd.shape == (1, 3, 3)
