"""A Bitcoin spend end to end with real processes (3 signers + coordinator, mTLS, level 112).

The cluster's genesis policy (signed by both demo admins) is the demo policy plus the regtest
network, BTC, its fee rule and BTC rules (tests/btc_support.py: up to 0.01 BTC automatic, above
it two officers). A 2-input 2-output PSBT from the key's P2WPKH addresses is submitted with
`tssctl withdraw-btc`, approved by two officers with `tssctl approve` (which rebuilds the spend
intent from the PSBT), signed with one presignature per input, and every input's signature is
verified independently against its BIP143 digest; the txid is recomputed. Then the attack: a
compromised coordinator (a client holding the coordinator's certificate, calling the signers'
PartialSign directly) sends another PSBT under the approved request id: every signer refuses.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from tsscustody.v1 import common_pb2, coordinator_pb2, signer_pb2, signer_pb2_grpc

from coordinator import cluster, officer, relay
from coordinator.cli_errors import EXIT_NOT_SIGNED
from coordinator.client import CoordinatorClient
from coordinator.signer_client import GrpcSignerClient, SessionParams, SignerRejected
from signer.node.btc_release import PsbtInput
from signer.node.tls import TlsFiles, channel_credentials
from signer.policy import Release, sign_approval
from signer.policy.btc_intent import SpendIntent
from signer.tss.curve import Point
from tests.btc_support import SMALL, extract, foreign_script, make_psbt, own_script, verify_transaction, with_bitcoin

IN_PATHS = ((0, 1), (0, 2))
AMOUNTS = (700_000, 500_000)


@pytest.fixture(scope="module")
def live_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[cluster.ClusterInfo]:
    """The conftest's cluster, its genesis policy with a Bitcoin network (regtest) and BTC rules."""
    root = tmp_path_factory.mktemp("btc-cluster")
    info = cluster.up(root, n=3, threshold=2, level="112", adjust_policy=lambda p: with_bitcoin(p))
    try:
        yield info
    finally:
        cluster.down(root)


@pytest.fixture(scope="module")
def key(live_cluster: cluster.ClusterInfo) -> coordinator_pb2.Key:
    with CoordinatorClient(live_cluster.coordinator, live_cluster.client_tls("operator")) as op:
        return op.create_key("btc-hot-wallet", 2, "112")


def _psbt(key: coordinator_pb2.Key, payout: int, fee: int = 2_000) -> bytes:
    """Two inputs (0.007 and 0.005 BTC at m/0/1 and m/0/2) paying `payout` to a new address and
    the rest to change at m/1/0."""
    public, chain_code = Point.from_bytes(bytes(key.public_key)), bytes(key.chain_code)
    change = sum(AMOUNTS) - payout - fee
    return make_psbt(
        public,
        chain_code,
        list(zip(IN_PATHS, AMOUNTS, strict=True)),
        [(payout, foreign_script(), None), (change, own_script(public, chain_code, (1, 0)), (1, 0))],
    )


def _spent(key: coordinator_pb2.Key) -> list[tuple[int, bytes]]:
    public, chain_code = Point.from_bytes(bytes(key.public_key)), bytes(key.chain_code)
    return [(a, own_script(public, chain_code, p)) for a, p in zip(AMOUNTS, IN_PATHS, strict=True)]


@pytest.fixture(scope="module")
def rogue(live_cluster: cluster.ClusterInfo) -> Iterator[dict[int, GrpcSignerClient]]:
    """Signer clients holding the coordinator's own certificate: a compromised coordinator."""
    tls = TlsFiles.in_dir(live_cluster.root / "certs", "coordinator")
    clients = {p: GrpcSignerClient(p, addr, tls) for p, addr in live_cluster.signers.items()}
    yield clients
    for c in clients.values():
        c.close()


