"""A signer's safe-prime pool kept in its encrypted store, so the pool is warm after a restart and
a replacement node can be prepared ahead with its primes (coordinator/signer_layout.py, standby).

Generating the four safe primes of one aux-info run dominates the time a new node needs to join
a key (1536-bit primes at the 128-bit level: seconds to minutes each). The pool
(signer/tss/primes.py) keeps `prime_pool` of them ready; this module persists that set as the
record `primes/pool` under the node's KEK after every change. A prime is removed from the record
*before* it is handed out, so no prime is ever used twice, even across a crash; a record that does
not decode, or holds a number that is not a safe prime of the level's size, is discarded (primes
are only a cache, never state the node needs).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import structlog

from signer.tss.encoding import as_int, as_list, decode, encode
from signer.tss.errors import DecodeError
from signer.tss.primes import PrimePool, PrimeSource, is_safe_prime

from .store import EncryptedStore, StoreError

log = structlog.get_logger("signer")
RECORD = "primes/pool"
_TAG = "prime-pool/v1"


def encode_primes(bits: int, primes: Iterable[int]) -> bytes:
    """The record's bytes: one size and its ready primes."""
    return encode(_TAG, bits, list(primes))


def load(store: EncryptedStore, bits: int) -> list[int]:
    """The stashed safe primes of `bits` bits, each re-checked; [] without a usable record."""
    if not store.exists(RECORD):
        return []
    try:
        f = decode(_TAG, store.get(RECORD), 2)
        if as_int(f[0]) != bits:
            raise DecodeError(f"primes of {as_int(f[0])} bits, the level needs {bits}")
        primes = [as_int(p) for p in as_list(f[1])]
        if not all(p.bit_length() == bits and is_safe_prime(p) for p in primes):
            raise DecodeError("a stashed number is not a safe prime of the right size")
    except (DecodeError, StoreError) as exc:
        log.warning("prime_stash_discarded", error=str(exc))
        store.delete(RECORD)
        return []
    return primes


def saver(store: EncryptedStore, bits: int) -> Callable[[dict[int, list[int]]], None]:
    """The pool's `on_change`: write the ready primes of `bits` bits (a failed write raises, so a
    taken prime is never handed out while the record still lists it)."""

    def save(ready: dict[int, list[int]]) -> None:
        primes = ready.get(bits, [])
        store.put(RECORD, encode_primes(bits, primes))
        log.info("prime_pool", bits=bits, available=len(primes))

    return save


def open_pool(store: EncryptedStore, bits: int, target: int, generate: PrimeSource | None = None) -> PrimePool:
    """A background pool of `target` safe primes of `bits` bits, seeded from and persisted to the
    store; `generate` makes its background primes (prime_workers.py in a server)."""
    stashed = load(store, bits)
    if stashed:
        log.info("prime_pool_restored", bits=bits, available=len(stashed))
    return PrimePool((bits,), target=target, initial={bits: stashed}, on_change=saver(store, bits), generate=generate)
