"""The coordinator's gRPC surface, in one process over real mutual TLS on loopback:
three signer servers (signer.node.server), `GrpcSignerClient`s, the coordinator server, and the
public client. Shares and aux info are cached fixtures, so only presigning runs. The demo governance
is installed through ProposeChange with an admin certificate (and so on every signer over gRPC).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import grpc
import pytest
from eth_account import Account
from tsscustody.v1 import coordinator_pb2
from tsscustody_client import error_info

from coordinator import certs, relay
from coordinator.attestation import ATTESTATION, verify_attestation
from coordinator.client import CoordinatorClient
from coordinator.server import create_server
from coordinator.service import CoordinatorService, reject_message
from coordinator.signer_client import (
    GrpcSignerClient,
    SessionParams,
    SignerClient,
)
from coordinator.store import KeyRecord, Store
from coordinator.views import key_to_proto
from signer.chains.ethereum import Eip1559Tx, LegacyTx
from signer.node import blame_codec
from signer.node import server as signer_server
from signer.node.config import NodeConfig
from signer.node.identity import Identity
from signer.node.node import PartialSig, SignerNode
from signer.node.sessions import RELAY, Envelope
from signer.node.store import EncryptedStore, load_kek, write_kek_file
from signer.node.tls import TlsFiles
from signer.node.wire_tx import tx_from_proto, tx_to_proto
from signer.policy import ALL_KEYS, Intent, Release, UnfreezeOrder, sign_approval, sign_freeze
from signer.tss.params import LEVEL_112
from tests.sessions import aux_from_fixtures, keygen_shares

from .governance_fixtures import genesis_changes, key, trusted_admins

PARTIES = (1, 2, 3)
KEY_ID = "k-grpc"
# 0.001 ETH: its fee (0.00063 ETH) stays under the demo policy's relative cap (fee <= amount).
TX = Eip1559Tx(1, 3, 10**9, 30 * 10**9, 21000, "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", 10**15)


@dataclasses.dataclass
class Cluster:
    certs: Path
    signer_addrs: dict[int, str]
    coordinator: str
    service: CoordinatorService
    clients: dict[int, GrpcSignerClient]

    def client(self, name: str) -> CoordinatorClient:
        return CoordinatorClient(self.coordinator, TlsFiles.in_dir(self.certs, name), timeout=60)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("grpc")
    cdir = root / "certs"
    certs.create_ca(cdir)
    for name, role in [
        ("coordinator", "coordinator"),
        ("backend", "backend"),
        ("operator", "operator"),
        ("officer-1", "officer"),
        ("officer-2", "officer"),
        ("admin-1", "admin"),
        ("auditor", "auditor"),
    ]:
        certs.issue(cdir, name, role)
    idents = {p: Identity.generate(p) for p in PARTIES}
    shares, aux = keygen_shares(2, PARTIES), aux_from_fixtures(LEVEL_112, PARTIES)
    servers: list[grpc.Server] = []
    nodes: list[SignerNode] = []
    addrs: dict[int, str] = {}
    for p in PARTIES:
        certs.issue(cdir, f"signer-{p}", "signer")
        d = root / f"signer-{p}"
        d.mkdir()
        write_kek_file(d / "kek")
        store = EncryptedStore(d / "store", load_kek(d / "kek"))
        store.put("identity", idents[p].to_bytes())
        store.put(f"keys/{KEY_ID}/share", shares[p].to_bytes())
        store.put(f"keys/{KEY_ID}/aux", aux[p].to_bytes())
        peers = {q: idents[q].public() for q in PARTIES if q != p}
        tls = TlsFiles.in_dir(cdir, f"signer-{p}")
        config = NodeConfig(p, "127.0.0.1:0", d, d / "kek", tls, "112", peers, 0, trusted_admins=trusted_admins())
        node = SignerNode(config, primes=lambda bits: 0)
        server, port = signer_server.create_server(node, "127.0.0.1:0")
        server.start()
        servers.append(server)
        nodes.append(node)
        addrs[p] = f"127.0.0.1:{port}"
    coord_tls = TlsFiles.in_dir(cdir, "coordinator")
    clients = {p: GrpcSignerClient(p, a, coord_tls, session_timeout=60) for p, a in addrs.items()}
    db = Store(root / "coordinator.db")
    s1 = shares[1]
    db.add_key(
        KeyRecord(
            KEY_ID, "hot", 2, PARTIES, "112", s1.public_key.to_bytes(), s1.chain_code, s1.epoch, aux[1].epoch_id, 0.0
        )
    )
    service = CoordinatorService(db, dict[int, SignerClient](clients), level="112")
    server, port = create_server(service, "127.0.0.1:0", coord_tls)
    server.start()
    cluster = Cluster(cdir, addrs, f"127.0.0.1:{port}", service, clients)
    registry_json, policy_json = genesis_changes(int(db.now()))
    with cluster.client("admin-1") as admin:
        for kind, change in (("registry", registry_json), ("policy", policy_json)):
            admin.stub.ProposeChange(coordinator_pb2.ProposeChangeRequest(kind=kind, change_json=change), timeout=30)
    yield cluster
    server.stop(grace=None).wait()
    service.close()
    for s in servers:
        s.stop(grace=None).wait()
    for c in clients.values():
        c.close()
    for n in nodes:
        n.close()


def test_health_and_node_status(cluster: Cluster) -> None:
    for p, c in cluster.clients.items():
        assert c.healthy()
        st = c.status()
        assert st.party == p and KEY_ID in st.key_ids


def test_get_key(cluster: Cluster) -> None:
    with cluster.client("operator") as op:
        key = op.get_key(KEY_ID)
    assert key == key_to_proto(cluster.service.get_key(KEY_ID))
    assert key.eth_address.startswith("0x") and list(key.parties) == list(PARTIES)


def test_sign_over_grpc_then_watch_and_list(cluster: Cluster) -> None:
    with cluster.client("backend") as be:
        req = be.sign_eth(KEY_ID, tx_to_proto(TX), "grpc-1", (1, 2))
        assert req.state == "signed"
        assert Account.recover_transaction(req.raw_tx) == req.from_address
        again = be.sign_eth(KEY_ID, tx_to_proto(TX), "grpc-1", (1, 2))
        assert again == req
        states = [r.state for r in be.watch(req.request_id)]
        assert states[0] == "submitted" and states[-1] == "signed"
        assert be.get_request(req.request_id) == req
        listed = be.stub.ListRequests(coordinator_pb2.ListRequestsRequest(key_id=KEY_ID), timeout=10)
        assert req.request_id in [r.request_id for r in listed.requests]


def test_a_legacy_transaction_over_grpc_is_signed_with_an_eip155_v(cluster: Cluster) -> None:
    # Through both servers: the coordinator and every signer read `legacy` and `gas_price` off the
    # wire and hash the EIP-155 body themselves.
    legacy = LegacyTx(1, 4, 30 * 10**9, 21000, TX.to, 10**15)
    with cluster.client("backend") as be:
        req = be.sign_eth(KEY_ID, tx_to_proto(legacy), "grpc-legacy", (1, 2))
        assert req.state == "signed", (req.state, req.policy_reason, req.error)
        assert req.digest == legacy.signing_digest() and req.raw_tx[0] >= 0xC0
        assert Account.recover_transaction(req.raw_tx) == req.from_address
        assert bytes(req.raw_tx) == legacy.raw_signed(int.from_bytes(req.r, "big"), int.from_bytes(req.s, "big"), req.v)
        assert tx_from_proto(req.eth) == legacy  # request show returns the legacy body


def _code(exc: pytest.ExceptionInfo[grpc.RpcError]) -> Any:
    return exc.value.code()


def test_status_codes(cluster: Cluster) -> None:
    with cluster.client("backend") as be:
        with pytest.raises(grpc.RpcError) as exc:
            be.sign_eth(KEY_ID, tx_to_proto(dataclasses.replace(TX, value=1)), "grpc-1", (1, 2))
        assert _code(exc) == grpc.StatusCode.ALREADY_EXISTS
        bad = tx_to_proto(TX)
        bad.to = "0x1234"
        with pytest.raises(grpc.RpcError) as exc:
            be.sign_eth(KEY_ID, bad, "grpc-bad", ())
        assert _code(exc) == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.RpcError) as exc:
            be.get_request("nope")
        assert _code(exc) == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.RpcError) as exc:
            be.create_key("not-allowed", 2)
        assert _code(exc) == grpc.StatusCode.PERMISSION_DENIED
    with cluster.client("operator") as op, pytest.raises(grpc.RpcError) as exc:
        op.sign_eth(KEY_ID, tx_to_proto(TX), "grpc-op", ())
    assert _code(exc) == grpc.StatusCode.PERMISSION_DENIED


def test_bad_partial_is_aborted_with_blame_trailer(cluster: Cluster) -> None:
    class Corrupt:
        def __init__(self, inner: GrpcSignerClient) -> None:
            self.inner = inner

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

        def partial_sign(
            self,
            key_id: str,
            presignature_id: bytes,
            tx: Eip1559Tx,
            release: Release,
            attestations: Sequence[bytes] = (),
        ) -> PartialSig:
            p = self.inner.partial_sign(key_id, presignature_id, tx, release, attestations)
            return dataclasses.replace(p, sigma=(int.from_bytes(p.sigma, "big") ^ 4).to_bytes(32, "big"))

    honest = cluster.service.signers[3]
    cluster.service.signers[3] = Corrupt(cluster.clients[3])
    try:
        cluster.service.health.mark(1, False)  # steer the set to (2, 3)
        with cluster.client("backend") as be, pytest.raises(grpc.RpcError) as exc:
            be.sign_eth(KEY_ID, tx_to_proto(TX), "grpc-corrupt", ())
    finally:
        cluster.service.signers[3] = honest
        cluster.service.health.mark(1, True)
    assert _code(exc) == grpc.StatusCode.ABORTED
    trailers = dict(exc.value.trailing_metadata())
    blames = blame_codec.decode_blames(trailers[blame_codec.METADATA_KEY])
    assert {(b.party, b.check) for b in blames} == {(3, "partial_signature")}
    info = error_info(exc.value)  # beside the blame trailer: the reason, the failed request, the culprits
    assert info is not None and info.reason == "PROTOCOL_ABORTED" and info.metadata["blamed"] == "3"
    with cluster.client("backend") as be:
        assert be.get_request(info.metadata["request_id"]).request_state == coordinator_pb2.REQUEST_STATE_FAILED


def test_relay_tampering_over_grpc_makes_signers_blame_the_relay(cluster: Cluster) -> None:
    def tamper(e: Envelope, to: int) -> Envelope | None:
        if e.sender == 2 and e.recipient == 1:
            return dataclasses.replace(e, payload=e.payload[:-1] + bytes([e.payload[-1] ^ 1]))
        return e

    with pytest.raises(relay.SessionAborted) as exc:
        relay.run_session(
            dict[int, SignerClient](cluster.clients),
            b"grpc-tamper-session-1",
            "keygen",
            PARTIES,
            SessionParams("k-tampered", threshold=2),
            tamper=tamper,
        )
    assert exc.value.culprits == {RELAY}
    assert 1 in exc.value.reports


def test_unreachable_signer_over_grpc(cluster: Cluster, tmp_path: Path) -> None:
    dead = GrpcSignerClient(3, "127.0.0.1:1", TlsFiles.in_dir(cluster.certs, "coordinator"), session_timeout=2)
    try:
        assert not dead.healthy()
        clients: dict[int, SignerClient] = {1: cluster.clients[1], 2: cluster.clients[2], 3: dead}
        with pytest.raises(relay.SignerUnreachable) as exc:
            relay.run_session(clients, b"grpc-dead-session-1", "keygen", PARTIES, SessionParams("k-dead", threshold=2))
        assert exc.value.parties == (3,)
    finally:
        dead.close()


def _submit(be: CoordinatorClient, value: int, idem: str) -> coordinator_pb2.SigningRequest:
    return be.sign_eth(KEY_ID, tx_to_proto(dataclasses.replace(TX, value=value)), idem, (1, 2))


def test_approval_flow_over_grpc(cluster: Cluster) -> None:
    with cluster.client("backend") as be:
        req = _submit(be, 10**18, "grpc-approve")
    assert req.state == "pending_approval" and req.initiator == "backend" and req.policy_reason == "approvals_pending"
    intent = Intent.from_bytes(req.intent)
    assert intent.digest() == req.intent_digest and "1 ETH" in req.intent_text and req.expires_at == intent.expires_at
    approvals = {
        o: sign_approval(key(o), o, intent, int(cluster.service.store.now())).to_bytes()
        for o in ("officer-1", "officer-2")
    }
    with cluster.client("backend") as be, pytest.raises(grpc.RpcError) as exc:
        be.stub.ApproveRequest(
            coordinator_pb2.ApproveRequestRequest(request_id=req.request_id, approval=approvals["officer-1"])
        )
    assert _code(exc) == grpc.StatusCode.PERMISSION_DENIED  # not an officer certificate
    with cluster.client("officer-2") as o2, pytest.raises(grpc.RpcError) as exc:
        o2.stub.ApproveRequest(
            coordinator_pb2.ApproveRequestRequest(request_id=req.request_id, approval=approvals["officer-1"])
        )
    assert _code(exc) == grpc.StatusCode.PERMISSION_DENIED and "officer_mismatch" in exc.value.details()
    with cluster.client("officer-1") as o1:
        got = o1.stub.ApproveRequest(
            coordinator_pb2.ApproveRequestRequest(request_id=req.request_id, approval=approvals["officer-1"])
        )
    assert got.state == "pending_approval" and list(got.approved_by) == ["officer-1"]
    with cluster.client("officer-2") as o2:
        got = o2.stub.ApproveRequest(
            coordinator_pb2.ApproveRequestRequest(request_id=req.request_id, approval=approvals["officer-2"])
        )
    assert got.state == "signed" and Account.recover_transaction(got.raw_tx) == got.from_address
    with cluster.client("operator") as op:
        states = [r.state for r in op.watch(req.request_id)]
    assert states[:3] == ["submitted", "pending_approval", "pending_approval"] and states[-1] == "signed"


def test_reject_freeze_unfreeze_and_governance_over_grpc(cluster: Cluster) -> None:
    with cluster.client("backend") as be:
        req = _submit(be, 2 * 10**18, "grpc-reject")
    signature = key("officer-1").sign(reject_message(req.request_id, req.intent_digest))
    with cluster.client("officer-1") as o1:
        got = o1.stub.RejectRequest(
            coordinator_pb2.RejectRequestRequest(
                request_id=req.request_id, officer_id="officer-1", signature=signature, reason="no"
            )
        )
        assert got.state == "rejected"
        now = int(cluster.service.store.now())
        order = sign_freeze(key("officer-1"), "officer-1", ALL_KEYS, now)
        status = o1.stub.Freeze(coordinator_pb2.FreezeOrderRequest(order=order.to_bytes()))
        assert list(status.frozen_scopes) == ["*"] and status.policy_version == 1 and status.policy_json
    with cluster.client("backend") as be:
        blocked = _submit(be, 10**15, "grpc-frozen")
    assert blocked.state == "blocked" and blocked.policy_reason == "frozen"
    lift = UnfreezeOrder(ALL_KEYS, order.issued_at, now + 1).signed(key("officer-1"), "officer-1")
    lift = lift.signed(key("officer-2"), "officer-2")
    with cluster.client("officer-2") as o2:
        status = o2.stub.Unfreeze(coordinator_pb2.FreezeOrderRequest(order=lift.to_bytes()))
    assert list(status.frozen_scopes) == []
    with cluster.client("backend") as be:
        assert _submit(be, 10**15, "grpc-unfrozen").state == "signed"
        with pytest.raises(grpc.RpcError) as exc:
            be.stub.ProposeChange(coordinator_pb2.ProposeChangeRequest(kind="policy", change_json="{}"))
        assert _code(exc) == grpc.StatusCode.PERMISSION_DENIED
        gov = be.stub.GetGovernance(coordinator_pb2.GetGovernanceRequest())
        assert gov.registry_version == 1 and len(gov.registry_hash) == 32


def test_audit_export_is_for_auditors_and_verifies(cluster: Cluster) -> None:
    from coordinator import audit

    with cluster.client("operator") as op, pytest.raises(grpc.RpcError) as exc:
        list(op.stub.ExportAudit(coordinator_pb2.ExportAuditRequest()))
    assert _code(exc) == grpc.StatusCode.PERMISSION_DENIED
    with cluster.client("auditor") as au:
        lines = [line.json for line in au.stub.ExportAudit(coordinator_pb2.ExportAuditRequest())]
    assert audit.verify_export(lines, cluster.service.audit.public_key).ok


def test_attest_report_records_signs_and_is_for_operators_and_admins(cluster: Cluster) -> None:
    digest = bytes(range(32))
    with cluster.client("operator") as op:
        a = op.attest_report(digest, "drill")
        with pytest.raises(grpc.RpcError) as exc:
            op.attest_report(b"\x01" * 31, "drill")
        assert _code(exc) == grpc.StatusCode.INVALID_ARGUMENT and "report_digest" in exc.value.details()
    verify_attestation(cluster.service.audit.public_key, "drill", digest, a.audit_seq, a.signature)
    entry = cluster.service.audit.entries(a.audit_seq, 1)[0]
    assert (entry.kind, entry.subject, entry.actor, entry.hash) == (ATTESTATION, digest.hex(), "operator", a.audit_hash)
    assert a.audit_public_key == cluster.service.audit.public_key_bytes()
    for who in ("backend", "auditor", "officer-1"):
        with cluster.client(who) as c, pytest.raises(grpc.RpcError) as exc:
            c.attest_report(digest, "drill")
        assert _code(exc) == grpc.StatusCode.PERMISSION_DENIED
