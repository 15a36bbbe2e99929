"""`geolabel notices`: train the notice pipeline, extract entities and parcel links, evaluate."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from geolabel.cli.options import JsonOption, console, handle_errors, print_json

__all__ = ["app"]

app = typer.Typer(
    help="Municipal notices: extract addresses, parcel ids, dates, projects, agencies and zoning.",
    no_args_is_help=True,
)

ModelOption = Annotated[
    Path | None,
    typer.Option(
        "--model", help="Pipeline folder from `notices train` (default: the shipped one)."
    ),
]
MaxCharsOption = Annotated[
    int,
    typer.Option("--max-chars", min=1, max=1_000_000, help="Longest notice accepted (characters)."),
]


@app.command("train")
@handle_errors
def train(
    data: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Annotated notices: JSONL ({text, entities}), Prodigy JSONL or Label Studio JSON."
        ),
    ] = None,
    output: Annotated[Path, typer.Option("-o", "--output", help="Folder for the pipeline.")] = Path(
        "notice-model"
    ),
    fmt: Annotated[
        str, typer.Option("--format", help="auto, jsonl, prodigy or label-studio.")
    ] = "auto",
    dev: Annotated[
        Path | None, typer.Option("--dev", help="Annotated notices scored while training.")
    ] = None,
    sample: Annotated[
        Path | None,
        typer.Option("--sample", help="Train on a sample folder's notices (fixed 80/20 split)."),
    ] = None,
    max_steps: Annotated[int, typer.Option("--max-steps", min=1, help="Optimizer steps.")] = 800,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    json_out: JsonOption = False,
) -> None:
    """Train the notice NER (spaCy, CPU) with the rules, and save the pipeline."""
    from geolabel.errors import InputFileError
    from geolabel.text.data import read_annotated, read_sample_annotations
    from geolabel.text.train import split_heldout, train_pipeline

    notices = []
    dev_notices = None
    if sample is not None:
        train_part, dev_notices = split_heldout(list(read_sample_annotations(sample).notices))
        notices.extend(train_part)
    for path in data or []:
        notices.extend(read_annotated(path, fmt).notices)  # type: ignore[arg-type]
    if not notices:
        raise InputFileError("nothing to train on: give annotated files or --sample FOLDER.")
    if dev is not None:
        dev_notices = list(read_annotated(dev, fmt).notices)  # type: ignore[arg-type]
    _, result = train_pipeline(notices, dev_notices, output=output, max_steps=max_steps, seed=seed)
    if json_out:
        print_json(result)
        return
    f1 = result.dev_scores.get("ents_f") or 0.0
    console.print(
        f"Trained on {result.n_train} notices ({result.max_steps} steps); dev F1 {f1:.3f} on "
        f"{result.n_dev} notices; labels {', '.join(result.labels)}; saved to {output}."
    )
    if result.snapped:
        console.print(f"{len(result.snapped)} span(s) were widened to token boundaries.")


@app.command("extract")
@handle_errors
def extract(
    files: Annotated[
        list[Path] | None,
        typer.Argument(help="Notice files: .txt (one notice), .csv or .jsonl."),
    ] = None,
    output: Annotated[
        Path, typer.Option("-o", "--output", help="Output: .jsonl, or .geojson for a map layer.")
    ] = Path("notices.out.jsonl"),
    model: ModelOption = None,
    parcels: Annotated[
        Path | None, typer.Option("--parcels", help="Parcels to link to (GeoPackage, GeoJSON...).")
    ] = None,
    parcels_layer: Annotated[
        str, typer.Option("--parcels-layer", help="Parcels layer name.")
    ] = "parcels",
    project: Annotated[
        Path | None,
        typer.Option(
            "--project",
            help="Project: link to its parcels and store the links (and, without FILES, "
            "read its notices).",
        ),
    ] = None,
    text_column: Annotated[
        str, typer.Option("--text-column", help="Text field of CSV/JSONL input.")
    ] = "text",
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="nlp.pipe batch.")] = 64,
    max_chars: MaxCharsOption = 100_000,
    json_out: JsonOption = False,
) -> None:
    """Extract entities from notices, link them to parcels, write JSONL or GeoJSON."""
    import tempfile

    from geolabel.errors import InputFileError
    from geolabel.text.extract import extract_files, links_frame
    from geolabel.text.linking import Gazetteer
    from geolabel.text.pipeline import load_pipeline, model_version, shipped_pipeline

    nlp = shipped_pipeline() if model is None else load_pipeline(model)
    gazetteer = None
    if parcels is not None:
        gazetteer = Gazetteer.from_file(parcels, parcels_layer)
    inputs = list(files or [])
    stored = 0
    with tempfile.TemporaryDirectory(prefix="geolabel-notices-") as tmp:
        if project is not None:
            from geolabel.store import Project

            with Project.open(project) as proj:
                if gazetteer is None:
                    gazetteer = Gazetteer.from_project(proj)
                if not inputs:
                    frame = proj.notices()
                    if frame.empty:
                        raise InputFileError(
                            f"project {project} holds no notices; give notice files to extract."
                        )
                    stored_notices = Path(tmp) / f"{project.stem}-notices.jsonl"
                    frame.to_json(stored_notices, orient="records", lines=True, force_ascii=False)
                    inputs = [stored_notices]
        if not inputs:
            raise InputFileError("no notice files given; pass files, or --project with notices.")
        summary, results = extract_files(
            inputs,
            output,
            nlp=nlp,
            gazetteer=gazetteer,
            text_column=text_column,
            batch_size=batch_size,
            max_chars=max_chars,
        )
    if project is not None:
        from geolabel.store import Project

        with Project.open(project) as proj:
            stored = proj.add_notice_links(links_frame(results), model_version=model_version(nlp))
    if json_out:
        from dataclasses import replace

        print_json(replace(summary, n_stored=stored))
        return
    console.print(
        f"{summary.n_notices} notice(s): {summary.n_entities} entities, {summary.n_links} "
        f"parcel link(s) to {summary.n_parcels} parcel(s), {summary.n_unlinked} unlinked "
        f"address/parcel span(s); wrote {summary.fmt.upper()} to {output}."
    )
    if project is not None:
        console.print(f"Stored {stored} new link(s) in {project}.")
    if gazetteer is None:
        console.print("No --parcels or --project given: nothing was linked.")


@app.command("evaluate")
@handle_errors
def evaluate(
    gold: Annotated[Path, typer.Argument(help="Annotated notices (JSONL, Prodigy, Label Studio).")],
    model: ModelOption = None,
    fmt: Annotated[str, typer.Option("--format", help="auto, jsonl, prodigy, label-studio.")] = (
        "auto"
    ),
    json_out: JsonOption = False,
) -> None:
    """Score a pipeline on annotated notices: precision, recall and F1 per label."""
    from geolabel.text.data import read_annotated
    from geolabel.text.evaluate import evaluate_pipeline
    from geolabel.text.pipeline import load_pipeline

    notices = list(read_annotated(gold, fmt).notices)  # type: ignore[arg-type]
    result = evaluate_pipeline(load_pipeline(model), notices)
    if json_out:
        print_json(result.as_dict())
        return
    console.print(f"{result.n_notices} notices")
    console.print(f"{'label':<10} {'P':>6} {'R':>6} {'F1':>6} {'tp':>5} {'fp':>5} {'fn':>5}")
    for s in (*result.per_label, result.micro):
        console.print(
            f"{s.label:<10} {s.precision:6.3f} {s.recall:6.3f} {s.f1:6.3f} {s.tp:5d} {s.fp:5d} "
            f"{s.fn:5d}"
        )
