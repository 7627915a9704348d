"""Security levels: the named sets satisfy the inequalities the proofs need; bad sets are refused."""

from __future__ import annotations

import dataclasses
import math

import pytest

from signer.tss.errors import InvalidInput
from signer.tss.params import DEFAULT_LEVEL, LEVEL_112, LEVEL_128, LEVELS, SecurityLevel, level_by_name


def test_named_levels() -> None:
    assert DEFAULT_LEVEL is LEVEL_128
    assert LEVELS == {"128": LEVEL_128, "112": LEVEL_112}
    assert (LEVEL_128.modulus_bits, LEVEL_128.prime_bits) == (3072, 1536)
    assert (LEVEL_112.modulus_bits, LEVEL_112.prime_bits) == (2048, 1024)
    assert LEVEL_128.m == 128 and LEVEL_112.m >= 80


def test_level_inequalities(level: SecurityLevel) -> None:
    # log2 N >= modulus_bits - 1 for every N of exactly modulus_bits bits, so this is ℓ' + ε < log2 N
    assert level.ell_prime + level.epsilon < level.modulus_bits - 1
    assert level.ell + level.epsilon < level.ell_prime + level.epsilon < level.modulus_bits
    assert level.ell >= 256  # covers the secp256k1 order
    assert level.m >= 80
    assert level.epsilon >= level.m  # responses mask e·x with e up to Q = 2^m
    assert level.challenge_bound == 1 << level.m
    assert math.log2(level.challenge_bound) == level.m
    assert level.modulus_bits == 2 * level.prime_bits


def test_level_by_name() -> None:
    assert level_by_name("128") is LEVEL_128
    assert level_by_name(112) is LEVEL_112
    for bad in ("256", "", 80, "LEVEL_128"):
        with pytest.raises(InvalidInput):
            level_by_name(bad)


def test_levels_are_immutable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        LEVEL_128.m = 1  # type: ignore[misc]


BAD_LEVELS: dict[str, dict[str, int]] = {
    "ell' + eps reaches log2 N (112)": {"ell_prime": 2048 - 1 - 230},
    "ell' + eps above log2 N": {"ell_prime": 1900},
    "modulus too small for ell' + eps": {"prime_bits": 512},
    "m = 79": {"m": 79},
    "m = 0": {"m": 0},
    "ell below the curve order": {"ell": 255},
    "epsilon too small for the challenge space": {"epsilon": 100},
}


@pytest.mark.parametrize("change", list(BAD_LEVELS.values()), ids=list(BAD_LEVELS))
def test_invalid_levels_refused(change: dict[str, int]) -> None:
    with pytest.raises(InvalidInput):
        dataclasses.replace(LEVEL_112, **change)  # type: ignore[arg-type]


def test_boundary_of_the_modulus_inequality() -> None:
    # the largest ℓ' that still keeps ℓ' + ε < log2 N for a 2048-bit N
    ok = dataclasses.replace(LEVEL_112, ell_prime=2048 - 2 - LEVEL_112.epsilon)
    assert ok.ell_prime + ok.epsilon < ok.modulus_bits - 1
    with pytest.raises(InvalidInput):
        dataclasses.replace(LEVEL_112, ell_prime=ok.ell_prime + 1)


def test_m_boundary() -> None:
    assert dataclasses.replace(LEVEL_112, m=80).m == 80
    with pytest.raises(InvalidInput):
        dataclasses.replace(LEVEL_112, m=79)
    with pytest.raises(InvalidInput):
        SecurityLevel("weak", 80, 1024, 256, 848, 230, 64)
