"""Synthetic municipal notices with exact gold entity spans, written from a sample city.

The generator reads the sample city's parcels and streets and writes public notices of seven
kinds (zoning hearings, planning applications, demolition and building permits, road works,
street closures and tenders). Every notice is built piece by piece by a small text builder that
records the character offsets of each labelled piece as it appends it, so the gold spans are
exact by construction: ``notice.text[e.start:e.end] == e.text`` for every entity, spans never
overlap and are sorted by ``start``. Entities are annotated in ``text`` only, never in ``title``.

Entity conventions (a spaCy NER is trained on them, so they are applied everywhere):

* ``ADDRESS`` -- a house number and street, as one span: ``1420 Oak Street``, abbreviated
  ``1420 Oak St.`` / ``1420 Oak St``, sometimes upper- or lower-cased (``1420 OAK STREET``).
  An intersection is one span from the first street to the second, without the lead-in
  words: in "the intersection of Oak Street and 3rd Avenue" the span is
  ``Oak Street and 3rd Avenue`` (also ``Oak St & 3rd Ave``, ``Oak St. at 3rd Ave.``). A street
  segment is one span including its connector words: ``Elm Road between 3rd Avenue and 7th
  Avenue``, ``Elm Rd. from 3rd Ave. to 7th Ave.``. A bare street name with no house number,
  cross street or segment (a detour route, a street inside a project name) is *not* an
  ``ADDRESS``. Street forms (full or abbreviated, with or without period) are consistent
  within one span.
* ``PARCEL_ID`` -- the identifier only, without its lead-in: in "APN 123-456-789",
  "APN: 123456789" and "Assessor's Parcel No. 123-456-789" the span is the number, with or
  without dashes. A block and lot is one span including both words: ``Block 12, Lot 4``.
* ``DATE`` -- a calendar date in any of the formats ``March 3, 2025``, ``Mar. 3, 2025``,
  ``3 March 2025``, ``2025-03-03``, ``Monday, March 3, 2025``, ``Mon., March 3, 2025`` and
  ``03/03/2025`` (a leading weekday belongs to the span); a clock time (``7:00 PM``,
  ``7 p.m.``, ``19:00``). A *range* is one span covering both ends and the connector but not
  the leading preposition: in "from June 1 to September 30, 2025" the span is
  ``June 1 to September 30, 2025``; in "between 9 a.m. and 4 p.m." it is ``9 a.m. and 4 p.m.``;
  ``9 a.m.–4 p.m.`` is one span. A date and a time next to each other are two spans:
  "on March 3, 2025, at 7:00 PM" gives ``March 3, 2025`` and ``7:00 PM``.
* ``PROJECT`` -- a named project, whole: ``Oak Street Resurfacing Project``,
  ``Riverside Sewer Upgrade Phase 2``, ``Northgate Library Expansion``, ``Northgate Commons``.
  A leading "the" is not part of the span.
* ``ORG`` -- an agency, board or company, whole, without a leading "the":
  ``City Planning Commission``, ``Department of Public Works``, ``Acme Paving Co.``.
* ``ZONING`` -- each zoning code is its own span: "from R-2 to MU-3" gives ``R-2`` and
  ``MU-3``; in "C-1 (Neighborhood Commercial)" the span is ``C-1`` only.

Permit numbers, case numbers, bid numbers, phone numbers, e-mail addresses and people's
names are deliberately left unlabelled.

Ground truth beyond spans: ``Notice.parcel_ids`` lists (sorted) the parcels the notice truly
refers to -- the addressed parcel(s), the parcel of an APN or block/lot, every parcel on a
segment's street whose block lies between the segment's two cross streets, or the corner
parcels of an intersection. ``Notice.streets`` lists the streets the notice locates itself
on: ``(street,)`` for an address, ``(street, from_cross, to_cross)`` for a segment and
``(street_a, street_b)`` for an intersection, in the order they appear in the text.

Example:
    >>> notices = generate_notices(parcels, streets, n=200, seed=0)  # doctest: +SKIP
    >>> write_notices(notices, "data/sample/notices.jsonl")  # doctest: +SKIP
    >>> write_notice_truth(notices, "data/sample/notices_truth.jsonl")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from os import PathLike
from pathlib import Path
from typing import Final, TypeAlias, TypeVar

import numpy as np
import pandas as pd

from geolabel.errors import ColumnError, InputFileError, LabelError

__all__ = [
    "ENTITY_LABELS",
    "NOTICE_KINDS",
    "PARCEL_COLUMNS",
    "STREET_COLUMNS",
    "Notice",
    "NoticeEntity",
    "generate_notices",
    "write_notice_truth",
    "write_notices",
]

ENTITY_LABELS: Final[tuple[str, ...]] = ("ADDRESS", "PARCEL_ID", "DATE", "PROJECT", "ORG", "ZONING")
"""The gold entity labels, in documentation order."""

NOTICE_KINDS: Final[tuple[str, ...]] = (
    "zoning_hearing",
    "planning_application",
    "demolition_permit",
    "building_permit",
    "road_works",
    "street_closure",
    "tender",
)
"""The notice kinds."""

PARCEL_COLUMNS: Final[tuple[str, ...]] = (
    "parcel_id",
    "apn",
    "block",
    "lot",
    "house_number",
    "street",
    "address",
    "cross_from",
    "cross_to",
    "corner",
    "district",
    "land_use",
    "zoning",
)
"""Columns ``generate_notices`` requires in the parcels frame."""

STREET_COLUMNS: Final[tuple[str, ...]] = ("name", "orientation", "order")
"""Columns ``generate_notices`` requires in the streets frame."""

# Share of each kind; counts are rounded by largest remainder so they always sum to n.
_KIND_SHARES: Final[dict[str, float]] = {
    "zoning_hearing": 0.20,
    "planning_application": 0.15,
    "demolition_permit": 0.10,
    "building_permit": 0.15,
    "road_works": 0.15,
    "street_closure": 0.10,
    "tender": 0.15,
}

_APN_RE: Final = re.compile(r"\d{3}-\d{3}-\d{3}")
_PUBLICATION_WINDOW_DAYS: Final = 365

_T = TypeVar("_T")

# --------------------------------------------------------------------------------------------
# Public records
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NoticeEntity:
    """One gold entity span in a notice's text.

    Attributes:
        start: Offset of the first character in ``Notice.text``.
        end: Offset one past the last character (exclusive).
        label: One of :data:`ENTITY_LABELS`.
        text: The covered text, ``notice.text[start:end]``.
    """

    start: int
    end: int
    label: str
    text: str

    def __post_init__(self) -> None:
        if self.label not in ENTITY_LABELS:
            raise LabelError(
                f"unknown entity label {self.label!r}; use one of {', '.join(ENTITY_LABELS)}"
            )
        if not 0 <= self.start < self.end:
            raise LabelError(
                f"entity offsets need 0 <= start < end, got start={self.start}, end={self.end}"
            )
        if len(self.text) != self.end - self.start:
            raise LabelError(
                f"entity text {self.text!r} has length {len(self.text)} but its offsets "
                f"{self.start}:{self.end} span {self.end - self.start} characters"
            )
        if self.text != self.text.strip():
            raise LabelError(
                f"entity text {self.text!r} starts or ends with whitespace; trim the span"
            )


@dataclass(frozen=True)
class Notice:
    """One synthetic municipal notice with its gold annotations.

    Attributes:
        notice_id: ``"N0001"``, ``"N0002"``... in published order.
        kind: One of :data:`NOTICE_KINDS`.
        published: Publication date, ISO ``YYYY-MM-DD``.
        title: Headline shown with the notice (not annotated).
        text: Body of the notice; the entity offsets refer to it.
        entities: Gold spans, sorted by ``start`` and non-overlapping.
        parcel_ids: Sorted ids of the parcels the notice truly refers to.
        streets: Streets the notice locates itself on, in text order.
    """

    notice_id: str
    kind: str
    published: str
    title: str
    text: str
    entities: tuple[NoticeEntity, ...]
    parcel_ids: tuple[str, ...]
    streets: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.kind not in NOTICE_KINDS:
            raise LabelError(
                f"unknown notice kind {self.kind!r}; use one of {', '.join(NOTICE_KINDS)}"
            )
        try:
            date.fromisoformat(self.published)
        except ValueError as exc:
            raise LabelError(
                f"notice {self.notice_id}: published must be an ISO date, got {self.published!r}"
            ) from exc
        previous_end = 0
        for entity in self.entities:
            if self.text[entity.start : entity.end] != entity.text:
                raise LabelError(
                    f"notice {self.notice_id}: entity {entity.text!r} does not match the text "
                    f"at {entity.start}:{entity.end}"
                )
            if entity.start < previous_end:
                raise LabelError(
                    f"notice {self.notice_id}: entity {entity.text!r} at {entity.start} overlaps "
                    "or precedes the previous one; entities must be sorted and disjoint"
                )
            previous_end = entity.end


# --------------------------------------------------------------------------------------------
# Text builder: plain and labelled pieces, offsets tracked as they are appended
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Tag:
    """A labelled piece of text waiting to be placed."""

    label: str
    text: str


_Piece: TypeAlias = str | _Tag


class _TextBuilder:
    """Append plain and labelled pieces, recording each labelled piece's exact offsets."""

    def __init__(self) -> None:
        self._chunks: list[str] = []
        self._length = 0
        self._entities: list[NoticeEntity] = []

    def extend(self, pieces: Iterable[_Piece]) -> None:
        """Append pieces in order.

        A plain piece starting with ``"."`` loses that period when the text already ends with
        one (an abbreviation such as ``St.`` or ``p.m.`` closing a sentence).

        Args:
            pieces: Plain strings and ``_Tag`` pieces.
        """
        for piece in pieces:
            if isinstance(piece, _Tag):
                end = self._length + len(piece.text)
                self._entities.append(NoticeEntity(self._length, end, piece.label, piece.text))
                self._append(piece.text)
            else:
                text = piece
                if text.startswith(".") and self._chunks and self._chunks[-1].endswith("."):
                    text = text[1:]
                self._append(text)

    def _append(self, text: str) -> None:
        if text:
            self._chunks.append(text)
            self._length += len(text)

    def build(self) -> tuple[str, tuple[NoticeEntity, ...]]:
        """Return the text and its entities (``Notice`` checks them against each other)."""
        return "".join(self._chunks), tuple(self._entities)


