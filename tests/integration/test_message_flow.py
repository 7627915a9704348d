"""Messages end to end with real processes (3 signers + coordinator, mTLS, level 112).

The cluster's genesis policy (signed by both demo admins) is the demo policy plus two message
rules: EIP-191 personal messages with two officers, and EIP-712 `Permit`s to one named spender
automatically. An EIP-191 message is submitted with `tssctl sign-message`, approved by two
officers with `tssctl approve` (which rebuilds the message intent from the body), signed, and
eth-account recovers the path's address from the signature; a Permit to the named spender is
signed at once and recovers too; typed data no rule allows is blocked. Then the attacks, by a
compromised coordinator (a client holding the coordinator's certificate, calling each signer's
PartialSign directly): another message under the approved request id is refused by every signer;
a message no rule allows, with officers' approvals of it, is refused by every signer; the same
message again under its request id signs only that message's digest.
"""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data
from tsscustody.v1 import common_pb2, coordinator_pb2

from coordinator import cluster, officer, relay
from coordinator.cli_errors import EXIT_NOT_SIGNED
from coordinator.client import CoordinatorClient
from coordinator.signer_client import GrpcSignerClient, SessionParams, SignerRejected
from signer.chains.ethereum import address_of
from signer.node.message_release import MessageBody
from signer.node.node import PartialSig
from signer.node.tls import TlsFiles
from signer.policy import Action, Group, PolicyDocument, Release, sign_approval
from signer.policy.message_intent import MESSAGE, MessageIntent, message_intent
from signer.policy.message_rules import EIP191, EIP712, MessageRule
from signer.tss import hd, sign
from signer.tss.curve import Point
from signer.tss.presign import PresignaturePublic
from tests.unit.test_eip712 import MAIL, PERMIT

PATH = (0, 7)
TEXT = "I control this address: custody audit"
SPENDER = PERMIT["message"]["spender"]
RULES = (
    MessageRule("personal", EIP191, Action("require", Group("officers", 2))),
    MessageRule(
        "router-permits", EIP712, Action("allow"), primary_types=frozenset({"Permit"}), spenders=frozenset({SPENDER})
    ),
)


def _with_messages(policy: PolicyDocument) -> PolicyDocument:
    return dataclasses.replace(policy, messages=RULES)


@pytest.fixture(scope="module")
def live_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[cluster.ClusterInfo]:
    """The conftest's cluster, its genesis policy with the two message rules."""
    root = tmp_path_factory.mktemp("message-cluster")
    info = cluster.up(root, n=3, threshold=2, level="112", adjust_policy=_with_messages)
    try:
        yield info
    finally:
        cluster.down(root)


@pytest.fixture(scope="module")
def key(live_cluster: cluster.ClusterInfo) -> coordinator_pb2.Key:
    with CoordinatorClient(live_cluster.coordinator, live_cluster.client_tls("operator")) as op:
        return op.create_key("message-key", 2, "112")


@pytest.fixture(scope="module")
def rogue(live_cluster: cluster.ClusterInfo) -> Iterator[dict[int, GrpcSignerClient]]:
    """Signer clients holding the coordinator's own certificate: a compromised coordinator."""
    tls = TlsFiles.in_dir(live_cluster.root / "certs", "coordinator")
    clients = {p: GrpcSignerClient(p, addr, tls) for p, addr in live_cluster.signers.items()}
    yield clients
    for c in clients.values():
        c.close()


def _address(key: coordinator_pb2.Key) -> str:
    derived = hd.derive(Point.from_bytes(bytes(key.public_key)), bytes(key.chain_code), PATH)
    return address_of(derived.public_key)


def _approvals(live_cluster: cluster.ClusterInfo, intent: MessageIntent) -> tuple[bytes, ...]:
    now = int(time.time())
    return tuple(
        sign_approval(officer.load_key(live_cluster.officer_key(w)), w, intent, now).to_bytes()
        for w in ("officer-1", "officer-2")
    )


