"""Πlog*: a Paillier plaintext in range that is the discrete log of a public point.

Statement: a Paillier key N0, a ciphertext C, a point X and the VERIFIER's ring-Pedersen
parameters (N̂, s, t). Witness: x ∈ ±2^ℓ and ρ ∈ Z*_N0 with

    C = enc_0(x; ρ),    X = x·G.

Follows Section C.2, Fig. 25 ("Knowledge of Exponent vs Paillier Encryption") of the 2021
revisions of CGGMP (ePrint 2021/060), where it served presigning; the 2024 revision's presigning
uses Πenc-elg and Πelog instead. Here the base g is G. The
verifiable backup (signer/node/backup_kit.py) uses it with N0 the offline recovery key and the
ring-Pedersen parameters published with that key, so anyone holding only public data learns
that C decrypts, under the recovery key, to the discrete log of X (mod q).

Prover: α ∈ ±2^(ℓ+ε), μ ∈ ±2^ℓ·N̂, r ∈ Z*_N0, γ ∈ ±2^(ℓ+ε)·N̂;
S = s^x t^μ, A = enc_0(α; r), Y = α·G, D = s^α t^γ (mod N̂);
e ∈ ±Q from the transcript; z1 = α + e·x, z2 = r·ρ^e mod N0, z3 = γ + e·μ.

Verifier (range and membership checks first, no exponentiation before they pass):
  z1_range        z1 ∈ ±2^(ℓ+ε)
  z3_range        |z3| ≤ 2^(ℓ+ε+1)·N̂ (see deviations)
  z2_unit         z2 ∈ Z*_N0
  commitment_unit S, D ∈ Z*_N̂ and A ∈ Z*_{N0²}
  c_unit          the statement's C ∈ Z*_{N0²}
  eq_paillier     enc_0(z1; z2) = A·C^e mod N0²
  eq_log          z1·G = Y + e·X
  eq_pedersen     s^z1 t^z3 = D·S^e mod N̂

Deviations, each without loss of completeness or soundness (the same as Πenc-elg's):
- the challenge is a signed integer e ∈ ±Q, Q = 2^m (`level.challenge_bound`), reduced mod q for
  the curve equation;
- z3 is bounded before any exponentiation (an honest z3 satisfies |z3| ≤ 2^(ℓ+ε)·N̂ + 2^(ℓ+m)·N̂,
  below the bound because m < ε), so a huge exponent cannot stall a verifier;
- the transcript also absorbs (ℓ, ε, m), which fix the ranges the statement speaks about.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..curve import Point, Q
from ..encoding import Decoded, Value, as_int, as_point
from ..errors import InvalidInput
from ..modarith import powmod_public, powmod_secret
from ..paillier import PaillierPublicKey, PaillierSecretKey
from ..params import SecurityLevel
from ..ring_pedersen import RingPedersenParams
from ..rng import Rng, rand_signed, rand_signed_scaled, rand_unit
from ..transcript import Transcript
from .common import fields, is_unit, require, require_range

NAME = "log_star"


@dataclass(frozen=True, slots=True)
class Statement:
    """C = enc_0(x; ρ) and X = x·G, proved under the verifier's ring-Pedersen params."""

    pk0: PaillierPublicKey
    C: int
    X: Point
    setup: RingPedersenParams


@dataclass(frozen=True, slots=True)
class Witness:
    """x ∈ ±2^ℓ and ρ ∈ Z*_N0; optionally the Paillier secret key of N0 (for CRT)."""

    x: int = field(repr=False)
    rho: int = field(repr=False)
    key: PaillierSecretKey | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Proof:
    """(S, A, Y, D, z1, z2, z3)."""

    S: int
    A: int
    Y: Point
    D: int
    z1: int
    z2: int
    z3: int

    def to_value(self) -> Value:
        return [self.S, self.A, self.Y, self.D, self.z1, self.z2, self.z3]

    @classmethod
    def from_value(cls, v: Decoded) -> Proof:
        s, a, y, d, z1, z2, z3 = fields(v, 7)
        return cls(S=as_int(s), A=as_int(a), Y=as_point(y), D=as_int(d), z1=as_int(z1), z2=as_int(z2), z3=as_int(z3))


def _challenge(transcript: Transcript, stmt: Statement, level: SecurityLevel, S: int, A: int, Y: Point, D: int) -> int:
    t = transcript.fork(NAME)
    t.append("level", level.ell, level.epsilon, level.m)
    t.append("statement", stmt.pk0.n, stmt.C, stmt.X, stmt.setup.n, stmt.setup.s, stmt.setup.t)
    t.append("commitment", S, A, Y, D)
    return t.challenge_signed("e", level.challenge_bound)


def prove(transcript: Transcript, stmt: Statement, wit: Witness, *, rng: Rng, level: SecurityLevel) -> Proof:
    """Prove the statement; a witness that does not satisfy it yields a proof that fails to verify."""
    n0 = stmt.pk0.n
    if wit.key is not None and wit.key.n != n0:
        raise InvalidInput("the witness's Paillier key is not the statement's N0")
    setup = stmt.setup
    ell, eps = level.ell, level.epsilon

    alpha = rand_signed(rng, ell + eps)
    mu = rand_signed_scaled(rng, ell, setup.n)
    r = rand_unit(rng, n0)
    gamma = rand_signed_scaled(rng, ell + eps, setup.n)

    S = setup.commit(wit.x, mu)
    A = wit.key.encrypt_with(alpha, r) if wit.key is not None else stmt.pk0.encrypt_with(alpha, r)
    Y = Point.base_mul(alpha % Q)
    D = setup.commit(alpha, gamma)

    e = _challenge(transcript, stmt, level, S, A, Y, D)
    z1 = alpha + e * wit.x
    z2 = r * powmod_secret(wit.rho, e, n0) % n0
    z3 = gamma + e * mu
    return Proof(S, A, Y, D, z1, z2, z3)


def verify(transcript: Transcript, stmt: Statement, proof: Proof, *, level: SecurityLevel) -> None:
    """Raise InvalidProof(NAME, check) unless the proof verifies against the verifier's own statement."""
    ell, eps = level.ell, level.epsilon
    setup, pk0 = stmt.setup, stmt.pk0
    n0, n0_sq, n_hat = pk0.n, pk0.n2, setup.n

    require_range(proof.z1, ell + eps, NAME, "z1_range")
    require(isinstance(proof.z3, int) and abs(proof.z3) <= (n_hat << (ell + eps + 1)), NAME, "z3_range")
    require(is_unit(proof.z2, n0, n0), NAME, "z2_unit")
    require(
        is_unit(proof.S, n_hat, n_hat) and is_unit(proof.D, n_hat, n_hat) and is_unit(proof.A, n0, n0_sq),
        NAME,
        "commitment_unit",
    )
    require(is_unit(stmt.C, n0, n0_sq), NAME, "c_unit")

    e = _challenge(transcript, stmt, level, proof.S, proof.A, proof.Y, proof.D)

    lhs_enc = pk0.encrypt_with(proof.z1, proof.z2)
    require(lhs_enc == pk0.add(proof.A, pk0.mul_public(stmt.C, e)), NAME, "eq_paillier")
    require(Point.base_mul(proof.z1 % Q) == proof.Y + stmt.X * (e % Q), NAME, "eq_log")

    s_pow_e = powmod_public(proof.S, e, n_hat)
    require(setup.commit_public(proof.z1, proof.z3) == proof.D * s_pow_e % n_hat, NAME, "eq_pedersen")
