"""secp256k1 scalars and points, checked against a pure-Python affine implementation and coincurve."""

from __future__ import annotations

import pytest
from coincurve import PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from signer.tss.curve import (
    P_FIELD,
    POINT_BYTES,
    Point,
    Q,
    check_scalar,
    point_sum,
    scalar_from_bytes,
    scalar_inv,
    scalar_to_bytes,
)
from signer.tss.encoding import as_point, decode_value, encode_value
from signer.tss.errors import DecodeError, InvalidInput

# --- an independent reference: affine arithmetic over F_p, written here from the curve equation ---
Affine = tuple[int, int] | None  # None is the point at infinity

GX = 0x79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798
GY = 0x483ADA7726A3C4655DA4FBFC0E1108A8FD17B448A68554199C47D08FFB10D4B8
G_REF: Affine = (GX, GY)


def ref_on_curve(pt: Affine) -> bool:
    if pt is None:
        return True
    x, y = pt
    return (y * y - x * x * x - 7) % P_FIELD == 0


def ref_add(a: Affine, b: Affine) -> Affine:
    if a is None:
        return b
    if b is None:
        return a
    (x1, y1), (x2, y2) = a, b
    if x1 == x2 and (y1 + y2) % P_FIELD == 0:
        return None
    if a == b:
        lam = 3 * x1 * x1 * pow(2 * y1, -1, P_FIELD) % P_FIELD
    else:
        lam = (y2 - y1) * pow(x2 - x1, -1, P_FIELD) % P_FIELD
    x3 = (lam * lam - x1 - x2) % P_FIELD
    return x3, (lam * (x1 - x3) - y1) % P_FIELD


def ref_mul(k: int, pt: Affine) -> Affine:
    acc: Affine = None
    k %= Q
    while k:
        if k & 1:
            acc = ref_add(acc, pt)
        pt = ref_add(pt, pt)
        k >>= 1
    return acc


def ref_encode(pt: Affine) -> bytes:
    assert pt is not None
    x, y = pt
    return bytes([2 + (y & 1)]) + x.to_bytes(32, "big")


def ref_of(p: Point) -> Affine:
    """Our Point as affine coordinates (via the uncompressed encoding)."""
    if p.is_identity:
        return None
    raw = p.to_bytes_uncompressed()
    return int.from_bytes(raw[1:33], "big"), int.from_bytes(raw[33:], "big")


scalars = st.integers(min_value=1, max_value=Q - 1)


def test_generator_matches_reference() -> None:
    assert ref_on_curve(G_REF)
    assert Point.generator().to_bytes() == ref_encode(G_REF)
    assert ref_mul(Q, G_REF) is None  # Q is the order of G


