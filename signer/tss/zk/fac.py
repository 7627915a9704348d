"""Πfac: the prover's Paillier modulus N0 has no small factor (both factors exceed about 2^ℓ).

Statement: the prover's Paillier modulus N0 and the VERIFIER's ring-Pedersen parameters (N̂, s, t).
Witness: p, q with N0 = p·q. It stops BitForge / 6ix1een-style moduli (N0 with a small factor or
many small factors), which Πmod alone does not rule out.

Follows Fig. 26 (Section A.4) of the 2024 revision of CGGMP (ePrint 2021/060); √N0 is the integer
square root of N0 (the paper allows any value between its lower and upper bound).

Prover, with all commitments mod N̂:
  α, β ∈ ±2^(ℓ+ε)·√N0,  μ, ν ∈ ±2^ℓ·N̂,  σ ∈ ±2^ℓ·N0·N̂,  r ∈ ±2^(ℓ+ε)·N0·N̂,  x, y ∈ ±2^(ℓ+ε)·N̂;
  P = s^p t^μ,  Q = s^q t^ν,  A = s^α t^x,  B = s^β t^y,  T = Q^α t^r;
  e ∈ ±Q from the transcript after (P, Q, A, B, T, σ);  σ̂ = σ − ν·p;
  z1 = α + e·p,  z2 = β + e·q,  w1 = x + e·μ,  w2 = y + e·ν,  v = r + e·σ̂.

Verifier (size, range and membership checks first, no exponentiation before they pass):
  modulus_size     N0 has exactly `level.modulus_bits` bits (the bound on z1, z2 only means
                   something for a full-size N0)
  z_range          z1, z2 ∈ ±2^(ℓ+ε)·√N0
  sigma_range      σ ∈ ±2^ℓ·N0·N̂
  w_range          w1, w2 ∈ ±2^(ℓ+ε+1)·N̂
  v_range          v ∈ ±2^(ℓ+ε+1)·N0·N̂
  commitment_unit  P, Q, A, B, T ∈ Z*_N̂
  eq_p             s^z1 t^w1 = A·P^e
  eq_q             s^z2 t^w2 = B·Q^e
  eq_n             Q^z1 t^v = T·R^e  with  R = s^N0 t^σ

Why eq_n holds: Q^p = s^(p·q) t^(ν·p) = s^N0 t^(ν·p), so Q^z1 t^v = Q^α t^r · (Q^p t^σ̂)^e = T·R^e.

Deviations, each without loss of completeness or soundness:
- sigma_range, w_range, v_range, modulus_size are not in the paper. The first three bound the
  exponents a verifier will use (an honest w1 is at most 2^(ℓ+ε)·N̂ + 2^(ℓ+m)·N̂ and an honest v
  at most 2^(ℓ+ε)·N0·N̂ + 2^(ℓ+m+1)·N0·N̂, both under the bounds because m < ε), so a huge value
  cannot stall the verifier; modulus_size makes the statement's precondition explicit;
- the transcript also absorbs (ℓ, ε, m), which fix the ranges the statement speaks about.

The prover does not check its witness: a wrong witness (or a modulus with a small factor) yields
a proof that fails verification, which the tests rely on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import gmpy2

from ..encoding import Decoded, Value, as_int
from ..modarith import powmod_public, powmod_secret
from ..paillier import PaillierPublicKey
from ..params import SecurityLevel
from ..ring_pedersen import RingPedersenParams
from ..rng import Rng, rand_signed_scaled
from ..transcript import Transcript
from .common import fields, is_unit, require

NAME = "fac"


@dataclass(frozen=True, slots=True)
class Statement:
    """N0 (the prover's Paillier modulus) has no small factor; proved under the verifier's params."""

    pk0: PaillierPublicKey
    setup: RingPedersenParams


@dataclass(frozen=True, slots=True)
class Witness:
    """The factors p, q of N0."""

    p: int = field(repr=False)
    q: int = field(repr=False)


@dataclass(frozen=True, slots=True)
class Proof:
    """(P, Q, A, B, T, σ, z1, z2, w1, w2, v)."""

    P: int
    Q: int
    A: int
    B: int
    T: int
    sigma: int
    z1: int
    z2: int
    w1: int
    w2: int
    v: int

    def to_value(self) -> Value:
        return [self.P, self.Q, self.A, self.B, self.T, self.sigma, self.z1, self.z2, self.w1, self.w2, self.v]

    @classmethod
    def from_value(cls, v: Decoded) -> Proof:
        return cls(*(as_int(x) for x in fields(v, 11)))


def _challenge(transcript: Transcript, stmt: Statement, level: SecurityLevel, proof_head: list[int]) -> int:
    t = transcript.fork(NAME)
    t.append("level", level.ell, level.epsilon, level.m)
    t.append("statement", stmt.pk0.n, stmt.setup.n, stmt.setup.s, stmt.setup.t)
    t.append("commitment", *proof_head)
    return t.challenge_signed("e", level.challenge_bound)


def prove(transcript: Transcript, stmt: Statement, wit: Witness, *, rng: Rng, level: SecurityLevel) -> Proof:
    """Prove that N0 = p·q with both factors large; the witness is not checked (see module doc)."""
    setup = stmt.setup
    n0, n_hat = stmt.pk0.n, setup.n
    ell, eps = level.ell, level.epsilon
    sqrt_n0 = int(gmpy2.isqrt(n0))

    alpha = rand_signed_scaled(rng, ell + eps, sqrt_n0)
    beta = rand_signed_scaled(rng, ell + eps, sqrt_n0)
    mu = rand_signed_scaled(rng, ell, n_hat)
    nu = rand_signed_scaled(rng, ell, n_hat)
    sigma = rand_signed_scaled(rng, ell, n0 * n_hat)
    r = rand_signed_scaled(rng, ell + eps, n0 * n_hat)
    x = rand_signed_scaled(rng, ell + eps, n_hat)
    y = rand_signed_scaled(rng, ell + eps, n_hat)

    P = setup.commit(wit.p, mu)
    Q = setup.commit(wit.q, nu)
    A = setup.commit(alpha, x)
    B = setup.commit(beta, y)
    T = powmod_secret(Q, alpha, n_hat) * powmod_secret(setup.t, r, n_hat) % n_hat

    e = _challenge(transcript, stmt, level, [P, Q, A, B, T, sigma])
    sigma_hat = sigma - nu * wit.p
    return Proof(
        P=P,
        Q=Q,
        A=A,
        B=B,
        T=T,
        sigma=sigma,
        z1=alpha + e * wit.p,
        z2=beta + e * wit.q,
        w1=x + e * mu,
        w2=y + e * nu,
        v=r + e * sigma_hat,
    )



def _within(v: int, bound: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and -bound <= v <= bound


def verify(transcript: Transcript, stmt: Statement, proof: Proof, *, level: SecurityLevel) -> None:
    """Raise InvalidProof(NAME, check) unless the proof verifies against the verifier's own statement."""
    setup = stmt.setup
    n0, n_hat = stmt.pk0.n, setup.n
    ell, eps = level.ell, level.epsilon

    require(n0.bit_length() == level.modulus_bits, NAME, "modulus_size")
    z_bound = int(gmpy2.isqrt(n0)) << (ell + eps)
    require(_within(proof.z1, z_bound) and _within(proof.z2, z_bound), NAME, "z_range")
    require(_within(proof.sigma, (n0 * n_hat) << ell), NAME, "sigma_range")
    w_bound = n_hat << (ell + eps + 1)
    require(_within(proof.w1, w_bound) and _within(proof.w2, w_bound), NAME, "w_range")
    require(_within(proof.v, (n0 * n_hat) << (ell + eps + 1)), NAME, "v_range")
    require(all(is_unit(c, n_hat) for c in (proof.P, proof.Q, proof.A, proof.B, proof.T)), NAME, "commitment_unit")

    e = _challenge(transcript, stmt, level, [proof.P, proof.Q, proof.A, proof.B, proof.T, proof.sigma])

    rhs_p = proof.A * powmod_public(proof.P, e, n_hat) % n_hat
    require(setup.commit_public(proof.z1, proof.w1) == rhs_p, NAME, "eq_p")
    rhs_q = proof.B * powmod_public(proof.Q, e, n_hat) % n_hat
    require(setup.commit_public(proof.z2, proof.w2) == rhs_q, NAME, "eq_q")
    R = setup.commit_public(n0, proof.sigma)
    lhs_n = powmod_public(proof.Q, proof.z1, n_hat) * powmod_public(setup.t, proof.v, n_hat) % n_hat
    require(lhs_n == proof.T * powmod_public(R, e, n_hat) % n_hat, NAME, "eq_n")