def _join(parts: Sequence[Sequence[_Piece]], sep: str) -> list[_Piece]:
    """Flatten non-empty parts with ``sep`` between them."""
    out: list[_Piece] = []
    for part in (p for p in parts if p):
        if out:
            out.append(sep)
        out.extend(part)
    return out


def _paragraph(*sentences: Sequence[_Piece]) -> list[_Piece]:
    return _join(sentences, " ")


def _document(*paragraphs: Sequence[_Piece]) -> list[_Piece]:
    return _join(paragraphs, "\n\n")


# --------------------------------------------------------------------------------------------
# Formatting of dates, times and street names
# --------------------------------------------------------------------------------------------

_MONTHS: Final = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_MONTHS_AP: Final = (
    "Jan.",
    "Feb.",
    "March",
    "April",
    "May",
    "June",
    "July",
    "Aug.",
    "Sept.",
    "Oct.",
    "Nov.",
    "Dec.",
)
_DAYS: Final = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_DAYS_SHORT: Final = ("Mon.", "Tue.", "Wed.", "Thu.", "Fri.", "Sat.", "Sun.")
_DATE_STYLES: Final = ("long", "long", "long", "ap", "dmy", "iso", "weekday", "weekday_short", "us")
_RANGE_STYLES: Final = ("long", "long", "ap", "dmy", "iso", "us")
_TIME_STYLES: Final = ("upper", "dots", "short", "short", "24h")


def _format_date(d: date, style: str) -> str:
    """Format a date in one of the styles of :data:`_DATE_STYLES`.

    ``long`` March 3, 2025; ``ap`` Mar. 3, 2025; ``dmy`` 3 March 2025; ``iso`` 2025-03-03;
    ``weekday`` Monday, March 3, 2025; ``weekday_short`` Mon., March 3, 2025; ``us`` 03/03/2025.
    """
    long = f"{_MONTHS[d.month - 1]} {d.day}, {d.year}"
    formats = {
        "long": long,
        "ap": f"{_MONTHS_AP[d.month - 1]} {d.day}, {d.year}",
        "dmy": f"{d.day} {_MONTHS[d.month - 1]} {d.year}",
        "iso": d.isoformat(),
        "weekday": f"{_DAYS[d.weekday()]}, {long}",
        "weekday_short": f"{_DAYS_SHORT[d.weekday()]}, {long}",
        "us": f"{d.month:02d}/{d.day:02d}/{d.year}",
    }
    return formats[style]


def _format_date_range(first: date, last: date, style: str, connector: str) -> str:
    """Format a date range as one span; the first year is elided when both years agree."""
    same_year = first.year == last.year
    if style in ("iso", "us"):
        left = _format_date(first, style)
    elif style == "dmy":
        left = (
            f"{first.day} {_MONTHS[first.month - 1]}" if same_year else _format_date(first, style)
        )
    else:
        months = _MONTHS_AP if style == "ap" else _MONTHS
        left = f"{months[first.month - 1]} {first.day}" if same_year else _format_date(first, style)
    return f"{left}{connector}{_format_date(last, style)}"


def _format_time(hour: int, minute: int, style: str) -> str:
    """Clock time: ``upper`` 7:00 PM, ``dots`` 7:00 p.m., ``short`` 7 p.m., ``24h`` 19:00."""
    if style == "24h":
        return f"{hour:02d}:{minute:02d}"
    h12 = hour % 12 or 12
    if style == "upper":
        return f"{h12}:{minute:02d} {'AM' if hour < 12 else 'PM'}"
    suffix = "a.m." if hour < 12 else "p.m."
    if style == "short" and minute == 0:
        return f"{h12} {suffix}"
    return f"{h12}:{minute:02d} {suffix}"


_SUFFIX_ABBREVIATIONS: Final[dict[str, str]] = {
    "Street": "St",
    "Avenue": "Ave",
    "Road": "Rd",
    "Drive": "Dr",
    "Boulevard": "Blvd",
    "Lane": "Ln",
    "Place": "Pl",
    "Court": "Ct",
    "Parkway": "Pkwy",
    "Terrace": "Ter",
    "Highway": "Hwy",
    "Circle": "Cir",
    "Square": "Sq",
}


def _street_form(name: str, style: str) -> str:
    """Spell a street ``full``, abbreviated with a period (``dot``) or without (``bare``)."""
    head, _, suffix = name.rpartition(" ")
    abbreviation = _SUFFIX_ABBREVIATIONS.get(suffix)
    if style == "full" or not head or abbreviation is None:
        return name
    return f"{head} {abbreviation}{'.' if style == 'dot' else ''}"


def _street_stem(name: str) -> str:
    """Return ``"Oak"`` for ``"Oak Street"``; names with a number keep their suffix."""
    head, _, suffix = name.rpartition(" ")
    if head and suffix in _SUFFIX_ABBREVIATIONS and head.replace(" ", "").isalpha():
        return head
    return name


# --------------------------------------------------------------------------------------------
# Vocabulary
# --------------------------------------------------------------------------------------------

_ZONING_NAMES: Final[dict[str, str]] = {
    "R-1": "Single-Family Residential",
    "R-2": "Two-Family Residential",
    "R-3": "Multi-Family Residential",
    "C-1": "Neighborhood Commercial",
    "C-2": "General Commercial",
    "M-1": "Light Industrial",
    "P": "Public and Institutional",
    "OS": "Open Space",
    "MU-3": "Mixed Use",
}
_REZONE_TARGETS: Final[dict[str, tuple[str, ...]]] = {
    "R-1": ("R-2", "R-2", "R-3"),
    "R-2": ("R-3", "R-3", "MU-3", "R-1"),
    "R-3": ("MU-3", "MU-3", "R-2", "C-1"),
    "C-1": ("C-2", "MU-3", "MU-3"),
    "C-2": ("MU-3", "MU-3", "C-1"),
    "M-1": ("MU-3", "C-2", "C-2"),
    "MU-3": ("C-2", "R-3"),
    "P": ("OS", "MU-3"),
    "OS": ("P",),
}
_REZONE_PURPOSES: Final[dict[str, str]] = {
    "R-1": "return the site to single-family use",
    "R-2": "allow a two-family dwelling on the lot",
    "R-3": "allow construction of a multi-family residential building",
    "C-1": "allow neighborhood-serving retail",
    "C-2": "allow expansion of an existing commercial use",
    "M-1": "allow light industrial use",
    "MU-3": "allow ground-floor retail with apartments above",
    "P": "allow a public facility",
    "OS": "preserve the site as open space",
}
_CURRENT_USES: Final[dict[str, tuple[str, ...]]] = {
    "residential": ("a single-family home", "a duplex", "a small apartment building"),
    "commercial": ("a retail store", "a restaurant", "an office building", "a shopping center"),
    "industrial": ("a warehouse", "a light manufacturing plant", "a vehicle repair yard"),
    "institutional": ("a school", "a place of worship", "a medical clinic", "a branch library"),
    "park": ("a neighborhood park", "a public playground"),
    "water": ("a retention pond",),
    "vacant": ("a vacant lot", "vacant land"),
    "construction": ("an active construction site",),
    "mixed_use": ("a mixed-use building with shops and apartments",),
}
_STRUCTURES: Final[dict[str, tuple[str, ...]]] = {
    "residential": ("single-family dwelling", "detached garage", "two-story duplex"),
    "commercial": ("one-story commercial building", "former restaurant building"),
    "industrial": ("former warehouse", "metal storage building", "one-story industrial building"),
    "institutional": ("former classroom building", "accessory storage building"),
    "vacant": ("fire-damaged dwelling", "vacant two-story house", "abandoned garage"),
    "construction": ("existing foundation and slab", "partially demolished building"),
    "mixed_use": ("two-story mixed-use building",),
}
_VARIANCES: Final = (
    "a reduction of the required rear-yard setback from 25 feet to 15 feet",
    "an increase in the maximum building height from 35 feet to 42 feet",
    "relief from the off-street parking requirement",
    "a reduction of the minimum lot width from 50 feet to 42 feet",
    "a fence height of 8 feet where 6 feet is allowed",
    "a side-yard setback of 3 feet where 5 feet is required",
)
_CONDITIONAL_USES: Final = (
    "a day-care center",
    "a drive-through restaurant",
    "a microbrewery with a tasting room",
    "a veterinary clinic",
    "an automobile repair shop",
    "a place of worship",
    "outdoor dining",
)
# Proposals by zoning family ("R", "C", "MU", "M", "P", "OS"), each with fitting project names.
_DEVELOPMENTS: Final[dict[str, tuple[tuple[str, tuple[str, ...]], ...]]] = {
    "R": (
        (
            "a 24-unit apartment building",
            ("{district} Gateway Apartments", "The Residences at {street}", "{stem} Lofts"),
        ),
        ("six attached townhomes", ("{stem} Place Townhomes", "{district} Commons")),
        ("two single-family homes", ("{stem} Court Homes",)),
    ),
    "C": (
        ("a two-story retail building", ("{stem} Crossing", "{district} Marketplace")),
        ("a 40-room hotel", ("{stem} Hotel", "{district} Inn")),
        ("a 12,000-square-foot medical office building", ("{district} Medical Office Building",)),
    ),
    "MU": (
        (
            "a four-story mixed-use building with 18 apartments over ground-floor retail",
            ("{district} Commons", "{stem} Station Lofts", "The Residences at {street}"),
        ),
        ("a three-story building with offices over shops", ("{stem} Crossing",)),
    ),
    "M": (
        ("a three-story self-storage facility", ("{district} Self Storage",)),
        ("a 30,000-square-foot light industrial building", ("{district} Business Park",)),
    ),
    "P": (("a community health clinic", ("{district} Health Center",)),),
    "OS": (("a public plaza with a pavilion", ("{district} Green",)),),
}
_BUILD_SCOPES: Final[dict[str, tuple[str, ...]]] = {
    "construction": (
        "new construction of a three-story apartment building",
        "new construction of a two-story commercial building",
        "foundation and framing for six townhomes",
    ),
    "vacant": (
        "new construction of a single-family dwelling",
        "new construction of a duplex",
        "site grading and a new retaining wall",
    ),
    "residential": (
        "a second-story addition",
        "an accessory dwelling unit",
        "a kitchen remodel and new rear deck",
    ),
    "commercial": ("a tenant improvement for a new restaurant", "a storefront replacement"),
    "mixed_use": ("interior alterations to ground-floor retail space",),
    "industrial": ("a 5,000-square-foot warehouse addition",),
    "institutional": ("a classroom addition", "an accessible entrance ramp"),
}

