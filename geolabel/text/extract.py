"""Extraction: notices in, entities and parcel links out, with ``nlp.pipe`` batching.

:func:`extract_notices` runs the pipeline over notices in batches, turns each doc's entities
into :class:`~geolabel.text.records.EntitySpan` records, links the ADDRESS and PARCEL_ID
spans to parcels (:mod:`geolabel.text.linking`), reads the dates, and takes the notice kind
from the record (or guesses it). :func:`parcel_impacts` turns the result into one row per
linked parcel -- marked high impact, with the notices' kinds and dates -- for routing, and
:func:`write_geojson` into a map layer (one feature per notice, its geometry the union of its
parcels, in WGS 84). Text always stays text: the GeoJSON ``popup`` property is HTML-escaped,
so markup in a notice shows as characters on a map and never runs.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

import pandas as pd
from spacy.tokens import Doc

from geolabel.errors import InputFileError, NoticeTooLongError, PipelineError
from geolabel.text.dates import guess_kind, parse_dates
from geolabel.text.linking import Gazetteer, link_entities
from geolabel.text.pipeline import MAX_NOTICE_CHARS, RULE_PREFIX, model_version, shipped_pipeline
from geolabel.text.records import (
    EntitySpan,
    ExtractedNotice,
    NerPrediction,
    NoticeRecord,
)

if TYPE_CHECKING:
    from spacy.language import Language

    from geolabel.store import Project

__all__ = [
    "IMPACT_COLUMNS",
    "LINK_COLUMNS",
    "ExtractSummary",
    "doc_entities",
    "doc_sources",
    "extract_files",
    "extract_notices",
    "iter_extract",
    "link_project_notices",
    "links_frame",
    "parcel_impacts",
    "prelabel_notices",
    "write_geojson",
    "write_jsonl",
]

LINK_COLUMNS: Final[tuple[str, ...]] = (
    "notice_id",
    "item",
    "method",
    "confidence",
    "start",
    "end",
    "label",
    "text",
    "kind",
    "date_start",
    "date_end",
)
"""Columns of :func:`links_frame` (``item`` is the parcel id)."""

IMPACT_COLUMNS: Final[tuple[str, ...]] = (
    "item",
    "high_impact",
    "n_notices",
    "notice_ids",
    "kinds",
    "date_start",
    "date_end",
    "dates",
    "confidence",
    "methods",
)
"""Columns of :func:`parcel_impacts`."""


@dataclass(frozen=True, slots=True)
class ExtractSummary:
    """What :func:`extract_files` did.

    Attributes:
        n_notices: Notices read.
        n_entities: Entities found.
        n_links: Parcel links (entity, parcel pairs).
        n_parcels: Distinct parcels linked.
        n_unlinked: ADDRESS/PARCEL_ID spans that linked to no parcel.
        output: The file written.
        fmt: ``jsonl`` or ``geojson``.
        model_version: The pipeline that extracted.
        n_stored: Links stored in the project (0 without one).
    """

    n_notices: int
    n_entities: int
    n_links: int
    n_parcels: int
    n_unlinked: int
    output: str
    fmt: str
    model_version: str
    n_stored: int = 0


def doc_entities(doc: Doc) -> tuple[EntitySpan, ...]:
    """Return a doc's entities as records (character offsets, end exclusive).

    Args:
        doc: A processed doc.

    Returns:
        The entities, sorted by start.
    """
    return tuple(EntitySpan(ent.start_char, ent.end_char, ent.label_, ent.text) for ent in doc.ents)


def doc_sources(doc: Doc) -> tuple[str, ...]:
    """Return, per entity of the doc, ``"rule"`` or ``"model"`` (which part made it).

    Args:
        doc: A processed doc.

    Returns:
        One source per entity, in entity order.
    """
    return tuple("rule" if ent.id_.startswith(RULE_PREFIX) else "model" for ent in doc.ents)


def _check_length(record: NoticeRecord, max_chars: int) -> None:
    if len(record.text) > max_chars:
        raise NoticeTooLongError(
            f"{record.source or record.notice_id}: the notice has {len(record.text):,} "
            f"characters, over the limit of {max_chars:,}; split it first."
        )


def _published_year(record: NoticeRecord) -> int | None:
    value = record.fields.get("published")
    if isinstance(value, str):
        try:
            return date.fromisoformat(value[:10]).year
        except ValueError:
            return None
    return None


def iter_extract(
    records: Iterable[NoticeRecord],
    nlp: Language | None = None,
    gazetteer: Gazetteer | None = None,
    *,
    batch_size: int = 64,
    max_chars: int = MAX_NOTICE_CHARS,
) -> Iterator[ExtractedNotice]:
    """Extract and link notices lazily, batch by batch (``nlp.pipe``).

    Args:
        records: Notices (see :func:`geolabel.text.data.read_notice_records`).
        nlp: The pipeline; the shipped one when None.
        gazetteer: Parcels to link to; entities stay unlinked (and reported) without one.
        batch_size: ``nlp.pipe`` batch size.
        max_chars: Longest notice accepted.

    Yields:
        One result per notice, in input order.

    Raises:
        NoticeTooLongError: A notice is longer than ``max_chars``.
    """
    pipeline = nlp if nlp is not None else shipped_pipeline()
    if max_chars > pipeline.max_length:
        pipeline.max_length = max_chars

    def texts() -> Iterator[tuple[str, NoticeRecord]]:
        for record in records:
            _check_length(record, max_chars)
            yield record.text, record

    for doc, record in pipeline.pipe(texts(), batch_size=batch_size, as_tuples=True):
        entities = doc_entities(doc)
        links, unlinked = link_entities(record.notice_id, entities, gazetteer)
        kind = record.fields.get("kind")
        dates = parse_dates(
            (e.text for e in entities if e.label == "DATE"), default_year=_published_year(record)
        )
        yield ExtractedNotice(
            record=record,
            entities=entities,
            links=links,
            unlinked=unlinked,
            kind=kind if isinstance(kind, str) and kind.strip() else guess_kind(record.text),
            dates=tuple(d.isoformat() for d in dates),
        )


def extract_notices(
    records: Iterable[NoticeRecord],
    nlp: Language | None = None,
    gazetteer: Gazetteer | None = None,
    *,
    batch_size: int = 64,
    max_chars: int = MAX_NOTICE_CHARS,
) -> list[ExtractedNotice]:
    """Extract entities from notices and link them to parcels.

    Args:
        records: Notices.
        nlp: The pipeline; the shipped one when None.
        gazetteer: Parcels to link to.
        batch_size: ``nlp.pipe`` batch size.
        max_chars: Longest notice accepted.

    Returns:
        One result per notice, in input order.

    Raises:
        NoticeTooLongError: A notice is longer than ``max_chars``.
    """
    return list(iter_extract(records, nlp, gazetteer, batch_size=batch_size, max_chars=max_chars))


def prelabel_notices(
    records: Iterable[NoticeRecord],
    nlp: Language | None = None,
    *,
    batch_size: int = 64,
    max_chars: int = MAX_NOTICE_CHARS,
) -> list[NerPrediction]:
    """Pre-label notices for human annotators: the pipeline's spans as NER predictions.

    Args:
        records: Notices.
        nlp: The pipeline; the shipped one when None.
        batch_size: ``nlp.pipe`` batch size.
        max_chars: Longest notice accepted.

    Returns:
        One prediction per notice (its id as ``item``), with the pipeline's version and, per
        span, whether a rule or the model made it.

    Raises:
        NoticeTooLongError: A notice is longer than ``max_chars``.
    """
    pipeline = nlp if nlp is not None else shipped_pipeline()
    version = model_version(pipeline)
    items = list(records)
    for record in items:
        _check_length(record, max_chars)
    docs = pipeline.pipe((r.text for r in items), batch_size=batch_size)
    return [
        NerPrediction(r.notice_id, r.text, doc_entities(doc), version, doc_sources(doc))
        for r, doc in zip(items, docs, strict=True)
    ]


# --------------------------------------------------------------------------------------------
# Frames for routing and the store
# --------------------------------------------------------------------------------------------


def links_frame(extracted: Iterable[ExtractedNotice]) -> pd.DataFrame:
    """One row per parcel link (long form, for the store and for audits).

    Args:
        extracted: Extraction results.

    Returns:
        Columns :data:`LINK_COLUMNS`; ``date_start``/``date_end`` are the notice's first and
        last dates (ISO) or None.
    """
    rows = [
        {
            "notice_id": n.notice_id,
            "item": link.parcel_id,
            "method": link.method,
            "confidence": link.confidence,
            "start": link.entity.start,
            "end": link.entity.end,
            "label": link.entity.label,
            "text": link.entity.text,
            "kind": n.kind,
            "date_start": n.dates[0] if n.dates else None,
            "date_end": n.dates[-1] if n.dates else None,
        }
        for n in extracted
        for link in n.links
    ]
    return pd.DataFrame(rows, columns=list(LINK_COLUMNS))


def parcel_impacts(extracted: Iterable[ExtractedNotice]) -> pd.DataFrame:
    """One row per parcel that a notice links to: what routing needs to treat it as high impact.

    Args:
        extracted: Extraction results.

    Returns:
        Columns :data:`IMPACT_COLUMNS`, sorted by ``item`` (the parcel id):
        ``high_impact`` (always True: a notice names the parcel), ``n_notices``,
        ``notice_ids``/``kinds``/``dates``/``methods`` (sorted lists), ``date_start`` and
        ``date_end`` (first and last date of those notices, ISO, or None) and ``confidence``
        (the best link's).
    """
    per_parcel: dict[str, dict[str, Any]] = {}
    for notice in extracted:
        for link in notice.links:
            row = per_parcel.setdefault(
                link.parcel_id,
                {"notices": set(), "kinds": set(), "dates": set(), "methods": set(), "conf": 0.0},
            )
            row["notices"].add(notice.notice_id)
            row["kinds"].add(notice.kind)
            row["dates"].update(notice.dates)
            row["methods"].add(link.method)
            row["conf"] = max(row["conf"], link.confidence)
    records = []
    for pid in sorted(per_parcel):
        row = per_parcel[pid]
        dates = sorted(row["dates"])
        records.append(
            {
                "item": pid,
                "high_impact": True,
                "n_notices": len(row["notices"]),
                "notice_ids": sorted(row["notices"]),
                "kinds": sorted(row["kinds"]),
                "date_start": dates[0] if dates else None,
                "date_end": dates[-1] if dates else None,
                "dates": dates,
                "confidence": float(row["conf"]),
                "methods": sorted(row["methods"]),
            }
        )
    return pd.DataFrame(records, columns=list(IMPACT_COLUMNS))


# --------------------------------------------------------------------------------------------
# Writers
# --------------------------------------------------------------------------------------------


def _json_default(value: object) -> Any:
    if hasattr(value, "item"):
        return value.item()  # numpy scalars
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def write_jsonl(extracted: Iterable[ExtractedNotice], path: str | PathLike[str]) -> int:
    """Write extraction results as JSON Lines (see :meth:`ExtractedNotice.to_dict`).

    Args:
        extracted: Results.
        path: Output file.

    Returns:
        Records written.

    Raises:
        InputFileError: The file cannot be written.
    """
    target = Path(path)
    count = 0
    try:
        with target.open("w", encoding="utf-8", newline="\n") as handle:
            for notice in extracted:
                handle.write(
                    json.dumps(notice.to_dict(), ensure_ascii=False, default=_json_default)
                )
                handle.write("\n")
                count += 1
    except OSError as exc:
        raise InputFileError(f"cannot write {target}: {exc.strerror or exc}") from exc
    return count


def _popup(notice: ExtractedNotice) -> str:
    """An HTML snippet for a map popup, every piece of notice text escaped."""
    title = notice.record.fields.get("title")
    head = html.escape(str(title)) if title else html.escape(notice.notice_id)
    body = html.escape(notice.record.text[:300]) + ("…" if len(notice.record.text) > 300 else "")
    dates = html.escape(", ".join(notice.dates))
    return f"<b>{head}</b><br><i>{html.escape(notice.kind)}</i> {dates}<br>{body}"


def write_geojson(
    extracted: Sequence[ExtractedNotice], path: str | PathLike[str], gazetteer: Gazetteer
) -> int:
    """Write notices as a GeoJSON map layer (RFC 7946: WGS 84 longitude/latitude).

    One feature per notice; its geometry is the union of its linked parcels (null when it
    links none). Properties: ``notice_id``, ``kind``, ``dates``, ``parcels``, ``entities``
    (``[{start, end, label, text}]``), ``unlinked``, the record's ``title`` and ``text`` as
    plain strings, and ``popup``, an HTML snippet in which all notice text is escaped.

    Args:
        extracted: Results.
        path: Output file.
        gazetteer: The gazetteer the links came from; it must carry parcel geometry.

    Returns:
        Features written.

    Raises:
        PipelineError: The gazetteer has no geometry.
        InputFileError: The file cannot be written.
    """
    import geopandas as gpd
    import shapely
    from shapely.geometry import mapping

    if gazetteer.geometry is None or gazetteer.geometry.crs is None:
        raise PipelineError(
            "GeoJSON output needs parcel geometries with a CRS; give parcels from a vector file "
            "or a project (--parcels/--project), or write JSONL instead."
        )
    geoms = []
    for notice in extracted:
        pids = [p for p in notice.parcel_ids if p in gazetteer.geometry.index]
        geoms.append(shapely.union_all(gazetteer.geometry.loc[pids].to_numpy()) if pids else None)
    layer = gpd.GeoSeries(geoms, crs=gazetteer.geometry.crs).to_crs("EPSG:4326")
    features = []
    for notice, geom in zip(extracted, layer, strict=True):
        features.append(
            {
                "type": "Feature",
                "geometry": None if geom is None or geom.is_empty else mapping(geom),
                "properties": {
                    "notice_id": notice.notice_id,
                    "kind": notice.kind,
                    "dates": list(notice.dates),
                    "parcels": list(notice.parcel_ids),
                    "entities": [e.to_dict() for e in notice.entities],
                    "unlinked": [
                        {**u.entity.to_dict(), "reason": u.reason} for u in notice.unlinked
                    ],
                    "title": str(notice.record.fields.get("title", "")),
                    "text": notice.record.text,
                    "popup": _popup(notice),
                },
            }
        )
    target = Path(path)
    try:
        target.write_text(
            json.dumps(
                {"type": "FeatureCollection", "features": features},
                ensure_ascii=False,
                default=_json_default,
            ),
            encoding="utf-8",
        )
    except OSError as exc:
        raise InputFileError(f"cannot write {target}: {exc.strerror or exc}") from exc
    return len(features)


def extract_files(
    paths: Sequence[str | PathLike[str]],
    output: str | PathLike[str],
    *,
    nlp: Language | None = None,
    gazetteer: Gazetteer | None = None,
    fmt: Literal["jsonl", "geojson"] | None = None,
    text_column: str = "text",
    batch_size: int = 64,
    max_chars: int = MAX_NOTICE_CHARS,
) -> tuple[ExtractSummary, list[ExtractedNotice]]:
    """Read notice files, extract and link, and write JSONL or GeoJSON.

    Args:
        paths: Text, CSV or JSONL files (see :func:`geolabel.text.data.read_notice_records`).
        output: Output file; its suffix picks the format when ``fmt`` is None (``.geojson``
            or ``.json`` -> GeoJSON, anything else -> JSONL).
        nlp: The pipeline; the shipped one when None.
        gazetteer: Parcels to link to (required for GeoJSON).
        fmt: Output format.
        text_column: Text field of CSV/JSONL input.
        batch_size: ``nlp.pipe`` batch size.
        max_chars: Longest notice accepted.

    Returns:
        A summary and the results.

    Raises:
        InputFileError: No input, or a bad input file.
        PipelineError: GeoJSON without a gazetteer with geometry.
    """
    from geolabel.text.data import read_notice_records

    if not paths:
        raise InputFileError("no notice files given; pass one or more text, CSV or JSONL files.")
    target = Path(output)
    kind = fmt or ("geojson" if target.suffix.lower() in (".geojson", ".json") else "jsonl")
    if kind == "geojson" and gazetteer is None:
        raise PipelineError(
            "GeoJSON output needs parcels to draw the notices with: pass --parcels FILE or "
            "--project PROJECT, or write .jsonl."
        )
    records: list[NoticeRecord] = []
    seen: dict[str, str] = {}
    for path in paths:
        for record in read_notice_records(path, text_column=text_column, max_chars=max_chars):
            if record.notice_id in seen:
                raise InputFileError(
                    f"notice id {record.notice_id!r} appears in {seen[record.notice_id]} and "
                    f"{record.source}; ids must be unique across the inputs."
                )
            seen[record.notice_id] = record.source
            records.append(record)
    pipeline = nlp if nlp is not None else shipped_pipeline()
    results = extract_notices(
        records, pipeline, gazetteer, batch_size=batch_size, max_chars=max_chars
    )
    if kind == "geojson":
        assert gazetteer is not None
        write_geojson(results, target, gazetteer)
    else:
        write_jsonl(results, target)
    summary = ExtractSummary(
        n_notices=len(results),
        n_entities=sum(len(n.entities) for n in results),
        n_links=sum(len(n.links) for n in results),
        n_parcels=len({p for n in results for p in n.parcel_ids}),
        n_unlinked=sum(len(n.unlinked) for n in results),
        output=str(target),
        fmt=kind,
        model_version=model_version(pipeline),
    )
    return summary, results


def link_project_notices(
    project: Project, nlp: Language | None = None, *, batch_size: int = 64
) -> int:
    """Extract the entities of a project's stored notices and store their parcel links.

    Args:
        project: An open project with notices and parcels.
        nlp: The pipeline; the shipped one when None.
        batch_size: ``nlp.pipe`` batch size.

    Returns:
        Links added (0 when this pipeline version linked them before).
    """
    frame = project.notices()
    if frame.empty:
        return 0
    nlp = nlp or shipped_pipeline()
    records = [
        NoticeRecord(
            notice_id=str(r["notice_id"]),
            text=str(r["text"]),
            fields={k: v for k, v in r.items() if isinstance(k, str)},
            source=f"{project.path}:notices:{n}",
        )
        for n, r in enumerate(frame.to_dict(orient="records"), start=1)
    ]
    results = extract_notices(records, nlp, Gazetteer.from_project(project), batch_size=batch_size)
    return project.add_notice_links(links_frame(results), model_version=model_version(nlp))
