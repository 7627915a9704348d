"""Recursive-length-prefix encoding (Ethereum yellow paper, appendix B), encode side only."""

from __future__ import annotations

from typing import Union

RlpItem = Union[bytes, int, "list[RlpItem]"]


def _length_prefix(length: int, short: int) -> bytes:
    if length < 56:
        return bytes([short + length])
    n = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([short + 55 + len(n)]) + n


def encode(item: RlpItem) -> bytes:
    """RLP of a byte string, a non-negative integer (minimal big-endian) or a list."""
    if isinstance(item, bool):
        raise TypeError("booleans are not RLP items")
    if isinstance(item, int):
        if item < 0:
            raise ValueError("RLP integers are non-negative")
        item = item.to_bytes((item.bit_length() + 7) // 8, "big") if item else b""
    if isinstance(item, (bytes, bytearray)):
        b = bytes(item)
        if len(b) == 1 and b[0] < 0x80:
            return b
        return _length_prefix(len(b), 0x80) + b
    if isinstance(item, list):
        body = b"".join(encode(x) for x in item)
        return _length_prefix(len(body), 0xC0) + body
    raise TypeError(f"not an RLP item: {type(item).__name__}")
