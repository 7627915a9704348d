"""After a restart the store fails what was in flight and never makes a reserved presignature ready."""

from __future__ import annotations

from coordinator import store as st
from coordinator.store import Store

from .support import SIGNERS, make_request, presigs


def test_recover_fails_in_flight_requests_and_reserved_presignatures(db: Store) -> None:
    (pid,) = presigs(db, 1)
    make_request(db, "r1")
    make_request(db, "r2")
    db.transition("r1", st.APPROVED)
    db.transition("r1", st.SIGNING)
    db.reserve_presignature("k1", [SIGNERS], (), 0, "r1")
    db.start_session("s1", "presign", "k1", SIGNERS)
    assert db.recover() == (2, 1)
    assert db.get_request("r1").state == st.FAILED and db.get_request("r2").state == st.FAILED
    assert db.get_presignature(pid).state == st.PRESIG_FAILED
    assert db.get_session("s1").state == "failed"
