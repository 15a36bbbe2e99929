"""The notice pipeline: spaCy's tokenizer (adjusted), a trained NER, and span-ruler rules on top.

A notice pipeline starts from ``spacy.blank("en")`` -- no downloaded model is needed -- and
holds, in order:

1. the notice tokenizer (:mod:`geolabel.text.tokenizer`);
2. ``tok2vec`` and ``ner`` -- a small CNN named-entity recognizer trained with spaCy's own
   training loop (:mod:`geolabel.text.train`), CPU, the ``efficiency`` preset; it finds every
   label, and is the only source of ``PROJECT`` and ``ORG`` and of addresses the rules miss;
3. ``rules`` -- spaCy's ``span_ruler`` with the JSONL patterns of
   :mod:`geolabel.text.patterns` (loaded in ``initialize``, saved with the pipeline). Its raw
   matches are kept in ``doc.spans["rules"]``; it then writes ``doc.ents`` by merging its
   matches with the model's entities through the precedence filter below.

Precedence between rules and model (:func:`rules_over_model`, registered as
``geolabel.rules_over_model.v1`` and named in the ruler's ``ents_filter``). Rules come in two
kinds: *form* rules (DATE, PARCEL_ID, ZONING, ADDRESS) and *name* rules (ORG and PROJECT by
their last word: "... Council", "... Inc.", "... Project"), which only fill the model's gaps.

1. Each rule match loses the lead-in and trailing words its pattern needed as context
   (``APN``, ``zoned``...; :data:`geolabel.text.patterns.LEAD_WORDS`); an address loses a
   final period that ends the sentence (after a full suffix word, or when the span's other
   abbreviations have none); an intersection match preceded by a comma and a street ("Pike
   Street, Market Street and Dale Road") is a list of streets and is dropped.
2. Overlapping form matches: the longest wins, then the earliest (``spacy.util.filter_spans``);
   two dates, or two times, joined by a connector (``to``, ``through``, ``until``, a dash, or
   ``and`` after ``between``) become one range.
3. The model's DATE, PARCEL_ID and ZONING entities are dropped (:data:`RULE_ONLY_LABELS`: on
   notices unlike its training data the model over-extends them, the rules do not); a model
   ORG or PROJECT whose last word is a clear head of the other label is relabelled.
4. A model entity that overlaps no form span is kept. One that overlaps form spans is kept,
   replacing them, only if it is an ORG or PROJECT strictly containing ADDRESS spans (a name
   that contains an address, "Oak Street and 3rd Avenue Signal Upgrade"); otherwise the form
   spans win and the model entity is dropped.
5. A name rule is kept where nothing else overlaps it, or replaces model names it strictly
   contains ("Marlow Hart Consulting LLP" over the model's "Hart Consulting LLP").

Rules are precise about form (dates, parcel ids, zoning codes and addresses look the same in
every city); the model is better at names and at context. Entities the rules made carry their
pattern id as ``span.id_`` (``"rule:address-segment"``); the model's carry none.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Final

import spacy
from spacy.matcher.levenshtein import levenshtein
from spacy.tokens import Span
from spacy.util import filter_spans, registry

from geolabel.errors import PipelineError
from geolabel.text import tokenizer as _tokenizer
from geolabel.text.patterns import (
    DATE_CONNECTORS,
    LEAD_WORDS,
    ORG_HEADS,
    PATTERNS_PATH,
    PROJECT_HEADS,
    STREET_SUFFIXES,
    TRAIL_WORDS,
    load_patterns,
)

if TYPE_CHECKING:
    from spacy.language import Language

__all__ = [
    "MAX_NOTICE_CHARS",
    "NAME_LABELS",
    "RULES_KEY",
    "RULE_ONLY_LABELS",
    "RULE_PREFIX",
    "SHIPPED_MODEL",
    "build_rules_pipeline",
    "load_pipeline",
    "model_version",
    "ocr_fuzzy_compare",
    "ruler_config",
    "rules_over_model",
    "shipped_pipeline",
]

RULES_KEY: Final = "rules"
"""``doc.spans`` key of the raw rule matches (and the name of the ruler component)."""

RULE_PREFIX: Final = "rule:"
"""Prefix of ``span.id_`` on entities the rules made."""

NAME_LABELS: Final[frozenset[str]] = frozenset({"PROJECT", "ORG"})
"""Names: the model's labels; name rules only fill its gaps."""

