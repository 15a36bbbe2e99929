"""`geolabel demo`, `geolabel round` and `geolabel plan`: the hybrid loop from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from geolabel.cli.options import JsonOption, console, handle_errors, print_json

__all__ = ["demo", "plan_cmd", "round_cmd"]

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="Loop settings (.toml or .yaml): prices, routing thresholds, redundancy, selection"
        " weights; every key optional.",
    ),
]


def _table(rows: list[dict[Any, Any]], columns: list[tuple[str, str]], title: str) -> None:
    from rich.table import Table

    table = Table(title=title, title_justify="left", pad_edge=False, padding=(0, 1))
    for _, header in columns:
        table.add_column(header, justify="right")
    for row in rows:
        table.add_row(*(_fmt(row.get(key)) for key, _ in columns))
    console.print(table)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "-" if value != value else f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


@handle_errors
def demo(
    out_dir: Annotated[
        Path, typer.Argument(help="Output folder (an existing demo there is resumed).")
    ] = Path("geolabel-demo"),
    rounds: Annotated[int, typer.Option(min=1, max=20, help="Rounds to run.")] = 3,
    batch_size: Annotated[int, typer.Option(min=1, help="Items per round.")] = 60,
    target: Annotated[
        float, typer.Option(min=0.5, max=1.0, help="Consensus accuracy the planner aims for.")
    ] = 0.97,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the crowd and every draw.")] = 0,
    sample: Annotated[
        Path | None,
        typer.Option(help="Sample folder (default: data/sample here, else one is generated)."),
    ] = None,
    no_review: Annotated[
        bool, typer.Option("--no-review", help="Skip the hotspot / expert review story.")
    ] = False,
    json_out: JsonOption = False,
) -> None:
    """Run the whole loop on the sample city with a simulated crowd; write a report and a map."""
    from geolabel.loop.demo import result_json, run_demo

    def say(line: str) -> None:
        if not json_out:
            console.print(f"[dim]{line}[/dim]", highlight=False)

    result = run_demo(
        out_dir,
        rounds=rounds,
        batch_size=batch_size,
        target=target,
        seed=seed,
        sample=sample,
        review=not no_review,
        progress=say,
    )
    if json_out:
        print_json(result_json(result))
        return
    columns = [
        ("round", "round"),
        ("version", "tax."),
        ("items", "items"),
        ("easy", "verify"),
        ("medium", "crowd"),
        ("hard", "expert"),
        ("votes", "votes"),
        ("cost", "cost"),
        ("round_accuracy", "round acc"),
        ("consensus_accuracy", "consensus acc"),
        ("model_parcel_accuracy", "model acc"),
        ("model_miou", "mIoU"),
        ("n_flagged", "flagged"),
    ]
    rows = result.table.to_dict(orient="records")
    for row in rows:
        row["version"] = str(row.get("taxonomy", "")).replace("land_use ", "")
        flagged = row.get("flagged_annotators")
        row["n_flagged"] = (
            len(str(flagged).split(", ")) if isinstance(flagged, str) and flagged != "-" else 0
        )
    if console.width >= 130:
        _table(rows, columns, "geolabel demo: rounds (accuracy against the sample's truth)")
    else:  # a narrow terminal or a log: one line per round
        console.print("geolabel demo: rounds (accuracy against the sample's truth)")
        for row in rows:
            console.print(
                "  " + "; ".join(f"{header} {_fmt(row.get(key))}" for key, header in columns),
                highlight=False,
            )
    for row in rows:
        flagged = row.get("flagged_annotators")
        if isinstance(flagged, str) and flagged not in ("-", ""):
            console.print(f"round {row['round']}: flagged annotators {flagged}", highlight=False)
    for line in result.story:
        console.print(f"review: {line}", highlight=False)
    console.print(f"Project: {result.project}")
    console.print(f"Report: {result.report_html} (and report.md)")
    if result.map_html:
        console.print(f"Map: {result.map_html}")
    console.print(f"Done in {result.seconds:.0f} s.")


@handle_errors
def round_cmd(
    project: Annotated[Path, typer.Argument(help="Project file (.gpkg).")],
    config: ConfigOption = None,
    simulate: Annotated[
        Path | None,
        typer.Option(
            help="Let the simulated crowd of this sample folder answer (truth/ inside),"
            " instead of writing tasks out for people."
        ),
    ] = None,
    annotations: Annotated[
        Path | None,
        typer.Option(help="Answers (CSV item,annotator,label...) to the tasks written out."),
    ] = None,
    target: Annotated[
        float | None,
        typer.Option(
            min=0.5,
            max=1.0,
            help="Plan the round's thresholds and redundancy for this consensus accuracy.",
        ),
    ] = None,
    json_out: JsonOption = False,
) -> None:
    """Run or resume one round: retrain, pre-label, select, route, collect, aggregate, audit."""
    import pandas as pd

    from geolabel.loop.config import load_config
    from geolabel.loop.rounds import World, run_round
    from geolabel.store import Project

    cfg = load_config(config)
    world = None
    truth = None
    if simulate is not None:
        with Project.open(project) as p:
            classes = list(p.current_taxonomy().parcel_class_ids)
        world = World.from_sample(simulate, classes, seed=cfg.seed)
        truth = pd.read_csv(simulate / "truth" / "parcels.csv", dtype={"parcel_id": str}).rename(
            columns={"parcel_id": "item", "land_use": "label"}
        )

    def say(line: str) -> None:
        if not json_out:
            console.print(f"[dim]{line}[/dim]", highlight=False)

    report = run_round(
        project,
        config=cfg,
        world=world,
        annotations=annotations,
        truth=truth,
        target=target,
        progress=say,
    )
    if json_out:
        print_json(report)
        return
    console.print(
        f"Round {report.round_id} {report.status}: {report.n_selected} item(s) {report.tiers},"
        f" cost {report.cost.get('total', 0.0):.2f} {report.counts}"
    )
    for key, value in report.metrics.items():
        console.print(f"  {key}: {_fmt(value)}")
    if report.tasks_file:
        console.print(f"Tasks for people: {report.tasks_file}")
    for note in report.notes:
        console.print(f"Note: {note}", highlight=False)


@handle_errors
def plan_cmd(
    project: Annotated[Path, typer.Argument(help="Project file (.gpkg).")],
    target: Annotated[
        float, typer.Option(min=0.5, max=1.0, help="Target consensus accuracy.")
    ] = 0.97,
    config: ConfigOption = None,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Write the cost-accuracy curve (PNG).")
    ] = None,
    write_config: Annotated[
        Path | None,
        typer.Option("--write-config", help="Write the chosen settings as TOML for `round`."),
    ] = None,
    json_out: JsonOption = False,
) -> None:
    """Find the cheapest routing and redundancy that reach a target accuracy, by simulation."""
    from geolabel.loop.config import load_config
    from geolabel.loop.planner import plot_cost_accuracy
    from geolabel.loop.rounds import latest_prelabels, project_plan
    from geolabel.store import Project

    cfg = load_config(config)
    prelabels = latest_prelabels(project)
    with Project.open(project) as p:
        result = project_plan(p, prelabels, cfg, target)
    chosen = result.config
    if plot is not None:
        plot_cost_accuracy(result, plot)
    if write_config is not None:
        write_config.write_text(_toml(chosen.to_dict()), encoding="utf-8")
    if json_out:
        print_json(result.summary())
        return
    s = result.summary()
    verdict = "meets" if s["met"] else "does NOT meet (most accurate shown)"
    console.print(
        f"Cheapest plan that {verdict} {target:.0%}: verify at confidence >="
        f" {s['easy_confidence']}, expert below {s['hard_confidence']},"
        f" {s['initial_votes']}-{s['max_votes']} crowd votes to posterior"
        f" {s['target_posterior']}: expected accuracy {s['accuracy']:.3f} at"
        f" {s['cost_per_item']:.3f} per item over {s['n_items']} unlabeled item(s).",
        highlight=False,
    )
    console.print(f"Workforce model: {s['workforce']}", highlight=False)
    rows = result.uniform.to_dict(orient="records")
    _table(
        rows,
        [("votes", "uniform votes"), ("accuracy", "accuracy"), ("cost_per_item", "cost/item")],
        "For comparison: uniform crowd redundancy",
    )
    if plot is not None:
        console.print(f"Curve: {plot}")
    if write_config is not None:
        console.print(f"Settings: {write_config} (use with `geolabel round --config`)")


def _toml(data: dict[str, Any]) -> str:
    """A small TOML writer for the loop settings (flat keys and one level of tables)."""
    lines: list[str] = []
    tables: list[tuple[str, dict[str, Any]]] = []
    for key, value in data.items():
        if isinstance(value, dict):
            tables.append((key, value))
        elif value is not None:
            lines.append(f"{key} = {_toml_value(value)}")
    for name, table in tables:
        lines += ["", f"[{name}]"]
        lines += [f"{k} = {_toml_value(v)}" for k, v in table.items() if v is not None]
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
