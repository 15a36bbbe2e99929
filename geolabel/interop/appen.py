"""Appen (Figure Eight): units out as an upload CSV with gold, full and aggregated reports in.

Out (:func:`export_appen`): ``<kind>_units.csv``, one unit per row: ``geolabel_item``,
``image_url`` (the chip), ``name`` (POIs), geolabel's other ids (``geolabel_*``, lists as
JSON), and the test-question columns Appen's upload reads: ``_golden`` (``TRUE`` on gold
rows), ``<answer>_gold`` (the known class) and ``<answer>_gold_reason`` (shown to a worker
who misses it).

In (:func:`read_appen`), either report of a job, told apart by their columns:

* the **full report** (one judgment per row: ``_unit_id``, ``_id``, ``_worker_id``,
  ``_trust``, ``_golden``, ``_tainted``, ``_started_at``, ``_created_at``, the answer column
  and the unit's own columns, ``geolabel_item`` among them): each judgment is a vote of
  ``appen:<_worker_id>`` at ``_created_at`` taking ``_created_at - _started_at`` seconds;
  tainted judgments (their worker was flagged and their work discarded) are left out and
  counted, as are repeated judgments (same ``_id``) and blank answers; a golden unit's
  ``<answer>_gold`` is stored as gold; each worker's ``_trust`` is merged into the
  annotator's attrs as ``appen_trust``, a prior :func:`trust_weights` turns into
  :class:`~geolabel.crowd.wmv.WeightedMajorityVote` weights;
* the **aggregated report** (one unit per row: the answer and ``<answer>:confidence``): Appen's
  own consolidated answer, stored as a reference apart from the votes
  (:func:`~geolabel.interop.importer.reference_labels`), plus gold of golden units.

Appen writes times as ``m/d/Y H:M:S`` in UTC; ISO-8601 is read too.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd

from geolabel.errors import AnnotationImportError, StoreError
from geolabel.interop._common import chip_url, iso_time, read_bytes, sha256_bytes
from geolabel.interop.importer import annotator_attrs
from geolabel.interop.records import (
    ExportResult,
    GoldRecord,
    ItemKind,
    LabelRecord,
    ParsedImport,
    ReferenceRecord,
)
from geolabel.store import Project

__all__ = ["TRUST_KEY", "export_appen", "read_appen", "trust_weights"]

SOURCE: Final = "appen"
TRUST_KEY: Final = "appen_trust"
"""Key of a worker's Appen trust score in the annotator's attrs."""
DEFAULT_ANSWER: Final = "label"
_ITEM: Final = "geolabel_item"
_TRUE: Final = ("true", "1", "yes", "t")


def export_appen(
    project: Project,
    out_dir: str | os.PathLike[str],
    kind: ItemKind = "parcel",
    *,
    url_prefix: str,
    gold: Mapping[str, str] | None = None,
    items: Sequence[str] | None = None,
    answer: str = DEFAULT_ANSWER,
    taxonomy_file: str | os.PathLike[str] | None = None,
) -> ExportResult:
    """Write ``<kind>_units.csv`` and the chips for an Appen job.

    Args:
        project: The project.
        out_dir: Output folder (chips in ``out_dir/chips``).
        kind: ``parcel`` or ``poi``.
        url_prefix: Base URL the chips will be served from.
        gold: Known answers; those units become test questions.
        items: Only these items.
        answer: Name of the job's answer field (the CML ``name``).
        taxonomy_file: POI taxonomy YAML, stored on first use.

    Returns:
        What was written.

    Raises:
        StoreError: A kind other than parcel/POI, a bad answer name, or a gold label outside
            the taxonomy.
    """
    from geolabel.interop.tasks import build_tasks, checked_gold, kind_taxonomy

    if kind not in ("parcel", "poi"):
        raise StoreError(
            f"Appen export covers classification of parcels and POIs, not {kind}s; use "
            "--format labelstudio or labelbox for tiles and notices."
        )
    if not answer.isidentifier() or answer.startswith("_"):
        raise StoreError(
            f"Appen answer field {answer!r} must be a plain name (letters, digits, _), not "
            "starting with '_' (Appen reserves those)."
        )
    taxonomy, allowed = kind_taxonomy(project, kind, taxonomy_file)
    gold = checked_gold(gold, taxonomy, allowed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tasks = build_tasks(project, kind, out / "chips", items=items, gold=gold)
    fields = ("geolabel_kind", "geolabel_project", "geolabel_crs", "geolabel_scene")
    lists = ("geolabel_window", "geolabel_transform", "geolabel_bounds")
    header = [
        _ITEM,
        "image_url",
        *(["name"] if kind == "poi" else []),
        *fields,
        *lists,
        "_golden",
        f"{answer}_gold",
        f"{answer}_gold_reason",
    ]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for t in tasks:
        geo = t.geolabel_fields()
        reason = ""
        if t.gold is not None:
            cls = taxonomy.get(t.gold)
            reason = f"This is {cls.name}: {cls.definition}".strip()
        writer.writerow(
            [
                t.item,
                "" if t.chip is None else chip_url(t.chip.path, out, url_prefix),
                *([t.text or ""] if kind == "poi" else []),
                *(str(geo[f]) for f in fields),
                *(json.dumps(geo[f]) for f in lists),
                "TRUE" if t.gold is not None else "",
                t.gold or "",
                reason,
            ]
        )
    path = out / f"{kind}_units.csv"
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return ExportResult(
        format=SOURCE,
        kind=kind,
        paths=(str(path),),
        n_tasks=len(tasks),
        n_gold=sum(t.gold is not None for t in tasks),
        chips_dir=str(out / "chips"),
    )


# ------------------------------------------------------------------------------ import


def _appen_time(value: str) -> str | None:
    """Appen's ``m/d/Y H:M:S`` (UTC) or ISO-8601, as ISO-8601 UTC."""
    text = value.strip()
    for fmt in ("%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M"):
        try:
            stamp = datetime.strptime(text, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
        return stamp.isoformat(timespec="microseconds")
    return iso_time(text)


def _answer_column(header: Sequence[str], output: str | None, suffix: str, path: object) -> str:
    if output is not None:
        if output not in header:
            raise AnnotationImportError(
                f"{path} has no answer column {output!r}; columns: {', '.join(header)}."
            )
        return output
    found = [h for h in header if not h.startswith("_") and f"{h}{suffix}" in header]
    if len(found) != 1:
        what = f"several: {', '.join(found)}" if found else f"no <answer>{suffix} column"
        raise AnnotationImportError(
            f"{path}: cannot tell the answer column ({what}); pass --output ANSWER (the job's "
            "answer field)."
        )
    return found[0]


def _gold_answer(cell: str, skipped: Counter[str]) -> str | None:
    answers = [a.strip() for a in cell.splitlines() if a.strip()]
    if len(answers) > 1:
        skipped["gold with several answers"] += 1
        return None
    return answers[0] if answers else None


def read_appen(path: str | os.PathLike[str], *, output: str | None = None) -> ParsedImport:
    """Read an Appen full or aggregated report (CSV).

    Args:
        path: The report.
        output: The answer column (found by its ``_gold`` or ``:confidence`` column when
            None).

    Returns:
        The parsed judgments (full report) or references (aggregated report), gold and
        worker trust; nothing is stored.

    Raises:
        AnnotationImportError: Not a CSV, neither report's columns, no ``geolabel_item``
            column, a row with the wrong number of fields, or a bad ``_trust``/confidence.
    """
    raw = read_bytes(path, "Appen report")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise AnnotationImportError(f"{path} is not UTF-8 text ({exc}).") from exc
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        raise AnnotationImportError(f"{path} is not a readable CSV ({exc}).") from exc
    if not rows:
        raise AnnotationImportError(f"{path} is empty; download the job's report again.")
    header = [h.strip() for h in rows[0]]
    full = "_worker_id" in header
    aggregated = any(h.endswith(":confidence") for h in header)
    if not full and not aggregated:
        raise AnnotationImportError(
            f"{path} is neither an Appen full report (no _worker_id column) nor an aggregated "
            f"report (no <answer>:confidence column); columns: {', '.join(header)}. Download "
            "the Full or Aggregated report of the job."
        )
    if _ITEM not in header:
        raise AnnotationImportError(
            f"{path} has no {_ITEM} column, so its units cannot be mapped to geolabel items; "
            "upload units made with `geolabel export --format appen` (the report carries the "
            "units' own columns)."
        )
    answer = _answer_column(header, output, "_gold" if full else ":confidence", path)
    col = {h: i for i, h in enumerate(header)}

    def cell(row: list[str], name: str) -> str:
        i = col.get(name)
        return row[i].strip() if i is not None and i < len(row) else ""

    labels: list[LabelRecord] = []
    references: list[ReferenceRecord] = []
    gold: dict[str, GoldRecord] = {}
    trust: dict[str, tuple[str, float]] = {}
    skipped: Counter[str] = Counter()
    seen: set[str] = set()
    for line, row in enumerate(rows[1:], start=2):
        if not any(v.strip() for v in row):
            continue
        where = f"{path} row {line}"
        if len(row) != len(header):
            raise AnnotationImportError(
                f"{where} has {len(row)} fields but the header has {len(header)}; the report "
                "is damaged (an unquoted comma or newline?). Nothing was imported."
            )
        item = cell(row, _ITEM)
        if not item:
            raise AnnotationImportError(f"{where}: blank {_ITEM}.")
        if cell(row, "_golden").lower() in _TRUE:
            known = _gold_answer(cell(row, f"{answer}_gold"), skipped)
            if known:
                gold.setdefault(item, GoldRecord(item, known, where))
        value = cell(row, answer)
        if not full:
            if not value:
                skipped["blank answer"] += 1
                continue
            conf_text = cell(row, f"{answer}:confidence")
            try:
                confidence = float(conf_text) if conf_text else None
            except ValueError:
                confidence = math.nan
            if confidence is not None and not 0.0 <= confidence <= 1.0:
                raise AnnotationImportError(
                    f"{where}: {answer}:confidence {conf_text!r} is not a number in [0, 1]."
                )
            references.append(ReferenceRecord(item, value, confidence, where))
            continue
        judgment = cell(row, "_id") or f"row {line}"
        if judgment in seen:
            skipped["duplicate judgment"] += 1
            continue
        seen.add(judgment)
        worker = cell(row, "_worker_id")
        if not worker:
            raise AnnotationImportError(f"{where}: blank _worker_id.")
        if cell(row, "_tainted").lower() in _TRUE:
            skipped["tainted"] += 1
            continue
        if not value:
            skipped["blank answer"] += 1
            continue
        annotator = f"appen:{worker}"
        created = _appen_time(cell(row, "_created_at"))
        started = _appen_time(cell(row, "_started_at"))
        trust_text = cell(row, "_trust")
        if trust_text:
            try:
                score = float(trust_text)
            except ValueError:
                score = math.nan
            if not 0.0 <= score <= 1.0:
                raise AnnotationImportError(
                    f"{where}: _trust {trust_text!r} is not a number in [0, 1]; the report is "
                    "damaged."
                )
            stamp = created or ""
            if annotator not in trust or stamp >= trust[annotator][0]:
                trust[annotator] = (stamp, score)
        spent = None
        if created and started:
            delta = datetime.fromisoformat(created) - datetime.fromisoformat(started)
            spent = max(delta.total_seconds(), 0.0)
        labels.append(LabelRecord(item, annotator, value, created, spent, where))
    return ParsedImport(
        source=SOURCE,
        path=str(path),
        sha256=sha256_bytes(raw),
        labels=tuple(labels),
        gold=tuple(gold.values()),
        n_skipped=dict(skipped),
        references=tuple(references),
        annotator_attrs={a: {TRUST_KEY: score} for a, (_, score) in trust.items()},
    )


def trust_weights(
    project: Project, n_classes: int | None = None, *, floor: float = 1e-3
) -> pd.Series:
    r"""WeightedMajorityVote weights from the Appen trust scores stored with the annotators.

    A trust score is Appen's estimate of a worker's accuracy :math:`p_a` on test questions, so
    the weight is the same one-coin log-odds :mod:`geolabel.crowd.wmv` derives from gold:
    :math:`w_a = \max(0, \log((K - 1) p_a / (1 - p_a)))`, with :math:`p_a` clipped to
    ``[floor, 1 - floor]``.

    Args:
        project: The project.
        n_classes: :math:`K` (the current taxonomy's parcel classes when None).
        floor: Clip of the trust score away from 0 and 1.

    Returns:
        ``annotator -> weight``: pass it as ``WeightedMajorityVote(weights=...)`` (with
        ``default_weight=`` for annotators from elsewhere).
    """
    trust = annotator_attrs(project, TRUST_KEY).astype(np.float64)
    k = n_classes if n_classes is not None else len(project.current_taxonomy().parcel_class_ids)
    p = trust.clip(floor, 1.0 - floor)
    weights = np.maximum(0.0, np.log((k - 1) * p / (1.0 - p)))
    return pd.Series(weights, index=trust.index, name="weight")
