"""Πaff-g: Paillier affine operation with group commitment in range.

Statement: the verifier's Paillier key N0 (the key of C), the prover's key N1, ciphertexts
C, D ∈ Z*_{N0²}, Y ∈ Z*_{N1²}, a point X, and the verifier's ring-Pedersen parameters (N̂, s, t).
Witness: x ∈ ±2^ℓ, y ∈ ±2^ℓ', ρ ∈ Z*_N0, ρ_y ∈ Z*_N1 with

    D = C^x · enc_0(y; ρ) mod N0²,    Y = enc_1(y; ρ_y) mod N1²,    X = x·G.

Follows Fig. 25 of the 2024 revision of CGGMP (ePrint 2021/060; Fig. 15 of the 2021 one), in the
paper's own sign convention (+y). Presigning proves D = K^γ·enc(β), F = enc(β) with y = β and keeps
−β as its additive share; synedrion instead negates y inside the proof, we do not.

Prover: α ∈ ±2^(ℓ+ε), β ∈ ±2^(ℓ'+ε), r ∈ Z*_N0, r_y ∈ Z*_N1, γ, δ ∈ ±2^(ℓ+ε)·N̂, m, μ ∈ ±2^ℓ·N̂;
  A = C^α·enc_0(β; r),  B_x = α·G,  B_y = enc_1(β; r_y),
  E = s^α t^γ,  F = s^β t^δ,  S = s^x t^m,  T = s^y t^μ  (mod N̂);
  e ∈ ±Q from the transcript (statement, then the first message);
  z1 = α + e·x,  z2 = β + e·y,  z3 = γ + e·m,  z4 = δ + e·μ,  w = r·ρ^e mod N0,  w_y = r_y·ρ_y^e mod N1.

Verifier, in this order (every range and membership check before any exponentiation):
  z1_range         z1 ∈ ±2^(ℓ+ε)
  z2_range         z2 ∈ ±2^(ℓ'+ε)
  z3_range         |z3| ≤ (2^(ℓ+ε) + Q·2^ℓ)·N̂      (the honest prover's exact bound)
  z4_range         |z4| ≤ (2^(ℓ+ε) + Q·2^ℓ)·N̂
  statement        N0, N1, N̂ have the level's size; s, t ∈ Z*_N̂; C, D ∈ Z*_{N0²}; Y ∈ Z*_{N1²}
  w_unit           w ∈ Z*_N0, w_y ∈ Z*_N1
  commitment_unit  A ∈ Z*_{N0²}, B_y ∈ Z*_{N1²}, E, F, S, T ∈ Z*_N̂
  eq_x             z1·G = B_x + e·X
  eq_d             C^z1 · enc_0(z2; w) = A · D^e mod N0²
  eq_y             enc_1(z2; w_y) = B_y · Y^e mod N1²
  eq_pedersen_x    s^z1 t^z3 = E · S^e mod N̂
  eq_pedersen_y    s^z2 t^z4 = F · T^e mod N̂
The cheap curve equation runs first: any change to the first message changes e and fails there.

What it guarantees (soundness under strong RSA on N̂): the extracted x = Δz1/Δe and y = Δz2/Δe
are integers with |x| ≤ 2^(ℓ+ε+1), |y| ≤ 2^(ℓ'+ε+1), not the ±2^ℓ, ±2^ℓ' the honest prover
uses (the usual slack of 2^ε). As ℓ'+ε+1 is far below log2 N0, log2 N1 (1079 against 2048 or
3072 bits), that one integer y is the signed plaintext under both keys: no wrap-around.

Additions to the figure, none of which rejects an honest proof: the z3/z4 size bounds (stop a
huge exponent before it is used), the statement and membership checks, and the level parameters
(ℓ, ℓ', ε, m) in the transcript. The prover refuses a witness out of its ranges (the responses
would leak it); `_prove` skips that guard and exists for tests that play a cheating prover.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..curve import Point
from ..encoding import Decoded, Value, as_int, as_point
from ..errors import InvalidInput
from ..modarith import in_signed_range, powmod_public, powmod_secret
from ..paillier import PaillierPublicKey, PaillierSecretKey
from ..params import SecurityLevel
from ..ring_pedersen import RingPedersenParams
from ..rng import Rng, rand_signed, rand_signed_scaled, rand_unit
from ..transcript import Transcript
from .common import fields, is_unit, require, require_range

NAME = "aff_g"


@dataclass(frozen=True, slots=True)
class Statement:
    """D = C^x·enc_0(y; ρ), Y = enc_1(y; ρ_y), X = x·G; rp is the verifier's ring-Pedersen setup."""

    N0: PaillierPublicKey
    N1: PaillierPublicKey
    C: int
    D: int
    Y: int
    X: Point
    rp: RingPedersenParams


