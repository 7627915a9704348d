"""Governance storage: installed state and the ordered delivery log with its acknowledgements."""

from __future__ import annotations

import pytest

from coordinator import store as st
from coordinator.store import Store


def test_governance_state_and_delivery_log(db: Store) -> None:
    assert db.get_governance("policy") is None
    seq = db.put_governance("policy", b"v1", ("policy", b"change-1"))
    assert db.get_governance("policy") == b"v1" and seq == 1
    assert db.put_governance("freeze", b"state") is None
    db.ack_governance(1, 2)
    db.ack_governance(1, 1)
    (entry,) = db.governance_log()
    assert (entry.kind, entry.payload, entry.acked) == ("policy", b"change-1", {1, 2})
    with pytest.raises(st.StoreError):
        db.put_governance("other", b"x")
