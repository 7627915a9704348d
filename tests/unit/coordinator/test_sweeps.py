"""Hot wallet full -> sweep (coordinator/sweeps.py), over in-process signers with an injected clock.

A full hot wallet produces exactly one cold-sweep proposal to the registered cold address leaving the
reserve; a stale report, a report below the cap, one older than the held one or from before the last
signed sweep produce none; a cold address the policy does not list is never swept to; a sweep the
officers approve is signed by the signers under the cold-sweep rule, and the next full report
proposes the next sweep. A proposal whose note was lost in a crash is found again, not doubled.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account

from coordinator import service as svc
from coordinator import store as st
from coordinator.service import CoordinatorService
from coordinator.signer_client import LocalSignerClient, SignerClient
from coordinator.store import RequestRecord, Store
from coordinator.sweeps import HotWallet, SweepOutcome
from signer.chains.erc20 import TRANSFER, encode_token_call
from signer.chains.ethereum import Eip1559Tx
from signer.policy import Action, Asset, AssetRegistry, Condition, Group, Intent, Rule, sign_approval

from .governance_fixtures import COLD, Clock, add_key, install_demo_governance, key, make_nodes, signed_change

KEY_ID = "k-hot"
ETH = 10**18
WALLET = HotWallet(KEY_ID, (0, 0), 1, "ETH", cap=50 * ETH, reserve=10 * ETH, cold=COLD, max_report_age=300)


class Env:
    def __init__(self, tmp_path: Path, *wallets: HotWallet) -> None:
        self.clock = Clock()
        self.nodes = make_nodes(tmp_path / "signers", KEY_ID, self.clock)
        clients = {p: LocalSignerClient(n) for p, n in self.nodes.items()}
        self.store = Store(tmp_path / "coordinator.db", clock=self.clock)
        add_key(self.store, KEY_ID)
        self.service = CoordinatorService(
            self.store,
            dict[int, SignerClient](clients),
            level="112",
            scheduler_interval=0,
            hot_wallets=wallets or (WALLET,),
        )
        install_demo_governance(self.service)
        address = self.service.sweeps.address_of(0)
        assert address is not None
        self.address = address

    def report(self, amount: int, *, age: float = 0, nonce: int = 4, address: str = "") -> SweepOutcome:
        return self.service.sweeps.report(
            chain_id=1,
            address=address or self.address,
            asset="ETH",
            amount=amount,
            next_nonce=nonce,
            reported_at=self.clock() - age,
            reporter="backend-1",
        )

    def sweeps(self) -> list[RequestRecord]:
        return [r for r in self.store.list_requests(limit=1000) if r.kind == "cold_sweep"]

    def approve(self, row: RequestRecord, officer: str = "officer-3") -> RequestRecord:
        approval = sign_approval(key(officer), officer, Intent.from_bytes(row.intent), int(self.clock()), 3600)
        return self.service.approve(row.request_id, approval.to_bytes(), officer=officer)

    def close(self) -> None:
        self.service.close()
        self.store.close()
        for n in self.nodes.values():
            n.close()


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    e = Env(tmp_path)
    yield e
    e.close()


def test_a_full_wallet_gets_exactly_one_sweep_to_the_cold_address_leaving_the_reserve(env: Env) -> None:
    out = env.report(80 * ETH)
    assert out.action == "proposed" and out.request is not None
    sweep = out.request
    intent = Intent.from_bytes(sweep.intent)
    assert (sweep.kind, sweep.state, sweep.initiator) == ("cold_sweep", st.PENDING_APPROVAL, "sweeper")
    assert intent.destination.lower() == COLD.lower()
    assert sweep.nonce_allocated and intent.nonce == 0  # the coordinator's allocation, not the reported 4
    assert intent.amount == 80 * ETH - 10 * ETH - WALLET.fee_cap  # the reserve stays after the fee
    env.clock.advance(5)
    again = env.report(90 * ETH)  # fuller still, while the sweep waits for its officer
    assert again.action == "sweep_open" and again.request is not None
    assert again.request.request_id == sweep.request_id
    assert [r.request_id for r in env.sweeps()] == [sweep.request_id]
    signed = env.approve(sweep)
    assert signed.state == st.SIGNED, (signed.state, signed.error, signed.policy_reason)
    assert Account.recover_transaction(signed.raw_tx) == signed.from_address == env.address


def test_stale_below_cap_and_older_reports_propose_nothing(env: Env) -> None:
    assert env.report(80 * ETH, age=301).action == "stale"
    assert env.report(50 * ETH).action == "below_cap"  # at the cap: not over it
    assert env.report(80 * ETH, age=10).action == "older_report"  # a newer report is held
    assert env.sweeps() == []
    held = env.store.balance("eip155:1", env.address.lower(), "ETH")
    assert held is not None and held.amount == 50 * ETH


def test_a_report_from_before_the_last_signed_sweep_proposes_nothing(env: Env) -> None:
    first = env.report(80 * ETH).request
    assert first is not None
    env.clock.advance(10)
    assert env.approve(first).state == st.SIGNED
    # Read before the sweep was signed (the chain did not show it yet): nothing.
    env.clock.advance(1)
    assert env.report(80 * ETH, age=5).action == "before_last_sweep"
    env.clock.advance(60)
    nxt = env.report(70 * ETH, nonce=5)  # read after it: full again
    assert nxt.action == "proposed" and nxt.request is not None and nxt.request.request_id != first.request_id
    assert len(env.sweeps()) == 2


def test_a_rejected_sweep_ends_and_the_next_full_report_proposes_again(env: Env) -> None:
    first = env.report(80 * ETH).request
    assert first is not None
    env.service.reject(first.request_id, "officer-1", _veto(first, "officer-1"), "not now", officer="officer-1")
    env.clock.advance(5)
    again = env.report(80 * ETH)
    assert again.action == "proposed" and again.request is not None and again.request.request_id != first.request_id


def _veto(row: RequestRecord, officer: str) -> bytes:
    return key(officer).sign(svc.reject_message(row.request_id, row.intent_digest))


def test_a_proposal_whose_note_was_lost_is_found_again_not_doubled(env: Env) -> None:
    first = env.report(80 * ETH).request
    assert first is not None
    env.store.set_sweep("eip155:1", env.address.lower(), "ETH", "")  # a crash lost the note
    env.clock.advance(5)
    out = env.report(85 * ETH)  # another body under the same sweep's idempotency key
    assert out.action == "sweep_open" and out.request is not None and out.request.request_id == first.request_id
    assert len(env.sweeps()) == 1


def test_never_to_a_cold_address_the_policy_does_not_list(tmp_path: Path) -> None:
    rogue = dataclasses.replace(WALLET, cold="0x000000000000000000000000000000000000bEEF")
    e = Env(tmp_path, rogue)
    try:
        assert e.report(80 * ETH).action == "cold_not_registered"
        assert e.sweeps() == []
    finally:
        e.close()


def test_bad_reports_are_refused(env: Env) -> None:
    with pytest.raises(svc.NotFound):
        env.report(80 * ETH, address="0x000000000000000000000000000000000000dEaD")
    with pytest.raises(svc.InvalidRequest):
        env.report(80 * ETH, age=-120)  # two minutes in the future
    with pytest.raises(svc.InvalidRequest):
        env.report(-1)
    with pytest.raises(svc.InvalidRequest):
        env.report(80 * ETH, address="zz")
    assert env.sweeps() == []


# --- withdrawals waiting for funds (coordinator/funds.py) ------------------------------------------------
SMALL = 5 * 10**16  # 0.05 ETH: the demo policy's automatic tier
FEE = 30 * 10**9 * 21000


def _withdraw(env: Env, n: int, value: int = SMALL) -> RequestRecord:
    tx = Eip1559Tx(1, n, 10**9, 30 * 10**9, 21000, "0x000000000000000000000000000000000000dEaD", value)
    return env.service.sign_eth(KEY_ID, f"w-{n}", (0, 0), tx, initiator="backend-1")


def _events(env: Env, row: RequestRecord) -> list[str]:
    return [e.detail for e in env.store.events(row.request_id)]


def test_a_withdrawal_the_wallet_cannot_cover_waits_in_the_queue_then_signs(env: Env) -> None:
    env.report(2 * (SMALL + FEE) + 10)  # covers two withdrawals, not three
    first, second = _withdraw(env, 1), _withdraw(env, 2)
    assert first.state == second.state == st.SIGNED  # what was signed since the report is counted
    third = _withdraw(env, 3)
    assert (third.state, third.policy_reason) == (st.APPROVED, "awaiting_funds")
    note = _events(env, third)[-1]
    assert f"awaiting_funds: {SMALL + FEE - 10} base units short, 0 ahead in the queue" in note
    assert "no refill seen yet" in note
    env.clock.advance(1)  # the queue is in submission order
    fourth = _withdraw(env, 4)
    assert fourth.policy_reason == "awaiting_funds" and "1 ahead in the queue" in _events(env, fourth)[-1]
    env.service.tick()
    assert env.store.get_request(third.request_id).state == st.APPROVED  # nothing changed: still waiting
    env.clock.advance(30)
    env.report(SMALL + FEE)  # a refill covering the first in the queue only
    env.service.tick()
    assert env.store.get_request(third.request_id).state == st.SIGNED
    assert env.store.get_request(fourth.request_id).state == st.APPROVED  # first come, first served
    env.clock.advance(30)
    env.report(SMALL + FEE + 1)
    env.service.tick()
    signed = env.store.get_request(fourth.request_id)
    assert signed.state == st.SIGNED and Account.recover_transaction(signed.raw_tx) == env.address


def test_the_expected_time_comes_from_the_refills_seen(env: Env) -> None:
    start = env.clock()
    env.report(0)
    env.clock.advance(600)
    env.report(10**15)  # a refill
    env.clock.advance(1200)
    env.report(2 * 10**15)  # another, 1200 s later
    held = _withdraw(env, 1)
    assert held.policy_reason == "awaiting_funds"
    expected = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(start + 1800 + 1200))
    assert f"next refill expected about {expected}" in _events(env, held)[-1]


def test_without_a_fresh_report_nothing_waits(env: Env) -> None:
    assert _withdraw(env, 1).state == st.SIGNED  # never reported
    env.report(0)
    env.clock.advance(301)  # the report is stale: the coordinator cannot know
    assert _withdraw(env, 2).state == st.SIGNED


# --- token sweeps --------------------------------------------------------------------------------------
USDC_CONTRACT = "0x000000000000000000000000000000000000A0b8"


def _with_usdc(env: Env) -> None:
    """Register USDC on eip155:1 and a rule for its cold sweeps (one officer): a loosening, in
    force after the change delay."""
    old = env.service.governance.policy(int(env.clock()))
    assert old is not None
    usdc = Asset("USDC", "eip155:1", 6, USDC_CONTRACT)
    sweep_rule = Rule(
        "usdc-cold-sweep",
        Condition(assets=frozenset({"USDC"}), destinations=frozenset({"cold"})),
        Action("require", Group("officers", 1), fee_cap=10**17),
    )
    new = dataclasses.replace(
        old,
        version=old.version + 1,
        previous_hash=old.hash(),
        assets=AssetRegistry(old.assets.networks, (*old.assets.assets, usdc)),
        rules=(sweep_rule, Rule("usdc-auto", Condition(assets=frozenset({"USDC"})), Action("allow")), *old.rules),
    )
    env.service.propose_change("policy", signed_change(new, int(env.clock())).to_json(), admin="admin-1")
    env.clock.advance(new.change_delay + 1)
    env.service.tick()
    assert env.service.get_governance().policy_version == new.version


def test_a_full_token_wallet_is_swept_with_a_transfer_call_to_the_cold_address(tmp_path: Path) -> None:
    wallet = HotWallet(
        KEY_ID, (0, 1), 1, "USDC", cap=10**11, reserve=2 * 10**10, cold=COLD, max_report_age=300, gas_limit=90_000
    )
    e = Env(tmp_path, wallet)
    try:
        _with_usdc(e)
        out = e.service.sweeps.report(
            chain_id=1,
            address=e.address,
            asset="USDC",
            amount=5 * 10**11,
            next_nonce=9,
            reported_at=e.clock(),
            reporter="backend-1",
        )
        assert out.action == "proposed" and out.request is not None, out
        intent = Intent.from_bytes(out.request.intent)
        # The intent is the token transfer's: the real recipient and the whole excess over the reserve.
        assert (intent.asset, intent.destination.lower(), intent.amount) == ("USDC", COLD.lower(), 48 * 10**10)
        assert intent.contract.lower() == USDC_CONTRACT.lower() and out.request.rule_id == "usdc-cold-sweep"
        signed = e.approve(out.request)
        assert signed.state == st.SIGNED, (signed.state, signed.error, signed.policy_reason)
        assert Account.recover_transaction(signed.raw_tx) == e.address
    finally:
        e.close()


def test_an_unregistered_token_is_never_swept(tmp_path: Path) -> None:
    e = Env(tmp_path, HotWallet(KEY_ID, (0, 1), 1, "DOGE", cap=1, reserve=0, cold=COLD, gas_limit=90_000))
    try:
        out = e.service.sweeps.report(
            chain_id=1, address=e.address, asset="DOGE", amount=10, next_nonce=0, reported_at=e.clock(), reporter="b"
        )
        assert out.action == "asset_not_registered" and e.sweeps() == []
    finally:
        e.close()


def test_a_token_withdrawal_waits_for_its_token_wallet(tmp_path: Path) -> None:
    wallet = HotWallet(KEY_ID, (0, 1), 1, "USDC", cap=10**12, reserve=0, cold=COLD, max_report_age=300)
    e = Env(tmp_path, wallet)
    try:
        _with_usdc(e)

        def report(amount: int) -> None:
            at = e.clock()
            e.service.sweeps.report(
                chain_id=1, address=e.address, asset="USDC", amount=amount, next_nonce=0, reported_at=at, reporter="b"
            )

        report(5 * 10**6)  # 5 USDC
        data = encode_token_call(TRANSFER, "0x000000000000000000000000000000000000dEaD", 8 * 10**6)
        tx = Eip1559Tx(1, 0, 10**9, 30 * 10**9, 90_000, USDC_CONTRACT, 0, data)
        held = e.service.sign_eth(KEY_ID, "usdc-1", (0, 1), tx, initiator="backend-1", allocate_nonce=True)
        assert (held.state, held.policy_reason) == (st.APPROVED, "awaiting_funds"), (held.state, held.policy_reason)
        assert "awaiting_funds: 3000000 base units short" in _events(e, held)[-1]  # in USDC, the fee is ETH's
        e.clock.advance(10)
        report(9 * 10**6)
        e.service.tick()
        signed = e.store.get_request(held.request_id)
        assert signed.state == st.SIGNED, (signed.state, signed.error)
    finally:
        e.close()
