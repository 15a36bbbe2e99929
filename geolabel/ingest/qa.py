"""The QA report of a pull: what came in and went out, what was dropped and why, and checks.

Every record that comes in ends up in exactly one place, so ``n_in = n_out + n_dropped +
n_duplicates`` (records older than a source's watermark are not "in": they are counted per
source as ``n_older``). The checks compare fractions of ``n_in`` with the
:class:`~geolabel.ingest.config.Thresholds`; one failing check (or one source that could not
be read) fails the pull, and nothing of it is stored. The report renders as Markdown or HTML,
and as one JSON object (``dataclasses.asdict``).
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Final

from geolabel.ingest.config import Thresholds
from geolabel.ingest.records import Problem

__all__ = [
    "Check",
    "DuplicateCopy",
    "PullReport",
    "SourceSummary",
    "evaluate_checks",
    "fill_rates",
    "render_html",
    "render_markdown",
]

SCHEMA_CODES: Final = frozenset(
    (
        "missing_field",
        "wrong_type",
        "malformed_row",
        "malformed_json",
        "malformed_record",
        "id_conflict",
    )
)
SHORT_CODES: Final = frozenset(("empty_text", "short_text"))
DATE_CODES: Final = frozenset(("impossible_date", "future_date"))
_PROBLEM_ROWS: Final = 50


@dataclass(frozen=True, slots=True)
class SourceSummary:
    """How one source fared in a pull.

    Attributes:
        name: The source.
        kind: Its kind (``csv``, ``socrata``...).
        record: ``notice`` or ``parcel``.
        status: ``ok`` or ``failed``.
        error: Why it failed.
        n_read: Records read (readable or not), after the watermark filter.
        n_older: Records at or below the previous pull's watermark, left out.
        requests: HTTP requests made.
        retries: Each HTTP retry and its reason.
        encodings: Text encodings detected -> number of files.
        watermark_before: The previous pull's largest incremental value.
        watermark_after: This pull's.
        schedule: The source's schedule.
    """

    name: str
    kind: str
    record: str
    status: str
    error: str | None = None
    n_read: int = 0
    n_older: int = 0
    requests: int = 0
    retries: tuple[str, ...] = ()
    encodings: Mapping[str, int] = field(default_factory=dict)
    watermark_before: str | None = None
    watermark_after: str | None = None
    schedule: str = "manual"


@dataclass(frozen=True, slots=True)
class Check:
    """One QA check against its threshold.

    Attributes:
        name: What is checked (``dropped_fraction``...).
        value: The measured value.
        limit: The threshold (``None``: reported only).
        passed: Whether the value is within the limit.
        detail: A sentence for people.
    """

    name: str
    value: float
    limit: float | None
    passed: bool
    detail: str


@dataclass(frozen=True, slots=True)
class DuplicateCopy:
    """A record not stored because it copies another (its provenance is stored).

    Attributes:
        record_id: The copy's id.
        source: Its source.
        origin: Where in the source.
        match: ``exact`` or ``near``.
        canonical_id: The copy kept.
        similarity: 1.0 for exact copies, the shingle Jaccard similarity for near ones.
        stored_before: The kept copy was stored by an earlier pull (or ``init``).
    """

    record_id: str
    source: str
    origin: str
    match: str
    canonical_id: str
    similarity: float
    stored_before: bool


@dataclass(frozen=True, slots=True)
class PullReport:
    """Everything a pull did, for people (Markdown/HTML) and machines (JSON).

    Attributes:
        pull_id: The pull.
        project: The project file.
        started_at: ISO UTC.
        finished_at: ISO UTC.
        status: ``ok`` (stored), ``failed`` (nothing stored) or ``dry-run`` (checked only).
        failures: Why it failed: failing checks and sources.
        n_in: Records that came in.
        n_out: New records that passed (stored when the pull is ``ok``; see ``n_notices``
            and ``n_parcels`` for what was stored).
        n_dropped: Records dropped (see ``dropped_by_reason``).
        n_duplicates: Exact copies.
        n_near_duplicates: Near copies.
        n_notices: Notices stored (0 unless ``ok``).
        n_parcels: Parcels stored (0 unless ``ok``).
        dropped_by_reason: Problem code -> records dropped for it.
        notes_by_reason: Problem code -> records kept with that note (future dates, repaired
            geometries, generated ids).
        sources: One summary per source.
        checks: The QA checks.
        fill_rates: geolabel field -> fraction of normalised records that have it.
        previous_pull: The pull drift is measured against.
        volume_change: Relative change of ``n_in`` against ``previous_pull``.
        fill_rate_changes: Field -> change of fill rate against ``previous_pull``.
        duplicates: The copies found.
        problems: Problems of single records (the first 50 per code).
        config_sha256: SHA-256 of the source list.
    """

    pull_id: str
    project: str
    started_at: str
    finished_at: str
    status: str
    failures: tuple[str, ...]
    n_in: int
    n_out: int
    n_dropped: int
    n_duplicates: int
    n_near_duplicates: int
    n_notices: int
    n_parcels: int
    dropped_by_reason: Mapping[str, int]
    notes_by_reason: Mapping[str, int]
    sources: tuple[SourceSummary, ...]
    checks: tuple[Check, ...]
    fill_rates: Mapping[str, float]
    previous_pull: str | None
    volume_change: float | None
    fill_rate_changes: Mapping[str, float]
    duplicates: tuple[DuplicateCopy, ...]
    problems: tuple[Problem, ...]
    config_sha256: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the pull passed (stored, or would have been stored in a dry run)."""
        return self.status != "failed"

    def to_dict(self) -> dict[str, Any]:
        """The report as plain data (what ``--json`` prints)."""
        return asdict(self)


