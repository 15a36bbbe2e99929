"""One round of the hybrid loop on a project, resumable stage by stage.

``retrain → pre-label → select → route → tasks out → answers in → aggregate → audit → record``.

Every stage records what it did in the round's state (:mod:`geolabel.loop.state`) before the
next begins, and every stage is idempotent on what is stored, so a round interrupted at any
point (a crash, Ctrl-C, a machine restart) continues where it stopped when ``run_round`` is
called again, and never loses or duplicates stored annotations:

* the model of the round is trained once (its version is recorded); pre-labels of a model are
  stored once (the store skips predictions it has);
* selection and routing are recorded before any task goes out;
* answers come in wave by wave (:func:`geolabel.loop.collect.next_wave`): with a simulated
  crowd (``world``) the round runs through; with real people the round writes the wave's tasks
  to ``<project>_rounds/round-<id>/wave-<n>.csv`` and stops with status ``waiting``; importing
  the answers (``annotations=``) and calling again runs the next wave. Imports are idempotent,
  so importing a file twice is harmless;
* consensus, audits and round items are appended once, then the round is finished.
"""

from __future__ import annotations

import json
import os
import pickle
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from geolabel.crowd.consensus import METHODS
from geolabel.crowd.simulate import CrowdSimulator, profiles_from_json
from geolabel.errors import GeolabelError, InputFileError, StoreError
from geolabel.loop.collect import MAX_WAVES, SimulatedWorkforce, Wave, next_wave, price
from geolabel.loop.config import COLD_START_SELECTION, LoopConfig
from geolabel.loop.planner import PlanResult
from geolabel.loop.route import route
from geolabel.loop.select import diverse_batch, embedding_clusters, score_pool
from geolabel.loop.state import (
    add_round_items,
    load_round_state,
    read_gold_table,
    save_round_state,
)
from geolabel.store import Project

__all__ = [
    "RoundReport",
    "World",
    "candidate_pool",
    "latest_prelabels",
    "project_plan",
    "run_round",
    "score_against_truth",
]

Progress = Callable[[str], None]


@dataclass(frozen=True)
class World:
    """A simulated world: the truth of every item and the people who answer.

    Attributes:
        truth: The simulator's truth frame (``item, label, alt_label, ambiguity, difficulty``).
        workforce: The simulated crowd and experts.
    """

    truth: pd.DataFrame
    workforce: SimulatedWorkforce

    @classmethod
    def from_sample(
        cls, sample_dir: str | os.PathLike[str], classes: list[str], *, seed: int = 0
    ) -> World:
        """The world of a sample folder (``truth/parcels.csv``, ``truth/annotators.json``).

        Args:
            sample_dir: A folder written by ``geolabel sample``.
            classes: The classes people can answer (the project's current taxonomy).
            seed: Seed of the votes.

        Raises:
            InputFileError: The folder lacks its truth files.
        """
        root = Path(sample_dir)
        parcels, people = root / "truth" / "parcels.csv", root / "truth" / "annotators.json"
        for p in (parcels, people):
            if not p.is_file():
                raise InputFileError(
                    f"{p} is missing: --simulate needs a folder written by `geolabel sample`"
                    " (with truth/parcels.csv and truth/annotators.json)."
                )
        truth = pd.read_csv(parcels, dtype={"parcel_id": str}).rename(
            columns={"parcel_id": "item", "land_use": "label"}
        )
        profiles = profiles_from_json(json.loads(people.read_text(encoding="utf-8")))
        profiles = [_reclass(p, classes) for p in profiles]
        fallback = {"mixed_use": {"residential": 0.5, "commercial": 0.5}}
        sim = CrowdSimulator(
            truth,
            profiles,
            classes,
            fallback={k: v for k, v in fallback.items() if k not in classes},
            seed=seed,
        )
        return cls(truth=truth, workforce=SimulatedWorkforce(sim))


def _reclass(profile: Any, classes: list[str]) -> Any:
    """A profile over another class list: new classes answered like their nearest parent.

    After a taxonomy split (``mixed_use`` out of residential and commercial), people can answer
    the new class; their skill on it is their mean skill, their errors spread like the rest.
    """
    old = list(profile.classes)
    if set(old) == set(classes):
        return profile
    m = np.asarray(profile.confusion, dtype=np.float64)
    k = len(classes)
    out = np.zeros((k, k))
    diag = float(np.mean(np.diag(m)))
    for i, ci in enumerate(classes):
        if ci in old:
            row = m[old.index(ci)]
            for j, cj in enumerate(classes):
                out[i, j] = row[old.index(cj)] if cj in old else 0.0
            new = [j for j, cj in enumerate(classes) if cj not in old]
            if new:  # a little mass for the new classes, taken from the diagonal
                take = min(0.02 * len(new), out[i, i] * 0.1)
                out[i, i] -= take
                out[i, new] += take / len(new)
        else:
            out[i] = (1.0 - diag) / max(1, k - 1)
            out[i, i] = diag
    out /= out.sum(axis=1, keepdims=True)
    return replace(profile, classes=tuple(classes), confusion=tuple(map(tuple, out)))


