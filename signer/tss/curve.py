"""secp256k1 scalars and points over libsecp256k1 (coincurve).

Scalars are Python ints in [0, Q). Decoding never reduces silently: out-of-range bytes are an error.
Secret scalar multiplications go through libsecp256k1's constant-time routines.
"""

from __future__ import annotations

from coincurve import PrivateKey, PublicKey

from .errors import DecodeError, InvalidInput

Q = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
"""Order of the secp256k1 group."""
P_FIELD = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFC2F
"""Characteristic of the secp256k1 base field."""

SCALAR_BYTES = 32
POINT_BYTES = 33


def scalar_to_bytes(k: int) -> bytes:
    """Big-endian 32 bytes of a scalar in [0, Q)."""
    if not 0 <= k < Q:
        raise InvalidInput("scalar out of range")
    return k.to_bytes(SCALAR_BYTES, "big")


def scalar_from_bytes(data: bytes) -> int:
    """Decode 32 big-endian bytes into a scalar, rejecting values >= Q."""
    if len(data) != SCALAR_BYTES:
        raise DecodeError("scalar must be 32 bytes")
    k = int.from_bytes(data, "big")
    if k >= Q:
        raise DecodeError("scalar not below the group order")
    return k


def check_scalar(k: int, *, nonzero: bool = False) -> int:
    """Return k if it is a canonical scalar (and non-zero when asked), else raise."""
    if not isinstance(k, int) or isinstance(k, bool) or not 0 <= k < Q:
        raise DecodeError("scalar out of range")
    if nonzero and k == 0:
        raise DecodeError("scalar is zero")
    return k


def scalar_inv(k: int) -> int:
    """Inverse modulo Q of a non-zero scalar."""
    if k % Q == 0:
        raise InvalidInput("zero has no inverse")
    return pow(k, -1, Q)


class Point:
    """A point of secp256k1, possibly the identity (which never crosses the wire)."""

    __slots__ = ("_pk",)

    def __init__(self, pk: PublicKey | None) -> None:
        self._pk = pk

    def __reduce__(self) -> tuple[object, tuple[bytes | None]]:
        # libsecp256k1's object does not pickle; the compressed encoding does (a round's state
        # crosses to a worker process, signer/node/protocol_work.py).
        return _unpickle_point, (None if self._pk is None else self._pk.format(compressed=True),)

    # --- construction -----------------------------------------------------------------------
    @staticmethod
    def identity() -> Point:
        """The neutral element."""
        return Point(None)

    @staticmethod
    def generator() -> Point:
        """The standard base point G."""
        return _G

    @staticmethod
    def base_mul(k: int) -> Point:
        """k·G for a scalar k (constant time in k)."""
        k %= Q
        if k == 0:
            return Point(None)
        return Point(PrivateKey(k.to_bytes(SCALAR_BYTES, "big")).public_key)

    @staticmethod
    def from_bytes(data: bytes) -> Point:
        """Decode a 33-byte compressed point; rejects off-curve encodings and the identity."""
        if len(data) != POINT_BYTES or data[0] not in (2, 3):
            raise DecodeError("point must be 33 compressed bytes")
        try:
            return Point(PublicKey(data))
        except Exception as exc:  # coincurve raises ValueError/TypeError variants
            raise DecodeError("point is not on secp256k1") from exc

    # --- predicates and encoding ------------------------------------------------------------
    @property
    def is_identity(self) -> bool:
        """True for the neutral element."""
        return self._pk is None

    def to_bytes(self) -> bytes:
        """33-byte compressed encoding; the identity has none."""
        if self._pk is None:
            raise InvalidInput("the identity point has no encoding")
        return self._pk.format(compressed=True)

    def to_bytes_uncompressed(self) -> bytes:
        """65-byte SEC1 uncompressed encoding."""
        if self._pk is None:
            raise InvalidInput("the identity point has no encoding")
        return self._pk.format(compressed=False)

    def x(self) -> int:
        """Affine x coordinate as an integer in [0, p)."""
        return int.from_bytes(self.to_bytes()[1:], "big")

    def y_is_odd(self) -> bool:
        """Parity of the affine y coordinate."""
        return self.to_bytes()[0] == 3

    # --- group law --------------------------------------------------------------------------
    def __add__(self, other: Point) -> Point:
        if self._pk is None:
            return other
        if other._pk is None:
            return self
        a, b = self.to_bytes(), other.to_bytes()
        if a[1:] == b[1:] and a[0] != b[0]:
            return Point(None)
        return Point(PublicKey.combine_keys([self._pk, other._pk]))

    def __neg__(self) -> Point:
        if self._pk is None:
            return self
        b = self.to_bytes()
        return Point(PublicKey(bytes([5 - b[0]]) + b[1:]))

    def __sub__(self, other: Point) -> Point:
        return self + (-other)

    def __mul__(self, k: int) -> Point:
        """k·P (constant time in k through libsecp256k1)."""
        k %= Q
        if k == 0 or self._pk is None:
            return Point(None)
        return Point(self._pk.multiply(k.to_bytes(SCALAR_BYTES, "big")))

    __rmul__ = __mul__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Point):
            return NotImplemented
        if self._pk is None or other._pk is None:
            return self._pk is None and other._pk is None
        return self.to_bytes() == other.to_bytes()

    def __hash__(self) -> int:
        return hash(b"" if self._pk is None else self.to_bytes())

    def __repr__(self) -> str:
        return "Point(identity)" if self._pk is None else f"Point({self.to_bytes().hex()})"


_G = Point(PrivateKey((1).to_bytes(32, "big")).public_key)


def point_sum(points: list[Point] | tuple[Point, ...]) -> Point:
    """Sum of a sequence of points (the identity for an empty one)."""
    acc = Point.identity()
    for p in points:
        acc = acc + p
    return acc


def _unpickle_point(data: bytes | None) -> Point:
    return Point(None) if data is None else Point(PublicKey(data))
