"""Bitcoin hot wallet full -> sweep (coordinator/btc_sweeps.py), over in-process signers.

A full wallet's UTXO report produces exactly one cold-sweep PSBT: the largest outputs to the
registered cold address, change back to the wallet's own address that leaves the reserve, a fee of
at least the configured rate; an officer approves it and the signers sign every input (checked
independently, tests/btc_support.py). A stale report, a cold address the policy does not list, and
a report of outputs that are not the wallet's (or lie about amounts) propose nothing.
"""

from __future__ import annotations

import dataclasses
import re
import secrets
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from embit.psbt import PSBT
from embit.script import Script
from embit.transaction import Transaction, TransactionInput, TransactionOutput
from pydantic import ValidationError

from coordinator import store as st
from coordinator.btc_request import psbt_of
from coordinator.btc_sweeps import DUST, BtcHotWallet, Utxo, select
from coordinator.config import HotWalletEntry
from coordinator.errors import InvalidRequest, NotFound
from coordinator.service import CoordinatorService
from coordinator.signer_client import LocalSignerClient, SignerClient
from coordinator.store import RequestRecord, Store
from coordinator.sweeps import SweepOutcome
from signer.chains import bitcoin as btc
from signer.policy import Action, Group, demo_policy, public_key_bytes, sign_approval
from signer.policy.btc_intent import SpendIntent
from signer.tss.curve import Point
from tests.btc_support import REGTEST, foreign_script, own_script, verify_transaction, with_bitcoin

from .governance_fixtures import ADMINS, COLD, OFFICERS, Clock, add_key, key, make_nodes, signed_change

KEY_ID = "k-btc-hot"
PATH = (0, 7)
BTC_COLD = btc.address(foreign_script(), REGTEST)
WALLET = BtcHotWallet(KEY_ID, PATH, REGTEST.caip2, 2_000_000, 500_000, BTC_COLD, fee_rate=5, max_report_age=300)


class Env:
    def __init__(self, tmp_path: Path, wallet: BtcHotWallet = WALLET) -> None:
        self.clock = Clock()
        self.nodes = make_nodes(tmp_path / "signers", KEY_ID, self.clock)
        clients = {p: LocalSignerClient(n) for p, n in self.nodes.items()}
        self.store = Store(tmp_path / "coordinator.db", clock=self.clock)
        record = add_key(self.store, KEY_ID)
        self.public, self.chain_code = Point.from_bytes(record.public_key), record.chain_code
        self.service = CoordinatorService(
            self.store, dict[int, SignerClient](clients), level="112", scheduler_interval=0, hot_wallets=(wallet,)
        )
        now = int(self.clock())
        registry, policy = demo_policy(
            {o: public_key_bytes(key(o)) for o in OFFICERS},
            {a: public_key_bytes(key(a)) for a in ADMINS},
            cold=(COLD, BTC_COLD),
            now=now,
        )
        policy = with_bitcoin(policy)
        # Bitcoin cold sweeps need one officer here (tests/btc_support.py allows them outright).
        officer = Action("require", Group("officers", 1))
        rules = tuple(
            dataclasses.replace(r, action=officer) if r.rule_id == "btc-cold-sweep" else r for r in policy.rules
        )
        policy = dataclasses.replace(policy, rules=rules)
        self.service.propose_change("registry", signed_change(registry, now).to_json(), admin="admin-1")
        self.service.propose_change("policy", signed_change(policy, now).to_json(), admin="admin-1")
        self.script = own_script(self.public, self.chain_code, PATH)
        address = self.service.btc_sweeps.address_of(0)
        assert address is not None and address == btc.address(self.script, REGTEST)
        self.address = address

    def utxos(self, amounts: Sequence[int], script: bytes = b"") -> list[Utxo]:
        """One output of each amount paying the wallet (or `script`), each in its own transaction."""
        out = []
        for amount in amounts:
            prev = Transaction(
                vin=[TransactionInput(secrets.token_bytes(32), 0)],
                vout=[
                    TransactionOutput(7_000, Script(foreign_script())),
                    TransactionOutput(amount, Script(script or self.script)),
                ],
            )
            out.append(Utxo(bytes(prev.txid()), 1, amount, bytes(prev.serialize())))
        return out

    def report(self, utxos: Sequence[Utxo], *, age: float = 0) -> SweepOutcome:
        return self.service.btc_sweeps.report(
            network="regtest", address=self.address, utxos=utxos, reported_at=self.clock() - age, reporter="backend-1"
        )

    def sweeps(self) -> list[RequestRecord]:
        return [r for r in self.store.list_requests(limit=1000) if r.kind == "cold_sweep"]

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


