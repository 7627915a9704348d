"""Safe-prime generation, the prime pool, and the cheap checks on every received modulus."""

from __future__ import annotations

import os
import sys
import threading
import time
from math import prod

import gmpy2
import pytest

from signer.tss.errors import InvalidInput
from signer.tss.params import SecurityLevel
from signer.tss.primes import (
    BACKGROUND_NICE,
    SMALL_PRIMES,
    PrimePool,
    check_modulus,
    generate_safe_prime,
    has_small_factor,
    is_safe_prime,
)
from tests.helpers import SeededRng, fixture_primes, paillier_key


def _assert_safe_prime(p: int, bits: int) -> None:
    assert p.bit_length() == bits
    assert p >> (bits - 2) == 0b11  # top two bits set, so a product of two has exactly 2·bits bits
    assert gmpy2.is_prime(p, 50) and gmpy2.is_prime((p - 1) // 2, 50)
    assert is_safe_prime(p)
    assert p % 4 == 3  # Blum


@pytest.mark.parametrize("bits", [32, 64, 128, 256])
def test_generate_safe_prime(bits: int) -> None:
    rng = SeededRng(f"prime-{bits}")
    p1, p2 = generate_safe_prime(bits, rng), generate_safe_prime(bits, rng)
    _assert_safe_prime(p1, bits)
    _assert_safe_prime(p2, bits)
    assert p1 != p2
    assert (p1 * p2).bit_length() == 2 * bits


def test_generate_safe_prime_is_deterministic_under_a_seeded_rng() -> None:
    assert generate_safe_prime(96, SeededRng(1)) == generate_safe_prime(96, SeededRng(1))


def test_generate_safe_prime_default_rng() -> None:
    _assert_safe_prime(generate_safe_prime(80), 80)


@pytest.mark.parametrize("bits", [0, 8, 31])
def test_generate_safe_prime_refuses_tiny_sizes(bits: int) -> None:
    with pytest.raises(InvalidInput):
        generate_safe_prime(bits)


def test_fixture_primes_are_safe(level: SecurityLevel) -> None:
    for p in fixture_primes(level.prime_bits)[:4]:
        _assert_safe_prime(p, level.prime_bits)


def _prime_not_safe(bits: int) -> int:
    p = int(gmpy2.next_prime(1 << (bits - 1)))
    while gmpy2.is_prime((p - 1) // 2):
        p = int(gmpy2.next_prime(p))
    return p


def test_is_safe_prime() -> None:
    for p in (11, 23, 47, 59, 83, 107, 1019, 2039):
        assert is_safe_prime(p), p
    # primes whose (p-1)/2 is composite
    for p in (13, 17, 19, 29, 31, 37, 41, 43, 53, 1021, _prime_not_safe(128), _prime_not_safe(1024)):
        assert gmpy2.is_prime(p)
        assert not is_safe_prime(p), p
    # not prime at all (including a product of two safe primes and a square of one)
    for n in (-11, -23, 0, 1, 2, 3, 4, 9, 15, 23 * 47, 1019 * 1019, 2**127 - 1 + 2):
        assert not is_safe_prime(n), n


def test_small_factor_detection() -> None:
    assert SMALL_PRIMES[0] == 3 and SMALL_PRIMES[-1] == 65521
    assert has_small_factor(2 * 10**40 + 2)
    assert has_small_factor(65521 * int(gmpy2.next_prime(1 << 200)))
    assert not has_small_factor(65537 * int(gmpy2.next_prime(1 << 200)))  # 65537 is above the bound


# --- check_modulus ------------------------------------------------------------------------------
def _bitforge_modulus(bits: int) -> int:
    """BitForge / 6ix1een: N = (16 small primes) × (one big prime) with exactly `bits` bits."""
    small = SMALL_PRIMES[-16:]  # the 16 largest odd primes below 2^16
    s = prod(small)
    big = int(gmpy2.next_prime(((1 << (bits - 1)) + s - 1) // s))
    n = s * big
    assert n.bit_length() == bits and gmpy2.is_prime(big)
    return n


def test_check_modulus_accepts_a_real_modulus(level: SecurityLevel) -> None:
    check_modulus(paillier_key(level, 0).n, level.modulus_bits)


def test_check_modulus_rejects_bitforge(level: SecurityLevel) -> None:
    n = _bitforge_modulus(level.modulus_bits)
    with pytest.raises(InvalidInput, match="small factor"):
        check_modulus(n, level.modulus_bits)


def test_check_modulus_rejects_a_prime(level: SecurityLevel) -> None:
    p = fixture_primes(level.prime_bits)[0]
    with pytest.raises(InvalidInput, match="prime"):
        check_modulus(p, level.prime_bits)


def test_check_modulus_rejects_a_square(level: SecurityLevel) -> None:
    p = fixture_primes(level.prime_bits)[0]
    assert (p * p).bit_length() == level.modulus_bits
    with pytest.raises(InvalidInput, match="square"):
        check_modulus(p * p, level.modulus_bits)


def test_check_modulus_rejects_the_wrong_size(level: SecurityLevel) -> None:
    n = paillier_key(level, 0).n
    bits = level.modulus_bits
    for bad_bits in (bits - 1, bits + 1, bits // 2, 2 * bits):
        with pytest.raises(InvalidInput, match="bits"):
            check_modulus(n, bad_bits)
    p, q = fixture_primes(level.prime_bits)[:2]
    with pytest.raises(InvalidInput, match="bits"):
        check_modulus(p * (q >> 1 | 1), bits)  # one bit short
    with pytest.raises(InvalidInput, match="bits"):
        check_modulus(-n, bits)


def test_check_modulus_rejects_even_and_non_integers(level: SecurityLevel) -> None:
    n = paillier_key(level, 0).n
    with pytest.raises(InvalidInput):
        check_modulus(n + 1, level.modulus_bits)
    with pytest.raises(InvalidInput):
        check_modulus(str(n), level.modulus_bits)  # type: ignore[arg-type]


def test_check_modulus_is_cheap_on_oversize_input() -> None:
    huge = (1 << 1_000_000) + 1
    t0 = time.perf_counter()
    with pytest.raises(InvalidInput):
        check_modulus(huge, 3072)
    assert time.perf_counter() - t0 < 0.05


# --- the pool -----------------------------------------------------------------------------------
def _pool_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("prime-pool-")]


def test_prime_pool_hands_out_distinct_valid_primes_and_stops() -> None:
    before = set(_pool_threads())
    pool = PrimePool((64, 80), target=3, workers=2)
    try:
        deadline = time.monotonic() + 20
        while (pool.available(64) < 3 or pool.available(80) < 3) and time.monotonic() < deadline:
            time.sleep(0.01)
        # each worker checks the level before it generates, so two may overshoot by one prime
        assert 3 <= pool.available(64) <= 4 and 3 <= pool.available(80) <= 4
        got = [pool.take(64) for _ in range(5)] + [pool.take(80) for _ in range(4)] + [pool.take(72)]
        assert len(set(got)) == len(got)  # never the same prime twice
        for p in got:
            _assert_safe_prime(p, p.bit_length())
        assert sorted({p.bit_length() for p in got}) == [64, 72, 80]
        assert pool.available(72) == 0  # a size nobody asked to pool is generated on the spot
    finally:
        pool.close(wait=True)
    mine = set(_pool_threads()) - before
    assert not [t for t in mine if t.is_alive()]
    assert pool.available(64) == 0 and pool.available(80) == 0  # closing drops what was pooled


def test_prime_pool_close_without_waiting() -> None:
    pool = PrimePool((64,), target=2, workers=1)
    pool.close()
    deadline = time.monotonic() + 10
    threads = [t for t in _pool_threads() if t.is_alive()]
    while any(t.is_alive() for t in threads) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert pool.available(64) == 0
    _assert_safe_prime(pool.take(64), 64)  # a closed pool still serves, by generating on the spot


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice values are a Linux feature")
def test_pool_workers_run_at_the_lowest_priority_and_report_changes() -> None:
    seen: list[int] = []
    nice: list[int] = []

    def on_change(ready: dict[int, list[int]]) -> None:
        nice.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        seen.append(len(ready[64]))

    pool = PrimePool((64,), target=2, workers=1, initial={64: [generate_safe_prime(64)]}, on_change=on_change)
    try:
        deadline = time.monotonic() + 20
        while pool.available(64) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert seen[0] == 2 and nice[0] == BACKGROUND_NICE  # the seeded prime, then one from the worker
        pool.take(64)
        assert seen[1] == 1  # reported before the prime was handed out
    finally:
        pool.close(wait=True)
