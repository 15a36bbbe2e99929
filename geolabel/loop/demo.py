"""``geolabel demo``: the whole loop on the bundled sample city, with a simulated crowd.

A starter set of expert labels (15% of parcels, spread over the city) trains the first model;
then every round pre-labels the city, selects a spatially diverse batch by active learning,
routes each item (verify / crowd with gold and dynamic overlap / expert), lets the simulated
crowd answer, aggregates, audits a sample and records everything in the project. Before each
round the planner picks the cheapest routing and redundancy that reaches the target accuracy,
from the project's own estimates (the cost–accuracy knob).

When the review package is installed (``geolabel.review``), the demo tells its story after the
first round: disagreement forms a hotspot over the mixed-use block, the review queue puts it
first, the simulated expert splits residential/commercial into a new ``mixed_use`` class, the
taxonomy becomes v2, guidelines are regenerated, the affected parcels are flagged and relabeled
in the next round.

Outputs in ``OUT_DIR``: ``demo.gpkg`` (the project; opens in QGIS), ``report.md`` and
``report.html`` (the per-round table, the learning curve and the cost–accuracy curve),
``learning_curve.png``, ``cost_accuracy.png``, and ``map.html`` when the map can be made.
Running the demo again on the same folder resumes: finished rounds are kept, an interrupted
round continues.
"""

from __future__ import annotations

import html
import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from geolabel.errors import InputFileError
from geolabel.loop.config import LoopConfig
from geolabel.loop.planner import plot_cost_accuracy
from geolabel.loop.rounds import RoundReport, World, run_round
from geolabel.loop.state import add_gold, round_items

__all__ = ["DemoResult", "demo_train_config", "find_sample", "project_from_sample", "run_demo"]

Say = Callable[[str], None]


@dataclass(frozen=True)
class DemoResult:
    """What the demo did.

    Attributes:
        out_dir: The output folder.
        project: The project file.
        rounds: One :class:`RoundReport` per round run or found.
        table: The per-round table (one row per round).
        report_md: Markdown report.
        report_html: HTML report.
        map_html: The map, when it could be made.
        story: What the review step did (hotspot, decision, taxonomy change), if it ran.
        seconds: Wall time.
    """

    out_dir: str
    project: str
    rounds: tuple[RoundReport, ...]
    table: pd.DataFrame
    report_md: str
    report_html: str
    map_html: str | None
    story: tuple[str, ...]
    seconds: float


def find_sample(sample: str | os.PathLike[str] | None, out_dir: Path, say: Say) -> Path:
    """The sample folder to use: the given one, ``data/sample`` here, or a freshly generated one.

    Raises:
        InputFileError: A given folder is not a sample.
    """
    if sample is not None:
        p = Path(sample)
        if not (p / "scene.tif").is_file() or not (p / "truth" / "parcels.csv").is_file():
            raise InputFileError(
                f"{p} is not a sample folder (it needs scene.tif and truth/); make one with"
                " `geolabel sample DIR`."
            )
        return p
    here = Path("data/sample")
    if (here / "scene.tif").is_file() and (here / "truth" / "parcels.csv").is_file():
        return here
    from geolabel.synth.sample import write_sample

    target = out_dir / "sample"
    if not (target / "scene.tif").is_file():
        say(f"generating the sample city in {target} (no data/sample here)")
        write_sample(target)
    return target


def demo_train_config() -> Any:
    """Training settings of the demo: the default model, fewer and shorter epochs.

    Rounds after the first start from the previous round's weights and run half the epochs at
    half the learning rate (:func:`geolabel.loop.rounds.run_round`).
    """
    from geolabel.prelabel.train import TrainConfig

    return TrainConfig(max_epochs=7, min_epochs=4, steps_per_epoch=16, patience=3)


def project_from_sample(
    sample: str | os.PathLike[str],
    project: str | os.PathLike[str],
    *,
    link_notices: bool = True,
    say: Say | None = None,
) -> Path:
    """A project from a sample folder, ready for rounds.

    Scene, parcels, POIs, districts, notices and taxonomy v1; the starter set as expert
    annotations; the gold answers; the notices linked to parcels.

    Args:
        sample: A folder written by ``geolabel sample`` (or ``data/sample``).
        project: The project file to create (replaced if it exists).
        link_notices: Extract the notices' entities and store their parcel links (impact).
        say: Called with a line of text per step.

    Returns:
        The project path.
    """
    from geolabel.project import init_sample_project
    from geolabel.store import Project
    from geolabel.text.extract import link_project_notices

    say = say or (lambda _line: None)
    sample, project = Path(sample), Path(project)
    say(f"project: {project} from {sample}")
    init_sample_project(sample, project, overwrite=True)
    with Project.open(project) as p:
        p.import_annotations_csv(sample / "labels" / "starter.csv", annotator_kind="expert")
        gold = pd.read_csv(sample / "labels" / "gold.csv", dtype=str)
        add_gold(p, pd.Series(gold["label"].to_numpy(), index=gold["item"]), source="sample")
        if link_notices:
            n = link_project_notices(p)
            say(f"notices: {n} parcel link(s) stored (high-impact parcels)")
    return project


