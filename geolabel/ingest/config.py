"""The source list: a small TOML or YAML file naming each source, its kind, location and mapping.

Example (``sources.toml``)::

    [qa]
    max_dropped_fraction = 0.2
    min_text_chars = 40

    [[source]]
    name = "city-portal"
    kind = "socrata"
    location = "https://data.example.gov/resource/abcd-1234.json"
    record = "notice"
    timezone = "America/Los_Angeles"
    schedule = "daily"
    incremental = "publish_date"          # a source field: only newer records are pulled
    fields = { notice_id = "notice_number", text = "description", published = "publish_date" }

    [[source]]
    name = "saved-pages"
    kind = "html"
    location = "pages/"                   # relative to this file

The same as YAML has a top-level ``source:`` list and an optional ``qa:`` mapping. Unknown keys
are refused with the list of known ones, so a typo never silently does nothing.
"""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from os import PathLike
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from geolabel.errors import IngestConfigError, InputFileError
from geolabel.ingest.records import NOTICE_FIELDS, PARCEL_FIELDS, RECORD_KINDS

__all__ = [
    "FILE_KINDS",
    "PORTAL_KINDS",
    "SOURCE_KINDS",
    "SourceConfig",
    "SourceList",
    "Thresholds",
    "file_source",
    "load_sources",
]

FILE_KINDS: Final[tuple[str, ...]] = (
    "csv",
    "xlsx",
    "json",
    "jsonl",
    "geojson",
    "gpkg",
    "shapefile",
    "html",
    "feed",
    "text",
)
"""Kinds read from a file or folder (``feed`` is RSS or Atom)."""

PORTAL_KINDS: Final[tuple[str, ...]] = ("socrata", "arcgis", "ckan")
"""Kinds read over HTTP from an open-data portal."""

SOURCE_KINDS: Final[tuple[str, ...]] = ("auto", *FILE_KINDS, *PORTAL_KINDS)
"""Every ``kind`` a source can have (``auto``: from the file suffix)."""

