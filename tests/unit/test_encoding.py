"""The injective, tagged, length-prefixed encoding: round trips, injectivity, and strict decoding."""

from __future__ import annotations

import struct
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signer.tss.curve import Point, Q
from signer.tss.encoding import (
    MAX_DEPTH,
    MAX_ITEM_BYTES,
    Decoded,
    RawPoint,
    Value,
    as_bytes,
    as_int,
    as_list,
    as_point,
    as_str,
    decode,
    decode_value,
    encode,
    encode_value,
)
from signer.tss.errors import DecodeError, InvalidInput
from signer.tss.transcript import Transcript

points = st.integers(min_value=1, max_value=Q - 1).map(Point.base_mul)
leaves = st.one_of(
    st.binary(max_size=40),
    st.text(max_size=20),
    st.integers(min_value=-(1 << 300), max_value=1 << 300),
    st.integers(min_value=-300, max_value=300),
    points,
)
values: st.SearchStrategy[Value] = st.recursive(
    leaves,
    lambda children: st.one_of(st.lists(children, max_size=4), st.tuples(children, children)),
    max_leaves=12,
)


def canon(v: Any) -> Any:
    """A comparable normal form: every node carries its type, tuples and lists are one kind."""
    if isinstance(v, RawPoint):
        return ("P", bytes(v))
    if isinstance(v, Point):
        return ("P", v.to_bytes())
    if isinstance(v, bytes):
        return ("B", v)
    if isinstance(v, str):
        return ("S", v)
    if isinstance(v, int):
        return ("I", v)
    return ("L", tuple(canon(x) for x in v))


def depth(v: Any, d: int = 0) -> int:
    if isinstance(v, (list, tuple)):
        return max([d, *(depth(x, d + 1) for x in v)])
    return d


def frame(kind: bytes, payload: bytes, length: int | None = None) -> bytes:
    return kind + struct.pack(">I", len(payload) if length is None else length) + payload


# --- round trips --------------------------------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(values)
def test_round_trip(v: Value) -> None:
    data = encode_value(v)
    if depth(v) > MAX_DEPTH:
        with pytest.raises(DecodeError):
            decode_value(data)
        return
    assert canon(decode_value(data)) == canon(v)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=10), st.lists(values, max_size=4))
def test_tagged_round_trip(tag: str, items: list[Value]) -> None:
    items = [x for x in items if depth(x) < MAX_DEPTH]  # the tagged list adds one level
    out = decode(tag, encode(tag, *items), len(items))
    assert [canon(x) for x in out] == [canon(x) for x in items]


def test_typed_readers() -> None:
    P = Point.base_mul(11)
    fields = decode("t", encode("t", 5, b"ab", "cd", P, [1, 2]), 5)
    assert as_int(fields[0]) == 5
    assert as_bytes(fields[1]) == b"ab"
    assert as_str(fields[2]) == "cd"
    assert as_point(fields[3]) == P
    assert as_list(fields[4]) == [1, 2]
    wrong: list[tuple[Any, Decoded]] = [
        (as_int, b"5"),
        (as_int, "5"),
        (as_bytes, 5),
        (as_bytes, RawPoint(P.to_bytes())),  # a point is not bytes, even though RawPoint subclasses bytes
        (as_str, b"cd"),
        (as_point, P.to_bytes()),  # plain bytes are not a point
        (as_point, RawPoint(b"\x02" + bytes(32))),  # x = 0 is not on the curve
        (as_list, b""),
    ]
    for reader, value in wrong:
        with pytest.raises(DecodeError):
            reader(value)


# --- injectivity --------------------------------------------------------------------------------
@settings(max_examples=150, deadline=None)
@given(values, values)
def test_distinct_values_encode_differently(a: Value, b: Value) -> None:
    if canon(a) != canon(b):
        assert encode_value(a) != encode_value(b)
    else:
        assert encode_value(a) == encode_value(b)