def fill_rates(records: Sequence[Mapping[str, Any]], fields: Sequence[str]) -> dict[str, float]:
    """Fraction of ``records`` with a non-empty value per field (empty input: no rates)."""
    if not records:
        return {}
    return {
        f: round(sum(r.get(f) not in (None, "") for r in records) / len(records), 4) for f in fields
    }


def _fraction_check(name: str, count: int, n_in: int, limit: float | None, what: str) -> Check:
    value = count / n_in if n_in else 0.0
    passed = limit is None or value <= limit
    limit_text = "no limit" if limit is None else f"limit {limit:.0%}"
    return Check(
        name,
        round(value, 4),
        limit,
        passed,
        f"{count} of {n_in} record(s) {what} ({value:.1%}; {limit_text})",
    )


def evaluate_checks(
    *,
    n_in: int,
    dropped: Counter[str],
    notes: Counter[str],
    n_duplicates: int,
    thresholds: Thresholds,
    volume_change: float | None,
    fill_rate_changes: Mapping[str, float],
    failed_sources: Sequence[str],
) -> tuple[Check, ...]:
    """Compute every QA check of a pull.

    Args:
        n_in: Records in.
        dropped: Dropped records per problem code.
        notes: Kept records per note code.
        n_duplicates: Exact plus near copies.
        thresholds: The limits.
        volume_change: Relative change of ``n_in`` against the previous pull, if any.
        fill_rate_changes: Per field, the change of fill rate against the previous pull.
        failed_sources: Sources that could not be read.

    Returns:
        The checks, in a fixed order.
    """
    every = dropped + notes
    t = thresholds
    checks = [
        Check(
            "sources_read",
            float(len(failed_sources)),
            0.0,
            not failed_sources,
            "every source was read"
            if not failed_sources
            else f"{len(failed_sources)} source(s) failed: {', '.join(failed_sources)}",
        ),
        _fraction_check(
            "dropped_fraction", sum(dropped.values()), n_in, t.max_dropped_fraction, "dropped"
        ),
        _fraction_check(
            "schema_fraction",
            sum(every[c] for c in SCHEMA_CODES),
            n_in,
            t.max_schema_fraction,
            "violate the schema (missing field, wrong type, malformed, id conflict)",
        ),
        _fraction_check(
            "short_text_fraction",
            sum(every[c] for c in SHORT_CODES),
            n_in,
            t.max_short_fraction,
            f"have an empty or too-short text (< {t.min_text_chars} characters)",
        ),
        _fraction_check(
            "date_fraction",
            sum(every[c] for c in DATE_CODES),
            n_in,
            t.max_date_fraction,
            "have an impossible or future date",
        ),
        _fraction_check(
            "geometry_rejected_fraction",
            every["geometry_rejected"],
            n_in,
            t.max_geometry_rejected_fraction,
            f"have a geometry that could not be repaired ({every['geometry_repaired']} repaired)",
        ),
        _fraction_check(
            "outside_area_fraction",
            every["outside_area"],
            n_in,
            t.max_outside_fraction,
            "lie outside the project area",
        ),
        _fraction_check(
            "duplicate_fraction", n_duplicates, n_in, t.max_duplicate_fraction, "are duplicates"
        ),
    ]
    if volume_change is not None:
        limit = t.max_volume_change
        checks.append(
            Check(
                "volume_change",
                round(volume_change, 4),
                limit,
                limit is None or abs(volume_change) <= limit,
                f"records in changed by {volume_change:+.1%} against the previous pull",
            )
        )
    if fill_rate_changes:
        field_name, change = min(fill_rate_changes.items(), key=lambda kv: (kv[1], kv[0]))
        drop = max(0.0, -change)
        limit = t.max_fill_rate_drop
        checks.append(
            Check(
                "fill_rate_drop",
                round(drop, 4),
                limit,
                limit is None or drop <= limit,
                f"largest fill-rate drop: {field_name!r} {change:+.1%} against the previous pull",
            )
        )
    return tuple(checks)


