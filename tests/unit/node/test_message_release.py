"""A signer's own check of a message request (kind `message`): off with no rule, a Permit refused
without a rule naming its spender, and with one, a 2-of-3 threshold signature that eth-account
recovers to the key's address. Every refusal asserts the reason and that the presignature is kept.

In-process `SignerNode`s (parties 1 and 2 of a 2-of-3 key, fixture shares, level 112) under the
demo policy plus two message rules: typed data with two officers, and Permits only for `SPENDER`
(first), so a Permit to anyone else falls to the rule that names no spender.
The release journal pins a request id to the message digest it signed: another message under that
id is refused by each signer (also after a restart), the same message again records nothing.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data

from signer.chains.ethereum import address_of
from signer.node.message_release import partial_sign_message
from signer.node.node import SignerNode
from signer.policy import Action, Group, PolicyError, Release
from signer.policy.message_intent import MESSAGE, MessageIntent, message_intent
from signer.policy.message_rules import EIP191, EIP712, MessageRule
from signer.tss import sign
from signer.tss.presign import PresignaturePublic
from tests.unit.test_eip712 import PERMIT

from .support import KEY_ID, Clock, approve, demo_documents, install, make_nodes, presign, restart

BODY = json.dumps(PERMIT).encode()
SPENDER = PERMIT["message"]["spender"]
TWO = ("officer-1", "officer-2")
OFFICERS = Group("officers", 2)
RULES = (
    MessageRule("router-permits", EIP712, Action("require", OFFICERS), spenders=frozenset({SPENDER})),
    MessageRule("typed", EIP712, Action("require", OFFICERS)),
)


@dataclasses.dataclass
class Env:
    clock: Clock
    nodes: dict[int, SignerNode]
    pid: bytes
    public: bytes

    def release(
        self, rid: str, officers: tuple[str, ...] = (), standard: str = EIP712, body: bytes = BODY
    ) -> tuple[MessageIntent, Release]:
        policy = self.nodes[1].governance.policy(self.clock.now())
        assert policy is not None
        now = self.clock.now()
        intent = message_intent(
            standard,
            body,
            key_id=KEY_ID,
            path=(),
            request_id=rid,
            policy_hash=policy.hash(),
            expires_at=now + 3600,
            assets=policy.assets,
            initiator="backend-1",
        )
        approvals = tuple(approve(intent, officers, now))  # type: ignore[arg-type]
        return intent, Release(rid, approvals, "backend-1", now + 3600, (), policy.hash(), MESSAGE)

    def refused(
        self, rid: str, reason: str, officers: tuple[str, ...] = TWO, standard: str = EIP712, body: bytes = BODY
    ) -> None:
        _, fields = self.release(rid, officers, standard, body)
        with pytest.raises(PolicyError) as exc:
            partial_sign_message(self.nodes[1], KEY_ID, self.pid, standard, body, fields)
        assert exc.value.reason == reason, exc.value
        assert self.pid in self.nodes[1].presignature_ids(KEY_ID)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    clock = Clock()
    nodes = make_nodes(tmp_path_factory.mktemp("messages"), clock)
    registry, demo = demo_documents(clock.now())
    install(nodes.values(), registry, dataclasses.replace(demo, messages=RULES), clock.now())
    pid, public = presign(nodes, b"presign-messages")
    yield Env(clock, nodes, pid, public)
    for n in nodes.values():
        n.close()


def test_a_message_no_rule_allows_is_refused(env: Env) -> None:
    env.refused("m-personal", "message_not_allowed", standard=EIP191, body=b"hello")


def test_a_permit_to_a_spender_no_rule_names_is_refused_whatever_the_officers_approved(env: Env) -> None:
    other = copy.deepcopy(PERMIT)
    other["message"]["spender"] = "0x000000000000000000000000000000000000dEaD"
    env.refused("m-other-spender", "message_spender_not_allowed", body=json.dumps(other).encode())


def test_the_body_must_be_what_the_officers_approved(env: Env) -> None:
    _, fields = env.release("m-swap", TWO)
    cheaper = copy.deepcopy(PERMIT)
    cheaper["message"]["value"] = 1
    with pytest.raises(PolicyError) as exc:
        partial_sign_message(env.nodes[1], KEY_ID, env.pid, EIP712, json.dumps(cheaper).encode(), fields)
    assert exc.value.reason == "intent_mismatch"
    env.refused("m-unapproved", "approvals_pending", officers=())


def test_a_permit_to_a_named_spender_with_the_quorum_signs(env: Env) -> None:
    # Last in the file: it consumes the module's presignature.
    intent, fields = env.release("m-permit", TWO)
    partials = {p: partial_sign_message(n, KEY_ID, env.pid, EIP712, BODY, fields) for p, n in env.nodes.items()}
    assert {p.digest for p in partials.values()} == {intent.message_digest}
    sig = sign.combine(
        PresignaturePublic.from_bytes(env.public),
        intent.message_digest,
        {p: sign.PartialSignature(p, int.from_bytes(s.sigma, "big")) for p, s in partials.items()},
    )
    sender = address_of(env.nodes[1].key_share(KEY_ID).public_key)
    recovered = Account.recover_message(encode_typed_data(full_message=PERMIT), vrs=(sig.v + 27, sig.r, sig.s))
    assert recovered == sender


def _signature(
    env: Env, intent: MessageIntent, fields: Release, body: bytes, pid: bytes, public: bytes
) -> sign.Signature:
    partials = {p: partial_sign_message(n, KEY_ID, pid, EIP712, body, fields) for p, n in env.nodes.items()}
    assert {p.digest for p in partials.values()} == {intent.message_digest}
    return sign.combine(
        PresignaturePublic.from_bytes(public),
        intent.message_digest,
        {p: sign.PartialSignature(p, int.from_bytes(s.sigma, "big")) for p, s in partials.items()},
    )


def test_another_message_under_a_released_request_id_is_refused_by_each_signer(env: Env) -> None:
    # The permit above pinned "m-permit" on both signers; a coordinator now presents another
    # permit, validly approved by the quorum, under the same request id.
    pid, _ = presign(env.nodes, b"presign-messages-2")
    other = copy.deepcopy(PERMIT)
    other["message"]["nonce"] = int(PERMIT["message"]["nonce"]) + 1
    body = json.dumps(other).encode()
    _, fields = env.release("m-permit", TWO, body=body)
    for p in (1, 2):
        with pytest.raises(PolicyError) as exc:
            partial_sign_message(env.nodes[p], KEY_ID, pid, EIP712, body, fields)
        assert exc.value.reason == "request_replayed"
        assert pid in env.nodes[p].presignature_ids(KEY_ID)
    # The pin is read back from the journal after a restart (the presignature is not: memory only).
    pinned = env.nodes[1].governance.releases.pinned("m-permit")
    env.nodes[1] = restart(env.nodes[1], env.clock)
    assert pinned is not None and env.nodes[1].governance.releases.pinned("m-permit") == pinned


def test_the_same_message_again_under_its_request_id_records_nothing_new(env: Env) -> None:
    intent, fields = env.release("m-permit", TWO)
    pid, public = presign(env.nodes, b"presign-messages-3")
    seqs = {p: n.governance.releases.last_seq for p, n in env.nodes.items()}
    sig = _signature(env, intent, fields, BODY, pid, public)
    assert {p: n.governance.releases.last_seq for p, n in env.nodes.items()} == seqs
    sender = address_of(env.nodes[1].key_share(KEY_ID).public_key)
    recovered = Account.recover_message(encode_typed_data(full_message=PERMIT), vrs=(sig.v + 27, sig.r, sig.s))
    assert recovered == sender


def test_a_partial_sign_call_of_a_message_names_nothing_else_and_round_trips() -> None:
    from tsscustody.v1 import common_pb2, signer_pb2

    from signer.node.limits import FieldTooLarge
    from signer.node.message_release import MessageBody
    from signer.node.server import _check_partial_sign
    from signer.node.wire import partial_sign_body, partial_sign_request
    from signer.tss.errors import InvalidInput

    release = Release("m-wire", (), "backend-1", 1, (), b"h" * 32, MESSAGE)
    m = partial_sign_request(KEY_ID, b"p" * 16, MessageBody(EIP191, b"hello"), release)
    _check_partial_sign(m)
    assert partial_sign_body(m) == MessageBody(EIP191, b"hello")
    with_psbt, with_eth = signer_pb2.PartialSignRequest(), signer_pb2.PartialSignRequest()
    with_psbt.CopyFrom(m)
    with_psbt.psbt = b"\x70"
    with_eth.CopyFrom(m)
    with_eth.eth.CopyFrom(common_pb2.EthTransaction(to="0x" + "11" * 20))
    body_only = signer_pb2.PartialSignRequest(key_id=KEY_ID, presignature_id=b"p" * 16, message_body=b"x")
    for bad in (with_psbt, with_eth, body_only):
        with pytest.raises(InvalidInput, match="exactly one"):
            _check_partial_sign(bad)
    huge = signer_pb2.PartialSignRequest()
    huge.CopyFrom(m)
    huge.message_body = b"x" * (64 * 1024 + 1)
    with pytest.raises(FieldTooLarge):
        _check_partial_sign(huge)


def test_a_burst_of_refused_messages_trips_the_signers_refusal_breaker(tmp_path: Path) -> None:
    from signer.policy.breaker import BreakerRule

    clock = Clock()
    nodes = make_nodes(tmp_path, clock)
    try:
        registry, demo = demo_documents(clock.now())
        burst = BreakerRule("refusals-10min", "", 600, kind="refusals", max_count=2)
        install(nodes.values(), registry, dataclasses.replace(demo, breakers=(burst,)), clock.now())
        pid, public = presign(nodes, b"presign-refusals")
        env = Env(clock, nodes, pid, public)
        for n in range(2):  # no message rule: refused, counted
            env.refused(f"m-probe-{n}", "message_not_allowed", standard=EIP191, body=b"probe")
        assert nodes[1].governance_view().frozen_scopes == ()  # at the threshold: not tripped
        env.refused("m-probe-2", "message_not_allowed", standard=EIP191, body=b"probe")  # the third trips it
        assert nodes[1].governance_view().frozen_scopes == (KEY_ID,)
        env.refused("m-probe-3", "frozen", standard=EIP191, body=b"probe")
    finally:
        for n in nodes.values():
            n.close()