@settings(max_examples=80, deadline=None)
@given(st.lists(values, min_size=1, max_size=4), st.lists(values, min_size=1, max_size=4))
def test_distinct_tuples_encode_differently(a: list[Value], b: list[Value]) -> None:
    if [canon(x) for x in a] != [canon(x) for x in b]:
        assert encode("tag", *a) != encode("tag", *b)


@settings(deadline=None)
@given(st.binary(min_size=2, max_size=30), st.data())
def test_moving_a_split_point_changes_the_encoding(x: bytes, data: st.DataObject) -> None:
    i = data.draw(st.integers(0, len(x)))
    j = data.draw(st.integers(0, len(x)).filter(lambda j: j != i))
    assert encode("t", x[:i], x[i:]) != encode("t", x[:j], x[j:])
    assert encode("t", x[:i].decode("latin-1"), x[i:].decode("latin-1")) != encode(
        "t", x[:j].decode("latin-1"), x[j:].decode("latin-1")
    )


_P = Point.base_mul(5)
# TSSHOCK α-shuffle: pairs that a naive concatenation (or a "join with separators") would merge.
SHUFFLES: list[tuple[str, tuple[Value, ...], tuple[Value, ...]]] = [
    ("strings split differently", ("ab", "c"), ("a", "bc")),
    ("bytes split differently", (b"ab", b"c"), (b"a", b"bc")),
    ("ints 1,23 vs 12,3", (1, 23), (12, 3)),
    ("int bytes split differently", (0x01, 0x0203), (0x0102, 0x03)),
    ("byte digits 1,23 vs 12,3", (b"1", b"23"), (b"12", b"3")),
    ("string digits 1,23 vs 12,3", ("1", "23"), ("12", "3")),
    ("a list of two vs two values", ([b"a", b"b"],), (b"a", b"b")),
    ("a list of two ints vs two ints", ([1, 2],), (1, 2)),
    ("nested list boundary", ([1, [2]],), ([1], [2])),
    ("negative vs positive", (-5,), (5,)),
    ("negative vs positive, large", (-(1 << 200),), (1 << 200,)),
    ("empty list vs list of empty bytes", ([],), ([b""],)),
    ("empty list vs nothing", ([],), ()),
    ("empty bytes vs nothing", (b"",), ()),
    ("empty bytes vs empty text", (b"",), ("",)),
    ("empty bytes vs zero", (b"",), (0,)),
    ("zero vs empty list", (0,), ([],)),
    ("bytes vs text", (b"abc",), ("abc",)),
    ("int vs its big-endian bytes", (0x616263,), (b"abc",)),
    ("point vs its bytes", (_P,), (_P.to_bytes(),)),
    ("value moved across a list edge", ([b"a"], b"b"), ([b"a", b"b"],)),
]


@pytest.mark.parametrize(("a", "b"), [(a, b) for _, a, b in SHUFFLES], ids=[n for n, _, _ in SHUFFLES])
def test_alpha_shuffle_cases_never_collide(a: tuple[Value, ...], b: tuple[Value, ...]) -> None:
    assert encode("tag", *a) != encode("tag", *b)
    assert encode_value(list(a)) != encode_value(list(b))
    ta, tb = Transcript("shuffle"), Transcript("shuffle")
    ta.append("x", *a)
    tb.append("x", *b)
    assert ta.challenge_scalar("e") != tb.challenge_scalar("e")


def test_label_value_boundary_does_not_shuffle() -> None:
    ta, tb = Transcript("t"), Transcript("t")
    ta.append("ab", "c")
    tb.append("a", "bc")
    assert ta.challenge_scalar("e") != tb.challenge_scalar("e")


def test_tags_separate() -> None:
    assert encode("tagA", 1, b"x") != encode("tagB", 1, b"x")
    assert encode("ab", "c") != encode("a", "bc")
    assert encode("ab") != encode("a", "b")
    with pytest.raises(DecodeError):
        decode("tagA", encode("tagB", 1), 1)
    with pytest.raises(DecodeError):
        decode("tag", encode("tag", 1, 2), 1)  # wrong arity
    with pytest.raises(DecodeError):
        decode("tag", encode("tag", 1), 2)
    with pytest.raises(DecodeError):
        decode("tag", encode_value(b"tag"), 0)  # not a list
    with pytest.raises(DecodeError):
        decode("tag", encode_value([]), 0)  # no tag at all
    with pytest.raises(DecodeError):
        decode("tag", encode_value([b"tag"]), 0)  # the tag must be text, not bytes


