"""How the sample generator scales with area: 4x the pixels should cost about 4x the time.

Baseline: the bundled sample's size (1024 px), generated in the same run. Prints one line per
size and, last, one JSON object: ``seconds_1024``, ``seconds_2048`` and ``growth_4x_area``
(seconds at 2048 px over seconds at 1024 px; linear scaling gives 4.0).

Run: ``python benchmarks/sample_generation.py [--repeat N]``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from geolabel.synth.sample import write_sample


def best_of(size: int, repeat: int) -> tuple[float, int]:
    times = []
    parcels = 0
    for k in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            manifest = write_sample(Path(tmp) / f"s{k}", size_px=size, seed=0)
            times.append(time.perf_counter() - t0)
            parcels = manifest.counts["parcels"]
    return min(times), parcels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2, help="runs per size; the best is kept")
    args = parser.parse_args()
    results = {}
    for size in (1024, 2048):
        seconds, parcels = best_of(size, args.repeat)
        results[size] = seconds
        print(f"size {size} px: {seconds:.2f} s, {parcels} parcels")
    growth = results[2048] / results[1024]
    print(f"growth for 4x the area: {growth:.2f}x (linear = 4.00x)")
    print(
        json.dumps(
            {
                "seconds_1024": round(results[1024], 3),
                "seconds_2048": round(results[2048], 3),
                "growth_4x_area": round(growth, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
