"""Reading calendar dates out of DATE spans, and guessing a notice's kind from its words."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date
from typing import Final

__all__ = ["guess_kind", "parse_dates"]

_MONTHS: Final[dict[str, int]] = {
    name: i
    for i, names in enumerate(
        (
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ),
        start=1,
    )
    for name in names
}
_MONTH = r"\b(?P<{g}>[A-Za-z]{{3,9}})\.?"
_DAY = r"\b(?P<{g}>\d{{1,2}})(?:st|nd|rd|th)?(?![0-9])"
_YEAR = r"(?P<{g}>(?:19|20)\d{{2}})"
_PATTERNS: Final = (
    re.compile(r"\b(?P<y>(?:19|20)\d{2})-(?P<m>\d{2})-(?P<d>\d{2})\b"),
    re.compile(r"\b(?P<a>\d{1,2})[/.](?P<b>\d{1,2})[/.](?P<y>\d{4}|\d{2})\b"),
    re.compile(
        _MONTH.format(g="mon") + r"\s+" + _DAY.format(g="d") + r"(?:\s*[-–]\s*(?P<d2>\d{1,2}))?"
        r"(?:,?\s+" + _YEAR.format(g="y") + ")?"
    ),
    re.compile(
        _DAY.format(g="d")
        + r"(?:\s*[-–]\s*(?P<d2>\d{1,2}))?\s+(?:of\s+)?"
        + _MONTH.format(g="mon")
        + r"(?:,?\s+"
        + _YEAR.format(g="y")
        + ")?"
    ),
)


def _make(year: int | None, month: int, day: int) -> date | None:
    if year is None:
        return None
    try:
        return date(year, month, day)
    except ValueError:
        return None


def parse_dates(texts: Iterable[str], *, default_year: int | None = None) -> list[date]:
    """Read the calendar dates written in DATE spans (times are ignored).

    Forms: ``March 3, 2025``, ``Mar. 3``, ``3 March 2025``, ``2025-03-03``, ``03/03/2025``
    (month first, as in the US, unless the first number is over 12), and ranges such as
    ``June 1 to September 30, 2025`` or ``June 1–30, 2025``, which give both ends. A date
    without a year takes the last year written in the same span, else ``default_year``
    (the notice's publication year), else it is skipped.

    Args:
        texts: DATE span texts.
        default_year: Year for dates written without one.

    Returns:
        The dates, sorted and unique.
    """
    found: set[date] = set()
    for text in texts:
        years = [int(y) for y in re.findall(r"\b(?:19|20)\d{2}\b", text)]
        fallback = years[-1] if years else default_year
        taken: list[tuple[int, int]] = []
        for pattern in _PATTERNS:
            for m in pattern.finditer(text):
                if any(m.start() < e and s < m.end() for s, e in taken):
                    continue
                groups = m.groupdict()
                results: list[date | None] = []
                if "a" in groups and groups.get("a"):
                    a, b, y = int(groups["a"]), int(groups["b"]), int(groups["y"])
                    y = y + 2000 if y < 100 else y
                    month, day = (a, b) if a <= 12 else (b, a)
                    results.append(_make(y, month, day))
                elif groups.get("mon") is not None:
                    month_number = _MONTHS.get(groups["mon"].lower())
                    if month_number is None:
                        continue
                    year = int(groups["y"]) if groups.get("y") else fallback
                    results.append(_make(year, month_number, int(groups["d"])))
                    if groups.get("d2"):
                        results.append(_make(year, month_number, int(groups["d2"])))
                else:
                    results.append(_make(int(groups["y"]), int(groups["m"]), int(groups["d"])))
                kept = [r for r in results if r is not None]
                if kept:
                    taken.append((m.start(), m.end()))
                    found.update(kept)
    return sorted(found)


_KIND_WORDS: Final[tuple[tuple[str, tuple[str, ...]], ...]] = (
    ("tender", ("bid", "bids", "tender", "tenders", "proposals", "rfp", "rfq", "award")),
    ("demolition_permit", ("demolish", "demolition")),
    ("zoning_hearing", ("rezone", "rezoning", "zoning", "variance", "conditional use")),
    ("street_closure", ("closed", "closure", "closures", "detour", "diversion")),
    ("road_works", ("road work", "roadwork", "resurfacing", "repaving", "lane", "paving")),
    ("building_permit", ("building permit", "construction", "permit")),
    ("planning_application", ("application", "planning", "proposal", "development")),
)


def guess_kind(text: str) -> str:
    """Guess a notice's kind from its words, for notices that do not say.

    The first rule whose words occur (whole words, case-insensitive) decides, in this order:
    tender, demolition permit, zoning hearing, street closure, road works, building permit,
    planning application; ``"unknown"`` when none does.

    Args:
        text: The notice text.

    Returns:
        One of the sample's notice kinds, or ``"unknown"``.
    """
    lowered = text.lower()
    for kind, words in _KIND_WORDS:
        if any(re.search(rf"\b{re.escape(w)}\b", lowered) for w in words):
            return kind
    return "unknown"
