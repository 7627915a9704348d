"""RefreshKey through the coordinator over in-process signers: the coordinator owns the epoch.

A refresh commits on every signer and moves the key record; a signer unreachable at commit keeps
the key committing (signing held) until the scheduler's tick delivers the confirmations; a
refresh that breaks off leaves every signer and the key record on the old, working epoch.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from coordinator import store as st
from coordinator.errors import FailedPrecondition, Refused, Unavailable
from coordinator.service import CoordinatorService
from coordinator.signer_client import LocalSignerClient, SignerClient, SignerUnavailable
from coordinator.store import Store
from signer.chains.ethereum import Eip1559Tx
from signer.node.node import SignerNode
from signer.policy import KeyOperations
from tests.unit.node.test_key_epochs import cycling_primes

from .governance_fixtures import Clock, add_key, install_demo_governance, key_order, make_nodes, signed_change

pytestmark = pytest.mark.slow(15)  # refresh sessions at level 112
KEY_ID = "kr"
DAY = 86400


def tx(nonce: int) -> Eip1559Tx:
    return Eip1559Tx(1, nonce, 10**9, 30 * 10**9, 21000, "0x000000000000000000000000000000000000dEaD", 10**15)


@pytest.fixture(scope="module")
def clock() -> Clock:
    """One settable clock for the coordinator and the signers (scheduled refreshes count on it)."""
    return Clock(time.time())


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, clock: Clock
) -> Iterator[tuple[CoordinatorService, dict[int, SignerNode]]]:
    nodes = make_nodes(tmp_path_factory.mktemp("signers"), KEY_ID, clock)
    for p, n in nodes.items():
        n.primes = cycling_primes(p)
    clients: dict[int, SignerClient] = {p: LocalSignerClient(n) for p, n in nodes.items()}
    store = Store(Path(tmp_path_factory.mktemp("coord")) / "coordinator.db", clock=clock)
    add_key(store, KEY_ID)
    service = CoordinatorService(store, clients, level="112", scheduler_interval=0)
    install_demo_governance(service)
    yield service, nodes
    service.close()
    for n in nodes.values():
        n.close()


def order(service: CoordinatorService) -> bytes:
    """The demo admins' refresh order for the key's current epoch."""
    return key_order(service, "refresh", KEY_ID)


def audit_text(service: CoordinatorService) -> str:
    """The exported audit log, one JSON line per entry."""
    return "\n".join(service.export_audit())


def node_epochs(nodes: dict[int, SignerNode]) -> set[int]:
    return {n.key_share(KEY_ID).epoch for n in nodes.values()}


def test_refresh_commits_on_every_signer_and_moves_the_key_record(
    cluster: tuple[CoordinatorService, dict[int, SignerNode]],
) -> None:
    service, nodes = cluster
    before = service.get_key(KEY_ID)
    service.ensure_presignatures(KEY_ID, (1, 2), count=1)
    assert service.store.ready_presignatures(KEY_ID)
    after = service.refresh_key(KEY_ID, order(service), actor="admin-1")
    assert after.epoch == before.epoch + 1 and after.aux_epoch != before.aux_epoch
    assert after.public_key == before.public_key
    assert node_epochs(nodes) == {after.epoch}
    assert service.committing_epoch(KEY_ID) == 0
    assert service.store.ready_presignatures(KEY_ID) == []  # old-epoch presignatures are void
    assert all(n.presignature_ids(KEY_ID) == [] for n in nodes.values())
    seen = audit_text(service)
    for e in ("key_refresh_started", "key_refresh_confirmed", "key_refresh_committed"):
        assert e in seen
    row = service.sign_eth(KEY_ID, "after-refresh", (), tx(1))
    assert row.state == st.SIGNED, row.error


def test_a_signer_unreachable_at_commit_holds_signing_until_the_tick_commits_it(
    cluster: tuple[CoordinatorService, dict[int, SignerNode]], monkeypatch: pytest.MonkeyPatch
) -> None:
    service, nodes = cluster
    old = service.get_key(KEY_ID).epoch
    client = service.signers[3]

    def unreachable(*_: object) -> tuple[int, bool]:
        raise SignerUnavailable(3, "UNAVAILABLE: down at commit")

    monkeypatch.setattr(client, "commit_epoch", unreachable)
    key = service.refresh_key(KEY_ID, order(service), actor="admin-1")
    assert key.epoch == old and service.committing_epoch(KEY_ID) == old + 1
    assert nodes[1].key_share(KEY_ID).epoch == old + 1 and nodes[3].key_share(KEY_ID).epoch == old
    held = service.sign_eth(KEY_ID, "while-committing", (), tx(2))
    assert held.state == st.APPROVED  # held, not failed: it signs once the epoch is committed
    with pytest.raises(FailedPrecondition):
        service.ensure_presignatures(KEY_ID, (1, 2))
    with pytest.raises(FailedPrecondition):
        service.refresh_key(KEY_ID, order(service))
    service.tick()  # still unreachable: nothing changes
    assert service.committing_epoch(KEY_ID) == old + 1
    monkeypatch.undo()
    service.tick()
    assert service.committing_epoch(KEY_ID) == 0 and service.get_key(KEY_ID).epoch == old + 1
    assert node_epochs(nodes) == {old + 1}
    assert service.get_request(held.request_id).state == st.SIGNED


def test_the_scheduler_committing_the_same_epoch_meanwhile_does_not_fail_the_refresh(
    cluster: tuple[CoordinatorService, dict[int, SignerNode]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The RefreshKey call and the scheduler's tick both drive a key's commit (seen in CI: the
    tick finished the row first and the call answered INTERNAL, NotFound)."""
    service, nodes = cluster
    old = service.get_key(KEY_ID).epoch
    client = service.signers[3]
    real = client.commit_epoch
    results: list[bool] = []
    ticks: list[threading.Thread] = []

    def with_a_tick_meanwhile(*args: Any) -> tuple[int, bool]:
        if not ticks:  # the first delivery: the scheduler's tick runs the same commit now
            ticks.append(threading.Thread(target=lambda: results.append(service.key_refresh.commits.commit(KEY_ID))))
            ticks[0].start()
            ticks[0].join(timeout=2.0)  # unserialized, the tick finishes the whole commit here
        return real(*args)

    monkeypatch.setattr(client, "commit_epoch", with_a_tick_meanwhile)
    key = service.refresh_key(KEY_ID, order(service), actor="admin-1")
    ticks[0].join(timeout=30)
    assert key.epoch == old + 1 and service.committing_epoch(KEY_ID) == 0
    assert results == [True] and node_epochs(nodes) == {old + 1}


