"""Πelog: a discrete logarithm that is also the plaintext of an ElGamal commitment.

Statement: points L, M, X, Y, h. Witness: scalars y, λ with

    L = λ·G,    M = y·G + λ·X,    Y = y·h.

Follows Fig. 23 (Section A.1) of the 2024 revision of CGGMP (ePrint 2021/060). Group-only: no
Paillier, no ring-Pedersen; the challenge is a uniform scalar. `prove`/`verify` accept a `level`
keyword for a signature uniform with the other proofs, and ignore it.

Prover: α, m ∈ Z_q; A = α·G, N = m·G + α·X, B = m·h; e from the transcript;
z = α + e·λ, u = m + e·y (mod q).

Verifier:
  z_range, u_range  z, u canonical scalars in [0, q)
  identity_point    h is not the identity (else the last equation says nothing about y)
  eq_l              z·G = A + e·L
  eq_m              u·G + z·X = N + e·M
  eq_y              u·h = B + e·Y

Argument order in presigning (Fig. 8 lists the points in a different order from Fig. 23; the
order below is the one of Fig. 23, as the synedrion errata note):
  round 2 (ψ):  Statement(L=B_i1, M=B_i2, X=Y_i, Y=Γ_i, h=G), Witness(y=γ_i, lam=b_i)
  round 3 (ψ'): Statement(L=A_i1, M=A_i2, X=Y_i, Y=Δ_i, h=Γ), Witness(y=k_i,  lam=a_i)
with Y_i the prover's ElGamal key, B_i1 = b_i·G, B_i2 = b_i·Y_i + γ_i·G, Γ_i = γ_i·G,
A_i1 = a_i·G, A_i2 = a_i·Y_i + k_i·G, Γ = Σ_j Γ_j and Δ_i = k_i·Γ. The protocol must reject
Γ = identity itself before proving (it blames nobody in particular); `prove` refuses it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..curve import Point, Q, check_scalar
from ..encoding import Decoded, Value, as_int, as_point
from ..errors import InvalidInput
from ..params import SecurityLevel
from ..rng import Rng, rand_nonzero_scalar
from ..transcript import Transcript
from .common import fields, require

NAME = "elog"


@dataclass(frozen=True, slots=True)
class Statement:
    """L = λ·G, M = y·G + λ·X, Y = y·h."""

    L: Point
    M: Point
    X: Point
    Y: Point
    h: Point


@dataclass(frozen=True, slots=True)
class Witness:
    """The scalars y and λ."""

    y: int = field(repr=False)
    lam: int = field(repr=False)


@dataclass(frozen=True, slots=True)
class Proof:
    """(A, N, B, z, u)."""

    A: Point
    N: Point
    B: Point
    z: int
    u: int

    def to_value(self) -> Value:
        return [self.A, self.N, self.B, self.z, self.u]

    @classmethod
    def from_value(cls, v: Decoded) -> Proof:
        a, n, b, z, u = fields(v, 5)
        return cls(as_point(a), as_point(n), as_point(b), check_scalar(as_int(z)), check_scalar(as_int(u)))


def _challenge(transcript: Transcript, stmt: Statement, A: Point, N: Point, B: Point) -> int:
    t = transcript.fork(NAME)
    t.append("statement", stmt.L, stmt.M, stmt.X, stmt.Y, stmt.h)
    t.append("commitment", A, N, B)
    return t.challenge_scalar("e")


def prove(
    transcript: Transcript, stmt: Statement, wit: Witness, *, rng: Rng, level: SecurityLevel | None = None
) -> Proof:
    """Prove the statement; a witness that does not satisfy it yields a proof that fails to verify."""
    del level  # group-only proof: nothing depends on the security level
    if stmt.h.is_identity:
        raise InvalidInput("h must not be the identity")
    alpha = rand_nonzero_scalar(rng, Q)
    m = rand_nonzero_scalar(rng, Q)
    A = Point.base_mul(alpha)
    N = Point.base_mul(m) + stmt.X * alpha
    B = stmt.h * m
    e = _challenge(transcript, stmt, A, N, B)
    return Proof(A, N, B, (alpha + e * wit.lam) % Q, (m + e * wit.y) % Q)


def verify(transcript: Transcript, stmt: Statement, proof: Proof, *, level: SecurityLevel | None = None) -> None:
    """Raise InvalidProof(NAME, check) unless the proof verifies against the verifier's own statement."""
    del level
    require(isinstance(proof.z, int) and 0 <= proof.z < Q, NAME, "z_range")
    require(isinstance(proof.u, int) and 0 <= proof.u < Q, NAME, "u_range")
    require(not stmt.h.is_identity, NAME, "identity_point")
    e = _challenge(transcript, stmt, proof.A, proof.N, proof.B)
    require(Point.base_mul(proof.z) == proof.A + stmt.L * e, NAME, "eq_l")
    require(Point.base_mul(proof.u) + stmt.X * proof.z == proof.N + stmt.M * e, NAME, "eq_m")
    require(stmt.h * proof.u == proof.B + stmt.Y * e, NAME, "eq_y")
