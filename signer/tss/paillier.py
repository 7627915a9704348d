"""Paillier encryption with g = 1 + N over a Paillier–Blum modulus N = p·q (p ≡ q ≡ 3 mod 4).

Plaintexts are signed integers, represented in (-N/2, N/2]. The owner's operations (decryption,
encryption with its own key) use CRT over p² and q². Exponentiations with secret exponents or
secret bases under the owner's key run in constant time (`powmod_sec`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import gmpy2

from .errors import DecodeError, InvalidInput
from .modarith import crt, inverse, powmod_public, powmod_secret, signed_mod
from .primes import check_modulus
from .rng import Rng, rand_unit


@dataclass(frozen=True, slots=True)
class PaillierPublicKey:
    """The public modulus N; ciphertexts live in Z*_{N²}."""

    n: int
    _n2: int = field(init=False, repr=False, compare=False, default=0)

    @property
    def n2(self) -> int:
        """N², computed on first use: building a key from a peer's oversize N costs nothing before
        `check` rejects it."""
        if not self._n2:
            object.__setattr__(self, "_n2", self.n * self.n)
        return self._n2

    def check(self, modulus_bits: int) -> None:
        """Reject a received key of the wrong size or with obvious structure (see check_modulus)."""
        check_modulus(self.n, modulus_bits)

    def check_ciphertext(self, c: int) -> int:
        """Return c if it is in Z*_{N²} (range and gcd(c, N) = 1), else raise DecodeError."""
        if not isinstance(c, int) or isinstance(c, bool) or not 0 < c < self.n2:
            raise DecodeError("ciphertext out of range")
        if gmpy2.gcd(c, self.n) != 1:
            raise DecodeError("ciphertext not a unit mod N")
        return c

    def check_randomness(self, r: int) -> int:
        """Return r if it is in Z*_N, else raise DecodeError."""
        if not isinstance(r, int) or isinstance(r, bool) or not 0 < r < self.n or gmpy2.gcd(r, self.n) != 1:
            raise DecodeError("randomness not in Z*_N")
        return r

    def encrypt_with(self, m: int, rho: int) -> int:
        """enc(m; ρ) = (1 + N)^m · ρ^N mod N² (ρ is secret, N is the public exponent)."""
        gm = (1 + (m % self.n) * self.n) % self.n2
        return gm * powmod_public(rho, self.n, self.n2) % self.n2

    def encrypt(self, m: int, rng: Rng) -> tuple[int, int]:
        """A fresh encryption of m and the randomness ρ used."""
        rho = rand_unit(rng, self.n)
        return self.encrypt_with(m, rho), rho

    def add(self, c1: int, c2: int) -> int:
        """Homomorphic addition of plaintexts."""
        return c1 * c2 % self.n2

    def mul_public(self, c: int, k: int) -> int:
        """Homomorphic multiplication by a public integer k (may be negative)."""
        return powmod_public(c, k, self.n2)

    def mul_secret(self, c: int, k: int) -> int:
        """Homomorphic multiplication by a secret integer k, constant time in k."""
        return powmod_secret(c, k, self.n2)


@dataclass(frozen=True, slots=True)
class PaillierSecretKey:
    """The factorisation of N; every operation here uses CRT."""

    p: int = field(repr=False)
    q: int = field(repr=False)
    public: PaillierPublicKey = field(init=False)
    _p2: int = field(init=False, repr=False, compare=False)
    _q2: int = field(init=False, repr=False, compare=False)
    _p2_inv_q2: int = field(init=False, repr=False, compare=False)
    _p_inv_q: int = field(init=False, repr=False, compare=False)
    _hp: int = field(init=False, repr=False, compare=False)
    _hq: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.p == self.q or self.p % 4 != 3 or self.q % 4 != 3:
            raise InvalidInput("Paillier–Blum primes must be distinct and ≡ 3 mod 4")
        s = object.__setattr__
        s(self, "public", PaillierPublicKey(self.p * self.q))
        s(self, "_p2", self.p * self.p)
        s(self, "_q2", self.q * self.q)
        s(self, "_p2_inv_q2", inverse(self.p * self.p, self.q * self.q))
        s(self, "_p_inv_q", inverse(self.p, self.q))
        # L_p((1+N)^(p-1) mod p²) = -q mod p, so h_p = (-q)^-1 mod p (and symmetrically for q).
        s(self, "_hp", inverse(-self.q % self.p, self.p))
        s(self, "_hq", inverse(-self.p % self.q, self.q))

    @property
    def n(self) -> int:
        """The public modulus."""
        return self.public.n

    @property
    def phi(self) -> int:
        """φ(N) = (p-1)(q-1)."""
        return (self.p - 1) * (self.q - 1)

    def decrypt(self, c: int) -> int:
        """The plaintext of c as a signed integer in (-N/2, N/2]."""
        self.public.check_ciphertext(c)
        xp = powmod_secret(c % self._p2, self.p - 1, self._p2)
        xq = powmod_secret(c % self._q2, self.q - 1, self._q2)
        mp = ((xp - 1) // self.p) * self._hp % self.p
        mq = ((xq - 1) // self.q) * self._hq % self.q
        return signed_mod(crt(mp, self.p, mq, self.q, self._p_inv_q), self.n)

    def rho_pow_n(self, rho: int) -> int:
        """ρ^N mod N² with CRT over p² and q².

        The exponent stays the public N: reducing it mod φ(p²) would make it secret (and force the
        slower constant-time routine) without shortening it, since φ(p²) is as long as N.
        """
        n = self.n
        a = powmod_public(rho % self._p2, n, self._p2)
        b = powmod_public(rho % self._q2, n, self._q2)
        return crt(a, self._p2, b, self._q2, self._p2_inv_q2)

    def encrypt_with(self, m: int, rho: int) -> int:
        """Owner-side enc(m; ρ) with CRT; equal to `public.encrypt_with(m, rho)`."""
        n, n2 = self.n, self.public.n2
        return (1 + (m % n) * n) % n2 * self.rho_pow_n(rho) % n2

    def encrypt(self, m: int, rng: Rng) -> tuple[int, int]:
        """A fresh owner-side encryption of m and its randomness."""
        rho = rand_unit(rng, self.n)
        return self.encrypt_with(m, rho), rho

    def randomness_of(self, c: int, m: int) -> int:
        """The ρ with c = enc(m; ρ): ρ = (c·(1+N)^-m)^(N^-1 mod φ(N)) mod N."""
        n, n2 = self.n, self.public.n2
        c_stripped = c * ((1 - (m % n) * n) % n2) % n2  # (1+N)^-m = 1 - mN mod N²
        return powmod_secret(c_stripped % n, inverse(n, self.phi), n)


def keypair_from_primes(p: int, q: int) -> PaillierSecretKey:
    """A Paillier–Blum key from two safe primes (safe primes > 7 are ≡ 3 mod 4)."""
    return PaillierSecretKey(p, q)
