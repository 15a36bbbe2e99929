"""Turn the hand-written, marked-up notices into JSONL with exact character offsets.

Source: ``notices_independent.txt`` beside this script. Each notice starts with a line
``@ ID kind``; lines starting with ``#`` are comments; entities are written inline as
``[the text](LABEL)``. The offsets are computed here, from the markup, so nobody counts
characters by hand. Output: ``notices_independent.jsonl``, one object per line with
``notice_id``, ``kind``, ``text`` and ``entities`` (``start``, ``end`` exclusive, ``label``,
``text``), sorted keys, UTF-8, LF line endings.

Run ``python tests/data/make_notices_independent.py`` after editing the source;
``tests/test_text_evaluate.py`` checks the JSONL is current.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "notices_independent.txt"
TARGET = HERE / "notices_independent.jsonl"
LABELS = ("ADDRESS", "PARCEL_ID", "DATE", "PROJECT", "ORG", "ZONING")
MARK = re.compile(r"\[([^\[\]]+)\]\((" + "|".join(LABELS) + r")\)")


def parse_markup(marked: str) -> tuple[str, list[dict[str, object]]]:
    """Return the plain text and the entity spans of one marked-up notice."""
    text_parts: list[str] = []
    entities: list[dict[str, object]] = []
    length = 0
    position = 0
    for match in MARK.finditer(marked):
        before = marked[position : match.start()]
        text_parts.append(before)
        length += len(before)
        covered, label = match.group(1), match.group(2)
        if covered != covered.strip():
            raise ValueError(f"entity {covered!r} starts or ends with whitespace")
        entities.append(
            {"start": length, "end": length + len(covered), "label": label, "text": covered}
        )
        text_parts.append(covered)
        length += len(covered)
        position = match.end()
    text_parts.append(marked[position:])
    text = "".join(text_parts)
    leftover = re.search(r"\]\((?:[A-Z_]+)\)", text)
    if leftover:
        raise ValueError(
            f"unparsed markup near {text[max(0, leftover.start() - 30) : leftover.end()]!r}"
        )
    return text, entities


def read_source(path: Path = SOURCE) -> list[dict[str, object]]:
    """Parse the source file into notice records."""
    records: list[dict[str, object]] = []
    header: tuple[str, str] | None = None
    lines: list[str] = []

    def flush() -> None:
        if header is None:
            return
        marked = "\n".join(lines).strip("\n")
        text, entities = parse_markup(marked)
        for e in entities:
            assert text[e["start"] : e["end"]] == e["text"]  # type: ignore[misc]
        records.append(
            {"notice_id": header[0], "kind": header[1], "text": text, "entities": entities}
        )

    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            continue
        if line.startswith("@ "):
            flush()
            notice_id, kind = line[2:].split()
            header = (notice_id, kind)
            lines = []
        else:
            lines.append(line.rstrip())
    flush()
    return records


def render(records: list[dict[str, object]]) -> str:
    """Return the JSONL text of the records."""
    return "".join(json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n" for r in records)


if __name__ == "__main__":
    notices = read_source()
    TARGET.write_text(render(notices), encoding="utf-8", newline="\n")
    n_entities = sum(len(n["entities"]) for n in notices)  # type: ignore[arg-type]
    print(f"wrote {len(notices)} notices with {n_entities} entities to {TARGET}")
