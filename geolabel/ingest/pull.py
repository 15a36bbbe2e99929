"""One pull: read every source, normalise, de-duplicate, check, and store in one transaction.

A pull reads its sources in order (files directly, portals through
:class:`~geolabel.ingest.portals.HttpClient`), keeps only records newer than each source's
watermark, maps and cleans them (:mod:`geolabel.ingest.normalize`), finds exact and near copies
among themselves and against what the project already holds (:mod:`geolabel.ingest.dedupe`),
and measures the result against the QA thresholds (:mod:`geolabel.ingest.qa`).

A pull that passes is stored in **one** ``BEGIN IMMEDIATE`` transaction: new notices (in the
``notices`` table, with ``notice`` items, exactly as ``geolabel init`` stores them, so
``geolabel notices extract --project`` reads them), new parcels (``ingest_parcels`` layer), the
provenance of every record, the sources' new watermarks and the pull's report. A pull that fails
its checks, or a source that cannot be read, stores only the failed pull's report; an error
half-way through writing rolls everything back. Either way nothing stored before is touched
and the next pull starts from the same watermarks.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import pandas as pd
from shapely.geometry.base import BaseGeometry

from geolabel.errors import EncodingError, FetchError, InputFileError
from geolabel.ingest.config import PORTAL_KINDS, SourceConfig, SourceList, Thresholds
from geolabel.ingest.dedupe import Deduplicator
from geolabel.ingest.normalize import (
    clean_line,
    clean_text,
    content_hash,
    normalize_notice,
    normalize_parcel,
    parse_date,
    today_in,
)
from geolabel.ingest.portals import HttpClient, pull_portal
from geolabel.ingest.qa import (
    DuplicateCopy,
    PullReport,
    SourceSummary,
    evaluate_checks,
    fill_rates,
)
from geolabel.ingest.readers import ReadResult, read_file_source
from geolabel.ingest.records import (
    NOTICE_FIELDS,
    IngestedNotice,
    IngestedParcel,
    Problem,
    RawRecord,
)
from geolabel.ingest.tables import (
    PARCEL_LAYER,
    ensure_ingest_tables,
    insert_parcels,
    latest_watermarks,
    pulls,
)
from geolabel.store import Project

__all__ = ["SourceRecords", "collect_source", "project_area", "run_pull"]

_PROBLEMS_PER_CODE: Final = 50
_PARCEL_FILL: Final = ("parcel_id", "apn", "address")


@dataclass
class _Outcome:
    """Where one record ended up (one provenance row)."""

    source: str
    origin: str
    kind: str
    record_id: str | None
    digest: str | None
    status: str
    canonical_id: str | None = None
    similarity: float | None = None
    reason: str | None = None


def _utc(now: datetime | None = None) -> datetime:
    current = now or datetime.now(UTC)
    return current if current.tzinfo else current.replace(tzinfo=UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def project_area(project: Project) -> BaseGeometry | None:
    """The project area: its ``regions``, else its scene footprints, else its parcels' extent.

    Args:
        project: The project.

    Returns:
        A geometry in the project CRS, or None when the project has none of these layers.
    """
    from shapely.geometry import box

    names = {info.name: info for info in project.layers() if info.kind == "features"}
    for name in ("regions", "scenes"):
        if name in names and names[name].count:
            return project.read_layer(name).geometry.union_all()
    if "parcels" in names and names["parcels"].count:
        return box(*project.read_layer("parcels").total_bounds)
    return None


def _wm_key(value: Any, config: SourceConfig) -> tuple[int, Any] | None:
    """A sortable key of an incremental value (None when it cannot be compared)."""
    if value is None or value == "":
        return None
    if config.incremental_type == "id":
        try:
            return (0, float(value))
        except (TypeError, ValueError):
            return (1, str(value))
    try:
        parsed = parse_date(value, config.timezone, dayfirst=config.dayfirst)
    except ValueError:
        return None
    stamp = parsed.timestamp or f"{parsed.date}T00:00:00"
    moment = datetime.fromisoformat(stamp)
    if moment.tzinfo is None:
        from zoneinfo import ZoneInfo

        moment = moment.replace(tzinfo=ZoneInfo(config.timezone))
    return (0, moment.timestamp())


def _filter_new(
    records: list[RawRecord], config: SourceConfig, watermark: str | None
) -> tuple[list[RawRecord], int, str | None]:
    """Keep records above the watermark; return them, how many were older, the new watermark."""
    if not config.incremental:
        return records, 0, None
    floor = _wm_key(watermark, config) if watermark is not None else None
    kept: list[RawRecord] = []
    older = 0
    best: tuple[tuple[int, Any], str] | None = (floor, watermark) if floor and watermark else None
    for raw in records:
        value = raw.fields.get(config.incremental)
        key = _wm_key(value, config)
        if key is not None and floor is not None and key <= floor:
            older += 1
            continue
        kept.append(raw)
        if key is not None and (best is None or key > best[0]):
            best = (key, str(value))
    return kept, older, best[1] if best else None


def _read_source(
    config: SourceConfig, client: HttpClient | None, watermark: str | None
) -> tuple[ReadResult | None, str | None, HttpClient | None]:
    """Read one source; return its records, or the error that stopped it."""
    if config.kind in PORTAL_KINDS:
        client = client or HttpClient.for_source(config)
        try:
            return pull_portal(config, client, watermark), None, client
        except FetchError as exc:
            return None, str(exc), client
    try:
        return read_file_source(config), None, None
    except (InputFileError, EncodingError) as exc:
        return None, str(exc), None


def _stored_notices(project: Project) -> list[tuple[str, str, str]]:
    frame = project.notices()
    out = []
    for record in frame.to_dict(orient="records"):
        text = clean_text(str(record["text"]))
        title = clean_line(record.get("title"))
        out.append((str(record["notice_id"]), content_hash(title, text), text))
    return out


def _stored_parcels(project: Project) -> tuple[list[tuple[str, str]], set[str]]:
    """``(parcel_id, content hash)`` of the project's parcels and ingested parcels, and their ids.

    The project's ``parcels`` layer is hashed the way an ingested parcel is, so re-ingesting
    the parcels a project was made from finds them as exact duplicates.
    """
    from geolabel.ingest.tables import _rows, _table_exists

    hashes: list[tuple[str, str]] = []
    if _table_exists(project, "parcels"):
        layer = project.read_layer("parcels")
        config = SourceConfig(
            name="project", kind="gpkg", location=str(project.path), record="parcel"
        )
        columns = [c for c in layer.columns if c != layer.geometry.name]
        for values, geometry in zip(
            layer[columns].itertuples(index=False, name=None), layer.geometry, strict=True
        ):
            raw = RawRecord(
                dict(zip(columns, values, strict=True)), "parcels", geometry, project.crs
            )
            parcel, _ = normalize_parcel(raw, config, project_crs=project.crs)
            if parcel is not None:
                hashes.append((parcel.parcel_id, parcel.content_hash))
    if _table_exists(project, PARCEL_LAYER):
        hashes += [
            (str(a), str(b))
            for a, b in _rows(project, f"SELECT parcel_id, content_hash FROM {PARCEL_LAYER}")
        ]
    return hashes, {p for p, _ in hashes}


def _previous_pull(project: Project, names: Sequence[str]) -> dict[str, Any] | None:
    frame = pulls(project)
    if frame.empty:
        return None
    ok = frame[(frame["status"] == "ok") & frame["sources"].map(lambda s: sorted(s) == names)]
    if ok.empty:
        return None
    row = ok.iloc[-1]
    return {"pull_id": row["pull_id"], "n_in": int(row["n_in"]), "report": row["report"]}


@dataclass(frozen=True)
class SourceRecords:
    """One source read and normalised (before de-duplication).

    Attributes:
        summary: How the source fared (``status="failed"`` with the error when unreadable).
        records: Its normalised records, in source order.
        problems: Problems of single records (dropped ones and notes).
        dropped: Where each dropped record ended up (for provenance).
    """

    summary: SourceSummary
    records: tuple[IngestedNotice | IngestedParcel, ...]
    problems: tuple[Problem, ...]
    dropped: tuple[_Outcome, ...]


def collect_source(
    config: SourceConfig,
    *,
    watermark: str | None = None,
    client: HttpClient | None = None,
    now: datetime | None = None,
    thresholds: Thresholds | None = None,
    project_crs: str = "EPSG:4326",
    area: BaseGeometry | None = None,
) -> SourceRecords:
    """Read one source, keep records above its watermark, and normalise them.

    Args:
        config: The source.
        watermark: Largest ``config.incremental`` value already pulled.
        client: HTTP client for a portal (default: built from the source's settings).
        now: The pull's time (later dates are in the future).
        thresholds: Text length and future-date settings (defaults when None).
        project_crs: CRS parcels are reprojected to.
        area: Project area; parcels outside it are dropped.

    Returns:
        The source's normalised records, problems and summary. A source that cannot be read
        (missing or undecodable file, portal failing after retries) is reported as failed,
        not raised.

    Raises:
        IngestConfigError: The source's settings do not fit its content.
    """
    limits = thresholds or Thresholds()
    result, error, used = _read_source(config, client, watermark)
    if result is None:
        summary = SourceSummary(
            name=config.name,
            kind=config.kind,
            record=config.record,
            status="failed",
            error=error,
            requests=used.requests if used else 0,
            retries=tuple(used.retry_log) if used else (),
            watermark_before=watermark,
            watermark_after=watermark,
            schedule=config.schedule,
        )
        return SourceRecords(summary, (), (), ())
    records, older, after = _filter_new(result.records, config, watermark)
    summary = SourceSummary(
        name=config.name,
        kind=config.kind,
        record=config.record,
        status="ok",
        n_read=len(records) + len(result.problems),
        n_older=older,
        requests=result.requests,
        retries=tuple(result.retries),
        encodings=dict(result.encodings),
        watermark_before=watermark,
        watermark_after=after or watermark,
        schedule=config.schedule,
    )
    problems = list(result.problems)
    dropped = [
        _Outcome(p.source, p.origin, config.record, None, None, "dropped", reason=p.code)
        for p in result.problems
    ]
    today = today_in(config.timezone, _utc(now)) + timedelta(days=limits.future_days)
    kept: list[IngestedNotice | IngestedParcel] = []
    for raw in records:
        record: IngestedNotice | IngestedParcel | None
        if config.record == "notice":
            record, found = normalize_notice(
                raw, config, today=today, min_text_chars=limits.min_text_chars
            )
        else:
            record, found = normalize_parcel(raw, config, project_crs=project_crs, area=area)
        problems.extend(found)
        if record is None:
            dropping = next(p for p in found if p.dropped)
            dropped.append(
                _Outcome(
                    config.name,
                    raw.origin,
                    config.record,
                    dropping.record_id,
                    None,
                    "dropped",
                    reason=dropping.code,
                )
            )
        else:
            kept.append(record)
    return SourceRecords(summary, tuple(kept), tuple(problems), tuple(dropped))


def run_pull(
    project: Project,
    sources: SourceList | Sequence[SourceConfig],
    *,
    dry_run: bool = False,
    now: datetime | None = None,
    clients: Mapping[str, HttpClient] | None = None,
) -> PullReport:
    """Pull every source into the project, or store nothing when the pull fails its checks.

    Args:
        project: The open project.
        sources: The source list (or sources, with default thresholds).
        dry_run: Check only; store nothing (not even the report).
        now: The pull's time (dates after its day are in the future).
        clients: HTTP clients to use per source name (tests; rate limits shared across
            sources).

    Returns:
        The QA report; ``report.status`` is ``ok``, ``failed`` or ``dry-run``.

    Raises:
        IngestConfigError: A source's settings do not fit what it holds (no CRS for WKT...).
        StoreError: The project refused the write (it was rolled back whole).
    """
    source_list = sources if isinstance(sources, SourceList) else SourceList(tuple(sources))
    thresholds = source_list.thresholds
    started = _utc(now)
    real_start = datetime.now(UTC)
    pull_id = f"pull-{real_start:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    watermarks = latest_watermarks(project)
    summaries: list[SourceSummary] = []
    outcomes: list[_Outcome] = []
    problems: list[Problem] = []
    new_watermarks: dict[str, tuple[str, str]] = {}
    normalised: list[tuple[SourceConfig, IngestedNotice | IngestedParcel]] = []
    area: BaseGeometry | None = None
    area_read = False

    for config in source_list.sources:
        state = watermarks.get(config.name)
        before = state[1] if state and state[0] == config.incremental else None
        if config.record == "parcel" and not area_read:
            area, area_read = project_area(project), True
        collected = collect_source(
            config,
            watermark=before,
            client=(clients or {}).get(config.name),
            now=started,
            thresholds=thresholds,
            project_crs=project.crs,
            area=area,
        )
        summaries.append(collected.summary)
        problems.extend(collected.problems)
        outcomes.extend(collected.dropped)
        normalised.extend((config, r) for r in collected.records)
        after = collected.summary.watermark_after
        if config.incremental and after is not None and after != before:
            new_watermarks[config.name] = (config.incremental, after)

    # ---------------------------------------------------------------- de-duplication
    notice_dedupe = Deduplicator(thresholds.near_duplicate_similarity, thresholds.shingle_words)
    stored_notices = _stored_notices(project)
    notice_dedupe.seed(stored_notices)
    notice_ids: dict[str, str] = {nid: digest for nid, digest, _ in stored_notices}
    parcel_dedupe = Deduplicator(None)
    stored_parcel_hashes, parcel_ids = (
        _stored_parcels(project)
        if any(c.record == "parcel" for c in source_list.sources)
        else ([], set())
    )
    parcel_dedupe.seed((pid, digest, None) for pid, digest in stored_parcel_hashes)
    new_notices: list[IngestedNotice] = []
    new_parcels: list[IngestedParcel] = []
    duplicates: list[DuplicateCopy] = []
    n_exact = n_near = 0
    for config, record in normalised:
        is_notice = isinstance(record, IngestedNotice)
        record_id = record.notice_id if isinstance(record, IngestedNotice) else record.parcel_id
        text = record.text if isinstance(record, IngestedNotice) else None
        dedupe = notice_dedupe if is_notice else parcel_dedupe
        match = dedupe.find(record.content_hash, text)
        if match is not None:
            n_exact += match.kind == "exact"
            n_near += match.kind == "near"
            duplicates.append(
                DuplicateCopy(
                    record_id,
                    record.source,
                    record.origin,
                    match.kind,
                    match.canonical_id,
                    match.similarity,
                    match.stored,
                )
            )
            outcomes.append(
                _Outcome(
                    record.source,
                    record.origin,
                    config.record,
                    record_id,
                    record.content_hash,
                    "duplicate" if match.kind == "exact" else "near_duplicate",
                    match.canonical_id,
                    match.similarity,
                )
            )
            continue
        taken = record_id in notice_ids if is_notice else record_id in parcel_ids
        if taken:
            conflict = Problem(
                record.source,
                record.origin,
                "id_conflict",
                f"{record.origin}: id {record_id!r} is already used by a different "
                f"{config.record}; stored records never change, so map this source's ids to new "
                "ones (fields.notice_id / fields.parcel_id) or correct it at the source",
                record_id,
            )
            problems.append(conflict)
            outcomes.append(
                _Outcome(
                    record.source,
                    record.origin,
                    config.record,
                    record_id,
                    record.content_hash,
                    "dropped",
                    reason="id_conflict",
                )
            )
            continue
        dedupe.add(record_id, record.content_hash, text)
        if isinstance(record, IngestedNotice):
            notice_ids[record_id] = record.content_hash
            new_notices.append(record)
        else:
            parcel_ids.add(record_id)
            new_parcels.append(record)
        outcomes.append(
            _Outcome(
                record.source,
                record.origin,
                config.record,
                record_id,
                record.content_hash,
                "added",
            )
        )

    # ---------------------------------------------------------------- QA
    dropped = Counter(p.code for p in problems if p.dropped)
    notes = Counter(p.code for p in problems if not p.dropped)
    n_dropped = sum(dropped.values())
    n_out = len(new_notices) + len(new_parcels)
    n_in = n_out + n_dropped + n_exact + n_near
    notice_records = [r.record() for _, r in normalised if isinstance(r, IngestedNotice)]
    parcel_records = [r.record() for _, r in normalised if isinstance(r, IngestedParcel)]
    rates = {
        **{f"notice.{k}": v for k, v in fill_rates(notice_records, NOTICE_FIELDS).items()},
        **{f"parcel.{k}": v for k, v in fill_rates(parcel_records, _PARCEL_FILL).items()},
    }
    names = sorted(c.name for c in source_list.sources)
    previous = _previous_pull(project, names)
    volume_change: float | None = None
    rate_changes: dict[str, float] = {}
    if previous is not None:
        if previous["n_in"]:
            volume_change = (n_in - previous["n_in"]) / previous["n_in"]
        before_rates = previous["report"].get("fill_rates") or {}
        rate_changes = {
            k: round(rates[k] - float(before_rates[k]), 4) for k in rates if k in before_rates
        }
    failed_sources = [s.name for s in summaries if s.status == "failed"]
    checks = evaluate_checks(
        n_in=n_in,
        dropped=dropped,
        notes=notes,
        n_duplicates=n_exact + n_near,
        thresholds=thresholds,
        volume_change=volume_change,
        fill_rate_changes=rate_changes,
        failed_sources=failed_sources,
    )
    failures = tuple(
        f"{c.name}: {c.detail}" if c.name != "sources_read" else c.detail
        for c in checks
        if not c.passed
    )
    failures += tuple(f"{s.name}: {s.error}" for s in summaries if s.status == "failed")
    status = "failed" if failures else ("dry-run" if dry_run else "ok")
    shown: list[Problem] = []
    per_code: Counter[str] = Counter()
    for p in problems:
        per_code[p.code] += 1
        if per_code[p.code] <= _PROBLEMS_PER_CODE:
            shown.append(p)
    report = PullReport(
        pull_id=pull_id,
        project=str(project.path),
        started_at=_iso(real_start),
        finished_at="",
        status=status,
        failures=failures,
        n_in=n_in,
        n_out=n_out,
        n_dropped=n_dropped,
        n_duplicates=n_exact,
        n_near_duplicates=n_near,
        n_notices=0,
        n_parcels=0,
        dropped_by_reason=dict(sorted(dropped.items())),
        notes_by_reason=dict(sorted(notes.items())),
        sources=tuple(summaries),
        checks=checks,
        fill_rates=rates,
        previous_pull=previous["pull_id"] if previous else None,
        volume_change=None if volume_change is None else round(volume_change, 4),
        fill_rate_changes=rate_changes,
        duplicates=tuple(duplicates),
        problems=tuple(shown),
        config_sha256=source_list.sha256,
    )
    if dry_run:
        return replace(report, finished_at=_iso(datetime.now(UTC)))
    return _store(project, report, new_notices, new_parcels, outcomes, new_watermarks, names)


def _store(
    project: Project,
    report: PullReport,
    notices: Sequence[IngestedNotice],
    parcels: Sequence[IngestedParcel],
    outcomes: Sequence[_Outcome],
    watermarks: Mapping[str, tuple[str, str]],
    names: Sequence[str],
) -> PullReport:
    """Write a pull in one transaction: its records (when it passed) and its report."""
    ok = report.status == "ok"
    finished = _iso(datetime.now(UTC))
    stored = replace(
        report,
        finished_at=finished,
        n_notices=len(notices) if ok else 0,
        n_parcels=len(parcels) if ok else 0,
    )
    with project.transaction() as con:
        ensure_ingest_tables(con, project.crs)
        if ok:
            if notices:
                project.add_notices(pd.DataFrame([n.store_row() for n in notices]))
                ids = [n.notice_id for n in notices]
                project.add_items(pd.DataFrame({"item": ids, "kind": "notice", "ref": ids}))
            insert_parcels(con, parcels, pull_id=report.pull_id, now=finished)
            con.executemany(
                "INSERT INTO ingest_provenance (pull_id, source, origin, record_kind, record_id, "
                "content_hash, status, canonical_id, similarity, reason, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        report.pull_id,
                        o.source,
                        o.origin,
                        o.kind,
                        o.record_id,
                        o.digest,
                        o.status,
                        o.canonical_id,
                        o.similarity,
                        o.reason,
                        finished,
                    )
                    for o in outcomes
                ],
            )
            con.executemany(
                "INSERT INTO ingest_state (source, field, watermark, pull_id, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                [(s, f, w, report.pull_id, finished) for s, (f, w) in watermarks.items()],
            )
        con.execute(
            "INSERT INTO ingest_pulls (pull_id, started_at, finished_at, status, sources, "
            "config_sha256, n_in, n_out, n_dropped, n_duplicates, report, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                stored.pull_id,
                stored.started_at,
                stored.finished_at,
                stored.status,
                json.dumps(list(names)),
                stored.config_sha256,
                stored.n_in,
                stored.n_notices + stored.n_parcels,
                stored.n_dropped,
                stored.n_duplicates + stored.n_near_duplicates,
                json.dumps(stored.to_dict(), default=str, sort_keys=True),
                finished,
            ),
        )
    return stored