# --- strict decoding ----------------------------------------------------------------------------
@settings(max_examples=100, deadline=None)
@given(values, st.binary(min_size=1, max_size=8))
def test_trailing_bytes_rejected(v: Value, extra: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_value(encode_value(v) + extra)


@settings(max_examples=60, deadline=None)
@given(values)
def test_every_truncation_rejected(v: Value) -> None:
    data = encode_value(v)
    for cut in range(len(data)):
        with pytest.raises(DecodeError):
            decode_value(data[:cut])


INVALID_FRAMES: list[tuple[str, bytes]] = [
    ("empty input", b""),
    ("header only partly present", b"I\x00\x00"),
    ("length beyond the data", frame(b"B", b"abc", length=4)),
    ("length far beyond the data", frame(b"B", b"abc", length=0xFFFFFFFF)),
    ("list item overruns its list", frame(b"L", frame(b"B", b"abcd"), length=7)),
    ("list item header overruns its list", frame(b"L", b"B\x00\x00")),
    ("unknown type byte", frame(b"X", b"")),
    ("lower-case type byte", frame(b"b", b"abc")),
    ("integer without sign byte", frame(b"I", b"")),
    ("integer with sign byte 2", frame(b"I", b"\x02\x05")),
    ("non-minimal zero", frame(b"I", b"\x00\x00")),
    ("non-minimal positive", frame(b"I", b"\x00\x00\x05")),
    ("non-minimal negative", frame(b"I", b"\x01\x00\x05")),
    ("negative zero", frame(b"I", b"\x01")),
    ("invalid UTF-8", frame(b"S", b"\xff\xfe")),
    ("UTF-8 surrogate", frame(b"S", b"\xed\xa0\x80")),
]


@pytest.mark.parametrize("data", [d for _, d in INVALID_FRAMES], ids=[n for n, _ in INVALID_FRAMES])
def test_malformed_frames_rejected(data: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_value(data)


def test_canonical_integers_accepted() -> None:
    assert decode_value(frame(b"I", b"\x00")) == 0
    assert decode_value(frame(b"I", b"\x00\x05")) == 5
    assert decode_value(frame(b"I", b"\x01\x05")) == -5
    assert decode_value(frame(b"I", b"\x00\x80")) == 128  # no two's-complement padding byte


def test_nesting_depth_limit() -> None:
    deep: Value = []
    for _ in range(MAX_DEPTH):
        deep = [deep]
    assert canon(decode_value(encode_value(deep))) == canon(deep)
    with pytest.raises(DecodeError):
        decode_value(encode_value([deep]))


def test_oversize_item_rejected() -> None:
    payload = bytes(MAX_ITEM_BYTES + 1)
    with pytest.raises(DecodeError):
        decode_value(frame(b"B", payload))
    assert decode_value(frame(b"B", payload[:-1])) == payload[:-1]


def test_decoding_is_linear_in_nested_input() -> None:
    # Many small items inside an inner list followed by a sibling: a decoder that slices the
    # buffer per item is quadratic here (it took seconds at this size); ours stays linear.
    data = encode_value([[b""] * 200_000, b"x"])
    t0 = time.perf_counter()
    decode_value(data)
    assert time.perf_counter() - t0 < 3.0


@pytest.mark.parametrize("bad", [True, False, [1, True], (b"", False), None, 1.5, {1: 2}, {1}, object()])
def test_non_encodable_values_rejected(bad: Any) -> None:
    with pytest.raises(InvalidInput):
        encode_value(bad)
    with pytest.raises(InvalidInput):
        encode("tag", bad)


def test_bytearray_encodes_as_bytes() -> None:
    assert encode_value(bytearray(b"ab")) == encode_value(b"ab")  # type: ignore[arg-type]
