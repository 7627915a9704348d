"""Ring-Pedersen parameters (N̂, s, t): t a random square, s = t^λ, λ secret.

Commitments s^x · t^μ mod N̂ hide x statistically; the verifier of a range proof supplies its own
parameters, so the prover cannot know the discrete log between s and t.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import gmpy2

from .errors import DecodeError
from .modarith import powmod_public, powmod_secret
from .primes import check_modulus
from .rng import Rng, rand_unit


@dataclass(frozen=True, slots=True)
class RingPedersenParams:
    """Public ring-Pedersen parameters."""

    n: int
    s: int
    t: int

    def check(self, modulus_bits: int) -> None:
        """Reject received parameters of the wrong size or with s, t outside Z*_N̂ \\ {1}."""
        check_modulus(self.n, modulus_bits)
        for v in (self.s, self.t):
            if not 1 < v < self.n or gmpy2.gcd(v, self.n) != 1:
                raise DecodeError("ring-Pedersen base not a non-trivial unit")
        if self.s == self.t:
            raise DecodeError("ring-Pedersen bases must differ")

    def commit(self, x: int, mu: int) -> int:
        """s^x · t^μ mod N̂ with secret exponents (constant time)."""
        return powmod_secret(self.s, x, self.n) * powmod_secret(self.t, mu, self.n) % self.n

    def commit_public(self, x: int, mu: int) -> int:
        """s^x · t^μ mod N̂ for public exponents (verifier side)."""
        return powmod_public(self.s, x, self.n) * powmod_public(self.t, mu, self.n) % self.n

    def check_element(self, v: int) -> int:
        """Return v if it is a unit mod N̂ (proof commitments must be), else raise DecodeError."""
        if not isinstance(v, int) or isinstance(v, bool) or not 0 < v < self.n or gmpy2.gcd(v, self.n) != 1:
            raise DecodeError("element not in Z*_N̂")
        return v


@dataclass(frozen=True, slots=True)
class RingPedersenSecret:
    """The trapdoor: the factors of N̂ and λ with s = t^λ."""

    p: int = field(repr=False)
    q: int = field(repr=False)
    lam: int = field(repr=False)
    params: RingPedersenParams

    @property
    def phi(self) -> int:
        """φ(N̂)."""
        return (self.p - 1) * (self.q - 1)


def generate_ring_pedersen(p: int, q: int, rng: Rng) -> RingPedersenSecret:
    """Fresh parameters over N̂ = p·q from two safe primes."""
    n = p * q
    phi = (p - 1) * (q - 1)
    r = rand_unit(rng, n)
    t = r * r % n
    lam = rng.randbelow(phi)
    s = powmod_secret(t, lam, n)
    return RingPedersenSecret(p, q, lam, RingPedersenParams(n, s, t))
