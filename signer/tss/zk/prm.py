"""Πprm: the ring-Pedersen parameters (N̂, s, t) are well formed, i.e. s lies in ⟨t⟩ (s = t^λ).

Follows CGGMP24 (ePrint 2021/060, 2024 revision) Fig. 17 and the cggmp21 spec §Πprm: for
i = 1..m the prover sends A_i = t^a_i with a_i ← Z_φ(N̂), the transcript yields bits e_i, and the
prover answers z_i = a_i + e_i·λ mod φ(N̂); the verifier checks t^z_i ≡ A_i · s^e_i (mod N̂).

Additions on the verifier's side: s and t must be units mod an odd N̂ (`params`), every A_i a
unit in [1, N̂), every z_i in [0, N̂), and the repetition count exactly `level.m`, never fewer.
The prover computes t^a_i by CRT over the factors of N̂ (exponents reduced mod p − 1, q − 1).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import gmpy2

from ..encoding import Decoded, Value, as_int, as_list
from ..errors import InvalidInput
from ..modarith import crt, inverse, powmod_fixed_base, powmod_secret
from ..params import SecurityLevel
from ..ring_pedersen import RingPedersenParams, RingPedersenSecret
from ..rng import Rng
from ..transcript import Transcript
from .common import fields, require

NAME = "prm"


@dataclass(frozen=True, slots=True)
class Statement:
    """The ring-Pedersen parameters (N̂, s, t)."""

    params: RingPedersenParams


@dataclass(frozen=True, slots=True)
class Witness:
    """The trapdoor: λ with s = t^λ and the factors of N̂ (hence φ(N̂))."""

    secret: RingPedersenSecret = field(repr=False)


@dataclass(frozen=True, slots=True)
class Proof:
    """(A_1..A_m, z_1..z_m)."""

    A: tuple[int, ...]
    z: tuple[int, ...]

    def to_value(self) -> Value:
        return [list(self.A), list(self.z)]

    @classmethod
    def from_value(cls, v: Decoded) -> Proof:
        a, z = fields(v, 2)
        return cls(tuple(as_int(x) for x in as_list(a)), tuple(as_int(x) for x in as_list(z)))


def _challenge(transcript: Transcript, stmt: Statement, A: tuple[int, ...], m: int) -> list[int]:
    t = transcript.fork(NAME)
    rp = stmt.params
    t.append("statement", rp.n, rp.s, rp.t)
    t.append("commitment", list(A))
    return t.challenge_bits("e", m)


def prove(transcript: Transcript, stmt: Statement, wit: Witness, *, rng: Rng, level: SecurityLevel) -> Proof:
    """Prove that s = t^λ mod N̂, knowing λ and φ(N̂)."""
    sec, rp = wit.secret, stmt.params
    p, q, phi = sec.p, sec.q, sec.phi
    if sec.params != rp or p * q != rp.n:
        raise InvalidInput("witness does not belong to these ring-Pedersen parameters")
    tp, tq, p_inv_q = rp.t % p, rp.t % q, inverse(p, q)
    a = [rng.randbelow(phi) for _ in range(level.m)]
    A = tuple(
        int(crt(powmod_secret(tp, ai % (p - 1), p), p, powmod_secret(tq, ai % (q - 1), q), q, p_inv_q)) for ai in a
    )
    e = _challenge(transcript, stmt, A, level.m)
    lam = sec.lam % phi
    z = tuple((ai + lam) % phi if ei else ai for ai, ei in zip(a, e, strict=True))
    return Proof(A, z)


def verify(transcript: Transcript, stmt: Statement, proof: Proof, *, level: SecurityLevel) -> None:
    """Raise InvalidProof unless t^z_i ≡ A_i · s^e_i (mod N̂) for all m repetitions."""
    rp = stmt.params
    n = rp.n
    require(n > 2 and n % 2 == 1 and all(0 < v < n and gmpy2.gcd(v, n) == 1 for v in (rp.s, rp.t)), NAME, "params")
    require(len(proof.A) == level.m and len(proof.z) == level.m, NAME, "repetitions")
    for A_i in proof.A:
        require(0 < A_i < n and gmpy2.gcd(A_i, n) == 1, NAME, "a_unit")
    for z_i in proof.z:
        require(0 <= z_i < n, NAME, "z_range")
    e = _challenge(transcript, stmt, proof.A, level.m)
    for A_i, t_z, e_i in zip(proof.A, powmod_fixed_base(rp.t, proof.z, n), e, strict=True):
        rhs = A_i * rp.s % n if e_i else A_i
        require(t_z == rhs, NAME, "equation")
