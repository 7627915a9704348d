"""Protocol computation off the RPC threads, at a lower scheduling priority.

A presign or aux round is hundreds of milliseconds of modular exponentiation; a PartialSign is
well under a millisecond of work. Run in the gRPC handler thread, a round held the interpreter
lock for each long gmpy2 call, so a PartialSign that arrived meanwhile waited for it (p99 while
the pool refills was 31-69x the idle p99, docs/performance.md). Rounds now run on a small pool
of worker threads that (1) let gmpy2 release the interpreter lock during its long calls
(`allow_release_gil`, a per-thread gmpy2 context setting), so the handler's Python runs
alongside, and (2) run 10 nice levels below the process (Linux sets a nice value per thread), so when the cores are
busy the scheduler serves the online handler first. A lower priority can be taken, not given
back without privilege: that is why the work has its own threads rather than lowering the
handler's.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import gmpy2

T = TypeVar("T")

NICE = 10


def _worker_init(nice: int) -> None:
    gmpy2.get_context().allow_release_gil = True
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
    except (OSError, AttributeError):  # not Linux: the thread keeps the process's priority
        pass


class ProtocolWork:
    """Runs protocol steps on low-priority worker threads; `run` waits for the result."""

    def __init__(self, workers: int | None = None, nice: int = NICE) -> None:
        self.workers = workers or max(2, os.cpu_count() or 2)
        self._pool = ThreadPoolExecutor(
            max_workers=self.workers, thread_name_prefix="protocol", initializer=_worker_init, initargs=(nice,)
        )

    def run(self, fn: Callable[[], T]) -> T:
        """fn() on a worker thread (exceptions propagate to the caller)."""
        return self._pool.submit(fn).result()

    def close(self) -> None:
        """Let running steps finish; no new ones."""
        self._pool.shutdown(wait=True, cancel_futures=True)


def inline(fn: Callable[[], T]) -> T:
    """Run in the caller's thread (the default for in-process nodes in tests)."""
    return fn()
