"""Nonces through the coordinator's submit path over in-process signers (store/nonces.py).

Allocated nonces are distinct and consecutive under concurrent submits; a backend-supplied nonce a
live request holds is refused; a request that ended before signing leaves a gap the allocator
never refills, which an explicit nonce fills; a replacement (speed-up) is signed only under a
rule that names the kind and requires officers, and eth-account recovers both transactions.
"""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import pytest
from eth_account import Account

from coordinator import request_states as st
from coordinator import service as svc
from coordinator.request_encoding import tx_from_json
from coordinator.service import CoordinatorService
from coordinator.signer_client import LocalSignerClient, SignerClient
from coordinator.store import RequestRecord, Store
from signer.policy import REPLACEMENT, Condition, Group, PolicyDocument, Rule
from signer.policy import Action as Act

from .governance_fixtures import Clock, add_key, install_demo_governance, make_nodes, signed_change
from .test_lifecycle import KEY_ID, MEDIUM, SMALL, Harness, _tx, h

__all__ = ["h"]


def _nonce(row: RequestRecord) -> int:
    return tx_from_json(row.tx).nonce


def _supplied(h: Harness, value: int, nonce: int, idem: str, **kw: object) -> RequestRecord:
    return h.service.sign_eth(KEY_ID, idem, (0, 1), _tx(value, nonce=nonce), initiator="backend-1", **kw)  # type: ignore[arg-type]


def test_concurrent_submits_get_distinct_consecutive_nonces(h: Harness) -> None:
    rows: list[RequestRecord] = []
    lock = threading.Lock()

    def submit(i: int) -> None:
        row = h.submit(MEDIUM, f"concurrent-{i}")  # held for approval: nothing signs meanwhile
        with lock:
            rows.append(row)

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(_nonce(r) for r in rows) == list(range(8))
    assert all(r.nonce_allocated and r.state == st.PENDING_APPROVAL for r in rows)
    # Each intent (what officers approve) carries the allocated nonce, not the body's 0.
    assert {r.request_id: _nonce(r) for r in rows} == {
        r.request_id: h.service.lifecycle.store.get_request(r.request_id).tx["nonce"] for r in rows
    }
    again = h.submit(MEDIUM, "concurrent-3")  # a retry takes no new nonce
    assert again.request_id in {r.request_id for r in rows} and h.service.store.next_nonce(1, rows[0].from_address) == 8


def test_a_supplied_nonce_a_live_request_holds_is_refused(h: Harness) -> None:
    held = _supplied(h, MEDIUM, 5, "held-5")
    assert held.state == st.PENDING_APPROVAL
    with pytest.raises(svc.Refused) as exc:
        _supplied(h, MEDIUM + 1, 5, "other-5")  # another transaction, same nonce
    assert exc.value.reason == "nonce_in_use" and exc.value.code == "failed_precondition"
    assert held.request_id in str(exc.value)
    # The allocator continues after the highest nonce taken, never below it.
    assert _nonce(h.submit(MEDIUM, "after-5")) == 6


def test_a_gap_is_not_reused_by_the_allocator_and_an_explicit_nonce_fills_it(h: Harness) -> None:
    first = h.submit(MEDIUM, "gap-0")
    second = h.submit(MEDIUM, "gap-1")
    h.clock.advance(first.expires_at - h.clock() + 1)
    h.service.tick()
    assert h.service.get_request(first.request_id).state == st.EXPIRED
    assert h.service.get_request(second.request_id).state == st.EXPIRED
    assert _nonce(h.submit(MEDIUM, "gap-2")) == 2  # 0 and 1 stay gaps: never handed out silently
    filled = _supplied(h, SMALL, 0, "fill-0")  # the operator fills nonce 0 explicitly
    assert filled.state == st.SIGNED and _nonce(filled) == 0


def _with_replacement_rule(h: Harness, action: Act) -> None:
    old: PolicyDocument = h.service.lifecycle.governance.require(int(h.clock()))[1]
    rule = Rule(f"speed-up-{action.kind}", Condition(kinds=frozenset({REPLACEMENT})), action)
    others = tuple(r for r in old.rules if not r.rule_id.startswith("speed-up"))
    new = dataclasses.replace(old, version=old.version + 1, previous_hash=old.hash(), rules=(rule, *others))
    h.service.propose_change("policy", signed_change(new, int(h.clock())).to_json(), admin="admin-1")
    h.clock.advance(3600)  # a new rule loosens: it waits for the change delay
    h.service.tick()
    assert h.service.get_governance().policy_version == new.version


