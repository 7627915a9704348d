"""Πsch: knowledge of x with X = x·G (Schnorr).

Keygen commits to the first message A before the statement is final, so the nonce can be drawn
ahead of time with `commit` and consumed by `prove_with_commitment`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..curve import Point, Q, check_scalar
from ..encoding import Decoded, Value, as_int, as_point
from ..rng import Rng
from ..transcript import Transcript
from .common import fields, require

NAME = "sch"


@dataclass(frozen=True, slots=True)
class Statement:
    """X = x·G."""

    X: Point


@dataclass(frozen=True, slots=True)
class Witness:
    """The discrete logarithm x."""

    x: int = field(repr=False)


@dataclass(frozen=True, slots=True)
class Commitment:
    """The first message A = α·G."""

    A: Point


@dataclass(frozen=True, slots=True)
class Nonce:
    """The secret α behind a Commitment; use once."""

    alpha: int = field(repr=False)


@dataclass(frozen=True, slots=True)
class Proof:
    """(A, z) with z = α + e·x."""

    A: Point
    z: int

    def to_value(self) -> Value:
        return [self.A, self.z]

    @classmethod
    def from_value(cls, v: Decoded) -> Proof:
        a, z = fields(v, 2)
        return cls(as_point(a), check_scalar(as_int(z)))


def commit(rng: Rng) -> tuple[Commitment, Nonce]:
    """Draw the nonce α and its commitment A = α·G."""
    alpha = 1 + rng.randbelow(Q - 1)
    return Commitment(Point.base_mul(alpha)), Nonce(alpha)


def _challenge(transcript: Transcript, stmt: Statement, A: Point) -> int:
    t = transcript.fork(NAME)
    t.append("statement", stmt.X)
    t.append("commitment", A)
    return t.challenge_scalar("e")


def prove_with_commitment(
    transcript: Transcript, stmt: Statement, wit: Witness, commitment: Commitment, nonce: Nonce
) -> Proof:
    """Finish a proof whose commitment was drawn earlier with `commit`."""
    e = _challenge(transcript, stmt, commitment.A)
    return Proof(commitment.A, (nonce.alpha + e * wit.x) % Q)


def prove(transcript: Transcript, stmt: Statement, wit: Witness, *, rng: Rng) -> Proof:
    """Prove knowledge of x with X = x·G."""
    c, n = commit(rng)
    return prove_with_commitment(transcript, stmt, wit, c, n)


def verify(transcript: Transcript, stmt: Statement, proof: Proof) -> None:
    """Raise InvalidProof unless z·G = A + e·X."""
    require(0 <= proof.z < Q, NAME, "z_range")
    require(not stmt.X.is_identity and not proof.A.is_identity, NAME, "identity_point")
    e = _challenge(transcript, stmt, proof.A)
    require(Point.base_mul(proof.z) == proof.A + stmt.X * e, NAME, "equation")
