"""Messages (kind `message`) through the coordinator, over in-process signers: an EIP-191 message
waits for the officers, who approve the intent rebuilt from the body, then one presignature signs
it and eth-account recovers the path's address from the stored signature; an EIP-712 Permit to the
spender the rule names, likewise; a message no rule allows is blocked; nothing is charged to the
ledger and no nonce is claimed.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data

from coordinator.cli_common import request_line
from coordinator.cli_message import message_request_json
from coordinator.errors import AlreadyExists, InvalidRequest
from coordinator.officer import IntentMismatch, rebuild_message
from coordinator.service import CoordinatorService
from coordinator.signer_client import LocalSignerClient, SignerClient
from coordinator.store import Store
from coordinator.views import request_to_proto
from signer.chains.ethereum import address_of
from signer.node.node import SignerNode
from signer.policy import Action, Group, demo_policy, public_key_bytes, sign_approval
from signer.policy.message_rules import EIP191, EIP712, MessageRule
from signer.tss import hd
from signer.tss.curve import Point
from tests.unit.test_eip712 import MAIL, PERMIT

from .governance_fixtures import ADMINS, COLD, OFFICERS, Clock, add_key, key, make_nodes, signed_change

KEY_ID = "k-msg"
PATH = (0, 7)
SPENDER = PERMIT["message"]["spender"]
TWO = Group("officers", 2)
RULES = (
    MessageRule("personal", EIP191, Action("require", TWO)),
    MessageRule(
        "router-permits", EIP712, Action("allow"), primary_types=frozenset({"Permit"}), spenders=frozenset({SPENDER})
    ),
)


class Env:
    def __init__(self, tmp_path: Path, rules: tuple[MessageRule, ...] = RULES) -> None:
        self.clock = Clock()
        self.nodes: dict[int, SignerNode] = make_nodes(tmp_path / "signers", KEY_ID, self.clock)
        self.store = Store(tmp_path / "coordinator.db", clock=self.clock)
        record = add_key(self.store, KEY_ID)
        derived = hd.derive(Point.from_bytes(record.public_key), record.chain_code, PATH)
        self.address = address_of(derived.public_key)
        clients = {p: LocalSignerClient(n) for p, n in self.nodes.items()}
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
        policy = dataclasses.replace(policy, messages=rules)
        self.service.propose_change("policy", signed_change(policy, now).to_json(), admin="admin-1")
        self.n = 0

    def submit(self, standard: str, body: bytes):  # type: ignore[no-untyped-def]
        self.n += 1
        return self.service.sign_message(KEY_ID, f"msg-{self.n}", PATH, standard, body, initiator="backend-1")

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


def test_a_personal_message_waits_for_the_officers_and_its_signature_recovers_the_address(env: Env) -> None:
    text = "I control this address: custody audit 2026-12"
    row = env.submit(EIP191, text.encode())
    assert (row.state, row.policy_reason, row.kind) == ("pending_approval", "approvals_pending", "message")
    policy = env.service.governance.policy(int(env.clock()))
    assert policy is not None
    view = request_to_proto(row)
    assert text in view.intent_text and not view.HasField("eth")
    intent = rebuild_message(view, policy.hash(), policy.assets)
    assert intent.digest() == row.intent_digest and bytes(view.message_digest) == intent.message_digest
    # A coordinator showing another message than the intent it recorded is caught by the officer's tool.
    forged = request_to_proto(row)
    forged.message_body = b"I transfer everything"
    with pytest.raises(IntentMismatch):
        rebuild_message(forged, policy.hash(), policy.assets)
    for who in ("officer-1", "officer-2"):
        approval = sign_approval(key(who), who, intent, int(env.clock()))
        env.service.approve(row.request_id, approval.to_bytes(), officer=who)
    view = request_to_proto(env.service.get_request(row.request_id))
    assert view.state == "signed", (view.state, view.policy_reason, view.error)
    assert bytes(view.digest) == intent.message_digest and len(view.message_signature) == 65
    assert Account.recover_message(encode_defunct(text=text), signature=bytes(view.message_signature)) == env.address
    # What tssctl prints: the signature on the request line, the message and its signer in the JSON.
    assert request_line(view).endswith(f"signature 0x{bytes(view.message_signature).hex()}")
    shown = message_request_json(view)
    assert (shown["message_body"], shown["address"]) == ("0x" + text.encode().hex(), env.address)
    assert shown["intent"]["digest"] == intent.digest().hex() and shown["kind"] == "message"
    # Nothing charged, no nonce: the ledger is empty, the request names no transaction.
    assert env.service.governance.ledger().spent(KEY_ID, "ETH", 86400, int(env.clock())) == 0
    assert not view.raw_tx and not view.nonce_allocated
    # The same idempotency key and body finds the same request; another body under it is refused.
    again = env.service.sign_message(KEY_ID, f"msg-{env.n}", PATH, EIP191, text.encode(), initiator="backend-1")
    assert again.request_id == row.request_id
    with pytest.raises(AlreadyExists):
        env.service.sign_message(KEY_ID, f"msg-{env.n}", PATH, EIP191, b"other", initiator="backend-1")


def test_a_permit_to_the_named_spender_is_signed_and_recovers(env: Env) -> None:
    row = env.submit(EIP712, json.dumps(PERMIT).encode())
    assert row.state == "signed", (row.state, row.policy_reason, row.error)
    view = request_to_proto(row)
    signable = encode_typed_data(full_message=PERMIT)
    assert Account.recover_message(signable, signature=bytes(view.message_signature)) == env.address


def test_messages_no_rule_allows_and_undecodable_bodies_are_blocked(env: Env) -> None:
    other = json.loads(json.dumps(PERMIT))
    other["message"]["spender"] = "0x000000000000000000000000000000000000dEaD"
    assert env.submit(EIP712, json.dumps(other).encode()).policy_reason == "message_spender_not_allowed"
    assert env.submit(EIP712, json.dumps(MAIL).encode()).policy_reason == "message_not_allowed"
    row = env.submit(EIP712, b"{not json")
    assert (row.state, row.policy_reason) == ("blocked", "undecodable_message")
    with pytest.raises(InvalidRequest, match="message_standard"):
        env.submit("eip4361", b"hello")
    with pytest.raises(InvalidRequest, match="message_body"):
        env.submit(EIP191, b"")


def test_officers_approve_a_message_with_the_tool_and_the_console_refuses_to(env: Env) -> None:
    from coordinator import officer
    from coordinator.console import MESSAGE_NOT_SHOWN, Console, ConsoleRefused
    from signer.policy.message_intent import MessageIntent
    from tests.unit.coordinator.test_btc_requests import InProcessClient

    row = env.submit(EIP191, b"proof of control")
    c1 = InProcessClient(env, "officer-1")  # type: ignore[arg-type]
    console = Console("officer-1", key("officer-1"), c1, lambda scope: {})  # type: ignore[arg-type]
    view = console.view(request_to_proto(row), c1.governance(), None, "", int(env.clock()))
    assert (view["verified"], view["problem"], view["intent"]) == (False, MESSAGE_NOT_SHOWN, None)
    with pytest.raises(ConsoleRefused, match="tssctl approve"):
        console.approve(row.request_id, row.intent_digest.hex())
    for officer_id in ("officer-1", "officer-2"):
        client = InProcessClient(env, officer_id)  # type: ignore[arg-type]
        done = officer.approve(client, row.request_id, key(officer_id), officer_id, now=int(env.clock()))  # type: ignore[arg-type]
        assert isinstance(done.review.intent, MessageIntent) and done.review.intent.digest() == row.intent_digest
    signed = request_to_proto(env.service.get_request(row.request_id))
    assert signed.state == "signed"
    recovered = Account.recover_message(encode_defunct(b"proof of control"), signature=bytes(signed.message_signature))
    assert recovered == env.address
