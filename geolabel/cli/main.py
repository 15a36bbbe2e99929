"""The ``geolabel`` command group: one module per command, each a thin wrapper over the library."""

from __future__ import annotations

from typing import Annotated

import typer

from geolabel import __version__
from geolabel.cli import (
    aggregate,
    annotators,
    export,
    hotspots,
    imports,
    info,
    ingest,
    init,
    loop,
    map,
    notices,
    prelabel,
    query,
    review,
    reviewers,
    sample,
    serve,
    taxonomy,
    tile,
    train,
)
from geolabel.cli.options import set_verbosity

__all__ = ["app", "main"]

app = typer.Typer(
    name="geolabel",
    help="Land-use labels from satellite imagery, parcel maps and municipal notices.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"geolabel {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: Annotated[int, typer.Option("-v", "--verbose", count=True, help="More logging.")] = 0,
    quiet: Annotated[int, typer.Option("-q", "--quiet", count=True, help="Less logging.")] = 0,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    set_verbosity(verbose, quiet)


app.command("sample")(sample.sample)
app.command("init")(init.init)
app.command("info")(info.info)
app.command("import")(imports.import_annotations)
app.command("export")(export.export)
app.command("aggregate")(aggregate.aggregate)
app.command("annotators")(annotators.annotators)
app.command("tile")(tile.tile)
app.command("train")(train.train)
app.command("prelabel")(prelabel.prelabel)
app.command("query")(query.query)
app.command("demo")(loop.demo)
app.command("round")(loop.round_cmd)
app.command("plan")(loop.plan_cmd)
app.add_typer(taxonomy.app, name="taxonomy")
app.add_typer(notices.app, name="notices")
app.add_typer(ingest.app, name="ingest")
app.add_typer(review.app, name="review")
app.command("map")(map.map_command)
app.command("hotspots")(hotspots.hotspots)
app.add_typer(reviewers.app, name="reviewers")
app.command("serve")(serve.serve)


def main() -> None:
    """Entry point of the ``geolabel`` console script."""
    app()
