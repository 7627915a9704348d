"""One deterministic, injective, length-prefixed, tagged encoding.

It feeds Fiat–Shamir transcripts, commitments, echo hashes, identity signatures and the wire
payloads, so two different values can never encode to the same bytes (TSSHOCK α-shuffle).

Every value carries a one-byte type and a 4-byte big-endian length:
  b'B' bytes | b'S' UTF-8 text | b'I' signed integer (sign byte + magnitude) | b'P' point |
  b'L' list (the payload is the concatenation of its encoded items).
"""

from __future__ import annotations

import struct
from typing import Union

from .curve import Point
from .errors import DecodeError, InvalidInput

Value = Union[bytes, str, int, Point, "list[Value]", "tuple[Value, ...]"]
Decoded = Union[bytes, str, int, "RawPoint", "list[Decoded]"]

MAX_ITEM_BYTES = 1 << 24
MAX_DEPTH = 8


class RawPoint(bytes):
    """Point bytes as decoded; the reader validates them with `Point.from_bytes`."""


def _frame(kind: bytes, payload: bytes) -> bytes:
    return kind + struct.pack(">I", len(payload)) + payload


def encode_value(v: Value) -> bytes:
    """Encode one value (recursively for lists and tuples)."""
    if isinstance(v, bool):
        raise InvalidInput("booleans are not encodable; use an int")
    if isinstance(v, (bytes, bytearray)):
        return _frame(b"B", bytes(v))
    if isinstance(v, str):
        return _frame(b"S", v.encode("utf-8"))
    if isinstance(v, int):
        mag = abs(v)
        body = mag.to_bytes((mag.bit_length() + 7) // 8, "big")
        return _frame(b"I", (b"\x01" if v < 0 else b"\x00") + body)
    if isinstance(v, Point):
        return _frame(b"P", b"\x00" if v.is_identity else v.to_bytes())
    if isinstance(v, (list, tuple)):
        return _frame(b"L", b"".join(encode_value(x) for x in v))
    raise InvalidInput(f"cannot encode {type(v).__name__}")


def encode(tag: str, *values: Value) -> bytes:
    """Encode a tagged tuple: the tag first, then each value."""
    return encode_value([tag, *values])


def _decode_one(data: bytes, pos: int, limit: int, depth: int) -> tuple[Decoded, int]:
    # `limit` is the end of the enclosing frame; passing it (rather than slicing `data`) keeps
    # decoding linear in the input size.
    if depth > MAX_DEPTH:
        raise DecodeError("nesting too deep")
    if pos + 5 > limit:
        raise DecodeError("truncated header")
    kind = data[pos : pos + 1]
    (length,) = struct.unpack(">I", data[pos + 1 : pos + 5])
    start, end = pos + 5, pos + 5 + length
    if length > MAX_ITEM_BYTES or end > limit:
        raise DecodeError("item length out of bounds")
    body = data[start:end]
    if kind == b"B":
        return body, end
    if kind == b"S":
        try:
            return body.decode("utf-8"), end
        except UnicodeDecodeError as exc:
            raise DecodeError("invalid UTF-8") from exc
    if kind == b"I":
        if not body or body[0] not in (0, 1):
            raise DecodeError("bad integer sign byte")
        mag = body[1:]
        if mag[:1] == b"\x00":
            raise DecodeError("non-minimal integer")
        n = int.from_bytes(mag, "big")
        if body[0] == 1 and n == 0:
            raise DecodeError("negative zero")
        return (-n if body[0] else n), end
    if kind == b"P":
        return RawPoint(body), end
    if kind == b"L":
        items: list[Decoded] = []
        p = start
        while p < end:
            item, p = _decode_one(data, p, end, depth + 1)
            items.append(item)
        return items, end
    raise DecodeError("unknown type byte")


def decode_value(data: bytes) -> Decoded:
    """Decode exactly one value, rejecting trailing bytes."""
    value, end = _decode_one(data, 0, len(data), 0)
    if end != len(data):
        raise DecodeError("trailing bytes")
    return value


def decode(tag: str, data: bytes, arity: int) -> list[Decoded]:
    """Decode a tagged tuple produced by `encode(tag, ...)` with exactly `arity` values."""
    value = decode_value(data)
    if not isinstance(value, list) or not value or value[0] != tag:
        raise DecodeError(f"expected a {tag!r} message")
    if len(value) != arity + 1:
        raise DecodeError(f"{tag!r} has {len(value) - 1} fields, expected {arity}")
    return value[1:]


# --- typed readers for decoded fields: each raises DecodeError on a wrong type ------------------
def as_int(v: Decoded) -> int:
    """The decoded value as an integer."""
    if not isinstance(v, int) or isinstance(v, bool):
        raise DecodeError("expected an integer")
    return v


def as_bytes(v: Decoded) -> bytes:
    """The decoded value as bytes."""
    if not isinstance(v, bytes) or isinstance(v, RawPoint):
        raise DecodeError("expected bytes")
    return bytes(v)


def as_str(v: Decoded) -> str:
    """The decoded value as text."""
    if not isinstance(v, str):
        raise DecodeError("expected text")
    return v


def as_point(v: Decoded) -> Point:
    """The decoded value as a valid, non-identity curve point."""
    if not isinstance(v, RawPoint):
        raise DecodeError("expected a point")
    return Point.from_bytes(bytes(v))


def as_list(v: Decoded) -> list[Decoded]:
    """The decoded value as a list."""
    if not isinstance(v, list):
        raise DecodeError("expected a list")
    return v
