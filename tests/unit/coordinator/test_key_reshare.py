"""ReshareKey through the coordinator over in-process signers (coordinator/key_reshare.py, epoch_commit.py).

A lost signer is replaced from t dealers: the key keeps its public key, moves to the new committee
only when every party of S ∪ P' adopted, runs aux info for it and signs through the new signer; the
index that left is retired and never reused; refusals come before anything runs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from coordinator import store as st
from coordinator.errors import FailedPrecondition, InvalidRequest, Refused, Unavailable
from coordinator.service import CoordinatorService
from coordinator.signer_client import LocalSignerClient, SessionParams, SignerClient, SignerUnavailable
from coordinator.store import Store
from signer.chains.ethereum import Eip1559Tx
from signer.node.node import SignerNode
from signer.node.sessions import StepResult
from tests.unit.node.support import Clock
from tests.unit.node.test_key_reshare import make_cluster

from .governance_fixtures import add_key, install_demo_governance, key_order, trusted_admins

pytestmark = pytest.mark.slow(30)  # three aux info runs at level 112
KEY_ID = "kr"


def tx(nonce: int) -> Eip1559Tx:
    return Eip1559Tx(1, nonce, 10**9, 30 * 10**9, 21000, "0x000000000000000000000000000000000000dEaD", 10**15)


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[CoordinatorService, dict[int, SignerNode], dict[int, LocalSignerClient]]]:
    clock = Clock(time.time())  # one clock for the coordinator and the signers (key orders are timed)
    nodes = make_cluster(tmp_path_factory.mktemp("signers"), clock, admins=trusted_admins(), key_id=KEY_ID)
    local = {p: LocalSignerClient(n) for p, n in nodes.items()}
    clients: dict[int, SignerClient] = dict(local)
    store = Store(Path(tmp_path_factory.mktemp("coord")) / "coordinator.db", clock=clock)
    add_key(store, KEY_ID)
    service = CoordinatorService(store, clients, level="112", scheduler_interval=0)
    install_demo_governance(service)
    yield service, nodes, local
    service.close()
    for n in nodes.values():
        n.close()


def order(service: CoordinatorService, parties: tuple[int, ...], t: int = 2, dealers: tuple[int, ...] = ()) -> bytes:
    """The demo admins' reshare order to `parties` at `t` from the key's current epoch."""
    return key_order(service, "reshare", KEY_ID, parties=parties, threshold=t, dealers=dealers)


def test_a_lost_signer_is_replaced_and_the_key_signs_through_the_new_one(
    cluster: tuple[CoordinatorService, dict[int, SignerNode], dict[int, LocalSignerClient]],
) -> None:
    service, nodes, local = cluster
    before = service.get_key(KEY_ID)
    service.ensure_presignatures(KEY_ID, (1, 2), count=1)
    local[3].down = True  # signer 3 is lost
    service.health.mark(3, False)
    with pytest.raises(Unavailable, match=r"new committee parties \[3\] unreachable"):
        service.reshare_key(KEY_ID, (1, 2, 3), 2, (1, 2), key_order=order(service, (1, 2, 3)))
    key = service.reshare_key(KEY_ID, (1, 2, 4), 2, key_order=order(service, (1, 2, 4)), actor="admin-1")
    assert key.parties == (1, 2, 4) and key.threshold == 2 and key.epoch == before.epoch + 1
    assert key.public_key == before.public_key and key.retired == (3,)
    assert key.aux_epoch  # aux info ran for the new committee
    assert service.store.ready_presignatures(KEY_ID) == []  # old-epoch presignatures are void
    assert nodes[4].key_share(KEY_ID).parties == (1, 2, 4)
    audit = "\n".join(service.export_audit())
    for event in ("key_reshare_started", "key_reshare_confirmed", "key_reshare_committed", "key_aux_ready"):
        assert event in audit
    local[1].down = True  # sign through {2, 4}
    service.health.mark(1, False)
    row = service.sign_eth(KEY_ID, "after-reshare", (), tx(1))
    assert row.state == st.SIGNED, row.error
    local[1].down = False
    service.health.mark(1, True)


def test_a_retired_index_or_an_unknown_signer_is_refused_before_anything_runs(
    cluster: tuple[CoordinatorService, dict[int, SignerNode], dict[int, LocalSignerClient]],
) -> None:
    service, _, _ = cluster
    key = service.get_key(KEY_ID)
    cases = {
        (1, 2, 3): "party 3 left key kr at an earlier reshare; an index is never reused",
        (1, 2, 5): r"no signer configured for parties \[5\]",
        (1, 1, 2): "distinct party indices",
    }
    for parties, reason in cases.items():  # refused before the order is even read
        with pytest.raises(InvalidRequest, match=reason):
            service.reshare_key(KEY_ID, parties, 2, key_order=b"")
    with pytest.raises(InvalidRequest, match="new threshold"):
        service.reshare_key(KEY_ID, (1, 2, 4), 4, key_order=b"")
    # A plan that passes still needs the admins' order for exactly it (the signers' reasons).
    orders = {
        "key_order_missing": b"",
        "key_order_quorum_not_met": key_order(service, "reshare", KEY_ID, ("admin-1",), parties=(1, 2, 4), threshold=2),
        "key_order_mismatch": order(service, (1, 2, 4), t=3),
    }
    for reason, raw in orders.items():
        with pytest.raises(Refused) as exc:
            service.reshare_key(KEY_ID, (1, 2, 4), 2, key_order=raw)
        assert exc.value.reason == reason
    with pytest.raises(Refused) as exc:  # the order names other dealers than the coordinator picks
        service.reshare_key(KEY_ID, (1, 2, 4), 2, (1, 2), key_order=order(service, (1, 2, 4), dealers=(2, 4)))
    assert exc.value.reason == "key_order_mismatch"
    assert service.get_key(KEY_ID) == key


def test_a_reshare_whose_commit_misses_a_party_holds_the_old_record_until_the_tick(
    cluster: tuple[CoordinatorService, dict[int, SignerNode], dict[int, LocalSignerClient]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    service, nodes, local = cluster
    before = service.get_key(KEY_ID)

    def unreachable(*_: object) -> tuple[int, bool]:
        raise SignerUnavailable(4, "UNAVAILABLE: down at commit")

    monkeypatch.setattr(local[4], "commit_epoch", unreachable)
    key = service.reshare_key(KEY_ID, (1, 2, 4), 2, (1, 2), key_order=order(service, (1, 2, 4)))  # new shares
    assert key == before and service.committing_epoch(KEY_ID) == before.epoch + 1
    assert nodes[1].key_share(KEY_ID).epoch == before.epoch + 1 and nodes[4].key_share(KEY_ID).epoch == before.epoch
    monkeypatch.undo()
    service.tick()
    after = service.get_key(KEY_ID)
    assert service.committing_epoch(KEY_ID) == 0 and after.epoch == before.epoch + 1 and after.aux_epoch


def test_requests_wait_for_the_new_committees_aux_info_and_sign_once_the_tick_ran_it(
    cluster: tuple[CoordinatorService, dict[int, SignerNode], dict[int, LocalSignerClient]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    service, _, local = cluster
    before = service.get_key(KEY_ID)
    start = local[4].start_session

    def no_aux(session_id: bytes, protocol: str, parties: tuple[int, ...], params: SessionParams) -> StepResult:
        if protocol == "aux":
            raise SignerUnavailable(4, "UNAVAILABLE: down for aux")
        return start(session_id, protocol, parties, params)

    monkeypatch.setattr(local[4], "start_session", no_aux)
    key = service.reshare_key(KEY_ID, (1, 2, 4), 2, (1, 2), key_order=order(service, (1, 2, 4), dealers=(1, 2)))
    assert key.epoch == before.epoch + 1 and key.aux_epoch == b""  # committed, aux info still due
    with pytest.raises(FailedPrecondition, match="waits for aux info"):
        service.ensure_presignatures(KEY_ID, (1, 2))
    held = service.sign_eth(KEY_ID, "waits-for-aux", (), tx(2))
    assert held.state == st.APPROVED  # held, not failed
    monkeypatch.undo()
    service.health.mark(4, True)
    service.tick()
    assert service.get_key(KEY_ID).aux_epoch
    assert service.get_request(held.request_id).state == st.SIGNED
