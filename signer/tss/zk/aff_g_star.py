"""Πaff-g*: setup-less Paillier affine operation with group commitment (identification only).

Statement: the Paillier keys N0 (of C and D) and N1 (of Y), ciphertexts C, D ∈ Z*_{N0²},
Y ∈ Z*_{N1²} and a point X. Witness: x ∈ ±2^ℓ, y ∈ ±2^ℓ', ρ ∈ Z*_N0, μ ∈ Z*_N1 with

    D = C^x · enc_0(y; ρ) mod N0²,    Y = enc_1(y; μ) mod N1²,    X = x·G.

Follows Fig. 27 of the 2024 revision of CGGMP (ePrint 2021/060), in the paper's sign convention
(+y; synedrion negates y inside the proof, we do not, as in Πaff-g). Presigning uses it only in
the identification round after a failed δ check, where every party checks every proof: so there
is no ring-Pedersen setup of a designated verifier, and the challenges are m = `level.m`
independent bits instead of one e ∈ ±Q. Per repetition j:
  α ∈ ±2^(ℓ+ε),  β ∈ ±2^(ℓ'+ε),  r ∈ Z*_N0,  s ∈ Z*_N1;
  A = C^α·enc_0(β; r),  B_x = α·G,  B_y = enc_1(β; s);
  e_j ∈ {0, 1} from the transcript after all m first messages;
  z1 = α + e_j·x,  z2 = β + e_j·y,  w = r·ρ^(e_j) mod N0,  w_y = s·μ^(e_j) mod N1.

Verifier, in this order (every range and membership check before any exponentiation):
  repetitions      exactly m repetitions
  z1_range         every z1 ∈ ±2^(ℓ+ε)
  z2_range         every z2 ∈ ±2^(ℓ'+ε)
  statement        N0, N1 have the level's size; C, D ∈ Z*_{N0²}; Y ∈ Z*_{N1²}
  w_unit           every w ∈ Z*_N0 and w_y ∈ Z*_N1
  commitment_unit  every A ∈ Z*_{N0²} and B_y ∈ Z*_{N1²}
  eq_x             z1·G = B_x + e_j·X                           (all repetitions, cheap, first)
  eq_d             C^z1 · enc_0(z2; w) = A · D^(e_j) mod N0²    (then per repetition:
  eq_y             enc_1(z2; w_y) = B_y · Y^(e_j) mod N1²        eq_d, eq_y)
Any change to a first message changes the challenge bits and fails eq_x before any Paillier work.

Do the ranges make sense with binary challenges? Yes, and they say the same as in Πaff-g. Two
accepting answers to one first message differ in e_j by exactly 1, so the witness is extracted
directly, x = z1 − z1', y = z2 − z2', ρ = w/w', μ = w_y/w_y' (no division by e − e', hence no
need for ring-Pedersen commitments and strong RSA: that is what makes the proof setup-less).
The range checks bound those integers: |x| ≤ 2^(ℓ+ε+1), |y| ≤ 2^(ℓ'+ε+1). Without them z2 could
be any integer and y would only be fixed modulo N0 and modulo N1 separately; with them, as
ℓ'+ε+1 is far below log2 N (1079 against 2048 or 3072 bits), one small integer y is the signed
plaintext under both keys, which is what identification needs (D and Y carry the same β), and x
is a small integer whose residue mod q is log_G X. They do not give x ∈ ±2^ℓ or y ∈ ±2^ℓ': the
slack 2^(ε+1) is as in Πaff-g. Zero knowledge: α and β hide x and y up to a statistical distance
of 2^-ε per repetition; an honest z1 = α + x leaves ±2^(ℓ+ε) with probability ≤ 2^-ε, the
completeness error. Soundness is 2^-m: a cheating prover must predict all m bits (Fiat–Shamir
turns that into 2^m hash evaluations).

Additions to the figure, none of which rejects an honest proof: the statement and membership
checks, and the level parameters (ℓ, ℓ', ε, m) in the transcript. The prover refuses a witness
out of its ranges; `_prove` skips that guard and exists for tests that play a cheating prover.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..curve import Point
from ..encoding import Decoded, Value, as_int, as_list, as_point
from ..errors import InvalidInput
from ..modarith import in_signed_range, powmod_public, powmod_secret
from ..paillier import PaillierPublicKey, PaillierSecretKey
from ..params import SecurityLevel
from ..rng import Rng, rand_signed, rand_unit
from ..transcript import Transcript
from .common import fields, is_unit, require

NAME = "aff_g_star"


@dataclass(frozen=True, slots=True)
class Statement:
    """D = C^x·enc_0(y; ρ), Y = enc_1(y; μ), X = x·G."""

    N0: PaillierPublicKey
    N1: PaillierPublicKey
    C: int
    D: int
    Y: int
    X: Point


@dataclass(frozen=True, slots=True)
class Witness:
    """x ∈ ±2^ℓ, y ∈ ±2^ℓ', ρ ∈ Z*_N0, μ ∈ Z*_N1; optionally the prover's own key of N1 (CRT)."""

    x: int = field(repr=False)
    y: int = field(repr=False)
    rho: int = field(repr=False)
    mu: int = field(repr=False)
    key: PaillierSecretKey | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Repetition:
    """One repetition: the first message (A, B_x, B_y) and the response (z1, z2, w, w_y)."""

    A: int
    B_x: Point
    B_y: int
    z1: int
    z2: int
    w: int
    w_y: int

    def to_value(self) -> Value:
        return [self.A, self.B_x, self.B_y, self.z1, self.z2, self.w, self.w_y]

    @classmethod
    def from_value(cls, v: Decoded) -> Repetition:
        a, b_x, b_y, z1, z2, w, w_y = fields(v, 7)
        return cls(as_int(a), as_point(b_x), as_int(b_y), as_int(z1), as_int(z2), as_int(w), as_int(w_y))


@dataclass(frozen=True, slots=True)
class Proof:
    """The m repetitions, in challenge-bit order."""

    reps: tuple[Repetition, ...]

    def to_value(self) -> Value:
        return [r.to_value() for r in self.reps]

    @classmethod
    def from_value(cls, v: Decoded) -> Proof:
        return cls(tuple(Repetition.from_value(r) for r in as_list(v)))


def _challenge(transcript: Transcript, stmt: Statement, level: SecurityLevel, first: list[Value]) -> list[int]:
    t = transcript.fork(NAME)
    t.append("level", level.ell, level.ell_prime, level.epsilon, level.m)
    t.append("statement", stmt.N0.n, stmt.N1.n, stmt.C, stmt.D, stmt.Y, stmt.X)
    t.append("commitment", first)
    return t.challenge_bits("e", level.m)



def prove(transcript: Transcript, stmt: Statement, wit: Witness, *, rng: Rng, level: SecurityLevel) -> Proof:
    """Prove the statement; refuses a witness outside x ∈ ±2^ℓ, y ∈ ±2^ℓ' or non-unit randomness."""
    if not in_signed_range(wit.x, level.ell) or not in_signed_range(wit.y, level.ell_prime):
        raise InvalidInput("Πaff-g* witness out of range")
    if not is_unit(wit.rho, stmt.N0.n, stmt.N0.n) or not is_unit(wit.mu, stmt.N1.n, stmt.N1.n):
        raise InvalidInput("Πaff-g* randomness is not a unit")
    if wit.key is not None and wit.key.n != stmt.N1.n:
        raise InvalidInput("the witness's Paillier key is not the statement's N1")
    return _prove(transcript, stmt, wit, rng=rng, level=level)


