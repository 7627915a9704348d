"""What every proof module shares: failing a named check, and the wire shape of proofs."""

from __future__ import annotations

from typing import Protocol, TypeVar

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
