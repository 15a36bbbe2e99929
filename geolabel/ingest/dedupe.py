"""De-duplication: exact copies by content hash, near copies by shingled Jaccard similarity.

A notice's *shingles* are its runs of ``k`` consecutive words (lower-cased, punctuation
dropped); two notices are near duplicates when the Jaccard similarity of their shingle sets,
``|A ∩ B| / |A ∪ B|``, reaches a threshold. A notice republished with a new date changes a few
shingles only (the sample's notices reach ~0.83 against such a copy, while distinct notices
from the same template stay below ~0.61). Candidates are found through an inverted index
from shingle to notices, so only notices sharing a shingle are compared; shingles shared by
more than :data:`COMMON_SHINGLE_LIMIT` notices (boilerplate) are not indexed.

The first copy seen is kept: copies already in the store come before the pull's, and within a
pull, sources in the order of the source list. Every later copy is reported with the id of the
copy kept, so its provenance is not lost.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

__all__ = ["COMMON_SHINGLE_LIMIT", "Deduplicator", "Match", "jaccard", "shingles"]

COMMON_SHINGLE_LIMIT: Final = 200
"""Shingles in more notices than this are boilerplate and not used to find candidates."""

_WORD: Final = re.compile(r"\w+")


def shingles(text: str, k: int = 5) -> frozenset[str]:
    """Return the set of ``k``-word shingles of ``text`` (the whole text when shorter).

    Args:
        text: The text.
        k: Words per shingle.

    Returns:
        The shingles.
    """
    words = _WORD.findall(text.casefold())
    if len(words) <= k:
        return frozenset([" ".join(words)]) if words else frozenset()
    return frozenset(" ".join(words[i : i + k]) for i in range(len(words) - k + 1))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    """Jaccard similarity ``|a ∩ b| / |a ∪ b|`` (0 for two empty sets)."""
    union = len(a | b)
    return len(a & b) / union if union else 0.0


@dataclass(frozen=True, slots=True)
class Match:
    """A record found to be a copy of one kept earlier.

    Attributes:
        kind: ``exact`` (same content hash) or ``near`` (similar shingles).
        canonical_id: Id of the copy kept.
        similarity: 1.0 for exact copies, the Jaccard similarity for near ones.
        stored: Whether the kept copy was already in the store before this pull.
    """

    kind: str
    canonical_id: str
    similarity: float
    stored: bool


class Deduplicator:
    """Finds exact and near duplicates among records seen so far.

    Args:
        threshold: Jaccard similarity at which two texts are near duplicates (``None``: exact
            duplicates only, as for parcels).
        k: Words per shingle.
    """

    def __init__(self, threshold: float | None = 0.75, k: int = 5) -> None:
        self.threshold = threshold
        self.k = k
        self._by_hash: dict[str, tuple[str, bool]] = {}
        self._shingles: list[frozenset[str]] = []
        self._ids: list[tuple[str, bool]] = []
        self._index: dict[str, list[int]] = defaultdict(list)

    def _add(self, record_id: str, digest: str, text: str | None, stored: bool) -> None:
        self._by_hash.setdefault(digest, (record_id, stored))
        if self.threshold is None or text is None:
            return
        position = len(self._ids)
        sh = shingles(text, self.k)
        self._shingles.append(sh)
        self._ids.append((record_id, stored))
        for s in sh:
            postings = self._index[s]
            if len(postings) <= COMMON_SHINGLE_LIMIT:
                postings.append(position)

    def seed(self, records: Iterable[tuple[str, str, str | None]]) -> None:
        """Add records already stored: ``(id, content hash, text)``."""
        for record_id, digest, text in records:
            self._add(record_id, digest, text, stored=True)

    def find(self, digest: str, text: str | None = None) -> Match | None:
        """Return the kept copy a record duplicates, without remembering the record.

        Args:
            digest: The record's content hash.
            text: Its text (for near duplicates).

        Returns:
            The match (exact first, else the most similar near copy), or None.
        """
        if digest in self._by_hash:
            canonical, stored = self._by_hash[digest]
            return Match("exact", canonical, 1.0, stored)
        if self.threshold is not None and text is not None:
            best = self._nearest(shingles(text, self.k))
            if best is not None:
                position, similarity = best
                canonical, stored = self._ids[position]
                return Match("near", canonical, round(similarity, 4), stored)
        return None

    def add(self, record_id: str, digest: str, text: str | None = None) -> None:
        """Remember a record as kept (later copies of it are duplicates)."""
        self._add(record_id, digest, text, stored=False)

    def check(self, record_id: str, digest: str, text: str | None = None) -> Match | None:
        """Return the copy a record duplicates, or None and remember it as kept.

        Args:
            record_id: The record's id.
            digest: Its content hash.
            text: Its text (for near duplicates).

        Returns:
            The match, or None when the record is new.
        """
        match = self.find(digest, text)
        if match is None:
            self.add(record_id, digest, text)
        return match

    def _nearest(self, sh: frozenset[str]) -> tuple[int, float] | None:
        threshold = self.threshold
        if threshold is None or not sh:
            return None
        overlap: dict[int, int] = defaultdict(int)
        for s in sh:
            for position in self._index.get(s, ()):
                overlap[position] += 1
        best: tuple[int, float] | None = None
        for position, shared in sorted(overlap.items()):
            other = self._shingles[position]
            similarity = shared / (len(sh) + len(other) - shared)
            if similarity >= threshold and (best is None or similarity > best[1]):
                best = (position, similarity)
        return best
