"""Randomness is injected: protocol code takes an `Rng`, production passes `SystemRng`."""

from __future__ import annotations

import secrets
from typing import Protocol

import gmpy2


class Rng(Protocol):
    """The randomness interface every prover and round takes."""

    def randbelow(self, n: int) -> int:
        """Uniform integer in [0, n)."""
        ...

    def randbits(self, k: int) -> int:
        """Uniform integer in [0, 2**k)."""
        ...

    def token_bytes(self, n: int) -> bytes:
        """n uniform bytes."""
        ...


class SystemRng:
    """The operating system's CSPRNG through `secrets`."""

    def randbelow(self, n: int) -> int:
        return secrets.randbelow(n)

    def randbits(self, k: int) -> int:
        return secrets.randbits(k)

    def token_bytes(self, n: int) -> bytes:
        return secrets.token_bytes(n)


def rand_signed(rng: Rng, bits: int) -> int:
    """Uniform integer in the closed interval [-2**bits, 2**bits] (the paper's ±2^bits)."""
    bound = 1 << bits
    return rng.randbelow(2 * bound + 1) - bound


def rand_signed_scaled(rng: Rng, bits: int, scale: int) -> int:
    """Uniform integer in ±(2**bits · scale)."""
    bound = (1 << bits) * scale
    return rng.randbelow(2 * bound + 1) - bound


def rand_unit(rng: Rng, n: int) -> int:
    """Uniform element of Z*_n."""
    while True:
        x = rng.randbelow(n)
        if x > 0 and gmpy2.gcd(x, n) == 1:
            return x


def rand_nonzero_scalar(rng: Rng, q: int) -> int:
    """Uniform element of [1, q)."""
    return 1 + rng.randbelow(q - 1)
