"""Real processes, real TLS, a real database file: the service end to end."""

from __future__ import annotations

import uuid
from pathlib import Path

import grpc
import pytest
from eth_account import Account
from tsscustody.v1 import coordinator_pb2

from coordinator import certs, cluster
from coordinator.cli import verify_eth_signature
from coordinator.client import CoordinatorClient
from signer.node.tls import TlsFiles
from tests.backend_client import docs_example, example_env, run_isolated

from .conftest import log_text
from .support import eth_tx


@pytest.fixture(scope="module")
def key(live_cluster: cluster.ClusterInfo) -> coordinator_pb2.Key:
    with CoordinatorClient(live_cluster.coordinator, live_cluster.client_tls("operator")) as op:
        return op.create_key("it-hot-wallet", 2, "112")


def _sign(
    info: cluster.ClusterInfo, key_id: str, nonce: int, path: tuple[int, ...] = ()
) -> coordinator_pb2.SigningRequest:
    with CoordinatorClient(info.coordinator, info.client_tls("backend")) as be:
        return be.sign_eth(key_id, eth_tx(nonce), f"it-{uuid.uuid4()}", path)


def test_keygen_and_signing_through_the_coordinator(
    live_cluster: cluster.ClusterInfo, key: coordinator_pb2.Key
) -> None:
    assert len(key.public_key) == 33 and key.threshold == 2 and list(key.parties) == [1, 2, 3]
    req = _sign(live_cluster, key.key_id, 0)
    assert req.state == "signed", req.error
    assert verify_eth_signature(req, key.public_key) == key.eth_address
    # eth-account, an independent implementation, recovers the expected sender from the raw tx.
    assert Account.recover_transaction(req.raw_tx) == key.eth_address
    assert req.from_address == key.eth_address


def test_same_idempotency_key_returns_the_same_request(
    live_cluster: cluster.ClusterInfo, key: coordinator_pb2.Key
) -> None:
    with CoordinatorClient(live_cluster.coordinator, live_cluster.client_tls("backend")) as be:
        first = be.sign_eth(key.key_id, eth_tx(7), "it-idem-1")
        again = be.sign_eth(key.key_id, eth_tx(7), "it-idem-1")
        assert again.request_id == first.request_id and again.raw_tx == first.raw_tx
        with pytest.raises(grpc.RpcError) as exc:
            be.sign_eth(key.key_id, eth_tx(8), "it-idem-1")
        assert exc.value.code() == grpc.StatusCode.ALREADY_EXISTS


def test_one_signer_down_two_of_three_still_signs(live_cluster: cluster.ClusterInfo, key: coordinator_pb2.Key) -> None:
    cluster.stop_process(live_cluster.pids["signer-2"])
    try:
        req = _sign(live_cluster, key.key_id, 1)
        assert req.state == "signed", req.error
        assert Account.recover_transaction(req.raw_tx) == key.eth_address
    finally:
        # A restarted signer keeps its share (encrypted store on disk) and serves again.
        cluster.restart_signer(live_cluster.root, 2)
    info = cluster.ClusterInfo.load(live_cluster.root)
    cluster.stop_process(info.pids["signer-1"])
    try:
        req = _sign(info, key.key_id, 2)  # only {2, 3} are up: the restarted signer must take part
        assert req.state == "signed", req.error
        assert Account.recover_transaction(req.raw_tx) == key.eth_address
    finally:
        cluster.restart_signer(live_cluster.root, 1)


def test_hd_path_signature_verifies_against_the_derived_key(
    live_cluster: cluster.ClusterInfo, key: coordinator_pb2.Key
) -> None:
    from signer.chains.ethereum import address_of
    from signer.tss import hd
    from signer.tss.curve import Point

    derived = hd.derive(Point.from_bytes(key.public_key), key.chain_code, (0, 7))
    req = _sign(live_cluster, key.key_id, 3, (0, 7))
    assert req.state == "signed", req.error
    assert Account.recover_transaction(req.raw_tx) == address_of(derived.public_key)


def test_client_without_a_valid_certificate_is_refused(live_cluster: cluster.ClusterInfo, tmp_path: Path) -> None:
    rogue = tmp_path / "rogue"
    certs.create_ca(rogue, "rogue CA")
    certs.issue(rogue, "backend", "backend")
    # Trust the real CA (so the server is accepted) but present a certificate from another CA.
    tls = TlsFiles(live_cluster.root / "certs" / "ca.pem", rogue / "backend.pem", rogue / "backend.key")
    with CoordinatorClient(live_cluster.coordinator, tls, timeout=10) as c, pytest.raises(grpc.RpcError) as exc:
        c.get_key("anything")
    assert exc.value.code() == grpc.StatusCode.UNAVAILABLE


