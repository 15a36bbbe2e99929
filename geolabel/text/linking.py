"""Linking notice entities to parcels: address normalisation and a parcel gazetteer.

The gazetteer is built from a parcels table (a project's ``parcels`` layer or the sample's
``city.gpkg``) with the columns ``parcel_id``, ``street`` and ``house_number`` (required) and
``apn``, ``block``, ``lot``, ``cross_from``, ``cross_to``, ``corner`` (used when present),
plus street names from a ``streets`` layer when given. Street names are compared after
:func:`normalize_street` (case, punctuation, suffix abbreviations, directionals, ordinal
words), exactly first, then fuzzily (``difflib`` ratio, at least :data:`FUZZY_CUTOFF`).

How each entity links (``ParcelLink.method``, confidence in brackets):

* ``PARCEL_ID`` with six or more digits -> the parcel with that APN, dashes ignored
  (``apn``, 1.0); ``Block 12, Lot 4`` -> that block and lot (``block_lot``, 1.0).
* ``ADDRESS`` with a house number -> the parcel with that number on that street
  (``address_exact`` 1.0, or ``address_fuzzy`` with the street's fuzzy score); a range
  (``22-28 High Street``) or a pair (``15 and 17 Mill Road``) -> every parcel numbered in it.
* ``ADDRESS`` segment (``Elm Road between 3rd Avenue and 7th Avenue``) -> every parcel on the
  street whose block (``cross_from``-``cross_to``) lies between the two cross streets, by the
  streets' ``order`` when a streets layer gives it, else along the chain of adjacent blocks
  (``segment``, the lowest of the three street scores).
* ``ADDRESS`` intersection (``Oak Street and 3rd Avenue``) -> the corner parcels: those on
  one street whose ``corner`` is the other (``intersection``, the lower street score).
* ``ADDRESS`` hundred block (``400 block of Elm Street``) -> parcels numbered 400-499 on it
  (``hundred_block``).

Anything else (a street not in the gazetteer, a number with no parcel, a bare street) is
returned as an :class:`~geolabel.text.records.UnlinkedEntity` with the reason.
"""

from __future__ import annotations

import difflib
import math
import re
from collections import defaultdict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Final

import pandas as pd

from geolabel.errors import ColumnError, InputFileError, LayerError
from geolabel.text.patterns import STREET_SUFFIXES
from geolabel.text.records import EntitySpan, ParcelLink, UnlinkedEntity

if TYPE_CHECKING:
    import geopandas as gpd

    from geolabel.store import Project

__all__ = [
    "FUZZY_CUTOFF",
    "GAZETTEER_COLUMNS",
    "Gazetteer",
    "ParsedAddress",
    "link_entities",
    "normalize_street",
    "parse_address",
]

FUZZY_CUTOFF: Final = 0.8
"""Lowest ``difflib`` ratio at which a street name counts as a fuzzy match."""

GAZETTEER_COLUMNS: Final[tuple[str, ...]] = ("parcel_id", "street", "house_number")
"""Columns a parcels table needs to be a gazetteer."""

_OPTIONAL_COLUMNS: Final = ("apn", "block", "lot", "cross_from", "cross_to", "corner", "address")

_SUFFIX_CANON: Final[dict[str, str]] = {
    abbreviation: full for full, abbrs in STREET_SUFFIXES.items() for abbreviation in abbrs
}
_PLURALS: Final[dict[str, str]] = {f"{full}s": full for full in STREET_SUFFIXES}
_DIRECTIONS: Final[dict[str, str]] = {
    "n": "north",
    "s": "south",
    "e": "east",
    "w": "west",
    "ne": "northeast",
    "nw": "northwest",
    "se": "southeast",
    "sw": "southwest",
}
_ORDINAL_SUFFIX: Final = {1: "st", 2: "nd", 3: "rd"}
_ORDINAL_WORDS: Final[dict[str, str]] = {
    w: f"{i}{'th' if 11 <= i <= 13 else _ORDINAL_SUFFIX.get(i % 10, 'th')}"
    for i, w in enumerate(
        (
            "first",
            "second",
            "third",
            "fourth",
            "fifth",
            "sixth",
            "seventh",
            "eighth",
            "ninth",
            "tenth",
            "eleventh",
            "twelfth",
        ),
        start=1,
    )
}
_ROUTE_WORDS: Final[dict[str, str]] = {"hwy": "highway", "rte": "route"}
_PUNCT = re.compile(r"[.,;:'’()\"]")
_SPACES = re.compile(r"\s+")
_OCR_DIGITS = str.maketrans({"l": "1", "I": "1", "O": "0", "o": "0"})


