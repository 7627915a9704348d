"""Bitcoin spends through the coordinator, over in-process signers: a PSBT submitted, judged as the
spend intent rebuilt from it, approved by officers when the policy asks, signed with one
presignature per input from one signer set, combined, and charged to the coordinator's ledger
payout by payout. Every input's signature is checked independently (tests/btc_support.py).
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from tsscustody.v1 import coordinator_pb2

from coordinator import officer
from coordinator.btc_request import psbt_of
from coordinator.cli_btc import spend_request_json
from coordinator.cli_common import request_line
from coordinator.cli_format import amount_text
from coordinator.console import Console
from coordinator.errors import AlreadyExists, InvalidRequest
from coordinator.officer import IntentMismatch, rebuild_spend
from coordinator.review import request_trail
from coordinator.service import CoordinatorService
from coordinator.signer_client import LocalSignerClient, SignerClient
from coordinator.store import Store
from coordinator.views import governance_to_proto, key_to_proto, request_to_proto
from signer.node.btc_release import PsbtInput
from signer.node.node import PartialSig, SignerNode
from signer.node.wire import SignBody
from signer.policy import PolicyDocument, Release, demo_policy, public_key_bytes, sign_approval
from signer.policy.btc_intent import SpendIntent
from signer.tss.curve import Point, Q
from tests.btc_support import SMALL, extract, foreign_script, make_psbt, own_script, verify_transaction, with_bitcoin

from .governance_fixtures import ADMINS, COLD, OFFICERS, Clock, add_key, key, make_nodes, signed_change

KEY_ID = "k-btc"
IN_PATHS = ((0, 1), (0, 2))


class CutOff(LocalSignerClient):
    """A signer that drops off the network the first time any signer is asked for input 1."""

    tripped = threading.Event()

    def partial_sign(
        self, key_id: str, presignature_id: bytes, tx: SignBody, release: Release, attestations: Sequence[bytes] = ()
    ) -> PartialSig:
        if isinstance(tx, PsbtInput) and tx.input_index == 1 and not CutOff.tripped.is_set():
            CutOff.tripped.set()
            self.down = True
        return super().partial_sign(key_id, presignature_id, tx, release, attestations)


class Cheat(LocalSignerClient):
    """A signer whose σ_i for input 1 is off by one."""

    def partial_sign(
        self, key_id: str, presignature_id: bytes, tx: SignBody, release: Release, attestations: Sequence[bytes] = ()
    ) -> PartialSig:
        got = super().partial_sign(key_id, presignature_id, tx, release, attestations)
        if isinstance(tx, PsbtInput) and tx.input_index == 1:
            return dataclasses.replace(got, sigma=((int.from_bytes(got.sigma, "big") + 1) % Q).to_bytes(32, "big"))
        return got


class Env:
    def __init__(self, tmp_path: Path, client: type[LocalSignerClient] = LocalSignerClient) -> None:
        self.clock = Clock()
        self.db = tmp_path / "coordinator.db"
        self.nodes: dict[int, SignerNode] = make_nodes(tmp_path / "signers", KEY_ID, self.clock)
        clients = {p: client(n) for p, n in self.nodes.items()}
        self.store = Store(self.db, clock=self.clock)
        record = add_key(self.store, KEY_ID)
        self.public, self.chain_code = Point.from_bytes(record.public_key), record.chain_code
        self.service = CoordinatorService(
            self.store, dict[int, SignerClient](clients), level="112", scheduler_interval=0
        )
        now = int(self.clock())
        registry, policy = demo_policy(
            {o: public_key_bytes(key(o)) for o in OFFICERS},
            {a: public_key_bytes(key(a)) for a in ADMINS},
            cold=(COLD,),
            now=now,
        )
        self.service.propose_change("registry", signed_change(registry, now).to_json(), admin="admin-1")
        self.service.propose_change("policy", signed_change(with_bitcoin(policy), now).to_json(), admin="admin-1")
        self.n = 0

    def psbt(self, payout: int, fee: int = 1_000) -> bytes:
        """Two inputs of 0.7 and 0.5 BTC paying `payout` to a new address and the rest as change."""
        change = 1_200_000 - payout - fee
        return make_psbt(
            self.public,
            self.chain_code,
            [(IN_PATHS[0], 700_000), (IN_PATHS[1], 500_000)],
            [(payout, foreign_script(), None), (change, own_script(self.public, self.chain_code, (1, 0)), (1, 0))],
        )

    def submit(self, psbt: bytes, kind: str = "withdrawal"):  # type: ignore[no-untyped-def]
        self.n += 1
        return self.service.sign_btc(KEY_ID, f"btc-{self.n}", psbt, kind=kind, initiator="backend-1")

    def spent(self, psbt: bytes) -> list[tuple[int, bytes]]:
        amounts = (700_000, 500_000)
        return [(a, own_script(self.public, self.chain_code, p)) for a, p in zip(amounts, IN_PATHS, strict=True)]

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


def test_a_small_spend_is_signed_input_by_input_and_charged_payout_by_payout(env: Env) -> None:
    psbt = env.psbt(payout=SMALL - 1)
    row = env.submit(psbt)
    assert row.state == "signed", (row.state, row.policy_reason, row.error)
    assert psbt_of(row.tx) == psbt and row.path == ()
    view = request_to_proto(row)
    assert verify_transaction(view.btc_tx, env.spent(psbt)) == view.txid
    assert extract(view.signed_psbt) == view.btc_tx and bytes(view.psbt) == psbt
    assert not view.HasField("eth")
    # What tssctl prints: the total payout in BTC and its payee, the txid (not an Ethereum hash).
    payee = SpendIntent.from_bytes(row.intent).spend.payouts[0].address
    assert amount_text(view) == ("0.00999999 BTC", payee)
    assert request_line(view).endswith(f"signed (allowed); txid {view.txid}")
    shown = spend_request_json(view)
    assert shown["txid"] == view.txid and [o["change_path"] for o in shown["intent"]["outputs"]] == [None, [1, 0]]
    # The coordinator's ledger charges the payout and the whole fee once.
    ledger = env.service.governance.ledger()
    assert ledger.spent(KEY_ID, "BTC", 86400, int(env.clock())) == SMALL - 1 + 1_000
    # The same idempotency key and PSBT finds the same request; another PSBT under it is refused.
    again = env.service.sign_btc(KEY_ID, f"btc-{env.n}", psbt, initiator="backend-1")
    assert again.request_id == row.request_id
    with pytest.raises(AlreadyExists):
        env.service.sign_btc(KEY_ID, f"btc-{env.n}", env.psbt(payout=SMALL - 1), initiator="backend-1")


def test_a_large_spend_waits_for_the_officers_who_approve_the_rebuilt_spend(env: Env) -> None:
    psbt = env.psbt(payout=SMALL + 1)
    row = env.submit(psbt)
    assert (row.state, row.policy_reason) == ("pending_approval", "approvals_pending")
    view = request_to_proto(row)
    policy = env.service.governance.policy(int(env.clock()))
    assert policy is not None
    k = key_to_proto(env.service.get_key(KEY_ID))
    intent = rebuild_spend(view, k, policy.hash(), policy.assets)
    assert intent.digest() == row.intent_digest
    # A coordinator showing another PSBT than the intent it recorded is caught by the officer's tool.
    forged = request_to_proto(row)
    forged.psbt = env.psbt(payout=SMALL + 1)
    with pytest.raises(IntentMismatch):
        rebuild_spend(forged, k, policy.hash(), policy.assets)
    for who in ("officer-1", "officer-2"):
        approval = sign_approval(key(who), who, intent, int(env.clock()))
        row = env.service.approve(row.request_id, approval.to_bytes(), officer=who)
    row = env.service.get_request(row.request_id)
    assert row.state == "signed", (row.state, row.policy_reason, row.error)
    assert verify_transaction(row.raw_tx, env.spent(psbt)) == row.tx_hash.hex()
    assert SpendIntent.from_bytes(row.intent).digest() == intent.digest()


def test_an_undecodable_psbt_is_recorded_then_blocked_and_bad_calls_are_refused(env: Env) -> None:
    def strip(p: object) -> None:
        for inp in p.inputs:  # type: ignore[attr-defined]
            inp.non_witness_utxo = None

    bare = make_psbt(
        env.public, env.chain_code, [(IN_PATHS[0], 250_000)], [(240_000, foreign_script(), None)], edit=strip
    )
    row = env.submit(bare)
    assert (row.state, row.policy_reason) == ("blocked", "undecodable_transaction")
    with pytest.raises(InvalidRequest, match="kind"):
        env.submit(env.psbt(payout=1_000), kind="approval")
    with pytest.raises(InvalidRequest, match="psbt"):
        env.submit(b"")
    # A cold sweep must pay only cold addresses: a new address is refused by the policy.
    row = env.submit(env.psbt(payout=1_000), kind="cold_sweep")
    assert row.state == "blocked", row


def test_a_signer_lost_mid_spend_fails_the_attempt_and_a_fresh_set_signs_every_input(tmp_path: Path) -> None:
    CutOff.tripped.clear()
    env = Env(tmp_path, CutOff)
    try:
        psbt = env.psbt(payout=50_000)
        row = env.submit(psbt)
        assert row.state == "signed", (row.state, row.error)
        assert verify_transaction(row.raw_tx, env.spent(psbt)) == row.tx_hash.hex()
        attempts = [e.detail for e in env.store.events(row.request_id) if e.detail.startswith("attempt")]
        assert len(attempts) == 2 and "unreachable" in attempts[1], attempts
        with sqlite3.connect(env.db) as db:
            held = db.execute(
                "SELECT state, signers, path FROM presignatures WHERE request_id = ? ORDER BY created_at",
                (row.request_id,),
            ).fetchall()
        # One presignature per input path in each attempt, each attempt's from one set; the broken
        # attempt's are failed (never used again), the second's consumed.
        assert [(s, p) for s, _, p in held] == [
            ("failed", "[0,1]"),
            ("failed", "[0,2]"),
            ("consumed", "[0,1]"),
            ("consumed", "[0,2]"),
        ], held
        assert held[0][1] == held[1][1] and held[2][1] == held[3][1] != held[0][1]
    finally:
        env.close()


def test_a_bad_partial_signature_on_any_input_fails_the_spend_naming_the_signers(tmp_path: Path) -> None:
    env = Env(tmp_path, Cheat)
    try:
        row = env.submit(env.psbt(payout=50_000))
        assert (row.state, row.error_code) == ("failed", "aborted"), row
        with sqlite3.connect(env.db) as db:
            held = db.execute("SELECT state, signers FROM presignatures WHERE request_id = ?", (row.request_id,))
            states = {(state, signers) for state, signers in held}
        assert len(states) == 1 and next(iter(states))[0] == "failed"
        signers = json.loads(next(iter(states))[1])
        assert {(b.party, b.check) for b in row.blame} == {(p, "partial_signature") for p in signers}
        assert not row.raw_tx and ledger_empty(env)
    finally:
        env.close()


def ledger_empty(env: Env) -> bool:
    return env.service.governance.ledger().spent(KEY_ID, "BTC", 86400, int(env.clock())) == 0


class InProcessClient:
    """What `officer.approve` asks of a coordinator client, answered by the in-process service."""

    def __init__(self, env: Env, officer_id: str) -> None:
        self.env, self.officer_id = env, officer_id

    def get_request(self, request_id: str) -> coordinator_pb2.SigningRequest:
        return request_to_proto(self.env.service.get_request(request_id))

    def governance(self) -> coordinator_pb2.GovernanceStatus:
        return governance_to_proto(self.env.service.get_governance())

    def get_key(self, key_id: str) -> coordinator_pb2.Key:
        return key_to_proto(self.env.service.get_key(key_id))

    def approve(self, request_id: str, approval: bytes) -> coordinator_pb2.SigningRequest:
        return request_to_proto(self.env.service.approve(request_id, approval, officer=self.officer_id))

    def request_trail(self, request_id: str) -> coordinator_pb2.RequestTrail:
        return request_trail(self.env.service, request_id)


class ShowsAnotherPsbt(InProcessClient):
    """A compromised coordinator: the request shown with another PSBT than its spend intent's."""

    def __init__(self, env: Env, officer_id: str, psbt: bytes) -> None:
        super().__init__(env, officer_id)
        self.psbt = psbt

    def get_request(self, request_id: str) -> coordinator_pb2.SigningRequest:
        r = super().get_request(request_id)
        r.psbt = self.psbt
        return r