def _md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    def cell(v: Any) -> str:
        return str("" if v is None else v).replace("|", "\\|").replace("\n", " ")

    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out.extend("| " + " | ".join(cell(v) for v in row) + " |" for row in rows)
    return out


def _sections(report: PullReport) -> list[tuple[str, list[str], list[list[Any]]]]:
    summary: list[list[Any]] = [
        ["status", report.status],
        ["records in", report.n_in],
        ["records out (stored)", report.n_out],
        ["dropped", report.n_dropped],
        ["exact duplicates", report.n_duplicates],
        ["near duplicates", report.n_near_duplicates],
        ["notices stored", report.n_notices],
        ["parcels stored", report.n_parcels],
    ]
    sources = [
        [
            s.name,
            s.kind,
            s.status,
            s.n_read,
            s.n_older,
            s.requests,
            len(s.retries),
            ", ".join(f"{k} ({v})" for k, v in sorted(s.encodings.items())),
            s.watermark_after,
            s.error,
        ]
        for s in report.sources
    ]
    checks = [
        ["PASS" if c.passed else "FAIL", c.name, c.value, c.limit, c.detail] for c in report.checks
    ]
    reasons = [[code, "dropped", n] for code, n in sorted(report.dropped_by_reason.items())] + [
        [code, "kept, noted", n] for code, n in sorted(report.notes_by_reason.items())
    ]
    retries = [[s.name, r] for s in report.sources for r in s.retries]
    drift = [["volume change", report.volume_change]] + [
        [f"fill rate {k}", f"{report.fill_rates.get(k)} ({v:+.3f})"]
        for k, v in sorted(report.fill_rate_changes.items())
    ]
    duplicates = [
        [d.record_id, d.source, d.origin, d.match, d.canonical_id, d.similarity, d.stored_before]
        for d in report.duplicates
    ]
    problems = [
        [p.code, p.source, p.origin, p.record_id, "dropped" if p.dropped else "kept", p.detail]
        for p in report.problems
    ]
    return [
        ("Summary", ["", "value"], summary),
        ("Checks", ["result", "check", "value", "limit", "detail"], checks),
        (
            "Sources",
            [
                "source",
                "kind",
                "status",
                "read",
                "older",
                "requests",
                "retries",
                "encodings",
                "watermark",
                "error",
            ],
            sources,
        ),
        ("HTTP retries", ["source", "retry"], retries),
        ("Why records were dropped or noted", ["reason", "outcome", "records"], reasons),
        (f"Drift against {report.previous_pull or 'no previous pull'}", ["", "value"], drift),
        (
            "Duplicates",
            ["record", "source", "origin", "match", "kept copy", "similarity", "kept before"],
            duplicates,
        ),
        ("Problems", ["reason", "source", "origin", "record", "outcome", "detail"], problems),
    ]


def render_markdown(report: PullReport) -> str:
    """Render the report as Markdown.

    Args:
        report: The report.

    Returns:
        Markdown text.
    """
    lines = [
        f"# Ingest pull {report.pull_id}: {report.status.upper()}",
        "",
        f"Project `{report.project}`, {report.started_at} to {report.finished_at}.",
    ]
    if report.failures:
        lines += ["", "**Failed:** " + "; ".join(report.failures)]
    for title, header, rows in _sections(report):
        lines += ["", f"## {title}", ""]
        lines += _md_table(header, rows) if rows else ["(none)"]
    return "\n".join(lines) + "\n"


def render_html(report: PullReport) -> str:
    """Render the report as a standalone HTML page.

    Args:
        report: The report.

    Returns:
        HTML text.
    """
    esc = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Ingest pull {esc(report.pull_id)}</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}"
        ".FAIL{color:#b00;font-weight:bold}.PASS{color:#070}</style></head><body>",
        f"<h1>Ingest pull {esc(report.pull_id)}: "
        f'<span class="{"PASS" if report.ok else "FAIL"}">{esc(report.status.upper())}</span></h1>',
        f"<p>Project <code>{esc(report.project)}</code>, {esc(report.started_at)} to "
        f"{esc(report.finished_at)}.</p>",
    ]
    if report.failures:
        parts.append(f'<p class="FAIL">Failed: {esc("; ".join(report.failures))}</p>')
    for title, header, rows in _sections(report):
        parts.append(f"<h2>{esc(title)}</h2>")
        if not rows:
            parts.append("<p>(none)</p>")
            continue
        parts.append("<table><tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr>")
        for row in rows:
            cells = []
            for v in row:
                text = esc(str("" if v is None else v))
                cls = f' class="{text}"' if text in ("PASS", "FAIL") else ""
                cells.append(f"<td{cls}>{text}</td>")
            parts.append("<tr>" + "".join(cells) + "</tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