def normalize_street(name: str) -> str:
    """Normalise a street name for comparison.

    Lower case; periods, commas and apostrophes removed; suffix abbreviations spelled out
    (``St`` -> ``street``, ``Ave`` -> ``avenue``), plural suffixes made singular, directionals
    spelled out (``N`` -> ``north``), ordinal words made numeric (``Fifth`` -> ``5th``) and
    ordinals lower-cased (``5TH`` -> ``5th``).

    Args:
        name: A street name as written (``"N. Harbor Blvd."``).

    Returns:
        The normalised name (``"north harbor boulevard"``).
    """
    words = _SPACES.sub(" ", _PUNCT.sub(" ", name.lower())).strip().split(" ")
    out: list[str] = []
    for i, word in enumerate(words):
        if not word:
            continue
        last = i == len(words) - 1
        if word in _ORDINAL_WORDS:
            word = _ORDINAL_WORDS[word]
        elif word in _ROUTE_WORDS:
            word = _ROUTE_WORDS[word]
        elif last and word in _SUFFIX_CANON:
            word = _SUFFIX_CANON[word]
        elif last and word in _PLURALS:
            word = _PLURALS[word]
        elif word in _DIRECTIONS and (i == 0 or last):
            word = _DIRECTIONS[word]
        out.append(word)
    return " ".join(out)


@dataclass(frozen=True, slots=True)
class ParsedAddress:
    """An ADDRESS span taken apart.

    Attributes:
        kind: ``number``, ``segment``, ``intersection``, ``hundred_block`` or ``street``.
        streets: The street names as written (one, or street and two cross streets, or two).
        numbers: House numbers (a range gives its two ends, a pair both numbers).
        is_range: ``numbers`` are the ends of a range (``22-28``), not a list.
    """

    kind: str
    streets: tuple[str, ...]
    numbers: tuple[int, ...] = ()
    is_range: bool = False


_SEGMENT_RE: Final = re.compile(
    r"^(?P<street>.+?)\s+(?:between|from)\s+(?P<a>.+?)\s+(?:and|to|through|thru|&)\s+(?P<b>.+)$",
    re.IGNORECASE,
)
_INTERSECTION_RE: Final = re.compile(
    r"^(?P<a>.+?)\s*(?:\s(?:and|at|&)\s|/)\s*(?P<b>.+)$", re.IGNORECASE
)
_HUNDRED_RE: Final = re.compile(r"^(?P<n>\d+00)\s+block\s+of\s+(?P<street>.+)$", re.IGNORECASE)
_NUMBER_RE: Final = re.compile(
    r"^(?P<n1>[0-9lIoO]*\d[0-9lIoO]*)[a-zA-Z]?"
    r"(?:\s*(?P<joiner>-|–|and|&)\s*(?P<n2>\d+)[a-zA-Z]?)?\s+(?P<street>\D.*)$",
    re.IGNORECASE,
)


def _with_suffix(cross: str, other: str) -> str:
    """Give ``3rd`` the suffix of ``7th Streets`` (``Elm Road between 3rd and 7th Streets``)."""
    if normalize_street(cross).split(" ")[-1] in STREET_SUFFIXES:
        return cross
    suffix = normalize_street(other).split(" ")[-1]
    return f"{cross} {suffix}" if suffix in STREET_SUFFIXES else cross


def parse_address(text: str) -> ParsedAddress:
    """Take an ADDRESS span apart into its kind, street names and house numbers.

    Args:
        text: The span's text (``"1420 Oak St."``, ``"Elm Rd from 3rd Ave to 7th Ave"``...).

    Returns:
        The parsed address; ``kind="street"`` when it is none of the known forms.
    """
    clean = _SPACES.sub(" ", text).strip().rstrip(".,;")
    m = _HUNDRED_RE.match(clean)
    if m:
        return ParsedAddress("hundred_block", (m["street"],), (int(m["n"]),))
    m = _SEGMENT_RE.match(clean)
    if m and not clean[:1].isdigit():
        a, b = m["a"], m["b"]
        return ParsedAddress("segment", (m["street"], _with_suffix(a, b), _with_suffix(b, a)))
    m = _NUMBER_RE.match(clean)
    if m:
        first = int(m["n1"].translate(_OCR_DIGITS))
        if m["n2"]:
            second = int(m["n2"])
            is_range = m["joiner"] in ("-", "–")
            return ParsedAddress("number", (m["street"],), (first, second), is_range)
        return ParsedAddress("number", (m["street"],), (first,))
    m = _INTERSECTION_RE.match(clean)
    if m:
        return ParsedAddress("intersection", (m["a"], m["b"]))
    return ParsedAddress("street", (clean,))