@dataclass(frozen=True)
class RoundReport:
    """What one round did.

    Attributes:
        round_id: The round.
        status: ``finished``, or ``waiting`` for answers to tasks written out.
        model_version: Model whose pre-labels served the round.
        taxonomy: ``name v<version>`` the round labeled in.
        n_selected: Items selected.
        tiers: Items per tier as routed.
        final_tiers: Items per tier where they were decided.
        counts: Units of work bought (verify, vote, gold, expert, audit).
        cost: Cost per kind and ``total``.
        waves: Waves of tasks run.
        tasks_file: Tasks written for people to answer (when waiting).
        audit: Audit summary (sampled, errors, error rate by stratum).
        flagged_annotators: Annotators whose estimated accuracy is poor.
        metrics: Scores against truth when known (``consensus_accuracy``,
            ``model_parcel_accuracy``...), and the model's validation mIoU.
        seconds: Wall time per stage.
        notes: What a user should know.
    """

    round_id: int
    status: str
    model_version: str | None
    taxonomy: str
    n_selected: int
    tiers: dict[str, int]
    final_tiers: dict[str, int]
    counts: dict[str, int]
    cost: dict[str, float]
    waves: int
    tasks_file: str | None
    audit: dict[str, Any]
    flagged_annotators: list[str]
    metrics: dict[str, float]
    seconds: dict[str, float] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


def candidate_pool(project: Project, prelabels: pd.DataFrame, *, exclude: set[str]) -> pd.DataFrame:
    """Unlabeled parcels with what the scorers need.

    Args:
        project: An open project.
        prelabels: Item-indexed pre-labels (``label, confidence, margin, entropy, p_*``).
        exclude: Items never to select (labeled, gold).

    Returns:
        ``item, district, area_m2, x, y, impact`` and the pre-label columns.
    """
    parcels = project.read_layer("parcels")
    id_col = "parcel_id" if "parcel_id" in parcels.columns else "item"
    frame = pd.DataFrame(
        {
            "item": parcels[id_col].astype(str).to_numpy(),
            "area_m2": parcels.geometry.area.to_numpy(),
            "x": parcels.geometry.centroid.x.to_numpy(),
            "y": parcels.geometry.centroid.y.to_numpy(),
        }
    )
    frame["district"] = (
        parcels["district"].astype(str).to_numpy() if "district" in parcels.columns else None
    )
    links = project.notice_links()
    counts = links.groupby("item")["notice_id"].nunique() if len(links) else pd.Series(dtype=int)
    frame["impact"] = frame["item"].map(counts).fillna(0).astype(float)
    frame = frame[~frame["item"].isin(exclude)]
    return frame.merge(prelabels, left_on="item", right_index=True, how="left")


def score_against_truth(
    labels: pd.Series, truth: pd.DataFrame, classes: list[str]
) -> tuple[float, int]:
    """Accuracy of ``labels`` (item -> label) against truth, on items whose true class exists.

    Items whose true class the taxonomy cannot express (``mixed_use`` under v1) are left out.
    """
    t = truth.set_index("item")["label"]
    common = labels.index.intersection(t.index)
    t = t.loc[common]
    keep = t.isin(classes)
    if not keep.any():
        return float("nan"), 0
    return float((labels.loc[common][keep] == t[keep]).mean()), int(keep.sum())


def latest_prelabels(project_path: str | os.PathLike[str]) -> pd.DataFrame:
    """The newest model's per-parcel pre-labels (item-indexed ``label, confidence, p_*``).

    Raises:
        InputFileError: No model, or the newest model has not pre-labeled the project yet.
    """
    from geolabel.prelabel.model import load_checkpoint
    from geolabel.prelabel.pipeline import latest_model, prelabels_dir

    _, card = load_checkpoint(latest_model(project_path))
    csv = prelabels_dir(project_path, card.model_version) / "parcels.csv"
    if not csv.is_file():
        raise InputFileError(
            f"Model {card.model_version} has not pre-labeled {project_path} yet; run"
            " `geolabel prelabel PROJECT` (or a round) first."
        )
    return _prelabel_frame(csv)


def _prelabel_frame(csv: str | os.PathLike[str]) -> pd.DataFrame:
    frame = pd.read_csv(csv, dtype={"item": str})
    return frame.set_index("item")


def _round_to_resume(project: Project, config: LoopConfig) -> tuple[int, bool]:
    rounds = project.rounds()
    running = rounds[rounds["status"] == "running"] if len(rounds) else rounds
    if len(running):
        return int(running["round_id"].iloc[-1]), True
    return project.start_round(config.to_dict()), False


