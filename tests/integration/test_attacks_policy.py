"""Attacks on fees and approvals against real processes (a local cluster at level 112, demo policy).

A compromised backend submits through `tssctl withdraw`; a compromised coordinator is simulated
by a client that holds the coordinator's own certificate and talks to the signer processes
directly: it runs presigning sessions for the signing set it likes and sends PartialSign with any
body and any approvals it has seen. Every refusal is asserted with its reason.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from tsscustody.v1 import coordinator_pb2

from coordinator import cluster, officer, relay
from coordinator.cli_errors import EXIT_NOT_SIGNED
from coordinator.client import CoordinatorClient
from coordinator.signer_client import GrpcSignerClient, SessionParams, SignerRejected
from signer.chains.ethereum import Eip1559Tx
from signer.node.tls import TlsFiles
from signer.node.wire_tx import tx_from_proto
from signer.policy import Intent, Release, sign_approval

from .support import ETH, TO


@pytest.fixture(scope="module")
def key(live_cluster: cluster.ClusterInfo) -> coordinator_pb2.Key:
    with CoordinatorClient(live_cluster.coordinator, live_cluster.client_tls("operator")) as op:
        return op.create_key("attacks-hot-wallet", 2, "112")


@pytest.fixture(scope="module")
def rogue(live_cluster: cluster.ClusterInfo) -> Iterator[dict[int, GrpcSignerClient]]:
    """Signer clients holding the coordinator's own certificate: a compromised coordinator."""
    tls = TlsFiles.in_dir(live_cluster.root / "certs", "coordinator")
    clients = {p: GrpcSignerClient(p, addr, tls) for p, addr in live_cluster.signers.items()}
    yield clients
    for c in clients.values():
        c.close()


def _presign(rogue: dict[int, GrpcSignerClient], key_id: str, signing_set: tuple[int, ...]) -> bytes:
    """A presignature the rogue coordinator made for `signing_set` (path m)."""
    sid = uuid.uuid4().bytes
    relay.run_session({p: rogue[p] for p in signing_set}, sid, "presign", signing_set, SessionParams(key_id))
    return sid


def _refusal(client: GrpcSignerClient, key_id: str, pid: bytes, tx: Eip1559Tx, release: Release) -> str:
    with pytest.raises(SignerRejected) as exc:
        client.partial_sign(key_id, pid, tx, release)
    return exc.value.reason


def _policy_hash(info: cluster.ClusterInfo) -> bytes:
    with CoordinatorClient(info.coordinator, info.client_tls("operator")) as c:
        return bytes(c.governance().policy_hash)


def test_a_huge_fee_is_blocked_by_the_coordinator_and_refused_by_every_signer(
    live_cluster: cluster.ClusterInfo, key: coordinator_pb2.Key, tssctl: Any, rogue: dict[int, GrpcSignerClient]
) -> None:
    # A compromised backend: 0.01 ETH, automatic tier, 1 ETH per gas x 21000 gas = a 21000 ETH tip.
    huge = ("--max-fee", str(ETH), "--priority-fee", str(ETH))
    rc, out, err = tssctl(
        "withdraw",
        "--network",
        "eip155:1",
        "--key",
        key.key_id,
        "--to",
        TO,
        "--value",
        str(10**16),
        "--nonce",
        "1",
        *huge,
    )
    assert rc == EXIT_NOT_SIGNED, err  # a blocked request is not a success (it exited 0 before)
    assert (out["state"], out["policy_reason"]) == ("blocked", "fee_exceeded")
    # A compromised coordinator sends the same body to the signers directly: each refuses.
    tx = Eip1559Tx(1, 1, ETH, ETH, 21000, TO, 10**16)
    release = Release(
        "tip-direct", (), "backend", int(time.time()) + 3600, (), _policy_hash(live_cluster), "withdrawal"
    )
    for signing_set in ((1, 2), (2, 3)):
        pid = _presign(rogue, key.key_id, signing_set)
        for p in signing_set:
            assert _refusal(rogue[p], key.key_id, pid, tx, release) == "fee_exceeded", p
    # The same withdrawal at an ordinary fee goes through.
    rc, out, err = tssctl(
        "withdraw", "--network", "eip155:1", "--key", key.key_id, "--to", TO, "--value", str(10**16), "--nonce", "2"
    )
    assert rc == 0 and out["state"] == "signed", err


def test_two_approvals_for_nonce_7_cannot_release_nonce_8_through_other_signers(
    live_cluster: cluster.ClusterInfo, key: coordinator_pb2.Key, tssctl: Any, rogue: dict[int, GrpcSignerClient]
) -> None:
    rc, out, err = tssctl(
        "withdraw", "--network", "eip155:1", "--key", key.key_id, "--to", TO, "--value", str(ETH), "--nonce", "7"
    )
    assert rc == 0 and out["state"] == "pending_approval", err
    for who in ("officer-1", "officer-2"):
        rc, _, err = tssctl(
            "approve", out["request_id"], "--yes", "--officer", who, "--key", str(live_cluster.officer_key(who))
        )
        assert rc == 0, err
    with CoordinatorClient(live_cluster.coordinator, live_cluster.client_tls("operator"), timeout=300) as c:
        for _ in c.watch(out["request_id"]):
            pass
        r = c.get_request(out["request_id"])
    assert r.state == "signed"
    # The rogue coordinator holds the same approvals (re-signed here with the officers' keys: the
    # same officers, the same intent) and the request's fields; it asks for nonce 8.
    intent = Intent.from_bytes(r.intent)
    now = int(time.time())
    approvals = tuple(
        sign_approval(officer.load_key(live_cluster.officer_key(w)), w, intent, now).to_bytes()
        for w in ("officer-1", "officer-2")
    )
    release = Release(
        r.request_id, approvals, r.initiator, r.expires_at, tuple(r.path), intent.policy_hash, "withdrawal"
    )
    nonce7 = tx_from_proto(r.eth)
    nonce8 = dataclasses.replace(nonce7, nonce=8)
    reasons: dict[int, str] = {}
    for signing_set in ((1, 3), (2, 3)):
        pid = _presign(rogue, key.key_id, signing_set)
        for p in signing_set:
            reasons.setdefault(p, _refusal(rogue[p], key.key_id, pid, nonce8, release))
    # The t signers that released nonce 7 have the request id pinned to it; the other one finds
    # that the officers approved another transaction.
    assert sorted(reasons.values()) == ["intent_mismatch", "request_replayed", "request_replayed"], reasons
    # Only the very transaction they approved can be signed again (the same digest: the same payout).
    fresh = next(p for p, why in reasons.items() if why == "intent_mismatch")
    pid = _presign(rogue, key.key_id, (fresh, 1 if fresh != 1 else 2))
    assert rogue[fresh].partial_sign(key.key_id, pid, nonce7, release).digest == intent.tx_digest