def _replan(project: Path, cfg: LoopConfig, target: float, say: Say) -> tuple[LoopConfig, Any]:
    """The planner on the project's newest pre-labels (for the report's cost–accuracy curve)."""
    from geolabel.loop.rounds import latest_prelabels, project_plan
    from geolabel.store import Project

    prelabels = latest_prelabels(project)
    with Project.open(project) as p:
        result = project_plan(p, prelabels, cfg, target)
    s = result.summary()
    say(
        f"plan for the next round ({target:.0%}): verify at confidence >= {s['easy_confidence']},"
        f" expert below {s['hard_confidence']}, {s['initial_votes']}-{s['max_votes']} votes to"
        f" posterior {s['target_posterior']}; expected accuracy {s['accuracy']:.3f} at"
        f" {s['cost_per_item']:.3f}/item ({s['workforce']})"
    )
    return result.config, result


def _review_story(project: Path, world: World, say: Say) -> list[str]:
    """Hotspot → queue → expert split → taxonomy v2 → flagged parcels (with geolabel.review)."""
    from geolabel.errors import GeolabelError
    from geolabel.review import story

    # After one round few parcels have two votes: the hotspot test lets the model's doubt
    # stand in for the others (project_hotspots(model_uncertainty=True)), so the block the
    # model cannot place shows up, and the expert proposes the split from the mixed-use
    # parcels met inside one hotspot.
    try:
        return story.run(project, truth=world.truth, say=say, model_uncertainty=True)
    except GeolabelError as exc:  # the review is a chapter of the demo, not its purpose
        line = f"Review skipped: {exc}"
        say(line)
        return [line]


def _poi_round(project: Path, sample: Path, cfg: LoopConfig, say: Say) -> dict[str, Any] | None:
    """POIs through the same machinery: pre-label from names and land use, route, collect, store.

    Returns the POI row of the demo table (None when the sample has no POI taxonomy or the
    POIs were labeled before).
    """
    from geolabel.crowd.simulate import CrowdSimulator
    from geolabel.loop.collect import SimulatedWorkforce, collect
    from geolabel.loop.poi import poi_crowd, poi_prelabels, poi_truth, store_poi_prelabels
    from geolabel.loop.route import route
    from geolabel.store import Project
    from geolabel.taxonomy import load_taxonomy

    tax_path = sample / "taxonomies" / "poi.yaml"
    if not tax_path.is_file() or not (sample / "truth" / "pois.csv").is_file():
        return None
    taxonomy = load_taxonomy(tax_path)
    classes = list(taxonomy.class_ids)
    with Project.open(project) as p:
        if "pois" not in {layer.name for layer in p.layers()}:
            return None
        cons = p.current_consensus()
        if len(cons) and (cons["taxonomy_name"] == taxonomy.name).any():
            return None
        pois = p.read_layer("pois")
        parcel_labels = pd.Series(
            cons["label"].astype(str).to_numpy(), index=cons["item"].astype(str)
        )
        pre = poi_prelabels(pois, taxonomy, parcel_labels=parcel_labels)
        version = f"poi-rules.v{taxonomy.version}"
        store_poi_prelabels(p, pre, version, taxonomy=taxonomy)
        truth = poi_truth(sample, taxonomy)
        sim = CrowdSimulator(truth, poi_crowd(classes, cfg.seed), classes, seed=cfg.seed)
        routed = route(pre[["item", "confidence"]], cfg.routing)
        res = collect(routed, pre.set_index("item"), SimulatedWorkforce(sim), cfg, classes=classes)
        p.add_annotations(
            res.votes[["item", "annotator", "label", "created_at", "seconds"]],
            source="simulated POI round",
            allowed_labels=classes,
        )
        ann = p.annotations("poi")
        ids = ann.groupby("item")["annotation_id"].apply(list).to_dict()
        decided = res.decisions.dropna(subset=["label"])
        for method, group in decided.groupby("method"):
            p.add_consensus(
                group[["item", "label", "confidence"]]
                .assign(confidence=group["confidence"].fillna(1.0).clip(0, 1))
                .assign(votes=[ids.get(i, []) for i in group["item"]]),
                method=str(method),
                taxonomy_name=taxonomy.name,
                taxonomy_version=taxonomy.version,
                model_version=version if method != "expert" else None,
                allowed_labels=classes,
            )
    t = truth.set_index("item")["label"]
    acc = float(
        (decided.set_index("item")["label"] == t.reindex(decided["item"]).to_numpy()).mean()
    )
    pre_acc = float((pre.set_index("item")["label"] == t.reindex(pre["item"]).to_numpy()).mean())
    say(
        f"POIs: {len(pre)} pre-labeled from names and land use (accuracy {pre_acc:.3f}),"
        f" routed {routed['tier'].value_counts().to_dict()}, consensus accuracy {acc:.3f},"
        f" cost {res.cost['total']:.2f}"
    )
    return {
        "round": "POIs",
        "taxonomy": taxonomy.label,
        "items": len(pre),
        "easy": int((routed["tier"] == "easy").sum()),
        "medium": int((routed["tier"] == "medium").sum()),
        "hard": int((routed["tier"] == "hard").sum()),
        "verifications": res.counts["verify"],
        "votes": res.counts["vote"] + res.counts["gold"],
        "expert": res.counts["expert"],
        "cost": round(res.cost["total"], 2),
        "round_accuracy": round(acc, 4),
        "model_parcel_accuracy": round(pre_acc, 4),
    }