def _text(value: object) -> str | None:
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    out = str(value).strip()
    return out or None


def _int(value: object) -> int | None:
    text = _text(value)
    if text is None:
        return None
    digits = re.sub(r"\D", "", text.split(".")[0])
    return int(digits) if digits else None


@dataclass
class Gazetteer:
    """Parcels indexed by APN, block/lot, address, street segment and corner.

    Build it with :meth:`from_frame`, :meth:`from_file` or :meth:`from_project`.

    Attributes:
        parcels: The parcels table (columns of :data:`GAZETTEER_COLUMNS` and any optional
            ones), one row per parcel, indexed by ``parcel_id``.
        geometry: Parcel geometries (same index) when the source had them, else None.
        streets: Normalised street name -> the name as written in the source.
        fuzzy_cutoff: Lowest fuzzy score accepted.
    """

    parcels: pd.DataFrame
    geometry: gpd.GeoSeries | None = None
    streets: dict[str, str] = field(default_factory=dict)
    fuzzy_cutoff: float = FUZZY_CUTOFF
    _by_apn: dict[str, str] = field(default_factory=dict, repr=False)
    _by_block_lot: dict[tuple[int, int], str] = field(default_factory=dict, repr=False)
    _by_address: dict[tuple[str, int], list[str]] = field(default_factory=dict, repr=False)
    _numbers: dict[str, list[tuple[int, str]]] = field(default_factory=dict, repr=False)
    _blocks: dict[str, dict[tuple[str, str], list[str]]] = field(default_factory=dict, repr=False)
    _corners: dict[frozenset[str], list[str]] = field(default_factory=dict, repr=False)
    _resolved: dict[str, tuple[str, float] | None] = field(default_factory=dict, repr=False)
    _order: dict[str, int] = field(default_factory=dict, repr=False)

    @classmethod
    def from_frame(
        cls,
        parcels: pd.DataFrame,
        streets: pd.DataFrame | Iterable[str] | None = None,
        *,
        fuzzy_cutoff: float = FUZZY_CUTOFF,
        source: str = "parcels",
    ) -> Gazetteer:
        """Build a gazetteer from a parcels table (a GeoDataFrame keeps its geometry).

        Args:
            parcels: One row per parcel with the :data:`GAZETTEER_COLUMNS`.
            streets: A streets table with a ``name`` column, or street names, to add to the
                names fuzzy matching knows.
            fuzzy_cutoff: Lowest fuzzy score accepted, in (0, 1].
            source: Name of the input for error messages.

        Returns:
            The gazetteer.

        Raises:
            ColumnError: A required column is missing, a parcel id repeats, or the cutoff is
                outside (0, 1].
        """
        missing = [c for c in GAZETTEER_COLUMNS if c not in parcels.columns]
        if missing:
            raise ColumnError(
                f"{source} lacks column(s) {', '.join(missing)} needed to link notices "
                f"(columns: {', '.join(map(str, parcels.columns))}); a parcel gazetteer needs "
                f"{', '.join(GAZETTEER_COLUMNS)} and uses {', '.join(_OPTIONAL_COLUMNS)} when "
                "present."
            )
        if not 0 < fuzzy_cutoff <= 1:
            raise ColumnError(f"fuzzy_cutoff must be in (0, 1], got {fuzzy_cutoff}")
        ids = parcels["parcel_id"].astype(str)
        if ids.duplicated().any():
            dupes = sorted(set(ids[ids.duplicated()]))[:5]
            raise ColumnError(f"{source}: parcel_id must be unique; repeated: {', '.join(dupes)}")
        columns = [c for c in (*GAZETTEER_COLUMNS, *_OPTIONAL_COLUMNS) if c in parcels.columns]
        table = pd.DataFrame(parcels[columns]).copy()
        table["parcel_id"] = ids.to_numpy()
        table = table.set_index("parcel_id", drop=False)
        geometry = None
        if hasattr(parcels, "geometry") and "geometry" in parcels.columns:
            geometry = parcels.geometry.copy()
            geometry.index = table.index
        gaz = cls(parcels=table, geometry=geometry, fuzzy_cutoff=fuzzy_cutoff)
        gaz._index(streets)
        return gaz

    @classmethod
    def from_file(
        cls,
        path: str | PathLike[str],
        layer: str = "parcels",
        streets_layer: str | None = "streets",
        *,
        fuzzy_cutoff: float = FUZZY_CUTOFF,
    ) -> Gazetteer:
        """Build a gazetteer from a vector file (GeoPackage, GeoJSON...).

        Args:
            path: The file.
            layer: Its parcels layer.
            streets_layer: A streets layer with a ``name`` column, used when it exists.
            fuzzy_cutoff: Lowest fuzzy score accepted.

        Returns:
            The gazetteer.

        Raises:
            InputFileError: The file is missing or unreadable.
            LayerError: The parcels layer does not exist.
            ColumnError: Required columns are missing.
        """
        import pyogrio

        source = Path(path)
        if not source.exists():
            raise InputFileError(f"parcel file {source} does not exist; check the path.")
        try:
            layers = [str(name) for name, _ in pyogrio.list_layers(source)]
        except Exception as exc:  # pyogrio raises several GDAL error types
            raise InputFileError(f"cannot read {source} as a vector file: {exc}") from exc
        if layer not in layers and len(layers) != 1:
            raise LayerError(
                f"{source} has no layer {layer!r} (layers: {', '.join(layers)}); pick the "
                "parcels layer with --parcels-layer."
            )
        chosen = layer if layer in layers else layers[0]
        frame = pyogrio.read_dataframe(source, layer=chosen)
        streets = None
        if streets_layer and streets_layer in layers and streets_layer != chosen:
            streets = pyogrio.read_dataframe(source, layer=streets_layer, read_geometry=False)
        return cls.from_frame(
            frame, streets, fuzzy_cutoff=fuzzy_cutoff, source=f"{source} layer {chosen!r}"
        )

    @classmethod
    def from_project(cls, project: Project, *, fuzzy_cutoff: float = FUZZY_CUTOFF) -> Gazetteer:
        """Build a gazetteer from a project's ``parcels`` layer (and ``streets``, if stored).

        Args:
            project: An open project.
            fuzzy_cutoff: Lowest fuzzy score accepted.

        Returns:
            The gazetteer.

        Raises:
            LayerError: The project has no parcels layer.
            ColumnError: Required columns are missing.
        """
        names = {info.name for info in project.layers()}
        if "parcels" not in names:
            raise LayerError(
                f"project {project.path} has no 'parcels' layer; create it with `geolabel init "
                "--parcels ...`."
            )
        parcels = project.read_layer("parcels")
        streets = project.read_layer("streets") if "streets" in names else None
        return cls.from_frame(
            parcels, streets, fuzzy_cutoff=fuzzy_cutoff, source=f"{project.path} parcels"
        )

    # ---------------------------------------------------------------- indexing

    def _index(self, streets: pd.DataFrame | Iterable[str] | None) -> None:
        names: list[str] = []
        if isinstance(streets, pd.DataFrame):
            if "name" in streets.columns:
                names.extend(str(n) for n in streets["name"].dropna())
                if "order" in streets.columns:
                    for n, o in zip(streets["name"], streets["order"], strict=True):
                        number = _int(o)
                        if _text(n) is not None and number is not None:
                            self._order[normalize_street(str(n))] = number
        elif streets is not None:
            names.extend(str(n) for n in streets)
        rows = self.parcels.to_dict("records")
        for row in rows:
            pid = str(row["parcel_id"])
            street = _text(row.get("street"))
            if street is None:
                continue
            names.append(street)
            key = normalize_street(street)
            number = _int(row.get("house_number"))
            if number is not None:
                self._by_address.setdefault((key, number), []).append(pid)
                self._numbers.setdefault(key, []).append((number, pid))
            apn = _text(row.get("apn"))
            if apn:
                self._by_apn[re.sub(r"\D", "", apn)] = pid
            block, lot = _int(row.get("block")), _int(row.get("lot"))
            if block is not None and lot is not None:
                self._by_block_lot[(block, lot)] = pid
            cross_from, cross_to = _text(row.get("cross_from")), _text(row.get("cross_to"))
            if cross_from and cross_to:
                edge = (normalize_street(cross_from), normalize_street(cross_to))
                self._blocks.setdefault(key, {}).setdefault(edge, []).append(pid)
                names.extend((cross_from, cross_to))
            corner = _text(row.get("corner"))
            if corner and normalize_street(corner) != key:
                self._corners.setdefault(frozenset((key, normalize_street(corner))), []).append(pid)
                names.append(corner)
        for name in names:
            self.streets.setdefault(normalize_street(name), name)

    # ---------------------------------------------------------------- lookups

    def resolve_street(self, name: str) -> tuple[str, float] | None:
        """Find a street of the gazetteer by name: exactly, else fuzzily.

        Args:
            name: A street name as written in a notice.

        Returns:
            ``(normalised street, score)``: score 1.0 for an exact match of the normalised
            names, the ``difflib`` ratio for a fuzzy one; None when nothing scores at least
            ``fuzzy_cutoff``.
        """
        key = normalize_street(name)
        if key in self._resolved:
            return self._resolved[key]
        result: tuple[str, float] | None
        if key in self.streets:
            result = (key, 1.0)
        else:
            best, best_score = None, 0.0
            for candidate in self.streets:
                score = difflib.SequenceMatcher(None, key, candidate).ratio()
                if score > best_score:
                    best, best_score = candidate, score
            result = (
                (best, best_score) if best is not None and best_score >= self.fuzzy_cutoff else None
            )
        self._resolved[key] = result
        return result

    def _segment(self, street: str, a: str, b: str) -> list[str]:
        """Parcels on ``street`` whose block lies between the cross streets ``a`` and ``b``.

        With the streets' ``order`` (their position across the grid, from a streets layer), a
        block lies between when both its cross streets' orders are within ``[order(a),
        order(b)]``; without it, when it is on the chain of adjacent blocks from ``a`` to ``b``.
        """
        blocks = self._blocks.get(street, {})
        order = self._order
        if a in order and b in order and all(u in order and v in order for u, v in blocks):
            lo, hi = sorted((order[a], order[b]))
            return sorted(
                pid
                for (u, v), pids in blocks.items()
                if lo <= min(order[u], order[v]) and max(order[u], order[v]) <= hi
                for pid in pids
            )
        graph: dict[str, list[str]] = defaultdict(list)
        for u, v in blocks:
            graph[u].append(v)
            graph[v].append(u)
        if a not in graph or b not in graph:
            return []
        previous: dict[str, str | None] = {a: None}
        queue = deque([a])
        while queue:
            node = queue.popleft()
            if node == b:
                break
            for nxt in graph[node]:
                if nxt not in previous:
                    previous[nxt] = node
                    queue.append(nxt)
        if b not in previous:
            return []
        path_edges: set[frozenset[str]] = set()
        step: str | None = b
        while step is not None and previous[step] is not None:
            parent = previous[step]
            assert parent is not None
            path_edges.add(frozenset((step, parent)))
            step = parent
        return sorted(
            pid
            for (u, v), pids in blocks.items()
            if frozenset((u, v)) in path_edges
            for pid in pids
        )

    def link(self, notice_id: str, entity: EntitySpan) -> tuple[list[ParcelLink], str | None]:
        """Link one entity.

        Args:
            notice_id: The notice the entity is from.
            entity: An ADDRESS or PARCEL_ID span.

        Returns:
            The links, and the reason when there are none.
        """
        if entity.label == "PARCEL_ID":
            return self._link_parcel_id(notice_id, entity)
        if entity.label == "ADDRESS":
            return self._link_address(notice_id, entity)
        return [], f"{entity.label} entities are not linked to parcels"

    def _links(
        self, notice_id: str, entity: EntitySpan, pids: Iterable[str], method: str, score: float
    ) -> list[ParcelLink]:
        return [
            ParcelLink(notice_id, pid, entity, method, round(min(1.0, max(0.0, score)), 4))
            for pid in sorted(set(pids))
        ]

    def _link_parcel_id(
        self, notice_id: str, entity: EntitySpan
    ) -> tuple[list[ParcelLink], str | None]:
        text = entity.text
        block = re.search(r"\b(?:block|blk)\.?\s*(\d+)", text, re.IGNORECASE)
        lots = re.search(r"\blots?\s*(\d+)(?:\s*(?:and|&|-|–)\s*(\d+))?", text, re.IGNORECASE)
        if block and lots:
            numbers = [int(lots[1])] + ([int(lots[2])] if lots[2] else [])
            if lots[2] and "and" not in lots[0] and "&" not in lots[0]:
                numbers = list(range(int(lots[1]), int(lots[2]) + 1))
            pids = [
                self._by_block_lot[(int(block[1]), n)]
                for n in numbers
                if (int(block[1]), n) in self._by_block_lot
            ]
            if pids:
                return self._links(notice_id, entity, pids, "block_lot", 1.0), None
            return [], f"no parcel with block {block[1]}, lot {lots[1]} in the gazetteer"
        digits = re.sub(r"\D", "", text)
        if len(digits) >= 6:
            pid = self._by_apn.get(digits)
            if pid is not None:
                return self._links(notice_id, entity, [pid], "apn", 1.0), None
            return [], f"no parcel with APN {text!r} in the gazetteer"
        return [], f"{text!r} is neither an APN nor a block and lot"

    def _link_address(
        self, notice_id: str, entity: EntitySpan
    ) -> tuple[list[ParcelLink], str | None]:
        parsed = parse_address(entity.text)
        resolved = [self.resolve_street(s) for s in parsed.streets]
        unknown = [s for s, r in zip(parsed.streets, resolved, strict=True) if r is None]
        if parsed.kind == "street":
            return [], "a street without a house number or cross streets names no parcel"
        if unknown:
            return [], f"street {unknown[0]!r} is not in the gazetteer"
        keys = [r[0] for r in resolved if r is not None]
        score = min(r[1] for r in resolved if r is not None)
        if parsed.kind == "number":
            street = keys[0]
            if parsed.is_range:
                lo, hi = sorted(parsed.numbers)
                pids = [
                    pid
                    for n, pid in self._numbers.get(street, [])
                    if lo <= n <= hi and n % 2 == lo % 2
                ]
                method = "address_range"
            else:
                pids = [p for n in parsed.numbers for p in self._by_address.get((street, n), [])]
                method = "address_exact" if score >= 1.0 else "address_fuzzy"
            if pids:
                return self._links(notice_id, entity, pids, method, score), None
            numbers = "-".join(str(n) for n in parsed.numbers)
            return [], f"no parcel numbered {numbers} on {self.streets.get(street, street)}"
        if parsed.kind == "hundred_block":
            street, base = keys[0], parsed.numbers[0]
            pids = [pid for n, pid in self._numbers.get(street, []) if base <= n < base + 100]
            if pids:
                return self._links(notice_id, entity, pids, "hundred_block", score), None
            return (
                [],
                f"no parcel numbered {base}-{base + 99} on {self.streets.get(street, street)}",
            )
        if parsed.kind == "segment":
            pids = self._segment(*keys)
            if pids:
                return self._links(notice_id, entity, pids, "segment", score), None
            return [], "no block of that street lies between those cross streets"
        pids = self._corners.get(frozenset(keys), [])
        if pids:
            return self._links(notice_id, entity, pids, "intersection", score), None
        return [], "no corner parcels at that intersection"


def link_entities(
    notice_id: str,
    entities: Sequence[EntitySpan],
    gazetteer: Gazetteer | None,
    *,
    labels: Sequence[str] = ("ADDRESS", "PARCEL_ID"),
) -> tuple[tuple[ParcelLink, ...], tuple[UnlinkedEntity, ...]]:
    """Link a notice's locatable entities to parcels; report the ones that link nowhere.

    Args:
        notice_id: The notice.
        entities: Its entities (other labels are ignored).
        gazetteer: The parcel gazetteer; without one every locatable entity is unlinked.
        labels: Labels to link.

    Returns:
        ``(links, unlinked)``.
    """
    links: list[ParcelLink] = []
    unlinked: list[UnlinkedEntity] = []
    for entity in entities:
        if entity.label not in labels:
            continue
        if gazetteer is None:
            unlinked.append(UnlinkedEntity(notice_id, entity, "no parcel gazetteer was given"))
            continue
        found, reason = gazetteer.link(notice_id, entity)
        if found:
            links.extend(found)
        else:
            unlinked.append(UnlinkedEntity(notice_id, entity, reason or "no parcel matched"))
    return tuple(links), tuple(unlinked)
