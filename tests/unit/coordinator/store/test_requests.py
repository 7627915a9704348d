"""Requests: idempotency, guarded transitions with their events and results, approvals, audit hooks."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from coordinator import store as st
from coordinator.store import Store
from signer.tss.errors import Blame

from .support import make_request


def test_same_idempotency_key_same_body_returns_the_same_request(db: Store) -> None:
    first, created = make_request(db, "r1", idem="idem-1")
    again, created_again = make_request(db, "r2", idem="idem-1")
    assert created and not created_again
    assert again.request_id == first.request_id == "r1"
    with pytest.raises(st.NotFound):
        db.get_request("r2")


def test_same_idempotency_key_other_body_conflicts(db: Store) -> None:
    make_request(db, "r1", idem="idem-1", body="A")
    with pytest.raises(st.IdempotencyConflict):
        make_request(db, "r2", idem="idem-1", body="B")


def test_concurrent_submits_create_one_request(db: Store) -> None:
    results: list[tuple[str, bool]] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def submit(i: int) -> None:
        start.wait()
        row, created = make_request(db, f"r{i}", idem="same")
        with lock:
            results.append((row.request_id, created))

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({rid for rid, _ in results}) == 1
    assert sum(created for _, created in results) == 1


def test_idempotency_keys_are_scoped_per_initiator(db: Store) -> None:
    a, created_a = make_request(db, "ra", idem="shared", body="A", initiator="backend-a")
    # Attack: backend B reuses A's key, with another body and with A's very body: it neither
    # conflicts (which would name A's request) nor finds A's request; it gets its own.
    b, created_b = make_request(db, "rb", idem="shared", body="B", initiator="backend-b")
    assert created_a and created_b and b.request_id == "rb" and b.initiator == "backend-b"
    c, created_c = make_request(db, "rc", idem="shared", body="A", initiator="backend-c")
    assert created_c and c.request_id == "rc"
    # Each backend's own retry still finds its own request, and its own conflict stays its own.
    assert make_request(db, "ra2", idem="shared", body="A", initiator="backend-a") == (a, False)
    assert make_request(db, "rb2", idem="shared", body="B", initiator="backend-b")[0].request_id == "rb"
    with pytest.raises(st.IdempotencyConflict) as exc:
        make_request(db, "rb3", idem="shared", body="A", initiator="backend-b")
    assert "rb" in str(exc.value) and "ra" not in str(exc.value)


def test_concurrent_submits_of_two_initiators_with_one_key_create_two_requests(db: Store) -> None:
    results: list[tuple[str, str]] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def submit(i: int) -> None:
        start.wait()
        who = f"backend-{i % 2}"
        row, _ = make_request(db, f"r{i}", idem="same", initiator=who)
        with lock:
            results.append((who, row.request_id))

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    by_initiator = {who: {rid for w, rid in results if w == who} for who in ("backend-0", "backend-1")}
    assert all(len(ids) == 1 for ids in by_initiator.values())
    assert by_initiator["backend-0"] != by_initiator["backend-1"]


def test_request_for_unknown_key_is_not_found(db: Store) -> None:
    with pytest.raises(st.NotFound):
        db.create_request(request_id="r", key_id="nope", idempotency_key="i", body_hash="b", tx={}, path=())


def test_transitions_record_events_and_results(db: Store) -> None:
    make_request(db, "r1")
    with pytest.raises(st.InvalidTransition):  # the lifecycle's table: signing comes after approval
        db.transition("r1", st.SIGNING)
    db.transition("r1", st.APPROVED, "approved")
    db.transition("r1", st.SIGNING, "start", digest=b"\x01" * 32, from_address="0xabc")
    db.transition("r1", st.SIGNING, "attempt 2")
    row = db.transition("r1", st.SIGNED, "done", r=b"\x02" * 32, s=b"\x03" * 32, v=1, raw_tx=b"\x02raw", tx_hash=b"h")
    assert row.final and row.v == 1 and row.digest == b"\x01" * 32 and row.from_address == "0xabc"
    events = db.events("r1")
    assert [(e.seq, e.state) for e in events] == [
        (1, "submitted"),
        (2, "approved"),
        (3, "signing"),
        (4, "signing"),
        (5, "signed"),
    ]
    assert [e.state for e in db.events("r1", after_seq=3)] == ["signing", "signed"]
    with pytest.raises(st.InvalidTransition):
        db.transition("r1", st.FAILED)


def test_blame_round_trips(db: Store) -> None:
    make_request(db, "r1")
    blames = (Blame(0, "presign/r2", "envelope_signature", b"\x00\xff"), Blame(3, "sign", "partial_signature"))
    db.transition("r1", st.FAILED, "aborted", blame=blames, error="aborted", error_code="aborted")
    row = db.get_request("r1")
    assert row.blame == blames and row.error_code == "aborted"


def test_unknown_result_field_is_refused(db: Store) -> None:
    make_request(db, "r1")
    with pytest.raises(st.StoreError, match="key_id"):
        db.transition("r1", st.APPROVED, key_id="k2")


def test_list_requests_filters(db: Store) -> None:
    for i in range(3):
        make_request(db, f"r{i}")
    db.transition("r1", st.FAILED, "x")
    assert [r.request_id for r in db.list_requests(state=st.FAILED)] == ["r1"]
    assert len(db.list_requests(key_id="k1", limit=2)) == 2
    assert db.list_requests(key_id="other") == []


def test_guarded_transition_names_the_state_it_starts_from(db: Store) -> None:
    make_request(db, "r1")
    db.transition("r1", st.PENDING_APPROVAL, expect=(st.SUBMITTED,), policy_reason="approvals_pending")
    with pytest.raises(st.InvalidTransition, match="not submitted"):
        db.transition("r1", st.APPROVED, expect=(st.SUBMITTED,))  # another thread moved it first
    row = db.transition("r1", st.APPROVED, expect=(st.PENDING_APPROVAL,), time_lock_until=99, rule_id="r")
    assert (row.state, row.time_lock_until, row.rule_id, row.policy_reason) == (
        "approved",
        99,
        "r",
        "approvals_pending",
    )


def test_approvals_are_recorded_once_per_officer(db: Store) -> None:
    make_request(db, "r1")
    with pytest.raises(st.InvalidTransition):
        db.add_approval("r1", "officer-1", b"a1", 1, 2)  # not pending approval yet
    db.transition("r1", st.PENDING_APPROVAL)
    assert db.add_approval("r1", "officer-1", b"a1", 1, 2)
    assert not db.add_approval("r1", "officer-1", b"a1", 1, 2)  # the same approval again: nothing new
    with pytest.raises(st.DuplicateApproval):
        db.add_approval("r1", "officer-1", b"a1-other", 3, 4)
    db.add_approval("r1", "officer-2", b"a2", 1, 2)
    assert db.get_request("r1").approved_by == ("officer-1", "officer-2")
    assert [a.approval for a in db.approvals("r1")] == [b"a1", b"a2"]
    assert [e.state for e in db.events("r1")] == [
        "submitted",
        "pending_approval",
        "pending_approval",
        "pending_approval",
    ]


def test_a_failing_audit_hook_rolls_the_change_back(db: Store) -> None:
    make_request(db, "r1")

    def broken(conn: sqlite3.Connection) -> object:
        raise RuntimeError("audit log unavailable")

    with pytest.raises(RuntimeError):
        db.transition("r1", st.APPROVED, audit=broken)
    assert db.get_request("r1").state == st.SUBMITTED and len(db.events("r1")) == 1
    with pytest.raises(RuntimeError):
        db.put_governance("policy", b"v1", ("policy", b"c"), audit=broken)
    assert db.get_governance("policy") is None and db.governance_log() == []


def test_open_request_stats_count_open_states_with_the_oldest(db: Store) -> None:
    assert db.open_request_stats() == {}
    for rid in ("r1", "r2", "r3", "r4"):
        make_request(db, rid)
    first = db.get_request("r1").created_at
    for rid in ("r1", "r2"):
        db.transition(rid, st.PENDING_APPROVAL)
    db.transition("r3", st.APPROVED)
    db.transition("r3", st.SIGNING)  # in flight, not open
    stats = db.open_request_stats()
    assert set(stats) == {st.PENDING_APPROVAL}
    count, oldest = stats[st.PENDING_APPROVAL]
    assert count == 2 and oldest == pytest.approx(first)
    db.transition("r1", st.REJECTED)
    assert db.open_request_stats()[st.PENDING_APPROVAL][0] == 1