RULE_ONLY_LABELS: Final[frozenset[str]] = frozenset({"DATE", "PARCEL_ID", "ZONING"})
"""Labels taken from the rules only: the model's spans of these labels are dropped."""

SHIPPED_MODEL: Final[Path] = Path(__file__).parent / "model"
"""The pipeline that ships with geolabel, trained on the sample's notices."""

MAX_NOTICE_CHARS: Final = 100_000
"""Longest notice the pipeline accepts (characters); longer ones are refused, not cut."""


_BARE_ABBREVIATIONS: Final = frozenset(a for abbrs in STREET_SUFFIXES.values() for a in abbrs)
_SUFFIX_WORDS: Final = _BARE_ABBREVIATIONS | frozenset(STREET_SUFFIXES)


def _trim(span: Span) -> Span | None:
    """Drop the lead-in and trailing context words of a rule match (precedence step 1)."""
    lead = LEAD_WORDS.get(span.label_, frozenset())
    trail = TRAIL_WORDS.get(span.label_, frozenset())
    start, end = span.start, span.end
    doc = span.doc
    while start < end and doc[start].lower_ in lead:
        start += 1
    while end > start and doc[end - 1].lower_ in trail:
        end -= 1
    if (
        span.label_ == "ADDRESS"
        and end - start > 1
        and doc[end - 1].text == "."
        and (
            doc[end - 2].lower_ not in _BARE_ABBREVIATIONS
            or any(
                t.lower_ in _BARE_ABBREVIATIONS and doc[t.i + 1].text != "."
                for t in doc[start : end - 2]
            )
        )
    ):
        # "Oak Street." -- only an abbreviation takes a period; and "Oak St between 3rd Ave
        # and 6th Ave." -- street forms are consistent within a span, so a bare abbreviation
        # earlier means the final period ends the sentence.
        end -= 1
    if (
        span.id_ == "address-intersection"
        and start >= 2
        and doc[start - 1].text == ","
        and doc[start - 2].lower_.rstrip(".") in _SUFFIX_WORDS
    ):
        return None  # "Pike Street, Market Street and Dale Road": a list of streets
    if start >= end:
        return None
    return Span(doc, start, end, label=span.label, span_id=f"{RULE_PREFIX}{span.id_ or 'pattern'}")


def _join_ranges(spans: list[Span]) -> list[Span]:
    """Join DATE spans separated by one connector into a range (``June 1 to June 30``).

    Only two dates or two times are joined (a time and a date stay apart: "7 p.m. until
    Monday"). The connector is one of :data:`geolabel.text.patterns.DATE_CONNECTORS`, or
    ``and`` when the first date follows ``between`` (``between 9 a.m. and 4 p.m.``).
    """
    out: list[Span] = []
    for span in spans:
        if out and span.label_ == "DATE" and out[-1].label_ == "DATE":
            prev = out[-1]
            doc = span.doc
            gap = doc[prev.end : span.start]
            word = gap[0].lower_ if len(gap) == 1 else ""
            after_between = prev.start > 0 and doc[prev.start - 1].lower_ == "between"
            same_kind = ("time" in prev.id_) == ("time" in span.id_)
            if same_kind and (word in DATE_CONNECTORS or (word == "and" and after_between)):
                kind = "time-range" if "time" in span.id_ else "date-range"
                out[-1] = Span(doc, prev.start, span.end, label="DATE", span_id=RULE_PREFIX + kind)
                continue
        out.append(span)
    return out


