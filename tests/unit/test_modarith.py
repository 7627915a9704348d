"""The fixed-base exponentiation Πprm's verifier uses agrees with GMP's powmod."""

from __future__ import annotations

import secrets

import gmpy2
import pytest

from signer.tss.errors import InvalidInput
from signer.tss.modarith import powmod_fixed_base


@pytest.mark.parametrize("window", [1, 4, 7])
def test_fixed_base_matches_powmod(window: int) -> None:
    mod = secrets.randbits(1024) | (1 << 1023) | 1
    base = secrets.randbelow(mod)
    exps = [0, 1, 2, mod - 1, mod, (1 << 1100) - 1, *(secrets.randbits(b) for b in (7, 64, 1023, 1024, 1200))]
    got = powmod_fixed_base(base, exps, mod, window)
    assert got == [int(gmpy2.powmod(base, e, mod)) for e in exps]


def test_fixed_base_edge_cases() -> None:
    assert powmod_fixed_base(5, [], 7) == []
    assert powmod_fixed_base(5, [0, 0], 1) == [0, 0]  # everything is 0 mod 1
    assert powmod_fixed_base(12, [3], 7) == [12**3 % 7]  # a base above the modulus is reduced
    with pytest.raises(InvalidInput, match="non-negative"):
        powmod_fixed_base(5, [3, -1], 7)
