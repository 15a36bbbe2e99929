"""Small helpers the format readers and writers share (file reading, times, annotator ids)."""

from __future__ import annotations

import hashlib
import json
import math
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from geolabel.errors import AnnotationImportError, InputFileError

__all__ = [
    "chip_url",
    "iso_time",
    "read_bytes",
    "read_json",
    "read_png",
    "seconds",
    "sha256_bytes",
    "write_png",
]


def read_bytes(path: str | os.PathLike[str], what: str) -> bytes:
    """Read a file, or raise :class:`InputFileError` naming it."""
    p = Path(path)
    try:
        return p.read_bytes()
    except OSError as exc:
        raise InputFileError(f"Cannot read the {what} {p}: {exc}.") from exc


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of bytes."""
    return hashlib.sha256(data).hexdigest()


def read_json(data: bytes, path: str | os.PathLike[str], what: str) -> Any:
    """Parse JSON, naming the file and the place where it breaks (truncated files)."""
    try:
        return json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise AnnotationImportError(
            f"{path} is not UTF-8 text ({exc}); nothing was imported. Export the {what} again."
        ) from exc
    except json.JSONDecodeError as exc:
        hint = (
            " The file ends early: it looks truncated (an interrupted download?)."
            if exc.pos >= len(data.rstrip()) - 1
            else ""
        )
        raise AnnotationImportError(
            f"{path} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}."
            f"{hint} Nothing was imported; export the {what} again."
        ) from exc


def iso_time(value: object) -> str | None:
    """An ISO-8601 UTC timestamp, or None for a missing/unparseable value."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        stamp = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    stamp = stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)
    return stamp.isoformat(timespec="microseconds")


def seconds(value: object) -> float | None:
    """A non-negative finite number of seconds, or None."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number >= 0 else None


def chip_url(chip_path: str, root: Path, url_prefix: str) -> str:
    """The URL a platform loads a chip from: ``url_prefix`` + path relative to ``root``."""
    rel = Path(chip_path).resolve().relative_to(root.resolve()).as_posix()
    return f"{url_prefix}{rel}"


def write_png(path: Path, rgb: np.ndarray) -> None:
    """Write a ``(3, height, width)`` uint8 array as an RGB PNG (no georeferencing)."""
    import warnings

    import rasterio
    from rasterio.errors import NotGeoreferencedWarning

    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with (
            rasterio.Env(GDAL_PAM_ENABLED="NO"),
            rasterio.open(
                path,
                "w",
                driver="PNG",
                width=rgb.shape[2],
                height=rgb.shape[1],
                count=3,
                dtype="uint8",
            ) as dst,
        ):
            dst.write(rgb.astype(np.uint8))


def read_png(data: bytes, what: str) -> np.ndarray:
    """Decode PNG bytes into a ``(3, height, width)`` array (grey repeated to 3 bands).

    Raises:
        AnnotationImportError: The bytes are not an image (``what`` names them).
    """
    import warnings

    from rasterio.errors import NotGeoreferencedWarning, RasterioIOError
    from rasterio.io import MemoryFile

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with MemoryFile(data) as memfile, memfile.open() as src:
                pixels = src.read()
    except RasterioIOError as exc:
        raise AnnotationImportError(f"{what} is not a readable PNG ({exc}).") from exc
    if pixels.shape[0] < 3:
        pixels = np.repeat(pixels[:1], 3, axis=0)
    return np.asarray(pixels[:3])
