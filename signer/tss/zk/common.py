"""What every proof module shares: failing a named check, and the wire shape of proofs."""

from __future__ import annotations

from typing import Protocol, TypeVar

import gmpy2

from ..encoding import Decoded, Value
from ..errors import DecodeError, InvalidProof
from ..modarith import in_signed_range

P_co = TypeVar("P_co", covariant=True)


def require(ok: bool, proof: str, check: str) -> None:
    """Raise InvalidProof(proof, check) unless ok."""
    if not ok:
        raise InvalidProof(proof, check)


def require_range(x: int, bits: int, proof: str, check: str) -> None:
    """Raise unless x ∈ ±2^bits (checked before any exponentiation uses x)."""
    require(in_signed_range(x, bits), proof, check)


def is_unit(v: int, n: int, bound: int | None = None) -> bool:
    """v ∈ (0, bound) with gcd(v, n) = 1: a unit mod n (bound = n, the default) or mod n² (bound = n²)."""
    return (
        isinstance(v, int)
        and not isinstance(v, bool)
        and 0 < v < (n if bound is None else bound)
        and gmpy2.gcd(v, n) == 1
    )


def fields(v: Decoded, n: int) -> list[Decoded]:
    """A decoded list of exactly n fields."""
    if not isinstance(v, list) or len(v) != n:
        raise DecodeError(f"expected {n} proof fields")
    return v


class WireProof(Protocol):
    """Proofs travel as one encoded list of their fields (`to_value` / `from_value`)."""

    def to_value(self) -> Value:
        """The proof as an encodable value."""
        ...