def _relabel_by_head(ent: Span) -> Span:
    """Give a model PROJECT/ORG span the label its last word asks for (precedence step 3)."""
    if ent.label_ not in NAME_LABELS:
        return ent
    last = ent.end - 1
    if ent.doc[last].is_punct and last > ent.start:
        last -= 1  # "Inc." is "Inc" and "."
    head = ent.doc[last].lower_
    wanted = "ORG" if head in ORG_HEADS else "PROJECT" if head in PROJECT_HEADS else ent.label_
    if wanted == ent.label_:
        return ent
    return Span(ent.doc, ent.start, ent.end, label=wanted, span_id=ent.id_)


def rules_over_model(entities: Iterable[Span], spans: Iterable[Span]) -> list[Span]:
    """Merge the model's entities with rule matches by the documented precedence.

    Args:
        entities: ``doc.ents`` as the model left them (non-overlapping).
        spans: The rule matches (may overlap each other).

    Returns:
        Non-overlapping entities, sorted by start.
    """
    trimmed = [s for s in (_trim(span) for span in spans) if s is not None]
    forms = _join_ranges(filter_spans(s for s in trimmed if s.label_ not in NAME_LABELS))
    names = filter_spans(s for s in trimmed if s.label_ in NAME_LABELS)
    model = [_relabel_by_head(e) for e in entities if e.label_ not in RULE_ONLY_LABELS]

    kept: list[Span] = []
    beaten: set[tuple[int, int]] = set()
    for ent in model:
        overlapping = [r for r in forms if r.start < ent.end and ent.start < r.end]
        if not overlapping:
            kept.append(ent)
            continue
        wraps = all(
            ent.start <= r.start and r.end <= ent.end and (r.end - r.start) < len(ent)
            for r in overlapping
        )
        if wraps and ent.label_ in NAME_LABELS and all(r.label_ == "ADDRESS" for r in overlapping):
            kept.append(ent)
            beaten.update((r.start, r.end) for r in overlapping)
    kept.extend(r for r in forms if (r.start, r.end) not in beaten)
    # name rules fill gaps, or replace a model name they strictly contain
    for rule in names:
        clashes = [e for e in kept if e.start < rule.end and rule.start < e.end]
        if not clashes:
            kept.append(rule)
        elif all(
            e.label_ in NAME_LABELS
            and rule.start <= e.start
            and e.end <= rule.end
            and len(e) < len(rule)
            for e in clashes
        ):
            kept = [e for e in kept if e not in clashes]
            kept.append(rule)
    return sorted(kept, key=lambda s: (s.start, s.end))


@registry.misc("geolabel.rules_over_model.v1")
def make_rules_over_model() -> Callable[[Iterable[Span], Iterable[Span]], list[Span]]:
    """Return :func:`rules_over_model` (for the span ruler's ``ents_filter`` setting).

    Returns:
        The precedence filter.
    """
    return rules_over_model


_FUZZY_MIN_LENGTH: Final = 5


def ocr_fuzzy_compare(input_text: str, pattern_text: str, fuzzy: int = -1) -> bool:
    """Compare a token with a pattern word, tolerating one OCR error in long words.

    Words of :data:`_FUZZY_MIN_LENGTH` letters or more (``april``, ``october``) match with
    up to ``min(fuzzy, 1)`` edits (one when ``fuzzy`` is -1), so ``Apri1`` and ``0ctober`` are
    months; shorter words (``may``, ``nov.``) must match exactly, or "No." would be November.

    Args:
        input_text: The token's text (the attribute the pattern compares, e.g. LOWER).
        pattern_text: The word in the pattern.
        fuzzy: The edits the pattern allows (``FUZZY1`` gives 1; -1 for plain ``FUZZY``).

    Returns:
        Whether they match.
    """
    if len(pattern_text) < _FUZZY_MIN_LENGTH:
        return input_text == pattern_text
    edits = 1 if fuzzy < 0 else min(fuzzy, 1)
    if abs(len(input_text) - len(pattern_text)) > edits:
        return False  # cheap rejection of most tokens
    return bool(levenshtein(input_text, pattern_text, edits) <= edits)


