"""The safe-prime pool's background primes come from child processes at nice 19
(signer/node/prime_workers.py): real processes, read from /proc. A 2048-bit safe prime takes far
longer than the checks below, so a child is caught mid-generation."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from signer.node.prime_workers import COMM, PrimeWorkers, PrimeWorkerStopped
from signer.tss import primes
from signer.tss.primes import PrimePool, is_safe_prime

SLOW_BITS = 2048


def _nice(pid: int) -> int:
    raw = Path(f"/proc/{pid}/stat").read_text()
    return int(raw[raw.rindex(")") + 2 :].split()[16])


def _until(what: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_prime_comes_from_a_child_at_the_lowest_priority() -> None:
    workers = PrimeWorkers()
    try:
        p = workers.generate(256)
        assert p.bit_length() == 256 and is_safe_prime(p)
        got: list[BaseException] = []

        def slow() -> None:
            try:
                workers.generate(SLOW_BITS)
            except BaseException as exc:  # the test reads it
                got.append(exc)

        t = threading.Thread(target=slow)
        t.start()
        _until(lambda: bool(workers.pids()))
        (child,) = workers.pids()
        assert child != os.getpid()
        _until(lambda: _nice(child) == 19, timeout=5)  # the child lowers itself first thing
        assert Path(f"/proc/{child}/comm").read_text().strip() == COMM
    finally:
        workers.close()  # terminates the 2048-bit child: its caller gets no prime
    t.join(timeout=10)
    assert not t.is_alive() and len(got) == 1 and isinstance(got[0], PrimeWorkerStopped)
    assert workers.pids() == [] and _zombie_or_gone(child)
    with pytest.raises(PrimeWorkerStopped):
        workers.generate(256)  # closed: no new child


def _zombie_or_gone(pid: int) -> bool:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return raw[raw.rindex(")") + 2 :].split()[0] == "Z"


def test_a_killed_child_is_no_prime_and_the_pool_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(primes, "RETRY_SECONDS", 0.05)
    workers = PrimeWorkers()
    bits = [SLOW_BITS]  # the first child is killed mid-generation; the retry asks for a small prime

    def generate(_: int) -> int:
        return workers.generate(bits[0])

    pool = PrimePool((256,), target=1, generate=generate)
    try:
        _until(lambda: bool(workers.pids()))
        bits[0] = 256
        os.kill(workers.pids()[0], 9)
        _until(lambda: pool.available(256) == 1)
        p = pool.take(256)
        assert p.bit_length() == 256 and is_safe_prime(p)
    finally:
        pool.close()
        workers.close()


def test_closing_stops_the_pool_while_a_child_generates() -> None:
    workers = PrimeWorkers()
    pool = PrimePool((SLOW_BITS,), target=1, generate=workers.generate)
    _until(lambda: bool(workers.pids()))
    t0 = time.monotonic()
    pool.close()
    workers.close()
    pool.close(wait=True)  # the worker thread returns: the child was terminated, not waited for
    assert time.monotonic() - t0 < 10 and pool.available(SLOW_BITS) == 0