# --- decoding -----------------------------------------------------------------------------------
def _non_residue_x() -> int:
    """The smallest x for which x³ + 7 is not a square mod p (so no point has this x)."""
    x = 0
    while pow(x**3 + 7, (P_FIELD - 1) // 2, P_FIELD) == 1:
        x += 1
    return x


@pytest.mark.parametrize("length", [0, 1, 32, 34, 65])
def test_from_bytes_rejects_wrong_length(length: int) -> None:
    good = Point.generator().to_bytes()
    data = (good * 3)[:length]
    if length == 65:
        data = Point.generator().to_bytes_uncompressed()  # valid SEC1, but not our wire form
    with pytest.raises(DecodeError):
        Point.from_bytes(data)


@pytest.mark.parametrize("prefix", [0, 1, 4, 5, 6, 7, 0xFF])
def test_from_bytes_rejects_bad_prefix(prefix: int) -> None:
    good = Point.generator().to_bytes()
    with pytest.raises(DecodeError):
        Point.from_bytes(bytes([prefix]) + good[1:])


@pytest.mark.parametrize("prefix", [2, 3])
def test_from_bytes_rejects_off_curve_x(prefix: int) -> None:
    x = _non_residue_x()
    with pytest.raises(DecodeError):
        Point.from_bytes(bytes([prefix]) + x.to_bytes(32, "big"))


@pytest.mark.parametrize("x", [P_FIELD, P_FIELD + 1, (1 << 256) - 1])
def test_from_bytes_rejects_x_not_below_p(x: int) -> None:
    # P_FIELD + 1 ≡ 1 would be a valid x after reduction (1 + 7 = 8 is a square mod p).
    with pytest.raises(DecodeError):
        Point.from_bytes(b"\x02" + x.to_bytes(32, "big"))


def test_identity_has_no_encoding() -> None:
    ident = Point.identity()
    assert ident.is_identity
    with pytest.raises(InvalidInput):
        ident.to_bytes()
    with pytest.raises(InvalidInput):
        ident.to_bytes_uncompressed()
    # The generic encoding marks it with a one-byte body, which the typed reader refuses.
    with pytest.raises(DecodeError):
        as_point(decode_value(encode_value(ident)))


@settings(max_examples=30, deadline=None)
@given(scalars)
def test_encoding_round_trip_and_reference(k: int) -> None:
    p = Point.base_mul(k)
    assert len(p.to_bytes()) == POINT_BYTES
    assert p.to_bytes() == ref_encode(ref_mul(k, G_REF))
    assert Point.from_bytes(p.to_bytes()) == p
    assert p.x() == int.from_bytes(p.to_bytes()[1:], "big")
    assert p.y_is_odd() == (p.to_bytes()[0] == 3)
    assert as_point(decode_value(encode_value(p))) == p


# --- scalars ------------------------------------------------------------------------------------
def test_scalar_from_bytes_rejects_at_or_above_order() -> None:
    assert scalar_from_bytes((Q - 1).to_bytes(32, "big")) == Q - 1
    assert scalar_from_bytes(bytes(32)) == 0
    for bad in (Q, Q + 1, (1 << 256) - 1):
        with pytest.raises(DecodeError):
            scalar_from_bytes(bad.to_bytes(32, "big"))  # never reduced silently


@pytest.mark.parametrize("length", [0, 31, 33, 64])
def test_scalar_from_bytes_rejects_wrong_length(length: int) -> None:
    with pytest.raises(DecodeError):
        scalar_from_bytes(b"\x01" * length)


def test_scalar_to_bytes_and_check_scalar() -> None:
    assert scalar_to_bytes(5) == (5).to_bytes(32, "big")
    for bad in (-1, Q, Q + 5):
        with pytest.raises(InvalidInput):
            scalar_to_bytes(bad)
        with pytest.raises(DecodeError):
            check_scalar(bad)
    with pytest.raises(DecodeError):
        check_scalar(True)
    with pytest.raises(DecodeError):
        check_scalar(0, nonzero=True)
    assert check_scalar(0) == 0
    assert check_scalar(Q - 1, nonzero=True) == Q - 1


@settings(deadline=None)
@given(scalars)
def test_scalar_inverse(k: int) -> None:
    assert k * scalar_inv(k) % Q == 1


def test_scalar_inverse_of_zero_refused() -> None:
    for z in (0, Q, 2 * Q):
        with pytest.raises(InvalidInput):
            scalar_inv(z)


# --- group law ----------------------------------------------------------------------------------
@settings(max_examples=25, deadline=None)
@given(scalars, scalars)
def test_group_law_against_reference(a: int, b: int) -> None:
    A, B = Point.base_mul(a), Point.base_mul(b)
    ref_a, ref_b = ref_mul(a, G_REF), ref_mul(b, G_REF)
    assert ref_of(A) == ref_a and ref_of(B) == ref_b
    assert ref_of(A + B) == ref_add(ref_a, ref_b)
    assert ref_of(A - B) == ref_add(ref_a, ref_mul(Q - b, G_REF))
    assert ref_of(A + A) == ref_add(ref_a, ref_a)
    assert ref_of(A * b) == ref_mul(b, ref_a)


@settings(max_examples=40, deadline=None)
@given(scalars, scalars)
def test_group_identities(a: int, k: int) -> None:
    ident = Point.identity()
    P = Point.base_mul(a)
    assert (P + (-P)).is_identity
    assert (P - P).is_identity
    assert P + ident == P and ident + P == P
    neg = -P
    assert -neg == P
    assert (-P).x() == P.x() and (-P).y_is_odd() != P.y_is_odd()
    assert P * k == Point.base_mul(a * k % Q)  # k·(a·G) = (ka)·G
    assert k * P == P * k
    assert Point.base_mul(a) + Point.base_mul(k) == Point.base_mul((a + k) % Q)
    assert P * (k + Q) == P * k  # scalars act modulo the order
    assert P * (-k) == -(P * k)
    assert point_sum([P, Point.base_mul(k), -P]) == Point.base_mul(k)


@settings(max_examples=25, deadline=None)
@given(scalars, scalars)
def test_against_coincurve(a: int, k: int) -> None:
    P = Point.base_mul(a)
    assert P.to_bytes() == PrivateKey(a.to_bytes(32, "big")).public_key.format(compressed=True)
    expected = PrivateKey((a * k % Q).to_bytes(32, "big")).public_key.format() if a * k % Q else None
    got = P * k
    assert (None if got.is_identity else got.to_bytes()) == expected


def test_zero_and_order_multiples_give_identity() -> None:
    P = Point.base_mul(7)
    for k in (0, Q, 2 * Q):
        assert (P * k).is_identity
        assert Point.base_mul(k).is_identity
    assert (Point.identity() * 5).is_identity
    assert (-Point.identity()).is_identity
    assert point_sum([]).is_identity
    assert P * (Q + 1) == P


def test_equality_and_hash() -> None:
    P, R = Point.base_mul(3), Point.base_mul(3)
    assert P == R and hash(P) == hash(R)
    assert P != Point.base_mul(4)
    assert Point.identity() == Point.identity()
    assert Point.identity() != P and P != Point.identity()
    assert len({P, R, Point.identity(), Point.identity()}) == 2
    assert P.__eq__(3) is NotImplemented
