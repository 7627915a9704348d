"""Modular exponentiation helpers: which exponents are secret decides which routine runs.

`powmod_secret` uses GMP's constant-time `powmod_sec` (odd modulus, non-negative exponent; a
negative exponent inverts the base first). `powmod_public` is the fast variable-time routine for
public exponents (verifiers, challenges). `crt` recombines owner-side results.
"""

from __future__ import annotations

import gmpy2

from .errors import InvalidInput

mpz = gmpy2.mpz


def powmod_public(base: int, exp: int, mod: int) -> int:
    """base^exp mod mod for a public exponent (negative exponents invert the base)."""
    return int(gmpy2.powmod(base, exp, mod))


def powmod_secret(base: int, exp: int, mod: int) -> int:
    """base^exp mod mod in constant time in exp (mod must be odd)."""
    if exp < 0:
        base = inverse(base, mod)
        exp = -exp
    if exp == 0:
        return 1 % mod
    return int(gmpy2.powmod_sec(base, exp, mod))


def inverse(x: int, mod: int) -> int:
    """x^-1 mod mod; raises InvalidInput when x is not a unit."""
    try:
        return int(gmpy2.invert(x, mod))
    except ZeroDivisionError:
        raise InvalidInput("not invertible") from None


def crt(r1: int, m1: int, r2: int, m2: int, m1_inv_mod_m2: int) -> int:
    """The x mod m1·m2 with x ≡ r1 (mod m1), x ≡ r2 (mod m2)."""
    h = ((r2 - r1) * m1_inv_mod_m2) % m2
    return r1 + h * m1


def signed_mod(x: int, n: int) -> int:
    """The representative of x mod n in (-n/2, n/2]."""
    r = x % n
    return r - n if r > n // 2 else r


def in_signed_range(x: int, bits: int) -> bool:
    """True when x lies in the closed interval ±2^bits."""
    return -(1 << bits) <= x <= (1 << bits)
