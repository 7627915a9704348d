"""The request state machine: the table of named moves (request_states.py) and the lifecycle's
refusal of a move the table does not allow, before anything is written."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from coordinator import request_states as rs
from coordinator import store as st
from coordinator.errors import Internal
from coordinator.service import CoordinatorService
from coordinator.signer_client import LocalSignerClient, SignerClient
from coordinator.store import KeyRecord, Store
from signer.tss.errors import InternalError


def test_the_store_checks_the_same_table() -> None:
    assert st.TRANSITIONS is rs.TRANSITIONS  # one home: the store imports the lifecycle's table
    assert not set(rs.TRANSITIONS) & rs.FINAL_STATES  # a final state has no move


def test_the_store_refuses_a_move_outside_the_table(service: CoordinatorService) -> None:
    store = service.store
    store.create_request(request_id="r0", key_id="k1", idempotency_key="i0", body_hash="b", tx={"to": "x"}, path=())
    with pytest.raises(st.InvalidTransition, match="submitted -> signing is not allowed"):
        store.transition("r0", rs.SIGNING)  # signing only after an approval (automatic or officers')
    assert [e.state for e in store.events("r0")] == [rs.SUBMITTED]


def test_every_move_has_its_sources() -> None:
    assert {m.name for m in rs.MOVES} == {
        "submit",
        "await_approvals",
        "record_approval",
        "approve",
        "time_lock",
        "claim",
        "attempt",
        "sign",
        "fail",
        "recover",
        "block",
        "reject",
        "expire",
    }
    assert rs.SIGN.sources == {rs.SIGNING} and rs.CLAIM.sources == {rs.APPROVED, rs.TIME_LOCKED}
    assert rs.REJECT.sources == set(rs.OPEN_STATES) and rs.SIGNING not in rs.BLOCK.sources


@pytest.mark.parametrize(
    ("move", "sources"),
    [
        (rs.SIGN, (rs.APPROVED,)),  # never signed without a claim
        (rs.CLAIM, (rs.PENDING_APPROVAL,)),  # never signed without the quorum
        (rs.REJECT, (rs.SIGNING,)),  # a request being signed is not rejected
        (rs.FAIL, (rs.SIGNED,)),
        (rs.APPROVE, (rs.SUBMITTED, rs.TIME_LOCKED)),  # every source must allow it
        (rs.EXPIRE, ()),
    ],
)
def test_a_move_the_table_does_not_allow_raises(move: rs.Move, sources: tuple[str, ...]) -> None:
    with pytest.raises(rs.IllegalTransition, match=f"move '{move.name}'"):
        rs.check_move(move, sources)


def test_allowed_moves_pass() -> None:
    rs.check_move(rs.CLAIM, (rs.APPROVED, rs.TIME_LOCKED))
    rs.check_move(rs.ATTEMPT, (rs.SIGNING,))
    assert issubclass(rs.IllegalTransition, InternalError)  # our bug, never a peer's


@pytest.fixture
def service(tmp_path: Path) -> Iterator[CoordinatorService]:
    store = Store(tmp_path / "coordinator.db")
    store.add_key(KeyRecord("k1", "hot", 2, (1, 2), "112", b"\x02" + b"\x11" * 32, b"\x22" * 32, 0, b"aux", 0.0))
    # Clients that are never called: these tests move requests only, and nothing runs in the background.
    unused: dict[int, SignerClient] = {p: LocalSignerClient(object()) for p in (1, 2)}
    service = CoordinatorService(store, unused, level="112", scheduler_interval=0)
    yield service
    service.close()
    store.close()


def test_the_lifecycle_refuses_an_illegal_move_before_writing(service: CoordinatorService) -> None:
    store = service.store
    store.create_request(request_id="r1", key_id="k1", idempotency_key="i1", body_hash="b", tx={"to": "x"}, path=())
    store.transition("r1", rs.APPROVED, "approved")
    signing = store.transition("r1", rs.SIGNING, "claimed")
    audited = len(service.audit.entries())
    with pytest.raises(rs.IllegalTransition, match="'block'"):
        service.lifecycle.block(signing, "no_policy")  # a request being signed is never blocked
    assert store.get_request("r1").state == rs.SIGNING
    assert [e.state for e in store.events("r1")] == [rs.SUBMITTED, rs.APPROVED, rs.SIGNING]
    assert len(service.audit.entries()) == audited


def test_a_lost_race_is_the_stores_refusal_not_an_illegal_move(service: CoordinatorService) -> None:
    store = service.store
    store.create_request(request_id="r2", key_id="k1", idempotency_key="i2", body_hash="b", tx={"to": "x"}, path=())
    with pytest.raises(st.InvalidTransition, match="is submitted, not signing"):
        service.lifecycle.fail("r2", Internal("not being signed"))  # legal from signing; r2 is not there
    assert [e.state for e in store.events("r2")] == [rs.SUBMITTED]
