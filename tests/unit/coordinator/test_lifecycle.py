"""The request lifecycle over in-process signers with an injected clock: policy tiers, approvals,
time locks, expiry, idempotency, freeze, governance changes, cold sweeps and the audit trail.

Signers are real `SignerNode`s (fixture shares, level 112) behind `LocalSignerClient`s, enforcing
the same policy for themselves; signatures are checked with eth-account.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eth_account import Account
from structlog.testing import capture_logs

from coordinator import audit, signing
from coordinator import service as svc
from coordinator import store as st
from coordinator.service import CoordinatorService, reject_message
from coordinator.signer_client import LocalSignerClient, SignerClient
from coordinator.store import RequestRecord, Store
from signer.chains.erc20 import TRANSFER, encode_token_call
from signer.chains.ethereum import Eip1559Tx, address_of
from signer.node.node import SignerNode
from signer.policy import (
    ALL_KEYS,
    Intent,
    Limit,
    PolicyDocument,
    UnfreezeOrder,
    sign_approval,
    sign_freeze,
)
from signer.tss import hd
from signer.tss.curve import Point

from .governance_fixtures import (
    COLD,
    Clock,
    add_key,
    genesis_changes,
    install_demo_governance,
    key,
    make_nodes,
    signed_change,
)

KEY_ID = "k-life"
TO = "0x000000000000000000000000000000000000dEaD"
SMALL, MEDIUM, LARGE = 10**16, 10**18, 20 * 10**18  # demo tiers: <= 0.1 ETH auto, <= 10 ETH 2 of 3, above + lock


def _tx(value: int, nonce: int = 0, to: str = TO, data: bytes = b"") -> Eip1559Tx:
    return Eip1559Tx(1, nonce, 10**9, 30 * 10**9, 21000, to, value, data)


@dataclass
class Harness:
    clock: Clock
    nodes: dict[int, SignerNode]
    clients: dict[int, LocalSignerClient]
    service: CoordinatorService

    def submit(
        self, value: int, idem: str, *, initiator: str = "backend-1", kind: str = "withdrawal", to: str = TO
    ) -> RequestRecord:
        return self.service.sign_eth(KEY_ID, idem, (0, 1), _tx(value, to=to), kind=kind, initiator=initiator)

    def approval(
        self, row: RequestRecord, officer: str, signer: Ed25519PrivateKey | None = None, ttl: int = 86400
    ) -> bytes:
        intent = Intent.from_bytes(row.intent)
        return sign_approval(signer or key(officer), officer, intent, int(self.clock()), ttl).to_bytes()

    def approve(self, row: RequestRecord, officer: str) -> RequestRecord:
        return self.service.approve(row.request_id, self.approval(row, officer), officer=officer)

    def states(self, row: RequestRecord) -> list[str]:
        return [e.state for e in self.service.store.events(row.request_id)]


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    clock = Clock()
    nodes = make_nodes(tmp_path / "signers", KEY_ID, clock)
    clients = {p: LocalSignerClient(n) for p, n in nodes.items()}
    store = Store(tmp_path / "coordinator.db", clock=clock)
    add_key(store, KEY_ID)
    service = CoordinatorService(store, dict[int, SignerClient](clients), level="112", scheduler_interval=0)
    install_demo_governance(service)
    yield Harness(clock, nodes, clients, service)
    service.close()
    store.close()
    for n in nodes.values():
        n.close()


def _assert_signed(row: RequestRecord) -> None:
    assert row.state == st.SIGNED, (row.state, row.error, row.policy_reason)
    assert Account.recover_transaction(row.raw_tx) == row.from_address


# --- fail closed ---------------------------------------------------------------------------------------
def test_no_policy_installed_refuses_to_sign(tmp_path: Path) -> None:
    clock = Clock()
    nodes = make_nodes(tmp_path / "signers", KEY_ID, clock)
    store = Store(tmp_path / "c.db", clock=clock)
    add_key(store, KEY_ID)
    service = CoordinatorService(
        store, {p: LocalSignerClient(n) for p, n in nodes.items()}, level="112", scheduler_interval=0
    )
    try:
        with pytest.raises(svc.FailedPrecondition, match="no policy installed"):
            service.sign_eth(KEY_ID, "idem", (), _tx(SMALL), initiator="backend-1")
        assert store.list_requests() == []
        registry_json, policy_json = genesis_changes(int(clock()))
        with pytest.raises(svc.FailedPrecondition, match="registry"):
            service.propose_change("policy", policy_json)  # the policy needs the registry first
        service.propose_change("registry", registry_json)
        with pytest.raises(svc.FailedPrecondition, match="no policy installed"):
            service.sign_eth(KEY_ID, "idem", (), _tx(SMALL), initiator="backend-1")
    finally:
        service.close()
        for n in nodes.values():
            n.close()


# --- tiers -----------------------------------------------------------------------------------------------
def test_small_withdrawal_signs_automatically(h: Harness) -> None:
    row = h.submit(SMALL, "small-1")
    _assert_signed(row)
    assert h.states(row) == ["submitted", "approved", "signing", "signing", "signed"]  # claimed, then attempt 1
    assert row.policy_reason == "allowed" and row.rule_id == "small-auto" and row.approved_by == ()
    intent = Intent.from_bytes(row.intent)
    assert intent.initiator == "backend-1" and intent.amount == SMALL and intent.request_id == row.request_id
    assert row.intent_digest == intent.digest() and row.expires_at == int(h.clock()) + 24 * 3600


def test_medium_withdrawal_needs_two_officers(h: Harness) -> None:
    row = h.submit(MEDIUM, "medium-1")
    assert row.state == st.PENDING_APPROVAL and row.policy_reason == "approvals_pending"
    assert row.rule_id == "medium-2-of-officers"
    row = h.approve(row, "officer-1")
    assert row.state == st.PENDING_APPROVAL and row.approved_by == ("officer-1",)
    row = h.approve(row, "officer-3")
    _assert_signed(row)
    assert row.approved_by == ("officer-1", "officer-3")
    assert h.states(row) == [
        "submitted",
        "pending_approval",
        "pending_approval",  # officer-1's approval
        "pending_approval",  # officer-3's approval
        "approved",
        "signing",
        "signing",
        "signed",
    ]


def test_large_withdrawal_waits_for_its_time_lock(h: Harness) -> None:
    row = h.submit(LARGE, "large-1")
    row = h.approve(row, "officer-1")
    h.clock.advance(10)
    row = h.approve(row, "officer-2")
    assert row.state == st.TIME_LOCKED and row.time_lock_until == int(h.clock()) + 300
    h.clock.advance(299)
    h.service.tick()
    assert h.service.get_request(row.request_id).state == st.TIME_LOCKED
    h.clock.advance(1)
    h.service.tick()
    row = h.service.get_request(row.request_id)
    _assert_signed(row)
    assert h.states(row)[-5:] == ["approved", "time_locked", "signing", "signing", "signed"]


def test_block_rule_and_limits_block_with_the_reason(h: Harness) -> None:
    row = h.submit(101 * 10**18, "too-big")
    assert row.state == st.BLOCKED and row.policy_reason == "limit_exceeded:eth-per-transaction"
    assert row.final
    with pytest.raises(svc.FailedPrecondition):
        h.approve(row, "officer-1")


def test_undecodable_transaction_is_blocked(h: Harness) -> None:
    row = h.service.sign_eth(KEY_ID, "contract-call", (), _tx(0, data=b"\x12\x34\x56\x78"), initiator="backend-1")
    assert row.state == st.BLOCKED and row.policy_reason == "undecodable_transaction" and row.intent == b""


# --- expiry and idempotency ------------------------------------------------------------------------------
def test_stale_request_expires(h: Harness) -> None:
    row = h.submit(MEDIUM, "stale-1")
    approval = h.approval(row, "officer-1")
    h.clock.advance(24 * 3600 - 1)
    h.service.tick()
    assert h.service.get_request(row.request_id).state == st.PENDING_APPROVAL
    h.clock.advance(1)
    h.service.tick()
    row = h.service.get_request(row.request_id)
    assert row.state == st.EXPIRED and row.final
    with pytest.raises(svc.FailedPrecondition, match="expired"):
        h.service.approve(row.request_id, approval, officer="officer-1")


def test_same_idempotency_key_and_body_is_the_same_request(h: Harness) -> None:
    row = h.submit(MEDIUM, "idem-1")
    again = h.service.sign_eth(
        KEY_ID, "idem-1", (0, 1), dataclasses.replace(_tx(MEDIUM), to=TO.lower()), initiator="backend-1"
    )
    assert again.request_id == row.request_id and again.state == st.PENDING_APPROVAL
    for value, kind in ((MEDIUM + 1, "withdrawal"), (MEDIUM, "cold_sweep")):
        with pytest.raises(svc.AlreadyExists):
            h.submit(value, "idem-1", initiator="backend-1", kind=kind)
    # Keys are per backend: another backend's "idem-1" is a request of its own.
    theirs = h.submit(MEDIUM, "idem-1", initiator="backend-2")
    assert theirs.request_id != row.request_id and theirs.initiator == "backend-2"
    signed = h.submit(SMALL, "idem-2")
    assert h.submit(SMALL, "idem-2") == signed
    assert len(h.service.list_requests()) == 3


# --- approvals that must be refused --------------------------------------------------------------------
def test_forged_unknown_duplicate_self_and_replayed_approvals_are_refused(h: Harness) -> None:
    row = h.submit(MEDIUM, "bypass-1", initiator="officer-2")  # an officer's name on a backend certificate
    other = h.submit(MEDIUM, "bypass-2")

    def refused(approval: bytes, officer: str, target: RequestRecord = row) -> svc.Refused:
        with pytest.raises(svc.Refused) as exc:
            h.service.approve(target.request_id, approval, officer=officer)
        return exc.value

    forged = refused(h.approval(row, "officer-1", signer=Ed25519PrivateKey.generate()), "officer-1")
    assert (forged.reason, forged.code) == ("bad_signature", "permission_denied")
    assert refused(h.approval(row, "officer-9"), "officer-9").reason == "unknown_officer"
    assert refused(h.approval(row, "admin-1"), "admin-1").reason == "not_an_officer"
    assert refused(h.approval(row, "officer-2"), "officer-2").reason == "self_approval"
    assert refused(h.approval(row, "officer-1"), "officer-3").reason == "officer_mismatch"
    replayed = refused(h.approval(other, "officer-1"), "officer-1")
    assert (replayed.reason, replayed.code) == ("intent_mismatch", "invalid_argument")
    assert refused(b"\x00garbage", "officer-1").code == "invalid_argument"
    short_lived = h.approval(row, "officer-3", ttl=60)
    h.clock.advance(60)
    expired = refused(short_lived, "officer-3")
    assert (expired.reason, expired.code) == ("approval_expired", "failed_precondition")

    first = h.approval(row, "officer-1")
    assert h.service.approve(row.request_id, first, officer="officer-1").approved_by == ("officer-1",)
    assert h.service.approve(row.request_id, first, officer="officer-1").approved_by == ("officer-1",)  # no-op
    h.clock.advance(1)
    with pytest.raises(svc.AlreadyExists, match="duplicate_officer"):
        h.service.approve(row.request_id, h.approval(row, "officer-1"), officer="officer-1")
    assert h.service.get_request(row.request_id).state == st.PENDING_APPROVAL
    refusals = [e.view for e in h.service.audit.entries() if e.view.get("event") == "approval_refused"]
    assert {r["reason"] for r in refusals} >= {"bad_signature", "self_approval", "duplicate_officer", "intent_mismatch"}


def test_an_officer_rejects_with_a_signature(h: Harness) -> None:
    row = h.submit(MEDIUM, "reject-1")
    h.approve(row, "officer-1")
    bad = Ed25519PrivateKey.generate().sign(reject_message(row.request_id, row.intent_digest))
    with pytest.raises(svc.Refused, match="bad_signature"):
        h.service.reject(row.request_id, "officer-2", bad, "no", officer="officer-2")
    signature = key("officer-2").sign(reject_message(row.request_id, row.intent_digest))
    with pytest.raises(svc.Refused, match="officer_mismatch"):
        h.service.reject(row.request_id, "officer-2", signature, "no", officer="officer-1")
    row = h.service.reject(row.request_id, "officer-2", signature, "unknown destination", officer="officer-2")
    assert row.state == st.REJECTED and row.final and "officer-2" in row.error
    with pytest.raises(svc.FailedPrecondition):
        h.approve(row, "officer-3")


# --- freeze ---------------------------------------------------------------------------------------------
def test_freeze_blocks_signing_and_unfreeze_needs_a_quorum(h: Harness) -> None:
    held = h.submit(MEDIUM, "before-freeze")
    order = sign_freeze(key("officer-1"), "officer-1", ALL_KEYS, int(h.clock()))
    with pytest.raises(svc.Refused, match="officer_mismatch"):
        h.service.freeze(order.to_bytes(), officer="officer-2")
    view = h.service.freeze(order.to_bytes(), officer="officer-1")
    assert view.frozen_scopes == ("*",)
    for client in h.clients.values():  # delivered: applying the same order again changes nothing
        assert client.apply_freeze_order(order.to_bytes(), False).frozen_scopes == ("*",)

    blocked = h.submit(SMALL, "during-freeze")
    assert blocked.state == st.BLOCKED and blocked.policy_reason == "frozen"
    h.approve(held, "officer-1")
    held = h.approve(held, "officer-2")
    assert held.state == st.APPROVED and held.policy_reason == "frozen"  # approved, not signed
    h.service.tick()
    assert h.service.get_request(held.request_id).state == st.APPROVED

    h.clock.advance(5)
    one = UnfreezeOrder(ALL_KEYS, order.issued_at, int(h.clock())).signed(key("officer-1"), "officer-1")
    with pytest.raises(svc.Refused, match="unfreeze_quorum_not_met"):
        h.service.unfreeze(one.to_bytes(), officer="officer-1")
    assert h.service.get_governance().frozen_scopes == ("*",)
    two = one.signed(key("officer-3"), "officer-3")
    assert h.service.unfreeze(two.to_bytes(), officer="officer-3").frozen_scopes == ()
    h.service.tick()
    _assert_signed(h.service.get_request(held.request_id))
    _assert_signed(h.submit(SMALL, "after-unfreeze"))


def test_a_signer_that_missed_a_freeze_gets_it_when_back(h: Harness) -> None:
    h.clients[3].down = True
    h.service.live_signers((3,), fresh=True)
    order = sign_freeze(key("officer-2"), "officer-2", KEY_ID, int(h.clock()))
    h.service.freeze(order.to_bytes(), officer="officer-2")
    assert h.service.store.governance_log()[-1].acked == {1, 2}
    h.clients[3].down = False
    h.service.live_signers((3,), fresh=True)
    h.service.tick()
    assert all(e.acked == {1, 2, 3} for e in h.service.store.governance_log())
    assert h.clients[3].apply_freeze_order(order.to_bytes(), False).frozen_scopes == (KEY_ID,)


# --- governance changes ----------------------------------------------------------------------------------
def _policy(h: Harness) -> PolicyDocument:
    current = h.service.governance.policy(int(h.clock()))
    assert current is not None
    return current


def test_tightening_takes_effect_at_once_and_blocks_open_requests(h: Harness) -> None:
    open_row = h.submit(MEDIUM, "under-v1")
    old = _policy(h)
    limits = tuple(
        dataclasses.replace(x, max_amount=5 * 10**18) if x.limit_id == "eth-per-transaction" else x for x in old.limits
    )
    new = dataclasses.replace(old, version=2, previous_hash=old.hash(), limits=limits)
    with pytest.raises(svc.Refused) as exc:
        h.service.propose_change("policy", signed_change(new, int(h.clock()), ["admin-1"]).to_json())
    assert exc.value.reason == "admin_quorum_not_met" and exc.value.code == "permission_denied"
    view = h.service.propose_change("policy", signed_change(new, int(h.clock())).to_json(), admin="admin-2")
    assert view.policy_version == 2 and view.pending_json == ""
    assert h.service.store.governance_log()[-1].acked == {1, 2, 3}  # installed on every signer
    assert h.submit(6 * 10**18, "over-new-limit").policy_reason == "limit_exceeded:eth-per-transaction"
    h.service.tick()
    assert h.service.get_request(open_row.request_id).policy_reason == "policy_mismatch"


def test_loosening_waits_for_the_change_delay(h: Harness) -> None:
    old = _policy(h)
    rules = tuple(
        dataclasses.replace(r, when=dataclasses.replace(r.when, amount_max=2 * 10**18))
        if r.rule_id == "small-auto"
        else r
        for r in old.rules
    )
    new = dataclasses.replace(old, version=2, previous_hash=old.hash(), rules=rules)
    view = h.service.propose_change("policy", signed_change(new, int(h.clock())).to_json(), admin="admin-1")
    assert view.policy_version == 1 and json.loads(view.pending_json)["policy"]["effective_at"] == int(h.clock()) + 3600
    assert h.submit(MEDIUM, "still-v1").state == st.PENDING_APPROVAL
    h.clock.advance(3600)
    h.service.tick()
    assert h.service.get_governance().policy_version == 2
    _assert_signed(h.submit(MEDIUM, "v2-auto"))
    events = [e.view["event"] for e in h.service.audit.entries() if e.kind == audit.POLICY]
    assert events[-2:] == ["change_pending", "change_effective"]


def test_a_downgrade_is_refused(h: Harness) -> None:
    old = _policy(h)
    same_version = dataclasses.replace(
        old, previous_hash=old.hash(), limits=(*old.limits, Limit("x", "transaction", asset="BTC", max_amount=1))
    )
    with pytest.raises(svc.Refused) as exc:
        h.service.propose_change("policy", signed_change(same_version, int(h.clock())).to_json())
    assert exc.value.reason == "policy_downgrade"


# --- cold sweeps ---------------------------------------------------------------------------------------
def test_cold_sweep_only_to_a_registered_cold_address(h: Harness) -> None:
    wrong = h.submit(SMALL, "sweep-wrong", kind="cold_sweep")
    assert wrong.state == st.BLOCKED and wrong.policy_reason == svc.NOT_COLD
    row = h.submit(30 * 10**18, "sweep-1", kind="cold_sweep", to=COLD)
    assert row.state == st.PENDING_APPROVAL and row.rule_id == "cold-sweep" and row.kind == "cold_sweep"
    _assert_signed(h.approve(row, "officer-3"))  # the sweep rule: one officer, no time lock


# --- audit ----------------------------------------------------------------------------------------------
def test_audit_chain_verifies_after_a_run(h: Harness) -> None:
    h.submit(SMALL, "audit-1")
    row = h.submit(MEDIUM, "audit-2")
    h.approve(row, "officer-1")
    with pytest.raises(svc.Refused):
        h.approve(row, "officer-9")
    h.approve(row, "officer-2")
    order = sign_freeze(key("officer-1"), "officer-1", ALL_KEYS, int(h.clock()))
    h.service.freeze(order.to_bytes(), officer="officer-1")
    h.service.audit.checkpoint()
    report = h.service.audit.verify()
    assert report.ok and report.unsigned_tail == 0, report
    lines = h.service.export_audit()
    assert audit.verify_export(lines, h.service.audit.public_key).ok
    kinds = {e.kind for e in h.service.audit.entries()}
    assert {audit.REQUEST, audit.APPROVAL, audit.POLICY, audit.SESSION, audit.FREEZE, audit.CHECKPOINT} <= kinds
    entries = h.service.audit.entries()
    transitions = [e.view["event"] for e in entries if e.kind == audit.REQUEST and e.subject == row.request_id]
    assert transitions == ["submitted", "pending_approval", "approved", "signing", "signing", "signed"]
    # Every durable transition row has its audit entry (an approval's row is audited as an approval).
    for r in h.service.list_requests():
        audited = [e for e in entries if e.subject == r.request_id and e.kind in (audit.REQUEST, audit.APPROVAL)]
        recorded = [e for e in audited if e.view["event"] not in ("approval_refused", "reject_refused")]
        assert len(recorded) == len(h.service.store.events(r.request_id))


def test_an_attempt_is_audited_with_its_presignature_id_as_hex_text(h: Harness) -> None:
    # The store API names it `presignature_id` (bytes); the audit format predates that and is kept:
    # the attempt's entry says `presig_id`, hex text, in its hashed body and in its JSON view.
    row = h.submit(SMALL, "audit-presig")
    assert row.state == st.SIGNED and row.presignature_id is not None and len(row.presignature_id) >= 8
    attempts = [
        e
        for e in h.service.audit.entries()
        if e.subject == row.request_id and e.kind == audit.REQUEST and "presig_id" in e.view
    ]
    assert len(attempts) == 1 and attempts[0].view["event"] == "signing"
    assert attempts[0].view["presig_id"] == row.presignature_id.hex()
    fields = {k: v for k, v in attempts[0].values[1]}
    assert fields["presig_id"] == row.presignature_id.hex()  # a str in the hashed body, not bytes


# --- the derived key's address ------------------------------------------------------------------------
def _derived_address(h: Harness) -> str:
    k = h.service.store.get_key(KEY_ID)
    return address_of(hd.derive(Point.from_bytes(k.public_key), k.chain_code, (0, 1)).public_key)


class _NoDerive:
    @staticmethod
    def derive(*_: object) -> None:
        pytest.fail("the derived key was computed again at signing")


def test_the_derived_address_is_computed_once_at_submission(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    row = h.submit(MEDIUM, "derived-once")
    assert row.state == st.PENDING_APPROVAL and row.from_address == _derived_address(h)  # recorded at submission
    monkeypatch.setattr(signing, "hd", _NoDerive)  # signing takes it from the record
    row = h.approve(h.approve(row, "officer-1"), "officer-2")
    _assert_signed(row)
    assert row.from_address == _derived_address(h)


def test_a_request_recorded_without_its_address_derives_it_at_signing(h: Harness) -> None:
    # A request submitted before the address was recorded at submission (an older coordinator).
    row = h.submit(MEDIUM, "derived-late")
    with sqlite3.connect(h.service.store.path) as c:
        c.execute("UPDATE requests SET from_address = '' WHERE request_id = ?", (row.request_id,))
    assert h.service.store.get_request(row.request_id).from_address == ""
    row = h.approve(h.approve(row, "officer-1"), "officer-2")
    _assert_signed(row)
    assert row.from_address == _derived_address(h)


def test_removing_an_officer_voids_its_pending_approval(h: Harness) -> None:
    row = h.approve(h.submit(MEDIUM, "removed-officer"), "officer-1")
    registry = h.service.governance.registry(int(h.clock()))
    assert registry is not None
    smaller = dataclasses.replace(
        registry,
        version=2,
        previous_hash=registry.hash(),
        officers=tuple(o for o in registry.officers if o.officer_id != "officer-1"),
        removed=frozenset({"officer-1"}),
    )
    view = h.service.propose_change("registry", signed_change(smaller, int(h.clock())).to_json(), admin="admin-1")
    assert view.registry_version == 2  # removing someone only tightens: in force at once
    row = h.approve(row, "officer-2")
    assert row.state == st.PENDING_APPROVAL  # officer-1's approval no longer counts
    _assert_signed(h.approve(row, "officer-3"))
    assert refused_reason(h, h.submit(MEDIUM, "after-removal"), "officer-1") == "officer_removed"


def refused_reason(h: Harness, row: RequestRecord, officer: str) -> str:
    with pytest.raises(svc.Refused) as exc:
        h.approve(row, officer)
    return exc.value.reason


def test_a_signer_refusal_fails_the_request_with_its_reason(h: Harness) -> None:
    # The signers were frozen behind the coordinator's back: they refuse, the request fails.
    order = sign_freeze(key("officer-1"), "officer-1", ALL_KEYS, int(h.clock()))
    for node in h.nodes.values():
        node.apply_freeze_order(order.to_bytes(), False)
    row = h.submit(SMALL, "refused-by-signers")
    assert row.state == st.FAILED and row.error_code == "failed_precondition" and "frozen" in row.error
    assert h.service.store.get_presignature(row.presignature_id or b"").state == st.PRESIG_FAILED


def test_lifecycle_state_survives_a_coordinator_restart(h: Harness) -> None:
    row = h.submit(LARGE, "restart-1")
    h.approve(row, "officer-1")
    assert h.approve(row, "officer-2").state == st.TIME_LOCKED
    h.service.close()
    again = CoordinatorService(h.service.store, dict[int, SignerClient](h.clients), level="112", scheduler_interval=0)
    try:
        h.clock.advance(300)
        again.tick()
        _assert_signed(again.get_request(row.request_id))
        assert again.audit.verify().ok
    finally:
        again.close()


# --- fees ------------------------------------------------------------------------------------------------
def test_the_coordinator_blocks_unregistered_networks_and_tokens(h: Harness) -> None:
    # Chain 137 is not "ETH": the demo policy's registry does not list it.
    polygon = Eip1559Tx(137, 0, 10**9, 30 * 10**9, 21000, TO, SMALL)
    row = h.service.sign_eth(KEY_ID, "net-137", (0, 1), polygon, initiator="backend-1")
    assert (row.state, row.policy_reason, row.intent) == (st.BLOCKED, "unknown_network", b"")
    data = encode_token_call(TRANSFER, TO, 5)
    token = Eip1559Tx(1, 0, 10**9, 30 * 10**9, 80_000, "0x" + "11" * 20, 0, data)
    row = h.service.sign_eth(KEY_ID, "token-unknown", (0, 1), token, initiator="backend-1")
    assert (row.state, row.policy_reason) == (st.BLOCKED, "unknown_asset")


def test_the_coordinator_blocks_fees_over_the_rule_and_unknown_networks(h: Harness) -> None:
    # The attack from one compromised backend: 0.01 ETH with 1 ETH per gas (a 21000 ETH tip).
    tip = Eip1559Tx(1, 0, 10**18, 10**18, 21000, TO, SMALL)
    row = h.service.sign_eth(KEY_ID, "fee-tip", (0, 1), tip, initiator="backend-1")
    assert (row.state, row.policy_reason, row.rule_id) == (st.BLOCKED, "fee_exceeded", "small-auto")
    gas = Eip1559Tx(1, 0, 10**9, 30 * 10**9, 10_000_000, TO, SMALL)
    assert h.service.sign_eth(KEY_ID, "fee-gas", (0, 1), gas).policy_reason == "gas_limit_out_of_range"
    unknown = Eip1559Tx(5, 0, 10**9, 30 * 10**9, 21000, TO, SMALL)
    assert h.service.sign_eth(KEY_ID, "fee-net", (0, 1), unknown).policy_reason == "no_fee_rule"
    _assert_signed(h.submit(SMALL, "fee-sane"))
    # The coordinator's ledger counts the fee it released in the ETH limits.
    spent = h.service.lifecycle.governance.ledger().spent(KEY_ID, "ETH", 86400, int(h.clock()))
    assert spent == SMALL + 30 * 10**9 * 21000


# --- the state-change log ---------------------------------------------------------------------------------
def _state_log(logs: list[dict[str, object]], row: RequestRecord) -> list[tuple[object, ...]]:
    events = [e for e in logs if e["event"] == "request_state_changed" and e["request_id"] == row.request_id]
    assert all(e["key_id"] == KEY_ID and e["kind"] == "withdrawal" for e in events)
    return [(e["from_state"], e["to_state"], e["move"]) for e in events]


def test_every_state_change_logs_one_event_approved_and_signed(h: Harness) -> None:
    with capture_logs() as logs:
        row = h.submit(MEDIUM, "log-approved")
        row = h.approve(h.approve(row, "officer-1"), "officer-3")
    _assert_signed(row)
    assert _state_log(logs, row) == [
        ("", "submitted", "submit"),
        ("submitted", "pending_approval", "await_approvals"),
        ("pending_approval", "pending_approval", "record_approval"),
        ("pending_approval", "pending_approval", "record_approval"),
        ("pending_approval", "approved", "approve"),
        ("approved", "signing", "claim"),
        ("signing", "signing", "attempt"),
        ("signing", "signed", "sign"),
    ]
    # One event per durable event row: the log and the request's history agree.
    assert [to for _, to, _ in _state_log(logs, row)] == h.states(row)
    # The events carry ids and states only, not the transaction or the approvals' signatures.
    logged = json.dumps([e for e in logs if e["event"] == "request_state_changed"], default=str)
    assert row.raw_tx.hex() not in logged and row.intent.hex() not in logged
    assert set(json.loads(logged)[0]) == {
        "event",
        "log_level",
        "request_id",
        "key_id",
        "kind",
        "from_state",
        "to_state",
        "move",
        "reason",
    }


def test_every_state_change_logs_one_event_rejected(h: Harness) -> None:
    row = h.submit(MEDIUM, "log-rejected")
    signature = key("officer-2").sign(reject_message(row.request_id, row.intent_digest))
    with capture_logs() as logs:
        row = h.service.reject(row.request_id, "officer-2", signature, "unknown destination", officer="officer-2")
    assert row.state == st.REJECTED
    assert _state_log(logs, row) == [("pending_approval", "rejected", "reject")]
    (event,) = [e for e in logs if e["event"] == "request_state_changed"]
    assert event["reason"] == "rejected by officer-2: unknown destination"
    assert signature.hex() not in json.dumps(logs, default=str)
