"""`geolabel serve`: the expert review web app on 127.0.0.1 (uvicorn)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from geolabel.cli.options import console, handle_errors

__all__ = ["serve"]


@handle_errors
def serve(
    project_path: Annotated[Path, typer.Argument(help="The project GeoPackage.")],
    host: Annotated[
        str, typer.Option("--host", help="Address to bind (127.0.0.1: this machine only).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port.", min=1, max=65535)] = 8000,
    map_html: Annotated[
        Path | None, typer.Option("--map", help="A map from `geolabel map` to show at /map.")
    ] = None,
    permutations: Annotated[
        int | None,
        typer.Option("--permutations", help="Gi* permutations for the hotspots.", min=99),
    ] = None,
) -> None:
    """Serve the review app: queue, item pages, decisions, map and taxonomy."""
    import uvicorn

    from geolabel.errors import InputFileError
    from geolabel.review.web.app import create_app

    if map_html is not None and not map_html.is_file():
        raise InputFileError(f"Map {map_html} does not exist; make it with `geolabel map`.")
    console.print("Ranking the review queue (disagreement, hotspots)...")
    app = create_app(project_path, map_html=map_html, permutations=permutations, warm=True)
    if host not in ("127.0.0.1", "localhost", "::1"):
        console.print(
            f"Warning: binding {host} exposes the app beyond this machine; reads need no token."
        )
    console.print(f"Review app for {project_path} on http://{host}:{port}/ (Ctrl+C stops it)")
    uvicorn.run(app, host=host, port=port, log_level="warning")