@dataclass(frozen=True, slots=True)
class Witness:
    """x ∈ ±2^ℓ, y ∈ ±2^ℓ', ρ ∈ Z*_N0, ρ_y ∈ Z*_N1; optionally the prover's own key of N1 (CRT)."""

    x: int = field(repr=False)
    y: int = field(repr=False)
    rho: int = field(repr=False)
    rho_y: int = field(repr=False)
    key: PaillierSecretKey | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Proof:
    """The first message (A, B_x, B_y, E, F, S, T) and the response (z1, z2, z3, z4, w, w_y)."""

    A: int
    B_x: Point
    B_y: int
    E: int
    F: int
    S: int
    T: int
    z1: int
    z2: int
    z3: int
    z4: int
    w: int
    w_y: int

    def to_value(self) -> Value:
        return [
            self.A, self.B_x, self.B_y, self.E, self.F, self.S, self.T,
            self.z1, self.z2, self.z3, self.z4, self.w, self.w_y,
        ]

    @classmethod
    def from_value(cls, v: Decoded) -> Proof:
        a, b_x, b_y, e, f, s, t, z1, z2, z3, z4, w, w_y = fields(v, 13)
        return cls(
            as_int(a), as_point(b_x), as_int(b_y), as_int(e), as_int(f), as_int(s), as_int(t),
            as_int(z1), as_int(z2), as_int(z3), as_int(z4), as_int(w), as_int(w_y),
        )


def _challenge(transcript: Transcript, stmt: Statement, level: SecurityLevel, first: list[Value]) -> int:
    t = transcript.fork(NAME)
    t.append("level", level.ell, level.ell_prime, level.epsilon, level.m)
    t.append(
        "statement",
        stmt.N0.n, stmt.N1.n, stmt.rp.n, stmt.rp.s, stmt.rp.t, stmt.C, stmt.D, stmt.Y, stmt.X,
    )
    t.append("commitment", first)
    return t.challenge_signed("e", level.challenge_bound)



def z34_bound(level: SecurityLevel, n_hat: int) -> int:
    """The largest |z3|, |z4| an honest prover can send: (2^(ℓ+ε) + Q·2^ℓ)·N̂."""
    return ((1 << (level.ell + level.epsilon)) + (level.challenge_bound << level.ell)) * n_hat


def prove(transcript: Transcript, stmt: Statement, wit: Witness, *, rng: Rng, level: SecurityLevel) -> Proof:
    """Prove the statement; refuses a witness outside x ∈ ±2^ℓ, y ∈ ±2^ℓ' or non-unit randomness."""
    if not in_signed_range(wit.x, level.ell) or not in_signed_range(wit.y, level.ell_prime):
        raise InvalidInput("Πaff-g witness out of range")
    if not is_unit(wit.rho, stmt.N0.n, stmt.N0.n) or not is_unit(wit.rho_y, stmt.N1.n, stmt.N1.n):
        raise InvalidInput("Πaff-g randomness is not a unit")
    if wit.key is not None and wit.key.n != stmt.N1.n:
        raise InvalidInput("the witness's Paillier key is not the statement's N1")
    return _prove(transcript, stmt, wit, rng=rng, level=level)


