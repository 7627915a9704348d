"""Modular exponentiation helpers: which exponents are secret decides which routine runs.

`powmod_secret` uses GMP's constant-time `powmod_sec` (odd modulus, non-negative exponent; a
negative exponent inverts the base first). `powmod_public` is the fast variable-time routine for
public exponents (verifiers, challenges). `crt` recombines owner-side results.
"""

from __future__ import annotations

from collections.abc import Sequence

import gmpy2

from .errors import InvalidInput

mpz = gmpy2.mpz


def powmod_public(base: int, exp: int, mod: int) -> int:
    """base^exp mod mod for a public exponent (negative exponents invert the base)."""
    return int(gmpy2.powmod(base, exp, mod))


def powmod_fixed_base(base: int, exps: Sequence[int], mod: int, window: int = 7) -> list[int]:
    """[base^e mod mod for e in exps]: one base, many public non-negative exponents.

    Yao's fixed-base method: the powers base^(2^(w·j)) are computed once and shared by every
    exponent, so each one then costs about (bits / w + 2^w) multiplications instead of a full
    square-and-multiply. Πprm's verifier raises the same t to m exponents (m = 80 or 128): about
    3.5x faster than m separate `powmod_public` calls at 3072 bits. Variable time: public only.
    """
    if any(e < 0 for e in exps):
        raise InvalidInput("fixed-base exponents must be non-negative")
    if not exps:
        return []
    m, mask = mpz(mod), (1 << window) - 1
    digits_n = max(1, (max(exps).bit_length() + window - 1) // window)
    powers = [mpz(base) % m]
    for _ in range(digits_n - 1):
        x = powers[-1]
        for _ in range(window):
            x = x * x % m
        powers.append(x)
    out = []
    for e in exps:
        buckets: list[gmpy2.mpz | None] = [None] * (mask + 1)
        for j in range(digits_n):
            d = (e >> (window * j)) & mask
            if d:
                b = buckets[d]
                buckets[d] = powers[j] if b is None else b * powers[j] % m
        acc, result = mpz(1), mpz(1) % m
        for d in range(mask, 0, -1):
            b = buckets[d]
            if b is not None:
                acc = acc * b % m
            result = result * acc % m
        out.append(int(result))
    return out


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
