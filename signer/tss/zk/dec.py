"""Πdec: Paillier special decryption in the exponent (used by presigning's identification only).

Statement: the prover's Paillier key N0, ciphertexts K and D mod N0², points X and S, a base
point Γ (not always the generator) and the number of parties n. Witness: x ∈ ±2^ℓ,
y ∈ ±2^y_bits with y_bits = ℓ' + ε + 1 + ⌈log2 n⌉, and ρ ∈ Z*_N0 with

    enc_0(y; ρ) = K^x · D mod N0²,    X = x·G,    S = y·Γ.

Follows Fig. 28 (Section A.6) of the 2024 revision of CGGMP (ePrint 2021/060): setup-less, m =
`level.m` repetitions with binary challenges. Per repetition j:
  α ∈ ±2^(ℓ+ε),  β ∈ ±2^(y_bits+ε),  r ∈ Z*_N0;
  A = K^(−α) · enc_0(β; r) mod N0²,  B = β·Γ,  C = α·G;
  e_j ∈ {0, 1} from the transcript after all (A, B, C);
  z = α + e_j·x,  w = β + e_j·y,  ν = r·ρ^(e_j) mod N0.

Verifier (count, range and membership checks first, no exponentiation before they pass):
  repetitions      exactly m repetitions
  z_range          every z ∈ ±2^(ℓ+ε)
  w_range          every w ∈ ±2^(y_bits+ε)
  nu_unit          every ν ∈ Z*_N0
  a_unit           every A ∈ Z*_{N0²}
  ciphertext_unit  the statement's K and D are in Z*_{N0²}
  eq_x             z·G = C + e_j·X                      (for every repetition)
  eq_s             w·Γ = B + e_j·S                      (for every repetition)
  eq_paillier      enc_0(w; ν) = K^z · A · D^(e_j) mod N0²   (for every repetition)
The cheap curve equations run over all repetitions before the Paillier one.

Why eq_paillier holds: enc_0(w; ν) = enc_0(β; r) · enc_0(y; ρ)^e = enc_0(β; r) · K^(e·x) · D^e,
and K^z · A = K^(α + e·x) · K^(−α) · enc_0(β; r), the same: A must carry K^(−α), not K^α, for
this check to hold. (The figure's statement has a typo, enc_0(z; ρ) for enc_0(y; ρ).)

Deviations, each without loss of completeness or soundness:
- Γ is a statement field: Section 4.3.1 uses the proof with Γ in place of g;
- y and β have the wider range y_bits (+ε) instead of ℓ' (+ε): in identification y is δ_i or
  a sum of n MtA shares, which only fits ±2^(ℓ'+ε+1+⌈log2 n⌉); n is part of the statement;
- a_unit and ciphertext_unit are not in the paper (an A or a K outside the group is rejected
  before any exponentiation);
- the transcript also absorbs (ℓ, ℓ', ε, m), which fix the ranges the statement speaks about.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..curve import Point
from ..encoding import Decoded, Value, as_int, as_list, as_point
from ..errors import InvalidInput
from ..modarith import crt, in_signed_range, inverse, powmod_public, powmod_secret
from ..paillier import PaillierPublicKey, PaillierSecretKey
from ..params import SecurityLevel
from ..rng import Rng, rand_signed, rand_unit
from ..transcript import Transcript
from .common import fields, is_unit, require

NAME = "dec"


@dataclass(frozen=True, slots=True)
class Statement:
    """enc_0(y; ρ) = K^x·D mod N0², X = x·G, S = y·Γ, among `num_parties` parties."""

    pk0: PaillierPublicKey
    K: int
    D: int
    X: Point
    S: Point
    Gamma: Point
    num_parties: int


@dataclass(frozen=True, slots=True)
class Witness:
    """x ∈ ±2^ℓ, y ∈ ±2^y_bits, ρ ∈ Z*_N0; optionally the prover's own Paillier key (for CRT)."""

    x: int = field(repr=False)
    y: int = field(repr=False)
    rho: int = field(repr=False)
    key: PaillierSecretKey | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Repetition:
    """One repetition: the commitment (A, B, C) and the response (z, w, ν)."""

    A: int
    B: Point
    C: Point
    z: int
    w: int
    nu: int

    def to_value(self) -> Value:
        return [self.A, self.B, self.C, self.z, self.w, self.nu]

    @classmethod
    def from_value(cls, v: Decoded) -> Repetition:
        a, b, c, z, w, nu = fields(v, 6)
        return cls(as_int(a), as_point(b), as_point(c), as_int(z), as_int(w), as_int(nu))


@dataclass(frozen=True, slots=True)
class Proof:
    """The m repetitions, in challenge-bit order."""

    reps: tuple[Repetition, ...]

    def to_value(self) -> Value:
        return [r.to_value() for r in self.reps]

    @classmethod
    def from_value(cls, v: Decoded) -> Proof:
        return cls(tuple(Repetition.from_value(r) for r in as_list(v)))