def test_a_full_wallet_gets_one_sweep_psbt_to_the_cold_address_leaving_the_reserve_and_it_is_signed(env: Env) -> None:
    utxos = env.utxos([300_000, 1_500_000, 100_000, 800_000])  # 2.7 M sat, over the 2 M cap
    out = env.report(utxos)
    assert out.action == "proposed" and out.request is not None, out
    sweep = out.request
    assert (sweep.kind, sweep.state, sweep.initiator) == ("cold_sweep", st.PENDING_APPROVAL, "sweeper")
    # The PSBT as proposed, decoded here with embit: the two largest outputs, the cold output and
    # change to the wallet's own script that, with the 400 000 sat left unspent, is the reserve.
    psbt = PSBT.parse(psbt_of(sweep.tx))
    spent = {(bytes(i.txid), i.vout) for i in psbt.tx.vin}
    assert spent == {(u.txid, u.vout) for u in utxos if u.amount in (1_500_000, 800_000)}
    cold_out, change_out = psbt.tx.vout
    assert btc.address(bytes(cold_out.script_pubkey.data), REGTEST) == BTC_COLD
    assert (bytes(change_out.script_pubkey.data), change_out.value) == (env.script, 100_000)
    assert 400_000 + change_out.value == WALLET.reserve
    decoded = btc.decode_psbt(psbt_of(sweep.tx), REGTEST, env.public, env.chain_code)
    assert decoded.outputs[1].change_path == PATH and decoded.payouts == (decoded.outputs[0],)
    assert decoded.fee == 2_300_000 - 100_000 - cold_out.value and decoded.fee >= WALLET.fee_rate * decoded.vsize
    # Fuller still while the sweep waits for its officer: the same sweep, no second one.
    env.clock.advance(5)
    again = env.report(env.utxos([3_000_000]))
    assert again.action == "sweep_open" and again.request is not None and again.request.request_id == sweep.request_id
    assert [r.request_id for r in env.sweeps()] == [sweep.request_id]
    intent = SpendIntent.from_bytes(sweep.intent)
    approval = sign_approval(key("officer-1"), "officer-1", intent, int(env.clock()))
    signed = env.service.approve(sweep.request_id, approval.to_bytes(), officer="officer-1")
    signed = env.service.get_request(signed.request_id)
    assert signed.state == st.SIGNED, (signed.state, signed.policy_reason, signed.error)
    by_outpoint = {(u.txid, u.vout): u.amount for u in utxos}
    amounts = [(by_outpoint[(bytes(i.txid), i.vout)], env.script) for i in psbt.tx.vin]
    assert verify_transaction(signed.raw_tx, amounts) == signed.tx_hash.hex()


def test_stale_and_below_cap_reports_propose_nothing(env: Env) -> None:
    assert env.report(env.utxos([3_000_000]), age=301).action == "stale"
    env.clock.advance(1)
    assert env.report(env.utxos([1_000_000, 1_000_000])).action == "below_cap"  # at the cap: not over it
    assert env.sweeps() == []
    held = env.store.balance(REGTEST.caip2, env.address, "BTC")
    assert held is not None and held.amount == 2_000_000
    assert env.service.btc_sweeps.caps() == {(REGTEST.caip2, env.address, "BTC"): WALLET.cap}  # the metrics' cap


def test_a_cold_address_the_policy_does_not_list_is_never_swept_to(tmp_path: Path) -> None:
    unlisted = btc.address(foreign_script(), REGTEST)
    env = Env(tmp_path, dataclasses.replace(WALLET, cold=unlisted))
    try:
        out = env.report(env.utxos([5_000_000]))
        assert out.action == "cold_not_registered" and out.request is None
        assert env.store.list_requests(limit=100) == []
    finally:
        env.close()


