"""Reading notices: annotated ones for training, raw ones for extraction.

Annotated notices come from JSONL, Label Studio, Prodigy or the sample; raw notices for
extraction from text, CSV or JSONL files.

Every reader checks what a user can get wrong and says so with the file and line: empty
files, text that is not UTF-8 (the byte, where, and the likely encoding), JSON that does not
parse, a CSV or JSONL without the text column, spans outside their text or overlapping, and
notices longer than :data:`geolabel.text.pipeline.MAX_NOTICE_CHARS`. Text is kept exactly as
read -- HTML markup included, as text, never interpreted -- because entity offsets refer to it.

Annotated formats (``read_annotated(path, fmt="auto")``):

* ``jsonl`` -- one object per line: ``{"text": ..., "entities": [{"start", "end", "label"}]}``
  (offsets in characters, end exclusive; an optional ``"text"`` per entity is checked, and an
  optional ``notice_id``/``id`` names the notice);
* ``prodigy`` -- a Prodigy ``db-out`` export (JSONL with ``spans`` and ``answer``); only
  accepted answers are read, rejected and ignored ones are counted in the result;
* ``label-studio`` -- a Label Studio JSON export (a list of tasks with ``data.text`` and
  ``annotations[].result[]`` of type ``labels``); the first annotation that was not
  cancelled is read;
* the sample (:func:`read_sample_annotations`): ``notices.jsonl`` texts joined by
  ``notice_id`` with the gold spans of ``truth/notices.jsonl``.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any, Final, Literal

from geolabel.errors import (
    ColumnError,
    EncodingError,
    InputFileError,
    NoticeTooLongError,
    SpanError,
)
from geolabel.text.records import AnnotatedNotice, EntitySpan, NoticeRecord

__all__ = [
    "ANNOTATED_FORMATS",
    "AnnotatedData",
    "read_annotated",
    "read_notice_records",
    "read_sample_annotations",
    "read_text_file",
]

ANNOTATED_FORMATS: Final[tuple[str, ...]] = ("auto", "jsonl", "prodigy", "label-studio")
"""Formats :func:`read_annotated` reads."""

_DEFAULT_MAX_CHARS: Final = 100_000  # kept equal to pipeline.MAX_NOTICE_CHARS (tested)
_ID_KEYS: Final = ("notice_id", "id")


@dataclass(frozen=True)
class AnnotatedData:
    """Annotated notices read from a file.

    Attributes:
        notices: The notices, in file order.
        path: The file.
        fmt: The format read (``jsonl``, ``prodigy``, ``label-studio``, ``sample``).
        n_skipped: Records not used (Prodigy answers other than ``accept``, cancelled or
            unannotated Label Studio tasks).
    """

    notices: tuple[AnnotatedNotice, ...]
    path: str
    fmt: str
    n_skipped: int = 0


# --------------------------------------------------------------------------------------------
# Text files
# --------------------------------------------------------------------------------------------


def _encoding_hint(raw: bytes) -> str:
    for name in ("cp1252", "latin-1"):
        try:
            raw.decode(name)
        except UnicodeDecodeError:
            continue
        label = "Windows-1252" if name == "cp1252" else "Latin-1 (ISO-8859-1)"
        iconv = "WINDOWS-1252" if name == "cp1252" else "ISO-8859-1"
        return f"it looks like {label}; convert it with `iconv -f {iconv} -t UTF-8`"
    return "convert it to UTF-8"


def read_text_file(path: str | PathLike[str]) -> str:
    """Read a whole file as UTF-8 text, refusing empty files and other encodings clearly.

    A UTF-8 byte-order mark is dropped. UTF-16 (with a BOM) and any byte sequence that is not
    UTF-8 raise :class:`EncodingError` naming the byte, its line and offset, and the likely
    encoding with the command that converts it.

    Args:
        path: The file.

    Returns:
        The text.

    Raises:
        InputFileError: The file is missing, unreadable, empty or only whitespace.
        EncodingError: The file is not UTF-8.
    """
    source = Path(path)
    if source.is_dir():
        raise InputFileError(f"{source} is a folder; give the notice files inside it.")
    try:
        raw = source.read_bytes()
    except FileNotFoundError as exc:
        raise InputFileError(f"{source} does not exist; check the path.") from exc
    except OSError as exc:
        raise InputFileError(f"cannot read {source}: {exc.strerror or exc}") from exc
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise EncodingError(
            f"{source} is UTF-16 text, not UTF-8; save it as UTF-8 (e.g. `iconv -f UTF-16 -t "
            f"UTF-8 {source} > {source.stem}.utf8{source.suffix}`)."
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise EncodingError(
            f"{source} is not UTF-8 text: byte 0x{raw[exc.start]:02x} at offset {exc.start} "
            f"(line {line}) is not valid UTF-8; {_encoding_hint(raw)}."
        ) from exc
    if not text.strip():
        raise InputFileError(f"{source} is empty; it holds no notices.")
    return text


def _jsonl_records(text: str, source: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputFileError(
                f"{source}:{number} is not valid JSON ({exc.msg} at column {exc.colno}); each "
                "line of a JSONL file must be one JSON object."
            ) from exc
        if not isinstance(record, dict):
            raise InputFileError(
                f"{source}:{number} is a JSON {type(record).__name__}, not an object; each line "
                'must be an object such as {"text": ...}.'
            )
        yield number, record


def _record_id(record: Mapping[str, Any], fallback: str) -> str:
    for key in _ID_KEYS:
        value = record.get(key)
        if value is not None and str(value).strip():
            return str(value).strip()
    return fallback


def _check_length(text: str, where: str, max_chars: int) -> None:
    if len(text) > max_chars:
        raise NoticeTooLongError(
            f"{where}: the notice has {len(text):,} characters, over the limit of "
            f"{max_chars:,}; split it into smaller notices, or raise the limit (--max-chars, at "
            "most 1,000,000) if it really is one notice."
        )


# --------------------------------------------------------------------------------------------
# Notices for extraction
# --------------------------------------------------------------------------------------------


def read_notice_records(
    path: str | PathLike[str],
    *,
    text_column: str = "text",
    max_chars: int = _DEFAULT_MAX_CHARS,
) -> list[NoticeRecord]:
    """Read notices to extract entities from: a text file, a CSV or a JSON Lines file.

    * ``.jsonl``/``.ndjson``: one JSON object per line, the text under ``text_column``; every
      other field is kept and written back by ``extract``.
    * ``.csv``: a header row, the text in ``text_column``; other columns are kept (as text).
    * anything else (``.txt``...): the whole file is one notice, its id the file name stem.

    Ids come from a ``notice_id`` (or ``id``) field, else ``"<file stem>:<line or row>"``.

    Args:
        path: The file.
        text_column: Field or column holding the notice text.
        max_chars: Longest notice accepted.

    Returns:
        The notices, in file order.

    Raises:
        InputFileError: Missing, empty or malformed file.
        EncodingError: The file is not UTF-8.
        ColumnError: No ``text_column``; a blank or non-text notice; duplicate ids.
        NoticeTooLongError: A notice is longer than ``max_chars``.
    """
    source = Path(path)
    text = read_text_file(source)
    suffix = source.suffix.lower()
    records: list[NoticeRecord] = []
    if suffix in (".jsonl", ".ndjson"):
        for number, record in _jsonl_records(text, source):
            where = f"{source}:{number}"
            if text_column not in record:
                raise ColumnError(
                    f"{where} has no {text_column!r} field (fields: "
                    f"{', '.join(map(str, record)) or 'none'}); name the text field with "
                    "--text-column."
                )
            records.append(_notice(record, text_column, where, f"{source.stem}:{number}"))
    elif suffix == ".csv":
        reader = csv.DictReader(io.StringIO(text, newline=""))
        columns = list(reader.fieldnames or [])
        if text_column not in columns:
            raise ColumnError(
                f"{source} has no {text_column!r} column (columns: "
                f"{', '.join(columns) or 'none'}); name the column holding the notice text "
                "with --text-column."
            )
        for row_number, row in enumerate(reader, start=2):
            if None in row:
                raise InputFileError(
                    f"{source}:{row_number} has more fields than the header; quote text that "
                    "contains commas."
                )
            record = {k: ("" if v is None else v) for k, v in row.items()}
            where = f"{source}:{row_number}"
            records.append(_notice(record, text_column, where, f"{source.stem}:{row_number}"))
    else:
        where = str(source)
        _check_length(text, where, max_chars)
        records.append(NoticeRecord(source.stem, text, {}, where))
    if not records:
        raise InputFileError(f"{source} holds no notices (only blank lines or a header).")
    for r in records:
        _check_length(r.text, r.source, max_chars)
    seen: dict[str, str] = {}
    for r in records:
        if r.notice_id in seen:
            raise ColumnError(
                f"notice id {r.notice_id!r} appears twice ({seen[r.notice_id]} and {r.source}); "
                "ids must be unique so links and outputs stay attached to the right notice."
            )
        seen[r.notice_id] = r.source
    return records


def _notice(record: dict[str, Any], text_column: str, where: str, fallback: str) -> NoticeRecord:
    value = record[text_column]
    if not isinstance(value, str):
        raise ColumnError(
            f"{where}: {text_column!r} is a {type(value).__name__}, not text; put the notice "
            "text there as a string."
        )
    if not value.strip():
        raise ColumnError(
            f"{where}: {text_column!r} is blank; remove the record or fill in the notice text."
        )
    return NoticeRecord(_record_id(record, fallback), value, dict(record), where)


# --------------------------------------------------------------------------------------------
# Annotated notices
# --------------------------------------------------------------------------------------------


def _spans(
    items: Sequence[Any], text: str, where: str, *, keys: tuple[str, str, str]
) -> tuple[EntitySpan, ...]:
    """Validate raw span dicts against ``text``; return them sorted and checked for overlaps."""
    start_key, end_key, label_key = keys
    spans: list[EntitySpan] = []
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise SpanError(f"{where}: entity {i} is not an object with start, end and label.")
        try:
            start, end = int(item[start_key]), int(item[end_key])
            label = item[label_key]
        except (KeyError, TypeError, ValueError) as exc:
            raise SpanError(
                f"{where}: entity {i} needs integer {start_key!r}, {end_key!r} and a "
                f"{label_key!r} ({exc!s})."
            ) from exc
        if isinstance(label, list):
            if len(label) != 1:
                raise SpanError(f"{where}: entity {i} has {len(label)} labels; give exactly one.")
            label = label[0]
        if not 0 <= start < end <= len(text):
            raise SpanError(
                f"{where}: entity {i} ({label}) has offsets {start}:{end} outside the text "
                f"(length {len(text)}); offsets are character positions, end exclusive."
            )
        covered = text[start:end]
        given = item.get("text")
        if isinstance(given, str) and given != covered:
            raise SpanError(
                f"{where}: entity {i} says {given!r} but the text at {start}:{end} is "
                f"{covered!r}; fix the offsets."
            )
        spans.append(EntitySpan(start, end, str(label), covered))
    spans.sort(key=lambda s: (s.start, s.end))
    for a, b in itertools.pairwise(spans):
        if b.start < a.end:
            raise SpanError(
                f"{where}: entities {a.text!r} ({a.label}) and {b.text!r} ({b.label}) overlap; "
                "a notice's entities must not overlap (keep the one the conventions ask for)."
            )
    return tuple(spans)


def _detect_format(source: Path, text: str) -> str:
    stripped = text.lstrip()
    if stripped.startswith("["):
        return "label-studio"
    first = next(_jsonl_records(text, source), None)
    if first is None:
        raise InputFileError(f"{source} holds no records.")
    record = first[1]
    if "spans" in record or "answer" in record or "_input_hash" in record:
        return "prodigy"
    if "entities" in record:
        return "jsonl"
    if "data" in record and "annotations" in record:
        return "label-studio"
    raise InputFileError(
        f"{source}: cannot tell the annotation format from its first record (keys: "
        f"{', '.join(map(str, record))}); expected 'text' with 'entities' (JSONL), 'spans' "
        "(Prodigy) or a Label Studio export; or name it with --format."
    )


def read_annotated(
    path: str | PathLike[str],
    fmt: Literal["auto", "jsonl", "prodigy", "label-studio"] = "auto",
    *,
    max_chars: int = _DEFAULT_MAX_CHARS,
) -> AnnotatedData:
    """Read annotated notices for training or evaluation.

    Args:
        path: JSONL, Prodigy JSONL or Label Studio JSON export.
        fmt: One of :data:`ANNOTATED_FORMATS`; ``auto`` looks at the content.
        max_chars: Longest notice accepted.

    Returns:
        The notices and what was skipped.

    Raises:
        InputFileError: Missing, empty or malformed file, or an unknown format.
        EncodingError: The file is not UTF-8.
        ColumnError: A record has no text.
        SpanError: A span does not fit its text, or spans overlap.
        NoticeTooLongError: A notice is longer than ``max_chars``.
    """
    source = Path(path)
    if fmt not in ANNOTATED_FORMATS:
        raise InputFileError(
            f"unknown annotation format {fmt!r}; use one of {', '.join(ANNOTATED_FORMATS)}."
        )
    text = read_text_file(source)
    kind = _detect_format(source, text) if fmt == "auto" else fmt
    if kind == "label-studio":
        notices, skipped = _read_label_studio(source, text, max_chars)
    else:
        notices, skipped = _read_jsonl_annotations(source, text, kind, max_chars)
    if not notices:
        raise InputFileError(
            f"{source} holds no usable annotated notices ({skipped} record(s) skipped: "
            "rejected, ignored, cancelled or unannotated)."
        )
    return AnnotatedData(tuple(notices), str(source), kind, skipped)


def _text_of(record: Mapping[str, Any], where: str) -> str:
    value = record.get("text")
    if not isinstance(value, str) or not value.strip():
        raise ColumnError(
            f"{where} has no notice text: each record needs a non-blank 'text' string."
        )
    return value


def _read_jsonl_annotations(
    source: Path, text: str, kind: str, max_chars: int
) -> tuple[list[AnnotatedNotice], int]:
    notices: list[AnnotatedNotice] = []
    skipped = 0
    key = "spans" if kind == "prodigy" else "entities"
    for number, record in _jsonl_records(text, source):
        where = f"{source}:{number}"
        if kind == "prodigy" and record.get("answer", "accept") != "accept":
            skipped += 1
            continue
        body = _text_of(record, where)
        _check_length(body, where, max_chars)
        raw = record.get(key, [])
        if not isinstance(raw, list):
            raise SpanError(f"{where}: {key!r} must be a list of spans.")
        spans = _spans(raw, body, where, keys=("start", "end", "label"))
        notices.append(
            AnnotatedNotice(_record_id(record, f"{source.stem}:{number}"), body, spans, where)
        )
    return notices, skipped


def _read_label_studio(
    source: Path, text: str, max_chars: int
) -> tuple[list[AnnotatedNotice], int]:
    try:
        tasks = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputFileError(
            f"{source} is not valid JSON ({exc.msg} at line {exc.lineno}); export the project "
            "from Label Studio as JSON."
        ) from exc
    if isinstance(tasks, dict):
        tasks = [tasks]
    if not isinstance(tasks, list):
        raise InputFileError(f"{source}: a Label Studio export is a JSON list of tasks.")
    notices: list[AnnotatedNotice] = []
    skipped = 0
    for index, task in enumerate(tasks):
        where = f"{source} task {task.get('id', index) if isinstance(task, dict) else index}"
        if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
            raise InputFileError(f"{where}: a task needs a 'data' object holding the text.")
        data = task["data"]
        body = data.get("text")
        if not isinstance(body, str):
            strings = [v for v in data.values() if isinstance(v, str)]
            body = strings[0] if len(strings) == 1 else None
        if not isinstance(body, str) or not body.strip():
            raise ColumnError(
                f"{where}: data has no 'text' field (fields: {', '.join(map(str, data))}); "
                "the labeling config must label a text named 'text'."
            )
        _check_length(body, where, max_chars)
        annotations = [
            a
            for a in task.get("annotations", []) or []
            if isinstance(a, dict) and not a.get("was_cancelled", False)
        ]
        if not annotations:
            skipped += 1
            continue
        results = [
            r["value"]
            for r in annotations[0].get("result", []) or []
            if isinstance(r, dict)
            and r.get("type") == "labels"
            and isinstance(r.get("value"), dict)
        ]
        spans = _spans(results, body, where, keys=("start", "end", "labels"))
        notice_id = _record_id(data, str(task.get("id", index)))
        notices.append(AnnotatedNotice(notice_id, body, spans, where))
    return notices, skipped


def read_sample_annotations(sample_dir: str | PathLike[str]) -> AnnotatedData:
    """Read a sample folder's notices with their gold spans.

    Args:
        sample_dir: A folder written by ``geolabel sample`` (``notices.jsonl`` and
            ``truth/notices.jsonl``).

    Returns:
        The notices in ``notices.jsonl`` order, format ``"sample"``.

    Raises:
        InputFileError: A file is missing, or a notice has no truth record.
        SpanError: A gold span does not match its text.
    """
    folder = Path(sample_dir)
    texts_path, truth_path = folder / "notices.jsonl", folder / "truth" / "notices.jsonl"
    texts = {
        _record_id(r, str(n)): (n, r)
        for n, r in _jsonl_records(read_text_file(texts_path), texts_path)
    }
    truth = {
        _record_id(r, str(n)): r for n, r in _jsonl_records(read_text_file(truth_path), truth_path)
    }
    missing = sorted(set(texts) - set(truth))
    if missing:
        raise InputFileError(
            f"{truth_path} has no gold spans for notice(s) {', '.join(missing[:5])}; regenerate "
            "the sample with `geolabel sample`."
        )
    notices = []
    for notice_id, (number, record) in texts.items():
        where = f"{texts_path}:{number}"
        body = _text_of(record, where)
        spans = _spans(
            truth[notice_id].get("entities", []), body, where, keys=("start", "end", "label")
        )
        notices.append(AnnotatedNotice(notice_id, body, spans, where))
    return AnnotatedData(tuple(notices), str(folder), "sample", 0)
