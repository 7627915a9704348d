"""A coordinator that dies between two commits of one request's life, restarted on the same database.

The real-process kills are tests/integration/test_crash_coordinator.py; the windows here are too
short to hit with a signal, so the crash is an exception at the exact point, then a new
`CoordinatorService` on the same store (in-process signers, fixture shares, level 112).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from eth_account import Account
from structlog.testing import capture_logs

from coordinator import request_states as st
from coordinator.request_encoding import tx_from_json
from coordinator.service import CoordinatorService
from coordinator.signer_client import SignerClient

from .test_lifecycle import KEY_ID, MEDIUM, SMALL, Harness, _tx, h

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


# --- the merged commits of the online path (lifecycle._one_commit) -------------------------------------
def _ready_one(h: Harness) -> bytes:
    """One ready presignature for the set the next request reserves (the harness signs on path (0, 1))."""
    h.service.ensure_presignatures(KEY_ID, (1, 2), (0, 1), 1)
    ready = h.service.store.ready_presignatures(KEY_ID)
    assert len(ready) == 1
    return ready[0].presignature_id


def _held(h: Harness) -> int:
    return sum(len(n.presignature_ids(KEY_ID)) for n in h.nodes.values())


def test_a_crash_inside_the_claim_commit_leaves_nothing_reserved_and_nothing_released(
    h: Harness, restarted: list[CoordinatorService], monkeypatch: pytest.MonkeyPatch
) -> None:
    """approve + claim + reserve + attempt commit together: a crash at the last of them (the
    attempt's move) undoes all four; no signer was asked, the presignature is still ready."""
    pid = _ready_one(h)
    held = _held(h)

    def die(*_a: object, **_k: object) -> None:
        raise Killed

    monkeypatch.setattr(h.service.lifecycle, "_record_attempt", die)
    with pytest.raises(Killed):
        h.submit(SMALL, "crash-claim-1")
    row = h.service.store.list_requests(key_id=KEY_ID)[0]
    assert row.state == st.SUBMITTED and row.presignature_id is None
    assert h.states(row) == [st.SUBMITTED]  # approve and claim rolled back with the reservation
    assert h.service.store.get_presignature(pid).state == "ready"
    assert _held(h) == held  # no PartialSign: every signer still holds its share of it

    again = _restart(h)
    restarted.append(again)
    failed = again.get_request(row.request_id)
    assert failed.state == st.FAILED  # in flight at the restart: failed, never lost, never signed
    retry = again.sign_eth(KEY_ID, "crash-claim-1", (0, 1), _tx(SMALL), initiator="backend-1", allocate_nonce=True)
    assert retry.state == st.FAILED and retry.request_id == row.request_id  # the retry finds it
    fresh = again.sign_eth(KEY_ID, "crash-claim-2", (0, 1), _tx(SMALL), initiator="backend-1", allocate_nonce=True)
    assert fresh.state == st.SIGNED and fresh.presignature_id == pid  # the untouched presignature signs
    assert (tx_from_json(row.tx).nonce, tx_from_json(fresh.tx).nonce) == (0, 1)  # the failed one keeps its nonce
    assert again.audit.verify().ok


def test_a_crash_inside_the_signed_commit_fails_the_request_and_its_presignature(
    h: Harness, restarted: list[CoordinatorService], monkeypatch: pytest.MonkeyPatch
) -> None:
    """consumed + signed commit together: a crash at the signed move leaves the request signing with
    its presignature reserved; the restart fails both, so neither the request nor the presignature
    is ever used again (the signers released once; nothing asks them again)."""
    pid = _ready_one(h)
    store = h.service.store
    real = store.transition

    def transition(request_id: str, state: str, *a: object, **k: object) -> object:
        if state == st.SIGNED:
            raise Killed
        return real(request_id, state, *a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "transition", transition)
    monkeypatch.setattr(h.service.lifecycle.signing, "abandon", lambda _p: None)  # a dead process cleans nothing
    with pytest.raises(Killed):
        h.submit(SMALL, "crash-signed-1")
    monkeypatch.undo()
    row = store.list_requests(key_id=KEY_ID)[0]
    assert row.state == st.SIGNING and row.presignature_id == pid and not row.raw_tx
    assert store.get_presignature(pid).state == "reserved"  # not consumed: rolled back with the move
    assert _held(h) == 0  # both signers released σ_i

    with capture_logs() as logs:
        again = _restart(h)
    restarted.append(again)
    moves = [e for e in logs if e["event"] == "request_state_changed"]
    assert moves == [  # recovery's bulk move logs its event, like every other move
        {
            "event": "request_state_changed",
            "log_level": "info",
            "request_id": row.request_id,
            "key_id": KEY_ID,
            "kind": "withdrawal",
            "from_state": st.SIGNING,
            "to_state": st.FAILED,
            "move": "recover",
            "reason": "coordinator restarted while the request was in flight",
        }
    ]
    # The restarted process counts the recovery's failure once, and nothing else of the old one's work.
    counted = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in again.instruments.collect()
        for s in family.samples
        if s.name.endswith(("_total", "_count"))
    }
    assert {k: v for k, v in counted.items() if v} == {
        ("tss_coordinator_request_seconds_count", (("kind", "withdrawal"), ("state", "failed"))): 1.0
    }
    again.tick()
    done = again.get_request(row.request_id)
    assert done.state == st.FAILED and not done.raw_tx
    assert st.SIGNED not in [e.state for e in again.store.events(row.request_id)]
    assert again.store.get_presignature(pid).state == "failed"  # never ready again
    retry = again.sign_eth(KEY_ID, "crash-signed-1", (0, 1), _tx(SMALL), initiator="backend-1", allocate_nonce=True)
    assert retry.state == st.FAILED
    assert again.audit.verify().ok