def _train(
    project_path: Path,
    config: LoopConfig,
    *,
    round_no: int,
    train_config: Any,
    say: Progress,
) -> str:
    """The round's model: the newest one for round 1 when there is one, else train anew."""
    from geolabel.prelabel.model import load_checkpoint
    from geolabel.prelabel.pipeline import latest_model, train_project
    from geolabel.prelabel.train import TrainConfig

    with Project.open(project_path) as p:
        has_consensus = not p.current_consensus().empty
        taxonomy = p.current_taxonomy()
    try:
        previous = latest_model(project_path)
    except InputFileError:  # no model yet
        previous = None
    if previous is not None:
        _, card = load_checkpoint(previous)
        fits = tuple(card.classes[: len(taxonomy.parcel_class_ids)]) == tuple(
            taxonomy.parcel_class_ids
        ) and str(card.taxonomy_version) == str(taxonomy.version)
        if fits and (round_no == 1 or not config.retrain):
            say(f"model: using {card.model_version} (newest, taxonomy v{card.taxonomy_version})")
            return str(previous)
    else:
        fits = False
    cfg = train_config or TrainConfig()
    if config.epochs is not None:
        cfg = replace(cfg, max_epochs=config.epochs, min_epochs=min(cfg.min_epochs, config.epochs))
    if previous is not None and fits:  # warm start from the previous round's weights
        cfg = replace(
            cfg,
            model=replace(cfg.model, weights=str(Path(previous) / "weights.pt")),
            max_epochs=max(2, cfg.max_epochs // 2),
            min_epochs=max(1, min(cfg.min_epochs, cfg.max_epochs // 2) - 1),
            lr=cfg.lr / 2,
        )
    elif previous is not None:  # the classes changed (a taxonomy split or merge)
        try:
            cfg = replace(cfg, model=replace(cfg.model, weights=_headless_weights(previous)))
        except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as exc:  # start afresh
            say(f"model: cannot reuse {previous} ({exc}); training from scratch")
            previous = None
    labels: Literal["starter", "consensus"] = "consensus" if has_consensus else "starter"
    start = (
        "warm start"
        if previous is not None and fits
        else "encoder and decoder from the previous model, new class head"
        if previous is not None
        else "from scratch"
    )
    say(f"model: training on {labels} labels ({start})")
    try:
        report = train_project(project_path, labels=labels, config=cfg)
    except GeolabelError as exc:  # a warm start that does not fit the new head: start afresh
        if cfg.model.weights is None:
            raise
        say(f"model: warm start refused ({exc}); training from scratch")
        report = train_project(
            project_path, labels=labels, config=replace(cfg, model=replace(cfg.model, weights=None))
        )
    return str(report.model_dir)


def _headless_weights(model_dir: str | os.PathLike[str]) -> str:
    """The previous model's weights without its class head, for a model of other classes.

    After a taxonomy change the class head (one output per class) no longer fits, but what the
    encoder and decoder learned about the imagery still holds: the new model starts from them
    with a freshly initialised head (``build_model`` loads the file with ``strict=False``)
    and trains on the full schedule. Written beside the previous weights, once.
    """
    import torch

    target = Path(model_dir) / "weights_headless.pt"
    if not target.exists():
        state = torch.load(Path(model_dir) / "weights.pt", map_location="cpu", weights_only=True)
        kept = {k: v for k, v in state.items() if not k.startswith("segmentation_head.")}
        tmp = target.with_suffix(".tmp")
        torch.save(kept, tmp)
        tmp.replace(target)
    return str(target)


def run_round(
    project_path: str | os.PathLike[str],
    *,
    config: LoopConfig | None = None,
    world: World | None = None,
    annotations: str | os.PathLike[str] | None = None,
    train_config: Any = None,
    truth: pd.DataFrame | None = None,
    target: float | None = None,
    progress: Progress | None = None,
) -> RoundReport:
    """Run (or resume) one round of the loop on a project.

    Args:
        project_path: The project GeoPackage.
        config: Loop settings (defaults when None).
        world: A simulated world that answers the tasks (the demo, benchmarks); None means
            real people: tasks are written out and the round waits for ``annotations``.
        annotations: A CSV of answers (``item, annotator, label``...) to the tasks written out,
            imported before the round continues.
        train_config: Training settings for retraining (``TrainConfig``); the trainer's
            defaults when None.
        truth: True labels (``item, label``) to score the round against, when known.
        target: Consensus accuracy to plan for: after pre-labeling, the planner picks the
            cheapest routing thresholds and redundancy expected to reach it (recorded with the
            round); None keeps ``config``'s.
        progress: Called with a line of text at every stage.

    Returns:
        What the round did (``status`` ``waiting`` when it needs answers).

    Raises:
        StoreError: No scenes, no labels to train on, or a damaged round state.
        AnnotationImportError: The answers file does not import (nothing is stored then).
    """
    from geolabel.prelabel.model import load_checkpoint
    from geolabel.prelabel.pipeline import prelabel_project, prelabels_dir

    cfg = config or LoopConfig()
    say = progress or (lambda _line: None)
    path = Path(project_path)
    seconds: dict[str, float] = {}
    notes: list[str] = []
    with Project.open(path) as project:
        round_id, resumed = _round_to_resume(project, cfg)
        state = load_round_state(project, round_id)
        cfg, distrusted = _apply_feedback(project, cfg, notes)
        n_rounds = len(project.rounds())
        taxonomy = project.current_taxonomy()
        if annotations is not None:
            result = project.import_annotations_csv(
                annotations, allowed_labels=list(taxonomy.class_ids)
            )
            say(f"answers: {result.n_added} new annotation(s) imported from {annotations}")
    if resumed:
        say(f"round {round_id}: resuming at stage {state.get('stage', 'start')}")
    classes = list(taxonomy.parcel_class_ids)

    # 1-2. Model and pre-labels.
    t0 = time.perf_counter()
    if "model_dir" not in state:
        state["model_dir"] = _train(
            path, cfg, round_no=n_rounds, train_config=train_config, say=say
        )
        state["stage"] = "prelabel"
        with Project.open(path) as project:
            save_round_state(project, round_id, state)
    seconds["train"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    _, card = load_checkpoint(state["model_dir"])
    model_version = card.model_version
    out = prelabels_dir(path, model_version)
    if not (out / "parcels.csv").is_file():
        say(f"pre-label: {model_version}")
        prelabel_project(path, state["model_dir"])
    seconds["prelabel"] = time.perf_counter() - t0
    prelabels = _prelabel_frame(out / "parcels.csv")

    with Project.open(path) as project:
        if target is not None and "plan" not in state:
            t0 = time.perf_counter()
            state["plan"] = project_plan(project, prelabels, cfg, target).summary()
            save_round_state(project, round_id, state)
            seconds["plan"] = time.perf_counter() - t0
        if "plan" in state:
            s = state["plan"]
            cfg = cfg.with_updates(
                routing={
                    "easy_confidence": s["easy_confidence"],
                    "hard_confidence": s["hard_confidence"],
                },
                redundancy={
                    "initial_votes": s["initial_votes"],
                    "max_votes": s["max_votes"],
                    "target_posterior": s["target_posterior"],
                },
            )
            say(
                f"plan for {s['target']:.0%}: verify at confidence >= {s['easy_confidence']},"
                f" expert below {s['hard_confidence']}, {s['initial_votes']}-{s['max_votes']}"
                f" votes to posterior {s['target_posterior']}; expected accuracy"
                f" {s['accuracy']:.3f} at {s['cost_per_item']:.3f}/item ({s['workforce']})"
            )
            cfg, _ = _apply_feedback(project, cfg, [])
        gold = read_gold_table(project)
        gold = gold[gold.isin(classes)]
        # 3-4. Select and route.
        t0 = time.perf_counter()
        if "routed" not in state:
            current = project.current_consensus()
            labeled = set(current["item"].astype(str))
            starter = set(project.annotations("parcel")["item"].astype(str))
            known = labeled | starter  # labeled already: consensus or the starter set
            pending = _pending_relabel(project, current)
            exclude = (known | set(gold.index.astype(str))) - pending
            pool = candidate_pool(project, prelabels, exclude=exclude)
            if pool.empty:
                notes.append("Every parcel is labeled; nothing to select.")
                state["routed"] = []
            else:
                emb = _embeddings(out)
                labeled_districts = set(
                    _districts(project).reindex(list(known)).dropna().astype(str)
                )
                known_items = sorted(known)
                # Labeled parcels (the consensus holds POIs too): they end the cold start.
                n_labeled = len(known & set(prelabels.index.astype(str)))
                weights = cfg.selection_for(n_labeled, len(classes), embeddings=emb is not None)
                if weights is COLD_START_SELECTION:
                    notes.append(
                        f"Cold start: {n_labeled} labeled item(s), fewer than"
                        f" {cfg.cold_start_per_class:g} per class; selected by density alone"
                        " (the most typical parcel of each look-alike cluster)."
                    )
                scored = score_pool(
                    pool,
                    weights,
                    n_classes=len(classes),
                    seed=cfg.seed + round_id,
                    embeddings=emb,
                    labeled_items=known_items,
                    labeled_districts=labeled_districts,
                )
                scores = pd.Series(scored["score"].to_numpy(), index=scored["item"])
                # Parcels a taxonomy change flagged for relabeling come first; the rest of
                # the batch is chosen by active learning.
                first = sorted(pending & set(scores.index))[: cfg.batch_size]
                rest = scores.drop(index=first)
                clusters = (
                    embedding_clusters(
                        emb,
                        rest.index.astype(str).tolist(),
                        cfg.batch_size - len(first),
                        seed=cfg.seed + round_id,
                    )
                    if cfg.cluster_batch and emb is not None
                    else None
                )
                batch = first + diverse_batch(
                    rest,
                    pool.set_index("item")[["x", "y"]],
                    cfg.batch_size - len(first),
                    min_distance=cfg.min_distance_m,
                    clusters=clusters,
                )
                chosen = pool.set_index("item").loc[batch].reset_index()
                # Routing reads novelty and impact whatever the selection weights are: the
                # ones selection did not score are scored here.
                aux = scored.set_index("item")
                missing = [k for k in ("novelty", "impact") if k not in aux.columns]
                if missing:
                    extra = score_pool(
                        pool,
                        dict.fromkeys(missing, 1.0),
                        n_classes=len(classes),
                        seed=cfg.seed + round_id,
                        embeddings=emb,
                        labeled_items=known_items,
                        labeled_districts=labeled_districts,
                    ).set_index("item")
                    aux = aux.join(extra[missing])
                novelty = aux["novelty"].rank(pct=True)
                impact = aux["impact"].rank(pct=True)
                edge = _edge_cases(project, round_id)
                routed = route(
                    chosen.assign(confidence=chosen["confidence"].astype(float)),
                    cfg.routing,
                    edge_cases=edge,
                    novelty=novelty,
                    impact=impact,
                )
                routed["score"] = routed["item"].map(scores).to_numpy()
                state["routed"] = routed.to_dict(orient="records")
            state["waves"] = []
            state["stage"] = "collect"
            save_round_state(project, round_id, state)
        seconds["select"] = time.perf_counter() - t0
        routed = pd.DataFrame(state["routed"], columns=["item", "tier", "reason", "score"])
        say(
            f"round {round_id}: {len(routed)} item(s) selected:"
            f" {routed['tier'].value_counts().to_dict() if len(routed) else {}}"
        )

        # 5-6. Tasks out, answers in, wave by wave.
        t0 = time.perf_counter()
        history = _history(project, state)
        crowd, experts = _people(project, world)
        crowd = [a for a in crowd if a not in distrusted] or crowd
        tasks_file: str | None = None

        def wave_after(answers: pd.DataFrame, wave_no: int) -> Wave:
            return next_wave(
                routed,
                prelabels,
                answers,
                cfg,
                classes=classes,
                crowd=crowd,
                experts=experts,
                gold=gold,
                history=history,
                wave=wave_no,
                last=wave_no >= MAX_WAVES,
            )

        while len(routed):
            answers = _answers(project, state)
            wave_no = len(state["waves"])
            if state["waves"] and _pending(state["waves"][-1], answers):
                if world is None:
                    tasks_file = str(_tasks_path(path, round_id, wave_no - 1))
                    break
                raise StoreError(  # pragma: no cover - the world answers everything
                    f"Round {round_id}: wave {wave_no - 1} has unanswered tasks."
                )
            step = wave_after(answers, wave_no)
            if step.done or wave_no >= MAX_WAVES:
                break
            tasks = step.tasks.assign(round_id=round_id)
            state["waves"].append(tasks[["item", "annotator", "tier", "purpose"]].values.tolist())
            save_round_state(project, round_id, state)
            project.add_tasks(
                tasks[["item", "annotator", "round_id"]].assign(is_gold=tasks["purpose"] == "gold")
            )
            if world is None:
                wave_file = _tasks_path(path, round_id, wave_no)
                wave_file.parent.mkdir(parents=True, exist_ok=True)
                shown = tasks[["item", "annotator", "purpose"]].copy()
                shown["prelabel"] = np.where(
                    shown["purpose"] == "verify", shown["item"].map(prelabels["label"]), ""
                )
                shown.drop(columns="purpose").to_csv(wave_file, index=False)
                tasks_file = str(wave_file)
                break
            got = world.workforce.answer(tasks[["item", "annotator"]], 100 * round_id + wave_no)
            project.add_annotations(
                got,
                source=f"simulated round {round_id} wave {wave_no}",
                allowed_labels=list(taxonomy.class_ids),
            )
        seconds["collect"] = time.perf_counter() - t0
        answers = _answers(project, state)
        counts, cost = price(answers, cfg)
        if tasks_file is not None:
            save_round_state(project, round_id, state)
            say(f"round {round_id}: waiting for answers to {tasks_file}")
            return RoundReport(
                round_id=round_id,
                status="waiting",
                model_version=model_version,
                taxonomy=taxonomy.label,
                n_selected=len(routed),
                tiers=_counts(routed["tier"]),
                final_tiers={},
                counts=counts,
                cost=cost,
                waves=len(state["waves"]),
                tasks_file=tasks_file,
                audit={},
                flagged_annotators=[],
                metrics={},
                seconds=seconds,
                notes=(
                    *notes,
                    f"Import the answers and run the round again: geolabel round {path}"
                    f" --annotations ANSWERS.csv",
                ),
            )
        # 7. Aggregate: the decisions of this round, with their votes as provenance.
        t0 = time.perf_counter()
        decisions = (
            wave_after(answers, len(state["waves"])).decisions
            if len(routed)
            else pd.DataFrame(
                columns=["item", "label", "confidence", "tier", "final_tier", "method", "n_votes"]
            )
        )
        if not state.get("aggregated"):
            _store_consensus(project, decisions, answers, round_id, model_version, cfg)
            state["aggregated"] = True
            save_round_state(project, round_id, state)
        seconds["aggregate"] = time.perf_counter() - t0

        # 8. Audit.
        t0 = time.perf_counter()
        audit = _audit(project, round_id, decisions, answers, world, cfg, state, notes)
        counts["audit"] = int(audit.get("n_audited", 0))
        cost["audit"] = counts["audit"] * cfg.prices.audit
        cost["total"] = float(sum(v for k, v in cost.items() if k != "total"))
        seconds["audit"] = time.perf_counter() - t0

        # 9. Record.
        per_item = _cost_per_item(answers, cfg)
        items = routed.merge(decisions.drop(columns=["tier"]), on="item", how="left").assign(
            cost=lambda f: f["item"].map(per_item).fillna(0.0)
        )
        add_round_items(project, round_id, items)
        flagged = _flagged(project, gold)
        if "plan" in state:
            s = state["plan"]
            notes.append(
                f"Planned for {s['target']:.0%}: expected accuracy {s['accuracy']:.3f} at"
                f" {s['cost_per_item']:.3f} per item."
            )
        metrics: dict[str, float] = {
            "model_val_miou": float(card.val_metrics.get("miou", float("nan")))
        }
        if truth is not None:
            cons = project.current_consensus()
            acc, n = score_against_truth(
                pd.Series(cons["label"].astype(str).to_numpy(), index=cons["item"].astype(str)),
                truth,
                classes,
            )
            metrics["consensus_accuracy"] = acc
            metrics["n_consensus"] = float(n)
            labeled_now = set(cons["item"].astype(str)) | set(
                project.annotations("parcel")["item"].astype(str)
            )
            unl = prelabels.loc[~prelabels.index.isin(labeled_now)]
            macc, _ = score_against_truth(unl["label"].astype(str), truth, classes)
            metrics["model_parcel_accuracy"] = macc
            allacc, _ = score_against_truth(prelabels["label"].astype(str), truth, classes)
            metrics["model_parcel_accuracy_all"] = allacc
            if len(decisions):
                d = decisions.dropna(subset=["label"])
                racc, _ = score_against_truth(
                    pd.Series(d["label"].to_numpy(), index=d["item"].astype(str)), truth, classes
                )
                metrics["round_accuracy"] = racc
        state["stage"] = "finished"
        state["summary"] = {
            "tiers": _counts(routed["tier"]) if len(routed) else {},
            "counts": counts,
            "cost": {k: float(v) for k, v in cost.items()},
            "metrics": metrics,
            "flagged": flagged,
            "taxonomy": taxonomy.label,
            "n_selected": len(routed),
        }
        save_round_state(project, round_id, state)
        project.finish_round(round_id)
    say(f"round {round_id}: finished, cost {cost['total']:.2f}")
    return RoundReport(
        round_id=round_id,
        status="finished",
        model_version=model_version,
        taxonomy=taxonomy.label,
        n_selected=len(routed),
        tiers=_counts(routed["tier"]),
        final_tiers=_counts(decisions["final_tier"]),
        counts=counts,
        cost={k: round(float(v), 4) for k, v in cost.items()},
        waves=len(state["waves"]),
        tasks_file=None,
        audit=audit,
        flagged_annotators=flagged,
        metrics=metrics,
        seconds=seconds,
        notes=tuple(notes),
    )


def project_plan(
    project: Project,
    prelabels: pd.DataFrame,
    cfg: LoopConfig,
    target: float,
    *,
    replicates: int = 3,
) -> PlanResult:
    """The cheapest routing and redundancy meeting ``target`` for the project's unlabeled items.

    Crowd and expert confusions are estimated from the project's votes
    (:func:`~geolabel.loop.planner.estimate_workforce`); the items' calibrated pre-label
    probabilities are those of ``prelabels`` (``p_<class>`` columns) for parcels without a
    consensus or annotation.
    """
    from geolabel.loop.planner import estimate_workforce, plan

    classes = list(project.current_taxonomy().parcel_class_ids)
    votes = project.annotations("parcel")
    votes = votes[votes["label"].isin(classes)]
    people = project.annotators()
    kinds = pd.Series(people["kind"].to_numpy(), index=people["annotator"].astype(str))
    gold = read_gold_table(project)
    wf = estimate_workforce(votes, classes, kinds=kinds, gold=gold[gold.isin(classes)])
    done = set(project.current_consensus()["item"].astype(str)) | set(votes["item"].astype(str))
    cols = [f"p_{c}" for c in classes]
    pool = prelabels[~prelabels.index.astype(str).isin(done)]
    if pool.empty or not all(c in pool.columns for c in cols):
        probs = np.full((1, len(classes)), 1.0 / len(classes))
    else:
        probs = np.clip(pool[cols].to_numpy(np.float64), 1e-6, None)
        probs /= probs.sum(axis=1, keepdims=True)
    return plan(probs, wf, target=target, config=cfg, replicates=replicates, seed=cfg.seed)


def _apply_feedback(
    project: Project, cfg: LoopConfig, notes: list[str]
) -> tuple[LoopConfig, set[str]]:
    """Apply the last audit's feedback: raised thresholds, and annotators no longer trusted.

    A threshold the audit raised (its stratum's errors may exceed the tolerance) is raised in
    this round's settings too; a lowered one is left to the planner (raise fast, lower slowly).
    Annotators whose audited trust is 0 (no better than chance on audited items) get no tasks.
    """
    raw = project.meta.get("loop.feedback")
    if not raw:
        return cfg, set()
    fb = json.loads(raw)
    thresholds = fb.get("thresholds", {})
    easy = float(thresholds.get("easy_confidence", cfg.routing.easy_confidence))
    post = float(thresholds.get("target_posterior", cfg.redundancy.target_posterior))
    if easy > cfg.routing.easy_confidence:
        notes.append(f"Audit feedback: easy_confidence raised to {easy:.3f}.")
        cfg = cfg.with_updates(routing={"easy_confidence": min(easy, 1.0)})
    if post > cfg.redundancy.target_posterior:
        notes.append(f"Audit feedback: target_posterior raised to {post:.3f}.")
        cfg = cfg.with_updates(redundancy={"target_posterior": min(post, 1.0)})
    distrusted = {a for a, t in fb.get("trust", {}).items() if float(t) <= 0.0}
    if distrusted:
        notes.append(f"Audit feedback: no tasks for {', '.join(sorted(distrusted))} (trust 0).")
    return cfg, distrusted


def _counts(values: pd.Series) -> dict[str, int]:
    return {str(k): int(v) for k, v in values.value_counts().items()}


def _tasks_path(project_path: Path, round_id: int, wave: int) -> Path:
    return (
        project_path.with_name(f"{project_path.stem}_rounds")
        / f"round-{round_id}"
        / f"wave-{wave}.csv"
    )


def _embeddings(out: Path) -> pd.DataFrame | None:
    from geolabel.prelabel.embeddings import load_embeddings

    path = out / "parcel_embeddings.npz"
    if not path.is_file():
        return None
    ids, emb = load_embeddings(path)
    return pd.DataFrame(emb, index=pd.Index(ids, name="item"))


def _districts(project: Project) -> pd.Series:
    parcels = project.read_layer("parcels")
    if "district" not in parcels.columns:
        return pd.Series(dtype=object)
    id_col = "parcel_id" if "parcel_id" in parcels.columns else "item"
    return pd.Series(parcels["district"].to_numpy(), index=parcels[id_col].astype(str))


def _pending_relabel(project: Project, current: pd.DataFrame) -> set[str]:
    """Parcels flagged for relabeling (``review.relabel``) whose label is still the remap's."""
    raw = project.meta.get("review.relabel")
    if not raw:
        return set()
    flagged = {str(i) for i in json.loads(raw)}
    latest = dict(zip(current["item"].astype(str), current["method"].astype(str), strict=True))
    return {i for i in flagged if latest.get(i, "taxonomy_remap") == "taxonomy_remap"}


def _edge_cases(project: Project, round_id: int) -> set[str]:
    """Items flagged for relabeling (taxonomy changes) or disputed in earlier rounds."""
    from geolabel.loop.state import round_items

    edge: set[str] = set()
    flagged = project.meta.get("review.relabel")
    if flagged:
        edge |= set(json.loads(flagged))
    earlier = round_items(project)
    if len(earlier):
        disputed = earlier[(earlier["final_tier"] == "hard") & (earlier["tier"] != "hard")]
        edge |= set(disputed["item"].astype(str))
    return edge


def _history(project: Project, state: dict[str, Any]) -> pd.DataFrame:
    """Every stored vote not asked in this round (for annotator estimates)."""
    ann = project.annotations()
    mine = {(i, a) for wave in state.get("waves", []) for i, a, *_ in wave}
    if not mine:
        return ann[["item", "annotator", "label"]]
    keys = list(zip(ann["item"].astype(str), ann["annotator"].astype(str), strict=True))
    return ann.loc[[k not in mine for k in keys], ["item", "annotator", "label"]]


def _answers(project: Project, state: dict[str, Any]) -> pd.DataFrame:
    """Stored answers to this round's tasks, with the tier and purpose of each task."""
    rows = [
        (str(i), str(a), str(t), str(p)) for wave in state.get("waves", []) for i, a, t, p in wave
    ]
    cols = ["item", "annotator", "label", "created_at", "seconds", "tier", "purpose"]
    if not rows:
        return pd.DataFrame(columns=cols)
    tasks = pd.DataFrame(rows, columns=["item", "annotator", "tier", "purpose"])
    ann = project.annotations()[
        ["annotation_id", "item", "annotator", "label", "created_at", "seconds"]
    ]
    ann = ann.astype({"item": str, "annotator": str}).drop_duplicates(
        ["item", "annotator"], keep="last"
    )
    return tasks.merge(ann, on=["item", "annotator"], how="inner")


def _pending(wave: list[list[str]], answers: pd.DataFrame) -> bool:
    have = set(zip(answers["item"].astype(str), answers["annotator"].astype(str), strict=True))
    return any((str(i), str(a)) not in have for i, a, *_ in wave)


def _people(project: Project, world: World | None) -> tuple[list[str], list[str]]:
    if world is not None:
        return list(world.workforce.crowd), list(world.workforce.experts)
    people = project.annotators()
    if people.empty:
        raise StoreError(
            f"{project.path} has no annotators to send tasks to. Import earlier annotations"
            " (`geolabel import`) so the crowd and the experts are known, or run with --simulate."
        )
    experts = people.loc[people["kind"] == "expert", "annotator"].astype(str).tolist()
    crowd = (
        people.loc[~people["kind"].isin(["expert", "auditor"]), "annotator"].astype(str).tolist()
    )
    return crowd, experts


def _cost_per_item(answers: pd.DataFrame, cfg: LoopConfig) -> pd.Series:
    """What each routed item cost: its own work plus its share of the gold questions.

    Gold questions are about other items but bought for these: each item carries a share in
    proportion to its crowd answers, so the items' costs add up to the round's crowd cost.
    """
    p = cfg.prices
    unit = answers["purpose"].map(
        {"verify": p.verify, "vote": p.crowd_vote, "gold": 0.0, "expert": p.expert}
    )
    own = unit.groupby(answers["item"].astype(str)).sum()
    crowd = answers[answers["purpose"].isin(["verify", "vote"])]
    n_gold = int((answers["purpose"] == "gold").sum())
    if n_gold and len(crowd):
        share = crowd.groupby(crowd["item"].astype(str)).size() / len(crowd)
        own = own.add(share * n_gold * p.crowd_vote, fill_value=0.0)
    gold_items = set(answers.loc[answers["purpose"] == "gold", "item"].astype(str))
    mine = set(answers.loc[answers["purpose"] != "gold", "item"].astype(str))
    return own.drop(index=list(gold_items - mine), errors="ignore")


def _store_consensus(
    project: Project,
    decisions: pd.DataFrame,
    answers: pd.DataFrame,
    round_id: int,
    model_version: str,
    cfg: LoopConfig,
) -> None:
    """Append the round's decisions as consensus rows with their votes as provenance."""
    votes_of: dict[str, list[tuple[str, str]]] = {}
    for item, ann_id, purpose in zip(
        answers["item"].astype(str),
        answers["annotation_id"].astype(str),
        answers["purpose"].astype(str),
        strict=True,
    ):
        votes_of.setdefault(item, []).append((ann_id, purpose))
    done = decisions.dropna(subset=["label"])
    methods = {
        "prelabel_verified": ("prelabel_verified", model_version),
        "crowd": (METHODS.get(cfg.aggregation, cfg.aggregation), model_version),
        "expert": ("expert_decision", None),
    }
    with project.transaction():
        for method, group in done.groupby("method"):
            name, mv = methods.get(str(method), (str(method), None))
            # Provenance: the votes the decision rests on (an expert decision rests on the
            # expert's answer alone; gold answers are about other items).
            votes = [
                [
                    a
                    for a, purpose in votes_of.get(str(i), [])
                    if (purpose == "expert") == (method == "expert") and purpose != "gold"
                ]
                for i in group["item"]
            ]
            rows = group.copy()
            rows["votes"] = pd.Series(votes, index=group.index, dtype=object)
            project.add_consensus(
                rows[["item", "label", "confidence", "votes"]].assign(
                    confidence=rows["confidence"].clip(0, 1)
                ),
                method=name,
                round_id=round_id,
                model_version=mv,
            )


def _flagged(project: Project, gold: pd.Series) -> list[str]:
    """Crowd annotators whose estimated accuracy (Dawid–Skene, gold clamped) is below 0.5."""
    from geolabel.crowd.dawid_skene import DawidSkene

    ann = project.annotations("parcel")
    if ann.empty or ann["annotator"].nunique() < 2:
        return []
    taxonomy = project.current_taxonomy()
    ann = ann[ann["label"].isin(taxonomy.class_ids)]
    ds = DawidSkene(classes=list(taxonomy.class_ids), n_iter=50).fit(
        ann[["item", "annotator", "label"]],
        gold[gold.index.isin(ann["item"])] if len(gold) else None,
    )
    counts = ann["annotator"].value_counts()
    skill = ds.skills_
    return sorted(str(a) for a, s in skill.items() if s < 0.5 and counts.get(a, 0) >= 10)


def _audit(
    project: Project,
    round_id: int,
    decisions: pd.DataFrame,
    answers: pd.DataFrame,
    world: World | None,
    cfg: LoopConfig,
    state: dict[str, Any],
    notes: list[str],
) -> dict[str, Any]:
    """Plan, draw and (with a simulated world) run the round's sample-based audit.

    Strata (:func:`geolabel.loop.audit.audit_strata`): decisions resting on a new annotator's
    early votes, parcels of a district never labeled before, uncertain decisions (confidence
    below 0.8) and verified pre-labels. Each stratum gets a sample sized for a ±10% margin at
    95% (expected error 10%), within a budget of a tenth of the round's items (at least 5). An
    expert who did not decide the item re-labels it. The feedback (trust per annotator,
    threshold moves) is stored in ``meta`` as ``loop.feedback`` for the next round.
    """
    from geolabel.loop import audit as audit_mod

    if "audit" in state:
        return dict(state["audit"])
    decided = decisions.dropna(subset=["label"]).copy()
    if decided.empty:
        return {}
    voters = answers.groupby("item")["annotator"].apply(list) if len(answers) else pd.Series()
    decided["annotators"] = (
        decided["item"].map(voters).apply(lambda v: v if isinstance(v, list) else [])
    )
    decided["tier"] = np.where(decided["method"] == "prelabel_verified", "easy", decided["tier"])
    districts = _districts(project)
    decided["district"] = decided["item"].map(districts)
    earlier = set(project.current_consensus()["item"].astype(str)) - set(decided["item"])
    earlier |= set(project.annotations("parcel")["item"].astype(str)) - set(decided["item"])
    known = set(districts.reindex(sorted(earlier)).dropna().astype(str))
    votes = project.annotations("parcel")[["item", "annotator", "created_at"]]
    members = audit_mod.audit_strata(
        decided,
        votes=votes,
        known_districts=known,
        uncertain_below=0.8,
    )
    if members.empty:
        state["audit"] = {"n_audited": 0}
        return dict(state["audit"])
    sizes = {str(k): int(v) for k, v in members["stratum"].value_counts().items()}
    budget = max(5, len(decided) // 10, len(sizes))
    plan = audit_mod.plan_audit(
        sizes, margin=0.1, expected_error=0.1, min_per_stratum=1, budget=budget
    )
    sample = audit_mod.draw_audit_sample(plan, members, seed=cfg.seed + round_id)
    sample = sample.merge(decided[["item", "label", "annotators"]], on="item", how="left")
    if world is None:
        target = _tasks_path(project.path, round_id, 0).with_name("audit-sample.csv")
        target.parent.mkdir(parents=True, exist_ok=True)
        sample[["item", "stratum", "label"]].to_csv(target, index=False)
        notes.append(
            f"Audit sample of {len(sample)} item(s) written to {target}; have an expert check"
            " them and record the results with geolabel.loop.audit.record_audit."
        )
        state["audit"] = {"n_audited": 0, "planned": len(sample), "sample_file": str(target)}
        return dict(state["audit"])
    experts = list(world.workforce.experts)
    tasks: list[tuple[str, str]] = []
    for n, (item, who) in enumerate(zip(sample["item"], sample["annotators"], strict=True)):
        asked: list[str] = list(who) if isinstance(who, list) else []
        free = [e for e in experts if e not in asked] or experts
        tasks.append((str(item), free[n % len(free)]))
    got = world.workforce.answer(pd.DataFrame(tasks, columns=["item", "annotator"]), 99)
    results = sample[["item", "stratum", "label"]].assign(
        audited_label=got["label"].to_numpy(),
        auditor=got["annotator"].to_numpy(),
    )
    results["correct"] = results["label"] == results["audited_label"]
    audit_mod.record_audit(project, results, round_id=round_id, strata=plan.strata)
    report = audit_mod.audit_report(results)
    feedback = audit_mod.audit_feedback(
        report,
        tolerance=0.05,
        thresholds={
            "easy_confidence": cfg.routing.easy_confidence,
            "target_posterior": cfg.redundancy.target_posterior,
        },
        results=results,
        votes=answers[["item", "annotator", "label"]],
    )
    project.set_meta("loop.feedback", json.dumps(feedback.as_dict(), default=float))
    summary = {
        "n_audited": len(results),
        "errors": int((~results["correct"]).sum()),
        "strata": {
            str(stratum): {"n": int(n), "errors": int(e), "high": round(float(h), 3)}
            for stratum, n, e, h in zip(
                report["stratum"], report["n"], report["errors"], report["high"], strict=True
            )
        },
        "threshold_changes": [
            f"{c.name}: {c.old:.3f} -> {c.new:.3f} ({c.reason})"
            for c in feedback.changes
            if c.new != c.old
        ],
    }
    state["audit"] = summary
    return summary
