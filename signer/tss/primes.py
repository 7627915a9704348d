"""Safe primes: generation with a sieve and gmpy2 tests, a background pool, and modulus checks.

Generated primes have exactly `bits` bits with the top two set, so the product of two has
exactly 2·bits bits. Production code always generates fresh primes (the pool runs ahead of time);
only tests inject pre-generated ones.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence

import gmpy2

from .errors import InvalidInput
from .rng import Rng, SystemRng

_SIEVE_LIMIT = 1 << 16
_WINDOW = 1 << 14


def _small_primes(limit: int) -> list[int]:
    flags = bytearray([1]) * limit
    flags[0:2] = b"\x00\x00"
    for i in range(2, int(limit**0.5) + 1):
        if flags[i]:
            flags[i * i :: i] = bytearray(len(range(i * i, limit, i)))
    return [i for i in range(3, limit) if flags[i]]


SMALL_PRIMES = _small_primes(_SIEVE_LIMIT)


def _candidates(q0: int) -> list[int]:
    """Offsets k in the window such that q = q0 + 2k and 2q + 1 have no small factor."""
    sieve = bytearray(_WINDOW)
    for s in SMALL_PRIMES:
        inv2 = (s + 1) // 2  # 2^-1 mod s
        r = q0 % s
        # q ≡ 0 (mod s)  <=>  k ≡ -r/2 ;  2q+1 ≡ 0  <=>  q ≡ -1/2  <=>  k ≡ (-inv2 - r)/2
        for target in ((-r * inv2) % s, ((-inv2 - r) * inv2) % s):
            sieve[target::s] = b"\x01" * len(range(target, _WINDOW, s))
    return [k for k in range(_WINDOW) if not sieve[k]]


def generate_safe_prime(bits: int, rng: Rng | None = None) -> int:
    """A uniformly placed safe prime p = 2q + 1 of exactly `bits` bits, top two bits set."""
    if bits < 32:
        raise InvalidInput("safe primes below 32 bits are not supported")
    rng = rng or SystemRng()
    while True:
        # q has bits-1 bits with its top two set and is odd, so p = 2q+1 has the top two set.
        q0 = rng.randbits(bits - 1) | (3 << (bits - 3)) | 1
        for k in _candidates(q0):
            q = gmpy2.mpz(q0 + 2 * k)
            if q.bit_length() != bits - 1:
                break
            if gmpy2.powmod(2, q - 1, q) != 1:
                continue
            p = 2 * q + 1
            if gmpy2.powmod(2, p - 1, p) != 1:
                continue
            if gmpy2.is_prime(q, 32) and gmpy2.is_prime(p, 32):
                return int(p)


def is_safe_prime(p: int) -> bool:
    """True when p and (p-1)/2 are both prime."""
    return p > 7 and p % 2 == 1 and bool(gmpy2.is_prime(p, 32)) and bool(gmpy2.is_prime((p - 1) // 2, 32))


def has_small_factor(n: int) -> bool:
    """True when an odd prime below 2^16 (or 2) divides n."""
    if n % 2 == 0:
        return True
    return any(n % s == 0 for s in SMALL_PRIMES)


def check_modulus(n: int, bits: int) -> None:
    """Cheap checks on a received modulus: exact size, odd, no small factor, not prime/square.

    The zero-knowledge proofs (Πmod, Πfac) carry the real guarantee; these checks come first
    because they are cheap and stop malformed input before any exponentiation.
    """
    if not isinstance(n, int) or isinstance(n, bool) or n <= 0 or n.bit_length() != bits:
        raise InvalidInput(f"modulus must have exactly {bits} bits")
    if has_small_factor(n):
        raise InvalidInput("modulus has a small factor")
    if gmpy2.is_square(n):
        raise InvalidInput("modulus is a perfect square")
    if gmpy2.is_prime(n, 16):
        raise InvalidInput("modulus is prime")


PrimeSource = Callable[[int], int]
"""A function returning a fresh safe prime of the given bit length."""

AUX_PRIMES = 4
"""Safe primes one aux-info or refresh run draws: p, q of its Paillier key, p̂, q̂ of its ring-Pedersen."""


BACKGROUND_NICE = 19
RETRY_SECONDS = 5.0


def lower_thread_priority() -> None:
    """Run the calling thread at the lowest CPU priority (Linux: nice is per thread), so a pool
    refilling in the background never slows a protocol session (an aux-info run right after a
    reshare takes the pool's primes and would otherwise share the cores with their replacements)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICE)
    except (AttributeError, OSError):  # not Linux, or not permitted: only slower, never wrong
        pass


class PrimePool:
    """Background threads that keep `target` safe primes of each requested size ready.

    gmpy2 releases the GIL during long operations, so the workers use spare cores.
    `take(bits)` returns a pooled prime or generates one on the spot.

    `generate(bits)` makes the background's primes (default: in the worker thread; a signer server
    passes its child-process generator, signer/node/prime_workers.py); if it raises while the pool
    is open the worker retries after `RETRY_SECONDS`. A prime taken from an empty pool is generated
    by the caller. `initial` seeds the pool (primes kept from an earlier run, already checked by the caller);
    `on_change(ready)` is called under the pool's lock with every size's ready primes after each
    addition and before a taken prime is handed out, so a caller that persists them never hands
    one out twice, even across a crash.
    """

    def __init__(
        self,
        bits: tuple[int, ...],
        target: int = 8,
        workers: int = 1,
        *,
        initial: Mapping[int, Sequence[int]] | None = None,
        on_change: Callable[[dict[int, list[int]]], None] | None = None,
        generate: PrimeSource | None = None,
    ) -> None:
        self._target = target
        self._generate = generate or generate_safe_prime
        self._ready: dict[int, deque[int]] = {b: deque((initial or {}).get(b, ())) for b in bits}
        self._on_change = on_change
        self._cond = threading.Condition()
        self._stop = False
        self._threads = [
            threading.Thread(target=self._run, name=f"prime-pool-{i}", daemon=True) for i in range(workers)
        ]
        for t in self._threads:
            t.start()

    def _next_size(self) -> int | None:
        short = [(len(q), b) for b, q in self._ready.items() if len(q) < self._target]
        return min(short)[1] if short else None

    def _run(self) -> None:
        lower_thread_priority()
        gmpy2.get_context().allow_release_gil = True
        while True:
            with self._cond:
                while not self._stop and self._next_size() is None:
                    self._cond.wait()
                if self._stop:
                    return
                bits = self._next_size()
            assert bits is not None
            try:
                p = self._generate(bits)
            except Exception:  # a stopped or dead generator: retry unless the pool closed meanwhile
                with self._cond:
                    if not self._stop:
                        self._cond.wait(RETRY_SECONDS)
                continue
            with self._cond:
                if self._stop:  # closed while we were generating: drop it, as close() promises
                    return
                self._ready[bits].append(p)
                self._changed()
                self._cond.notify_all()

    def _changed(self) -> None:
        """The caller holds `_cond`."""
        if self._on_change is not None:
            self._on_change({b: list(q) for b, q in self._ready.items()})

    def available(self, bits: int) -> int:
        """How many primes of this size are ready now."""
        with self._cond:
            return len(self._ready.get(bits, ()))

    def take(self, bits: int) -> int:
        """A fresh safe prime of `bits` bits, never handed out twice."""
        with self._cond:
            # .get, not .setdefault: taking an unpooled size must not make the workers pool it.
            q = self._ready.get(bits, deque())
            if q:
                p = q.popleft()
                self._changed()
                self._cond.notify_all()
                return p
            self._cond.notify_all()
        return generate_safe_prime(bits)

    def close(self, wait: bool = False) -> None:
        """Stop the workers (primes still pooled are dropped); with `wait`, join them."""
        with self._cond:
            self._stop = True
            for q in self._ready.values():
                q.clear()
            self._cond.notify_all()
        if wait:
            for t in self._threads:
                t.join()


class TakenPrimes:
    """A prime source over primes already taken from a pool, handed out in order: it pickles, so a
    run can start in another process than the pool's (signer/node/protocol_work.py)."""

    def __init__(self, primes: Sequence[int]) -> None:
        self._left = list(primes)

    def __call__(self, bits: int) -> int:
        if not self._left:
            raise InvalidInput("no taken prime left")
        p = self._left.pop(0)
        if p.bit_length() != bits:
            raise InvalidInput(f"a taken prime has {p.bit_length()} bits, not {bits}")
        return p