def _prove(transcript: Transcript, stmt: Statement, wit: Witness, *, rng: Rng, level: SecurityLevel) -> Proof:
    """The prover without its witness guard (tests use it as a cheating prover)."""
    ell, ell_p, eps = level.ell, level.ell_prime, level.epsilon
    n0, n0_sq, n1 = stmt.N0.n, stmt.N0.n2, stmt.N1.n
    encrypt_1 = wit.key.encrypt_with if wit.key is not None else stmt.N1.encrypt_with

    nonces: list[tuple[int, int, int, int]] = []
    first: list[tuple[int, Point, int]] = []
    for _ in range(level.m):
        alpha = rand_signed(rng, ell + eps)
        beta = rand_signed(rng, ell_p + eps)
        r = rand_unit(rng, n0)
        s = rand_unit(rng, n1)
        A = powmod_secret(stmt.C, alpha, n0_sq) * stmt.N0.encrypt_with(beta, r) % n0_sq
        nonces.append((alpha, beta, r, s))
        first.append((A, Point.base_mul(alpha), encrypt_1(beta, s)))

    bits = _challenge(transcript, stmt, level, [list(f) for f in first])
    reps = []
    for (alpha, beta, r, s), (A, B_x, B_y), e in zip(nonces, first, bits, strict=True):
        if e:
            rep = Repetition(A, B_x, B_y, alpha + wit.x, beta + wit.y, r * wit.rho % n0, s * wit.mu % n1)
        else:
            rep = Repetition(A, B_x, B_y, alpha, beta, r, s)
        reps.append(rep)
    return Proof(tuple(reps))


def verify(transcript: Transcript, stmt: Statement, proof: Proof, *, level: SecurityLevel) -> None:
    """Raise InvalidProof(NAME, check) unless the proof verifies against the verifier's own statement."""
    n0, n0_sq, n1, n1_sq = stmt.N0.n, stmt.N0.n2, stmt.N1.n, stmt.N1.n2
    reps = proof.reps

    require(len(reps) == level.m, NAME, "repetitions")
    require(all(in_signed_range(rep.z1, level.ell + level.epsilon) for rep in reps), NAME, "z1_range")
    require(all(in_signed_range(rep.z2, level.ell_prime + level.epsilon) for rep in reps), NAME, "z2_range")
    require(
        n0.bit_length() == level.modulus_bits
        and n1.bit_length() == level.modulus_bits
        and is_unit(stmt.C, n0, n0_sq)
        and is_unit(stmt.D, n0, n0_sq)
        and is_unit(stmt.Y, n1, n1_sq),
        NAME,
        "statement",
    )
    require(all(is_unit(rep.w, n0, n0) and is_unit(rep.w_y, n1, n1) for rep in reps), NAME, "w_unit")
    require(
        all(is_unit(rep.A, n0, n0_sq) and is_unit(rep.B_y, n1, n1_sq) for rep in reps), NAME, "commitment_unit"
    )

    bits = _challenge(transcript, stmt, level, [[rep.A, rep.B_x, rep.B_y] for rep in reps])

    for rep, e in zip(reps, bits, strict=True):
        require(Point.base_mul(rep.z1) == (rep.B_x + stmt.X if e else rep.B_x), NAME, "eq_x")
    for rep, e in zip(reps, bits, strict=True):
        lhs_d = powmod_public(stmt.C, rep.z1, n0_sq) * stmt.N0.encrypt_with(rep.z2, rep.w) % n0_sq
        require(lhs_d == (rep.A * stmt.D % n0_sq if e else rep.A), NAME, "eq_d")
        lhs_y = stmt.N1.encrypt_with(rep.z2, rep.w_y)
        require(lhs_y == (rep.B_y * stmt.Y % n1_sq if e else rep.B_y), NAME, "eq_y")