def test_officers_approve_a_spend_in_the_console_and_with_the_tool(env: Env) -> None:
    env.clock.advance(time.time() - env.clock())  # the console signs its approval at the real time
    row = env.submit(env.psbt(payout=SMALL + 1))
    assert row.state == "pending_approval"
    c1 = InProcessClient(env, "officer-1")
    g = c1.governance()
    doc = PolicyDocument.from_json(g.policy_json)
    now = int(env.clock())
    # The console shows the spend it rebuilt from the PSBT: every output, change recognised, the fee.
    console = Console("officer-1", key("officer-1"), c1, lambda scope: {})  # type: ignore[arg-type]
    view = console.view(c1.get_request(row.request_id), g, doc, "", now)
    assert view["verified"] and view["problem"] == "" and view["intent_digest"] == row.intent_digest.hex()
    spend = SpendIntent.from_bytes(row.intent).spend
    shown = view["intent"]
    assert (shown["kind"], shown["payouts"], shown["inputs"], shown["amount"]) == ("bitcoin_spend", 1, 2, "0.01000001")
    assert [(o["address"], o["amount"], o["change"]) for o in shown["outputs"]] == [
        (spend.outputs[0].address, "0.01000001 BTC", False),
        (spend.outputs[1].address, "0.00198999 BTC", True),
    ]
    assert shown["outputs"][1]["path"] == "m/1/0" and shown["outputs"][0]["status"] == "unlisted"
    assert shown["outputs"][0]["rule"] == "btc-officers: require 2 of officers"
    assert (shown["fee"], shown["inputs_total"]) == ("0.00001 BTC", "0.012 BTC")
    # A coordinator showing another PSBT under this spend intent: not verified, approval refused.
    lying_client = ShowsAnotherPsbt(env, "officer-1", env.psbt(payout=SMALL + 2))
    liar = Console("officer-1", key("officer-1"), lying_client, lambda scope: {})  # type: ignore[arg-type]
    lied = liar.view(lying_client.get_request(row.request_id), g, doc, "", now)
    assert not lied["verified"] and "not signing" in lied["problem"] and lied["intent"]["kind"] == "bitcoin_spend"
    with pytest.raises(IntentMismatch, match="PSBT"):
        liar.approve(row.request_id, view["intent_digest"])
    with pytest.raises(IntentMismatch, match="page showed"):  # a digest the page did not show
        console.approve(row.request_id, "00" * 32)
    assert env.service.get_request(row.request_id).approved_by == ()
    assert console.approve(row.request_id, view["intent_digest"])["state"] == "pending_approval"
    assert env.service.get_request(row.request_id).approved_by == ("officer-1",)
    # The officer's tool rebuilds the spend from the PSBT and approves it.
    for officer_id in ("officer-2",):
        client = InProcessClient(env, officer_id)
        done = officer.approve(client, row.request_id, key(officer_id), officer_id, now=int(env.clock()))  # type: ignore[arg-type]
        assert isinstance(done.review.intent, SpendIntent) and done.review.intent.digest() == row.intent_digest
    assert env.service.get_request(row.request_id).state == "signed"
    # The trail an officer reviews: its audit entries, and the history of the spend's first payee
    # (paid once now: the coordinator's ledger charged the payout).
    trail = request_trail(env.service, row.request_id)
    assert len(trail.entries) >= 4 and trail.destination_payouts == 1