def test_a_report_of_outputs_that_are_not_the_wallets_or_lie_about_amounts_is_refused(env: Env) -> None:
    with pytest.raises(InvalidRequest, match="does not pay the wallet"):
        env.report(env.utxos([5_000_000], script=foreign_script()))
    lie = env.utxos([100_000])[0]
    with pytest.raises(InvalidRequest, match="amount_sat"):
        env.report([dataclasses.replace(lie, amount=5_000_000)])
    other = env.utxos([100_000])[0]
    with pytest.raises(InvalidRequest, match="txid names"):
        env.report([dataclasses.replace(lie, txid=other.txid)])
    with pytest.raises(InvalidRequest, match="twice"):
        env.report([lie, lie])
    assert env.store.balance(REGTEST.caip2, env.address, "BTC") is None and env.sweeps() == []


def test_selection_takes_the_largest_until_the_rest_is_within_the_reserve() -> None:
    def u(amount: int) -> Utxo:
        return Utxo(secrets.token_bytes(32), 0, amount, b"")

    chosen, change = select([u(5_000), u(100_000), u(40_000)], reserve=50_000)
    assert [c.amount for c in chosen] == [100_000] and change == 5_000  # 45 000 stays, change tops it up
    chosen, change = select([u(1000), u(1000)], reserve=0)
    assert len(chosen) == 2 and change == 0
    chosen, change = select([u(10_000), u(2_000)], reserve=2_100)
    assert [c.amount for c in chosen] == [10_000] and change == DUST  # 100 would be dust: the reserve is kept


def test_a_bitcoin_hot_wallet_entry_in_coordinator_json() -> None:
    entry = {"key_id": KEY_ID, "path": [0, 7], "network": "regtest", "cap": "2000000", "reserve": "500000"}
    wallet = HotWalletEntry.model_validate({**entry, "cold": BTC_COLD.upper(), "fee_rate": 5}).wallet()
    assert wallet == dataclasses.replace(WALLET, max_report_age=600)  # the cold address in canonical form
    refusals = [
        ({**entry, "cold": btc.address(foreign_script(), btc.NETWORKS["mainnet"])}, "is not an address on regtest"),
        ({**entry, "cold": BTC_COLD, "chain_id": 1}, "either chain_id (EVM) or network"),
        ({**entry, "cold": BTC_COLD, "network": "bip122:00"}, "is not a Bitcoin network"),
        ({**entry, "cold": BTC_COLD, "cap": "1"}, "cap must not be below reserve"),
    ]
    for bad, problem in refusals:
        with pytest.raises(ValidationError, match=re.escape(problem)):
            HotWalletEntry.model_validate(bad)


def test_after_a_signed_sweep_an_older_read_proposes_nothing_and_the_next_full_one_proposes_again(env: Env) -> None:
    first = env.report(env.utxos([2_500_000])).request
    assert first is not None
    env.clock.advance(10)
    approval = sign_approval(key("officer-2"), "officer-2", SpendIntent.from_bytes(first.intent), int(env.clock()))
    env.service.approve(first.request_id, approval.to_bytes(), officer="officer-2")
    assert env.service.get_request(first.request_id).state == st.SIGNED
    env.clock.advance(1)
    assert env.report(env.utxos([2_500_000]), age=5).action == "before_last_sweep"  # read before it was signed
    env.clock.advance(60)
    nxt = env.report(env.utxos([600_000, 2_000_000]))
    assert nxt.action == "proposed" and nxt.request is not None and nxt.request.request_id != first.request_id
    assert len(env.sweeps()) == 2


def test_a_proposal_whose_note_was_lost_is_found_again_not_doubled(env: Env) -> None:
    first = env.report(env.utxos([2_500_000])).request
    assert first is not None
    env.store.set_sweep(REGTEST.caip2, env.address, "BTC", "")  # a crash lost the note
    env.clock.advance(5)
    out = env.report(env.utxos([2_600_000]))  # another PSBT under the same sweep's idempotency key
    assert out.action == "sweep_open" and out.request is not None and out.request.request_id == first.request_id
    assert len(env.sweeps()) == 1
    with pytest.raises(NotFound):  # a wallet not configured
        env.service.btc_sweeps.report(
            network="regtest", address=BTC_COLD, utxos=[], reported_at=env.clock(), reporter="backend-1"
        )
