"""`geolabel train`: train the pre-label segmentation model on a project's labeled parcels."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from geolabel.cli.options import JsonOption, console, err_console, handle_errors, print_json

if TYPE_CHECKING:
    from geolabel.prelabel.pipeline import TrainReport

__all__ = ["LabelChoice", "print_train_report", "train"]


class LabelChoice(StrEnum):
    """Where the training labels come from."""

    starter = "starter"
    consensus = "consensus"


@handle_errors
def train(
    project: Annotated[Path, typer.Argument(help="The project .gpkg (made by geolabel init).")],
    epochs: Annotated[
        int | None,
        typer.Option("--epochs", min=1, help="Most epochs (early stopping may end sooner)."),
    ] = None,
    encoder: Annotated[
        str, typer.Option("--encoder", help="Encoder (resnet18, mobilenet_v2, efficientnet-b0...).")
    ] = "resnet18",
    labels: Annotated[
        LabelChoice,
        typer.Option(
            "--labels", help="starter: imported annotations; consensus: aggregated labels."
        ),
    ] = LabelChoice.starter,
    output: Annotated[
        Path | None,
        typer.Option(
            "-o", "--output", help="Checkpoint folder (default: <project>_models/<version>)."
        ),
    ] = None,
    steps: Annotated[
        int | None, typer.Option("--steps", min=1, help="Optimiser steps per epoch.")
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", min=1, help="Crops per step.")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of every random draw.")] = 0,
    threads: Annotated[
        int | None,
        typer.Option("--threads", min=1, help="Torch threads (default: tuned per epoch)."),
    ] = None,
    json_out: JsonOption = False,
) -> None:
    """Train the segmentation model that pre-labels parcels, and save a checkpoint."""
    from dataclasses import replace

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from geolabel.prelabel.pipeline import train_project
    from geolabel.prelabel.train import TrainConfig

    base = TrainConfig()
    config = replace(
        base,
        model=replace(base.model, encoder=encoder),
        max_epochs=epochs or base.max_epochs,
        min_epochs=min(base.min_epochs, epochs or base.max_epochs),
        steps_per_epoch=steps or base.steps_per_epoch,
        batch_size=batch_size or base.batch_size,
        seed=seed,
        num_threads=threads,
    )
    with Progress(
        TextColumn("[bold]training[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("epochs  {task.fields[status]}"),
        TimeElapsedColumn(),
        console=err_console,
        disable=json_out,
    ) as bar:
        task = bar.add_task("train", total=config.max_epochs, status="")

        def tick(epoch: int, row: dict[str, float]) -> None:
            bar.update(
                task,
                completed=epoch,
                status=f"loss {row['loss']:.3f}  val mIoU {row['val_miou']:.3f}",
            )

        report = train_project(project, out_dir=output, labels=labels.value, config=config,
                               progress=tick)  # fmt: skip
        bar.update(task, total=report.epochs, completed=report.epochs)
    if json_out:
        print_json(report)
    else:
        print_train_report(report)


def print_train_report(r: TrainReport) -> None:
    """Print a training report: validation scores per class, calibration, where the model is."""
    console.print(
        f"[bold]Model {r.model_version}[/] trained on {r.n_training_parcels} {r.labels} parcel(s)"
        f" in {r.seconds:.0f} s ({r.epochs} epochs, best {r.best_epoch}, {r.threads} thread(s))."
    )
    t = Table("class", "labeled parcels", "validation IoU")
    for name, iou in r.val_iou.items():
        t.add_row(name, str(r.label_counts.get(name, 0)), "–" if iou is None else f"{iou:.3f}")
    t.add_row("[bold]all[/]", str(r.n_training_parcels), f"mIoU {r.val_miou:.3f}")
    console.print(t)
    c = r.calibration
    if c.n:
        kept = (
            f"temperature {c.temperature:.2f} kept" if c.applied else f"no temperature ({c.note})"
        )
        console.print(
            f"Validation pixels: accuracy {r.val_pixel_accuracy:.3f}. Validation parcels: {c.n},"
            f" accuracy {c.accuracy:.3f}, ECE {c.ece_before:.3f} → {c.ece_after:.3f}, {kept}."
        )
    else:
        console.print("No validation parcel to check calibration on.")
    console.print(f"Saved to {r.model_dir}")
