"""Shared test helpers: a seeded rng and keys built from the pre-generated fixture primes."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable, Iterable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import gmpy2
import pytest

from signer.tss.paillier import PaillierSecretKey
from signer.tss.params import SecurityLevel
from signer.tss.ring_pedersen import RingPedersenSecret, generate_ring_pedersen

FIXTURE = Path(__file__).parent / "fixtures" / "safe_primes.json"


class SeededRng:
    """Deterministic Rng for reproducible tests (never used by production code)."""

    def __init__(self, seed: int | str = 0) -> None:
        self._r = random.Random(seed)  # noqa: S311 - reproducible tests only, never production

    def randbelow(self, n: int) -> int:
        return self._r.randrange(n)

    def randbits(self, k: int) -> int:
        return self._r.getrandbits(k)

    def token_bytes(self, n: int) -> bytes:
        return self._r.randbytes(n)


@cache
def fixture_primes(bits: int) -> tuple[int, ...]:
    """All pre-generated safe primes of this size."""
    data = json.loads(FIXTURE.read_text())
    return tuple(int(h, 16) for h in data[str(bits)])


class FixturePrimeSource:
    """Hands out distinct fixture primes, in order, starting at `offset`; cycles never."""

    def __init__(self, offset: int = 0) -> None:
        self._next: dict[int, Iterator[int]] = {}
        self._offset = offset

    def __call__(self, bits: int) -> int:
        it = self._next.get(bits)
        if it is None:
            it = iter(fixture_primes(bits)[self._offset :])
            self._next[bits] = it
        try:
            return next(it)
        except StopIteration:
            raise RuntimeError(f"fixture has too few {bits}-bit primes; rerun make_primes") from None


@cache
def paillier_key(level: SecurityLevel, index: int = 0) -> PaillierSecretKey:
    """A Paillier key from fixture primes 2·index and 2·index+1."""
    primes = fixture_primes(level.prime_bits)
    return PaillierSecretKey(primes[2 * index], primes[2 * index + 1])


@cache
def ring_pedersen(level: SecurityLevel, index: int = 0) -> RingPedersenSecret:
    """Ring-Pedersen parameters from fixture primes counted from the end of the list."""
    primes = fixture_primes(level.prime_bits)
    return generate_ring_pedersen(primes[-2 * index - 1], primes[-2 * index - 2], SeededRng(f"rp{index}"))


def forbid_modexp(
    monkeypatch: pytest.MonkeyPatch,
    *,
    also: Iterable[tuple[object, str]] = (),
    what: str = "before the range and membership checks",
) -> None:
    """Make GMP's modular exponentiation (and each `(module, name)` of `also`) fail the test, on
    this thread only: a background thread of the same worker (a prime pool refilling) keeps
    working, where patching the module for every thread killed it."""
    me = threading.get_ident()

    def guarded(real: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any) -> Any:
            if threading.get_ident() == me:
                raise AssertionError(f"modular exponentiation {what}")
            return real(*args)

        return call

    for module, name in [(gmpy2, "powmod"), (gmpy2, "powmod_sec"), *also]:
        monkeypatch.setattr(module, name, guarded(getattr(module, name)))
