"""Benchmark disagreement hotspots: recall/precision on the sample city and time at 100k parcels.

Run as a script (``python benchmarks/hotspots.py [--seeds 5]``). It prints

1. per crowd seed, on ``data/sample`` with 5 simulated crowd votes per parcel, the recall and
   precision of the significant parcels against the planted ambiguous parcels
   (``truth/parcels.csv``, ambiguity ``mixed_use`` or ``borderline``), with the library
   defaults (``project_hotspots``: hesitation-led score, knn6, FDR 0.2) and, as the baseline
   measured in the same run, a votes-only score (``DisagreementWeights(1, 0, 0.5, 0)``, no time
   on task) with the same hotspot settings;
2. the time of ``find_hotspots`` on 100,000 generated square parcels (a 316 x 317 grid of
   20 m lots with a planted disagreement field), after a small warm-up call (imports and
   first-use costs, timed separately; the Gi* code is geolabel's own numpy, see
   :mod:`geolabel.review.gistar`, so there is no JIT compilation), and at 10,000
   parcels for the scaling ratio.

The last line is one JSON object: ``recall``, ``precision`` (means over seeds, defaults),
``seconds_100k``, plus extras.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"


def _truth() -> pd.DataFrame:
    return pd.read_csv(SAMPLE / "truth" / "parcels.csv").rename(
        columns={"parcel_id": "item", "land_use": "label"}
    )


def _sample_project(folder: Path) -> Path:
    from geolabel.project import init_sample_project

    path = folder / "sample.gpkg"
    init_sample_project(SAMPLE, path)
    return path


def _score(found: set[str], planted: set[str]) -> tuple[float, float]:
    hit = len(found & planted)
    return hit / len(planted), hit / max(len(found), 1)


def sample_accuracy(seeds: list[int], folder: Path) -> pd.DataFrame:
    """Recall and precision per seed: library defaults vs the votes-only baseline."""
    from geolabel.crowd.consensus import aggregate_project
    from geolabel.crowd.simulate import CrowdSimulator, profiles_from_json
    from geolabel.review.disagreement import DisagreementWeights, project_disagreement
    from geolabel.review.hotspots import project_hotspots
    from geolabel.store import Project

    template = _sample_project(folder)
    truth = _truth()
    planted = set(truth.loc[truth["ambiguity"] != "none", "item"])
    profiles = profiles_from_json(json.loads((SAMPLE / "truth" / "annotators.json").read_text()))
    rows = []
    for seed in seeds:
        sim = CrowdSimulator(truth, profiles, list(profiles[0].classes), seed=seed)
        votes = sim.assign_and_label(truth["item"], k=5)
        path = folder / f"seed{seed}.gpkg"
        shutil.copy(template, path)
        with Project.open(path) as project:
            classes = list(project.current_taxonomy().parcel_class_ids)
            project.add_annotations(votes, source="simulator", allowed_labels=classes)
            aggregate_project(project, method="ds")
            started = time.perf_counter()
            default = project_hotspots(project, seed=seed)
            seconds = time.perf_counter() - started
            votes_only = project_hotspots(
                project,
                disagreement=project_disagreement(
                    project,
                    weights=DisagreementWeights(crowd=1, hesitation=0, posterior=0.5, model=0),
                ),
                seed=seed,
            )
        for name, result in (("default", default), ("votes_only", votes_only)):
            found = set(result.items.loc[result.items["significant"], "item"])
            recall, precision = _score(found, planted)
            rows.append(
                {
                    "seed": seed,
                    "score": name,
                    "recall": recall,
                    "precision": precision,
                    "n_significant": len(found),
                    "n_hotspots": len(result.polygons),
                    "seconds": seconds if name == "default" else float("nan"),
                }
            )
        print(
            f"seed {seed}: defaults recall {rows[-2]['recall']:.2f} precision "
            f"{rows[-2]['precision']:.2f} ({rows[-2]['n_significant']} parcels, "
            f"{rows[-2]['n_hotspots']} hotspots); votes only recall {rows[-1]['recall']:.2f} "
            f"precision {rows[-1]['precision']:.2f}",
            flush=True,
        )
    return pd.DataFrame(rows)


def grid_parcels(
    n: int, size_m: float = 20.0, seed: int = 0
) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """``n`` square parcels on a grid with a planted disagreement field.

    Background disagreement is uniform on [0, 0.35]; inside a few discs (radius 6-15 lots)
    it is uniform on [0.55, 1]. Returns the parcels (EPSG:32610) and the scores, with a
    ``planted`` flag.
    """
    rng = np.random.default_rng(seed)
    cols = int(np.ceil(np.sqrt(n)))
    idx = np.arange(n)
    gx, gy = idx % cols, idx // cols
    x0, y0 = 500_000.0 + gx * size_m, 4_000_000.0 + gy * size_m
    geoms = shapely.box(x0, y0, x0 + size_m, y0 + size_m)
    items = np.char.add("g", idx.astype(str))
    parcels = gpd.GeoDataFrame({"item": items}, geometry=geoms, crs="EPSG:32610")
    values = rng.uniform(0.0, 0.35, n)
    planted = np.zeros(n, dtype=bool)
    n_discs = max(1, n // 5000)
    rows = gy.max() + 1
    for cx, cy, r in zip(
        rng.uniform(0, cols, n_discs),
        rng.uniform(0, rows, n_discs),
        rng.uniform(6, 15, n_discs),
        strict=True,
    ):
        planted |= (gx - cx) ** 2 + (gy - cy) ** 2 <= r**2
    values[planted] = rng.uniform(0.55, 1.0, planted.sum())
    scores = pd.DataFrame({"item": items, "disagreement": values, "planted": planted})
    return parcels, scores


def time_grid(n: int, permutations: int) -> dict[str, float]:
    """Seconds of find_hotspots (defaults but ``permutations``) on ``n`` grid parcels."""
    from geolabel.review.hotspots import find_hotspots

    parcels, scores = grid_parcels(n)
    started, cpu_started = time.perf_counter(), time.process_time()
    result = find_hotspots(
        parcels, scores.drop(columns="planted"), district_column=None, permutations=permutations
    )
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started
    found = set(result.items.loc[result.items["significant"], "item"])
    recall, precision = _score(found, set(scores.loc[scores["planted"], "item"]))
    return {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "recall": recall,
        "precision": precision,
        "n_hotspots": float(len(result.polygons)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="Crowd seeds (>= 3).")
    parser.add_argument("--n", type=int, default=100_000, help="Generated parcels to time.")
    parser.add_argument(
        "--permutations", type=int, default=999, help="Permutations for the generated grid."
    )
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")

    from geolabel.review.hotspots import find_hotspots

    # Warm-up: imports and first-use costs (geolabel.review.gistar is plain numpy).
    parcels, scores = grid_parcels(400)
    started, cpu_started = time.perf_counter(), time.process_time()
    find_hotspots(parcels, scores.drop(columns="planted"), district_column=None, permutations=99)
    jit_seconds = time.perf_counter() - started
    jit_cpu_seconds = time.process_time() - cpu_started
    print(
        f"warm-up (imports, first use): {jit_seconds:.1f} s ({jit_cpu_seconds:.1f} s CPU)",
        flush=True,
    )

    with tempfile.TemporaryDirectory() as tmp:
        table = sample_accuracy(list(range(max(3, args.seeds))), Path(tmp))
    summary = table.groupby("score")[["recall", "precision"]].agg(["mean", "std", "min", "max"])
    print(summary.round(3).to_string())
    default = table[table["score"] == "default"]
    baseline = table[table["score"] == "votes_only"]
    recall = float(default["recall"].mean())
    precision = float(default["precision"].mean())
    base_recall = float(baseline["recall"].mean())
    print(
        f"defaults vs votes-only baseline: recall {recall:.3f} vs {base_recall:.3f} "
        f"(x{recall / max(base_recall, 1e-9):.1f}), precision {precision:.3f} vs "
        f"{float(baseline['precision'].mean()):.3f}; target recall >= 0.8, precision >= 0.7: "
        f"{'met' if recall >= 0.8 and precision >= 0.7 else 'NOT met'} on average, "
        f"{int(((default['recall'] >= 0.8) & (default['precision'] >= 0.7)).sum())}/"
        f"{len(default)} seeds"
    )

    small = time_grid(args.n // 10, args.permutations)
    large = time_grid(args.n, args.permutations)
    print(
        f"find_hotspots, knn6, {args.permutations} permutations: {args.n // 10} parcels "
        f"{small['seconds']:.1f} s, {args.n} parcels {large['seconds']:.1f} s "
        f"({large['cpu_seconds']:.1f} s CPU; x{large['seconds'] / max(small['seconds'], 1e-9):.1f} "
        f"for x10 parcels); planted "
        f"field recall {large['recall']:.2f} precision {large['precision']:.2f}",
        flush=True,
    )
    print(
        json.dumps(
            {
                "recall": round(recall, 4),
                "precision": round(precision, 4),
                "seconds_100k": round(large["seconds"], 2),
                "recall_std": round(float(default["recall"].std()), 4),
                "precision_std": round(float(default["precision"].std()), 4),
                "recall_min": round(float(default["recall"].min()), 4),
                "precision_min": round(float(default["precision"].min()), 4),
                "seeds": len(default),
                "baseline_votes_only_recall": round(base_recall, 4),
                "baseline_votes_only_precision": round(float(baseline["precision"].mean()), 4),
                "n_parcels_timed": args.n,
                "permutations_timed": args.permutations,
                "seconds_10k": round(small["seconds"], 2),
                "cpu_seconds_100k": round(large["cpu_seconds"], 2),
                "warmup_seconds": round(jit_seconds, 2),
                "warmup_cpu_seconds": round(jit_cpu_seconds, 2),
                "grid_recall": round(large["recall"], 4),
                "grid_precision": round(large["precision"], 4),
                "sample_seconds_per_seed": round(float(default["seconds"].mean()), 2),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
