"""The signer's persisted prime pool (signer/node/prime_stash.py): warm after a restart, a taken
prime leaves the record before it is handed out (never used twice), a bad record is discarded."""

from __future__ import annotations

import time
from pathlib import Path

from signer.node import prime_stash
from signer.node.store import EncryptedStore
from signer.tss.primes import PrimePool, generate_safe_prime, is_safe_prime

BITS = 64
KEK = bytes.fromhex("22" * 32)


def _store(tmp_path: Path) -> EncryptedStore:
    return EncryptedStore(tmp_path / "store", KEK)


def _wait(pool: PrimePool, n: int) -> None:
    deadline = time.monotonic() + 30
    while pool.available(BITS) < n:
        assert time.monotonic() < deadline, "the pool never filled"
        time.sleep(0.01)


def test_the_pool_is_persisted_and_restored(tmp_path: Path) -> None:
    store = _store(tmp_path)
    pool = prime_stash.open_pool(store, BITS, target=3)
    _wait(pool, 3)
    pool.close(wait=True)
    stashed = prime_stash.load(store, BITS)
    assert len(stashed) == 3 and all(is_safe_prime(p) and p.bit_length() == BITS for p in stashed)

    again = prime_stash.open_pool(_store(tmp_path), BITS, target=3)  # a restart: warm at once
    try:
        assert again.available(BITS) == 3
        first = again.take(BITS)
        assert first == stashed[0]
        # before `take` returned, the record no longer listed the prime: a crash now cannot reuse it
        assert first not in prime_stash.load(_store(tmp_path), BITS)
    finally:
        again.close(wait=True)


def test_a_prepared_stash_seeds_a_new_node(tmp_path: Path) -> None:
    primes = [generate_safe_prime(BITS) for _ in range(2)]
    _store(tmp_path).put(prime_stash.RECORD, prime_stash.encode_primes(BITS, primes))
    pool = prime_stash.open_pool(_store(tmp_path), BITS, target=0)  # no workers needed
    try:
        assert [pool.take(BITS), pool.take(BITS)] == primes
        assert prime_stash.load(_store(tmp_path), BITS) == []
    finally:
        pool.close(wait=True)


def test_a_bad_record_is_discarded_never_used(tmp_path: Path) -> None:
    store = _store(tmp_path)
    good = generate_safe_prime(BITS)
    store.put(prime_stash.RECORD, prime_stash.encode_primes(BITS, [good, good + 2]))  # good + 2: not safe
    assert prime_stash.load(store, BITS) == [] and not store.exists(prime_stash.RECORD)
    store.put(prime_stash.RECORD, prime_stash.encode_primes(BITS + 8, []))  # another level's size
    assert prime_stash.load(store, BITS) == [] and not store.exists(prime_stash.RECORD)
    store.put(prime_stash.RECORD, b"not a record")
    assert prime_stash.load(store, BITS) == []
