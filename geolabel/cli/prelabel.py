"""`geolabel prelabel`: pre-label every parcel of a project with a trained model."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from geolabel.cli.options import JsonOption, console, err_console, handle_errors, print_json

if TYPE_CHECKING:
    from geolabel.prelabel.pipeline import PrelabelReport

__all__ = ["PrecisionChoice", "prelabel", "print_prelabel_report"]


class PrecisionChoice(StrEnum):
    """Inference precision."""

    fp32 = "fp32"
    bf16 = "bf16"


@handle_errors
def prelabel(
    project: Annotated[Path, typer.Argument(help="The project .gpkg (made by geolabel init).")],
    model: Annotated[
        Path | None,
        typer.Option("--model", help="Checkpoint folder (default: the project's newest model)."),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "-o", "--output", help="Output folder (default: <project>_prelabels/<version>)."
        ),
    ] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Tiles per batch.")] = 32,
    precision: Annotated[
        PrecisionChoice, typer.Option("--precision", help="fp32, or bf16 (slower without AVX-512).")
    ] = PrecisionChoice.fp32,
    threads: Annotated[
        int | None,
        typer.Option("--threads", min=1, help="Torch threads (default: the free cores less one)."),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler",
            help="Run the scenes on Dask: 'local' (a LocalCluster of one process per core) or a"
            " scheduler address such as tcp://10.0.0.5:8786. Default: here, one after another.",
        ),
    ] = None,
    json_out: JsonOption = False,
) -> None:
    """Predict class and confidence maps, pool them per parcel and store the pre-labels."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from geolabel.prelabel.pipeline import prelabel_project

    with Progress(
        TextColumn("[bold]pre-labeling[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("tiles"),
        TimeElapsedColumn(),
        console=err_console,
        disable=json_out,
    ) as bar:
        task = bar.add_task("prelabel", total=None)

        def tick(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        report = prelabel_project(
            project,
            model,
            out_dir=output,
            batch_size=batch_size,
            precision="bf16" if precision is PrecisionChoice.bf16 else "fp32",
            num_threads=threads,
            progress=tick,
            scheduler=scheduler,
        )
    if json_out:
        print_json(report)
    else:
        print_prelabel_report(report)


def print_prelabel_report(r: PrelabelReport) -> None:
    """Print a pre-label run: pre-labels per class, confidence, where the outputs are."""
    console.print(
        f"[bold]Model {r.model_version}[/] pre-labeled {r.n_parcels} parcel(s) from {r.n_tiles}"
        f" tile(s) in {r.seconds:.1f} s; {r.n_added} prediction(s) stored."
    )
    t = Table("pre-label", "parcels", "share")
    for label, n in sorted(r.label_counts.items(), key=lambda kv: (-kv[1], kv[0])):
        t.add_row(label, str(n), f"{n / max(r.n_parcels, 1):.0%}")
    console.print(t)
    temp = f", temperature {r.temperature:.2f}" if r.temperature != 1.0 else ""
    console.print(f"Mean confidence {r.mean_confidence:.3f}{temp}.")
    for note in r.notes:
        console.print(f"Note: {note}", markup=False)
    console.print(f"Outputs in {r.out_dir}: class and confidence maps, parcels.csv, tiles.csv,")
    console.print("parcel_embeddings.npz, tile_embeddings.npz; tile uncertainty also in layer")
    console.print("'tile_uncertainty' of the project.")
