"""`geolabel sample`: generate the sample city."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from geolabel.cli.options import JsonOption, console, handle_errors, print_json

__all__ = ["sample"]


@handle_errors
def sample(
    out_dir: Annotated[Path, typer.Argument(help="Folder to write the sample city into.")],
    size: Annotated[
        int, typer.Option("--size", min=256, help="Scene width and height in pixels (0.5 m each).")
    ] = 1024,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Random seed.")] = 0,
    force: Annotated[bool, typer.Option("--force", help="Replace a sample already there.")] = False,
    json_out: JsonOption = False,
) -> None:
    """Generate the sample city: scene, parcels, POIs, notices, taxonomy, starter labels, truth.

    With the defaults this reproduces data/sample/ byte for byte.
    """
    from geolabel.synth.sample import write_sample

    if size % 64:
        raise typer.BadParameter(
            f"--size must be a multiple of 64 (got {size}).", param_hint="--size"
        )
    with console.status(f"Generating a {size} px sample city (seed {seed})..."):
        manifest = write_sample(out_dir, size_px=size, seed=seed, overwrite=force)
    if json_out:
        print_json(manifest)
        return
    console.print(f"Wrote the sample city to [bold]{out_dir}[/] ({manifest.crs}):")
    for k, v in manifest.counts.items():
        console.print(f"  {k.replace('_', ' ')}: {v}")
    console.print(f"Next: geolabel info {out_dir}")
