"""`geolabel annotators`: how reliable each annotator is, how much they agree, who drifts."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from geolabel.cli.options import JsonOption, console, err_console, handle_errors, print_json

if TYPE_CHECKING:
    from geolabel.crowd.reliability import ReliabilityReport

__all__ = ["annotators", "print_report"]


@handle_errors
def annotators(
    project: Annotated[Path, typer.Argument(help="Project file (.gpkg).")],
    gold: Annotated[
        Path | None, typer.Option(help="CSV of known answers (item,label) to score against.")
    ] = None,
    label_map: Annotated[
        Path | None,
        typer.Option(help="Map labels outside the taxonomy (YAML old: new, or CSV from,to)."),
    ] = None,
    kind: Annotated[str, typer.Option(help="Item kind whose annotations to use.")] = "parcel",
    json_out: JsonOption = False,
) -> None:
    """Report gold accuracy, confusion, agreement, spammer score, volume, drift and fatigue."""
    from geolabel.crowd.consensus import project_reliability, read_gold, read_label_map
    from geolabel.errors import AggregationWarning
    from geolabel.store import Project

    gold_answers = read_gold(gold) if gold is not None else None
    mapping = read_label_map(label_map) if label_map is not None else None
    with Project.open(project) as p, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", AggregationWarning)
        report = project_reliability(p, gold=gold_answers, label_map=mapping, kind=kind)
    for warning in caught:
        err_console.print(f"Note: {warning.message}", markup=False)
    if json_out:
        print_json(report)
    else:
        print_report(report)


_CAPTION = (
    "n: votes; gold%: accuracy on gold, {ci}% Wilson interval, /gold answers; cons%: agrees "
    "with the consensus; DS%: Dawid-Skene accuracy; spam: spammer score (! flagged); drift: "
    "month-day it started; tired: fatigue @tasks into a session; s: median seconds per vote"
)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}"


def _num(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def print_report(report: ReliabilityReport) -> None:
    """Print a reliability report as tables."""
    overall = report.agreement.overall
    console.print(
        f"{report.n_votes} votes on {report.n_items} items by {report.n_annotators} annotators; "
        f"{report.n_gold_items} gold items. Agreement: Fleiss' kappa "
        f"{_num(overall.fleiss_kappa)}, Krippendorff's alpha {_num(overall.krippendorff_alpha)}, "
        f"mean Cohen's kappa {_num(overall.mean_cohen_kappa)}, pairwise "
        f"{_pct(overall.percent_agreement)}.",
        markup=False,
    )
    for group in report.agreement.per_group:
        s = group.scores
        console.print(
            f"  {group.group}: {s.n_items} items, Fleiss' kappa {_num(s.fleiss_kappa)}, "
            f"Krippendorff's alpha {_num(s.krippendorff_alpha)}",
            markup=False,
        )
    drift = {d.annotator: d for d in report.drift}
    table = Table(title="Annotators", caption=_CAPTION.format(ci=round(100 * report.confidence)))
    for header in ("annotator", "n", "gold%", "cons%", "DS%", "spam", "drift", "tired", "s"):
        table.add_column(header, no_wrap=True)
    for a in report.annotators:
        gold = (
            "-"
            if a.gold_accuracy is None
            else f"{_pct(a.gold_accuracy)} {_pct(a.gold_ci_low)}-{_pct(a.gold_ci_high)} "
            f"/{a.gold_answered}"
        )
        d = drift.get(a.annotator)
        drift_text = "-" if d is None else "no"
        fatigue_text = "-" if d is None else "no"
        if d is not None and d.drift_detected:
            drift_text = str(d.drift_started_at)[5:10]
        if d is not None and d.fatigue_detected:
            fatigue_text = f"@{d.fatigue_onset_task}"
        table.add_row(
            a.annotator,
            str(a.n_votes),
            gold,
            _pct(a.consensus_agreement),
            _pct(a.ds_accuracy),
            f"{a.spammer_score:.2f}" + ("!" if a.suspected_spammer else ""),
            drift_text,
            fatigue_text,
            _num(a.median_seconds, 0),
        )
    console.print(table)
