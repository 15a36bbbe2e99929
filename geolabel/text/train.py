"""Training the notice NER with spaCy's own config and training loop, on CPU.

:func:`train_pipeline` takes annotated notices (from any reader in :mod:`geolabel.text.data`),
writes them as spaCy ``DocBin`` files in a temporary folder, fills in the packaged config
(``resources/notices.cfg``: spaCy's ``efficiency`` NER preset, the notice tokenizer, and the
span-ruler rules, whose patterns load in ``initialize``), and runs
``spacy.training.loop.train`` for a fixed number of steps. The model returned is the one after
the last step (not the best on dev), so the same data, seed and steps give the same model;
the dev set only feeds the progress log. Spans that do not fall on token boundaries are
snapped outward to whole tokens (``alignment_mode="expand"``) and reported.
"""

from __future__ import annotations

import contextlib
import io
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from geolabel.errors import PipelineError
from geolabel.text.patterns import PATTERNS_PATH
from geolabel.text.pipeline import MAX_NOTICE_CHARS
from geolabel.text.records import AnnotatedNotice

if TYPE_CHECKING:
    from spacy.language import Language
    from spacy.tokens import DocBin

__all__ = [
    "CONFIG_PATH",
    "TrainResult",
    "notices_to_docbin",
    "split_heldout",
    "train_pipeline",
]

CONFIG_PATH: Final[Path] = Path(__file__).parent / "resources" / "notices.cfg"
"""The packaged spaCy training config."""


@dataclass(frozen=True)
class TrainResult:
    """What a training run did.

    Attributes:
        n_train: Training notices.
        n_dev: Dev notices (the training notices themselves when none were given).
        labels: Entity labels the NER learned.
        max_steps: Optimizer steps run.
        seed: Random seed.
        dev_scores: spaCy's scores of the final pipeline on the dev notices (``ents_f``,
            ``ents_p``, ``ents_r``, ``ents_per_type``).
        snapped: Spans that did not fall on token boundaries and were widened, as
            ``"notice_id: 'text' (LABEL)"``.
        output: Where the pipeline was written, if anywhere.
    """

    n_train: int
    n_dev: int
    labels: tuple[str, ...]
    max_steps: int
    seed: int
    dev_scores: dict[str, Any] = field(default_factory=dict)
    snapped: tuple[str, ...] = ()
    output: str | None = None


def split_heldout(
    notices: Sequence[AnnotatedNotice], every: int = 5, offset: int = 4
) -> tuple[list[AnnotatedNotice], list[AnnotatedNotice]]:
    """Split notices into a training part and a held-out part, by position (fixed, no RNG).

    The notice at position ``i`` (0-based, in the order given) is held out when
    ``i % every == offset``; with the defaults that is every fifth notice (20%).

    Args:
        notices: The notices, in a fixed order (the sample's ``notice_id`` order).
        every: Period of the split.
        offset: Position within each period that is held out.

    Returns:
        ``(train, heldout)``.

    Raises:
        PipelineError: ``every`` < 2 or ``offset`` outside ``[0, every)``.
    """
    if every < 2 or not 0 <= offset < every:
        raise PipelineError(
            f"split_heldout needs every >= 2 and 0 <= offset < every, got every={every}, "
            f"offset={offset}"
        )
    train = [n for i, n in enumerate(notices) if i % every != offset]
    heldout = [n for i, n in enumerate(notices) if i % every == offset]
    return train, heldout


def notices_to_docbin(
    nlp: Language, notices: Sequence[AnnotatedNotice]
) -> tuple[DocBin, list[str]]:
    """Tokenize notices and attach their gold spans as ``doc.ents``.

    Args:
        nlp: A pipeline whose tokenizer is used (the notice tokenizer).
        notices: Annotated notices.

    Returns:
        The ``DocBin`` and the spans that had to be widened to token boundaries.
    """
    from spacy.tokens import DocBin

    docbin = DocBin(store_user_data=False)
    snapped: list[str] = []
    for notice in notices:
        doc = nlp.make_doc(notice.text)
        ents = []
        for e in notice.entities:
            span = doc.char_span(e.start, e.end, label=e.label)
            if span is None:
                span = doc.char_span(e.start, e.end, label=e.label, alignment_mode="expand")
                snapped.append(f"{notice.notice_id}: {e.text!r} ({e.label})")
            if span is not None:
                ents.append(span)
        from spacy.util import filter_spans

        doc.ents = filter_spans(ents)
        docbin.add(doc)
    return docbin, snapped


def _check_notices(notices: Sequence[AnnotatedNotice], what: str) -> None:
    if not notices:
        raise PipelineError(f"no {what} notices: training needs at least one annotated notice.")
    if not any(n.entities for n in notices):
        raise PipelineError(
            f"the {what} notices have no entity spans at all; annotate some before training."
        )
    too_long = [n.notice_id for n in notices if len(n.text) > MAX_NOTICE_CHARS]
    if too_long:
        raise PipelineError(
            f"{len(too_long)} {what} notice(s) exceed {MAX_NOTICE_CHARS:,} characters (e.g. "
            f"{too_long[0]}); split them first."
        )


