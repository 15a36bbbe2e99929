r"""Reading sources from files: tables, JSON, vector files, saved pages, feeds and plain text.

Every reader returns :class:`~geolabel.ingest.records.RawRecord`\ s with the source's own field
names (the mapping to geolabel's schema happens in :mod:`geolabel.ingest.normalize`), plus the
records it could not read as :class:`~geolabel.ingest.records.Problem`\ s, and the text
encodings it detected. A file that cannot be read at all raises.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from geolabel.errors import EncodingError, IngestConfigError, InputFileError
from geolabel.ingest.config import SourceConfig
from geolabel.ingest.html import extract_page, html_to_text
from geolabel.ingest.records import Problem, RawRecord

__all__ = ["ReadResult", "decode_bytes", "read_bytes", "read_file_source", "records_from_json"]

_RECORD_KEYS: Final = ("data", "records", "items", "results", "rows", "features", "value")
_ATOM: Final = "{http://www.w3.org/2005/Atom}"


@dataclass
class ReadResult:
    """Records read from one source.

    Attributes:
        records: Readable records, in source order.
        problems: Records that could not be read (malformed lines, rows...).
        encodings: Text encodings detected, with the number of files in each.
        requests: HTTP requests made (portals only).
        retries: HTTP retries, each with its reason (portals only).
    """

    records: list[RawRecord] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    encodings: Counter[str] = field(default_factory=Counter)
    requests: int = 0
    retries: list[str] = field(default_factory=list)

    def extend(self, other: ReadResult) -> None:
        """Add another result's records, problems and counts to this one."""
        self.records.extend(other.records)
        self.problems.extend(other.problems)
        self.encodings.update(other.encodings)
        self.requests += other.requests
        self.retries.extend(other.retries)


def decode_bytes(raw: bytes, encoding: str, where: str) -> tuple[str, str]:
    """Decode bytes as UTF-8 (BOM dropped) or, failing that, Windows-1252.

    Args:
        raw: The bytes.
        encoding: ``auto`` or a codec name to use as is.
        where: The file or page, for messages.

    Returns:
        The text and the encoding used (``utf-8`` or ``cp1252``...).

    Raises:
        EncodingError: UTF-16, or bytes that are neither UTF-8 nor Windows-1252.
    """
    if encoding != "auto":
        try:
            return raw.decode(encoding), encoding
        except UnicodeDecodeError as exc:
            raise EncodingError(
                f"{where} is not {encoding}: byte 0x{raw[exc.start]:02x} at offset {exc.start}; "
                "set encoding = 'auto' or the file's real encoding."
            ) from exc
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise EncodingError(
            f"{where} is UTF-16 text; save it as UTF-8 (`iconv -f UTF-16 -t UTF-8`)."
        )
    try:
        return raw.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError as utf8_error:
        try:
            return raw.decode("cp1252"), "cp1252"
        except UnicodeDecodeError as exc:
            raise EncodingError(
                f"{where} is neither UTF-8 nor Windows-1252 (byte 0x{raw[utf8_error.start]:02x} "
                f"at offset {utf8_error.start}); convert it to UTF-8 or set its encoding."
            ) from exc


def _plain(value: Any) -> Any:
    """Turn numpy/pandas scalars into plain Python values (NaN and NaT -> None)."""
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, np.generic):
        return _plain(value.item())
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise InputFileError(f"{path} does not exist; check the source's location.") from exc
    except OSError as exc:
        raise InputFileError(f"cannot read {path}: {exc}") from exc


def _csv(text: str, name: str, delimiter: str, out: ReadResult, source: str) -> None:
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    if not reader.fieldnames:
        raise InputFileError(f"{name} has no header row; the first line must name the columns.")
    for number, row in enumerate(reader, start=2):
        origin = f"{name}:{number}"
        if None in row:
            out.problems.append(
                Problem(
                    source,
                    origin,
                    "malformed_row",
                    f"{origin} has more fields than the header; quote values with commas.",
                )
            )
            continue
        out.records.append(RawRecord(dict(row), origin))


