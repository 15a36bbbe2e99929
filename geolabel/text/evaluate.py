"""Span scores: exact-match precision, recall and F1 per label and pooled (micro)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from geolabel.errors import SpanError
from geolabel.text.records import AnnotatedNotice, EntitySpan, LabelScore, SpanEvaluation

__all__ = ["evaluate_pipeline", "evaluate_spans", "label_score"]


def label_score(label: str, tp: int, fp: int, fn: int) -> LabelScore:
    """Compute precision, recall and F1 from counts.

    Precision is ``tp / (tp + fp)`` and recall ``tp / (tp + fn)``, each 0 when its
    denominator is 0; F1 is ``2 p r / (p + r)`` (0 when both are 0).

    Args:
        label: The label the counts are for.
        tp: True positives.
        fp: False positives.
        fn: False negatives.

    Returns:
        The score record.
    """
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return LabelScore(label, precision, recall, f1, tp, fp, fn)


def evaluate_spans(
    gold: Sequence[AnnotatedNotice], predicted: Sequence[Iterable[EntitySpan]]
) -> SpanEvaluation:
    """Score predicted spans against gold spans, notice by notice.

    A prediction is a true positive when a gold span of the same notice has the same
    ``start``, ``end`` and ``label`` (exact match, as spaCy's ``ents_f`` and CoNLL count).

    Args:
        gold: Annotated notices.
        predicted: For each gold notice, in the same order, the predicted spans.

    Returns:
        Per-label scores (every label in gold or predictions) and the micro average.

    Raises:
        SpanError: ``gold`` and ``predicted`` differ in length.
    """
    if len(gold) != len(predicted):
        raise SpanError(
            f"evaluate_spans needs one prediction list per gold notice: got {len(gold)} gold "
            f"notices and {len(predicted)} predictions"
        )
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    for notice, spans in zip(gold, predicted, strict=True):
        gold_keys = {e.key for e in notice.entities}
        pred_keys = {e.key for e in spans}
        for key in pred_keys & gold_keys:
            tp[key[2]] += 1
        for key in pred_keys - gold_keys:
            fp[key[2]] += 1
        for key in gold_keys - pred_keys:
            fn[key[2]] += 1
    labels = sorted(set(tp) | set(fp) | set(fn))
    per_label = tuple(label_score(lab, tp[lab], fp[lab], fn[lab]) for lab in labels)
    micro = label_score("micro", sum(tp.values()), sum(fp.values()), sum(fn.values()))
    return SpanEvaluation(per_label=per_label, micro=micro, n_notices=len(gold))


def evaluate_pipeline(
    nlp: object, gold: Sequence[AnnotatedNotice], *, batch_size: int = 64
) -> SpanEvaluation:
    """Run a pipeline over the gold notices' texts and score its entities.

    Args:
        nlp: A spaCy pipeline (``Language``).
        gold: Annotated notices.
        batch_size: ``nlp.pipe`` batch size.

    Returns:
        The scores.
    """
    from geolabel.text.extract import doc_entities

    docs = nlp.pipe((n.text for n in gold), batch_size=batch_size)  # type: ignore[attr-defined]
    return evaluate_spans(gold, [doc_entities(doc) for doc in docs])