def test_a_refresh_that_breaks_off_leaves_every_signer_and_the_key_on_the_old_epoch(
    cluster: tuple[CoordinatorService, dict[int, SignerNode]], monkeypatch: pytest.MonkeyPatch
) -> None:
    service, nodes = cluster
    old = service.get_key(KEY_ID).epoch
    client = service.signers[2]
    assert isinstance(client, LocalSignerClient)
    deliver = client.deliver
    calls = iter(range(100))

    def flaky(*args: Any, **kw: Any) -> Any:
        if next(calls) == 2:  # the last round of the refresh
            raise SignerUnavailable(2, "UNAVAILABLE: lost in the last round")
        return deliver(*args, **kw)

    monkeypatch.setattr(client, "deliver", flaky)
    with pytest.raises(Unavailable):
        service.refresh_key(KEY_ID, order(service), actor="admin-1")
    monkeypatch.undo()
    assert service.get_key(KEY_ID).epoch == old and service.committing_epoch(KEY_ID) == 0
    assert node_epochs(nodes) == {old}
    assert "key_refresh_aborted" in audit_text(service)
    service.health.mark(2, True)
    row = service.sign_eth(KEY_ID, "after-abort", (), tx(3))
    assert row.state == st.SIGNED, row.error


def test_an_under_signed_or_stale_order_is_refused_before_any_session_and_audited(
    cluster: tuple[CoordinatorService, dict[int, SignerNode]],
) -> None:
    service, nodes = cluster
    key, before = service.get_key(KEY_ID), node_epochs(nodes)
    sessions = len(service.store.list_sessions())
    cases = {
        "key_order_quorum_not_met": key_order(service, "refresh", KEY_ID, admins=("admin-1",)),
        "key_order_missing": b"",
        "key_order_malformed": b"not an order",
        "key_order_mismatch": key_order(service, "reshare", KEY_ID, parties=(1, 2, 3), threshold=2),
    }
    for reason, raw in cases.items():
        with pytest.raises(Refused) as exc:
            service.refresh_key(KEY_ID, raw, actor="admin-1")
        assert exc.value.reason == reason and exc.value.message.startswith(reason)
    assert service.get_key(KEY_ID) == key and node_epochs(nodes) == before
    assert len(service.store.list_sessions()) == sessions  # no session started
    refusals = [e.view for e in service.audit.entries() if e.view.get("event") == "key_order_refused"]
    assert {v["reason"] for v in refusals} >= set(cases)


def test_a_second_refresh_or_reshare_of_a_key_while_one_runs_is_refused(
    cluster: tuple[CoordinatorService, dict[int, SignerNode]],
) -> None:
    """An admin's refresh and the scheduler's could start from the same epoch: one at a time."""
    service, nodes = cluster
    before, sessions = node_epochs(nodes), len(service.store.list_sessions())
    with service.key_refresh.commits.exclusive(KEY_ID):
        with pytest.raises(FailedPrecondition, match="is running"):
            service.refresh_key(KEY_ID, order(service), actor="admin-1")
        with pytest.raises(FailedPrecondition, match="is running"):
            service.key_refresh.refresh(KEY_ID, actor="scheduler", scheduled=True)
    assert node_epochs(nodes) == before and len(service.store.list_sessions()) == sessions


def test_the_scheduler_refreshes_on_the_policys_schedule_and_signers_refuse_one_not_due(
    cluster: tuple[CoordinatorService, dict[int, SignerNode]], clock: Clock
) -> None:
    """Last: it installs a policy with `refresh_every` and moves the shared clock a day on."""
    service, nodes = cluster
    now = int(clock())
    current = service.admin.governance.policy(now)
    assert current is not None
    scheduled = dataclasses.replace(
        current,
        version=current.version + 1,
        previous_hash=current.hash(),
        key_operations=KeyOperations(refresh_every=DAY),
    )
    service.propose_change("policy", signed_change(scheduled, now).to_json(), admin="admin-1")  # tightening
    old = service.get_key(KEY_ID).epoch
    service.tick()  # the key's last epoch is not a day old: nothing runs
    assert service.get_key(KEY_ID).epoch == old
    with pytest.raises(FailedPrecondition, match="refresh_not_due"):  # a coordinator refreshing at will
        service.key_refresh.refresh(KEY_ID, actor="scheduler", scheduled=True)
    assert node_epochs(nodes) == {old}
    clock.advance(DAY)
    service.tick()
    assert service.get_key(KEY_ID).epoch == old + 1 and node_epochs(nodes) == {old + 1}
    started = [e for e in service.audit.entries() if e.view.get("event") == "key_refresh_started"]
    assert started[-1].actor == "scheduler" and started[-1].view["authorized_by"] == ["schedule"]
    by_admins = [e.view for e in started if e.actor == "admin-1"]
    assert by_admins and all(v["authorized_by"] == ["admin-1", "admin-2"] and v["key_order"] for v in by_admins)
