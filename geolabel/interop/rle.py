"""Label Studio's bit-packed brush RLE, encoded and decoded exactly as Label Studio does.

Label Studio stores a ``brushlabels`` mask as a run-length code over the *RGBA bytes* of an
``original_height`` × ``original_width`` image (the mask in every channel, so the alpha byte
is 255 inside the mask and 0 outside). It is not COCO RLE. The bit stream, as written by
``label_studio_sdk.converter.brush.encode_rle`` (and read by ``decode_rle``), is:

* 32 bits: the number of values (``4 × height × width``);
* 5 bits: word size − 1 (8-bit words);
* 4 × 4 bits: the four run-length field sizes − 1 (``3, 4, 8, 16`` bits);
* then blocks until every value is written: 1 bit *repeat flag*; 2 bits choosing one of the
  four field sizes; the run length − 1 in that many bits; then, for a repeat block, one word
  repeated *length* times, otherwise *length* literal words;
* zero bits pad the stream to whole bytes.

The value list Label Studio keeps in JSON is that byte string as a list of ints (``rle``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np

from geolabel.errors import AnnotationImportError

__all__ = ["decode_brush_rle", "decode_rle", "encode_brush_rle", "encode_rle"]

_WORD_SIZE: Final = 8
_RLE_SIZES: Final[tuple[int, int, int, int]] = (3, 4, 8, 16)


class _BitWriter:
    """Append unsigned integers MSB-first to a bit string."""

    def __init__(self) -> None:
        self._bits: list[str] = []

    def write(self, value: int, size: int) -> None:
        self._bits.append(format(value, f"0{size}b"))

    def to_bytes(self) -> list[int]:
        bits = "".join(self._bits)
        bits += "0" * (-len(bits) % 8)
        return [int(bits[i : i + 8], 2) for i in range(0, len(bits), 8)]


class _BitReader:
    """Read unsigned integers MSB-first from bytes."""

    def __init__(self, data: Sequence[int]) -> None:
        self._bits = "".join(format(int(b) & 0xFF, "08b") for b in data)
        self._i = 0

    def read(self, size: int) -> int:
        if self._i + size > len(self._bits):
            raise AnnotationImportError(
                "A brush RLE ends early (truncated or not Label Studio's bit-packed RLE); "
                "export the annotations again from Label Studio."
            )
        out = int(self._bits[self._i : self._i + size], 2)
        self._i += size
        return out


def _field(length: int) -> int:
    """Index of the smallest run-length field that holds ``length - 1``."""
    for k, size in enumerate(_RLE_SIZES):
        if length - 1 < (1 << size):
            return k
    return len(_RLE_SIZES) - 1


def encode_rle(values: np.ndarray) -> list[int]:
    """Encode a flat array of bytes with Label Studio's RLE.

    Runs of 2 or more equal values become repeat blocks; values between them are grouped in
    literal blocks. Blocks longer than the largest field (65 536 values) are split.

    Args:
        values: 1-D ``uint8`` values (the RGBA bytes of a mask).

    Returns:
        The encoded bytes as ints, as Label Studio's JSON ``rle`` holds them.
    """
    flat = np.asarray(values, dtype=np.uint8).ravel()
    n = int(flat.size)
    out = _BitWriter()
    out.write(n, 32)
    out.write(_WORD_SIZE - 1, 5)
    for size in _RLE_SIZES:
        out.write(size - 1, 4)
    limit = 1 << _RLE_SIZES[-1]
    if n:
        change = np.flatnonzero(np.diff(flat)) + 1
        starts = np.concatenate(([0], change))
        ends = np.concatenate((change, [n]))
    else:
        starts = ends = np.empty(0, dtype=np.int64)
    literal: list[int] = []

    def flush_literal() -> None:
        for s in range(0, len(literal), limit):
            chunk = literal[s : s + limit]
            k = _field(len(chunk))
            out.write(0, 1)
            out.write(k, 2)
            out.write(len(chunk) - 1, _RLE_SIZES[k])
            for word in chunk:
                out.write(word, _WORD_SIZE)
        literal.clear()

    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        length = end - start
        value = int(flat[start])
        if length == 1:
            literal.append(value)
            continue
        flush_literal()
        for s in range(0, length, limit):
            run = min(limit, length - s)
            k = _field(run)
            out.write(1, 1)
            out.write(k, 2)
            out.write(run - 1, _RLE_SIZES[k])
            out.write(value, _WORD_SIZE)
    flush_literal()
    return out.to_bytes()


def decode_rle(rle: Sequence[int]) -> np.ndarray:
    """Decode Label Studio's RLE into the flat array of values it encodes.

    Args:
        rle: The encoded bytes.

    Returns:
        The decoded ``uint8`` values.

    Raises:
        AnnotationImportError: The stream is truncated or malformed.
    """
    bits = _BitReader(rle)
    n = bits.read(32)
    word_size = bits.read(5) + 1
    sizes = [bits.read(4) + 1 for _ in range(4)]
    out = np.zeros(n, dtype=np.uint8)
    i = 0
    while i < n:
        repeat = bits.read(1)
        j = i + 1 + bits.read(sizes[bits.read(2)])
        if j > n:
            raise AnnotationImportError(
                f"A brush RLE writes past its declared size ({j} > {n} values); it is damaged."
            )
        if repeat:
            out[i:j] = bits.read(word_size)
        else:
            for k in range(i, j):
                out[k] = bits.read(word_size)
        i = j
    return out


def encode_brush_rle(mask: np.ndarray) -> list[int]:
    """Encode a 2-D boolean mask as a Label Studio ``brushlabels`` RLE.

    Args:
        mask: ``(height, width)`` mask; true pixels are painted.

    Returns:
        The ``rle`` list for a result with ``original_height``/``original_width`` = the shape.
    """
    m = np.asarray(mask).astype(bool)
    rgba = np.repeat((m.astype(np.uint8) * 255)[:, :, None], 4, axis=2)
    return encode_rle(rgba.ravel())


def decode_brush_rle(rle: Sequence[int], height: int, width: int) -> np.ndarray:
    """Decode a ``brushlabels`` RLE into a boolean mask (painted where alpha > 127).

    Args:
        rle: The result's ``rle`` list.
        height: The result's ``original_height``.
        width: The result's ``original_width``.

    Returns:
        ``(height, width)`` boolean mask.

    Raises:
        AnnotationImportError: The RLE does not decode to ``4 × height × width`` values.
    """
    flat = decode_rle(rle)
    if flat.size != 4 * height * width:
        raise AnnotationImportError(
            f"A brush RLE holds {flat.size} values but original_width × original_height × 4 is "
            f"{4 * height * width}; the result does not belong to this image."
        )
    return np.asarray(flat.reshape(height, width, 4)[:, :, 3] > 127)