_REZONING_BODIES: Final = (
    "City Planning Commission",
    "Planning Commission",
    "City Council",
    "Planning and Zoning Commission",
)
_APPEALS_BODIES: Final = ("Board of Zoning Appeals", "Zoning Board of Adjustment")
_PLANNING_AGENCIES: Final = ("Department of City Planning", "Planning Department")
_BUILDING_AGENCIES: Final = (
    "Department of Building and Safety",
    "Building Division",
    "Department of Buildings",
)
_ROAD_AGENCIES: Final = (
    "Department of Public Works",
    "Public Works Department",
    "Department of Transportation",
    "Streets Division",
)
_WATER_AGENCIES: Final = ("Harbor Water Authority", "Municipal Utilities District")
_PURCHASING: Final = ("Purchasing Division", "Office of Procurement")
_CLERK: Final = "Office of the City Clerk"
_PRESERVATION: Final = "Historic Preservation Commission"
_PARKS: Final = "Parks and Recreation Department"

_PAVING_FIRMS: Final = (
    "Acme Paving Co.",
    "Granite Ridge Construction Inc.",
    "Bayline Asphalt LLC",
    "Pioneer Excavating Inc.",
    "Tri-County Paving Co.",
)
_UTILITY_FIRMS: Final = (
    "Northline Utilities LLC",
    "Delta Pipeline Services Inc.",
    "Cascade Underground Co.",
)
_DEMOLITION_FIRMS: Final = (
    "Keystone Demolition Co.",
    "Ironclad Wrecking LLC",
    "Summit Site Services Inc.",
)
_BUILDERS: Final = (
    "Summit Builders Inc.",
    "Hearthstone Construction LLC",
    "Bluewater Builders Co.",
    "Meridian General Contractors Inc.",
)
_DEVELOPERS: Final = (
    "Oakridge Development LLC",
    "Harborview Properties Inc.",
    "Maple Leaf Holdings LLC",
    "Northgate Partners LP",
    "Riverbend Homes Inc.",
    "Cornerstone Realty Group",
    "Lakeshore Capital LLC",
)
_TRAFFIC_FIRMS: Final = ("Crestview Traffic Control LLC", "SafeLane Traffic Services Inc.")
_PEOPLE: Final = (
    "Maria Delgado",
    "James O'Connor",
    "Priya Raman",
    "Tom and Linda Becker",
    "Samuel Okafor",
    "Grace Liu",
)
_CLERKS: Final = ("Jane Ortiz, City Clerk", "Robert Hale, City Clerk", "A. Nguyen, Deputy Clerk")
_HEARING_PLACES: Final = (
    "in the Council Chambers at City Hall",
    "in Room 204 of City Hall",
    "in the Community Room of the Main Library",
    "in the Council Chambers at City Hall and by videoconference",
)
_HEARING_TIMES: Final = ((18, 0), (18, 30), (19, 0), (9, 0), (10, 0), (13, 30), (14, 0))
_WORK_HOURS: Final = ((7, 0, 17, 0), (8, 0, 16, 0), (9, 0, 15, 30), (7, 30, 16, 30), (20, 0, 5, 0))
_BID_TIMES: Final = ((10, 0), (11, 0), (14, 0), (15, 0))
_CLOSURE_REASONS: Final = (
    "emergency sewer repairs",
    "utility pole replacement",
    "a concrete pour",
    "storm drain installation",
    "gas service work",
    "tree removal",
)
_EVENTS: Final = ("a neighborhood block party", "the annual street fair", "a farmers market")

# Infrastructure projects: (name pattern, agency pool, firm pool, description of the work).
# ``{street}`` is the segment's street and ``{district}`` the district of its parcels.
_SEGMENT_PROJECTS: Final[tuple[tuple[str, tuple[str, ...], tuple[str, ...], str], ...]] = (
    (
        "{street} Resurfacing Project",
        _ROAD_AGENCIES,
        _PAVING_FIRMS,
        "milling and repaving, curb ramp upgrades and new pavement markings",
    ),
    (
        "{street} Pavement Rehabilitation",
        _ROAD_AGENCIES,
        _PAVING_FIRMS,
        "full-depth pavement reconstruction and new curbs and gutters",
    ),
    (
        "{street} Complete Streets Project",
        _ROAD_AGENCIES,
        _PAVING_FIRMS,
        "new sidewalks, protected bike lanes and curb extensions",
    ),
    (
        "{street} Water Main Replacement",
        _WATER_AGENCIES,
        _UTILITY_FIRMS,
        "replacement of about 2,400 feet of 8-inch water main and service connections",
    ),
    (
        "{district} Sewer Upgrade Phase {phase}",
        ("Department of Public Works", *_WATER_AGENCIES),
        _UTILITY_FIRMS,
        "lining of existing sanitary sewer pipes and rehabilitation of manholes",
    ),
    (
        "{district} Stormwater Improvements",
        ("Department of Public Works",),
        _UTILITY_FIRMS,
        "installation of new storm drains, catch basins and bioswales",
    ),
)
_FACILITY_PROJECTS: Final[dict[str, tuple[str, ...]]] = {
    "institutional": (
        "{district} Library Expansion",
        "{district} Community Center Renovation",
        "{district} Fire Station Replacement",
        "{district} Elementary School Roof Replacement",
    ),
    "park": (
        "{district} Park Renovation",
        "{district} Park Playground Replacement",
        "{district} Park Trail Improvements",
    ),
    "water": ("{district} Shoreline Stabilization Project", "{district} Waterfront Seawall Repair"),
}
# Land-use weights for picking the parcel a notice is about (unlisted uses weigh 0.02).
_KIND_LAND_USE_WEIGHTS: Final[dict[str, dict[str, float]]] = {
    "zoning_hearing": {
        "commercial": 3.0,
        "residential": 3.0,
        "mixed_use": 3.0,
        "industrial": 1.0,
        "vacant": 1.0,
        "institutional": 0.3,
    },
    "planning_application": {
        "vacant": 3.0,
        "construction": 2.0,
        "commercial": 2.0,
        "mixed_use": 2.0,
        "residential": 1.5,
        "institutional": 0.5,
        "industrial": 0.5,
    },
    "demolition_permit": {
        "construction": 4.0,
        "vacant": 3.0,
        "industrial": 1.0,
        "commercial": 0.5,
        "residential": 0.5,
    },
    "building_permit": {
        "construction": 4.0,
        "vacant": 2.0,
        "residential": 1.0,
        "commercial": 1.0,
        "mixed_use": 0.5,
        "institutional": 0.3,
    },
    "facility": {"institutional": 3.0, "park": 3.0, "water": 1.0},
}


# --------------------------------------------------------------------------------------------
# The city, validated and indexed
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Parcel:
    parcel_id: str
    apn: str
    block: int
    lot: int
    house_number: int
    street: str
    cross_from: str | None
    cross_to: str | None
    corner: str | None
    district: str
    land_use: str
    zoning: str

    @property
    def address(self) -> str:
        return f"{self.house_number} {self.street}"


@dataclass(frozen=True, slots=True)
class _Segment:
    street: str
    cross_from: str
    cross_to: str
    parcel_ids: tuple[str, ...]
    district: str


@dataclass(frozen=True, slots=True)
class _Intersection:
    street_a: str
    street_b: str
    parcel_ids: tuple[str, ...]
    district: str


@dataclass(frozen=True)
class _City:
    parcels: tuple[_Parcel, ...]
    order: dict[str, int]
    orientation: dict[str, str]
    segments: tuple[_Segment, ...]
    intersections: tuple[_Intersection, ...]
    by_block: dict[tuple[str, str | None, str | None], tuple[_Parcel, ...]]


