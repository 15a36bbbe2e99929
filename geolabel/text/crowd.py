r"""Crowd NER: consensus spans from several annotators' spans, and span agreement per label.

Span annotations are a DataFrame with the columns :data:`SPAN_COLUMNS` -- ``item`` (the
notice), ``annotator``, ``start``, ``end`` (character offsets, end exclusive), ``label`` --
one row per span. An annotator who saw a notice and marked nothing says so with one row whose
``start``, ``end`` and ``label`` are missing; without it, their silence is not counted.

:class:`SpanVote` aggregates, as an estimator (``fit`` -> ``spans_``):

* ``method="span"`` -- each distinct ``(start, end, label)`` is kept when the (weighted)
  share of the item's annotators who marked it exceeds ``threshold``; kept spans that overlap
  are resolved by more votes, then longer, then earlier.
* ``method="token"`` -- each token (``\\w+`` runs and single punctuation marks of the text)
  takes the label most annotators gave it (``O`` included, ties to ``O``, then to the first
  label in sorted order); runs of tokens with the same label are one span, split where most
  of the annotators who gave the token that label started a span there.

Weights (``weights={annotator: w}``) let a reliability estimate -- from gold questions or a
crowd aggregator such as Dawid-Skene on the labels -- count some annotators more.

:func:`span_agreement` is the pairwise span F1 per label: for each pair of annotators and each
label, ``2 |A ∩ B| / (|A| + |B|)`` over the items both annotated (exact start, end and label),
averaged over the pairs that have at least one span of that label between them.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Mapping
from itertools import combinations
from typing import Any, Final, Literal, Self

import pandas as pd

from geolabel.errors import ColumnError, NotFittedError

__all__ = ["SPAN_COLUMNS", "SpanVote", "span_agreement"]

SPAN_COLUMNS: Final[tuple[str, ...]] = ("item", "annotator", "start", "end", "label")
"""Columns of a span-annotation frame."""

_TOKEN: Final = re.compile(r"\w+|[^\w\s]")


def _missing(value: object) -> bool:
    if value is None or value is pd.NA:
        return True
    return isinstance(value, float) and math.isnan(value)


def _parse(
    spans: pd.DataFrame, what: str
) -> tuple[dict[str, set[str]], dict[tuple[str, str], set[tuple[int, int, str]]]]:
    """Validate the frame; return annotators per item and span sets per (item, annotator)."""
    if not isinstance(spans, pd.DataFrame):
        raise ColumnError(f"{what} needs a pandas DataFrame, got {type(spans).__name__}.")
    missing = [c for c in SPAN_COLUMNS if c not in spans.columns]
    if missing:
        raise ColumnError(
            f"{what}: span annotations lack column(s) {', '.join(missing)} (columns: "
            f"{', '.join(map(str, spans.columns))}); expected {', '.join(SPAN_COLUMNS)}."
        )
    annotators: dict[str, set[str]] = defaultdict(set)
    marked: dict[tuple[str, str], set[tuple[int, int, str]]] = defaultdict(set)
    for position, row in enumerate(spans[list(SPAN_COLUMNS)].itertuples(index=False)):
        item, annotator, start, end, label = row
        if _missing(item) or _missing(annotator):
            raise ColumnError(f"{what}: row {position} has a blank item or annotator.")
        item, annotator = str(item), str(annotator)
        annotators[item].add(annotator)
        empties = [_missing(v) for v in (start, end, label)]
        if all(empties):
            continue  # saw the item, marked nothing
        if any(empties):
            raise ColumnError(
                f"{what}: row {position} ({item}, {annotator}) has some of start, end, label "
                "missing; give all three, or none for 'marked nothing'."
            )
        try:
            s, e = int(start), int(end)
        except (TypeError, ValueError) as exc:
            raise ColumnError(f"{what}: row {position}: start/end must be integers.") from exc
        if not 0 <= s < e:
            raise ColumnError(f"{what}: row {position}: needs 0 <= start < end, got {s}:{e}.")
        marked[(item, annotator)].add((s, e, str(label)))
    return annotators, marked


def span_agreement(spans: pd.DataFrame) -> pd.DataFrame:
    """Pairwise span F1 per label (exact match), averaged over annotator pairs.

    Args:
        spans: Span annotations (:data:`SPAN_COLUMNS`).

    Returns:
        One row per label, plus ``ALL`` (every label pooled), sorted by label, with columns
        ``label``, ``pairwise_f1`` (mean over pairs), ``n_pairs`` (pairs that had a span of
        the label on a shared item) and ``n_spans``.

    Raises:
        ColumnError: Columns or values are missing or malformed.
    """
    annotators, marked = _parse(spans, "span_agreement")
    by_annotator: dict[str, set[str]] = defaultdict(set)
    for item, names in annotators.items():
        for name in names:
            by_annotator[name].add(item)
    labels = sorted({lab for s in marked.values() for (_, _, lab) in s})
    scores: dict[str, list[float]] = defaultdict(list)
    for a, b in combinations(sorted(by_annotator), 2):
        shared = by_annotator[a] & by_annotator[b]
        if not shared:
            continue
        for label in [*labels, "ALL"]:
            tp = size = 0
            for item in shared:
                sa = {s for s in marked.get((item, a), set()) if label in ("ALL", s[2])}
                sb = {s for s in marked.get((item, b), set()) if label in ("ALL", s[2])}
                tp += len(sa & sb)
                size += len(sa) + len(sb)
            if size:
                scores[label].append(2 * tp / size)
    counts: dict[str, int] = defaultdict(int)
    for s in marked.values():
        for _, _, lab in s:
            counts[lab] += 1
            counts["ALL"] += 1
    rows = [
        {
            "label": label,
            "pairwise_f1": sum(scores[label]) / len(scores[label]) if scores[label] else math.nan,
            "n_pairs": len(scores[label]),
            "n_spans": counts[label],
        }
        for label in sorted([*labels, "ALL"])
    ]
    return pd.DataFrame(rows, columns=["label", "pairwise_f1", "n_pairs", "n_spans"])


class SpanVote:
    """Consensus spans by span-level or token-level weighted voting.

    Args:
        method: ``"span"`` or ``"token"`` (see the module docstring).
        threshold: Share of an item's (weighted) annotators a span needs, exclusive
            (``span`` method only); 0.5 is a strict majority.
        weights: Annotator weights (default 1 each; missing annotators weigh 1).

    Attributes:
        spans_: After ``fit``: ``item``, ``start``, ``end``, ``label``, ``support`` (weighted
            share of the item's annotators behind the span, in [0, 1]), ``annotators``
            (sorted list of those who marked exactly this span), sorted by item and start.
        n_annotators_: After ``fit``: annotators per item.
    """

    def __init__(
        self,
        method: Literal["span", "token"] = "span",
        threshold: float = 0.5,
        weights: Mapping[str, float] | None = None,
    ) -> None:
        self.method = method
        self.threshold = threshold
        self.weights = weights

    @property
    def spans_(self) -> pd.DataFrame:
        """The consensus spans (see the class docstring)."""
        if not hasattr(self, "_spans"):
            raise NotFittedError("SpanVote is not fitted; call fit(spans) first.")
        return self._spans

    @property
    def n_annotators_(self) -> dict[str, int]:
        """Annotators per item."""
        if not hasattr(self, "_n_annotators"):
            raise NotFittedError("SpanVote is not fitted; call fit(spans) first.")
        return self._n_annotators

    def fit(self, spans: pd.DataFrame, texts: Mapping[str, str] | None = None) -> Self:
        """Aggregate span annotations.

        Args:
            spans: Span annotations (:data:`SPAN_COLUMNS`).
            texts: Notice text per item; required by ``method="token"``.

        Returns:
            self.

        Raises:
            ColumnError: Bad method, threshold, weights or annotations; a missing text.
        """
        if self.method not in ("span", "token"):
            raise ColumnError(f"SpanVote method must be 'span' or 'token', got {self.method!r}.")
        if not 0 <= self.threshold < 1:
            raise ColumnError(f"SpanVote threshold must be in [0, 1), got {self.threshold}.")
        weights = dict(self.weights or {})
        bad = {k: v for k, v in weights.items() if not (isinstance(v, (int, float)) and v >= 0)}
        if bad:
            raise ColumnError(f"SpanVote weights must be non-negative numbers: {bad}.")
        annotators, marked = _parse(spans, "SpanVote.fit")
        if self.method == "token":
            if texts is None:
                raise ColumnError("SpanVote(method='token') needs the texts: fit(spans, texts).")
            absent = sorted(set(annotators) - set(texts))
            if absent:
                raise ColumnError(f"SpanVote: no text for item(s) {', '.join(absent[:5])}.")
        rows: list[dict[str, Any]] = []
        for item in sorted(annotators):
            names = sorted(annotators[item])
            w = {a: float(weights.get(a, 1.0)) for a in names}
            total = sum(w.values())
            if total <= 0:
                continue
            if self.method == "span":
                rows.extend(self._span_vote(item, names, w, total, marked))
            else:
                assert texts is not None
                rows.extend(self._token_vote(item, texts[item], names, w, total, marked))
        self._n_annotators = {item: len(names) for item, names in annotators.items()}
        self._spans = pd.DataFrame(
            rows, columns=["item", "start", "end", "label", "support", "annotators"]
        )
        return self

    def fit_predict(
        self, spans: pd.DataFrame, texts: Mapping[str, str] | None = None
    ) -> pd.DataFrame:
        """``fit`` and return ``spans_``.

        Args:
            spans: Span annotations.
            texts: Notice texts (token method).

        Returns:
            The consensus spans.
        """
        return self.fit(spans, texts).spans_

    def _span_vote(
        self,
        item: str,
        names: list[str],
        w: dict[str, float],
        total: float,
        marked: Mapping[tuple[str, str], set[tuple[int, int, str]]],
    ) -> list[dict[str, Any]]:
        votes: dict[tuple[int, int, str], list[str]] = defaultdict(list)
        for a in names:
            for span in marked.get((item, a), set()):
                votes[span].append(a)
        accepted = [
            (span, sum(w[a] for a in who) / total, sorted(who))
            for span, who in votes.items()
            if sum(w[a] for a in who) / total > self.threshold
        ]
        accepted.sort(key=lambda x: (-x[1], -(x[0][1] - x[0][0]), x[0][0], x[0][2]))
        kept: list[tuple[tuple[int, int, str], float, list[str]]] = []
        for candidate in accepted:
            s, e, _ = candidate[0]
            if all(e <= k[0][0] or k[0][1] <= s for k in kept):
                kept.append(candidate)
        return [
            {"item": item, "start": s, "end": e, "label": lab, "support": sup, "annotators": who}
            for (s, e, lab), sup, who in sorted(kept, key=lambda x: x[0])
        ]

    @staticmethod
    def _token_vote(
        item: str,
        text: str,
        names: list[str],
        w: dict[str, float],
        total: float,
        marked: Mapping[tuple[str, str], set[tuple[int, int, str]]],
    ) -> list[dict[str, Any]]:
        tokens = [(m.start(), m.end()) for m in _TOKEN.finditer(text)]
        label_votes: list[dict[str, float]] = [defaultdict(float) for _ in tokens]
        starts: list[dict[str, float]] = [defaultdict(float) for _ in tokens]
        for a in names:
            covered: list[str | None] = [None] * len(tokens)
            for s, e, lab in marked.get((item, a), set()):
                first = True
                for i, (ts, te) in enumerate(tokens):
                    if ts < e and s < te:
                        covered[i] = lab
                        label_votes[i][lab] += w[a]
                        if first:
                            starts[i][lab] += w[a]
                            first = False
            for i, seen in enumerate(covered):
                if seen is None:
                    label_votes[i]["O"] += w[a]
        rows: list[dict[str, Any]] = []
        current: dict[str, Any] | None = None
        for i, (ts, te) in enumerate(tokens):
            votes = label_votes[i]
            best = max(votes.values()) if votes else 0.0
            winners = sorted(k for k, v in votes.items() if v == best)
            label = "O" if not winners or "O" in winners else winners[0]
            if label == "O":
                current = None
                continue
            new_span = (
                current is None or current["label"] != label or starts[i][label] > votes[label] / 2
            )
            if new_span:
                current = {"item": item, "start": ts, "end": te, "label": label, "support": []}
                rows.append(current)
            assert current is not None
            current["end"] = te
            current["support"].append(votes[label] / total)
        for row in rows:
            row["support"] = min(row["support"])
            row["annotators"] = sorted(
                a
                for a in names
                if (row["start"], row["end"], row["label"]) in marked.get((item, a), set())
            )
        return rows
