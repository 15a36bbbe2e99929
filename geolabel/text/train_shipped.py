"""Regenerate the pipeline that ships with geolabel: ``python -m geolabel.text.train_shipped``.

Trains on the bundled sample's notices (texts in ``data/sample/notices.jsonl``, gold spans in
``data/sample/truth/notices.jsonl``) with a fixed split -- every fifth notice in
``notice_id`` order is held out for evaluation (:func:`geolabel.text.train.split_heldout`) --
a fixed seed and a fixed number of steps, and writes the pipeline to
``geolabel/text/model/`` (replacing the old one only once the new one is complete). The same
sample and library versions give the same model. It takes a few minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import tempfile
import time
from pathlib import Path
from typing import Final

from geolabel.text.data import read_sample_annotations
from geolabel.text.pipeline import SHIPPED_MODEL
from geolabel.text.train import TrainResult, split_heldout, train_pipeline

__all__ = ["SHIPPED_MAX_STEPS", "SHIPPED_SEED", "default_sample_dir", "train_shipped"]

SHIPPED_MAX_STEPS: Final = 800
"""Optimizer steps of the shipped model."""

SHIPPED_SEED: Final = 0
"""Seed of the shipped model."""


def default_sample_dir() -> Path:
    """Return the repository's ``data/sample`` folder (next to the ``geolabel`` package)."""
    return Path(__file__).resolve().parents[2] / "data" / "sample"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def train_shipped(
    sample_dir: str | Path | None = None,
    output: str | Path = SHIPPED_MODEL,
    *,
    max_steps: int = SHIPPED_MAX_STEPS,
    seed: int = SHIPPED_SEED,
    verbose: bool = False,
) -> TrainResult:
    """Train the shipped pipeline on the sample's notices and write it to ``output``.

    Args:
        sample_dir: The sample folder; the repository's ``data/sample`` when None.
        output: Folder to (re)write.
        max_steps: Optimizer steps.
        seed: Random seed.
        verbose: Print spaCy's training table.

    Returns:
        The training summary.
    """
    folder = Path(sample_dir) if sample_dir is not None else default_sample_dir()
    data = read_sample_annotations(folder)
    train, heldout = split_heldout(list(data.notices))
    meta = {
        "trained_on": "geolabel sample notices (data/sample)",
        "notices_sha256": _sha256(folder / "notices.jsonl"),
        "truth_sha256": _sha256(folder / "truth" / "notices.jsonl"),
        "split": "every 5th notice in notice_id order held out (positions 4, 9, 14...)",
        "heldout_ids": [n.notice_id for n in heldout],
    }
    target = Path(output)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".model-", dir=target.parent) as tmp:
        staging = Path(tmp) / "model"
        _, result = train_pipeline(
            train,
            heldout,
            output=staging,
            max_steps=max_steps,
            seed=seed,
            verbose=verbose,
            meta=meta,
        )
        if target.exists():
            shutil.rmtree(target)
        shutil.move(str(staging), str(target))
    return result


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=Path, default=None, help="sample folder")
    parser.add_argument("--output", type=Path, default=SHIPPED_MODEL, help="model folder")
    parser.add_argument("--max-steps", type=int, default=SHIPPED_MAX_STEPS)
    parser.add_argument("--seed", type=int, default=SHIPPED_SEED)
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    start = time.perf_counter()
    result = train_shipped(
        args.sample, args.output, max_steps=args.max_steps, seed=args.seed, verbose=args.verbose
    )
    seconds = time.perf_counter() - start
    print(
        f"trained on {result.n_train} notices ({result.max_steps} steps, seed {result.seed}) in "
        f"{seconds:.0f} s; held-out ents_f {result.dev_scores.get('ents_f', 0.0):.3f}; "
        f"written to {args.output}"
    )


if __name__ == "__main__":
    main()