def records_from_json(data: Any, records_path: str | None, where: str) -> list[Any]:
    """Find the list of records in a JSON document.

    Args:
        data: The parsed document.
        records_path: Dot path to the list (``"result.records"``), or None to guess (a list,
            or the first of ``data``/``records``/``items``/``results``/``rows``/``features``).
        where: The file or page, for messages.

    Returns:
        The records (not yet checked to be objects).

    Raises:
        InputFileError: No list of records where expected.
    """
    node = data
    if records_path:
        for part in records_path.split("."):
            if not isinstance(node, Mapping) or part not in node:
                raise InputFileError(
                    f"{where}: no {records_path!r} in the JSON (stopped at {part!r}); fix "
                    "records_path."
                )
            node = node[part]
    elif isinstance(node, Mapping):
        for key in _RECORD_KEYS:
            if isinstance(node.get(key), list):
                node = node[key]
                break
    if not isinstance(node, list):
        raise InputFileError(
            f"{where}: expected a JSON list of records, got a {type(node).__name__}; set "
            "records_path to where the list is."
        )
    return node


def _json_records(
    data: Any, name: str, config: SourceConfig, out: ReadResult, origin_prefix: str = ""
) -> None:
    if isinstance(data, Mapping) and data.get("type") == "FeatureCollection":
        _vector(json.dumps(data).encode(), name, config, out)
        return
    for number, item in enumerate(records_from_json(data, config.records_path, name), start=1):
        origin = f"{origin_prefix or name} #{number}"
        if not isinstance(item, Mapping):
            out.problems.append(
                Problem(
                    config.name,
                    origin,
                    "malformed_record",
                    f"{origin} is a JSON {type(item).__name__}, not an object.",
                )
            )
            continue
        out.records.append(RawRecord(dict(item), origin))


def _jsonl(text: str, name: str, config: SourceConfig, out: ReadResult) -> None:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        origin = f"{name}:{number}"
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            out.problems.append(
                Problem(config.name, origin, "malformed_json", f"{origin}: {exc.msg}.")
            )
            continue
        if not isinstance(item, Mapping):
            out.problems.append(
                Problem(config.name, origin, "malformed_record", f"{origin} is not an object.")
            )
            continue
        out.records.append(RawRecord(dict(item), origin))


def _vector(data: bytes | Path, name: str, config: SourceConfig, out: ReadResult) -> None:
    import pyogrio
    import pyogrio.errors

    try:
        gdf = pyogrio.read_dataframe(data, layer=config.layer)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
        raise InputFileError(
            f"{name} is not a readable vector file (GeoJSON, GeoPackage, Shapefile or a zip "
            f"of one): {exc}"
        ) from exc
    crs = gdf.crs.to_string() if gdf.crs is not None else config.crs
    columns = [c for c in gdf.columns if c != gdf.geometry.name]
    for number, (values, geometry) in enumerate(
        zip(gdf[columns].itertuples(index=False, name=None), gdf.geometry, strict=True), start=1
    ):
        fields = {c: _plain(v) for c, v in zip(columns, values, strict=True)}
        out.records.append(RawRecord(fields, f"{name} #{number}", geometry, crs))


def _xlsx(raw: bytes, name: str, config: SourceConfig, out: ReadResult) -> None:
    try:
        frame = pd.read_excel(io.BytesIO(raw), sheet_name=config.sheet or 0, dtype=object)
    except ValueError as exc:
        raise InputFileError(f"{name} is not a readable XLSX workbook: {exc}") from exc
    except ImportError as exc:  # pragma: no cover - openpyxl is a dependency
        raise InputFileError(f"reading {name} needs openpyxl: pip install openpyxl") from exc
    for number, row in enumerate(frame.to_dict(orient="records"), start=2):
        out.records.append(
            RawRecord({str(k): _plain(v) for k, v in row.items()}, f"{name}:{number}")
        )


def _text_of(element: ET.Element | None) -> str | None:
    if element is None:
        return None
    return "".join(element.itertext()).strip() or None


def _feed(text: str, name: str, config: SourceConfig, out: ReadResult) -> None:
    try:
        root = ET.fromstring(text.encode("utf-8"))
    except ET.ParseError as exc:
        raise InputFileError(f"{name} is not a well-formed RSS or Atom feed: {exc}") from exc
    if root.tag == f"{_ATOM}feed":
        entries = root.findall(f"{_ATOM}entry")
        for number, entry in enumerate(entries, start=1):
            link = entry.find(f"{_ATOM}link")
            body = entry.find(f"{_ATOM}content")
            if body is None:
                body = entry.find(f"{_ATOM}summary")
            category = entry.find(f"{_ATOM}category")
            fields = {
                "id": _text_of(entry.find(f"{_ATOM}id")),
                "title": _text_of(entry.find(f"{_ATOM}title")),
                "text": html_to_text(_text_of(body) or ""),
                "published": _text_of(entry.find(f"{_ATOM}published"))
                or _text_of(entry.find(f"{_ATOM}updated")),
                "link": link.get("href") if link is not None else None,
                "category": category.get("term") if category is not None else None,
            }
            out.records.append(RawRecord(fields, f"{name} entry {number}"))
        return
    channel = root.find("channel")
    if root.tag != "rss" or channel is None:
        raise InputFileError(
            f"{name} is neither an RSS 2.0 (<rss><channel>) nor an Atom (<feed>) feed."
        )
    for number, item in enumerate(channel.findall("item"), start=1):
        fields = {
            "id": _text_of(item.find("guid")) or _text_of(item.find("link")),
            "title": _text_of(item.find("title")),
            "text": html_to_text(_text_of(item.find("description")) or ""),
            "published": _text_of(item.find("pubDate")),
            "link": _text_of(item.find("link")),
            "category": _text_of(item.find("category")),
        }
        out.records.append(RawRecord(fields, f"{name} item {number}"))


