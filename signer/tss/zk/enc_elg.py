"""Πenc-elg: a Paillier plaintext in range that is also committed to in an ElGamal pair.

Statement: the prover's Paillier key N0, a ciphertext C, points A, B, X and the VERIFIER's
ring-Pedersen parameters (N̂, s, t). Witness: x ∈ ±2^ℓ, ρ ∈ Z*_N0 and a scalar b with

    C = enc_0(x; ρ),    B = b·G,    X = b·A + x·G.

Follows Fig. 24 (Section A.2) of the 2024 revision of CGGMP (ePrint 2021/060). The paper writes
A = a·G and X = (a·b + x)·G; the prover never needs a (in presigning A is the prover's own
ElGamal key Y_i and a its secret y_i, which the proof does not use), so the witness is
(x, ρ, b) only.

Prover: α ∈ ±2^(ℓ+ε), μ ∈ ±2^ℓ·N̂, r ∈ Z*_N0, β ∈ Z_q, γ ∈ ±2^(ℓ+ε)·N̂;
S = s^x t^μ, D = enc_0(α; r), Y = β·A + α·G, Z = β·G, T = s^α t^γ (mod N̂);
e ∈ ±Q from the transcript; z1 = α + e·x, w = β + e·b mod q, z2 = r·ρ^e mod N0, z3 = γ + e·μ.

Verifier (range and membership checks first, no exponentiation before they pass):
  z1_range        z1 ∈ ±2^(ℓ+ε)
  w_range         w a canonical scalar in [0, q)
  z3_range        |z3| ≤ 2^(ℓ+ε+1)·N̂ (see deviations)
  z2_unit         z2 ∈ Z*_N0
  commitment_unit S, T ∈ Z*_N̂ and D ∈ Z*_{N0²}
  c_unit          the statement's C ∈ Z*_{N0²}
  eq_paillier     enc_0(z1; z2) = D·C^e mod N0²
  eq_x            w·A + z1·G = Y + e·X
  eq_b            w·G = Z + e·B
  eq_pedersen     s^z1 t^z3 = T·S^e mod N̂

Deviations, each without loss of completeness or soundness:
- the challenge is a signed integer e ∈ ±Q, Q = 2^m (`level.challenge_bound`), as in the other
  range proofs, rather than a scalar; it is reduced mod q for the curve equations;
- z3 is bounded before any exponentiation (an honest z3 satisfies |z3| ≤ 2^(ℓ+ε)·N̂ + 2^(ℓ+m)·N̂,
  which is below the bound because m < ε), so a huge exponent cannot be used to stall a verifier;
- the transcript also absorbs (ℓ, ε, m), which fix the ranges the statement speaks about.

Use in presigning (Fig. 8, round 1), party i to each verifier j, under j's ring-Pedersen params:
  ψ0: C = K_i, A = Y_i, B = A_i1, X = A_i2; witness x = k_i, ρ = ρ_i, b = a_i
  ψ1: C = G_i, A = Y_i, B = B_i1, X = B_i2; witness x = γ_i, ρ = ν_i, b = b_i
(with A_i1 = a_i·G, A_i2 = a_i·Y_i + k_i·G, B_i1 = b_i·G, B_i2 = b_i·Y_i + γ_i·G).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..curve import Point, Q, check_scalar
from ..encoding import Decoded, Value, as_int, as_point
from ..errors import InvalidInput
from ..modarith import powmod_public, powmod_secret
from ..paillier import PaillierPublicKey, PaillierSecretKey
from ..params import SecurityLevel
from ..ring_pedersen import RingPedersenParams
from ..rng import Rng, rand_signed, rand_signed_scaled, rand_unit
from ..transcript import Transcript
from .common import fields, is_unit, require, require_range

NAME = "enc_elg"


@dataclass(frozen=True, slots=True)
class Statement:
    """C = enc_0(x; ρ), B = b·G, X = b·A + x·G, proved under the verifier's ring-Pedersen params."""

    pk0: PaillierPublicKey
    C: int
    A: Point
    B: Point
    X: Point
    setup: RingPedersenParams


