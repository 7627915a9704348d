"""A signer refuses a revoked signer (the officer registry's `revoked_signers`) on every path: its
certificate at the gRPC edge (PERMISSION_DENIED with the reason), any session naming it
(`signer_revoked`), and its envelopes in a session started before the revocation (blamed)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from tsscustody.v1 import signer_pb2, signer_pb2_grpc

from coordinator import certs
from signer.node import server as signer_server
from signer.node.node import SignerNode
from signer.node.tls import TlsFiles, channel_credentials
from signer.policy import OfficerRegistry, PolicyError
from signer.policy.revocation import RevokedSigner, cert_fingerprint
from signer.tss.errors import ProtocolAbort

from .support import KEY_ID, Clock, demo_documents, install, make_nodes, signed_change


def _fingerprint(pem: Path) -> bytes:
    return cert_fingerprint(x509.load_pem_x509_certificate(pem.read_bytes()).public_bytes(Encoding.DER))


def revoke(nodes: dict[int, SignerNode], entry: RevokedSigner, now: int) -> OfficerRegistry:
    """Install registry v2 (v1 plus the revocation of `entry`) on every node."""
    v1, _ = demo_documents(now)
    v2 = dataclasses.replace(v1, version=2, previous_hash=v1.hash(), revoked_signers=(entry,))
    for node in nodes.values():
        node.install_change("registry", signed_change(v2, now).to_json())
    return v2


def test_a_session_naming_a_revoked_signer_is_refused(tmp_path: Path) -> None:
    clock = Clock()
    nodes = make_nodes(tmp_path, clock)
    install(nodes.values(), *demo_documents(clock.now()), clock.now())
    revoke(nodes, RevokedSigner(2, bytes(32), nodes[2].identity.public().sign_pub), clock.now())
    with pytest.raises(PolicyError) as e:
        nodes[1].start_session(b"presign-revoked-1", "presign", KEY_ID, (1, 2))
    assert e.value.reason == "signer_revoked"
    assert e.value.detail == "signer 2 is revoked (officer registry v2): no session includes it"


def test_a_revoked_senders_envelopes_are_blamed_on_it(tmp_path: Path) -> None:
    clock = Clock()
    nodes = make_nodes(tmp_path, clock)
    install(nodes.values(), *demo_documents(clock.now()), clock.now())
    sid = b"presign-before-revocation"
    first = {p: n.start_session(sid, "presign", KEY_ID, (1, 2)) for p, n in nodes.items()}
    # revoked by its identity key only (the index in the entry is another): still refused
    revoke({1: nodes[1]}, RevokedSigner(9, bytes(32), nodes[2].identity.public().sign_pub), clock.now())
    attestations = [s.attestation for s in first.values()]
    with pytest.raises(ProtocolAbort) as e:
        nodes[1].deliver(sid, list(first[2].outgoing), attestations)
    assert {(b.party, b.check) for b in e.value.blames} == {(2, "signer_revoked")}


def test_a_revoked_certificate_is_refused_at_the_grpc_edge_with_the_reason(tmp_path: Path) -> None:
    cdir = tmp_path / "certs"
    certs.create_ca(cdir)
    for name, role in (("signer-1", "signer"), ("signer-2", "signer"), ("signer-3", "signer")):
        certs.issue(cdir, name, role)
    certs.issue(cdir, "coordinator", "coordinator")
    clock = Clock()
    nodes = make_nodes(tmp_path / "nodes", clock)
    install(nodes.values(), *demo_documents(clock.now()), clock.now())
    fp = _fingerprint(cdir / "signer-3.pem")
    revoke(nodes, RevokedSigner(3, fp, bytes(32)), clock.now())
    nodes[1].close()
    node = SignerNode(
        dataclasses.replace(nodes[1].config, tls=TlsFiles.in_dir(cdir, "signer-1")), primes=lambda bits: 0, clock=clock
    )
    server, port = signer_server.create_server(node, "127.0.0.1:0")
    server.start()

    def call(as_name: str, fn: str, request: Any) -> tuple[grpc.StatusCode, str]:
        creds = channel_credentials(TlsFiles.in_dir(cdir, as_name))
        opts = (("grpc.ssl_target_name_override", "localhost"),)
        with grpc.secure_channel(f"127.0.0.1:{port}", creds, options=opts) as channel:
            try:
                getattr(signer_pb2_grpc.SignerStub(channel), fn)(request, timeout=30)
            except grpc.RpcError as exc:
                return exc.code(), exc.details() or ""
        return grpc.StatusCode.OK, ""

    start = signer_pb2.StartSessionRequest(session_id=b"attack-by-3", protocol="presign", key_id=KEY_ID, parties=[1, 3])
    deliver = signer_pb2.DeliverRequest(session_id=b"attack-by-3")
    try:
        refused = f"signer 3 is revoked (officer registry v2): its certificate {fp.hex()[:16]}… is refused"
        assert call("signer-3", "StartSession", start) == (grpc.StatusCode.PERMISSION_DENIED, refused)
        assert call("signer-3", "Deliver", deliver) == (grpc.StatusCode.PERMISSION_DENIED, refused)
        # a signer that is not revoked is still refused, for its role
        assert call("signer-2", "StartSession", start) == (
            grpc.StatusCode.PERMISSION_DENIED,
            "role signer may not call this",
        )
        # the coordinator may call, but not to start a session naming the revoked party
        code, details = call("coordinator", "StartSession", start)
        assert code == grpc.StatusCode.FAILED_PRECONDITION and "signer_revoked" in details
    finally:
        server.stop(None)
        node.close()
        nodes[2].close()
