"""A small, strict UBJSON decoder for XGBoost's native model format.

It reads what ``Booster.save_raw(raw_format="ubj")`` writes (XGBoost 3.x) and, more generally,
UBJSON draft 12: objects ``{`` ``}``, arrays ``[`` ``]``, the optimised container form with
``$type`` and ``#count``, and the markers ``Z N T F i U I l L d D S H C`` (big-endian).

Decoded values:

* objects -> ``dict[str, Any]``, generic arrays -> ``list``;
* *typed numeric* arrays (``[$d#...``, ``[$l#...``, ...) -> read-only 1-D ``numpy.ndarray`` in
  native byte order (one ``numpy.frombuffer`` per array: a model's trees are almost all typed
  arrays, so a 250 KB model decodes in a few milliseconds); other typed arrays -> ``list``;
* integers -> ``int``, ``d``/``D`` -> ``float``, ``S``/``C`` -> ``str``, ``H`` (high-precision
  number) -> ``int`` or ``float``, ``T``/``F`` -> ``bool``, ``Z`` -> ``None``; ``N`` (no-op) is
  skipped where a value may start.

Anything else - an unknown marker, a truncated buffer, a negative or impossible count, invalid
UTF-8, nesting deeper than :data:`MAX_DEPTH`, trailing bytes - raises ``ValueError``.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

__all__ = ["MAX_DEPTH", "loads"]

MAX_DEPTH = 64  # an XGBoost model nests 6 deep; the limit keeps hostile input off the C stack

# Fixed-size scalars: marker -> (struct format, size, numpy dtype for typed arrays).
_SCALARS: dict[int, tuple[struct.Struct, int, str]] = {
    ord(m): (struct.Struct(fmt), struct.calcsize(fmt), dtype)
    for m, fmt, dtype in [
        ("i", ">b", ">i1"),
        ("U", ">B", ">u1"),
        ("I", ">h", ">i2"),
        ("l", ">i", ">i4"),
        ("L", ">q", ">i8"),
        ("d", ">f", ">f4"),
        ("D", ">d", ">f8"),
    ]
}
_INTS = frozenset(ord(c) for c in "iUIlL")
_NOOP, _NULL, _TRUE, _FALSE = ord("N"), ord("Z"), ord("T"), ord("F")
_STR, _HIGH, _CHAR = ord("S"), ord("H"), ord("C")
_ARR, _ARR_END, _OBJ, _OBJ_END = ord("["), ord("]"), ord("{"), ord("}")
_TYPE, _COUNT = ord("$"), ord("#")
# Markers allowed after ``$``: scalars, strings and nested containers (``N`` is not a value).
_TYPED_OK = frozenset(_SCALARS) | {_NULL, _TRUE, _FALSE, _STR, _HIGH, _CHAR, _ARR, _OBJ}


def loads(data: bytes | bytearray | memoryview) -> Any:
    """Decode one UBJSON value that spans all of ``data``.

    Parameters
    ----------
    data : bytes-like
        The encoded value.

    Returns
    -------
    Any
        The decoded value (see the module docstring for the types).

    Raises
    ------
    ValueError
        Malformed, truncated or unsupported input, or bytes after the value.
    """
    reader = _Reader(bytes(data))
    value = reader.value(reader.marker(), 0)
    if reader.pos != len(reader.buf):
        raise ValueError(f"UBJSON: {len(reader.buf) - reader.pos} trailing bytes")
    return value


class _Reader:
    """Cursor over the buffer; every read is bounds-checked (truncation -> ``ValueError``)."""

    __slots__ = ("buf", "pos")

    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        self.pos = 0

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if n < 0 or end > len(self.buf):
            raise ValueError(f"UBJSON: truncated at byte {self.pos} (needs {n} more)")
        chunk = self.buf[self.pos : end]
        self.pos = end
        return chunk

    def marker(self) -> int:
        """Next marker, skipping no-ops (``N``)."""
        buf = self.buf
        while self.pos < len(buf) and buf[self.pos] == _NOOP:
            self.pos += 1
        if self.pos >= len(buf):
            raise ValueError("UBJSON: truncated (expected a marker)")
        m = buf[self.pos]
        self.pos += 1
        return m

    def scalar(self, m: int) -> Any:
        st, size, _ = _SCALARS[m]
        pos = self.pos
        if pos + size > len(self.buf):
            raise ValueError(f"UBJSON: truncated at byte {pos} (needs {size} more)")
        self.pos = pos + size
        return st.unpack_from(self.buf, pos)[0]

    def length(self) -> int:
        """A length or count: an integer-typed value (no no-op before it), never negative."""
        buf, pos = self.buf, self.pos
        if pos >= len(buf):
            raise ValueError("UBJSON: truncated (expected a length)")
        m = buf[pos]
        if m not in _INTS:
            raise ValueError(f"UBJSON: length must be an integer, not marker {bytes([m])!r}")
        st, size, _ = _SCALARS[m]
        if pos + 1 + size > len(buf):
            raise ValueError(f"UBJSON: truncated at byte {pos}")
        n = st.unpack_from(buf, pos + 1)[0]
        self.pos = pos + 1 + size
        if n < 0:
            raise ValueError("UBJSON: negative length")
        return int(n)

    def text(self) -> str:
        n = self.length()
        pos = self.pos
        if pos + n > len(self.buf):
            raise ValueError(f"UBJSON: truncated string at byte {pos}")
        self.pos = pos + n
        try:
            return self.buf[pos : pos + n].decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError("UBJSON: string is not valid UTF-8") from None

    def value(self, m: int, depth: int) -> Any:
        if m in _SCALARS:
            return self.scalar(m)
        if m == _STR:
            return self.text()
        if m == _OBJ or m == _ARR:
            if depth >= MAX_DEPTH:
                raise ValueError(f"UBJSON: nesting deeper than {MAX_DEPTH}")
            return self.container(m == _OBJ, depth + 1)
        if m == _NULL:
            return None
        if m == _TRUE:
            return True
        if m == _FALSE:
            return False
        if m == _CHAR:
            return self.take(1).decode("latin-1")  # a 1-byte char; bytes >127 are not UTF-8
        if m == _HIGH:
            return _high_precision(self.text())
        raise ValueError(f"UBJSON: unknown marker {bytes([m])!r} at byte {self.pos - 1}")

    def container(self, is_obj: bool, depth: int) -> Any:
        # Optimised form: [$type] #count, no end marker; otherwise values until the end marker.
        typ = count = None
        buf = self.buf
        if self.pos < len(buf) and buf[self.pos] == _TYPE:
            self.pos += 1
            typ = self.take(1)[0]
            if typ not in _TYPED_OK:
                raise ValueError(f"UBJSON: invalid container type {bytes([typ])!r}")
            if self.take(1)[0] != _COUNT:
                raise ValueError("UBJSON: '$' type without '#' count")
            count = self.length()
        elif self.pos < len(buf) and buf[self.pos] == _COUNT:
            self.pos += 1
            count = self.length()
        if not is_obj and typ in _SCALARS and count is not None:
            _, size, dtype = _SCALARS[typ]
            raw = self.take(count * size)
            # frombuffer + astype: one copy into native order, no Python loop over elements.
            arr = np.frombuffer(raw, dtype=dtype).astype(dtype.replace(">", "="))
            arr.flags.writeable = False
            return arr
        if count is not None and count > len(buf) - self.pos:
            # Elements take >= 1 byte (except payload-less ones, which XGBoost never writes as a
            # typed container): refuse before looping over a huge count.
            raise ValueError(f"UBJSON: count {count} exceeds the remaining bytes")
        out: Any = {} if is_obj else []
        i = 0
        while True:
            if count is None:
                if self.pos >= len(buf):
                    raise ValueError("UBJSON: truncated container")
                if buf[self.pos] == _NOOP:
                    self.pos += 1
                    continue
                if buf[self.pos] == (_OBJ_END if is_obj else _ARR_END):
                    self.pos += 1
                    return out
            elif i == count:
                return out
            if is_obj:
                key = self.text()
                if key in out:
                    raise ValueError(f"UBJSON: duplicate key {key!r}")
                out[key] = self.value(self.marker() if typ is None else typ, depth)
            else:
                out.append(self.value(self.marker() if typ is None else typ, depth))
            i += 1


def _high_precision(text: str) -> int | float:
    """Value of an ``H`` (high-precision number, decimal text)."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"UBJSON: invalid high-precision number {text[:20]!r}") from None
