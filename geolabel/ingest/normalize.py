r"""Normalisation: source fields mapped to geolabel's schema, text, dates, addresses and geometry.

* **Field mapping.** A source's ``fields`` table says which source field holds each geolabel
  field; a geolabel field it does not map is looked up under its own name and common aliases
  (``body``/``description`` for ``text``...), ignoring case.
* **Text.** HTML entities decoded (``&amp;`` -> ``&``), line ends made ``\\n``, runs of spaces,
  tabs and no-break spaces made one space, each line stripped, more than one blank line made one;
  paragraphs are kept. Short fields (ids, titles, kinds) become one line.
* **Dates** are read as ISO 8601, RFC 822 (feeds), epoch seconds or milliseconds, or
  ``dateutil``'s free forms (``January 8, 2025``; ``01/08/2025`` month first unless the source
  says ``dayfirst``). A time without an offset is in the source's time zone; one with an offset
  is converted to it. ``published`` is the date there; ``published_at`` the timestamp with the
  zone's UTC offset, when the source gave a time of day (a naive midnight, as portals write
  plain dates, is a date). Dates that do not exist (``2025-02-30``) or lie outside 1800-2200 are
  impossible; dates after today in the source's zone are in the future.
* **Addresses** go through :func:`normalize_address`, made of the notice linker's own
  :func:`geolabel.text.linking.parse_address` and :func:`~geolabel.text.linking.normalize_street`,
  so an ingested parcel address compares equal to the same address found in a notice.
* **Geometry** is repaired with ``shapely.make_valid`` (polygonal parts kept), rejected when
  empty, not polygonal or unrepairable, and reprojected to the project CRS.
"""

from __future__ import annotations

import email.utils
import hashlib
import html
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any, Final
from zoneinfo import ZoneInfo

import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from geolabel.errors import IngestConfigError
from geolabel.ingest.config import SourceConfig
from geolabel.ingest.records import IngestedNotice, IngestedParcel, Problem, RawRecord

__all__ = [
    "ALIASES",
    "ParsedDate",
    "clean_line",
    "clean_text",
    "content_hash",
    "normalize_address",
    "normalize_notice",
    "normalize_parcel",
    "parse_date",
    "repair_geometry",
]

ALIASES: Final[dict[str, tuple[str, ...]]] = {
    "notice_id": (
        "notice_id",
        "id",
        "notice_number",
        "identifier",
        "guid",
        "objectid",
        "meta:notice-id",
        "meta:notice_id",
        "page",
    ),
    "text": ("text", "body", "description", "content", "notice_text", "summary"),
    "kind": ("kind", "type", "notice_type", "category", "meta:notice-kind", "meta:notice_kind"),
    "published": (
        "published",
        "published_date",
        "publish_date",
        "date",
        "pubdate",
        "published_at",
        "updated",
    ),
    "title": ("title", "subject", "headline", "name"),
    "parcel_id": ("parcel_id", "parcel", "pin", "id", "objectid"),
    "apn": ("apn", "assessor_parcel_number", "parcel_number"),
    "address": ("address", "situs_address", "site_address", "full_address", "situs"),
    "geometry": ("geometry", "wkt", "geom", "the_geom", "shape"),
}
"""Source field names tried, in order, for a geolabel field the mapping leaves out."""

_SPACES: Final = re.compile(r"[ \t\f\v\u00a0\u2000-\u200b\u202f\u3000]+")
_CONTROL: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_BLANK_LINES: Final = re.compile(r"\n{3,}")
_NON_WORD: Final = re.compile(r"\W+")
_APN: Final = re.compile(r"[^0-9A-Za-z-]")
_MIN_YEAR, _MAX_YEAR = 1800, 2200


