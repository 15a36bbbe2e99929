"""Token patterns for what has a form in a notice: dates, parcel ids, zoning codes, addresses.

The patterns are built here from small vocabularies (street suffixes, month names, lead-in
words) and written to ``geolabel/text/resources/notice_patterns.jsonl`` as spaCy
``span_ruler`` patterns, one JSON object per line (``{"label", "pattern", "id"}``). The JSONL
file is what a pipeline loads, in ``initialize`` (see :mod:`geolabel.text.pipeline`);
``python -m geolabel.text.patterns`` regenerates it and ``tests/test_text_patterns.py``
checks that the committed file is current.

Labels follow the sample's entity conventions (``geolabel/synth/notices.py``):

* ``DATE`` -- ``March 3, 2025``, ``Mar. 3, 2025``, ``3 March 2025``, ``Monday, March 3,
  2025``, ``2025-03-03``, ``03/03/2025``, ``June 2025``; clock times ``7:00 PM``, ``7 p.m.``,
  ``19:00``, ``noon``; ranges become one span (``June 1 to September 30, 2025``, ``June
  1–30, 2025``, ``9 a.m.–4 p.m.``, ``9 a.m. and 4 p.m.`` after *between*): the precedence
  filter joins two dates across a connector.
* ``PARCEL_ID`` -- ``123-456-789`` anywhere; other numbers (``123456789``, ``1234-567-89``,
  UPRNs) only when announced (``APN``, ``Assessor's Parcel No.``, ``Parcel Number``, ``UPRN``);
  ``Block 12, Lot 4``, ``Lot 4, Block 12``, ``Lots 4 and 5, Block 12`` (a lot alone is not
  taken: "Lot 1" of a tender is a contract lot).
* ``ZONING`` -- hyphenated codes anywhere (``R-2``, ``MU-3``, ``C-1``); bare codes (``P``,
  ``OS``, ``R2``) only after *zoned*/*zone*/*zoning* or between *from* and *to*; named
  designations (``Green Belt``, ``Mill Lane Conservation Area``).
* ``ADDRESS`` -- a house number and a street with a suffix (``1420 Oak Street``,
  ``14a Mill Lane``, ``1420 N. Main St.``), an intersection of two streets (``Oak Street and
  3rd Avenue``, ``Oak St & 3rd Ave``, ``Main St/5th Ave``), a segment (``Elm Road between 3rd
  and 7th Street``, ``Elm Rd. from 3rd Ave. to 7th Ave.``) and a hundred block (``400 block
  of Elm Street``).

Some patterns need the words that announce an entity (``APN``, ``zoned``, ``between``) to be
safe, but the conventions leave those words out of the span: the precedence filter
(:func:`geolabel.text.pipeline.rules_over_model`) trims the words listed in
:data:`LEAD_WORDS` and :data:`TRAIL_WORDS` from the ends of every rule span.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from os import PathLike
from pathlib import Path
from typing import Any, Final, TypeAlias

from spacy.util import registry

__all__ = [
    "DATE_CONNECTORS",
    "LEAD_WORDS",
    "ORG_HEADS",
    "PATTERNS_PATH",
    "PROJECT_HEADS",
    "STREET_SUFFIXES",
    "TRAIL_WORDS",
    "build_patterns",
    "load_patterns",
    "read_patterns",
    "write_patterns",
]

PATTERNS_PATH: Final[Path] = Path(__file__).parent / "resources" / "notice_patterns.jsonl"
"""The committed pattern file a pipeline loads by default."""

Token: TypeAlias = dict[str, Any]
Pattern: TypeAlias = dict[str, Any]

# --------------------------------------------------------------------------------------------
# Vocabularies
# --------------------------------------------------------------------------------------------

STREET_SUFFIXES: Final[dict[str, tuple[str, ...]]] = {
    "street": ("st",),
    "avenue": ("ave", "av"),
    "road": ("rd",),
    "drive": ("dr",),
    "boulevard": ("blvd",),
    "lane": ("ln",),
    "place": ("pl",),
    "court": ("ct",),
    "parkway": ("pkwy",),
    "terrace": ("ter", "terr"),
    "highway": ("hwy",),
    "circle": ("cir",),
    "square": ("sq",),
    "way": (),
    "close": (),
    "crescent": ("cres",),
    "grove": ("gr",),
    "gardens": ("gdns",),
    "mews": (),
    "row": (),
    "walk": (),
    "hill": (),
    "rise": (),
    "trail": ("trl",),
    "plaza": (),
    "alley": (),
    "pike": (),
    "loop": (),
    "approach": (),
    "parade": (),
}
"""Street suffixes (lower case) and their abbreviations."""

# Suffixes trusted after lower-case street names, where words like "park" or "square" are
# too often ordinary nouns ("a 5 acre park", "500 square feet").
_LOWER_CASE_SUFFIXES: Final = (
    "street",
    "avenue",
    "road",
    "drive",
    "boulevard",
    "lane",
    "parkway",
    "terrace",
    "highway",
)
_PLURAL_SUFFIXES: Final = ("streets", "avenues", "roads", "drives", "lanes", "boulevards")
_DIRECTIONS: Final = ("N", "S", "E", "W", "NE", "NW", "SE", "SW", "North", "South", "East", "West")

# Words that never start or continue a street name.
_NOT_NAME: Final = (
    "a",
    "an",
    "and",
    "or",
    "at",
    "on",
    "of",
    "the",
    "to",
    "from",
    "between",
    "in",
    "for",
    "by",
    "via",
    "with",
    "near",
    "along",
    "until",
    "through",
    "is",
    "are",
    "will",
    "be",
    "as",
    "notice",
    "hearing",
    "block",
    "blocks",
    "lot",
    "lots",
    "apn",
    "parcel",
    "unit",
    "units",
    "suite",
    "flat",
    "phase",
    "feet",
    "foot",
    "acre",
    "acres",
    "story",
    "storey",
    "days",
    "weeks",
    "months",
    "years",
    "hours",
)

_MONTHS: Final = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)
_MONTH_ABBREVIATIONS: Final = (
    "jan",
    "feb",
    "mar",
    "apr",
    "jun",
    "jul",
    "aug",
    "sep",
    "sept",
    "oct",
    "nov",
    "dec",
)
_WEEKDAYS: Final = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_WEEKDAY_ABBREVIATIONS: Final = (
    "mon",
    "tue",
    "tues",
    "wed",
    "thu",
    "thur",
    "thurs",
    "fri",
    "sat",
    "sun",
)
_AM_PM: Final = ("a.m.", "p.m.", "a.m", "p.m", "am", "pm", "noon")

LEAD_WORDS: Final[dict[str, frozenset[str]]] = {
    "PARCEL_ID": frozenset(
        {
            "apn",
            "apns",
            "ain",
            "uprn",
            "pin",
            "assessor",
            "assessors",
            "assessor's",
            "'s",
            "’s",
            "parcel",
            "parcels",
            "no",
            "no.",
            "nos",
            "nos.",
            "number",
            "num",
            "id",
            "identification",
            "#",
            ":",
            ".",
        }
    ),
    "ZONING": frozenset({"zoned", "zone", "zoning", "district", "from", ":"}),
}
"""Lower-case words the precedence filter trims from the start of a rule span of each label."""

TRAIL_WORDS: Final[dict[str, frozenset[str]]] = {
    "ZONING": frozenset({"zone", "district", "to"}),
}
"""Lower-case words the precedence filter trims from the end of a rule span of each label."""

_PARCEL_ANCHORS: Final = (
    "apn",
    "apns",
    "ain",
    "uprn",
    "assessor",
    "assessors",
    "assessor's",
    "parcel",
    "parcels",
)


# --------------------------------------------------------------------------------------------
# Token specs
# --------------------------------------------------------------------------------------------


def _lower_in(words: Sequence[str], op: str | None = None) -> Token:
    token: Token = {"LOWER": {"IN": sorted(set(words))}}
    if op:
        token["OP"] = op
    return token


def _regex(expression: str, op: str | None = None) -> Token:
    token: Token = {"TEXT": {"REGEX": expression}}
    if op:
        token["OP"] = op
    return token


def _dot(op: str = "?") -> Token:
    return {"ORTH": ".", "OP": op}


_ORDINAL = r"\d+(?:st|nd|rd|th|ST|ND|RD|TH)"


def _name_word(*, lower: bool, op: str) -> Token:
    """A word of a street name: capitalised (or an ordinal), or lower case for ``lower``."""
    word = r"[a-z][a-z'’\-]*" if lower else r"[A-Z][A-Za-z'’\-]*"
    return {
        "TEXT": {"REGEX": rf"^(?:{word}|{_ORDINAL})$"},
        "LOWER": {"NOT_IN": list(_NOT_NAME)},
        "OP": op,
    }


def _suffix(*, lower: bool, plural: bool = False) -> list[Token]:
    """A street suffix, full or abbreviated, with an optional period after it.

    The period is trimmed again by the precedence filter when it ends the sentence instead
    (after a full word, or after an abbreviation when the span's other ones have none).
    """
    if plural:
        return [_lower_in(_PLURAL_SUFFIXES)]
    full = _LOWER_CASE_SUFFIXES if lower else tuple(STREET_SUFFIXES)
    abbreviations = [a for f in full for a in STREET_SUFFIXES[f]]
    return [_lower_in([*full, *abbreviations, *(f"{a}." for a in abbreviations)]), _dot()]


def _street_variants(
    *, lower: bool = False, suffix: bool = True, plural: bool = False
) -> Iterator[list[Token]]:
    """Token lists for a street: optional direction, 1-3 name words, a suffix; or a route."""
    directions = [*_DIRECTIONS, *(f"{d}." for d in _DIRECTIONS if len(d) == 1)]
    direction: Token = {"TEXT": {"IN": directions}, "OP": "?"}
    name = _name_word(lower=lower, op="{1,3}")
    if not suffix:
        yield [direction, name]
        return
    yield [direction, name, *_suffix(lower=lower, plural=plural)]
    if not lower and not plural:
        # numbered routes: "Route 9", "Hwy 101", "State Route 30"
        yield [
            {"LOWER": "state", "OP": "?"},
            _lower_in(("route", "rte", "highway", "hwy", "hwy.")),
            _regex(r"^\d{1,4}[A-Za-z]?$"),
        ]


_HOUSE_NUMBER: Final = _regex(r"^\d{1,6}[A-Za-z]?(?:[-–]\d{1,6}[A-Za-z]?)?$")
_NUMBER_JOINER: Final = _lower_in(("-", "–", "and", "&"))


def _house_numbers() -> Iterator[list[Token]]:
    """A house number, or two: ``1420``, ``14a``, ``22-28``, ``15 and 17``."""
    yield [_HOUSE_NUMBER]
    yield [_HOUSE_NUMBER, _NUMBER_JOINER, _HOUSE_NUMBER]


_HUNDRED_BLOCK: Final = _regex(r"^\d{1,3}00$")
_SEGMENT_LEADS: Final = _lower_in(("between", "from"))
_SEGMENT_LINKS: Final = _lower_in(("and", "to", "through", "thru"))
_JOINERS: Final = _lower_in(("and", "&", "at", "/"))


def _address_patterns() -> Iterator[Pattern]:
    for lower in (False, True):
        for street in _street_variants(lower=lower):
            for number in _house_numbers():
                yield {"label": "ADDRESS", "id": "address-number", "pattern": [*number, *street]}
            yield {
                "label": "ADDRESS",
                "id": "address-hundred-block",
                "pattern": [_HUNDRED_BLOCK, {"LOWER": "block"}, {"LOWER": "of"}, *street],
            }
        streets = list(_street_variants(lower=lower))
        crosses = [*_street_variants(lower=lower, suffix=False), *streets]
        for first in streets:
            for second in streets:
                yield {
                    "label": "ADDRESS",
                    "id": "address-intersection",
                    "pattern": [*first, _JOINERS, *second],
                }
                for cross in crosses:
                    yield {
                        "label": "ADDRESS",
                        "id": "address-segment",
                        "pattern": [*first, _SEGMENT_LEADS, *cross, _SEGMENT_LINKS, *second],
                    }
            # "Oak and Elm Streets" / "Elm Road between 3rd and 7th Streets"
            yield {
                "label": "ADDRESS",
                "id": "address-segment",
                "pattern": [
                    *first,
                    {"LOWER": "between"},
                    _name_word(lower=lower, op="{1,2}"),
                    {"LOWER": "and"},
                    *next(_street_variants(lower=lower, plural=True)),
                ],
            }


_DAY: Final = _regex(r"^(?:[1-9]|0[1-9]|[12]\d|3[01])(?:st|nd|rd|th)?$")
_DAY_RANGE: Final = _regex(r"^(?:[1-9]|[12]\d|3[01])[-–](?:[1-9]|[12]\d|3[01])$")
_YEAR: Final = _regex(r"^(?:19|20)\d{2}$")
_ISO_DATE: Final = _regex(r"^(?:19|20)\d{2}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])$")
_NUMERIC_DATE: Final = _regex(
    r"^(?:0?[1-9]|[12]\d|3[01])[/.](?:0?[1-9]|[12]\d|3[01])[/.](?:\d{2}|\d{4})$"
)
_CLOCK: Final = _regex(r"^(?:[01]?\d|2[0-3])(?:[:.][0-5]\d)?$")
_COMMA: Final = {"ORTH": ",", "OP": "?"}
DATE_CONNECTORS: Final[frozenset[str]] = frozenset(
    {"to", "through", "thru", "until", "till", "-", "–", "—"}
)
"""Words that join two dates or times into one range (``and`` too, after ``between``)."""


def _month(*, last: bool = False) -> list[Token]:
    """A month name, full or abbreviated, compared with the OCR-tolerant fuzzy compare.

    The span ruler's ``matcher_fuzzy_compare`` is
    :func:`geolabel.text.pipeline.ocr_fuzzy_compare`: names of five letters or more tolerate
    one edit (``Apri1``, ``0ctober``), shorter ones must match. ``last`` means the month ends
    the pattern, so no optional period follows it (a sentence's period is not the date's).
    """
    words = [*_MONTHS, *_MONTH_ABBREVIATIONS, *(f"{m}." for m in _MONTH_ABBREVIATIONS)]
    month: Token = {"LOWER": {"FUZZY1": {"IN": sorted(words)}}}
    return [month] if last else [month, _dot()]


def _weekday_heads() -> list[list[Token]]:
    """No weekday, or a weekday with an optional period and comma (``Mon., ``)."""
    words = [*_WEEKDAYS, *_WEEKDAY_ABBREVIATIONS, *(f"{d}." for d in _WEEKDAY_ABBREVIATIONS)]
    return [[], [_lower_in(words), _dot(), _COMMA]]


def _date_patterns() -> Iterator[Pattern]:
    """Single dates and times; ranges are joined from them by the precedence filter.

    Matching every range form as one pattern would multiply the patterns (and the matcher's
    time) by the number of forms squared, so a range such as ``June 1 to September 30, 2025``
    is matched as two dates that :func:`geolabel.text.pipeline.rules_over_model` joins
    across a connector (:data:`DATE_CONNECTORS`, or ``and`` after ``between``). Only the
    forms whose first half is not a date on its own are patterns here (``June 1–30, 2025``,
    ``1 to 5 June 2025``, ``9 to 11 a.m.``).
    """
    year = [_COMMA, _YEAR]
    for head in _weekday_heads():
        for tail in ([], year):
            of = {"LOWER": "of", "OP": "?"}
            for form in (
                [*head, *_month(), _DAY, *tail],  # [Monday, ]March 3[, 2025]
                [*head, _DAY, of, *_month(last=not tail), *tail],  # [Monday ]3 [of] March
            ):
                yield {"label": "DATE", "id": "date", "pattern": form}
        for form in ([*head, _ISO_DATE], [*head, _NUMERIC_DATE]):
            yield {"label": "DATE", "id": "date", "pattern": form}
    yield {"label": "DATE", "id": "date-month-year", "pattern": [*_month(), _YEAR]}
    yield {"label": "DATE", "id": "time", "pattern": [_CLOCK, _lower_in(_AM_PM)]}
    yield {"label": "DATE", "id": "time", "pattern": [_regex(r"^(?:[01]?\d|2[0-3]):[0-5]\d$")]}
    yield {"label": "DATE", "id": "time", "pattern": [_lower_in(("noon", "midnight"))]}
    connector = _lower_in(sorted(DATE_CONNECTORS))
    for tail in ([], year):
        # "June 1–30, 2025" (the dash inside one token), "June 1 to 30, 2025"
        yield {"label": "DATE", "id": "date-range", "pattern": [*_month(), _DAY_RANGE, *tail]}
        yield {
            "label": "DATE",
            "id": "date-range",
            "pattern": [*_month(), _DAY, connector, _DAY, *tail],
        }
    for tail in ([], [_YEAR]):
        # "1–5 June 2025", "1 to 5 June 2025"
        yield {
            "label": "DATE",
            "id": "date-range",
            "pattern": [_DAY_RANGE, *_month(last=not tail), *tail],
        }
        yield {
            "label": "DATE",
            "id": "date-range",
            "pattern": [_DAY, connector, _DAY, *_month(last=not tail), *tail],
        }
    # "September to November 2025"
    yield {
        "label": "DATE",
        "id": "date-range",
        "pattern": [*_month(), connector, *_month(), _YEAR],
    }
    # "9 to 11 a.m.", "9:30–11:00 a.m."
    yield {
        "label": "DATE",
        "id": "time-range",
        "pattern": [_CLOCK, connector, _CLOCK, _lower_in(_AM_PM)],
    }


def _parcel_patterns() -> Iterator[Pattern]:
    yield {
        "label": "PARCEL_ID",
        "id": "apn-dashed",
        "pattern": [_regex(r"^\d{3,4}-\d{3}-\d{3}$")],
    }
    anchor = _lower_in(_PARCEL_ANCHORS)
    fillers = _lower_in(sorted(LEAD_WORDS["PARCEL_ID"]), "*")
    number = _regex(r"^(?:\d{6,15}|\d{1,5}(?:-\d{1,5}){1,4}[A-Za-z]?)$")
    yield {"label": "PARCEL_ID", "id": "apn-announced", "pattern": [anchor, fillers, number]}
    small = _regex(r"^\d{1,4}[A-Za-z]?$")
    block = _lower_in(("block", "blk", "blk."))
    lot = _lower_in(("lot", "lots"))
    joiner = _lower_in(("and", "&", "-", "–"))
    yield {
        "label": "PARCEL_ID",
        "id": "block-lot",
        "pattern": [block, _dot(), small, _COMMA, lot, small],
    }
    yield {
        "label": "PARCEL_ID",
        "id": "block-lot",
        "pattern": [block, _dot(), small, _COMMA, lot, small, joiner, small],
    }
    yield {
        "label": "PARCEL_ID",
        "id": "lot-block",
        "pattern": [lot, small, _COMMA, {"LOWER": "of", "OP": "?"}, block, _dot(), small],
    }
    yield {
        "label": "PARCEL_ID",
        "id": "lot-block",
        "pattern": [
            lot,
            small,
            joiner,
            small,
            _COMMA,
            {"LOWER": "of", "OP": "?"},
            block,
            _dot(),
            small,
        ],
    }


def _zoning_patterns() -> Iterator[Pattern]:
    hyphenated = _regex(r"^[A-Z]{1,3}-\d{1,3}[A-Z]?$")
    yield {"label": "ZONING", "id": "zoning-code", "pattern": [hyphenated]}
    bare = _regex(r"^(?:[A-Z]{1,3}\d{1,2}[A-Z]?|[A-Z]{1,2})$")
    lead = _lower_in(("zoned", "zone", "zoning", "district"))
    yield {
        "label": "ZONING",
        "id": "zoning-announced",
        "pattern": [lead, {"ORTH": ":", "OP": "?"}, bare],
    }
    yield {
        "label": "ZONING",
        "id": "zoning-announced",
        "pattern": [bare, _lower_in(("zone", "district"))],
    }
    yield {
        "label": "ZONING",
        "id": "zoning-change",
        "pattern": [{"LOWER": "from"}, bare, {"LOWER": "to"}],
    }
    name = {"IS_TITLE": True, "LOWER": {"NOT_IN": ["the", "a", "and", "of"]}, "OP": "{0,3}"}
    yield {
        "label": "ZONING",
        "id": "designation",
        "pattern": [name, {"LOWER": "conservation"}, {"LOWER": "area"}],
    }
    for words in (
        ("green", "belt"),
        ("metropolitan", "open", "land"),
        ("area", "of", "outstanding", "natural", "beauty"),
    ):
        yield {
            "label": "ZONING",
            "id": "designation",
            "pattern": [{"LOWER": w} for w in words],
        }


ORG_HEADS: Final[frozenset[str]] = frozenset(
    {
        "council",
        "commission",
        "department",
        "board",
        "authority",
        "agency",
        "division",
        "bureau",
        "office",
        "inspectorate",
        "committee",
        "trust",
        "association",
        "district",
        "township",
        "inc",
        "inc.",
        "llc",
        "ltd",
        "ltd.",
        "plc",
        "llp",
        "lp",
        "co",
        "co.",
        "corp",
        "corp.",
        "corporation",
        "company",
        "group",
        "partners",
        "services",
        "solutions",
        "utilities",
        "networks",
        "transit",
        "highways",
    }
)
"""Last words that make a name an organisation (lower case)."""

PROJECT_HEADS: Final[frozenset[str]] = frozenset(
    {
        "project",
        "improvements",
        "improvement",
        "replacement",
        "renovation",
        "rehabilitation",
        "expansion",
        "extension",
        "upgrade",
        "modernization",
        "modernisation",
        "regeneration",
        "resurfacing",
        "reconstruction",
        "redevelopment",
        "repairs",
        "repair",
        "program",
        "programme",
        "plan",
        "scheme",
        "festival",
        "carnival",
    }
)
"""Last words that make a name a project (lower case)."""

_COMPANY_SUFFIXES: Final = ("inc", "llc", "ltd", "plc", "llp", "lp", "co", "corp")


def _capital(words: Sequence[str]) -> Token:
    """One of ``words`` (lower-cased), written with a capital: ``Inc``, ``LLC``."""
    return {"LOWER": {"IN": sorted(words)}, "TEXT": {"REGEX": "^[A-Z]"}}


def _name_patterns() -> Iterator[Pattern]:
    """ORG and PROJECT names by their last word; weak rules that only fill the model's gaps."""
    # a capitalised word ("Tri-State", "McDonald") or a short acronym ("ARC"), not a heading's
    # capitals ("ZONING HEARING BOARD")
    word = {
        "TEXT": {"REGEX": r"^(?:[A-Z][A-Za-z'’\-]*[a-z]|[A-Z]{2,4})$"},
        "LOWER": {"NOT_IN": ["the", "a", "an", "notice", "public", "and", "of", "for", "to"]},
    }
    link = {"LOWER": {"IN": ["and", "&", "of"]}}
    body_heads = sorted(h for h in ORG_HEADS if h.rstrip(".") not in _COMPANY_SUFFIXES)
    company = sorted({*_COMPANY_SUFFIXES, *(f"{c}." for c in _COMPANY_SUFFIXES)})
    for name in (
        [word | {"OP": "{1,5}"}],
        [word | {"OP": "{1,3}"}, link, word | {"OP": "{1,3}"}],
    ):
        yield {"label": "ORG", "id": "org-body", "pattern": [*name, _lower_in(body_heads)]}
        # "Acme Paving Co.", "Blue Heron Excavation, Inc." (US abbreviations keep their
        # period); "Brightwater Homes Ltd", "Oakridge Development LLC"
        dotted = sorted({"inc", "co", "corp", "inc.", "co.", "corp."})
        yield {
            "label": "ORG",
            "id": "org-company",
            "pattern": [*name, _COMMA, _capital(company)],
        }
        yield {
            "label": "ORG",
            "id": "org-company",
            "pattern": [*name, _COMMA, _capital(dotted), {"ORTH": "."}],
        }
        yield {
            "label": "PROJECT",
            "id": "project-name",
            "pattern": [*name, _lower_in(sorted(PROJECT_HEADS))],
        }
    # "Department of Public Works", "Office of the City Clerk", "Board of Zoning Appeals"
    yield {
        "label": "ORG",
        "id": "org-of",
        "pattern": [
            word | {"OP": "{0,2}"},
            _lower_in(("department", "office", "board", "division", "bureau", "commission")),
            {"LOWER": "of"},
            {"LOWER": "the", "OP": "?"},
            word | {"OP": "+"},
            {"LOWER": "and", "OP": "?"},
            word | {"OP": "*"},
        ],
    }


def build_patterns() -> list[Pattern]:
    """Build every pattern, in a fixed order (so the JSONL file is reproducible).

    Returns:
        ``span_ruler`` patterns: dicts with ``label``, ``pattern`` (a token pattern) and ``id``
        (the rule's name, e.g. ``"address-segment"``).
    """
    patterns: list[Pattern] = []
    for group in (
        _date_patterns,
        _parcel_patterns,
        _zoning_patterns,
        _address_patterns,
        _name_patterns,
    ):
        patterns.extend(group())
    seen: set[str] = set()
    unique: list[Pattern] = []
    for p in patterns:
        key = json.dumps(p, sort_keys=True)
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique


def write_patterns(path: str | PathLike[str] = PATTERNS_PATH) -> int:
    """Write :func:`build_patterns` as JSON Lines (sorted keys, LF line ends).

    Args:
        path: Target file.

    Returns:
        Number of patterns written.
    """
    patterns = build_patterns()
    with Path(path).open("w", encoding="utf-8", newline="\n") as handle:
        for pattern in patterns:
            handle.write(json.dumps(pattern, sort_keys=True, ensure_ascii=False))
            handle.write("\n")
    return len(patterns)


def load_patterns(path: str | PathLike[str] = PATTERNS_PATH) -> list[Pattern]:
    """Read span-ruler patterns from a JSONL file.

    Args:
        path: A JSON Lines file of ``{"label", "pattern"[, "id"]}`` objects.

    Returns:
        The patterns.

    Raises:
        InputFileError: The file is missing or a line is not a pattern object.
    """
    from geolabel.errors import InputFileError

    source = Path(path)
    try:
        lines = source.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InputFileError(
            f"cannot read the pattern file {source}: {exc.strerror or exc}; regenerate the "
            "packaged one with `python -m geolabel.text.patterns`"
        ) from exc
    patterns: list[Pattern] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            pattern = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputFileError(f"{source}:{number} is not valid JSON: {exc.msg}") from exc
        if not isinstance(pattern, dict) or "label" not in pattern or "pattern" not in pattern:
            raise InputFileError(
                f"{source}:{number} is not a span-ruler pattern; each line needs 'label' and "
                "'pattern' keys"
            )
        patterns.append(pattern)
    return patterns


@registry.readers("geolabel.read_patterns.v1")
def read_patterns(path: str) -> list[Pattern]:
    """Config reader for ``[initialize.components.rules.patterns]``: the patterns as a list.

    Args:
        path: The JSONL pattern file.

    Returns:
        The patterns (spaCy's ``srsly.read_jsonl.v1`` gives a generator, which the span ruler
        refuses).
    """
    return load_patterns(path)


if __name__ == "__main__":
    count = write_patterns()
    print(f"wrote {count} patterns to {PATTERNS_PATH}")
