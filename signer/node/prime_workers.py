"""The safe-prime pool's background generation in a child process at the lowest priority.

The pool (signer/tss/primes.py) refills itself after every aux or refresh run that took primes:
at the 128-bit level a 1536-bit safe prime is seconds to minutes of sieving and primality tests.
In a thread of the signer, the sieve's Python loop held the interpreter lock its RPC handlers
need; here each prime is generated in its own process, forked from multiprocessing's fork server
(never from the multi-threaded gRPC process), at nice 19 (weight 15 against a handler's 1024:
pool refills are the least urgent work a signer has). A prime taken from an empty pool is still
generated on the spot by the caller, at its own priority: a key creation waits for it.

What crosses the pipe: the prime, a future Paillier factor, from a child of the signer to the
signer, both of the same user; it is never written anywhere but the encrypted prime stash.
`close` terminates a running child (a 1536-bit prime must not hold up a signer's stop), and each
child exits when the signer does, kill -9 included (`exit_with`).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path

from signer.tss.primes import BACKGROUND_NICE, generate_safe_prime

from .protocol_work import exit_with, lower_priority


class PrimeWorkerStopped(Exception):  # named like the library's errors (not *Error)
    """The child generating a prime was stopped (`close`) or died: no prime."""


COMM = "tss-prime"
"""The children's process name (`ps`, /proc/PID/comm), so operators and tests tell them from the
protocol workers, which share their parent (the fork server)."""


def _generate(bits: int, signer: int, nice: int, out: Connection) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a ^C stops the signer, which stops this child
    with contextlib.suppress(OSError):  # not Linux: only the name is missing
        Path("/proc/self/comm").write_text(COMM)
    exit_with(signer)
    lower_priority(nice, os.getpid())
    out.send(generate_safe_prime(bits))
    out.close()


class PrimeWorkers:
    """`generate(bits)`: a fresh safe prime computed in a child process at nice `nice`."""

    def __init__(self, nice: int = BACKGROUND_NICE) -> None:
        self.nice = nice
        self._ctx = multiprocessing.get_context("forkserver")
        self._lock = threading.Lock()
        self._live: set[BaseProcess] = set()
        self._closed = False

    def generate(self, bits: int) -> int:
        """A safe prime of `bits` bits; PrimeWorkerStopped if closed meanwhile or the child died."""
        receive, send = self._ctx.Pipe(duplex=False)
        child = self._ctx.Process(
            target=_generate, args=(bits, os.getpid(), self.nice, send), name="prime-worker", daemon=True
        )
        with self._lock:
            if self._closed:
                raise PrimeWorkerStopped("the signer is stopping")
            child.start()
            self._live.add(child)
        send.close()  # the child holds the only sending end: its exit reads as EOF
        try:
            prime = receive.recv()
        except EOFError:
            raise PrimeWorkerStopped("the prime worker process stopped before its prime") from None
        finally:
            receive.close()
            child.join()
            with self._lock:
                self._live.discard(child)
        if not isinstance(prime, int) or prime.bit_length() != bits:
            raise PrimeWorkerStopped(f"the prime worker sent no {bits}-bit number")
        return prime

    def pids(self) -> list[int]:
        """Process ids of the children generating now."""
        with self._lock:
            return sorted(p.pid for p in self._live if p.pid is not None)

    def close(self) -> None:
        """No new children; running ones are terminated (their callers get PrimeWorkerStopped)."""
        with self._lock:
            self._closed = True
            live = list(self._live)
        for child in live:
            child.terminate()
