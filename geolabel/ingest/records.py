"""Typed records that cross the ingest modules: raw records, normalised notices and parcels."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from shapely.geometry.base import BaseGeometry

__all__ = [
    "NOTICE_FIELDS",
    "PARCEL_FIELDS",
    "RECORD_KINDS",
    "IngestedNotice",
    "IngestedParcel",
    "Problem",
    "RawRecord",
    "RecordKind",
]

RecordKind = Literal["notice", "parcel"]
RECORD_KINDS: Final[tuple[str, ...]] = ("notice", "parcel")
"""What a source delivers: municipal notices or parcels."""

NOTICE_FIELDS: Final[tuple[str, ...]] = ("notice_id", "text", "kind", "published", "title")
"""geolabel's notice schema (targets of a field mapping); ``text`` is required."""

PARCEL_FIELDS: Final[tuple[str, ...]] = ("parcel_id", "apn", "address", "geometry")
"""geolabel's parcel schema (targets of a field mapping); ``parcel_id`` and ``geometry`` are
required (``geometry`` may be a WKT column of a table, or the geometry of a vector file)."""


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One record as a source delivered it, before field mapping.

    Attributes:
        fields: Source field name -> value (strings, numbers, None).
        origin: Where it was read, without any URL: ``"notices.csv:12"``,
            ``"socrata page 3 #7"``, ``"pages/N0001.html"``.
        geometry: Its geometry, for vector sources.
        crs: The CRS of ``geometry`` (``"EPSG:4326"``), when the source declared one.
    """

    fields: Mapping[str, Any]
    origin: str
    geometry: BaseGeometry | None = None
    crs: str | None = None


@dataclass(frozen=True, slots=True)
class Problem:
    """Something wrong with one record (dropped) or worth a note (kept).

    Attributes:
        source: The source's name.
        origin: Where the record was read.
        code: Machine-readable reason (``missing_field``, ``short_text``, ``impossible_date``,
            ``future_date``, ``geometry_repaired``, ``geometry_rejected``, ``outside_area``,
            ``id_conflict``...).
        detail: The same for people, naming the field and value.
        record_id: The record's id when it had one.
        dropped: Whether the record was left out because of it.
    """

    source: str
    origin: str
    code: str
    detail: str
    record_id: str | None = None
    dropped: bool = True


@dataclass(frozen=True, slots=True)
class IngestedNotice:
    """A notice in geolabel's schema, cleaned and ready for the ``notices`` table.

    Attributes:
        notice_id: Its id (as the source gave it, cleaned).
        text: The notice text: HTML entities decoded, whitespace tidied, paragraphs kept.
        kind: Notice kind in ``snake_case`` (``building_permit``), if known.
        published: Publication date, ISO 8601 (``2025-01-08``), as a date in the source's
            time zone.
        published_at: The full timestamp with the source's UTC offset, when the source gave a
            time of day (``2025-01-08T09:30:00-08:00``).
        title: Its title, if any.
        source: Name of the source it came from.
        origin: Where in that source (no URL).
        content_hash: SHA-256 of the normalised content (title and text), for exact
            de-duplication.
    """

    notice_id: str
    text: str
    kind: str | None
    published: str | None
    published_at: str | None
    title: str | None
    source: str
    origin: str
    content_hash: str

    def record(self) -> dict[str, Any]:
        """Return the normalised record without provenance (what must agree across sources)."""
        return {
            "notice_id": self.notice_id,
            "text": self.text,
            "kind": self.kind,
            "published": self.published,
            "published_at": self.published_at,
            "title": self.title,
        }

    def store_row(self) -> dict[str, Any]:
        """Return the row for :meth:`geolabel.store.Project.add_notices` (``source`` kept)."""
        row = {k: v for k, v in self.record().items() if v is not None}
        row["source"] = self.source
        return row


@dataclass(frozen=True, slots=True)
class IngestedParcel:
    """A parcel in geolabel's schema, geometry valid and in the project CRS.

    Attributes:
        parcel_id: Its id.
        apn: Assessor's parcel number with only digits and dashes, if given.
        address: The address as given (cleaned).
        address_normalized: The address through the notice linker's normaliser
            (:func:`geolabel.ingest.normalize.normalize_address`), what linking compares.
        geometry: A valid (Multi)Polygon in the project CRS.
        source: Name of the source.
        origin: Where in that source.
        content_hash: SHA-256 of the normalised content (id, APN, address, geometry).
    """

    parcel_id: str
    apn: str | None
    address: str | None
    address_normalized: str | None
    geometry: BaseGeometry = field(compare=False)
    source: str
    origin: str
    content_hash: str

    def record(self) -> dict[str, Any]:
        """Return the normalised record without provenance (geometry as WKT)."""
        return {
            "parcel_id": self.parcel_id,
            "apn": self.apn,
            "address": self.address,
            "address_normalized": self.address_normalized,
            "geometry": self.geometry.wkt,
        }