def _flagged_accuracy(project: Path, truth: pd.DataFrame) -> tuple[float, int] | None:
    """Consensus accuracy on the parcels a taxonomy change flagged for relabeling."""
    from geolabel.store import Project

    with Project.open(project) as p:
        raw = p.meta.get("review.relabel")
        cons = p.current_consensus()
    if not raw:
        return None
    flagged = set(json.loads(raw))
    cons = cons[cons["item"].astype(str).isin(flagged)]
    t = truth.set_index("item")["label"]
    scored = cons[cons["item"].isin(t.index)]
    if scored.empty:
        return None
    right = scored["label"].to_numpy() == t.loc[scored["item"]].to_numpy()
    return float(right.mean()), len(scored)


def _row(report: RoundReport, cumulative_cost: float, labeled: int) -> dict[str, Any]:
    m = report.metrics
    return {
        "round": report.round_id,
        "taxonomy": report.taxonomy,
        "items": report.n_selected,
        "easy": report.tiers.get("easy", 0),
        "medium": report.tiers.get("medium", 0),
        "hard": report.tiers.get("hard", 0),
        "verifications": report.counts.get("verify", 0),
        "votes": report.counts.get("vote", 0) + report.counts.get("gold", 0),
        "expert": report.counts.get("expert", 0),
        "audited": report.counts.get("audit", 0),
        "cost": round(report.cost.get("total", 0.0), 2),
        "cumulative_cost": round(cumulative_cost, 2),
        "labeled_parcels": labeled,
        "round_accuracy": round(m.get("round_accuracy", float("nan")), 4),
        "consensus_accuracy": round(m.get("consensus_accuracy", float("nan")), 4),
        "model_parcel_accuracy": round(m.get("model_parcel_accuracy_all", float("nan")), 4),
        "model_miou": round(m.get("model_val_miou", float("nan")), 4),
        "flagged_annotators": ", ".join(report.flagged_annotators) or "-",
    }


