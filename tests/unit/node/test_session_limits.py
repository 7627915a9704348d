"""A signer's session table is bounded: idle sessions are evicted, running ones are capped."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from signer.node.identity import Identity
from signer.node.sessions import SessionManager
from signer.tss.errors import InvalidInput
from signer.tss.rounds import Continue, Incoming, Round, Step


class _Waiting(Round):
    """A first round that waits forever (what a session started and abandoned looks like)."""

    name = "wait"

    def _receive(self, inbox: Mapping[int, Incoming]) -> Step:
        raise AssertionError("never delivered")


class _Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _manager(clock: _Clock, *, idle: float = 60.0, cap: int = 3) -> SessionManager:
    peer = Identity.generate(2).public()
    return SessionManager(Identity.generate(1), {2: peer}, idle_timeout=idle, max_sessions=cap, clock=clock)


def _start(m: SessionManager, sid: bytes) -> None:
    m.start(sid, "keygen", (1, 2), Continue((), _Waiting(1, (1, 2))), lambda _: b"")


def test_a_node_refuses_sessions_beyond_its_cap() -> None:
    m = _manager(_Clock())
    for i in range(3):
        _start(m, bytes([i]) * 16)
    with pytest.raises(InvalidInput, match="too many sessions: this node holds at most 3 at once"):
        _start(m, b"\x09" * 16)


def test_a_session_without_progress_is_evicted_and_frees_its_slot() -> None:
    clock = _Clock()
    m = _manager(clock)
    for i in range(3):
        _start(m, bytes([i]) * 16)
    clock.t += 61
    _start(m, b"\x09" * 16)  # the three abandoned sessions are dropped first
    with pytest.raises(InvalidInput, match="unknown session"):
        m.get(b"\x00" * 16)
    assert m.get(b"\x09" * 16).protocol == "keygen"


def test_only_sessions_idle_past_the_timeout_are_evicted() -> None:
    clock = _Clock()
    m = _manager(clock)
    _start(m, b"\x01" * 16)
    clock.t += 59
    _start(m, b"\x02" * 16)
    clock.t += 59  # 118 s after the first start, 59 s after the second
    _start(m, b"\x03" * 16)
    with pytest.raises(InvalidInput, match="unknown session"):
        m.get(b"\x01" * 16)
    assert m.get(b"\x02" * 16).protocol == "keygen"
