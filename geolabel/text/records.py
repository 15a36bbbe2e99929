"""Typed records that cross the lines of ``geolabel.text``: spans, notices, links, scores."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from geolabel.errors import SpanError

__all__ = [
    "LOCATABLE_LABELS",
    "NOTICE_LABELS",
    "AnnotatedNotice",
    "EntitySpan",
    "ExtractedNotice",
    "LabelScore",
    "NerPrediction",
    "NoticeRecord",
    "ParcelLink",
    "SpanEvaluation",
    "UnlinkedEntity",
]

NOTICE_LABELS: Final[tuple[str, ...]] = ("ADDRESS", "PARCEL_ID", "DATE", "PROJECT", "ORG", "ZONING")
"""The entity labels of the notice pipeline (the sample's ``notice_entities`` labels)."""

LOCATABLE_LABELS: Final[tuple[str, ...]] = ("ADDRESS", "PARCEL_ID")
"""Labels whose spans are linked to parcels; a span of these labels is linked or reported."""

_LABEL_RE: Final = re.compile(r"^[A-Z][A-Z0-9_]*$")


@dataclass(frozen=True, slots=True)
class EntitySpan:
    """One entity span in a notice's text (character offsets, end exclusive).

    Attributes:
        start: Offset of the first character.
        end: Offset one past the last character.
        label: Upper-case label (``ADDRESS``, ``DATE``...).
        text: The covered text, ``notice_text[start:end]``.
    """

    start: int
    end: int
    label: str
    text: str

    def __post_init__(self) -> None:
        if not _LABEL_RE.match(self.label):
            raise SpanError(
                f"entity label {self.label!r} is not an upper-case name such as ADDRESS or "
                "PARCEL_ID; rename it"
            )
        if not 0 <= self.start < self.end:
            raise SpanError(
                f"entity {self.text!r} ({self.label}) needs 0 <= start < end, got "
                f"start={self.start}, end={self.end}"
            )
        if len(self.text) != self.end - self.start:
            raise SpanError(
                f"entity text {self.text!r} has {len(self.text)} characters but its offsets "
                f"{self.start}:{self.end} span {self.end - self.start}; fix start/end"
            )

    def to_dict(self) -> dict[str, Any]:
        """Return ``{"start", "end", "label", "text"}`` (the JSONL form)."""
        return {"start": self.start, "end": self.end, "label": self.label, "text": self.text}

    @property
    def key(self) -> tuple[int, int, str]:
        """``(start, end, label)``, what span scores compare."""
        return (self.start, self.end, self.label)


@dataclass(frozen=True)
class AnnotatedNotice:
    """A notice text with its gold entity spans, for training and evaluation.

    Attributes:
        notice_id: Identifier (the input's ``notice_id``/``id``, or the line number).
        text: The text the offsets refer to.
        entities: Spans sorted by ``start``; each matches ``text[start:end]``.
        source: Where it came from (``"file.jsonl:12"``), for error messages.
    """

    notice_id: str
    text: str
    entities: tuple[EntitySpan, ...]
    source: str = ""

    def __post_init__(self) -> None:
        for entity in self.entities:
            if entity.end > len(self.text) or self.text[entity.start : entity.end] != entity.text:
                raise SpanError(
                    f"{self.source or self.notice_id}: entity {entity.text!r} "
                    f"({entity.label}) at {entity.start}:{entity.end} does not match the text "
                    f"there ({self.text[entity.start : entity.end]!r}); offsets must be "
                    "character offsets into 'text', end exclusive"
                )


@dataclass(frozen=True)
class NoticeRecord:
    """One notice read for extraction: its id, text and every other input field.

    Attributes:
        notice_id: The record's ``notice_id`` (or ``id``), else ``"<file stem>:<line>"``.
        text: The notice text, exactly as read (HTML is kept as text, never interpreted).
        fields: The input record's fields (for JSONL and CSV input), text and id included.
        source: ``"file:line"`` where the record was read.
    """

    notice_id: str
    text: str
    fields: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""


@dataclass(frozen=True, slots=True)
class ParcelLink:
    """A parcel an entity of a notice refers to.

    Attributes:
        notice_id: The notice.
        parcel_id: The parcel.
        entity: The span that located it.
        method: ``apn``, ``block_lot``, ``address_exact``, ``address_fuzzy``, ``segment`` or
            ``intersection``.
        confidence: In [0, 1]: 1 for exact matches, the fuzzy score otherwise.
    """

    notice_id: str
    parcel_id: str
    entity: EntitySpan
    method: str
    confidence: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.confidence <= 1.0:
            raise SpanError(f"link confidence must be in [0, 1], got {self.confidence}")


@dataclass(frozen=True, slots=True)
class UnlinkedEntity:
    """An ADDRESS or PARCEL_ID span that could not be linked, and why.

    Attributes:
        notice_id: The notice.
        entity: The span.
        reason: Why no parcel was linked (unknown street, no such APN, no gazetteer...).
    """

    notice_id: str
    entity: EntitySpan
    reason: str


@dataclass(frozen=True)
class ExtractedNotice:
    """What extraction and linking found in one notice.

    Attributes:
        record: The input record.
        entities: Spans found, sorted by ``start``.
        links: Parcel links (one per parcel and entity).
        unlinked: Locatable spans that linked to no parcel.
        kind: The notice kind (the record's ``kind`` field, or guessed from the text).
        dates: ISO dates read from the DATE spans, sorted and unique.
    """

    record: NoticeRecord
    entities: tuple[EntitySpan, ...]
    links: tuple[ParcelLink, ...] = ()
    unlinked: tuple[UnlinkedEntity, ...] = ()
    kind: str = "unknown"
    dates: tuple[str, ...] = ()

    @property
    def notice_id(self) -> str:
        """The notice's id."""
        return self.record.notice_id

    @property
    def parcel_ids(self) -> tuple[str, ...]:
        """Sorted ids of every linked parcel."""
        return tuple(sorted({link.parcel_id for link in self.links}))

    def to_dict(self) -> dict[str, Any]:
        """Return the JSONL output record: the input fields plus what was found.

        The input record's fields are kept as they were; added are ``entities``
        (``[{start, end, label, text}]``), ``parcels`` (linked parcel ids, sorted), ``links``
        (``[{parcel_id, method, confidence, start, end, label, text}]``), ``unlinked``
        (``[{start, end, label, text, reason}]``), ``notice_kind`` and ``notice_dates``.
        """
        out: dict[str, Any] = dict(self.record.fields)
        if "text" not in out:
            out["text"] = self.record.text
        if "notice_id" not in out and "id" not in out:
            out["notice_id"] = self.record.notice_id
        out["entities"] = [e.to_dict() for e in self.entities]
        out["parcels"] = list(self.parcel_ids)
        out["links"] = [
            {
                "parcel_id": link.parcel_id,
                "method": link.method,
                "confidence": round(link.confidence, 4),
                **link.entity.to_dict(),
            }
            for link in self.links
        ]
        out["unlinked"] = [{**u.entity.to_dict(), "reason": u.reason} for u in self.unlinked]
        out["notice_kind"] = self.kind
        out["notice_dates"] = list(self.dates)
        return out


@dataclass(frozen=True)
class NerPrediction:
    """A model's pre-label for one notice: the spans a human annotator starts from.

    Attributes:
        item: The notice id (the item id in a labeling project).
        text: The text the offsets refer to.
        spans: Predicted spans, sorted by ``start``.
        model_version: Name and version of the pipeline that predicted them.
        sources: Per span, ``"rule"`` or ``"model"`` (which part of the pipeline made it).
    """

    item: str
    text: str
    spans: tuple[EntitySpan, ...]
    model_version: str
    sources: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LabelScore:
    """Exact-match span scores of one label.

    Attributes:
        label: The label (``"micro"`` for the pooled score).
        precision: tp / (tp + fp), 0 when nothing was predicted.
        recall: tp / (tp + fn), 0 when nothing was expected.
        f1: Harmonic mean of precision and recall.
        tp: Predicted spans with the same start, end and label as a gold span.
        fp: Predicted spans that match no gold span.
        fn: Gold spans that no prediction matches.
    """

    label: str
    precision: float
    recall: float
    f1: float
    tp: int
    fp: int
    fn: int


@dataclass(frozen=True)
class SpanEvaluation:
    """Per-label and pooled (micro) span scores over a set of notices.

    Attributes:
        per_label: One score per label seen in gold or predictions, sorted by label.
        micro: Scores pooled over every label.
        n_notices: Notices scored.
    """

    per_label: tuple[LabelScore, ...]
    micro: LabelScore
    n_notices: int

    def as_dict(self) -> dict[str, Any]:
        """Return ``{"micro": {...}, "per_label": {label: {...}}, "n_notices": n}``."""
        from dataclasses import asdict

        return {
            "n_notices": self.n_notices,
            "micro": asdict(self.micro),
            "per_label": {s.label: asdict(s) for s in self.per_label},
        }