def run_demo(
    out_dir: str | os.PathLike[str] = "geolabel-demo",
    *,
    rounds: int = 3,
    batch_size: int = 60,
    target: float = 0.97,
    seed: int = 0,
    sample: str | os.PathLike[str] | None = None,
    train_config: Any = None,
    review: bool = True,
    progress: Say | None = None,
) -> DemoResult:
    """Run the demo (see the module docstring).

    Args:
        out_dir: Output folder (created; an existing demo there is resumed).
        rounds: Rounds to run in all (finished rounds found there count).
        batch_size: Items per round.
        target: Consensus accuracy the planner aims for.
        seed: Seed of the crowd and every draw.
        sample: Sample folder (default: ``data/sample`` if present, else generated).
        train_config: Training settings (default :func:`demo_train_config`).
        review: Tell the review story after round 1 when the review package is there.
        progress: Called with a line of text at every step.

    Returns:
        What the demo did.
    """
    say = progress or (lambda _line: None)
    t_start = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    src = find_sample(sample, out, say)
    project = out / "demo.gpkg"
    from geolabel.store import Project

    fresh = True
    if project.is_file():
        with Project.open(project) as p:
            fresh = p.rounds().empty and p.annotations().empty
    if fresh:
        project_from_sample(src, project, say=say)
    truth = pd.read_csv(src / "truth" / "parcels.csv", dtype={"parcel_id": str}).rename(
        columns={"parcel_id": "item", "land_use": "label"}
    )
    tcfg = train_config or demo_train_config()
    cfg = LoopConfig(batch_size=batch_size, seed=seed)
    reports: list[RoundReport] = []
    story: list[str] = []
    flagged_before: tuple[float, int] | None = None
    flagged_told = False
    with Project.open(project) as p:
        done = p.rounds()
        n_done = int((done["status"] == "finished").sum()) if len(done) else 0
    while True:
        with Project.open(project) as p:
            finished = p.rounds()
            n_done = int((finished["status"] == "finished").sum()) if len(finished) else 0
            classes = list(p.current_taxonomy().parcel_class_ids)
            running = bool(len(finished)) and (finished["status"] == "running").any()
        if n_done >= rounds and not running:
            break
        world = World.from_sample(src, classes, seed=seed)
        say(f"— round {n_done + 1} of {rounds}")
        report = run_round(
            project,
            config=cfg,
            world=world,
            train_config=tcfg,
            truth=truth,
            target=target,
            progress=say,
        )
        reports.append(report)
        if flagged_before is not None and report.round_id > 1 and not flagged_told:
            after = _flagged_accuracy(project, truth)
            if after is not None:
                line = (
                    f"Round {report.round_id} relabeled the flagged parcels: consensus accuracy"
                    f" on them {flagged_before[0]:.3f} -> {after[0]:.3f} ({after[1]} parcels)."
                )
                story.append(line)
                say(line)
            flagged_told = True
        if review and report.round_id == 1 and not story:
            story = _review_story(project, world, say)
            before = _flagged_accuracy(project, truth)
            if before is not None:
                flagged_before = before
    poi_row = _poi_round(project, src, cfg, say)
    # A plan for the next round, for the report's cost–accuracy curve.
    _, final_plan = _replan(project, cfg, target, say)
    table = _table(project, reports)
    if poi_row is not None:
        table = pd.concat([table, pd.DataFrame([poi_row])], ignore_index=True)
    map_html = _make_map(project, out, say)
    md, page = _write_report(out, table, final_plan, story, map_html, target)
    seconds = time.perf_counter() - t_start
    return DemoResult(
        out_dir=str(out),
        project=str(project),
        rounds=tuple(reports),
        table=table,
        report_md=str(md),
        report_html=str(page),
        map_html=None if map_html is None else str(map_html),
        story=tuple(story),
        seconds=seconds,
    )


def _table(project: Path, reports: list[RoundReport]) -> pd.DataFrame:
    """One row per finished round, from this run's reports or the rounds' stored summaries."""
    from geolabel.loop.state import load_round_state
    from geolabel.store import Project

    with Project.open(project) as p:
        items = round_items(p)
        annotated = set(p.annotations("parcel")["item"].astype(str))
        starter_n = len(annotated - set(items["item"].astype(str)))
        rounds_meta = p.rounds()
        finished = rounds_meta.loc[rounds_meta["status"] == "finished", "round_id"]
        summaries = {int(r): load_round_state(p, int(r)).get("summary") for r in finished}
    rows = []
    cumulative = 0.0
    labeled = starter_n
    by_id = {r.round_id: r for r in reports}
    for rid in finished:
        mine = items[items["round_id"] == int(rid)] if len(items) else items
        labeled += int(mine["label"].notna().sum()) if len(mine) else 0
        report = by_id.get(int(rid))
        summary = summaries.get(int(rid)) or {}
        if report is None and summary:
            report = RoundReport(
                round_id=int(rid),
                status="finished",
                model_version=None,
                taxonomy=str(summary.get("taxonomy", "")),
                n_selected=int(summary.get("n_selected", len(mine))),
                tiers=dict(summary.get("tiers", {})),
                final_tiers={},
                counts=dict(summary.get("counts", {})),
                cost=dict(summary.get("cost", {})),
                waves=0,
                tasks_file=None,
                audit={},
                flagged_annotators=list(summary.get("flagged", [])),
                metrics=dict(summary.get("metrics", {})),
            )
        if report is not None:
            cumulative += report.cost.get("total", 0.0)
            rows.append(_row(report, cumulative, labeled))
    return pd.DataFrame(rows)


def _make_map(project: Path, out: Path, say: Say) -> Path | None:
    from geolabel.review.maps import build_map

    target = out / "map.html"
    try:
        build_map(project, target)
    except Exception as exc:  # the map is a bonus: the demo goes on and says why it is missing
        say(f"map: not made ({exc})")
        return None
    say(f"map: {target}")
    return target


