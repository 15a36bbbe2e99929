"""`geolabel reviewers`: add, list and revoke reviewers of the review web app."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from geolabel.cli.options import JsonOption, console, handle_errors, print_json

__all__ = ["app"]

app = typer.Typer(help="Manage reviewers of the review web app (tokens).", no_args_is_help=True)

ProjectArg = Annotated[Path, typer.Argument(help="The project GeoPackage.")]


@app.command("add")
@handle_errors
def add(
    project_path: ProjectArg,
    name: Annotated[str, typer.Argument(help="Reviewer name.")],
    admin: Annotated[
        bool, typer.Option("--admin", help="May also apply taxonomy proposals.")
    ] = False,
) -> None:
    """Add a reviewer and print their token (shown once; only its hash is stored)."""
    from geolabel.review.reviewers import add_reviewer
    from geolabel.store import Project

    with Project.open(project_path) as project:
        token = add_reviewer(project, name, role="admin" if admin else "reviewer")
    typer.echo(token)


@app.command("list")
@handle_errors
def list_reviewers(project_path: ProjectArg, json_out: JsonOption = False) -> None:
    """List reviewers (never their tokens)."""
    from geolabel.review.reviewers import reviewers
    from geolabel.store import Project

    with Project.open(project_path) as project:
        frame = reviewers(project)
    rows = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
    if json_out:
        print_json(rows)
        return
    for row in rows:
        revoked = f" (revoked {row['revoked_at']})" if row["revoked_at"] else ""
        console.print(f"{row['reviewer']}  {row['role']}  {row['created_at']}{revoked}")


@app.command("revoke")
@handle_errors
def revoke(
    project_path: ProjectArg, name: Annotated[str, typer.Argument(help="Reviewer name.")]
) -> None:
    """Revoke a reviewer's token."""
    from geolabel.review.reviewers import revoke_reviewer
    from geolabel.store import Project

    with Project.open(project_path) as project:
        revoke_reviewer(project, name)
    console.print(f"Revoked {name}.")