def train_pipeline(
    train: Sequence[AnnotatedNotice],
    dev: Sequence[AnnotatedNotice] | None = None,
    *,
    output: str | PathLike[str] | None = None,
    max_steps: int | None = None,
    eval_frequency: int | None = None,
    seed: int = 0,
    patterns: str | PathLike[str] | None = None,
    name: str = "geolabel_notices",
    version: str = "1.0.0",
    verbose: bool = False,
    meta: dict[str, Any] | None = None,
) -> tuple[Language, TrainResult]:
    """Train the notice pipeline (NER + rules) on annotated notices.

    Args:
        train: Training notices.
        dev: Notices scored during training (log only); the training notices when None.
        output: Folder to write the trained pipeline to (``nlp.to_disk``); not written when
            None.
        max_steps: Optimizer steps (the config's 1500 when None).
        eval_frequency: Steps between dev evaluations in the log (config's when None).
        seed: Seed of spaCy's and thinc's random generators.
        patterns: JSONL pattern file for the rules; the packaged one when None.
        name: Pipeline name in ``meta.json``.
        version: Pipeline version in ``meta.json``.
        verbose: Print spaCy's training table to stderr.
        meta: Extra entries for ``nlp.meta["geolabel"]`` (data provenance).

    Returns:
        The trained pipeline and a summary.

    Raises:
        PipelineError: No notices, no spans, a notice too long, steps < 1, or spaCy refused
            the config.
    """
    from spacy.training.initialize import init_nlp
    from spacy.training.loop import train as spacy_train
    from spacy.util import fix_random_seed, load_config

    import geolabel.text.pipeline  # noqa: F401  (registers the ruler's filter and compare)

    _check_notices(train, "training")
    dev_notices = list(dev) if dev else list(train)
    _check_notices(dev_notices, "dev")
    if max_steps is not None and max_steps < 1:
        raise PipelineError(f"max_steps must be at least 1, got {max_steps}.")
    pattern_path = Path(patterns) if patterns is not None else PATTERNS_PATH
    if not pattern_path.is_file():
        raise PipelineError(f"pattern file {pattern_path} does not exist.")

    with tempfile.TemporaryDirectory(prefix="geolabel-train-") as tmp:
        folder = Path(tmp)
        import spacy

        from geolabel.text.tokenizer import customize_tokenizer

        tokenizer_nlp = spacy.blank("en")
        tokenizer_nlp.tokenizer = customize_tokenizer(tokenizer_nlp)
        train_bin, snapped = notices_to_docbin(tokenizer_nlp, train)
        dev_bin, _ = notices_to_docbin(tokenizer_nlp, dev_notices)
        train_bin.to_disk(folder / "train.spacy")
        dev_bin.to_disk(folder / "dev.spacy")
        overrides: dict[str, Any] = {
            "paths.train": str(folder / "train.spacy"),
            "paths.dev": str(folder / "dev.spacy"),
            "paths.patterns": str(pattern_path),
            "system.seed": seed,
        }
        if max_steps is not None:
            overrides["training.max_steps"] = max_steps
            overrides["training.eval_frequency"] = eval_frequency or max(1, max_steps)
        elif eval_frequency is not None:
            overrides["training.eval_frequency"] = eval_frequency
        try:
            config = load_config(CONFIG_PATH, overrides=overrides, interpolate=False)
            fix_random_seed(seed)
            log = sys.stderr if verbose else io.StringIO()
            with contextlib.redirect_stdout(log):
                nlp = init_nlp(config, use_gpu=-1)
                nlp, _ = spacy_train(nlp, None, use_gpu=-1, stdout=log, stderr=log)
        except (ValueError, KeyError, OSError) as exc:
            raise PipelineError(f"spaCy could not train the notice pipeline: {exc}") from exc
        from spacy.training import Example

        examples = [Example(nlp.make_doc(d.text), d) for d in dev_bin.get_docs(nlp.vocab)]
        scores = nlp.evaluate(examples)
    steps = int(config["training"]["max_steps"])
    labels = tuple(sorted(nlp.get_pipe("ner").labels))  # type: ignore[attr-defined]
    nlp.meta["name"] = name
    nlp.meta["version"] = version
    nlp.meta["description"] = (
        "geolabel notice pipeline: notice tokenizer, CNN NER (spaCy efficiency preset) and "
        "span-ruler rules with geolabel's precedence filter"
    )
    nlp.meta["geolabel"] = {
        "n_train": len(train),
        "n_dev": len(dev_notices),
        "max_steps": steps,
        "seed": seed,
        **(meta or {}),
    }
    nlp.max_length = MAX_NOTICE_CHARS
    result = TrainResult(
        n_train=len(train),
        n_dev=len(dev_notices),
        labels=labels,
        max_steps=steps,
        seed=seed,
        dev_scores={k: scores.get(k) for k in ("ents_f", "ents_p", "ents_r", "ents_per_type")},
        snapped=tuple(snapped),
        output=None if output is None else str(output),
    )
    if output is not None:
        target = Path(output)
        try:
            nlp.to_disk(target)
        except OSError as exc:
            raise PipelineError(f"cannot write the pipeline to {target}: {exc}") from exc
    return nlp, result
