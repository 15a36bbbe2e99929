"""Toloka: classification tasks out as TSV (``INPUT:``/``GOLDEN:``/``HINT:``), results in.

Out: one row per task with ``INPUT:item``, ``INPUT:image`` (the chip URL), ``INPUT:name`` (POIs)
and geolabel's ids as ``INPUT:geolabel_*`` (lists as JSON); gold (control) tasks also carry
``GOLDEN:label`` and ``HINT:text``, the columns Toloka's task upload reads.

In: Toloka's results TSV (``INPUT:``, ``OUTPUT:``, ``GOLDEN:`` and ``ASSIGNMENT:`` columns).
Each accepted or submitted assignment becomes a vote of ``toloka:<ASSIGNMENT:worker_id>`` at
``ASSIGNMENT:submitted`` (``started`` when missing), taking ``submitted - started`` seconds;
``REJECTED`` assignments are left out and counted (their worker failed quality control), as are
``SKIPPED``/``EXPIRED`` ones and blank answers. A row with ``GOLDEN:<output>`` is a control
task: its known answer is stored as gold.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

from geolabel.errors import AnnotationImportError, StoreError
from geolabel.interop._common import chip_url, iso_time, read_bytes, sha256_bytes
from geolabel.interop.records import ExportResult, GoldRecord, ItemKind, LabelRecord, ParsedImport
from geolabel.store import Project

__all__ = ["export_toloka", "read_toloka"]

SOURCE: Final = "toloka"
_EXCLUDED_STATUSES: Final = ("REJECTED", "SKIPPED", "EXPIRED")


def export_toloka(
    project: Project,
    out_dir: str | os.PathLike[str],
    kind: ItemKind = "parcel",
    *,
    url_prefix: str,
    gold: Mapping[str, str] | None = None,
    items: Sequence[str] | None = None,
    taxonomy_file: str | os.PathLike[str] | None = None,
) -> ExportResult:
    """Write ``<kind>_tasks.tsv`` and the chips for a Toloka classification pool.

    Args:
        project: The project.
        out_dir: Output folder (chips in ``out_dir/chips``).
        kind: ``parcel`` or ``poi``.
        url_prefix: Base URL the chips will be served from (``https://.../``); chip paths
            relative to ``out_dir`` are appended.
        gold: Known answers; those items become control tasks (``GOLDEN:label``).
        items: Only these items.
        taxonomy_file: POI taxonomy YAML, stored on first use.

    Returns:
        What was written.

    Raises:
        StoreError: A kind other than parcel/POI, or a gold label outside the taxonomy.
    """
    from geolabel.interop.tasks import build_tasks, checked_gold, kind_taxonomy

    if kind not in ("parcel", "poi"):
        raise StoreError(
            f"Toloka export covers classification of parcels and POIs, not {kind}s; use "
            "--format labelstudio for tiles and notices."
        )
    taxonomy, allowed = kind_taxonomy(project, kind, taxonomy_file)
    gold = checked_gold(gold, taxonomy, allowed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tasks = build_tasks(project, kind, out / "chips", items=items, gold=gold)
    fields = ("geolabel_kind", "geolabel_project", "geolabel_crs", "geolabel_scene")
    lists = ("geolabel_window", "geolabel_transform", "geolabel_bounds")
    header = [
        "INPUT:item",
        "INPUT:image",
        *(["INPUT:name"] if kind == "poi" else []),
        *(f"INPUT:{f}" for f in (*fields, *lists)),
        "GOLDEN:label",
        "HINT:text",
    ]
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter="\t", lineterminator="\n")
    writer.writerow(header)
    for t in tasks:
        geo = t.geolabel_fields()
        url = "" if t.chip is None else chip_url(t.chip.path, out, url_prefix)
        hint = "" if t.gold is None else taxonomy.get(t.gold).name
        writer.writerow(
            [
                t.item,
                url,
                *([t.text or ""] if kind == "poi" else []),
                *(str(geo[f]) for f in fields),
                *(json.dumps(geo[f]) for f in lists),
                t.gold or "",
                hint,
            ]
        )
    path = out / f"{kind}_tasks.tsv"
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return ExportResult(
        format=SOURCE,
        kind=kind,
        paths=(str(path),),
        n_tasks=len(tasks),
        n_predictions=0,
        n_gold=sum(t.gold is not None for t in tasks),
        chips_dir=str(out / "chips"),
    )


def read_toloka(path: str | os.PathLike[str], *, output: str | None = None) -> ParsedImport:
    """Read a Toloka results TSV.

    Args:
        path: The TSV downloaded from the pool.
        output: The ``OUTPUT:`` field holding the class (the only ``OUTPUT:`` column when None).

    Returns:
        The parsed answers; nothing is stored.

    Raises:
        AnnotationImportError: Not a TSV, a required column missing (``INPUT:item``,
            ``ASSIGNMENT:worker_id``, the output column) or an unreadable row.
    """
    raw = read_bytes(path, "Toloka results file")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise AnnotationImportError(
            f"{path} is not UTF-8 text ({exc}); nothing was imported."
        ) from exc
    rows = list(csv.reader(io.StringIO(text), delimiter="\t"))
    if not rows:
        raise AnnotationImportError(f"{path} is empty; download the pool's results again.")
    header = [h.strip() for h in rows[0]]
    outputs = [h for h in header if h.startswith("OUTPUT:")]
    out_col = (
        f"OUTPUT:{output}" if output is not None else (outputs[0] if len(outputs) == 1 else "")
    )
    required = ["INPUT:item", "ASSIGNMENT:worker_id", out_col or "OUTPUT:<field>"]
    missing = [c for c in required if c not in header]
    if missing:
        hint = (
            f" Several OUTPUT columns ({', '.join(outputs)}): pass --output FIELD."
            if len(outputs) > 1 and output is None
            else ""
        )
        raise AnnotationImportError(
            f"{path} is missing column(s) {', '.join(missing)}; columns present: "
            f"{', '.join(header)}.{hint} Download the results with worker ids (Toloka: "
            "Download results -> include ASSIGNMENT:worker_id); nothing was imported."
        )
    col = {h: i for i, h in enumerate(header)}
    golden_col = "GOLDEN:" + out_col.split(":", 1)[1]
    labels: list[LabelRecord] = []
    gold: dict[str, GoldRecord] = {}
    skipped: Counter[str] = Counter()

    def cell(row: list[str], name: str) -> str:
        i = col.get(name)
        return row[i].strip() if i is not None and i < len(row) else ""

    for line, row in enumerate(rows[1:], start=2):
        if not any(v.strip() for v in row):
            continue
        where = f"{path} line {line}"
        if len(row) != len(header):
            raise AnnotationImportError(
                f"{where} has {len(row)} fields but the header has {len(header)}; the file is "
                "damaged (a tab or newline inside a value?). Nothing was imported."
            )
        item, worker = cell(row, "INPUT:item"), cell(row, "ASSIGNMENT:worker_id")
        status = cell(row, "ASSIGNMENT:status").upper()
        answer = cell(row, out_col)
        golden = cell(row, golden_col)
        if item and golden:
            gold.setdefault(item, GoldRecord(item, golden, where))
        if status in _EXCLUDED_STATUSES:
            skipped[status.lower()] += 1
            continue
        if not item or not worker:
            raise AnnotationImportError(f"{where}: blank INPUT:item or ASSIGNMENT:worker_id.")
        if not answer:
            skipped["blank answer"] += 1
            continue
        started = iso_time(cell(row, "ASSIGNMENT:started"))
        submitted = iso_time(cell(row, "ASSIGNMENT:submitted"))
        spent = None
        if started and submitted:
            from datetime import datetime

            delta = datetime.fromisoformat(submitted) - datetime.fromisoformat(started)
            spent = max(delta.total_seconds(), 0.0)
        labels.append(
            LabelRecord(item, f"toloka:{worker}", answer, submitted or started, spent, where)
        )
    return ParsedImport(
        source=SOURCE,
        path=str(path),
        sha256=sha256_bytes(raw),
        labels=tuple(labels),
        gold=tuple(gold.values()),
        n_skipped=dict(skipped),
    )