def test_a_two_input_spend_approved_by_officers_is_signed_and_every_input_verifies(
    live_cluster: cluster.ClusterInfo,
    key: coordinator_pb2.Key,
    tssctl: Any,
    rogue: dict[int, GrpcSignerClient],
    tmp_path: Path,
) -> None:
    psbt = _psbt(key, SMALL + 50_000)  # above the automatic tier: two officers
    path = tmp_path / "spend.psbt"
    path.write_text(base64.b64encode(psbt).decode() + "\n")  # as wallets export it
    rc, out, err = tssctl("withdraw-btc", "--key", key.key_id, "--psbt", str(path))
    assert rc == 0 and (out["state"], out["policy_reason"]) == ("pending_approval", "approvals_pending"), err
    outputs = out["intent"]["outputs"]
    assert [o["amount"] for o in outputs] == [str(SMALL + 50_000), str(sum(AMOUNTS) - SMALL - 52_000)]
    assert [o["change_path"] for o in outputs] == [None, [1, 0]] and out["intent"]["fee"] == "2000"
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
    raw = bytes.fromhex(shown["btc_tx"])
    # Every input's signature checked by `cryptography` against the BIP143 digest embit computes
    # from the signed transaction, each witness key hashing to the spent script; the txid recomputed.
    assert verify_transaction(raw, _spent(key)) == shown["txid"]
    assert extract(base64.b64decode(shown["signed_psbt"])) == raw
    assert sorted(shown["approved_by"]) == ["officer-1", "officer-2"]

    # The attack: the compromised coordinator holds the officers' approvals of this spend (re-signed
    # here with their keys: the same officers, the same intent) and asks for another PSBT of the
    # same shape (another payee) under the approved request id, straight to each signer's PartialSign.
    with CoordinatorClient(live_cluster.coordinator, live_cluster.client_tls("operator")) as c:
        r = c.get_request(request_id)
    intent = SpendIntent.from_bytes(r.intent)
    now = int(time.time())
    approvals = tuple(
        sign_approval(officer.load_key(live_cluster.officer_key(w)), w, intent, now).to_bytes()
        for w in ("officer-1", "officer-2")
    )
    release = Release(request_id, approvals, r.initiator, r.expires_at, IN_PATHS[0], intent.policy_hash, r.kind)
    evil = PsbtInput(_psbt(key, SMALL + 50_000), 0)
    reasons: dict[int, str] = {}
    for signing_set in ((1, 3), (2, 3)):
        sid = uuid.uuid4().bytes
        params = SessionParams(key.key_id, path=IN_PATHS[0])
        relay.run_session({p: rogue[p] for p in signing_set}, sid, "presign", signing_set, params)
        for p in signing_set:
            with pytest.raises(SignerRejected) as exc:
                rogue[p].partial_sign(key.key_id, sid, evil, release)
            reasons.setdefault(p, exc.value.reason)
    # The two signers that signed the spend have the request id pinned to its inputs' digests; the
    # third finds that the officers approved another spend.
    assert sorted(reasons.values()) == ["intent_mismatch", "request_replayed", "request_replayed"], reasons


def test_an_undecodable_psbt_is_blocked_and_a_small_spend_is_automatic(
    live_cluster: cluster.ClusterInfo, key: coordinator_pb2.Key, tssctl: Any, tmp_path: Path
) -> None:
    path = tmp_path / "small.psbt"
    path.write_bytes(_psbt(key, 100_000))
    rc, out, err = tssctl("withdraw-btc", "--key", key.key_id, "--psbt", str(path))
    assert rc == 0 and out["state"] == "signed", err
    assert verify_transaction(bytes.fromhex(out["btc_tx"]), _spent(key)) == out["txid"]

    def strip(p: Any) -> None:
        for inp in p.inputs:
            inp.non_witness_utxo = None

    public, chain_code = Point.from_bytes(bytes(key.public_key)), bytes(key.chain_code)
    bare = make_psbt(public, chain_code, [(IN_PATHS[0], 250_000)], [(240_000, foreign_script(), None)], edit=strip)
    path.write_bytes(bare)
    rc, out, err = tssctl("withdraw-btc", "--key", key.key_id, "--psbt", str(path))
    assert rc == EXIT_NOT_SIGNED and (out["state"], out["policy_reason"]) == ("blocked", "undecodable_transaction")


def test_calls_naming_both_a_transaction_and_a_psbt_or_neither_are_invalid(
    live_cluster: cluster.ClusterInfo, key: coordinator_pb2.Key
) -> None:
    psbt = _psbt(key, 100_000)
    with CoordinatorClient(live_cluster.coordinator, live_cluster.client_tls("backend")) as c:
        for extra in ({"path": [0, 1]}, {"eth": common_pb2.EthTransaction(to="0x" + "11" * 20)}):
            request = coordinator_pb2.SubmitSigningRequestRequest(key_id=key.key_id, idempotency_key="x", psbt=psbt)
            request.MergeFrom(coordinator_pb2.SubmitSigningRequestRequest(**extra))
            with pytest.raises(grpc.RpcError) as exc:
                c.stub.SubmitSigningRequest(request, timeout=30)
            assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "no eth" in str(exc.value.details())
    tls = TlsFiles.in_dir(live_cluster.root / "certs", "coordinator")
    with grpc.secure_channel(live_cluster.signers[1], channel_credentials(tls)) as channel:
        stub = signer_pb2_grpc.SignerStub(channel)
        both = signer_pb2.PartialSignRequest(
            key_id=key.key_id, presignature_id=b"p" * 16, psbt=psbt, eth=common_pb2.EthTransaction(to="0x" + "11" * 20)
        )
        for call in (both, signer_pb2.PartialSignRequest(key_id=key.key_id, presignature_id=b"p" * 16)):
            with pytest.raises(grpc.RpcError) as exc:
                stub.PartialSign(call, timeout=30)
            assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "exactly one" in str(exc.value.details())