_SUFFIX_KINDS: Final[dict[str, str]] = {
    ".csv": "csv",
    ".tsv": "csv",
    ".xlsx": "xlsx",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".geojson": "geojson",
    ".gpkg": "gpkg",
    ".shp": "shapefile",
    ".zip": "shapefile",
    ".html": "html",
    ".htm": "html",
    ".rss": "feed",
    ".atom": "feed",
    ".xml": "feed",
    ".txt": "text",
}


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Limits that fail a pull before its records reach annotators.

    Fractions are of the records that came in (``n_in``); ``None`` switches a check off.

    Attributes:
        max_dropped_fraction: Records dropped for any reason.
        max_schema_fraction: Records missing a required field or with a value of the wrong type.
        max_short_fraction: Notices with an empty or too-short text.
        max_date_fraction: Records with an impossible date, or dated in the future.
        max_geometry_rejected_fraction: Parcels whose geometry could not be repaired.
        max_outside_fraction: Parcels outside the project area.
        max_duplicate_fraction: Exact and near duplicates (off by default: several sources
            publishing the same notice is normal).
        max_volume_change: Relative change of ``n_in`` against the previous successful pull of
            the same sources (``0.5``: fail when it halves or grows by half); off by default.
        max_fill_rate_drop: Largest drop of a field's fill rate against the previous pull.
        min_text_chars: A notice text shorter than this is "too short" (and dropped).
        near_duplicate_similarity: Jaccard similarity of word shingles at which two notices
            are near duplicates.
        shingle_words: Words per shingle.
        future_days: Days past today (in the source's time zone) a date may be and not count
            as in the future.
    """

    max_dropped_fraction: float | None = 0.2
    max_schema_fraction: float | None = 0.1
    max_short_fraction: float | None = 0.1
    max_date_fraction: float | None = 0.05
    max_geometry_rejected_fraction: float | None = 0.05
    max_outside_fraction: float | None = 0.05
    max_duplicate_fraction: float | None = None
    max_volume_change: float | None = None
    max_fill_rate_drop: float | None = 0.5
    min_text_chars: int = 40
    near_duplicate_similarity: float = 0.75
    shingle_words: int = 5
    future_days: int = 0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise IngestConfigError(
                    f"qa.{f.name} must be a number >= 0 (or left out), got {value!r}."
                )
        if not 0 < self.near_duplicate_similarity <= 1:
            raise IngestConfigError(
                f"qa.near_duplicate_similarity must be in (0, 1], got "
                f"{self.near_duplicate_similarity!r}."
            )
        if int(self.shingle_words) < 1:
            raise IngestConfigError("qa.shingle_words must be at least 1.")


@dataclass(frozen=True, slots=True)
class SourceConfig:
    """One source of notices or parcels.

    Attributes:
        name: Unique name (letters, digits, ``-``, ``_``); provenance and state are kept by it.
        kind: One of :data:`SOURCE_KINDS`.
        location: A file or folder (relative paths are resolved against the config file) or a
            portal URL (Socrata resource ``.json`` URL; ArcGIS layer URL ending in the layer
            number; CKAN site root).
        record: ``notice`` or ``parcel``.
        fields: geolabel field -> source field (the mapping); unmapped geolabel fields are
            looked up under their own name and common aliases.
        values: geolabel field -> {source value: geolabel value} (``kind`` codes...).
        timezone: IANA time zone of the source's dates without an offset.
        dayfirst: Read ``01/02/2025`` as 1 February (day first) rather than 2 January.
        encoding: ``auto`` (UTF-8, else Windows-1252) or a codec name.
        crs: CRS of the source's coordinates when it does not declare one.
        layer: Layer of a GeoPackage (or zipped folder of several shapefiles).
        sheet: Worksheet of an XLSX file (default: the first).
        dataset: CKAN dataset (package) id or name.
        resource_formats: CKAN resource formats to read, in order of preference.
        records_path: Dot path to the list of records in a JSON document (``"data.items"``).
        incremental: Source field whose values grow (a timestamp or an id): a pull only keeps
            records with a value above the previous pull's largest.
        incremental_type: ``timestamp`` or ``id`` (how values of ``incremental`` compare).
        schedule: When to pull (``hourly``, ``daily``, ``weekly``, ``manual`` or a cron line);
            recorded with each pull for the scheduler that runs ``geolabel ingest pull``.
        page_size: Records per portal page (capped by an ArcGIS layer's max record count).
        timeout: Seconds before an HTTP request is abandoned (then retried).
        retries: Retries of a failed request (5xx, 429, timeout, malformed page).
        backoff: Seconds before the first retry, doubled at each retry.
        rate_limit: Most requests per second to the portal.
        user_agent: The ``User-Agent`` header sent.
        app_token_env: Environment variable holding a Socrata app token (never stored).
    """

    name: str
    kind: str
    location: str
    record: str = "notice"
    fields: Mapping[str, str] = field(default_factory=dict)
    values: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    timezone: str = "UTC"
    dayfirst: bool = False
    encoding: str = "auto"
    crs: str | None = None
    layer: str | None = None
    sheet: str | None = None
    dataset: str | None = None
    resource_formats: tuple[str, ...] = ("csv", "geojson", "json")
    records_path: str | None = None
    incremental: str | None = None
    incremental_type: str = "timestamp"
    schedule: str = "manual"
    page_size: int = 1000
    timeout: float = 30.0
    retries: int = 3
    backoff: float = 1.0
    rate_limit: float = 2.0
    user_agent: str = "geolabel-ingest (+https://github.com/geolabel/geolabel)"
    app_token_env: str | None = None

    def __post_init__(self) -> None:
        where = f"source {self.name!r}"
        if not self.name or not all(c.isalnum() or c in "-_." for c in self.name):
            raise IngestConfigError(
                f"source name {self.name!r} is not valid; use letters, digits, '-', '_' or '.'."
            )
        if self.kind not in SOURCE_KINDS:
            raise IngestConfigError(
                f"{where}: unknown kind {self.kind!r}; kinds are: {', '.join(SOURCE_KINDS)}."
            )
        if self.record not in RECORD_KINDS:
            raise IngestConfigError(
                f"{where}: record must be one of {', '.join(RECORD_KINDS)}, got {self.record!r}."
            )
        if not str(self.location).strip():
            raise IngestConfigError(f"{where}: location is empty; give a file, folder or URL.")
        if self.kind in PORTAL_KINDS and not self.location.startswith(("http://", "https://")):
            raise IngestConfigError(
                f"{where}: a {self.kind} source needs an http(s) URL as location, got "
                f"{self.location!r}."
            )
        if self.kind == "ckan" and not self.dataset:
            raise IngestConfigError(f"{where}: a ckan source needs dataset = '<package id>'.")
        allowed = NOTICE_FIELDS if self.record == "notice" else PARCEL_FIELDS
        unknown = sorted(set(self.fields) - set(allowed))
        if unknown:
            raise IngestConfigError(
                f"{where}: fields maps unknown geolabel field(s) {', '.join(unknown)}; "
                f"{self.record} fields are: {', '.join(allowed)}."
            )
        bad = [k for k, v in self.fields.items() if not isinstance(v, str) or not v.strip()]
        if bad:
            raise IngestConfigError(
                f"{where}: fields.{bad[0]} must name a source field (a non-empty string)."
            )
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise IngestConfigError(
                f"{where}: unknown time zone {self.timezone!r}; use an IANA name such as "
                "'America/Los_Angeles' or 'UTC'."
            ) from exc
        if self.incremental_type not in ("timestamp", "id"):
            raise IngestConfigError(
                f"{where}: incremental_type must be 'timestamp' or 'id', got "
                f"{self.incremental_type!r}."
            )
        for name in ("page_size", "retries"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise IngestConfigError(f"{where}: {name} must be a whole number >= 0.")
        if self.page_size < 1:
            raise IngestConfigError(f"{where}: page_size must be at least 1.")
        for name in ("timeout", "backoff", "rate_limit"):
            value = getattr(self, name)
            bad_type = not isinstance(value, int | float) or isinstance(value, bool)
            if bad_type or value < 0 or (value == 0 and name != "backoff"):
                raise IngestConfigError(f"{where}: {name} must be a number > 0.")
        if self.encoding != "auto":
            try:
                "".encode(self.encoding)
            except LookupError as exc:
                raise IngestConfigError(
                    f"{where}: unknown encoding {self.encoding!r}; use 'auto', 'utf-8' or 'cp1252'."
                ) from exc

    @property
    def resolved_kind(self) -> str:
        """The kind, with ``auto`` resolved from the location's suffix (or ``html`` folders).

        Raises:
            IngestConfigError: ``auto`` and the suffix is not one geolabel reads.
        """
        if self.kind != "auto":
            return self.kind
        path = Path(self.location)
        if path.is_dir():
            return "html"
        kind = _SUFFIX_KINDS.get(path.suffix.lower())
        if kind is None:
            raise IngestConfigError(
                f"source {self.name!r}: cannot tell the kind of {self.location!r} from its "
                f"suffix; set kind = one of {', '.join(FILE_KINDS)}."
            )
        return kind


@dataclass(frozen=True, slots=True)
class SourceList:
    """A parsed source list.

    Attributes:
        sources: The sources, in file order.
        thresholds: The QA limits.
        path: The config file (``None`` when built in code).
        sha256: SHA-256 of the config file's bytes (recorded with each pull).
    """

    sources: tuple[SourceConfig, ...]
    thresholds: Thresholds = field(default_factory=Thresholds)
    path: str | None = None
    sha256: str | None = None

    def only(self, names: list[str] | tuple[str, ...]) -> SourceList:
        """Return the list restricted to ``names``.

        Raises:
            IngestConfigError: A name is not in the list (the message lists those there are).
        """
        known = [s.name for s in self.sources]
        missing = [n for n in names if n not in known]
        if missing:
            raise IngestConfigError(
                f"no source named {', '.join(map(repr, missing))} in {self.path or 'the list'}; "
                f"sources: {', '.join(known)}."
            )
        return replace(self, sources=tuple(s for s in self.sources if s.name in names))


_SOURCE_KEYS = {f.name for f in fields(SourceConfig)}
_QA_KEYS = {f.name for f in fields(Thresholds)}


def _source(raw: Any, index: int, base: Path, where: str) -> SourceConfig:
    if not isinstance(raw, Mapping):
        raise IngestConfigError(f"{where}: source #{index + 1} is not a table of settings.")
    unknown = sorted(set(raw) - _SOURCE_KEYS)
    if unknown:
        raise IngestConfigError(
            f"{where}: source #{index + 1} has unknown setting(s) {', '.join(unknown)}; known "
            f"settings: {', '.join(sorted(_SOURCE_KEYS))}."
        )
    for key in ("name", "kind", "location"):
        if key not in raw:
            raise IngestConfigError(f"{where}: source #{index + 1} has no {key!r}.")
    values = dict(raw)
    location = str(values["location"])
    if not location.startswith(("http://", "https://")):
        path = Path(location).expanduser()
        values["location"] = str(path if path.is_absolute() else (base / path))
    if "resource_formats" in values:
        values["resource_formats"] = tuple(str(v).lower() for v in values["resource_formats"])
    for key in ("fields", "values"):
        if key in values and not isinstance(values[key], Mapping):
            raise IngestConfigError(f"{where}: {values['name']}.{key} must be a table.")
    values["kind"] = str(values["kind"]).lower()
    try:
        return SourceConfig(**values)
    except TypeError as exc:  # pragma: no cover - keys are checked above
        raise IngestConfigError(f"{where}: source #{index + 1}: {exc}") from exc


def load_sources(path: str | PathLike[str]) -> SourceList:
    """Read a source list from a TOML (``.toml``) or YAML (``.yaml``/``.yml``) file.

    Args:
        path: The config file.

    Returns:
        The sources and QA thresholds.

    Raises:
        InputFileError: The file is missing or does not parse.
        IngestConfigError: A setting is unknown or wrong, or two sources share a name.
    """
    source = Path(path)
    try:
        raw_bytes = source.read_bytes()
    except FileNotFoundError as exc:
        raise InputFileError(f"source list {source} does not exist; check the path.") from exc
    except OSError as exc:
        raise InputFileError(f"cannot read source list {source}: {exc}") from exc
    suffix = source.suffix.lower()
    try:
        if suffix == ".toml":
            data: Any = tomllib.loads(raw_bytes.decode("utf-8"))
        elif suffix in (".yaml", ".yml"):
            data = yaml.safe_load(raw_bytes.decode("utf-8"))
        else:
            raise IngestConfigError(
                f"{source}: a source list is a .toml or .yaml file, not {suffix or 'no suffix'}."
            )
    except (tomllib.TOMLDecodeError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InputFileError(f"{source} does not parse: {exc}") from exc
    if not isinstance(data, Mapping):
        raise IngestConfigError(f"{source}: expected a table with a 'source' list.")
    unknown = sorted(set(data) - {"source", "qa"})
    if unknown:
        raise IngestConfigError(
            f"{source}: unknown top-level key(s) {', '.join(unknown)}; use 'source' (a list) "
            "and 'qa' (thresholds)."
        )
    raw_sources = data.get("source")
    if not isinstance(raw_sources, list) or not raw_sources:
        raise IngestConfigError(
            f"{source}: no sources; add at least one [[source]] table with name, kind and location."
        )
    qa = data.get("qa") or {}
    if not isinstance(qa, Mapping):
        raise IngestConfigError(f"{source}: 'qa' must be a table of thresholds.")
    bad_qa = sorted(set(qa) - _QA_KEYS)
    if bad_qa:
        raise IngestConfigError(
            f"{source}: unknown qa setting(s) {', '.join(bad_qa)}; known: "
            f"{', '.join(sorted(_QA_KEYS))}."
        )
    base = source.resolve().parent
    sources = tuple(_source(raw, i, base, str(source)) for i, raw in enumerate(raw_sources))
    names = [s.name for s in sources]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise IngestConfigError(
            f"{source}: source name(s) {', '.join(repeated)} appear twice; names must be unique."
        )
    return SourceList(
        sources=sources,
        thresholds=Thresholds(**qa),
        path=str(source),
        sha256=hashlib.sha256(raw_bytes).hexdigest(),
    )


def file_source(
    path: str | PathLike[str],
    *,
    name: str | None = None,
    kind: str = "auto",
    record: str = "notice",
    **settings: Any,
) -> SourceConfig:
    """Describe one file or folder as a source (what ``geolabel ingest file`` does).

    Args:
        path: The file or folder.
        name: Source name (default: the file name).
        kind: Its kind (default: from the suffix).
        record: ``notice`` or ``parcel``.
        **settings: Any other :class:`SourceConfig` setting (``fields``, ``timezone``...).

    Returns:
        The source.

    Raises:
        InputFileError: The path does not exist.
        IngestConfigError: A setting is wrong.
    """
    location = Path(path)
    if not location.exists():
        raise InputFileError(f"{location} does not exist; check the path.")
    unknown = sorted(set(settings) - _SOURCE_KEYS)
    if unknown:
        raise IngestConfigError(f"unknown source setting(s): {', '.join(unknown)}.")
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in (name or location.name))
    return SourceConfig(name=safe, kind=kind, location=str(location), record=record, **settings)