def test_messages_are_signed_as_the_rules_say_and_a_coordinator_gets_nothing_else(
    live_cluster: cluster.ClusterInfo,
    key: coordinator_pb2.Key,
    tssctl: Any,
    rogue: dict[int, GrpcSignerClient],
    tmp_path: Path,
) -> None:
    rc, out, err = tssctl("sign-message", "--key", key.key_id, "--path", "m/0/7", "--eip191", TEXT)
    assert rc == 0 and (out["state"], out["policy_reason"], out["kind"]) == (
        "pending_approval",
        "approvals_pending",
        "message",
    ), err
    request_id = out["request_id"]
    for who in ("officer-1", "officer-2"):
        rc, done, err = tssctl(
            "approve", request_id, "--yes", "--officer", who, "--key", str(live_cluster.officer_key(who))
        )
        assert rc == 0 and done["intent_verified"] and done["intent_digest"] == out["intent_digest"], err
    with CoordinatorClient(live_cluster.coordinator, live_cluster.client_tls("operator"), timeout=300) as c:
        for _ in c.watch(request_id):
            pass
    rc, shown, err = tssctl("request", "show", request_id)
    assert rc == 0 and shown["state"] == "signed" and shown["intent_verified"] is True, (shown, err)
    signature = bytes.fromhex(shown["signature"].removeprefix("0x"))
    assert Account.recover_message(encode_defunct(text=TEXT), signature=signature) == _address(key)

    # A Permit to the spender the rule names: automatic; eth-account recovers the same address.
    permit = tmp_path / "permit.json"
    permit.write_text(json.dumps(PERMIT))
    rc, out, err = tssctl("sign-message", "--key", key.key_id, "--path", "m/0/7", "--eip712", str(permit))
    assert rc == 0 and out["state"] == "signed" and out["intent"]["spenders"] == [SPENDER], err
    signed = bytes.fromhex(out["signature"].removeprefix("0x"))
    assert Account.recover_message(encode_typed_data(full_message=PERMIT), signature=signed) == _address(key)
    # Typed data no rule allows is blocked by the coordinator.
    mail = tmp_path / "mail.json"
    mail.write_text(json.dumps(MAIL))
    rc, out, err = tssctl("sign-message", "--key", key.key_id, "--eip712", str(mail))
    assert rc == EXIT_NOT_SIGNED and (out["state"], out["policy_reason"]) == ("blocked", "message_not_allowed")

    # The attacks. The compromised coordinator holds the officers' approvals of the signed message
    # (re-signed here with their keys: the same officers, the same intent).
    with CoordinatorClient(live_cluster.coordinator, live_cluster.client_tls("operator")) as c:
        r = c.get_request(request_id)
    intent = MessageIntent.from_bytes(r.intent)
    approvals = _approvals(live_cluster, intent)
    release = Release(request_id, approvals, r.initiator, r.expires_at, PATH, intent.policy_hash, MESSAGE)
    sets = ((1, 3), (2, 3))
    sids: dict[tuple[int, int], bytes] = {}
    publics: dict[tuple[int, int], bytes] = {}
    for signing_set in sets:
        sids[signing_set] = uuid.uuid4().bytes
        params = SessionParams(key.key_id, path=PATH)
        clients = {p: rogue[p] for p in signing_set}
        outputs = relay.run_session(clients, sids[signing_set], "presign", signing_set, params)
        publics[signing_set] = outputs[signing_set[0]]

    def refusals(body: MessageBody, rel: Release) -> dict[int, str]:
        reasons: dict[int, str] = {}
        for signing_set in sets:
            for p in signing_set:
                with pytest.raises(SignerRejected) as exc:
                    rogue[p].partial_sign(key.key_id, sids[signing_set], body, rel)
                reasons.setdefault(p, exc.value.reason)
        return reasons

    # 1. Another message under the approved request id: the two signers that signed have the id
    # pinned to the message's digest; the third finds that the officers approved another message.
    reasons = refusals(MessageBody(EIP191, b"I hand over control of this address"), release)
    assert sorted(reasons.values()) == ["intent_mismatch", "request_replayed", "request_replayed"], reasons
    # 2. A message no rule allows, under a fresh request id, with two officers' approvals of it.
    governance = _governance(live_cluster)
    mail_body = json.dumps(MAIL).encode()
    mail_intent = message_intent(
        EIP712,
        mail_body,
        key_id=key.key_id,
        path=PATH,
        request_id="rogue-" + uuid.uuid4().hex,
        policy_hash=intent.policy_hash,
        expires_at=r.expires_at,
        assets=officer.policy_assets(governance),
        initiator=r.initiator,
    )
    mail_release = dataclasses.replace(
        release, request_id=mail_intent.request_id, approvals=_approvals(live_cluster, mail_intent)
    )
    reasons = refusals(MessageBody(EIP712, mail_body), mail_release)
    assert set(reasons.values()) == {"message_not_allowed"}, reasons
    # 3. The same message again under its request id: the signers sign only that message's digest,
    # recording nothing new; the signature recovers the same address over the same text.
    answers: dict[int, PartialSig] = {
        p: rogue[p].partial_sign(key.key_id, sids[(1, 3)], MessageBody(EIP191, TEXT.encode()), release) for p in (1, 3)
    }
    assert {a.digest for a in answers.values()} == {intent.message_digest}
    public = PresignaturePublic.from_bytes(publics[(1, 3)])
    partials = {p: sign.PartialSignature(p, int.from_bytes(a.sigma, "big")) for p, a in answers.items()}
    again = sign.combine(public, intent.message_digest, partials)
    vrs = (again.v + 27, again.r, again.s)
    assert Account.recover_message(encode_defunct(text=TEXT), vrs=vrs) == _address(key)


def _governance(live_cluster: cluster.ClusterInfo) -> coordinator_pb2.GovernanceStatus:
    with CoordinatorClient(live_cluster.coordinator, live_cluster.client_tls("operator")) as c:
        return c.governance()


def test_a_message_call_naming_a_transaction_too_is_invalid(
    live_cluster: cluster.ClusterInfo, key: coordinator_pb2.Key
) -> None:
    with CoordinatorClient(live_cluster.coordinator, live_cluster.client_tls("backend")) as c:
        for extra in ({"psbt": b"psbt\xff"}, {"eth": common_pb2.EthTransaction(to="0x" + "11" * 20)}):
            request = coordinator_pb2.SubmitSigningRequestRequest(
                key_id=key.key_id, idempotency_key="x", message_standard=EIP191, message_body=b"hi"
            )
            request.MergeFrom(coordinator_pb2.SubmitSigningRequestRequest(**extra))
            with pytest.raises(grpc.RpcError) as exc:
                c.stub.SubmitSigningRequest(request, timeout=30)
            assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "message" in str(exc.value.details())
