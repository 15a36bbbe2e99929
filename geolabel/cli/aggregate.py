"""`geolabel aggregate`: decide consensus labels from the crowd's votes and store them."""

from __future__ import annotations

import warnings
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from geolabel.cli.options import JsonOption, console, err_console, handle_errors, print_json

__all__ = ["MethodChoice", "WeightsChoice", "aggregate"]


class MethodChoice(StrEnum):
    """Aggregation methods offered on the command line."""

    ds = "ds"
    mv = "mv"
    wmv = "wmv"
    glad = "glad"
    onecoin = "onecoin"


class WeightsChoice(StrEnum):
    """Where the weighted majority vote's annotator weights come from."""

    gold = "gold"
    appen_trust = "appen-trust"


@handle_errors
def aggregate(
    project: Annotated[Path, typer.Argument(help="Project file (.gpkg).")],
    method: Annotated[
        MethodChoice,
        typer.Option(
            help="ds: Dawid-Skene; mv: majority vote; wmv: weighted by gold accuracy; "
            "glad: ability x difficulty; onecoin: one-coin Dawid-Skene."
        ),
    ] = MethodChoice.ds,
    gold: Annotated[
        Path | None,
        typer.Option(help="CSV of known answers (item,label): clamped, and wmv's weights."),
    ] = None,
    label_map: Annotated[
        Path | None,
        typer.Option(
            help="Map labels outside the taxonomy (YAML old: new, or CSV from,to); "
            "without it such labels are refused."
        ),
    ] = None,
    model_version: Annotated[
        str | None,
        typer.Option(help="Use this model's stored pre-labels as item priors (ds/onecoin/glad)."),
    ] = None,
    weights: Annotated[
        WeightsChoice,
        typer.Option(
            help="wmv's annotator weights: gold (accuracy on --gold items) or appen-trust (the"
            " trust scores of an imported Appen full report)."
        ),
    ] = WeightsChoice.gold,
    default_weight: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            help="With --weights appen-trust: weight of annotators without a trust score"
            " (default: refuse them).",
        ),
    ] = None,
    kind: Annotated[str, typer.Option(help="Item kind to aggregate.")] = "parcel",
    round_id: Annotated[int | None, typer.Option("--round", help="Round to record.")] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Decide and report, but store nothing.")
    ] = False,
    json_out: JsonOption = False,
) -> None:
    """Aggregate votes into consensus labels, stored with their votes, method and taxonomy."""
    from geolabel.crowd.consensus import aggregate_project, read_gold, read_label_map
    from geolabel.errors import AggregationWarning
    from geolabel.store import Project

    if weights is WeightsChoice.appen_trust and method is not MethodChoice.wmv:
        raise typer.BadParameter("--weights appen-trust goes with --method wmv.")
    if default_weight is not None and weights is not WeightsChoice.appen_trust:
        raise typer.BadParameter("--default-weight goes with --weights appen-trust.")
    gold_answers = read_gold(gold) if gold is not None else None
    mapping = read_label_map(label_map) if label_map is not None else None
    with Project.open(project) as p, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", AggregationWarning)
        result = aggregate_project(
            p,
            method=method.value,
            gold=gold_answers,
            label_map=mapping,
            model_version=model_version,
            kind=kind,
            round_id=round_id,
            write=not dry_run,
            weights="appen-trust" if weights is WeightsChoice.appen_trust else None,
            default_weight=default_weight,
        )
    for warning in caught:
        err_console.print(f"Note: {warning.message}", markup=False)
    if json_out:
        print_json(result)
        return
    action = "Would store" if dry_run else "Stored"
    console.print(
        f"{action} consensus for {result.n_items} item(s) by {result.method} from "
        f"{result.n_votes} vote(s) of {result.n_annotators} annotator(s) ({result.taxonomy}"
        + (f", priors from model {result.model_version}" if result.model_version else "")
        + (f", {result.n_gold} gold item(s) clamped" if result.n_gold else "")
        + ").",
        markup=False,
    )
    if result.n_iter:
        state = "converged" if result.converged else "stopped at the round limit"
        console.print(f"EM: {result.n_iter} round(s), {state}.", markup=False)
    labels = ", ".join(f"{k} {v}" for k, v in sorted(result.labels.items()))
    console.print(f"Labels: {labels}. Mean confidence {result.mean_confidence:.3f}.", markup=False)
