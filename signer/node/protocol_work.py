"""Protocol computation off the RPC threads: in worker processes at a lower scheduling priority.

A presign or aux round is hundreds of milliseconds of modular exponentiation; a PartialSign is a
few milliseconds. A signer server computes every round (keygen, aux, refresh, presign with its
identification round, reshare) in a pool of worker processes, one per core by default
(`protocol_workers`), so a round never holds the interpreter lock the RPC handlers need, and each
worker lowers its own priority by `NICE` levels, so when the cores are busy the scheduler serves
the online handlers (of this signer, and of the coordinator and other signers on the same host)
first. +10 rather than 19: a nice-10 task weighs 110 against a nice-0 task's 1024 (the handler
gets ~90% of a contended core and pre-empts the worker on wake-up), while background work keeps
~10% beside a CPU-bound neighbour, so a refill or a key creation on a busy host slows down ~10x
rather than ~70x (nice 19 weighs 15).

What crosses to a worker: the round object (its state, secrets included) and the inbox, pickled
over a local pipe between processes of the same user, and back the next step or the protocol's
output. The worker holds what the signer already holds in memory; nothing is written to disk or
logged (docs/architecture.md). The workers are forked from multiprocessing's fork server (a
fresh single-threaded interpreter), never from the multi-threaded gRPC process.

A worker that dies mid-round (killed, out of memory) fails that step with `WorkerLost` (its
session is lost, the coordinator sees UNAVAILABLE) and the broken pool is replaced for the next
step. Workers exit with the signer: a graceful stop shuts the pool down, and each worker watches
the signer's process (a pidfd) and exits when it is gone, so a kill -9 of the signer leaves no
worker behind (and then no fork server: it exits once no process holds its pipe).

`threads` keeps the rounds in the signer process on low-priority threads (gmpy2 releasing the
interpreter lock in its long calls), and `inline` runs them in the caller's thread (in-process test
nodes).
"""

from __future__ import annotations

import multiprocessing
import os
import select
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

import gmpy2
import structlog

from .config import Mode

T = TypeVar("T")
MODES: tuple[Mode, ...] = ("processes", "threads")

NICE = 10
# Imported once by the fork server, so a new worker starts with the protocol library loaded.
PRELOAD = ["signer.tss.keygen", "signer.tss.aux", "signer.tss.presign", "signer.tss.reshare"]

log = structlog.get_logger("signer")


class WorkerLost(Exception):  # named like the library's errors (not *Error)
    """The worker process computing a step died (killed, out of memory): the step's session is lost."""


def lower_priority(nice: int, tid: int | None = None) -> None:
    """Lower the calling thread (or task `tid`) by `nice` levels, at most to 19."""
    try:
        which = threading.get_native_id() if tid is None else tid
        os.setpriority(os.PRIO_PROCESS, which, min(19, os.getpriority(os.PRIO_PROCESS, which) + nice))
    except (OSError, AttributeError):  # not Linux: the work keeps the signer's priority
        pass


def exit_with(signer: int) -> None:
    """Exit when the signer process does (kill -9 included). The fork server cannot tell: every
    worker holds the pipe whose end it watches, and a worker waits for work forever."""
    try:
        fd = os.pidfd_open(signer)
    except ProcessLookupError:
        os._exit(0)
    except (OSError, AttributeError):  # no pidfd (not Linux 5.3+): poll
        fd = -1

    def watch() -> None:
        if fd >= 0:
            select.select([fd], [], [])  # readable once the signer has exited
        else:
            while _alive(signer):
                time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="signer-watch", daemon=True).start()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _process_init(signer: int, nice: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a ^C stops the signer, which stops the pool
    exit_with(signer)
    lower_priority(nice, os.getpid())


def _thread_init(nice: int) -> None:
    gmpy2.get_context().allow_release_gil = True  # per-thread context: the handlers run alongside
    lower_priority(nice)


def _ready() -> int:
    return os.getpid()


class ProtocolWork:
    """Runs protocol steps in low-priority worker processes (or threads); `run` waits for the result."""

    def __init__(self, workers: int = 0, *, mode: Mode = "processes", nice: int = NICE) -> None:
        if mode not in MODES:
            raise ValueError(f"protocol work runs in one of {MODES}, not {mode!r}")
        self.mode = mode
        self.workers = workers or max(2 if mode == "threads" else 1, os.cpu_count() or 2)
        self.nice = nice
        self._lock = threading.Lock()
        self._closed = False
        self._pool: Executor = self._new_pool()

    def _new_pool(self) -> Executor:
        if self.mode == "threads":
            return ThreadPoolExecutor(
                self.workers, thread_name_prefix="protocol", initializer=_thread_init, initargs=(self.nice,)
            )
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(PRELOAD)
        return ProcessPoolExecutor(
            self.workers, mp_context=ctx, initializer=_process_init, initargs=(os.getpid(), self.nice)
        )

    def warm(self) -> None:
        """Start the fork server and a first worker in the background (a signer's start stays fast)."""
        if self.mode == "processes":
            threading.Thread(target=self._warm, name="protocol-warm", daemon=True).start()

    def _warm(self) -> None:
        try:
            self.run(_ready)
        except Exception as exc:  # the first real step will report it
            log.warning("protocol_workers_not_started", error=str(exc))

    def run(self, fn: Callable[..., T], *args: Any) -> T:
        """fn(*args) on a worker (exceptions propagate); in processes fn and args must pickle
        (a bound method of a round, a partial of a module-level function)."""
        with self._lock:
            if self._closed:
                raise WorkerLost("the signer is stopping")
            pool = self._pool
            try:
                future = pool.submit(fn, *args)
            except BrokenProcessPool:
                future = None
        if future is None:
            self._replace(pool)
            raise WorkerLost("a protocol worker process died; the pool is restarted")
        try:
            return future.result()
        except BrokenProcessPool:
            self._replace(pool)
            raise WorkerLost("the protocol worker process computing this step died") from None

    def _replace(self, broken: Executor) -> None:
        """A worker died: every step it had was failed (BrokenProcessPool); the next one gets a new pool."""
        with self._lock:
            if self._pool is not broken or self._closed:
                return
            self._pool = self._new_pool()
        log.warning("protocol_worker_died", pool="restarted")
        broken.shutdown(wait=False, cancel_futures=True)

    def pids(self) -> list[int]:
        """Process ids of the running workers (none for threads)."""
        processes = getattr(self._pool, "_processes", None) or {}
        return sorted(processes)

    def close(self) -> None:
        """Let running steps finish, then stop the workers; no new steps."""
        with self._lock:
            self._closed = True
            pool = self._pool
        pool.shutdown(wait=True, cancel_futures=True)


def inline(fn: Callable[..., T], *args: Any) -> T:
    """Run in the caller's thread (the default for in-process nodes in tests)."""
    return fn(*args)
