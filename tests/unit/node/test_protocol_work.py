"""Where protocol rounds run: worker processes below the signer's priority (a dead worker fails its
step and the pool comes back), or low-priority threads that let gmpy2 release the interpreter lock."""

from __future__ import annotations

import os
import signal
import threading

import gmpy2
import pytest

from signer.node.protocol_work import NICE, ProtocolWork, WorkerLost, inline


def _where() -> tuple[str, int, bool]:
    me = threading.current_thread()
    return me.name, os.getpriority(os.PRIO_PROCESS, threading.get_native_id()), gmpy2.get_context().allow_release_gil


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _divide(a: int, b: int) -> int:
    return a // b


def test_a_step_runs_in_a_child_process_below_the_callers_priority() -> None:
    work = ProtocolWork(workers=1)
    try:
        pid, parent = work.run(os.getpid), work.run(os.getppid)
        _, nice, _ = work.run(_where)
        assert work.pids() == [pid]
    finally:
        work.close()
    assert pid != os.getpid() and parent != os.getpid()  # a child of the fork server, not of this process
    assert nice == min(os.getpriority(os.PRIO_PROCESS, 0) + NICE, 19)


def test_a_worker_killed_mid_step_fails_that_step_and_the_pool_recovers() -> None:
    work = ProtocolWork(workers=1)
    try:
        before = work.run(os.getpid)
        with pytest.raises(WorkerLost):
            work.run(_die)
        after = work.run(os.getpid)  # a new pool, a new worker
        assert after != before
    finally:
        work.close()


def test_a_closed_pool_refuses_new_steps() -> None:
    work = ProtocolWork(workers=1)
    work.close()
    with pytest.raises(WorkerLost):
        work.run(os.getpid)


def test_a_step_runs_on_a_niced_thread_that_releases_the_gil() -> None:
    work = ProtocolWork(workers=2, mode="threads")
    try:
        name, nice, release = work.run(_where)
    finally:
        work.close()
    base = os.getpriority(os.PRIO_PROCESS, 0)
    assert name.startswith("protocol") and release
    assert nice == min(base + NICE, 19)  # the worker's own nice, not the process's
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == base  # the caller is untouched


@pytest.mark.parametrize("mode", ["processes", "threads"])
def test_exceptions_reach_the_caller_and_inline_runs_here(mode: str) -> None:
    work = ProtocolWork(workers=1, mode=mode)  # type: ignore[arg-type]
    try:
        with pytest.raises(ZeroDivisionError):
            work.run(_divide, 1, 0)
        assert work.run(_divide, 85, 2) == 42
    finally:
        work.close()
    assert inline(_where)[0] == threading.current_thread().name


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="processes"):
        ProtocolWork(mode="fork")  # type: ignore[arg-type]