def test_a_replacement_needs_its_own_rule_and_officers(h: Harness) -> None:
    original = _supplied(h, SMALL, 3, "orig-3")
    assert original.state == st.SIGNED
    faster = dataclasses.replace(_tx(SMALL, nonce=0), max_fee_per_gas=60 * 10**9, max_priority_fee_per_gas=3 * 10**9)

    def replace(idem: str) -> RequestRecord:
        return h.service.sign_eth(KEY_ID, idem, (0, 1), faster, initiator="backend-1", replaces=original.request_id)

    # No rule names the kind: blocked, though the same transfer as a withdrawal would be automatic.
    blocked = replace("speed-up-1")
    assert (blocked.kind, blocked.state, blocked.policy_reason) == (REPLACEMENT, st.BLOCKED, "no_matching_rule")
    assert _nonce(blocked) == 3 and blocked.replaces == original.request_id  # the replaced request's nonce
    # A rule that would sign it automatically is not enough: a second transaction for a nonce needs officers.
    _with_replacement_rule(h, Act("allow"))
    assert replace("speed-up-2").policy_reason == "replacement_needs_approval"
    _with_replacement_rule(h, Act("require", Group("officers", 2)))
    row = replace("speed-up-3")
    assert row.state == st.PENDING_APPROVAL
    h.service.approve(row.request_id, h.approval(row, "officer-1"), officer="officer-1")
    done = h.service.approve(row.request_id, h.approval(row, "officer-2"), officer="officer-2")
    assert done.state == st.SIGNED and done.raw_tx != original.raw_tx
    for signed in (original, done):
        assert Account.recover_transaction(signed.raw_tx) == original.from_address
    # Only an explicit replacement names a nonce in use, and only a live request's.
    with pytest.raises(svc.Refused):
        _supplied(h, SMALL + 1, 3, "plain-3")
    with pytest.raises(svc.InvalidRequest):  # a replacement takes the replaced nonce, no other
        h.service.sign_eth(
            KEY_ID, "speed-up-4", (0, 1), _tx(SMALL, nonce=4), initiator="backend-1", replaces=original.request_id
        )
    for huge in (_tx(SMALL, nonce=1 << 63), dataclasses.replace(_tx(SMALL), chain_id=1 << 63)):
        with pytest.raises(svc.InvalidRequest):  # the store indexes both as signed 64-bit integers
            h.service.sign_eth(KEY_ID, "huge", (0, 1), huge, initiator="backend-1")
    with pytest.raises(svc.NotFound):  # a blocked request holds no nonce: there is nothing to replace
        h.service.sign_eth(KEY_ID, "speed-up-5", (0, 1), faster, initiator="backend-1", replaces=blocked.request_id)


def test_two_coordinator_services_on_one_postgresql_database_never_share_a_nonce(
    tmp_path: Path, postgres_url: str
) -> None:
    clock = Clock()
    nodes = make_nodes(tmp_path / "signers", KEY_ID, clock)
    clients = {p: LocalSignerClient(n) for p, n in nodes.items()}
    stores = [Store(postgres_url, home=tmp_path, replica=name, clock=clock) for name in ("a", "b")]
    add_key(stores[0], KEY_ID)
    services = [
        CoordinatorService(s, dict[int, SignerClient](clients), level="112", scheduler_interval=0) for s in stores
    ]
    install_demo_governance(services[0])
    rows: list[RequestRecord] = []
    lock = threading.Lock()

    def submit(service: CoordinatorService, i: int) -> None:
        row = service.sign_eth(KEY_ID, f"pg-{i}", (0, 1), _tx(MEDIUM), initiator="backend-1", allocate_nonce=True)
        with lock:
            rows.append(row)

    threads = [threading.Thread(target=submit, args=(services[i % 2], i)) for i in range(10)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(_nonce(r) for r in rows) == list(range(10))
        assert {r.state for r in rows} == {st.PENDING_APPROVAL}
    finally:
        for service in services:
            service.close()
        for s in stores:
            s.close()
        for n in nodes.values():
            n.close()


class Killed(Exception):
    """The coordinator process dies here."""


def test_a_crash_after_the_allocation_before_the_commit_loses_no_nonce(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = h.submit(MEDIUM, "before")
    real = h.service.store.create_request

    def die(**kw: object) -> object:
        real(**kw)  # type: ignore[arg-type]  # the row is written inside the open transaction...
        raise Killed  # ...and the process dies before the commit

    monkeypatch.setattr(h.service.store, "create_request", die)
    with pytest.raises(Killed):
        h.submit(MEDIUM, "crashed")
    monkeypatch.undo()
    assert [r.request_id for r in h.service.list_requests()] == [first.request_id]  # nothing half-written
    retried = h.submit(MEDIUM, "crashed")  # the backend retries: the nonce was not burnt
    assert (_nonce(first), _nonce(retried)) == (0, 1)