@registry.misc("geolabel.ocr_fuzzy_compare.v1")
def make_ocr_fuzzy_compare() -> Callable[[str, str, int], bool]:
    """Return :func:`ocr_fuzzy_compare` (for the span ruler's ``matcher_fuzzy_compare``).

    Returns:
        The comparison function.
    """
    return ocr_fuzzy_compare


def ruler_config() -> dict[str, object]:
    """Return the ``span_ruler`` settings of the notice pipeline (a fresh dict each call).

    Returns:
        Config for ``nlp.add_pipe("span_ruler", name="rules", config=...)``.
    """
    return {
        "spans_key": RULES_KEY,
        "annotate_ents": True,
        "overwrite": False,
        "ents_filter": {"@misc": "geolabel.rules_over_model.v1"},
        "matcher_fuzzy_compare": {"@misc": "geolabel.ocr_fuzzy_compare.v1"},
        "validate": True,
    }


def build_rules_pipeline(
    patterns: str | PathLike[str] | Sequence[dict[str, object]] | None = None,
) -> Language:
    """Build a pipeline with the notice tokenizer and the rules only (no trained model).

    Args:
        patterns: A JSONL pattern file or the patterns themselves; the packaged patterns when
            None.

    Returns:
        An initialized pipeline: ``nlp(text).ents`` are the rule entities.

    Raises:
        InputFileError: The pattern file cannot be read.
    """
    nlp = spacy.blank("en")
    nlp.tokenizer = _tokenizer.customize_tokenizer(nlp)
    ruler = nlp.add_pipe("span_ruler", name=RULES_KEY, config=ruler_config())
    if patterns is None or isinstance(patterns, (str, PathLike)):
        loaded = load_patterns(PATTERNS_PATH if patterns is None else patterns)
    else:
        loaded = list(patterns)
    ruler.initialize(lambda: [], nlp=nlp, patterns=loaded)  # type: ignore[attr-defined]
    return nlp


def load_pipeline(path: str | PathLike[str] | None = None) -> Language:
    """Load a trained notice pipeline from a folder (``nlp.to_disk`` output).

    Args:
        path: Pipeline folder; the shipped pipeline when None.

    Returns:
        The pipeline.

    Raises:
        PipelineError: The folder is missing or is not a spaCy pipeline.
    """
    target = SHIPPED_MODEL if path is None else Path(path)
    if not (target / "config.cfg").is_file():
        hint = (
            "the geolabel installation is incomplete; reinstall it, or regenerate the model with "
            "`python -m geolabel.text.train_shipped`"
            if path is None
            else "give the folder `geolabel notices train ... -o FOLDER` wrote"
        )
        raise PipelineError(f"no spaCy pipeline at {target} (no config.cfg): {hint}")
    try:
        nlp = spacy.load(target)
    except (OSError, ValueError, KeyError) as exc:
        raise PipelineError(
            f"cannot load the spaCy pipeline at {target}: {exc}; retrain it with "
            "`geolabel notices train`"
        ) from exc
    nlp.max_length = MAX_NOTICE_CHARS
    return nlp


@functools.lru_cache(maxsize=1)
def shipped_pipeline() -> Language:
    """Return the shipped pipeline, loaded once per process.

    Returns:
        The pipeline (shared: do not add or remove components).
    """
    return load_pipeline(None)


def model_version(nlp: Language) -> str:
    """Return ``"name-version"`` of a pipeline, for provenance.

    Args:
        nlp: A pipeline.

    Returns:
        ``nlp.meta["name"]`` and ``nlp.meta["version"]`` joined by a hyphen.
    """
    return f"{nlp.meta.get('name', 'pipeline')}-{nlp.meta.get('version', '0.0.0')}"