def _require_columns(frame: pd.DataFrame, required: Sequence[str], name: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise ColumnError(f"{name} must be a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ColumnError(
            f"{name} frame is missing column(s) {', '.join(missing)}; it has "
            f"{', '.join(map(str, frame.columns)) or 'no columns'}. "
            f"Required: {', '.join(required)}"
        )


def _optional_name(value: object) -> str | None:
    """Return a street name, or ``None`` for a missing value (None, NaN, empty string)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if value is pd.NA:
        return None
    text = str(value).strip()
    return text or None


def _load_city(parcels: pd.DataFrame, streets: pd.DataFrame) -> _City:
    """Validate the input frames and index parcels by street segment and intersection."""
    _require_columns(parcels, PARCEL_COLUMNS, "parcels")
    _require_columns(streets, STREET_COLUMNS, "streets")
    if parcels.empty:
        raise ColumnError("parcels frame is empty; the notices need at least one parcel")
    if streets["name"].duplicated().any():
        dupes = sorted(set(streets.loc[streets["name"].duplicated(), "name"].astype(str)))
        raise ColumnError(f"streets.name must be unique; duplicated: {', '.join(dupes[:5])}")
    bad_orientation = sorted(set(streets["orientation"].astype(str)) - {"ns", "ew"})
    if bad_orientation:
        raise ColumnError(
            f"streets.orientation must be 'ns' or 'ew'; found {', '.join(bad_orientation)}"
        )
    try:
        order = {str(n): int(o) for n, o in zip(streets["name"], streets["order"], strict=True)}
    except (TypeError, ValueError) as exc:
        raise ColumnError(f"streets.order must hold integers: {exc}") from exc
    orientation = {
        str(n): str(o) for n, o in zip(streets["name"], streets["orientation"], strict=True)
    }

    records: list[_Parcel] = []
    frame = parcels.sort_values("parcel_id", kind="stable")
    for row in frame[list(PARCEL_COLUMNS)].to_dict("records"):
        pid = str(row["parcel_id"])
        if not _APN_RE.fullmatch(str(row["apn"])):
            raise ColumnError(
                f"parcels.apn of {pid} is {row['apn']!r}; APNs must look like 123-456-789"
            )
        try:
            numbers = {c: int(row[c]) for c in ("block", "lot", "house_number")}
        except (TypeError, ValueError) as exc:
            raise ColumnError(
                f"parcels.block, lot and house_number of {pid} must be integers: {exc}"
            ) from exc
        parcel = _Parcel(
            parcel_id=pid,
            apn=str(row["apn"]),
            block=numbers["block"],
            lot=numbers["lot"],
            house_number=numbers["house_number"],
            street=str(row["street"]),
            cross_from=_optional_name(row["cross_from"]),
            cross_to=_optional_name(row["cross_to"]),
            corner=_optional_name(row["corner"]),
            district=str(row["district"]),
            land_use=str(row["land_use"]),
            zoning=str(row["zoning"]),
        )
        if str(row["address"]) != parcel.address:
            raise ColumnError(
                f"parcels.address of {pid} is {row['address']!r} but house_number and street "
                f"give {parcel.house_number} {parcel.street!r}; make address "
                "f'{house_number} {street}'"
            )
        for column, name in (
            ("street", parcel.street),
            ("cross_from", parcel.cross_from),
            ("cross_to", parcel.cross_to),
            ("corner", parcel.corner),
        ):
            if name is not None and name not in order:
                raise ColumnError(
                    f"parcels.{column} of {pid} is {name!r}, which is not in streets.name; "
                    "every street a parcel names must be a row of the streets frame"
                )
        records.append(parcel)
    if len({p.parcel_id for p in records}) != len(records):
        raise ColumnError("parcels.parcel_id must be unique")

    segments = _index_segments(records, order)
    if not segments:
        raise ColumnError(
            "no street segment could be formed: parcels.cross_from / cross_to must name the "
            "cross streets bounding each parcel's block"
        )
    by_block: dict[tuple[str, str | None, str | None], list[_Parcel]] = {}
    for p in records:
        by_block.setdefault((p.street, p.cross_from, p.cross_to), []).append(p)
    return _City(
        parcels=tuple(records),
        order=order,
        orientation=orientation,
        segments=segments,
        intersections=_index_intersections(records, order),
        by_block={k: tuple(v) for k, v in by_block.items()},
    )


def _index_segments(records: Sequence[_Parcel], order: dict[str, int]) -> tuple[_Segment, ...]:
    """List every street segment of one to three blocks that has parcels on it.

    A parcel on street ``S`` lies on the segment of ``S`` between cross streets ``A`` and ``B``
    when both of its bounding cross streets have an ``order`` within ``[order(A), order(B)]``.
    """
    on_street: dict[str, list[_Parcel]] = {}
    for p in records:
        on_street.setdefault(p.street, []).append(p)
    segments: list[_Segment] = []
    for street in sorted(on_street, key=lambda s: (order[s], s)):
        members = [p for p in on_street[street] if p.cross_from and p.cross_to]
        crosses = sorted(
            {c for p in members for c in (p.cross_from, p.cross_to) if c is not None},
            key=lambda c: (order[c], c),
        )
        for i, first in enumerate(crosses):
            for last in crosses[i + 1 : i + 4]:
                lo, hi = order[first], order[last]
                inside = [
                    p
                    for p in members
                    if p.cross_from is not None
                    and p.cross_to is not None
                    and lo <= min(order[p.cross_from], order[p.cross_to])
                    and max(order[p.cross_from], order[p.cross_to]) <= hi
                ]
                if inside:
                    segments.append(
                        _Segment(
                            street,
                            first,
                            last,
                            tuple(sorted(p.parcel_id for p in inside)),
                            inside[0].district,
                        )
                    )
    return tuple(segments)


def _index_intersections(
    records: Sequence[_Parcel], order: dict[str, int]
) -> tuple[_Intersection, ...]:
    """List every intersection that has corner parcels, with those parcels."""
    corners: dict[tuple[str, str], list[_Parcel]] = {}
    for p in records:
        if p.corner is not None and p.corner != p.street:
            key = tuple(sorted((p.street, p.corner), key=lambda s: (order[s], s)))
            corners.setdefault((key[0], key[1]), []).append(p)
    return tuple(
        _Intersection(a, b, tuple(sorted(p.parcel_id for p in ps)), ps[0].district)
        for (a, b), ps in sorted(corners.items())
    )


# --------------------------------------------------------------------------------------------
# Notice writer
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Draft:
    title: str
    body: list[_Piece]
    parcel_ids: tuple[str, ...]
    streets: tuple[str, ...]


class _Writer:
    """Writes one notice at a time from a city, drawing every choice from one generator."""

    def __init__(self, city: _City, rng: np.random.Generator) -> None:
        self.city = city
        self.rng = rng
        self._weights: dict[str, np.ndarray] = {}

    # ---- randomness --------------------------------------------------------------------
    def pick(self, options: Sequence[_T]) -> _T:
        return options[int(self.rng.integers(len(options)))]

    def chance(self, p: float) -> bool:
        return bool(self.rng.random() < p)

    def between(self, lo: int, hi: int) -> int:
        """Uniform integer in ``[lo, hi]`` (both inclusive)."""
        return int(self.rng.integers(lo, hi + 1))

    def some(self, sentences: Sequence[list[_Piece]], k_max: int) -> list[list[_Piece]]:
        """Up to ``k_max`` of ``sentences``, in random order."""
        k = self.between(0, min(k_max, len(sentences)))
        return [sentences[int(i)] for i in self.rng.permutation(len(sentences))[:k]]

    def parcel(self, kind: str) -> _Parcel:
        """Draw a parcel with the land-use weights of ``kind`` (unlisted uses weigh 0.02)."""
        if kind not in self._weights:
            weights = _KIND_LAND_USE_WEIGHTS[kind]
            w = np.array([weights.get(p.land_use, 0.02) for p in self.city.parcels], dtype=float)
            self._weights[kind] = w / w.sum()
        p = self._weights[kind]
        return self.city.parcels[int(self.rng.choice(len(p), p=p))]

    # ---- labelled pieces -----------------------------------------------------------------
    def case(self, text: str) -> str:
        roll = self.rng.random()
        if roll < 0.08:
            return text.upper()
        if roll < 0.12:
            return text.lower()
        return text

    def street_style(self) -> str:
        return self.pick(("full", "full", "full", "full", "dot", "dot", "bare"))

    def address(self, p: _Parcel) -> _Tag:
        street = _street_form(p.street, self.street_style())
        return _Tag("ADDRESS", self.case(f"{p.house_number} {street}"))

    def intersection(self, a: str, b: str, *, after_of: bool = False) -> _Tag:
        """``Oak Street and 3rd Avenue``; "at" is not used after "the intersection of"."""
        style = self.street_style()
        joiner = self.pick((" and ", " and ", " & ") if after_of else (" and ", " & ", " at "))
        text = f"{_street_form(a, style)}{joiner}{_street_form(b, style)}"
        return _Tag("ADDRESS", self.case(text))

    def segment(self, seg: _Segment) -> _Tag:
        style = self.street_style()
        s, a, b = (_street_form(n, style) for n in (seg.street, seg.cross_from, seg.cross_to))
        text = self.pick((f"{s} between {a} and {b}", f"{s} from {a} to {b}"))
        return _Tag("ADDRESS", self.case(text))

    def apn(self, p: _Parcel) -> list[_Piece]:
        lead = self.pick(
            ("APN ", "APN ", "APN: ", "Assessor's Parcel No. ", "Assessor's Parcel Number ")
        )
        number = p.apn.replace("-", "") if self.chance(0.25) else p.apn
        return [lead, _Tag("PARCEL_ID", number)]

    def block_lot(self, p: _Parcel) -> _Tag:
        return _Tag("PARCEL_ID", f"Block {p.block}, Lot {p.lot}")

    def parcel_ref(self, p: _Parcel) -> list[_Piece]:
        """An address, often with its APN or block and lot, in one of several layouts."""
        layout = self.between(0, 7)
        if layout == 0:
            return [self.address(p)]
        if layout in (1, 2):
            return [self.address(p), " (", *self.apn(p), ")"]
        if layout == 3:
            return [self.address(p), ", ", *self.apn(p)]
        if layout == 4:
            return [self.address(p), " (", self.block_lot(p), ")"]
        if layout == 5:
            return [self.address(p), ", also identified as ", *self.apn(p)]
        if layout == 6:
            return [self.block_lot(p), ", commonly known as ", self.address(p)]
        return [self.address(p), " (", self.block_lot(p), "; ", *self.apn(p), ")"]

    def day(self, d: date, styles: Sequence[str] = _DATE_STYLES) -> _Tag:
        return _Tag("DATE", _format_date(d, self.pick(styles)))

    def clock(self, hour: int, minute: int) -> _Tag:
        return _Tag("DATE", _format_time(hour, minute, self.pick(_TIME_STYLES)))

    def date_range(self, first: date, last: date, *, bare: bool = False) -> list[_Piece]:
        """``["from ", DATE]`` etc.; with ``bare`` no preposition is written."""
        style = self.pick(_RANGE_STYLES)
        if bare:
            lead, connector = "", self.pick((" to ", " through ", "–"))
        else:
            lead, connector = self.pick(
                (("from ", " to "), ("from ", " through "), ("between ", " and "))
            )
        return [lead, _Tag("DATE", _format_date_range(first, last, style, connector))]

    def time_range(self, hours: tuple[int, int, int, int], *, bare: bool = False) -> list[_Piece]:
        style = self.pick(_TIME_STYLES)
        start, end = (
            _format_time(hours[0], hours[1], style),
            _format_time(hours[2], hours[3], style),
        )
        if bare:
            lead, connector = "", self.pick((" to ", "–"))
        else:
            lead, connector = self.pick(
                (("from ", " to "), ("between ", " and "), ("from ", " until "))
            )
        return [lead, _Tag("DATE", f"{start}{connector}{end}")]

    def zoning(self, code: str, *, described: float = 0.4) -> list[_Piece]:
        name = _ZONING_NAMES.get(code)
        if name is not None and self.chance(described):
            return [_Tag("ZONING", code), f" ({name})"]
        return [_Tag("ZONING", code)]

    def applicant(self) -> _Piece:
        if self.chance(0.25):
            return self.pick(_PEOPLE)
        return _Tag("ORG", self.pick(_DEVELOPERS))

    def phone(self) -> str:
        return f"(555) 01{self.between(0, 9)}-{self.between(1000, 9999)}"

    def hearing_when(self, d: date) -> list[_Piece]:
        hour, minute = self.pick(_HEARING_TIMES)
        variant = self.between(0, 2)
        if variant == 0:
            return ["on ", self.day(d), ", at ", self.clock(hour, minute)]
        if variant == 1:
            return ["at ", self.clock(hour, minute), " on ", self.day(d)]
        return ["on ", self.day(d), " at ", self.clock(hour, minute)]

    def boilerplate(
        self,
        deadline: date,
        org: str,
        email: str,
        *,
        hearing: bool,
        comments: bool = True,
        k_max: int = 3,
    ) -> list[list[_Piece]]:
        """Up to ``k_max`` optional legal and contact sentences, in random order."""
        pool: list[list[_Piece]] = [
            [f"For more information, call {self.phone()} or email {email}."],
            ["This notice is published in accordance with the Municipal Code."],
        ]
        if comments:
            pool.append(
                [
                    "Written comments may be submitted to the ",
                    _Tag("ORG", org),
                    " until ",
                    self.day(deadline),
                    ".",
                ]
            )
        if hearing:
            pool += [
                ["All interested persons are invited to attend and be heard."],
                [
                    "Persons who need special accommodations should contact the ",
                    _Tag("ORG", _CLERK),
                    " at least 48 hours before the meeting.",
                ],
                [
                    "If you challenge this action in court, you may be limited to raising only "
                    "those issues raised at the public hearing."
                ],
                ["The staff report will be available one week before the hearing."],
            ]
        else:
            pool.append(
                ["Plans are available for review at City Hall, Room 204, during business hours."]
            )
        return self.some(pool, k_max)

    def sign_off(self, published: date) -> list[_Piece]:
        variant = self.between(0, 4)
        if variant == 0:
            return ["Dated: ", self.day(published)]
        if variant == 1:
            return ["Published: ", self.day(published)]
        if variant == 2:
            return [self.pick(_CLERKS)]
        return []

    def header(self, options: Sequence[str], p_header: float = 0.6) -> list[_Piece]:
        return [self.pick(options)] if self.chance(p_header) else []

    # ---- kinds ---------------------------------------------------------------------------
    def write(self, kind: str, published: date) -> _Draft:
        writers = {
            "zoning_hearing": self.zoning_hearing,
            "planning_application": self.planning_application,
            "demolition_permit": self.demolition_permit,
            "building_permit": self.building_permit,
            "road_works": self.road_works,
            "street_closure": self.street_closure,
            "tender": self.tender,
        }
        return writers[kind](published)

    def zoning_hearing(self, published: date) -> _Draft:
        p = self.parcel("zoning_hearing")
        hearing = _weekday_on_or_after(published + timedelta(days=self.between(12, 40)))
        deadline = _weekday_on_or_after(hearing - timedelta(days=self.between(2, 7)))
        target = self.pick(_REZONE_TARGETS.get(p.zoning, tuple(_ZONING_NAMES)))
        if target == p.zoning:
            target = "MU-3" if p.zoning != "MU-3" else "C-2"
        place = self.pick(_HEARING_PLACES)
        template = self.pick(("rezone", "rezone", "amendment", "variance", "conditional", "pair"))
        parcels = [p]
        email = "planning@cityhall.example.gov"
        extras = self.boilerplate(deadline, self.pick(_PLANNING_AGENCIES), email, hearing=True)
        if template in ("rezone", "pair"):
            body_org = self.pick(_REZONING_BODIES)
            if template == "pair":
                neighbours = [
                    q
                    for q in self.city.by_block[(p.street, p.cross_from, p.cross_to)]
                    if q.parcel_id != p.parcel_id
                    and q.zoning == p.zoning
                    and _KIND_LAND_USE_WEIGHTS["zoning_hearing"].get(q.land_use, 0.0) >= 1.0
                ]
                if neighbours:
                    parcels.append(self.pick(neighbours))
            if len(parcels) == 2:
                subject: list[_Piece] = [
                    "to rezone two parcels, ",
                    *self.parcel_ref(parcels[0]),
                    " and ",
                    *self.parcel_ref(parcels[1]),
                    ", ",
                ]
            else:
                subject = ["to rezone ", *self.parcel_ref(p), " "]
            opening = self.header(
                (
                    "NOTICE OF PUBLIC HEARING",
                    "PUBLIC HEARING NOTICE",
                    "Notice of Public Hearing – Rezoning",
                )
            )
            lead: list[_Piece] = self.pick(
                (
                    [
                        "NOTICE IS HEREBY GIVEN that the ",
                        _Tag("ORG", body_org),
                        " will hold a public hearing ",
                        *self.hearing_when(hearing),
                        f" {place}",
                    ],
                    [
                        "The ",
                        _Tag("ORG", body_org),
                        " will conduct a public hearing ",
                        *self.hearing_when(hearing),
                        f" {place}",
                    ],
                )
            )
            request: list[_Piece] = [
                " to consider a request by ",
                self.applicant(),
                " ",
                *subject,
                "from ",
                *self.zoning(p.zoning),
                " to ",
                *self.zoning(target),
                ".",
            ]
            purpose: list[_Piece] = (
                [f"The change would {_REZONE_PURPOSES.get(target, 'allow a new use')}."]
                if self.chance(0.7)
                else []
            )
            use: list[_Piece] = (
                [f"The site is currently {self.current_use(p)}."] if self.chance(0.5) else []
            )
            body = _document(
                opening,
                _paragraph(lead + request, purpose, use),
                _paragraph(*extras),
                self.sign_off(published),
            )
            title = self.pick(
                (
                    f"Public Hearing: Rezoning of {p.address}",
                    f"Rezoning Request – {p.street}",
                    "Notice of Public Hearing",
                )
            )
        elif template == "amendment":
            body_org = self.pick(("City Council", "City Council", "Planning and Zoning Commission"))
            number = f"{published.year}-{self.between(3, 60):02d}"
            body = _document(
                self.header(("ZONING MAP AMENDMENT", "PUBLIC HEARING – ZONING MAP AMENDMENT")),
                _paragraph(
                    [
                        "The ",
                        _Tag("ORG", body_org),
                        f" will consider Ordinance No. {number}, "
                        "amending the official zoning map to reclassify ",
                        *self.parcel_ref(p),
                        " from ",
                        *self.zoning(p.zoning),
                        " to ",
                        *self.zoning(target),
                        ".",
                    ],
                    ["The hearing will be held ", *self.hearing_when(hearing), f" {place}."],
                    *extras,
                ),
                self.sign_off(published),
            )
            title = f"Ordinance No. {number} – Zoning Map Amendment"
        elif template == "variance":
            body_org = self.pick(_APPEALS_BODIES)
            case_no = f"BZA-{published.year % 100}-{self.between(1, 199):03d}"
            request_v: list[_Piece] = [
                "a request by ",
                self.applicant(),
                f" for {self.pick(_VARIANCES)} in the ",
                *self.zoning(p.zoning, described=0.6),
                " district at ",
                *self.parcel_ref(p),
            ]
            if self.chance(0.5):
                body = _document(
                    [f"Case {case_no}."],
                    _paragraph(
                        [
                            "The ",
                            _Tag("ORG", body_org),
                            " will meet ",
                            *self.hearing_when(hearing),
                            f" {place} to hear ",
                            *request_v,
                            ".",
                        ],
                        *extras,
                    ),
                    self.sign_off(published),
                )
            else:
                body = _document(
                    _paragraph(
                        [
                            "A variance hearing is scheduled ",
                            *self.hearing_when(hearing),
                            " before the ",
                            _Tag("ORG", body_org),
                            ".",
                        ],
                        [f"Case {case_no} concerns ", *request_v, "."],
                        *extras,
                    ),
                    self.sign_off(published),
                )
            title = self.pick((f"Variance Hearing – {p.address}", f"{body_org}: Case {case_no}"))
        else:  # conditional use
            body_org = self.pick(_REZONING_BODIES[:2])
            case_no = f"CUP-{published.year}-{self.between(1, 99):03d}"
            use_name = self.pick(_CONDITIONAL_USES)
            body = _document(
                [
                    f"Case {case_no}: ",
                    self.applicant(),
                    f" requests a conditional use permit to operate {use_name} at ",
                    *self.parcel_ref(p),
                    " in the ",
                    *self.zoning(p.zoning),
                    " zone.",
                ],
                _paragraph(
                    [
                        "Hearing: ",
                        self.day(hearing),
                        ", ",
                        self.clock(*self.pick(_HEARING_TIMES)),
                        f", {place}, before the ",
                        _Tag("ORG", body_org),
                        ".",
                    ],
                    *extras,
                ),
                self.sign_off(published),
            )
            title = f"Conditional Use Permit {case_no}"
        return _Draft(
            title,
            body,
            tuple(sorted(q.parcel_id for q in parcels)),
            tuple(dict.fromkeys(q.street for q in parcels)),
        )

    def development(self, p: _Parcel) -> tuple[str, str]:
        """A proposal that fits the parcel's zoning and a project name that fits the proposal."""
        family = "MU" if p.zoning.startswith("MU") else "OS" if p.zoning == "OS" else p.zoning[:1]
        options = _DEVELOPMENTS.get(family, _DEVELOPMENTS["C"])
        proposal, names = self.pick(options)
        name = self.pick(names).format(
            district=p.district, street=p.street, stem=_street_stem(p.street)
        )
        return proposal, name

    def current_use(self, p: _Parcel) -> str:
        return self.pick(_CURRENT_USES.get(p.land_use, ("a developed lot",)))

    def planning_application(self, published: date) -> _Draft:
        p = self.parcel("planning_application")
        deadline = _weekday_on_or_after(published + timedelta(days=self.between(14, 30)))
        agency = self.pick(_PLANNING_AGENCIES)
        proposal, project = self.development(p)
        file_no = f"PA-{published.year % 100}-{self.between(1, 999):04d}"
        email = "planning@cityhall.example.gov"
        template = self.between(0, 3)
        if template == 0:
            body = _document(
                self.header(("NOTICE OF APPLICATION", "Notice of Development Application")),
                _paragraph(
                    [
                        self.applicant(),
                        " has submitted an application to the ",
                        _Tag("ORG", agency),
                        " for site plan review of ",
                        _Tag("PROJECT", project),
                        f", {proposal} proposed at ",
                        *self.parcel_ref(p),
                        ".",
                    ],
                    ["The site is zoned ", *self.zoning(p.zoning), "."],
                    ["Written comments will be accepted until ", self.day(deadline), "."],
                    *self.boilerplate(
                        deadline, agency, email, hearing=False, comments=False, k_max=2
                    ),
                ),
                self.sign_off(published),
            )
        elif template == 1:
            parcel_line: list[_Piece] = (
                ["Parcel: ", *self.apn(p)] if self.chance(0.6) else ["Parcel: ", self.block_lot(p)]
            )
            lines: list[list[_Piece]] = [
                [f"File No.: {file_no}"],
                ["Applicant: ", self.applicant()],
                ["Project: ", _Tag("PROJECT", project)],
                ["Location: ", self.address(p)],
                parcel_line,
                ["Zoning: ", *self.zoning(p.zoning, described=0.7)],
                [f"Proposal: {proposal[0].upper()}{proposal[1:]}"],
                ["Comment deadline: ", self.day(deadline)],
            ]
            head, tail = lines[:2], lines[2:]
            order = self.rng.permutation(4)  # shuffle the middle lines a little
            tail = [tail[int(i)] for i in order] + tail[4:]
            body = _document(
                [self.pick(("Notice of Application", "NOTICE OF LAND USE APPLICATION"))],
                _join(head + tail, "\n"),
                _paragraph(*self.boilerplate(deadline, agency, email, hearing=False, k_max=2)),
            )
        elif template == 2:
            lots = self.between(2, 4)
            body = _document(
                _paragraph(
                    [
                        self.applicant(),
                        " has applied for a tentative parcel map to divide ",
                        self.block_lot(p),
                        " (",
                        self.address(p),
                        f") into {lots} lots.",
                    ],
                    [
                        "The property is zoned ",
                        *self.zoning(p.zoning, described=0.6),
                        f" and is currently {self.current_use(p)}.",
                    ],
                    [
                        "The ",
                        _Tag("ORG", agency),
                        " will decide the application after ",
                        self.day(deadline),
                        " unless a hearing is requested.",
                    ],
                    *self.boilerplate(deadline, agency, email, hearing=False, k_max=2),
                ),
                self.sign_off(published),
            )
            project = ""
        else:
            meeting = _weekday_on_or_after(published + timedelta(days=self.between(10, 35)))
            commission = self.pick(_REZONING_BODIES[:2])
            body = _document(
                _paragraph(
                    [
                        "The ",
                        _Tag("ORG", commission),
                        " will review ",
                        _Tag("PROJECT", project),
                        " at its regular meeting ",
                        *self.hearing_when(meeting),
                        ".",
                    ],
                    [
                        f"The project proposes {proposal} at ",
                        *self.parcel_ref(p),
                        ", zoned ",
                        *self.zoning(p.zoning),
                        ".",
                    ],
                    ["The applicant is ", self.applicant(), "."],
                    *self.boilerplate(deadline, agency, email, hearing=True, k_max=2),
                ),
                self.sign_off(published),
            )
        title = self.pick(
            (
                f"Notice of Application – {project or p.address}",
                f"Land Use Application {file_no}",
                f"Development Proposal at {p.address}",
            )
        )
        return _Draft(title, body, (p.parcel_id,), (p.street,))

    def demolition_permit(self, published: date) -> _Draft:
        p = self.parcel("demolition_permit")
        structure = self.pick(_STRUCTURES.get(p.land_use, ("existing structure",)))
        agency = self.pick(_BUILDING_AGENCIES)
        firm = self.pick(_DEMOLITION_FIRMS)
        start = _weekday_on_or_after(published + timedelta(days=self.between(10, 30)))
        objection = _weekday_on_or_after(published + timedelta(days=self.between(7, 9)))
        permit = f"D{published.year % 100}-{self.between(100, 9999):04d}"
        email = "permits@cityhall.example.gov"
        template = self.between(0, 2)
        if template == 0:
            body = _document(
                self.header(("NOTICE OF INTENT TO DEMOLISH", "Notice of Intent to Demolish")),
                _paragraph(
                    [
                        _Tag("ORG", firm),
                        " has applied to the ",
                        _Tag("ORG", agency),
                        f" for a permit to demolish the {structure} at ",
                        *self.parcel_ref(p),
                        ".",
                    ],
                    ["Demolition may begin on or after ", self.day(start), "."],
                    *self.some(
                        [
                            [
                                "Work will take place ",
                                *self.time_range(self.pick(_WORK_HOURS[:4])),
                                ", Monday through Friday.",
                            ],
                            ["Asbestos abatement will be completed before demolition begins."],
                            [
                                "Objections must be filed in writing with the ",
                                _Tag("ORG", agency),
                                " by ",
                                self.day(objection),
                                ".",
                            ],
                        ],
                        3,
                    ),
                ),
                self.sign_off(published),
            )
        elif template == 1:
            issued = published - timedelta(days=self.between(0, 6))
            parcel_line: list[_Piece] = (
                ["Parcel: ", *self.apn(p)] if self.chance(0.5) else ["Parcel: ", self.block_lot(p)]
            )
            body = _document(
                [f"Demolition Permit No. {permit}"],
                _join(
                    [
                        ["Issued: ", self.day(issued)],
                        ["Site: ", self.address(p)],
                        parcel_line,
                        [f"Scope: Demolition of {structure}"],
                        ["Contractor: ", _Tag("ORG", firm)],
                        [
                            "Permitted work hours: ",
                            *self.time_range(self.pick(_WORK_HOURS[:4]), bare=True),
                        ],
                    ],
                    "\n",
                ),
                _paragraph(*self.boilerplate(objection, agency, email, hearing=False, k_max=1)),
            )
        else:
            meeting = _weekday_on_or_after(published + timedelta(days=self.between(10, 30)))
            body = _document(
                _paragraph(
                    [
                        "The ",
                        _Tag("ORG", _PRESERVATION),
                        f" will consider a request to demolish the {structure} at ",
                        *self.parcel_ref(p),
                        " ",
                        *self.hearing_when(meeting),
                        f" {self.pick(_HEARING_PLACES)}.",
                    ],
                    [
                        "The building is more than 50 years old and demolition requires review "
                        "under the historic preservation ordinance."
                    ],
                    *self.boilerplate(
                        meeting - timedelta(days=2), _PRESERVATION, email, hearing=True, k_max=2
                    ),
                ),
                self.sign_off(published),
            )
        title = self.pick(
            (
                f"Demolition Permit – {p.address}",
                f"Notice of Demolition: {p.street}",
                f"Demolition Permit {permit}",
            )
        )
        return _Draft(title, body, (p.parcel_id,), (p.street,))

    def building_permit(self, published: date) -> _Draft:
        p = self.parcel("building_permit")
        scope = self.pick(_BUILD_SCOPES.get(p.land_use, ("alterations to an existing building",)))
        agency = self.pick(_BUILDING_AGENCIES)
        builder = self.pick(_BUILDERS)
        permit = f"B{published.year % 100}-{self.between(1000, 99999):05d}"
        issued = published - timedelta(days=self.between(0, 6))
        completion = published + timedelta(days=self.between(90, 540))
        email = "permits@cityhall.example.gov"
        named = p.land_use in ("construction", "vacant") and self.chance(0.7)
        proposal, name = self.development(p)
        if named:  # the scope must fit the project's name
            scope = f"new construction of {proposal}"
        project: list[_Piece] = [", ", _Tag("PROJECT", name), ","] if named else []
        template = self.between(0, 3)
        if template == 0:
            body = _document(
                _paragraph(
                    [
                        f"Building Permit {permit} was issued on ",
                        self.day(issued),
                        " to ",
                        _Tag("ORG", builder),
                        f" for {scope}",
                        *project,
                        " at ",
                        *self.parcel_ref(p),
                        ".",
                    ],
                    [
                        "Construction hours are ",
                        *self.time_range(self.pick(_WORK_HOURS[:4])),
                        ", Monday through Friday.",
                    ],
                    ["Expected completion: ", self.day(completion, _RANGE_STYLES), "."],
                ),
                self.sign_off(published),
            )
        elif template == 1:
            parcel_line: list[_Piece] = (
                ["APN: ", _Tag("PARCEL_ID", p.apn)]
                if self.chance(0.5)
                else ["Legal description: ", self.block_lot(p)]
            )
            lines: list[list[_Piece]] = [
                [f"Permit: {permit}"],
                ["Issued: ", self.day(issued)],
                ["Address: ", self.address(p)],
                parcel_line,
                ["Zoning: ", *self.zoning(p.zoning, described=0.5)],
                [f"Work: {scope[0].upper()}{scope[1:]}"],
                ["Contractor: ", _Tag("ORG", builder)],
            ]
            if named:
                lines.insert(2, ["Project: ", _Tag("PROJECT", name)])
            body = _document(
                [self.pick(("BUILDING PERMIT ISSUED", "Building Permit Notice"))],
                _join(lines, "\n"),
            )
        elif template == 2:
            deadline = _weekday_on_or_after(published + timedelta(days=self.between(10, 21)))
            body = _document(
                _paragraph(
                    [
                        "The ",
                        _Tag("ORG", agency),
                        f" has received plans for {scope}",
                        *project,
                        " at ",
                        *self.parcel_ref(p),
                        ", in the ",
                        *self.zoning(p.zoning, described=0.5),
                        " zone.",
                    ],
                    [
                        "Neighbors may review the plans and submit comments until ",
                        self.day(deadline),
                        ".",
                    ],
                    *self.boilerplate(
                        deadline, agency, email, hearing=False, comments=False, k_max=2
                    ),
                ),
                self.sign_off(published),
            )
        else:
            begin = _weekday_on_or_after(published + timedelta(days=self.between(5, 30)))
            body = _document(
                self.header(("NOTICE OF CONSTRUCTION", "Construction Notice to Neighbors"), 0.8),
                _paragraph(
                    [
                        f"Work on {scope}",
                        *project,
                        " at ",
                        *self.parcel_ref(p),
                        " is scheduled to begin ",
                        self.day(begin),
                        ".",
                    ],
                    ["The general contractor is ", _Tag("ORG", builder), f" (permit {permit})."],
                    [
                        "Work will take place ",
                        *self.time_range(self.pick(_WORK_HOURS[:4])),
                        " on weekdays only.",
                    ],
                    *self.some(
                        [
                            [f"Questions may be directed to the site manager at {self.phone()}."],
                            ["Some on-street parking near the site will be restricted."],
                        ],
                        2,
                    ),
                ),
            )
        title = self.pick(
            (
                f"Building Permit – {p.address}",
                f"Building Permit {permit}",
                f"New Construction at {p.address}",
            )
        )
        return _Draft(title, body, (p.parcel_id,), (p.street,))

    def segment_project(self, seg: _Segment) -> tuple[str, str, str, str]:
        """Return ``(project name, owning agency, firm, description of work)``."""
        pattern, agencies, firms, work = self.pick(_SEGMENT_PROJECTS)
        name = pattern.format(street=seg.street, district=seg.district, phase=self.between(1, 3))
        return name, self.pick(agencies), self.pick(firms), work

    def parallel_street(self, street: str) -> str | None:
        """A street of the same orientation next to ``street``, for detours."""
        same = sorted(
            (
                s
                for s, o in self.city.orientation.items()
                if o == self.city.orientation[street] and s != street
            ),
            key=lambda s: (abs(self.city.order[s] - self.city.order[street]), s),
        )
        return same[0] if same else None

    def road_works(self, published: date) -> _Draft:
        use_intersection = bool(self.city.intersections) and self.chance(0.2)
        start = _weekday_on_or_after(published + timedelta(days=self.between(7, 45)))
        hours = self.pick(_WORK_HOURS)
        if use_intersection:
            crossing = self.pick(self.city.intersections)
            agency = self.pick(_ROAD_AGENCIES)
            project = self.pick(
                ("{d} Traffic Signal Modernization", "{d} Safe Routes to School Project")
            ).format(d=crossing.district)
            after_of = self.chance(0.6)
            where: list[_Piece] = [
                "Traffic signal upgrades at the intersection of "
                if after_of
                else "Traffic signal upgrades at ",
                self.intersection(crossing.street_a, crossing.street_b, after_of=after_of),
            ]
            body = _document(
                _paragraph(
                    [
                        *where,
                        " will begin ",
                        self.day(start),
                        " as part of the ",
                        _Tag("PROJECT", project),
                        ".",
                    ],
                    [
                        "Crews from the ",
                        _Tag("ORG", agency),
                        " will work ",
                        *self.time_range(hours),
                        "; expect lane closures and flaggers.",
                    ],
                    *self.some(
                        [
                            ["Pedestrian crossings will remain open on at least two corners."],
                            [f"Questions: {self.phone()}."],
                        ],
                        2,
                    ),
                ),
            )
            title = f"Signal Work: {crossing.street_a} at {crossing.street_b}"
            return _Draft(title, body, crossing.parcel_ids, (crossing.street_a, crossing.street_b))
        seg = self.pick(self.city.segments)
        project, agency, firm, work = self.segment_project(seg)
        end = start + timedelta(days=self.between(3, 120))
        template = self.between(0, 3)
        closing = self.some(
            [
                ["Expect lane closures and delays; please use alternate routes when possible."],
                ["Driveway access will be maintained for residents and businesses."],
                [f"For updates call {self.phone()} or email publicworks@cityhall.example.gov."],
                ["Schedules may change because of weather."],
            ],
            3,
        )
        if template == 0:
            body = _document(
                _paragraph(
                    [
                        "The ",
                        _Tag("ORG", agency),
                        " advises that the ",
                        _Tag("PROJECT", project),
                        " will take place on ",
                        self.segment(seg),
                        " ",
                        *self.date_range(start, end),
                        ".",
                    ],
                    [f"Work includes {work} and will be performed by ", _Tag("ORG", firm), "."],
                    ["Crews will work ", *self.time_range(hours), " on weekdays."],
                    *closing,
                ),
            )
        elif template == 1:
            body = _document(
                [self.pick(("ROAD WORK AHEAD", "Road Work Advisory", "TRAFFIC ADVISORY"))],
                _paragraph(
                    [
                        _Tag("ORG", firm),
                        " will be working on ",
                        self.segment(seg),
                        " for the ",
                        _Tag("PROJECT", project),
                        ".",
                    ],
                    [
                        "Work is scheduled ",
                        *self.date_range(start, end),
                        ", weekdays ",
                        *self.time_range(hours),
                        ".",
                    ],
                    [f"The work consists of {work}."],
                    *closing,
                ),
            )
        elif template == 2:
            body = _document(
                _join(
                    [
                        ["Project: ", _Tag("PROJECT", project)],
                        ["Location: ", self.segment(seg)],
                        ["Dates: ", *self.date_range(start, end, bare=True)],
                        ["Hours: ", *self.time_range(hours, bare=True)],
                        ["Contractor: ", _Tag("ORG", firm)],
                        ["Contact: ", _Tag("ORG", agency), f", {self.phone()}"],
                    ],
                    "\n",
                ),
                _paragraph(*closing),
            )
        else:
            body = _document(
                _paragraph(
                    [
                        "Starting ",
                        self.day(start),
                        ", crews working for the ",
                        _Tag("ORG", agency),
                        " will begin the ",
                        _Tag("PROJECT", project),
                        " on ",
                        self.segment(seg),
                        ".",
                    ],
                    [f"The project involves {work}."],
                    ["Work is expected to be finished by ", self.day(end), "."],
                    *closing,
                ),
            )
        title = self.pick(
            (f"Road Work: {seg.street}", project, f"Construction Advisory – {seg.street}")
        )
        return _Draft(title, body, seg.parcel_ids, (seg.street, seg.cross_from, seg.cross_to))

    def street_closure(self, published: date) -> _Draft:
        agency = self.pick(_ROAD_AGENCIES)
        day = _weekday_on_or_after(published + timedelta(days=self.between(5, 30)))
        template = self.between(0, 3)
        if template == 1 and self.city.intersections:
            crossing = self.pick(self.city.intersections)
            hours = self.pick(_WORK_HOURS)
            body = _document(
                self.header(("TEMPORARY STREET CLOSURE", "Intersection Closure"), 0.7),
                _paragraph(
                    [
                        "The intersection of ",
                        self.intersection(crossing.street_a, crossing.street_b, after_of=True),
                        " will be fully closed on ",
                        self.day(day),
                        " ",
                        *self.time_range(hours),
                        f" for {self.pick(_CLOSURE_REASONS)}.",
                    ],
                    ["Detour signs will be posted by the ", _Tag("ORG", agency), "."],
                    *self.some(
                        [
                            ["Emergency vehicles will have access at all times."],
                            [f"Questions may be directed to {self.phone()}."],
                        ],
                        2,
                    ),
                ),
            )
            title = f"Intersection Closure: {crossing.street_a} / {crossing.street_b}"
            return _Draft(title, body, crossing.parcel_ids, (crossing.street_a, crossing.street_b))
        seg = self.pick(self.city.segments)
        last = day + timedelta(days=self.between(1, 21))
        detour = self.parallel_street(seg.street)
        detour_sentence: list[_Piece] = (
            [f"Traffic will be detoured via {detour}."] if detour is not None else []
        )
        hours = self.pick(_WORK_HOURS)
        parcel_ids = seg.parcel_ids
        if template == 2:
            # A crane lift at an address on the segment: the address is one of its parcels.
            site_id = self.pick(seg.parcel_ids)
            site = next(p for p in self.city.parcels if p.parcel_id == site_id)
            builder = self.pick(_BUILDERS)
            body = _document(
                _paragraph(
                    [
                        "To allow a crane lift at ",
                        self.address(site),
                        ", ",
                        self.segment(seg),
                        " will be closed to all traffic on ",
                        self.day(day),
                        " ",
                        *self.time_range(hours),
                        ".",
                    ],
                    [
                        "The closure was requested by ",
                        _Tag("ORG", builder),
                        " and approved by the ",
                        _Tag("ORG", agency),
                        ".",
                    ],
                    detour_sentence,
                ),
            )
        elif template == 3:
            event = self.pick(_EVENTS)
            body = _document(
                _paragraph(
                    [
                        f"For {event}, ",
                        self.segment(seg),
                        " will be closed to vehicles on ",
                        self.day(day),
                        " ",
                        *self.time_range((10, 0, 20, 0)),
                        ".",
                    ],
                    ["The event permit was issued by the ", _Tag("ORG", agency), "."],
                    detour_sentence,
                    ["Residents may leave the area at any time with the help of event staff."],
                ),
            )
        else:
            reason = self.pick(_CLOSURE_REASONS)
            body = _document(
                self.header(
                    ("STREET CLOSURE NOTICE", "Temporary Road Closure", "NOTICE OF STREET CLOSURE")
                ),
                _paragraph(
                    [
                        self.segment(seg),
                        " will be closed to through traffic ",
                        *self.date_range(day, last),
                        f" for {reason}.",
                    ],
                    ["The closure will be in effect ", *self.time_range(hours), " each day."],
                    detour_sentence,
                    *self.some(
                        [
                            ["Local access will be maintained."],
                            ["The ", _Tag("ORG", agency), " regrets any inconvenience."],
                            [f"Information: {self.phone()}."],
                        ],
                        2,
                    ),
                ),
            )
        title = self.pick(
            (
                f"Street Closure: {seg.street}",
                f"{seg.street} Closed to Traffic",
                "Temporary Street Closure",
            )
        )
        return _Draft(title, body, parcel_ids, (seg.street, seg.cross_from, seg.cross_to))

    def tender(self, published: date) -> _Draft:
        deadline = _weekday_on_or_after(published + timedelta(days=self.between(14, 45)))
        bid_time = self.pick(_BID_TIMES)
        bid_no = f"{published.year}-{self.between(1, 120):03d}"
        facility_parcels = any(p.land_use in _FACILITY_PROJECTS for p in self.city.parcels)
        template = self.between(0, 3)
        if template == 1 and facility_parcels:
            site = self.parcel("facility")
            pattern = self.pick(
                _FACILITY_PROJECTS.get(site.land_use, ("{district} Facility Upgrade",))
            )
            project = pattern.format(district=site.district)
            owner = _PARKS if site.land_use == "park" else self.pick(_PURCHASING)
            body = _document(
                self.header(("REQUEST FOR PROPOSALS", "Request for Proposals")),
                _paragraph(
                    [
                        "The ",
                        _Tag("ORG", owner),
                        " is seeking proposals from qualified firms for the ",
                        _Tag("PROJECT", project),
                        " at ",
                        *self.parcel_ref(site),
                        ".",
                    ],
                    [
                        "Proposals are due by ",
                        self.clock(*bid_time),
                        " on ",
                        self.day(deadline),
                        ".",
                    ],
                    *self.some(
                        [
                            [f"RFP No. {bid_no} may be downloaded from the city's bid portal."],
                            ["Late proposals will not be accepted."],
                            [
                                "Questions must be submitted in writing at least seven days "
                                "before the due date."
                            ],
                        ],
                        3,
                    ),
                ),
            )
            title = self.pick((f"RFP {bid_no}: {project}", f"Request for Proposals – {project}"))
            return _Draft(title, body, (site.parcel_id,), (site.street,))
        seg = self.pick(self.city.segments)
        project, agency, firm, work = self.segment_project(seg)
        owner = agency if self.chance(0.6) else self.pick(_PURCHASING)
        if template == 3:
            council = self.pick(("City Council", "Board of Public Works"))
            meeting = _weekday_on_or_after(published + timedelta(days=self.between(7, 21)))
            body = _document(
                self.header(("NOTICE OF INTENT TO AWARD", "Notice of Intent to Award")),
                _paragraph(
                    [
                        "The ",
                        _Tag("ORG", owner),
                        " intends to recommend that the ",
                        _Tag("ORG", council),
                        " award the contract for the ",
                        _Tag("PROJECT", project),
                        " to ",
                        _Tag("ORG", firm),
                        ", the lowest responsive bidder, at its meeting on ",
                        self.day(meeting),
                        ".",
                    ],
                    [f"The work consists of {work} on ", self.segment(seg), "."],
                    [
                        "Bid protests must be received by ",
                        self.day(meeting - timedelta(days=3)),
                        ".",
                    ],
                ),
            )
            title = f"Intent to Award: {project}"
        elif template == 2:
            prebid = _weekday_on_or_after(published + timedelta(days=self.between(5, 10)))
            body = _document(
                [f"NOTICE TO CONTRACTORS – Bid No. {bid_no}"],
                _join(
                    [
                        ["Project: ", _Tag("PROJECT", project)],
                        ["Owner: ", _Tag("ORG", owner)],
                        ["Location: ", self.segment(seg)],
                        ["Bid deadline: ", self.day(deadline), ", ", self.clock(*bid_time)],
                        ["Pre-bid meeting: ", self.day(prebid), ", ", self.clock(10, 0)],
                        [f"Scope: {work[0].upper()}{work[1:]}"],
                    ],
                    "\n",
                ),
                _paragraph(
                    ["A bid bond of 5% of the bid amount is required."],
                    ["The Owner reserves the right to reject any or all bids."],
                ),
            )
            title = f"Notice to Contractors: {project}"
        else:
            body = _document(
                self.header(("INVITATION TO BID", "Invitation for Bids", "ADVERTISEMENT FOR BIDS")),
                _paragraph(
                    [
                        "Sealed bids for the ",
                        _Tag("PROJECT", project),
                        " will be received by the ",
                        _Tag("ORG", owner),
                        " until ",
                        self.clock(*bid_time),
                        " on ",
                        self.day(deadline),
                        ", and then publicly opened and read aloud.",
                    ],
                    [f"The work consists of {work} on ", self.segment(seg), "."],
                    *self.some(
                        [
                            ["Each bid must be accompanied by a bid bond of 10%."],
                            ["Prevailing wage rates apply to this project."],
                            [
                                f"Bid documents (Bid No. {bid_no}) are available from the ",
                                _Tag("ORG", self.pick(_PURCHASING)),
                                ".",
                            ],
                            ["The City reserves the right to reject any or all bids."],
                        ],
                        3,
                    ),
                ),
                self.sign_off(published),
            )
            title = self.pick((f"Invitation to Bid: {project}", f"Bid No. {bid_no} – {project}"))
        return _Draft(title, body, seg.parcel_ids, (seg.street, seg.cross_from, seg.cross_to))


def _weekday_on_or_after(d: date) -> date:
    """Move a Saturday or Sunday forward to the next Monday."""
    return d + timedelta(days=max(0, 7 - d.weekday())) if d.weekday() >= 5 else d


def _kind_counts(n: int) -> dict[str, int]:
    """Split ``n`` over the kinds by :data:`_KIND_SHARES` with largest-remainder rounding.

    Each kind first gets ``floor(n * share)``; the ``n - sum`` notices left over go one each
    to the kinds with the largest fractional parts (ties to the earlier kind).
    """
    raw = {kind: n * share for kind, share in _KIND_SHARES.items()}
    counts = {kind: math.floor(value) for kind, value in raw.items()}
    left = n - sum(counts.values())
    by_remainder = sorted(_KIND_SHARES, key=lambda k: -(raw[k] - counts[k]))
    for kind in by_remainder[:left]:
        counts[kind] += 1
    return counts


# --------------------------------------------------------------------------------------------
# Public functions
# --------------------------------------------------------------------------------------------


def generate_notices(
    parcels: pd.DataFrame,
    streets: pd.DataFrame,
    n: int = 200,
    *,
    seed: int = 0,
    start_date: str = "2025-01-06",
) -> list[Notice]:
    """Write ``n`` municipal notices about a sample city, with gold entities and parcels.

    Kinds are mixed by fixed shares (zoning 20%, planning 15%, demolition 10%, building 15%,
    road works 15%, closures 10%, tenders 15%), rounded by largest remainder so the counts sum
    to ``n``. Publication dates are weekdays drawn over the year from ``start_date``; notice ids
    follow publication order. Each notice draws its parcel with land-use weights that keep it
    plausible (rezonings around residential, commercial and mixed-use parcels, demolition and
    building permits on construction and vacant parcels, road works on street segments).
    The output depends only on the inputs and ``seed``, not on the row order of the frames.

    Args:
        parcels: One row per parcel with the columns in :data:`PARCEL_COLUMNS`. ``corner``,
            ``cross_from`` and ``cross_to`` may be missing (None/NaN) at the city edge;
            every street they name must be a row of ``streets``.
        streets: One row per street with the columns in :data:`STREET_COLUMNS`.
        n: Number of notices.
        seed: Seed of the ``numpy.random.default_rng`` drawing every choice.
        start_date: ISO date of the first day notices may be published.

    Returns:
        The notices, sorted by publication date.

    Raises:
        ColumnError: A frame lacks a required column, is empty, holds an unknown street, a
            malformed APN, an address that disagrees with ``house_number`` and ``street``, or
            no street segment can be formed from ``cross_from``/``cross_to``.
        ValueError: ``n`` is negative or ``start_date`` is not an ISO date.
    """
    if n < 0:
        raise ValueError(f"n must be zero or positive, got {n}")
    try:
        first_day = date.fromisoformat(start_date)
    except ValueError as exc:
        raise ValueError(
            f"start_date must be an ISO date like 2025-01-06, got {start_date!r}"
        ) from exc
    city = _load_city(parcels, streets)
    rng = np.random.default_rng(seed)

    kinds = [kind for kind, count in _kind_counts(n).items() for _ in range(count)]
    kinds = [kinds[int(i)] for i in rng.permutation(len(kinds))]
    offsets = np.sort(rng.integers(0, _PUBLICATION_WINDOW_DAYS, size=n))
    days = [_weekday_on_or_after(first_day + timedelta(days=int(o))) for o in offsets]

    writer = _Writer(city, rng)
    notices: list[Notice] = []
    for index, (kind, published) in enumerate(zip(kinds, days, strict=True), start=1):
        draft = writer.write(kind, published)
        builder = _TextBuilder()
        builder.extend(draft.body)
        text, entities = builder.build()
        notices.append(
            Notice(
                notice_id=f"N{index:04d}",
                kind=kind,
                published=published.isoformat(),
                title=draft.title,
                text=text,
                entities=entities,
                parcel_ids=draft.parcel_ids,
                streets=draft.streets,
            )
        )
    return notices


def _write_jsonl(records: Iterable[dict[str, object]], path: str | PathLike[str]) -> None:
    target = Path(path)
    try:
        with target.open("w", encoding="utf-8", newline="\n") as handle:
            for record in records:
                handle.write(json.dumps(record, ensure_ascii=False, sort_keys=True))
                handle.write("\n")
    except OSError as exc:
        raise InputFileError(
            f"cannot write {target}: {exc.strerror or exc}; check that the folder exists and "
            "is writable"
        ) from exc


def write_notices(notices: Iterable[Notice], path: str | PathLike[str]) -> None:
    """Write the public part of the notices as JSON Lines.

    One object per line with the keys ``kind``, ``notice_id``, ``published``, ``text`` and
    ``title`` (sorted), UTF-8 without escaping, newline line endings: the same notices always
    give the same bytes. Entities and parcel ids are not written; see
    :func:`write_notice_truth`.

    Args:
        notices: Notices from :func:`generate_notices`.
        path: File to create or overwrite.

    Raises:
        InputFileError: The file cannot be written.
    """
    _write_jsonl(
        (
            {
                "notice_id": x.notice_id,
                "kind": x.kind,
                "published": x.published,
                "title": x.title,
                "text": x.text,
            }
            for x in notices
        ),
        path,
    )


def write_notice_truth(notices: Iterable[Notice], path: str | PathLike[str]) -> None:
    """Write the gold annotations of the notices as JSON Lines.

    One object per line with the keys ``entities`` (a list of ``{end, label, start, text}``
    in text order), ``notice_id`` and ``parcel_ids``, sorted, UTF-8 without escaping and
    newline (LF) line endings.

    Args:
        notices: Notices from :func:`generate_notices`.
        path: File to create or overwrite.

    Raises:
        InputFileError: The file cannot be written.
    """
    _write_jsonl(
        (
            {
                "notice_id": x.notice_id,
                "entities": [
                    {"start": e.start, "end": e.end, "label": e.label, "text": e.text}
                    for e in x.entities
                ],
                "parcel_ids": list(x.parcel_ids),
            }
            for x in notices
        ),
        path,
    )
