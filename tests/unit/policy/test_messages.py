"""Message signing as policy sees it: off unless a rule allows it, approval-like typed data only
for a spender a rule names, the domain and message shown decoded, and the rules as governed data
(JSON round trip, hash, tightening)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from signer.chains.eip712 import eip191_digest
from signer.policy import Action, Group, PolicyDocument, PolicyError, sign_approval, verify_approvals
from signer.policy.message_intent import MessageIntent, check_message, message_intent
from signer.policy.message_rules import EIP191, EIP712, MessageRule
from tests.unit.test_eip712 import MAIL, PERMIT

from .support import BACKEND, T0, key, policy, registry

SPENDER = PERMIT["message"]["spender"]
USDC = PERMIT["domain"]["verifyingContract"]
TWO = Group("officers", 2)


def _intent(doc: PolicyDocument, standard: str, body: Any, rid: str = "m-1") -> MessageIntent:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return message_intent(
        standard,
        raw,
        key_id="k",
        path=(0,),
        request_id=rid,
        policy_hash=doc.hash(),
        expires_at=T0 + 3600,
        assets=doc.assets,
        initiator=BACKEND,
    )


def _decide(doc: PolicyDocument, intent: MessageIntent, officers: tuple[str, ...] = ()) -> str:
    approvals = [sign_approval(key(o), o, intent, T0) for o in officers]
    approved = verify_approvals(registry(), intent, approvals, T0, BACKEND)
    return check_message(doc, registry(), intent, approved, T0, BACKEND).reason


def test_messages_are_refused_without_a_rule() -> None:
    doc = policy()
    assert _decide(doc, _intent(doc, EIP191, b"hello")) == "message_not_allowed"
    assert _decide(doc, _intent(doc, EIP712, MAIL)) == "message_not_allowed"


def test_a_permit_is_refused_unless_a_rule_names_its_spender() -> None:
    loose = policy(messages=(MessageRule("any-typed", EIP712, Action("require", TWO)),))
    permit = _intent(loose, EIP712, PERMIT)
    assert permit.approval_like and permit.spenders == (SPENDER,)
    # Two officers' approvals do not make up for the missing spender rule.
    assert _decide(loose, permit, ("alice", "bob")) == "message_spender_not_allowed"
    named = MessageRule("router-permits", EIP712, Action("require", TWO), contracts=frozenset({USDC}))
    named = MessageRule(**{**_fields(named), "spenders": frozenset({SPENDER})})
    doc = policy(messages=(named,))
    permit = _intent(doc, EIP712, PERMIT)
    assert _decide(doc, permit) == "approvals_pending"
    assert _decide(doc, permit, ("alice", "bob")) == "approved"
    # Another spender in the same Permit is refused under that rule.
    other = copy.deepcopy(PERMIT)
    other["message"]["spender"] = "0x000000000000000000000000000000000000dEaD"
    assert _decide(doc, _intent(doc, EIP712, other), ("alice", "bob")) == "message_spender_not_allowed"


def _fields(r: MessageRule) -> dict[str, Any]:
    return {n: getattr(r, n) for n in r.__slots__}  # type: ignore[attr-defined]


def test_approval_like_by_name_without_a_spender_field_is_refused() -> None:
    doc = policy(messages=(MessageRule("any-typed", EIP712, Action("allow")),))
    data = copy.deepcopy(MAIL)
    data["types"]["PermitMail"] = data["types"].pop("Mail")
    data["primaryType"] = "PermitMail"
    intent = _intent(doc, EIP712, data)
    assert intent.approval_like and intent.spenders == ()
    assert _decide(doc, intent) == "message_spender_not_allowed"
    assert _decide(doc, _intent(doc, EIP712, MAIL)) == "allowed"


def test_rules_bind_the_domain_and_the_standard() -> None:
    mail_only = MessageRule(
        "mail", EIP712, Action("allow"), networks=frozenset({"eip155:1"}), primary_types=frozenset({"Mail"})
    )
    doc = policy(messages=(mail_only, MessageRule("proofs", EIP191, Action("require", TWO))))
    assert _decide(doc, _intent(doc, EIP712, MAIL)) == "allowed"
    elsewhere = copy.deepcopy(MAIL)
    elsewhere["domain"]["chainId"] = 137
    with pytest.raises(PolicyError) as exc:
        _intent(doc, EIP712, elsewhere)  # Polygon is not in this registry
    assert exc.value.reason == "unknown_network"
    assert _decide(doc, _intent(doc, EIP191, b"proof of reserves")) == "approvals_pending"
    with pytest.raises(PolicyError) as exc:
        _intent(doc, EIP712, b"{not json")
    assert exc.value.reason == "undecodable_message"


def test_officers_see_the_domain_and_message_decoded() -> None:
    doc = policy()
    text = _intent(doc, EIP712, PERMIT).describe()
    assert "Sign EIP-712 typed data Permit on eip155:1 (Ethereum)" in text, text
    for shown in ("name: USD Coin", "version: 2", "chainId: 1", f"verifyingContract: {USDC}", f"spender: {SPENDER}"):
        assert shown in text, text
    assert f"APPROVAL    grants {SPENDER}" in text
    personal = _intent(doc, EIP191, b"I own this address")
    assert "I own this address" in personal.describe()
    assert personal.message_digest == eip191_digest(b"I own this address")


def test_the_intent_digest_binds_the_message() -> None:
    doc = policy()
    a, b = _intent(doc, EIP191, b"one"), _intent(doc, EIP191, b"two")
    assert a.digest() != b.digest()
    approval = sign_approval(key("alice"), "alice", a, T0)
    with pytest.raises(PolicyError) as exc:
        verify_approvals(registry(), b, [approval], T0, BACKEND)
    assert exc.value.reason == "intent_mismatch"


def test_message_rules_are_governed_data() -> None:
    rules = (
        MessageRule("permits", EIP712, Action("require", TWO), spenders=frozenset({SPENDER})),
        MessageRule("proofs", EIP191, Action("allow")),
    )
    doc = policy(messages=rules)
    again = PolicyDocument.from_json(doc.to_json())
    assert again == doc and again.hash() == doc.hash()
    assert policy().hash() != doc.hash()
    assert "messages" not in json.loads(policy().to_json())  # old documents load and hash as before
    assert policy(messages=rules[:1]).is_tightening_of(doc)  # a trailing rule removed
    assert not doc.is_tightening_of(policy(messages=rules[:1]))  # a rule added
    assert not policy(messages=rules[1:]).is_tightening_of(doc)  # an earlier rule removed
    with pytest.raises(PolicyError):
        MessageRule("bad", EIP191, Action("allow"), spenders=frozenset({SPENDER}))


def test_the_stored_form_round_trips_and_is_told_from_other_intents() -> None:
    from signer.policy.message_intent import is_message_intent

    doc = policy()
    for intent in (_intent(doc, EIP191, b"hello"), _intent(doc, EIP712, PERMIT)):
        stored = intent.to_bytes()
        assert is_message_intent(stored)
        back = MessageIntent.from_bytes(stored)
        assert back == intent and back.digest() == intent.digest() and back.describe() == intent.describe()
    with pytest.raises(PolicyError) as exc:
        MessageIntent.from_bytes(stored[:-3])
    assert exc.value.reason == "intent_malformed"
    assert not is_message_intent(b"\x00" * 40)
