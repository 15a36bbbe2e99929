"""`geolabel taxonomy`: check a taxonomy file and render annotator guidelines from it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from geolabel.cli.options import JsonOption, console, handle_errors, print_json

__all__ = ["app"]

app = typer.Typer(help="Check taxonomies and render guidelines.", no_args_is_help=True)


@app.command("check")
@handle_errors
def check(
    path: Annotated[Path, typer.Argument(help="Taxonomy YAML file.")],
    json_out: JsonOption = False,
) -> None:
    """Validate a taxonomy file; every problem is listed, and the exit code is 1 if any."""
    from geolabel.taxonomy import load_taxonomy

    tax = load_taxonomy(path)
    if json_out:
        print_json(
            {
                "name": tax.name,
                "version": tax.version,
                "item_kind": tax.item_kind,
                "classes": list(tax.class_ids),
                "sha256": tax.sha256,
            }
        )
        return
    console.print(
        f"{path}: taxonomy {tax.name!r} version {tax.version} ({tax.item_kind}) is valid:"
        f" {len(tax.class_ids)} classes ({', '.join(tax.class_ids)})."
    )


@app.command("guidelines")
@handle_errors
def guidelines(
    path: Annotated[Path, typer.Argument(help="Taxonomy YAML file.")],
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write to this file.")
    ] = None,
) -> None:
    """Render annotator guidelines (Markdown) from a taxonomy."""
    from geolabel.taxonomy import load_taxonomy

    text = load_taxonomy(path).render_guidelines()
    if output is None:
        typer.echo(text)
    else:
        output.write_text(text, encoding="utf-8")
        console.print(f"Wrote guidelines to {output}")
