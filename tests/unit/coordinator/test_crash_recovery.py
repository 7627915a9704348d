"""A coordinator that dies between two commits of one request's life, restarted on the same database.

The real-process kills are tests/integration/test_crash_coordinator.py; the windows here are too
short to hit with a signal, so the crash is an exception at the exact point, then a new
`CoordinatorService` on the same store (in-process signers, fixture shares, level 112).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from eth_account import Account

from coordinator import request_states as st
from coordinator.service import CoordinatorService
from coordinator.signer_client import SignerClient

from .test_lifecycle import MEDIUM, Harness, h

__all__ = ["h"]


class Killed(BaseException):
    """The process died here (not an Exception: nothing may catch it on the way out)."""


def _restart(h: Harness) -> CoordinatorService:
    h.service.close()
    return CoordinatorService(h.service.store, dict[int, SignerClient](h.clients), level="112", scheduler_interval=0)


@pytest.fixture
def restarted() -> Iterator[list[CoordinatorService]]:
    services: list[CoordinatorService] = []
    yield services
    for s in services:
        s.close()


def test_a_crash_between_the_last_approval_and_its_move_signs_after_restart(
    h: Harness,
    restarted: list[CoordinatorService],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    row = h.submit(MEDIUM, "crash-approve-1")
    assert h.approve(row, "officer-1").state == st.PENDING_APPROVAL

    def die(*_a: object, **_k: object) -> None:
        raise Killed

    monkeypatch.setattr(h.service.lifecycle, "advance", die)  # the approval is durable, the move is not
    with pytest.raises(Killed):
        h.approve(row, "officer-2")
    stuck = h.service.get_request(row.request_id)
    assert stuck.state == st.PENDING_APPROVAL and stuck.approved_by == ("officer-1", "officer-2")

    again = _restart(h)
    restarted.append(again)
    again.tick()  # the first pass after a start re-evaluates every open request
    done = again.get_request(row.request_id)
    assert done.state == st.SIGNED, (done.state, done.error, done.policy_reason)
    assert Account.recover_transaction(done.raw_tx) == done.from_address
    assert again.audit.verify().ok
