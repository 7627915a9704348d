"""Πmod: N is a Paillier–Blum modulus (N = p·q, p ≡ q ≡ 3 mod 4, gcd(N, φ(N)) = 1).

Follows CGGMP24 (ePrint 2021/060, 2024 revision) Fig. 16 and the cggmp21 spec §Πmod. The prover
sends w with Jacobi(w, N) = −1; the transcript yields m distinct challenges y_i ∈ Z*_N; for each
the prover answers (x_i, a_i, b_i, z_i) with x_i^4 ≡ (−1)^a_i · w^b_i · y_i and z_i^N ≡ y_i (mod N).

Deviations from the figure, all strict additions on the verifier's side:
- w must be a unit of Jacobi symbol −1 and every x_i, z_i a unit in [1, N): with w = 0 (or w
  sharing a factor with N) the x-equation is trivially met by x_i ≡ 0, whatever N is.
- The y_i are drawn with one label per index and re-drawn until each is a unit not drawn before,
  so the m challenges are pairwise distinct; the verifier re-derives them and asserts it.
- The repetition count is exactly `level.m`, never fewer.
The verifier does not check N's bit length: the caller does that on every received modulus
(`PaillierPublicKey.check`) before running this proof.

The prover uses CRT throughout: for a Blum prime p and a quadratic residue r, r^(((p+1)/4)^2) is
the principal 4th root of r mod p; the same power of a non-residue r gives u with u^4 ≡ −r,
which yields the Legendre symbol for free.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import gmpy2

from ..encoding import Decoded, Value, as_int, as_list
from ..errors import InvalidInput, InvalidProof
from ..modarith import crt, inverse, powmod_public, powmod_secret
from ..params import SecurityLevel
from ..rng import Rng, rand_unit
from ..transcript import Transcript
from .common import fields, require

NAME = "mod"

_MAX_DRAWS = 128
"""Draws allowed per challenge index before the modulus is declared unusable (honest N: ~1)."""


@dataclass(frozen=True, slots=True)
class Statement:
    """The modulus N claimed to be Paillier–Blum."""

    n: int


@dataclass(frozen=True, slots=True)
class Witness:
    """The two Blum primes with N = p·q."""

    p: int = field(repr=False)
    q: int = field(repr=False)


@dataclass(frozen=True, slots=True)
class Item:
    """One repetition: x^4 ≡ (−1)^a · w^b · y and z^N ≡ y (mod N)."""

    x: int
    a: int
    b: int
    z: int

    def to_value(self) -> Value:
        return [self.x, self.a, self.b, self.z]

    @classmethod
    def from_value(cls, v: Decoded) -> Item:
        x, a, b, z = fields(v, 4)
        return cls(as_int(x), as_int(a), as_int(b), as_int(z))


@dataclass(frozen=True, slots=True)
class Proof:
    """(w, [(x_i, a_i, b_i, z_i)] for i = 1..m)."""

    w: int
    items: tuple[Item, ...]

    def to_value(self) -> Value:
        return [self.w, [it.to_value() for it in self.items]]

    @classmethod
    def from_value(cls, v: Decoded) -> Proof:
        w, items = fields(v, 2)
        return cls(as_int(w), tuple(Item.from_value(it) for it in as_list(items)))


def challenges(transcript: Transcript, stmt: Statement, w: int, *, level: SecurityLevel) -> list[int]:
    """The m pairwise-distinct challenges y_i ∈ Z*_N bound to the transcript, N and w.

    Index i draws with label "y/i"; a draw that is not a unit or repeats an earlier y is absorbed
    and drawn again. Raises InvalidProof(check="challenges") if N has too few units for that.
    """
    n = stmt.n
    require(n > 2, NAME, "modulus")
    t = transcript.fork(NAME)
    t.append("statement", n)
    t.append("commitment", w)
    ys: list[int] = []
    seen: set[int] = set()
    for i in range(level.m):
        for _ in range(_MAX_DRAWS):
            y = t.challenge_int(f"y/{i}", n)
            if y not in seen and gmpy2.gcd(y, n) == 1:
                break
        else:
            raise InvalidProof(NAME, "challenges")
        ys.append(y)
        seen.add(y)
    return ys


class _Half:
    """Prover-side data for one Blum prime p: exponents reduced mod p − 1 and w's 4th-root power."""

    __slots__ = ("d", "e4", "neg", "p", "w4", "w_qr")

    def __init__(self, p: int, n: int, w: int) -> None:
        self.p = p
        self.e4 = ((p + 1) // 4) ** 2 % (p - 1)  # r^e4 is the principal 4th root of a QR r
        self.neg = self.e4 % 2 == 1  # (−1)^e4 = −1
        self.d = inverse(n % (p - 1), p - 1)  # N^-1 mod (p − 1)
        self.w4, self.w_qr = self.root(w)

    def root(self, v: int) -> tuple[int, bool]:
        """(v^e4 mod p, whether v is a QR mod p): u = v^e4 has u^4 ≡ ±v, the sign is Legendre(v, p)."""
        vp = v % self.p
        u = powmod_secret(vp, self.e4, self.p)
        u4 = u * u % self.p
        u4 = u4 * u4 % self.p
        if u4 == vp:
            return u, True
        if u4 == self.p - vp:
            return u, False
        raise InvalidInput("witness prime is not ≡ 3 mod 4")

    def fourth_root(self, u: int, a: int, b: int) -> int:
        """The principal 4th root of (−1)^a · w^b · v mod p, from u = v^e4."""
        x = u * self.w4 % self.p if b else u
        return self.p - x if a and self.neg else x

    def nth_root(self, y: int) -> int:
        """y^(N^-1) mod p."""
        return powmod_secret(y % self.p, self.d, self.p)


def _respond(wit: Witness, n: int, w: int, ys: list[int]) -> tuple[Item, ...]:
    """The prover's answers; InvalidInput if some y has no (a, b) (w of the wrong Jacobi symbol)."""
    hp, hq = _Half(wit.p, n, w), _Half(wit.q, n, w)
    p_inv_q = inverse(wit.p, wit.q)
    items = []
    for y in ys:
        up, y_qr_p = hp.root(y)
        uq, y_qr_q = hq.root(y)
        # (−1)^a · w^b · y must be a QR mod p and mod q; −1 is a non-residue mod both.
        b = 0 if y_qr_p == y_qr_q else 1
        res_p = y_qr_p ^ (b == 1 and not hp.w_qr)  # QR-ness of w^b·y mod p
        res_q = y_qr_q ^ (b == 1 and not hq.w_qr)
        if res_p != res_q:
            raise InvalidInput("w must have Jacobi symbol −1 modulo N")
        a = 0 if res_p else 1
        x = crt(hp.fourth_root(up, a, b), wit.p, hq.fourth_root(uq, a, b), wit.q, p_inv_q)
        z = crt(hp.nth_root(y), wit.p, hq.nth_root(y), wit.q, p_inv_q)
        items.append(Item(int(x), a, b, int(z)))
    return tuple(items)


def prove(transcript: Transcript, stmt: Statement, wit: Witness, *, rng: Rng, level: SecurityLevel) -> Proof:
    """Prove that N is a Paillier–Blum modulus, knowing its factors."""
    p, q, n = wit.p, wit.q, stmt.n
    if p * q != n or p == q or p % 4 != 3 or q % 4 != 3:
        raise InvalidInput("witness must be distinct primes ≡ 3 mod 4 with p·q = N")
    while True:
        w = rand_unit(rng, n)
        if gmpy2.jacobi(w, n) == -1:
            break
    ys = challenges(transcript, stmt, w, level=level)
    return Proof(w, _respond(wit, n, w, ys))


def verify(transcript: Transcript, stmt: Statement, proof: Proof, *, level: SecurityLevel) -> None:
    """Raise InvalidProof unless the proof shows that N is a Paillier–Blum modulus."""
    n, w = stmt.n, proof.w
    require(n > 2 and n % 2 == 1 and not gmpy2.is_prime(n, 32), NAME, "modulus")
    require(0 < w < n and gmpy2.gcd(w, n) == 1, NAME, "w_unit")
    require(gmpy2.jacobi(w, n) == -1, NAME, "w_jacobi")
    require(len(proof.items) == level.m, NAME, "repetitions")
    for it in proof.items:
        require(it.a in (0, 1) and it.b in (0, 1), NAME, "bits")
        require(0 < it.x < n and gmpy2.gcd(it.x, n) == 1, NAME, "x_unit")
        require(0 < it.z < n and gmpy2.gcd(it.z, n) == 1, NAME, "z_unit")
    ys = challenges(transcript, stmt, w, level=level)
    require(len(set(ys)) == level.m, NAME, "challenges")
    for it, y in zip(proof.items, ys, strict=True):
        require(powmod_public(it.z, n, n) == y, NAME, "z_equation")
        rhs = y * w % n if it.b else y
        rhs = n - rhs if it.a else rhs
        require(powmod_public(it.x, 4, n) == rhs, NAME, "x_equation")