@dataclass(frozen=True, slots=True)
class Witness:
    """x ∈ ±2^ℓ, ρ ∈ Z*_N0, the scalar b; optionally the prover's own Paillier key (for CRT)."""

    x: int = field(repr=False)
    rho: int = field(repr=False)
    b: int = field(repr=False)
    key: PaillierSecretKey | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Proof:
    """(S, D, Y, Z, T, z1, w, z2, z3)."""

    S: int
    D: int
    Y: Point
    Z: Point
    T: int
    z1: int
    w: int
    z2: int
    z3: int

    def to_value(self) -> Value:
        return [self.S, self.D, self.Y, self.Z, self.T, self.z1, self.w, self.z2, self.z3]

    @classmethod
    def from_value(cls, v: Decoded) -> Proof:
        s, d, y, z, t, z1, w, z2, z3 = fields(v, 9)
        return cls(
            S=as_int(s),
            D=as_int(d),
            Y=as_point(y),
            Z=as_point(z),
            T=as_int(t),
            z1=as_int(z1),
            w=check_scalar(as_int(w)),
            z2=as_int(z2),
            z3=as_int(z3),
        )


def _challenge(
    transcript: Transcript, stmt: Statement, level: SecurityLevel, S: int, D: int, Y: Point, Z: Point, T: int
) -> int:
    t = transcript.fork(NAME)
    t.append("level", level.ell, level.epsilon, level.m)
    t.append("statement", stmt.pk0.n, stmt.C, stmt.A, stmt.B, stmt.X, stmt.setup.n, stmt.setup.s, stmt.setup.t)
    t.append("commitment", S, D, Y, Z, T)
    return t.challenge_signed("e", level.challenge_bound)


def prove(transcript: Transcript, stmt: Statement, wit: Witness, *, rng: Rng, level: SecurityLevel) -> Proof:
    """Prove the statement; a witness that does not satisfy it yields a proof that fails to verify."""
    n0 = stmt.pk0.n
    if wit.key is not None and wit.key.n != n0:
        raise InvalidInput("the witness's Paillier key is not the statement's N0")
    setup = stmt.setup
    n_hat = setup.n
    ell, eps = level.ell, level.epsilon

    alpha = rand_signed(rng, ell + eps)
    mu = rand_signed_scaled(rng, ell, n_hat)
    r = rand_unit(rng, n0)
    beta = 1 + rng.randbelow(Q - 1)
    gamma = rand_signed_scaled(rng, ell + eps, n_hat)

    S = setup.commit(wit.x, mu)
    D = wit.key.encrypt_with(alpha, r) if wit.key is not None else stmt.pk0.encrypt_with(alpha, r)
    Y = stmt.A * beta + Point.base_mul(alpha)
    Z = Point.base_mul(beta)
    T = setup.commit(alpha, gamma)

    e = _challenge(transcript, stmt, level, S, D, Y, Z, T)
    z1 = alpha + e * wit.x
    w = (beta + e * wit.b) % Q
    z2 = r * powmod_secret(wit.rho, e, n0) % n0
    z3 = gamma + e * mu
    return Proof(S, D, Y, Z, T, z1, w, z2, z3)



def verify(transcript: Transcript, stmt: Statement, proof: Proof, *, level: SecurityLevel) -> None:
    """Raise InvalidProof(NAME, check) unless the proof verifies against the verifier's own statement."""
    ell, eps = level.ell, level.epsilon
    setup, pk0 = stmt.setup, stmt.pk0
    n0, n0_sq, n_hat = pk0.n, pk0.n2, setup.n

    require_range(proof.z1, ell + eps, NAME, "z1_range")
    require(isinstance(proof.w, int) and 0 <= proof.w < Q, NAME, "w_range")
    require(abs(proof.z3) <= (n_hat << (ell + eps + 1)), NAME, "z3_range")
    require(is_unit(proof.z2, n0, n0), NAME, "z2_unit")
    require(
        is_unit(proof.S, n_hat, n_hat) and is_unit(proof.T, n_hat, n_hat) and is_unit(proof.D, n0, n0_sq),
        NAME,
        "commitment_unit",
    )
    require(is_unit(stmt.C, n0, n0_sq), NAME, "c_unit")

    e = _challenge(transcript, stmt, level, proof.S, proof.D, proof.Y, proof.Z, proof.T)

    lhs_enc = pk0.encrypt_with(proof.z1, proof.z2)
    require(lhs_enc == pk0.add(proof.D, pk0.mul_public(stmt.C, e)), NAME, "eq_paillier")

    e_q = e % Q
    z1_g = Point.base_mul(proof.z1)
    require(stmt.A * proof.w + z1_g == proof.Y + stmt.X * e_q, NAME, "eq_x")
    require(Point.base_mul(proof.w) == proof.Z + stmt.B * e_q, NAME, "eq_b")

    s_pow_e = powmod_public(proof.S, e, n_hat)
    require(setup.commit_public(proof.z1, proof.z3) == proof.T * s_pow_e % n_hat, NAME, "eq_pedersen")
