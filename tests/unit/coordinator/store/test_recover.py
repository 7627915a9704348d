"""After a restart the store fails what was in flight and never makes a reserved presignature ready."""

from __future__ import annotations

import pytest

from coordinator import store as st
from coordinator.dbapi import SQLITE
from coordinator.store import Store
from coordinator.store.replicas import STUCK_REQUESTS

from .support import SIGNERS, make_request, presigs


def test_recover_fails_in_flight_requests_and_reserved_presignatures(db: Store) -> None:
    (pid,) = presigs(db, 1)
    make_request(db, "r1")
    make_request(db, "r2")
    db.transition("r1", st.APPROVED)
    db.transition("r1", st.SIGNING)
    db.reserve_presignature("k1", [SIGNERS], (), 0, "r1")
    db.start_session("s1", "presign", "k1", SIGNERS)
    assert db.recover().counts() == (2, 1)
    assert db.get_request("r1").state == st.FAILED and db.get_request("r2").state == st.FAILED
    assert db.get_presignature(pid).state == st.PRESIG_FAILED
    assert db.get_session("s1").state == "failed"


def test_recover_names_each_request_it_failed_and_its_state_before(db: Store) -> None:
    make_request(db, "r1")
    make_request(db, "r2")
    db.transition("r1", st.APPROVED)
    db.transition("r1", st.SIGNING)
    db.transition("r2", st.APPROVED)  # open, not in flight: recovery leaves it alone
    done = db.recover()
    assert [(r.request_id, r.key_id, r.from_state) for r in done.requests] == [("r1", "k1", st.SIGNING)]
    assert done.requests[0].created_at == db.get_request("r1").created_at
    assert db.get_request("r2").state == st.APPROVED


def test_recover_finds_in_flight_requests_through_the_state_index(db: Store) -> None:
    """Recovery runs on every start: it must cost what is in flight, not the whole history."""
    if db.dialect != SQLITE:
        pytest.skip("the plan is SQLite's (PostgreSQL picks by table statistics)")
    plan = db._rows("EXPLAIN QUERY PLAN " + STUCK_REQUESTS.replace(" FOR UPDATE", ""), (0,) * 6)
    detail = " ".join(str(r[3]) for r in plan)
    assert "USING INDEX requests_by_state" in detail and "SCAN requests" not in detail
