"""Protocol rounds run on low-priority worker threads that let gmpy2 release the interpreter lock."""

from __future__ import annotations

import os
import threading

import gmpy2
import pytest

from signer.node.protocol_work import NICE, ProtocolWork, inline


def _where() -> tuple[str, int, bool]:
    me = threading.current_thread()
    return me.name, os.getpriority(os.PRIO_PROCESS, threading.get_native_id()), gmpy2.get_context().allow_release_gil


def test_a_step_runs_on_a_niced_worker_that_releases_the_gil() -> None:
    work = ProtocolWork(workers=2)
    try:
        name, nice, release = work.run(_where)
    finally:
        work.close()
    base = os.getpriority(os.PRIO_PROCESS, 0)
    assert name.startswith("protocol") and release
    assert nice == min(base + NICE, 19)  # the worker's own nice, not the process's
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == base  # the caller is untouched


def test_exceptions_reach_the_caller_and_inline_runs_here() -> None:
    work = ProtocolWork(workers=1)
    try:
        with pytest.raises(ZeroDivisionError):
            work.run(lambda: 1 // 0)
        assert work.run(lambda: 41 + 1) == 42
    finally:
        work.close()
    assert inline(_where)[0] == threading.current_thread().name
