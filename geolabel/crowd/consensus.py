"""Aggregate a project's annotations into consensus with provenance, and report on annotators.

The bridge between the estimators and the project store, used by ``geolabel aggregate`` and
``geolabel annotators``: read annotations, the current taxonomy, optional gold answers, label
map and model pre-labels, fit, and (for :func:`aggregate_project`) append one consensus row
per item with its votes (annotation ids), method and taxonomy version.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, get_args

import numpy as np
import pandas as pd
import yaml

from geolabel.crowd.base import BaseAggregator, EMAggregator
from geolabel.crowd.dawid_skene import DawidSkene
from geolabel.crowd.glad import GLAD
from geolabel.crowd.majority_vote import MajorityVote
from geolabel.crowd.one_coin import OneCoinDawidSkene
from geolabel.crowd.reliability import ReliabilityReport, reliability_report
from geolabel.crowd.stream import DEFAULT_CHUNKSIZE, read_encoded_annotations, vote_ids
from geolabel.crowd.wmv import WeightedMajorityVote
from geolabel.errors import (
    AggregationError,
    AggregationWarning,
    ColumnError,
    InputFileError,
    LayerError,
)

if TYPE_CHECKING:
    from geolabel.store import Project

__all__ = [
    "METHODS",
    "ConsensusResult",
    "Method",
    "aggregate_project",
    "make_aggregator",
    "project_reliability",
    "read_gold",
    "read_label_map",
]

Method = Literal["ds", "mv", "wmv", "glad", "onecoin"]
METHODS: dict[str, str] = {
    "ds": "dawid_skene",
    "mv": "majority_vote",
    "wmv": "weighted_majority_vote",
    "glad": "glad",
    "onecoin": "one_coin_dawid_skene",
}
"""Short method names (CLI) -> the method name stored with each consensus row."""


@dataclass(frozen=True, slots=True)
class ConsensusResult:
    """What :func:`aggregate_project` decided and stored.

    Attributes:
        method: Stored method name (``"dawid_skene"``...).
        n_items: Items that got a consensus row.
        n_votes: Votes used.
        n_annotators: Annotators who voted.
        n_gold: Gold items clamped to their known answer.
        n_duplicates: Duplicate votes dropped (the latest vote of a pair was kept).
        n_mapped: Votes whose label was mapped through the label map.
        taxonomy: ``name v<version>`` of the labels.
        model_version: Model whose pre-labels served as item priors, if any.
        round_id: Round the consensus belongs to, if any.
        n_iter: EM rounds run (0 for vote counting).
        converged: Whether EM stopped on its tolerance (True for vote counting).
        mean_confidence: Mean probability of the decided label.
        labels: Items per decided label.
        written: Whether rows were appended (False for a dry run).
    """

    method: str
    n_items: int
    n_votes: int
    n_annotators: int
    n_gold: int
    n_duplicates: int
    n_mapped: int
    taxonomy: str
    model_version: str | None
    round_id: int | None
    n_iter: int
    converged: bool
    mean_confidence: float
    labels: dict[str, int]
    written: bool


def make_aggregator(
    method: str,
    classes: list[str],
    *,
    label_map: Mapping[Hashable, Hashable] | None = None,
) -> BaseAggregator:
    """Return a fresh estimator for a short method name.

    Args:
        method: One of :data:`METHODS` (``ds``, ``mv``, ``wmv``, ``glad``, ``onecoin``).
        classes: The taxonomy's classes.
        label_map: Old label -> class for labels outside the taxonomy; ``None`` refuses them.

    Returns:
        The unfitted estimator.

    Raises:
        AggregationError: Unknown method (the message lists the known ones).
    """
    on_unknown: Literal["reject", "map"] = "map" if label_map is not None else "reject"
    kwargs = {"classes": classes, "on_unknown": on_unknown, "label_map": label_map}
    factories: dict[str, type[BaseAggregator]] = {
        "ds": DawidSkene,
        "mv": MajorityVote,
        "wmv": WeightedMajorityVote,
        "glad": GLAD,
        "onecoin": OneCoinDawidSkene,
    }
    if method not in factories:
        raise AggregationError(
            f"Unknown aggregation method {method!r}; choose one of {', '.join(get_args(Method))}."
        )
    return factories[method](**kwargs)


def read_gold(path: str | os.PathLike[str]) -> pd.Series:
    """Read gold answers from a CSV with columns ``item`` and ``label``.

    Args:
        path: The CSV (like ``data/sample/labels/gold.csv``).

    Returns:
        Label indexed by item.

    Raises:
        InputFileError: The file is missing or unreadable.
        ColumnError: A column is missing or an item is given twice.
    """
    csv = Path(path)
    try:
        frame = pd.read_csv(csv, dtype=str, keep_default_na=False)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise InputFileError(f"Cannot read gold file {csv}: {exc}.") from exc
    missing = [c for c in ("item", "label") if c not in frame.columns]
    if missing:
        raise ColumnError(
            f"Gold file {csv} lacks the column(s) {', '.join(map(repr, missing))}; columns "
            f"present: {', '.join(frame.columns)}. It needs item,label (one row per gold item)."
        )
    repeated = frame["item"][frame["item"].duplicated()].unique().tolist()
    if repeated:
        raise ColumnError(f"Gold file {csv} gives item(s) {repeated[:5]} more than once.")
    return pd.Series(frame["label"].to_numpy(), index=pd.Index(frame["item"], name="item"))


def read_label_map(path: str | os.PathLike[str]) -> dict[Hashable, Hashable]:
    """Read a label map (old label -> taxonomy class) from YAML or CSV.

    Args:
        path: A ``.yaml``/``.yml`` mapping ``old: new``, or a ``.csv`` with columns ``from``
            and ``to``.

    Returns:
        The mapping.

    Raises:
        InputFileError: The file is missing, unreadable or of another kind.
        ColumnError: The CSV lacks its columns or the YAML is not a mapping of labels.
    """
    file = Path(path)
    if not file.is_file():
        raise InputFileError(f"Label map {file} does not exist.")
    suffix = file.suffix.lower()
    if suffix in (".yaml", ".yml"):
        try:
            data = yaml.safe_load(file.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise InputFileError(f"Cannot read label map {file}: {exc}.") from exc
        if not isinstance(data, dict) or not all(
            isinstance(k, str | int) and isinstance(v, str | int) for k, v in data.items()
        ):
            raise ColumnError(
                f"Label map {file} must be a YAML mapping of old label: taxonomy class, e.g. "
                "'shop: commercial'."
            )
        return {str(k): str(v) for k, v in data.items()}
    if suffix == ".csv":
        frame = pd.read_csv(file, dtype=str, keep_default_na=False)
        missing = [c for c in ("from", "to") if c not in frame.columns]
        if missing:
            raise ColumnError(
                f"Label map {file} lacks the column(s) {', '.join(map(repr, missing))}; "
                f"columns present: {', '.join(frame.columns)}. Use from,to."
            )
        return {str(k): str(v) for k, v in zip(frame["from"], frame["to"], strict=True)}
    raise InputFileError(f"Label map {file} must be .yaml, .yml or .csv, not {suffix or 'none'}.")


def _item_prior(project: Project, model_version: str, classes: list[str]) -> pd.DataFrame:
    """Return stored pre-label probabilities of ``model_version`` as an item x class frame."""
    predictions = project.predictions(model_version)
    if predictions.empty:
        stored = sorted(set(project.predictions()["model_version"]))
        raise AggregationError(
            f"No predictions of model version {model_version!r} in {project.path} (stored: "
            f"{', '.join(stored) if stored else 'none'}); store pre-labels first, or drop "
            "--model-version."
        )
    rows = []
    for probas, label in zip(predictions["probas"], predictions["label"], strict=True):
        rows.append(dict(probas) if probas else {label: 1.0})
    frame = pd.DataFrame(rows, index=pd.Index(predictions["item"], name="item")).fillna(0.0)
    return frame.reindex(columns=[c for c in frame.columns if c in classes])


def _appen_trust_weights(project: Project, name: str, n_classes: int) -> pd.Series:
    """WMV weights from the stored Appen trust scores (``name`` must be ``appen-trust``)."""
    from geolabel.interop.appen import trust_weights

    if name != "appen-trust":
        raise AggregationError(
            f"Unknown annotator weights {name!r}: give annotator -> weight, or 'appen-trust'."
        )
    weights = trust_weights(project, n_classes)
    if weights.empty:
        raise AggregationError(
            f"No Appen trust scores are stored in {project.path}: import an Appen full report"
            " first (geolabel import PROJECT REPORT.csv --format appen), or weigh by the gold"
            " answers (--weights gold, the default)."
        )
    return weights


def aggregate_project(
    project: Project,
    *,
    method: str = "ds",
    gold: pd.Series | None = None,
    label_map: Mapping[Hashable, Hashable] | None = None,
    model_version: str | None = None,
    kind: str = "parcel",
    round_id: int | None = None,
    write: bool = True,
    chunksize: int = DEFAULT_CHUNKSIZE,
    weights: Mapping[Hashable, float] | pd.Series | Literal["appen-trust"] | None = None,
    default_weight: float | None = None,
) -> ConsensusResult:
    """Aggregate a project's annotations and append the consensus with its provenance.

    Every consensus row carries the annotation ids it was aggregated from (``votes``), the
    method, the taxonomy name and version, and the model version whose pre-labels served as
    item priors (if any), so the store's provenance rule is met by the votes alone.

    Args:
        project: An open project.
        method: ``ds``, ``mv``, ``wmv``, ``glad`` or ``onecoin``.
        gold: Known answers (item -> label), clamped (and the source of ``wmv`` weights).
        label_map: Old label -> class for labels outside the taxonomy; ``None`` refuses them.
        model_version: Use this model's stored pre-labels as item priors (``ds``, ``onecoin``,
            ``glad`` only).
        kind: Item kind whose annotations to aggregate (``parcel``, ``poi``...).
        round_id: Round to record with the consensus.
        write: Append the rows (False: compute and report only).
        chunksize: Annotations read per chunk: the votes are streamed from the store into
            integer codes (:mod:`geolabel.crowd.stream`), never held as one frame.
        weights: ``wmv`` only: annotator -> weight, instead of weights from the gold; or
            ``"appen-trust"``: the trust scores of an imported Appen full report, as weights
            for the kind's classes (:func:`geolabel.interop.appen.trust_weights`).
        default_weight: ``wmv`` with ``weights``: the weight of annotators without one
            (``None`` refuses them, naming them).

    Returns:
        What was decided (and stored).

    Raises:
        AggregationError: Unknown method, a model prior with a vote-counting method, weights
            for another method than ``wmv``, no Appen trust scores stored (``"appen-trust"``),
            no predictions for ``model_version``, empty input, a single annotator, or
            (``wmv``) annotators without a weight.
        LabelError: Labels outside the taxonomy (listed), unless mapped.
        StoreError: The store refused the rows (unknown round...).
    """
    from geolabel.interop.tasks import kind_taxonomy

    # The kind's own taxonomy: land use for parcels and tiles, the stored POI or notice one.
    taxonomy, allowed = kind_taxonomy(project, kind)
    classes = list(allowed)
    model = make_aggregator(method, classes, label_map=label_map)
    if weights is not None or default_weight is not None:
        if not isinstance(model, WeightedMajorityVote):
            raise AggregationError(
                f"Annotator weights are for the weighted majority vote (wmv), not {method!r}."
            )
        if isinstance(weights, str):
            weights = _appen_trust_weights(project, weights, len(classes))
        model.weights, model.default_weight = weights, default_weight
    prior = None
    if model_version is not None:
        if not isinstance(model, EMAggregator):
            raise AggregationError(
                f"--model-version needs a model that takes priors (ds, onecoin, glad), not "
                f"{method!r}."
            )
        prior = _item_prior(project, model_version, classes)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", AggregationWarning)
        streamed = read_encoded_annotations(
            project,
            kind=kind,
            classes=classes,
            on_unknown="map" if label_map is not None else "reject",
            label_map=label_map,
            chunksize=chunksize,
        )
        encoded = streamed.encoded
        if isinstance(model, EMAggregator):
            model.fit(encoded, gold, prior)
        elif isinstance(model, MajorityVote | WeightedMajorityVote):
            model.fit(encoded, gold)
    for warning in caught:  # pass them on to the caller
        warnings.warn(warning.message, AggregationWarning, stacklevel=2)
    probas = model.probas_
    labels = model.labels_
    votes = pd.Series(vote_ids(project, streamed, kind=kind, chunksize=chunksize), dtype=object)
    frame = pd.DataFrame(
        {
            "item": labels.index.astype(str),
            "label": labels.astype(str).to_numpy(),
            "confidence": np.clip(probas.to_numpy().max(axis=1), 0.0, 1.0),
            "votes": votes.to_numpy(),
        }
    )
    n_gold = 0
    if gold is not None:
        n_gold = int(pd.Index(gold.index.astype(str)).isin(frame["item"]).sum())
    if write:
        project.add_consensus(
            frame,
            method=METHODS[method],
            taxonomy_version=taxonomy.version,
            taxonomy_name=taxonomy.name,
            round_id=round_id,
            model_version=model_version,
            allowed_labels=classes,
        )
    em = isinstance(model, EMAggregator)
    counts = frame["label"].value_counts()
    return ConsensusResult(
        method=METHODS[method],
        n_items=len(frame),
        n_votes=len(encoded),
        n_annotators=encoded.n_annotators,
        n_gold=n_gold,
        n_duplicates=int(model.n_duplicates_),
        n_mapped=encoded.n_mapped,
        taxonomy=f"{taxonomy.name} v{taxonomy.version}",
        model_version=model_version,
        round_id=round_id,
        n_iter=int(model.n_iter_) if em else 0,
        converged=bool(model.converged_) if em else True,
        mean_confidence=float(frame["confidence"].mean()),
        labels={str(k): int(v) for k, v in counts.items()},
        written=write,
    )


def _district_groups(project: Project) -> pd.Series | None:
    """Return item -> district from the parcels layer, when it has a ``district`` column."""
    try:
        parcels = project.read_layer("parcels")
    except LayerError:
        return None
    if "district" not in parcels.columns or "parcel_id" not in parcels.columns:
        return None
    items = project.items("parcel")
    district = pd.Series(parcels["district"].to_numpy(), index=parcels["parcel_id"].astype(str))
    return pd.Series(
        district.reindex(items["ref"].astype(str)).to_numpy(), index=items["item"].to_numpy()
    )


def project_reliability(
    project: Project,
    *,
    gold: pd.Series | None = None,
    label_map: Mapping[Hashable, Hashable] | None = None,
    kind: str = "parcel",
    n_permutations: int = 999,
) -> ReliabilityReport:
    """Build the annotator reliability, agreement (per district) and drift report.

    Args:
        project: An open project.
        gold: Known answers (item -> label).
        label_map: Old label -> class for labels outside the taxonomy.
        kind: Item kind whose annotations to use.
        n_permutations: Reorderings per drift test.

    Returns:
        The report (agreement per district when the parcels layer has a ``district`` column).

    Raises:
        AggregationError: Empty input or a single annotator.
        LabelError: Labels outside the taxonomy, unless mapped.
    """
    taxonomy = project.current_taxonomy()
    classes = list(taxonomy.parcel_class_ids if kind == "parcel" else taxonomy.class_ids)
    model = DawidSkene(
        classes=classes,
        on_unknown="map" if label_map is not None else "reject",
        label_map=label_map,
    )
    annotations = project.annotations(kind=kind)
    groups = _district_groups(project) if kind == "parcel" else None
    return reliability_report(
        annotations,
        gold=gold,
        classes=classes,
        groups=groups,
        model=model,
        n_permutations=n_permutations,
    )