def test_wrong_role_is_permission_denied(live_cluster: cluster.ClusterInfo, key: coordinator_pb2.Key) -> None:
    # A backend certificate may not create keys, and nobody but the coordinator may drive a signer.
    with CoordinatorClient(live_cluster.coordinator, live_cluster.client_tls("backend")) as be:
        with pytest.raises(grpc.RpcError) as exc:
            be.create_key("nope", 2, "112")
        assert exc.value.code() == grpc.StatusCode.PERMISSION_DENIED
    from tsscustody.v1 import signer_pb2, signer_pb2_grpc

    from signer.node.tls import channel_credentials

    with grpc.secure_channel(live_cluster.signers[1], channel_credentials(live_cluster.client_tls("backend"))) as ch:
        with pytest.raises(grpc.RpcError) as exc:
            signer_pb2_grpc.SignerStub(ch).NodeStatus(signer_pb2.NodeStatusRequest(), timeout=10)
        assert exc.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_logs_are_json_and_never_contain_secrets(live_cluster: cluster.ClusterInfo, key: coordinator_pb2.Key) -> None:
    import json

    from signer.node.config import NodeConfig
    from signer.node.node import SignerNode
    from signer.tss.rng import SystemRng

    text = log_text(live_cluster.root)
    lines = [ln for ln in text.splitlines() if ln.startswith("{")]
    assert lines, "no JSON log lines"
    for ln in lines:
        json.loads(ln)
    # Read each signer's secrets back from its encrypted store and grep every log for them.
    for i in (1, 2, 3):
        cfg = NodeConfig.load(live_cluster.root / f"signer-{i}" / "node.json")
        node = SignerNode(cfg, primes=lambda _b: 0, rng=SystemRng())
        share = node.key_share(key.key_id)
        aux = node.aux_info(key.key_id)
        for secret in (share.x, aux.paillier_secret.p, aux.paillier_secret.q):
            for rendering in (str(secret), f"{secret:x}", f"{secret:064x}"):
                assert rendering not in text
        assert node.identity.to_bytes().hex() not in text


def _presented(address: str, tls: TlsFiles) -> str:
    """SHA-256 of the certificate a server presents on a new TLS handshake."""
    import hashlib
    import socket
    import ssl

    host, port = address.rsplit(":", 1)
    ctx = ssl.create_default_context(cafile=str(tls.ca))
    ctx.check_hostname = False
    ctx.load_cert_chain(str(tls.cert), str(tls.key))
    ctx.set_alpn_protocols(["h2"])
    with socket.create_connection((host, int(port)), timeout=10) as raw, ctx.wrap_socket(raw) as conn:
        der = conn.getpeercert(binary_form=True)
    assert der is not None
    return hashlib.sha256(der).hexdigest()


def test_rotated_certificates_are_served_without_a_restart(
    live_cluster: cluster.ClusterInfo, key: coordinator_pb2.Key
) -> None:
    cdir = live_cluster.root / "certs"
    operator = live_cluster.client_tls("operator")
    pids = dict(cluster.ClusterInfo.load(live_cluster.root).pids)
    for name, address in (("signer-1", live_cluster.signers[1]), ("coordinator", live_cluster.coordinator)):
        before = _presented(address, operator)
        new = certs.fingerprint(certs.rotate(cdir, name))
        assert _presented(address, operator) == new != before, f"{name} still presents its old certificate"
    assert cluster.ClusterInfo.load(live_cluster.root).pids == pids  # nothing was restarted
    req = _sign(live_cluster, key.key_id, 11)  # a new client handshake with the rotated coordinator
    assert req.state == "signed", req.error
    assert "tls_reloaded" in log_text(live_cluster.root)


def test_the_docs_example_backend_client_runs_against_the_cluster(
    live_cluster: cluster.ClusterInfo, key: coordinator_pb2.Key
) -> None:
    # docs/api.md's example, with only the client package importable, against real processes.
    env = example_env(live_cluster.coordinator, live_cluster.client_tls("backend"), key.key_id)
    out = run_isolated(docs_example(), env)
    assert f"key {key.key_id} {key.eth_address}" in out and "broadcast 0x02" in out, out
    assert "error NOT_FOUND {'request_id': 'no-such-request'}" in out