def clean_text(value: str) -> str:
    """Tidy a notice text: entities decoded, spaces collapsed, lines stripped, paragraphs kept.

    Args:
        value: The text as the source gave it.

    Returns:
        The clean text (``clean_text(clean_text(x)) == clean_text(x)``).
    """
    text = html.unescape(value).replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text)
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def clean_line(value: object) -> str | None:
    """Tidy a short field (id, title, kind...) to one line; blank -> None."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = _SPACES.sub(" ", clean_text(str(value)).replace("\n", " ")).strip()
    return text or None


def content_hash(*parts: str | None) -> str:
    """SHA-256 of parts compared case- and punctuation-blind (what makes an exact duplicate)."""
    canon = "\x1f".join(_NON_WORD.sub(" ", (p or "").casefold()).strip() for p in parts)
    return hashlib.sha256(canon.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class ParsedDate:
    """A date read from a source.

    Attributes:
        date: ISO date in the source's time zone.
        timestamp: ISO timestamp with the zone's UTC offset, or None for a plain date.
    """

    date: str
    timestamp: str | None


def _from_epoch(value: float, tz: ZoneInfo) -> datetime:
    seconds = value / 1000.0 if abs(value) >= 1e11 else value
    return datetime.fromtimestamp(seconds, tz=UTC).astimezone(tz)


def _parse_any(value: object, tz: ZoneInfo, dayfirst: bool) -> date | datetime:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a date")
    if isinstance(value, int | float):
        if isinstance(value, float) and math.isnan(value):
            raise ValueError("not a number")
        if abs(value) < 1e8:
            raise ValueError(f"{value!r} is a number, not a date")
        return _from_epoch(float(value), tz)
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return value
    text = str(value).strip()
    if re.fullmatch(r"-?\d{10}(\d{3})?(\.\d+)?", text):
        return _from_epoch(float(text), tz)
    if re.fullmatch(r"\d{1,7}", text):
        raise ValueError(f"{text!r} is a number, not a date")
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return date.fromisoformat(text)
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        pass
    if re.match(r"^\d{4}-\d{1,2}-\d{1,2}", text):
        raise ValueError(f"{text!r} is not a valid ISO date")
    if "," in text and re.search(r"\d{1,2}:\d{2}", text) and re.search(r"[+-]\d{4}|GMT|UT", text):
        try:
            return email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            pass
    from dateutil import parser as date_parser

    sentinel = datetime(1, 1, 1)
    try:
        parsed = date_parser.parse(text, dayfirst=dayfirst, default=sentinel)
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"{text!r} is not a date") from exc
    if parsed.year == 1 and "1" not in text:
        raise ValueError(f"{text!r} has no year")
    has_time = bool(re.search(r"\d{1,2}:\d{2}|\d\s*[ap]\.?m\b", text, re.IGNORECASE))
    return parsed if has_time else parsed.date()


def parse_date(value: object, timezone: str = "UTC", *, dayfirst: bool = False) -> ParsedDate:
    """Read a date or timestamp and express it in the source's time zone.

    Args:
        value: The source's value (text, epoch number, ``datetime``).
        timezone: IANA zone of values without an offset, and of the result.
        dayfirst: Read ``01/02/2025`` as 1 February.

    Returns:
        The date (and timestamp when a time of day was given).

    Raises:
        ValueError: The value is not a date, or an impossible one (``2025-02-30``, year 3025).
    """
    tz = ZoneInfo(timezone)
    parsed = _parse_any(value, tz, dayfirst)
    if isinstance(parsed, datetime):
        if parsed.tzinfo is None:
            midnight = parsed.time() == time(0, 0)
            parsed = parsed.date() if midnight else parsed.replace(tzinfo=tz)
        else:
            parsed = parsed.astimezone(tz)
    day = parsed.date() if isinstance(parsed, datetime) else parsed
    if not _MIN_YEAR <= day.year <= _MAX_YEAR:
        raise ValueError(f"{value!r} is in the year {day.year}, outside {_MIN_YEAR}-{_MAX_YEAR}")
    stamp = parsed.isoformat(timespec="seconds") if isinstance(parsed, datetime) else None
    return ParsedDate(day.isoformat(), stamp)


def normalize_address(text: str) -> str:
    """Normalise an address the way the notice linker compares addresses.

    House numbers are kept (a range as ``22-28``, a pair as ``15 17``), the street goes through
    :func:`geolabel.text.linking.normalize_street`; intersections and segments are normalised
    street by street.

    Args:
        text: The address as written (``"1420 N. Oak St."``).

    Returns:
        The normalised address (``"1420 north oak street"``).
    """
    from geolabel.text.linking import normalize_street, parse_address

    parsed = parse_address(text)
    streets = [normalize_street(s) for s in parsed.streets]
    if parsed.kind == "number":
        joiner = "-" if parsed.is_range else " "
        numbers = joiner.join(str(n) for n in parsed.numbers)
        return f"{numbers} {streets[0]}".strip()
    if parsed.kind == "hundred_block":
        return f"{parsed.numbers[0]} block of {streets[0]}"
    if parsed.kind == "segment":
        return f"{streets[0]} between {streets[1]} and {streets[2]}"
    if parsed.kind == "intersection":
        return " and ".join(streets)
    return streets[0]


def _lookup(fields: Mapping[str, Any], target: str, config: SourceConfig) -> tuple[Any, str | None]:
    """Return the value of ``target`` and the source field it came from."""
    lower = {str(k).lower(): k for k in fields}
    if target in config.fields:
        name = config.fields[target]
        key = name if name in fields else lower.get(name.lower())
        return (fields[key], str(key)) if key is not None else (None, name)
    present: str | None = None
    for alias in ALIASES.get(target, ()):
        key = lower.get(alias)
        if key is None:
            continue
        if fields[key] not in (None, ""):
            return fields[key], str(key)
        present = present or str(key)
    return (fields[present], present) if present is not None else (None, None)


def _mapped(value: Any, target: str, config: SourceConfig) -> Any:
    table = config.values.get(target)
    if table and value is not None and str(value) in table:
        return table[str(value)]
    return value


def _kind(value: object) -> str | None:
    text = clean_line(value)
    if text is None:
        return None
    return re.sub(r"[^0-9a-z]+", "_", text.lower()).strip("_") or None


def normalize_notice(
    raw: RawRecord, config: SourceConfig, *, today: date, min_text_chars: int = 40
) -> tuple[IngestedNotice | None, list[Problem]]:
    """Map and clean one notice record.

    Args:
        raw: The record as read.
        config: Its source (mapping, value tables, time zone).
        today: Today's date in the source's time zone (later dates are in the future).
        min_text_chars: Shorter texts are too short.

    Returns:
        The notice (None when it was dropped) and its problems (a future date is noted, the
        record kept; a missing or blank text, a too-short text, an impossible date, a text or
        id that is not text are dropped).
    """
    problems: list[Problem] = []
    origin = raw.origin

    def problem(code: str, detail: str, record_id: str | None, dropped: bool = True) -> None:
        problems.append(Problem(config.name, origin, code, detail, record_id, dropped))

    raw_id, _ = _lookup(raw.fields, "notice_id", config)
    notice_id = clean_line(_mapped(raw_id, "notice_id", config))
    raw_text, text_field = _lookup(raw.fields, "text", config)
    if raw_text is None:
        named = config.fields.get("text")
        fields = ", ".join(map(str, raw.fields)) or "none"
        detail = (
            f"{origin}: no field {named!r} (mapped to text); fields: {fields}"
            if named
            else f"{origin}: no text field (tried {', '.join(ALIASES['text'])}); fields: "
            f"{fields}; map one with fields.text"
        )
        problem("missing_field", detail, notice_id)
        return None, problems
    if not isinstance(raw_text, str):
        problem(
            "wrong_type",
            f"{origin}: {text_field!r} is a {type(raw_text).__name__}, not text",
            notice_id,
        )
        return None, problems
    text = clean_text(raw_text)
    if not text:
        problem("empty_text", f"{origin}: {text_field!r} is empty", notice_id)
        return None, problems
    if len(text) < min_text_chars:
        problem(
            "short_text",
            f"{origin}: the text has {len(text)} characters, fewer than {min_text_chars} "
            f"({text[:40]!r})",
            notice_id,
        )
        return None, problems
    title = clean_line(_lookup(raw.fields, "title", config)[0])
    kind = _kind(_mapped(_lookup(raw.fields, "kind", config)[0], "kind", config))
    raw_date, date_field = _lookup(raw.fields, "published", config)
    published = published_at = None
    if raw_date not in (None, ""):
        try:
            parsed = parse_date(raw_date, config.timezone, dayfirst=config.dayfirst)
        except ValueError as exc:
            problem("impossible_date", f"{origin}: {date_field!r}: {exc}", notice_id)
            return None, problems
        published, published_at = parsed.date, parsed.timestamp
        if date.fromisoformat(published) > today:
            problem(
                "future_date",
                f"{origin}: published {published} is after today ({today.isoformat()})",
                notice_id,
                dropped=False,
            )
    hashed = content_hash(title, text)
    if notice_id is None:
        notice_id = f"{config.name}-{hashed[:12]}"
        problem(
            "generated_id",
            f"{origin}: no id field; given {notice_id} from its content",
            notice_id,
            dropped=False,
        )
    notice = IngestedNotice(
        notice_id=notice_id,
        text=text,
        kind=kind,
        published=published,
        published_at=published_at,
        title=title,
        source=config.name,
        origin=origin,
        content_hash=hashed,
    )
    return notice, problems


def repair_geometry(geometry: BaseGeometry | None) -> tuple[BaseGeometry | None, str | None]:
    """Make a parcel geometry a valid (Multi)Polygon.

    Args:
        geometry: The geometry as read.

    Returns:
        The valid geometry (None when rejected) and what was done: ``None`` (already valid),
        ``"repaired: <reason>"`` or ``"rejected: <reason>"``.
    """
    if geometry is None or geometry.is_empty:
        return None, "rejected: the geometry is empty"
    if geometry.geom_type not in ("Polygon", "MultiPolygon"):
        return None, f"rejected: a {geometry.geom_type}, not a polygon"
    if geometry.is_valid:
        return geometry, None
    reason = shapely.is_valid_reason(geometry)
    fixed = shapely.make_valid(geometry)
    polygons = [
        g for g in getattr(fixed, "geoms", [fixed]) if isinstance(g, Polygon | MultiPolygon)
    ]
    parts: list[Polygon] = []
    for g in polygons:
        parts.extend(g.geoms if isinstance(g, MultiPolygon) else [g])
    parts = [p for p in parts if not p.is_empty and p.area > 0]
    if not parts:
        return None, f"rejected: invalid ({reason}) and nothing polygonal is left after repair"
    repaired: BaseGeometry = parts[0] if len(parts) == 1 else MultiPolygon(parts)
    return repaired, f"repaired: {reason}"


_TRANSFORMERS: dict[tuple[str, str], Transformer] = {}


def _reproject(geometry: BaseGeometry, source_crs: str, target_crs: str) -> BaseGeometry:
    key = (source_crs, target_crs)
    if key not in _TRANSFORMERS:
        _TRANSFORMERS[key] = Transformer.from_crs(source_crs, target_crs, always_xy=True)
    transformer = _TRANSFORMERS[key]
    return shapely.transform(geometry, lambda xy: _stack(transformer.transform(xy[:, 0], xy[:, 1])))


def _stack(xy: tuple[Any, Any]) -> Any:
    import numpy as np

    return np.column_stack(xy)


def normalize_parcel(
    raw: RawRecord,
    config: SourceConfig,
    *,
    project_crs: str,
    area: BaseGeometry | None = None,
) -> tuple[IngestedParcel | None, list[Problem]]:
    """Map and clean one parcel record: id, APN, address, geometry in the project CRS.

    Args:
        raw: The record (a vector feature, or a table row with a WKT column).
        config: Its source.
        project_crs: CRS to reproject into.
        area: The project area (in ``project_crs``); parcels that do not intersect it are
            dropped.

    Returns:
        The parcel (None when dropped) and its problems.

    Raises:
        IngestConfigError: The source's or record's CRS is not a valid CRS.
    """
    problems: list[Problem] = []
    origin = raw.origin

    def problem(code: str, detail: str, record_id: str | None, dropped: bool = True) -> None:
        problems.append(Problem(config.name, origin, code, detail, record_id, dropped))

    parcel_id = clean_line(_lookup(raw.fields, "parcel_id", config)[0])
    if parcel_id is None:
        problem(
            "missing_field",
            f"{origin}: no parcel id (map one with fields.parcel_id); fields: "
            f"{', '.join(map(str, raw.fields)) or 'none'}",
            None,
        )
        return None, problems
    geometry = raw.geometry
    crs = raw.crs or config.crs
    if geometry is None:
        wkt, wkt_field = _lookup(raw.fields, "geometry", config)
        if wkt in (None, ""):
            problem("missing_field", f"{origin}: no geometry (or WKT column)", parcel_id)
            return None, problems
        try:
            geometry = shapely.from_wkt(str(wkt))
        except shapely.errors.GEOSException as exc:
            problem("geometry_rejected", f"{origin}: {wkt_field!r} is not WKT ({exc})", parcel_id)
            return None, problems
    if crs is None:
        raise IngestConfigError(
            f"source {config.name!r}: {origin} has coordinates but no CRS; set crs = "
            "'EPSG:....' for this source."
        )
    try:
        same = CRS.from_user_input(crs).equals(CRS.from_user_input(project_crs))
    except CRSError as exc:
        raise IngestConfigError(f"source {config.name!r}: {crs!r} is not a valid CRS.") from exc
    fixed, note = repair_geometry(geometry)
    if fixed is None:
        problem("geometry_rejected", f"{origin}: {note}", parcel_id)
        return None, problems
    if note is not None:
        problem("geometry_repaired", f"{origin}: {note}", parcel_id, dropped=False)
    if not same:
        fixed = _reproject(fixed, crs, project_crs)
    if area is not None and not fixed.intersects(area):
        x, y = fixed.centroid.x, fixed.centroid.y
        problem(
            "outside_area",
            f"{origin}: parcel {parcel_id} (centre {x:.0f}, {y:.0f} in {project_crs}) lies "
            "outside the project area",
            parcel_id,
        )
        return None, problems
    apn_raw = clean_line(_lookup(raw.fields, "apn", config)[0])
    apn = _APN.sub("", apn_raw) or None if apn_raw else None
    address = clean_line(_lookup(raw.fields, "address", config)[0])
    normalized = normalize_address(address) if address else None
    wkt = shapely.to_wkt(shapely.normalize(fixed), rounding_precision=2)
    hashed = hashlib.sha256(
        f"{content_hash(parcel_id, apn, normalized)}\x1f{wkt}".encode()
    ).hexdigest()
    return (
        IngestedParcel(
            parcel_id=parcel_id,
            apn=apn,
            address=address,
            address_normalized=normalized,
            geometry=fixed,
            source=config.name,
            origin=origin,
            content_hash=hashed,
        ),
        problems,
    )


def today_in(timezone: str, now: datetime | None = None) -> date:
    """Today's date in ``timezone`` (``now`` defaults to the current UTC time)."""
    current = now or datetime.now(UTC)
    if current.tzinfo is None:
        current = current.replace(tzinfo=UTC)
    return current.astimezone(ZoneInfo(timezone)).date()