def _html(text: str, name: str, out: ReadResult) -> None:
    page = extract_page(text)
    fields: dict[str, Any] = {
        "page": Path(name).stem,
        "title": page.title,
        "text": page.text,
        "published": page.published,
    }
    fields.update({f"meta:{k}": v for k, v in page.meta.items()})
    out.records.append(RawRecord(fields, name))


def read_bytes(raw: bytes, kind: str, name: str, config: SourceConfig) -> ReadResult:
    """Read one file's bytes as ``kind``.

    Args:
        raw: The file's content.
        kind: One of :data:`~geolabel.ingest.config.FILE_KINDS`.
        name: Its name in origins and messages (a relative path, or a portal resource name).
        config: The source (encoding, layer, sheet, records path, CRS).

    Returns:
        The records read.

    Raises:
        InputFileError: The file cannot be read as ``kind``.
        EncodingError: Its text is neither UTF-8 nor Windows-1252.
    """
    out = ReadResult()
    if kind in ("gpkg", "shapefile", "geojson"):
        _vector(raw, name, config, out)
        return out
    if kind == "xlsx":
        _xlsx(raw, name, config, out)
        return out
    text, encoding = decode_bytes(raw, config.encoding, name)
    out.encodings[encoding] += 1
    if not text.strip():
        raise InputFileError(f"{name} is empty.")
    if kind == "csv":
        _csv(text, name, "\t" if name.lower().endswith(".tsv") else ",", out, config.name)
    elif kind == "json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputFileError(
                f"{name} is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})."
            ) from exc
        _json_records(data, name, config, out)
    elif kind == "jsonl":
        _jsonl(text, name, config, out)
    elif kind == "html":
        _html(text, name, out)
    elif kind == "feed":
        _feed(text, name, config, out)
    elif kind == "text":
        out.records.append(RawRecord({"page": Path(name).stem, "text": text}, name))
    else:
        raise IngestConfigError(f"source {config.name!r}: {kind!r} is not a file kind.")
    return out


def _folder_files(folder: Path, kind: str) -> Iterator[Path]:
    suffixes = {"html": (".html", ".htm"), "text": (".txt",), "feed": (".xml", ".rss", ".atom")}
    wanted = suffixes.get(kind)
    if wanted is None:
        raise IngestConfigError(
            f"{folder} is a folder; only html, text and feed sources can be folders (give the "
            "file itself)."
        )
    yield from sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in wanted)


def read_file_source(config: SourceConfig) -> ReadResult:
    """Read a file source (a file, or a folder of pages, text files or feeds).

    Args:
        config: The source.

    Returns:
        Every record of the file(s).

    Raises:
        InputFileError: The location is missing, empty or unreadable.
        EncodingError: A text file is neither UTF-8 nor Windows-1252.
        IngestConfigError: The kind does not fit the location.
    """
    kind = config.resolved_kind
    location = Path(config.location)
    if not location.exists():
        raise InputFileError(
            f"source {config.name!r}: {location} does not exist; check its location."
        )
    if location.is_dir():
        out = ReadResult()
        files = list(_folder_files(location, kind))
        if not files:
            raise InputFileError(f"source {config.name!r}: {location} holds no {kind} files.")
        for path in files:
            name = f"{location.name}/{path.relative_to(location).as_posix()}"
            out.extend(read_bytes(_read(path), kind, name, config))
        return out
    if kind in ("gpkg", "shapefile", "geojson"):
        out = ReadResult()
        _vector(location, location.name, config, out)
        return out
    return read_bytes(_read(location), kind, location.name, config)