def y_bits(level: SecurityLevel, num_parties: int) -> int:
    """The bit bound of y: ℓ' + ε + 1 + ⌈log2 n⌉."""
    if not isinstance(num_parties, int) or isinstance(num_parties, bool) or num_parties < 1:
        raise InvalidInput("num_parties must be a positive integer")
    return level.ell_prime + level.epsilon + 1 + (num_parties - 1).bit_length()


def _challenge(transcript: Transcript, stmt: Statement, level: SecurityLevel, commitments: list[Value]) -> list[int]:
    t = transcript.fork(NAME)
    t.append("level", level.ell, level.ell_prime, level.epsilon, level.m)
    t.append("statement", stmt.pk0.n, stmt.K, stmt.D, stmt.X, stmt.S, stmt.Gamma, stmt.num_parties)
    t.append("commitment", commitments)
    return t.challenge_bits("e", level.m)


def _owner_pow(key: PaillierSecretKey, c: int) -> Callable[[int], int]:
    """k ↦ c^k mod N0² for secret k, with CRT over p² and q² (the owner knows the factors)."""
    p2, q2 = key.p * key.p, key.q * key.q
    c_p, c_q, p2_inv = c % p2, c % q2, inverse(p2, q2)

    def power(k: int) -> int:
        return crt(powmod_secret(c_p, k, p2), p2, powmod_secret(c_q, k, q2), q2, p2_inv)

    return power


def prove(transcript: Transcript, stmt: Statement, wit: Witness, *, rng: Rng, level: SecurityLevel) -> Proof:
    """Prove the statement; x and y must lie in their ranges (else the responses would leak them)."""
    pk0 = stmt.pk0
    n0, n0_sq = pk0.n, pk0.n2
    if wit.key is not None and wit.key.n != n0:
        raise InvalidInput("the witness's Paillier key is not the statement's N0")
    if not is_unit(stmt.K, n0, n0_sq):
        raise InvalidInput("the statement's K is not in Z*_{N0²}")
    yb = y_bits(level, stmt.num_parties)
    if not in_signed_range(wit.x, level.ell) or not in_signed_range(wit.y, yb):
        raise InvalidInput("Πdec witness out of range")
    ell, eps = level.ell, level.epsilon
    if wit.key is not None:
        encrypt, k_pow = wit.key.encrypt_with, _owner_pow(wit.key, stmt.K)
    else:
        encrypt, k_pow = pk0.encrypt_with, lambda k: powmod_secret(stmt.K, k, n0_sq)

    nonces: list[tuple[int, int, int]] = []
    commitments: list[tuple[int, Point, Point]] = []
    for _ in range(level.m):
        alpha = rand_signed(rng, ell + eps)
        beta = rand_signed(rng, yb + eps)
        r = rand_unit(rng, n0)
        A = k_pow(-alpha) * encrypt(beta, r) % n0_sq
        nonces.append((alpha, beta, r))
        commitments.append((A, stmt.Gamma * beta, Point.base_mul(alpha)))

    bits = _challenge(transcript, stmt, level, [list(c) for c in commitments])
    reps = []
    for (alpha, beta, r), (A, B, C), e in zip(nonces, commitments, bits, strict=True):
        nu = r * wit.rho % n0 if e else r
        reps.append(Repetition(A, B, C, alpha + e * wit.x, beta + e * wit.y, nu))
    return Proof(tuple(reps))



def verify(transcript: Transcript, stmt: Statement, proof: Proof, *, level: SecurityLevel) -> None:
    """Raise InvalidProof(NAME, check) unless the proof verifies against the verifier's own statement."""
    pk0 = stmt.pk0
    n0, n0_sq = pk0.n, pk0.n2
    yb = y_bits(level, stmt.num_parties)
    reps = proof.reps

    require(len(reps) == level.m, NAME, "repetitions")
    require(all(in_signed_range(rep.z, level.ell + level.epsilon) for rep in reps), NAME, "z_range")
    require(all(in_signed_range(rep.w, yb + level.epsilon) for rep in reps), NAME, "w_range")
    require(all(is_unit(rep.nu, n0, n0) for rep in reps), NAME, "nu_unit")
    require(all(is_unit(rep.A, n0, n0_sq) for rep in reps), NAME, "a_unit")
    require(is_unit(stmt.K, n0, n0_sq) and is_unit(stmt.D, n0, n0_sq), NAME, "ciphertext_unit")

    bits = _challenge(transcript, stmt, level, [[rep.A, rep.B, rep.C] for rep in reps])

    for rep, e in zip(reps, bits, strict=True):
        require(Point.base_mul(rep.z) == (rep.C + stmt.X if e else rep.C), NAME, "eq_x")
    for rep, e in zip(reps, bits, strict=True):
        require(stmt.Gamma * rep.w == (rep.B + stmt.S if e else rep.B), NAME, "eq_s")
    for rep, e in zip(reps, bits, strict=True):
        rhs = powmod_public(stmt.K, rep.z, n0_sq) * rep.A % n0_sq
        if e:
            rhs = rhs * stmt.D % n0_sq
        require(pk0.encrypt_with(rep.w, rep.nu) == rhs, NAME, "eq_paillier")