def _prove(transcript: Transcript, stmt: Statement, wit: Witness, *, rng: Rng, level: SecurityLevel) -> Proof:
    """The prover without its witness guard (tests use it as a cheating prover)."""
    ell, ell_p, eps = level.ell, level.ell_prime, level.epsilon
    n0, n0_sq, n1 = stmt.N0.n, stmt.N0.n2, stmt.N1.n
    rp = stmt.rp
    encrypt_1 = wit.key.encrypt_with if wit.key is not None else stmt.N1.encrypt_with

    alpha = rand_signed(rng, ell + eps)
    beta = rand_signed(rng, ell_p + eps)
    r = rand_unit(rng, n0)
    r_y = rand_unit(rng, n1)
    gamma = rand_signed_scaled(rng, ell + eps, rp.n)
    delta = rand_signed_scaled(rng, ell + eps, rp.n)
    m = rand_signed_scaled(rng, ell, rp.n)
    mu = rand_signed_scaled(rng, ell, rp.n)

    A = powmod_secret(stmt.C, alpha, n0_sq) * stmt.N0.encrypt_with(beta, r) % n0_sq
    B_x = Point.base_mul(alpha)
    B_y = encrypt_1(beta, r_y)
    E = rp.commit(alpha, gamma)
    F = rp.commit(beta, delta)
    S = rp.commit(wit.x, m)
    T = rp.commit(wit.y, mu)

    e = _challenge(transcript, stmt, level, [A, B_x, B_y, E, F, S, T])
    return Proof(
        A, B_x, B_y, E, F, S, T,
        alpha + e * wit.x,
        beta + e * wit.y,
        gamma + e * m,
        delta + e * mu,
        r * powmod_public(wit.rho, e, n0) % n0,
        r_y * powmod_public(wit.rho_y, e, n1) % n1,
    )


def verify(transcript: Transcript, stmt: Statement, proof: Proof, *, level: SecurityLevel) -> None:
    """Raise InvalidProof(NAME, check) unless the proof verifies against the verifier's own statement."""
    p = proof
    n0, n0_sq, n1, n1_sq = stmt.N0.n, stmt.N0.n2, stmt.N1.n, stmt.N1.n2
    rp = stmt.rp
    n_hat = rp.n

    require_range(p.z1, level.ell + level.epsilon, NAME, "z1_range")
    require_range(p.z2, level.ell_prime + level.epsilon, NAME, "z2_range")
    bound = z34_bound(level, n_hat)
    require(-bound <= p.z3 <= bound, NAME, "z3_range")
    require(-bound <= p.z4 <= bound, NAME, "z4_range")
    require(
        all(k.bit_length() == level.modulus_bits for k in (n0, n1, n_hat))
        and is_unit(rp.s, n_hat, n_hat)
        and is_unit(rp.t, n_hat, n_hat)
        and is_unit(stmt.C, n0, n0_sq)
        and is_unit(stmt.D, n0, n0_sq)
        and is_unit(stmt.Y, n1, n1_sq),
        NAME,
        "statement",
    )
    require(is_unit(p.w, n0, n0) and is_unit(p.w_y, n1, n1), NAME, "w_unit")
    require(
        is_unit(p.A, n0, n0_sq)
        and is_unit(p.B_y, n1, n1_sq)
        and all(is_unit(v, n_hat, n_hat) for v in (p.E, p.F, p.S, p.T)),
        NAME,
        "commitment_unit",
    )

    e = _challenge(transcript, stmt, level, [p.A, p.B_x, p.B_y, p.E, p.F, p.S, p.T])

    require(Point.base_mul(p.z1) == p.B_x + stmt.X * e, NAME, "eq_x")
    lhs_d = powmod_public(stmt.C, p.z1, n0_sq) * stmt.N0.encrypt_with(p.z2, p.w) % n0_sq
    require(lhs_d == p.A * powmod_public(stmt.D, e, n0_sq) % n0_sq, NAME, "eq_d")
    lhs_y = stmt.N1.encrypt_with(p.z2, p.w_y)
    require(lhs_y == p.B_y * powmod_public(stmt.Y, e, n1_sq) % n1_sq, NAME, "eq_y")
    require(rp.commit_public(p.z1, p.z3) == p.E * powmod_public(p.S, e, n_hat) % n_hat, NAME, "eq_pedersen_x")
    require(rp.commit_public(p.z2, p.z4) == p.F * powmod_public(p.T, e, n_hat) % n_hat, NAME, "eq_pedersen_y")
