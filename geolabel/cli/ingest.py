"""`geolabel ingest`: pull notices and parcels from files and portals into a project, with QA."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from geolabel.cli.options import JsonOption, console, err_console, handle_errors, print_json

if TYPE_CHECKING:
    from geolabel.ingest.qa import PullReport

__all__ = ["app"]

app = typer.Typer(
    help="Ingest notices and parcels (files, saved pages, feeds, open-data portals) with QA.",
    no_args_is_help=True,
)

ReportOption = Annotated[
    Path | None,
    typer.Option("--report", help="Write the QA report here (.md for Markdown, .html for HTML)."),
]
DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="Read and check only; store nothing.")
]


def _finish(report: PullReport, report_path: Path | None, json_out: bool) -> None:
    """Write the report file, print the outcome, exit 1 when the pull failed."""
    from geolabel.errors import InputFileError
    from geolabel.ingest.qa import render_html, render_markdown

    if report_path is not None:
        suffix = report_path.suffix.lower()
        if suffix not in (".md", ".html", ".htm"):
            raise InputFileError(
                f"--report {report_path}: use a .md (Markdown) or .html file name."
            )
        text = render_html(report) if suffix in (".html", ".htm") else render_markdown(report)
        report_path.write_text(text, encoding="utf-8")
    if json_out:
        print_json(report.to_dict())
    else:
        console.print(
            f"Pull {report.pull_id}: {report.status.upper()} — {report.n_in} record(s) in, "
            f"{report.n_out} new ({report.n_notices} notice(s), {report.n_parcels} parcel(s) "
            f"stored), {report.n_dropped} dropped, {report.n_duplicates} exact and "
            f"{report.n_near_duplicates} near duplicate(s)."
        )
        for code, n in report.dropped_by_reason.items():
            console.print(f"  dropped {n}: {code}")
        for s in report.sources:
            if s.retries:
                console.print(f"  {s.name}: {len(s.retries)} HTTP retr(y/ies)")
        if report_path is not None:
            console.print(f"Report: {report_path}")
    if not report.ok:
        for failure in report.failures:
            err_console.print(f"[bold red]QA failed:[/] {failure}")
        err_console.print("Nothing from this pull was stored.")
        raise typer.Exit(code=1)


@app.command("pull")
@handle_errors
def pull(
    project: Annotated[Path, typer.Argument(help="Project file (.gpkg).")],
    sources: Annotated[Path, typer.Option("--sources", "-s", help="Source list (.toml or .yaml).")],
    only: Annotated[
        list[str] | None, typer.Option("--only", help="Pull only this source (repeatable).")
    ] = None,
    report: ReportOption = None,
    dry_run: DryRunOption = False,
    json_out: JsonOption = False,
) -> None:
    """Pull every source of a source list into the project (one transaction), with a QA report."""
    from geolabel.ingest.config import load_sources
    from geolabel.ingest.pull import run_pull
    from geolabel.store import Project

    source_list = load_sources(sources)
    if only:
        source_list = source_list.only(tuple(only))
    with Project.open(project) as proj:
        result = run_pull(proj, source_list, dry_run=dry_run)
    _finish(result, report, json_out)


def _mapping(pairs: list[str] | None) -> dict[str, str]:
    from geolabel.errors import IngestConfigError

    out: dict[str, str] = {}
    for pair in pairs or []:
        target, sep, source = pair.partition("=")
        if not sep or not target.strip() or not source.strip():
            raise IngestConfigError(
                f"--map {pair!r}: write it as geolabel_field=source_field (e.g. text=Body)."
            )
        out[target.strip()] = source.strip()
    return out


@app.command("file")
@handle_errors
def ingest_file(
    project: Annotated[Path, typer.Argument(help="Project file (.gpkg).")],
    files: Annotated[
        list[Path],
        typer.Argument(
            help="Files or folders (CSV, XLSX, JSON(L), GeoJSON, GPKG, "
            "Shapefile/zip, HTML pages, RSS/Atom, text)."
        ),
    ],
    record: Annotated[
        str, typer.Option("--record", help="What the files hold: notice or parcel.")
    ] = "notice",
    kind: Annotated[
        str, typer.Option("--kind", help="File kind (default: from the suffix).")
    ] = "auto",
    field_map: Annotated[
        list[str] | None,
        typer.Option("--map", help="Field mapping geolabel_field=source_field (repeatable)."),
    ] = None,
    timezone: Annotated[
        str, typer.Option("--timezone", help="IANA time zone of dates without an offset.")
    ] = "UTC",
    dayfirst: Annotated[
        bool, typer.Option("--dayfirst", help="Read 01/02/2025 as 1 February.")
    ] = False,
    crs: Annotated[
        str | None, typer.Option("--crs", help="CRS of coordinates that do not declare one.")
    ] = None,
    layer: Annotated[str | None, typer.Option("--layer", help="GeoPackage layer.")] = None,
    encoding: Annotated[
        str, typer.Option("--encoding", help="auto (UTF-8, else Windows-1252) or a codec.")
    ] = "auto",
    min_text_chars: Annotated[
        int, typer.Option("--min-text-chars", help="Shorter notice texts are dropped.")
    ] = 40,
    report: ReportOption = None,
    dry_run: DryRunOption = False,
    json_out: JsonOption = False,
) -> None:
    """Ingest files or folders into the project as one pull, with a QA report."""
    from geolabel.ingest.config import SourceList, Thresholds, file_source
    from geolabel.ingest.pull import run_pull
    from geolabel.store import Project

    settings: dict[str, Any] = {
        "fields": _mapping(field_map),
        "timezone": timezone,
        "dayfirst": dayfirst,
        "crs": crs,
        "layer": layer,
        "encoding": encoding,
    }
    configs = tuple(file_source(path, kind=kind, record=record, **settings) for path in files)
    source_list = SourceList(configs, Thresholds(min_text_chars=min_text_chars))
    with Project.open(project) as proj:
        result = run_pull(proj, source_list, dry_run=dry_run)
    _finish(result, report, json_out)


@app.command("history")
@handle_errors
def history(
    project: Annotated[Path, typer.Argument(help="Project file (.gpkg).")],
    json_out: JsonOption = False,
) -> None:
    """List the project's pulls: when, which sources, records in and out, status."""
    from geolabel.ingest.tables import pulls
    from geolabel.store import Project

    with Project.open(project) as proj:
        frame = pulls(proj)
    rows = [
        {k: v for k, v in row.items() if k != "report"} for row in frame.to_dict(orient="records")
    ]
    if json_out:
        print_json(rows)
        return
    if not rows:
        console.print(f"{project} has no ingest pulls yet.")
        return
    for row in rows:
        console.print(
            f"{row['pull_id']}  {row['status']:6}  {row['finished_at']}  in {row['n_in']}, "
            f"stored {row['n_out']}, dropped {row['n_dropped']}, duplicates "
            f"{row['n_duplicates']}  ({', '.join(row['sources'])})"
        )