def _learning_curve(table: pd.DataFrame, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.8), dpi=110)
    x = table["labeled_parcels"]
    for col, name in (
        ("model_parcel_accuracy", "model parcel accuracy"),
        ("consensus_accuracy", "consensus accuracy"),
        ("model_miou", "model validation mIoU"),
    ):
        if col in table and table[col].notna().any():
            ax.plot(x, table[col], "-o", ms=4, label=name)
    ax.set_xlabel("labeled parcels")
    ax.set_ylabel("score")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    if ax.get_lines():
        ax.legend(fontsize=8, loc="lower right")
    ax.set_title("Learning curve over the rounds", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _write_report(
    out: Path,
    table: pd.DataFrame,
    final_plan: Any,
    story: list[str],
    map_html: Path | None,
    target: float,
) -> tuple[Path, Path]:
    rounds = table[table["round"].astype(str) != "POIs"]
    curve = _learning_curve(rounds, out / "learning_curve.png")
    observed = pd.DataFrame(
        {
            "cost_per_item": rounds["cost"] / rounds["items"].clip(lower=1),
            "accuracy": rounds.get("round_accuracy", pd.Series(dtype=float)),
        }
    ).dropna()
    knob = plot_cost_accuracy(final_plan, out / "cost_accuracy.png", observed=observed)
    s = final_plan.summary()
    plan_text = (
        f"Next round's plan: verify pre-labels at confidence ≥ {s['easy_confidence']}, an expert"
        f" below {s['hard_confidence']}, {s['initial_votes']} to {s['max_votes']} crowd votes"
        f" until the posterior reaches {s['target_posterior']}; expected accuracy"
        f" {s['accuracy']:.3f} at {s['cost_per_item']:.3f} per item ({s['workforce']})."
    )
    md = [
        "# geolabel demo report",
        "",
        "Rounds of the hybrid loop on the sample city with the simulated crowd.",
        "",
        _markdown_table(table),
        "",
        f"![learning curve]({curve.name})",
        "",
        f"## The cost–accuracy knob (target {target:.0%})",
        "",
        plan_text,
        "",
        f"![cost-accuracy curve]({knob.name})",
        "",
    ]
    if story:
        md += ["## Review: what the disagreement taught the taxonomy", ""]
        md += [f"- {line}" for line in story]
        md.append("")
    if map_html is not None:
        md += [f"The map: [{map_html.name}]({map_html.name}).", ""]
    md_path = out / "report.md"
    md_path.write_text("\n".join(md), encoding="utf-8")
    body = [
        "<!doctype html><html><head><meta charset='utf-8'><title>geolabel demo report</title>",
        "<style>body{font-family:sans-serif;max-width:960px;margin:2em auto}"
        "table{border-collapse:collapse;font-size:12px}"
        "td,th{border:1px solid #ccc;padding:3px 6px}</style>",
        "</head><body><h1>geolabel demo report</h1>",
        "<p>Rounds of the hybrid loop on the sample city with the simulated crowd.</p>",
        table.to_html(index=False, escape=True),
        f"<p><img src='{curve.name}' alt='learning curve'></p>",
        f"<h2>The cost–accuracy knob (target {target:.0%})</h2>",
        f"<p>{html.escape(plan_text)}</p>",
        f"<p><img src='{knob.name}' alt='cost-accuracy curve'></p>",
    ]
    if story:
        body.append("<h2>Review: what the disagreement taught the taxonomy</h2><ul>")
        body += [f"<li>{html.escape(line)}</li>" for line in story]
        body.append("</ul>")
    if map_html is not None:
        body.append(f"<p><a href='{map_html.name}'>The map</a></p>")
    body.append("</body></html>")
    page = out / "report.html"
    page.write_text("\n".join(body), encoding="utf-8")
    return md_path, page


def _markdown_table(table: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table (no extra dependency)."""
    cols = [str(c) for c in table.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in table.itertuples(index=False):
        lines.append("| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |")
    return "\n".join(lines)


def result_json(result: DemoResult) -> dict[str, Any]:
    """A JSON-able summary of a demo run."""
    return {
        "out_dir": result.out_dir,
        "project": result.project,
        "report_html": result.report_html,
        "map_html": result.map_html,
        "seconds": round(result.seconds, 1),
        "rounds": json.loads(result.table.to_json(orient="records")),
        "story": list(result.story),
        "round_reports": [asdict(r) for r in result.rounds],
    }
