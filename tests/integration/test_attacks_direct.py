"""Officers' and admins' orders reach the signers without the coordinator (real processes).

A compromised coordinator that withholds a freeze cannot release what the officers froze: tssctl
delivers the signed order to every signer directly (officer certificate), and each signer refuses
the coordinator's partial-signing request with `frozen`. The certificate only decides who may call
(a backend may not); the order's signatures are the authority (a forged one is `bad_signature`).
"""

from __future__ import annotations

import itertools
import json
import time
import uuid
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from tsscustody.v1 import coordinator_pb2, signer_pb2, signer_pb2_grpc

from coordinator import cluster, officer
from coordinator.client import CoordinatorClient
from signer.node.tls import channel_credentials
from signer.node.wire import POLICY_REASON_KEY
from signer.policy import sign_freeze

from .support import GWEI, TO, eth_tx

_nonces = itertools.count(500)


@pytest.fixture(scope="module")
def key(live_cluster: cluster.ClusterInfo) -> coordinator_pb2.Key:
    with CoordinatorClient(live_cluster.coordinator, live_cluster.client_tls("operator")) as op:
        return op.create_key("direct-hot-wallet", 2, "112")


def _submit(info: cluster.ClusterInfo, key: coordinator_pb2.Key) -> tuple[grpc.StatusCode | None, str]:
    """A small automatic-tier withdrawal from the backend; (status code or None, request id)."""
    tx = eth_tx(next(_nonces), chain_id=1, max_fee=40 * GWEI, priority_fee=2 * GWEI)
    idem = str(uuid.uuid4())
    with CoordinatorClient(info.coordinator, info.client_tls("backend"), timeout=300) as c:
        try:
            r = c.sign_eth(key.key_id, tx, idem)
        except grpc.RpcError as exc:
            listed = [r for r in c.list_requests(key.key_id) if r.eth.nonce == tx.nonce]
            return exc.code(), listed[0].request_id if listed else ""
        return None, r.request_id


def _signer(info: cluster.ClusterInfo, party: int, who: str) -> tuple[grpc.Channel, Any]:
    channel = grpc.secure_channel(info.signers[party], channel_credentials(info.client_tls(who)))
    return channel, signer_pb2_grpc.SignerStub(channel)


def _reason(exc: grpc.RpcError) -> str:
    call: Any = exc
    return next((str(v) for k, v in call.trailing_metadata() or () if k == POLICY_REASON_KEY), "")


def test_a_freeze_the_coordinator_withholds_still_stops_signing(
    live_cluster: cluster.ClusterInfo, key: coordinator_pb2.Key, tssctl: Any
) -> None:
    code, _ = _submit(live_cluster, key)
    assert code is None  # signs before the freeze: the refusal below is the freeze's doing

    # The compromised coordinator never hears of the order: it goes to the signers alone.
    rc, out, err = tssctl("freeze", "--officer", "officer-1", "--signers-only")
    assert rc == 0, err
    assert out["coordinator"] == {"skipped": True}
    assert {p: (s["confirmed"], s["frozen_scopes"]) for p, s in out["signers"].items()} == {
        "1": (True, ["*"]),
        "2": (True, ["*"]),
        "3": (True, ["*"]),
    }
    with CoordinatorClient(live_cluster.coordinator, live_cluster.client_tls("operator")) as op:
        assert list(op.governance().frozen) == []  # the coordinator still thinks nothing is frozen

    code, request_id = _submit(live_cluster, key)
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    with CoordinatorClient(live_cluster.coordinator, live_cluster.client_tls("operator")) as op:
        r = op.get_request(request_id)
    assert r.state == "failed" and "partial signing refused" in r.error
    assert r.error.count("refused: frozen") == 2, r.error  # both signers of the set refused
    assert not r.raw_tx

    # Lifting it also goes around the coordinator: the quorum names the freeze from the report.
    rc, out, err = tssctl(
        "unfreeze",
        "--officer", "officer-1",
        "--officer", "officer-2",
        "--lifts", str(out["issued_at"]),
        "--signers-only",
    )  # fmt: skip
    assert rc == 0, err
    assert all(s["confirmed"] and s["frozen_scopes"] == [] for s in out["signers"].values()), out
    assert _submit(live_cluster, key)[0] is None


def test_freeze_reports_each_signer_and_the_unreachable_one(live_cluster: cluster.ClusterInfo, tssctl: Any) -> None:
    dead = f"127.0.0.1:{cluster.free_port()}"
    rc, out, err = tssctl(
        "freeze", "--officer", "officer-2", "--scope", "not-a-key-yet",
        "--signer", f"1={live_cluster.signers[1]}", "--signer", f"9={dead}",
    )  # fmt: skip
    assert rc == 1  # not every destination confirmed
    assert out["coordinator"]["confirmed"] is True and "not-a-key-yet" in [f["scope"] for f in out["frozen"]]
    assert out["signers"]["1"]["confirmed"] and "not-a-key-yet" in out["signers"]["1"]["frozen_scopes"]
    assert out["signers"]["9"]["confirmed"] is False and "UNAVAILABLE" in out["signers"]["9"]["error"]
    assert "signer 9" in err
    rc, text, err = tssctl("freeze", "--officer", "officer-2", "--scope", "not-a-key-yet", "--coordinator-only")
    assert rc == 0 and text["signers"] == {}, err


def test_signers_refuse_orders_and_changes_from_other_roles(live_cluster: cluster.ClusterInfo) -> None:
    order = sign_freeze(officer.load_key(live_cluster.officer_key("officer-1")), "officer-1", "*", int(time.time()))
    calls = {
        "ApplyFreezeOrder": lambda s: s.ApplyFreezeOrder(signer_pb2.ApplyFreezeOrderRequest(order=order.to_bytes())),
        "InstallChange": lambda s: s.InstallChange(signer_pb2.InstallChangeRequest(kind="policy", change_json="{}")),
        "PartialSign": lambda s: s.PartialSign(signer_pb2.PartialSignRequest(key_id="k")),
        "StartSession": lambda s: s.StartSession(signer_pb2.StartSessionRequest(protocol="presign")),
        "ExportBackup": lambda s: s.ExportBackup(signer_pb2.ExportBackupRequest(key_id="k")),
    }
    allowed = {"officer-1": {"ApplyFreezeOrder"}, "admin-1": {"InstallChange", "ExportBackup"}}
    for who in ("backend", "officer-1", "admin-1", "auditor", "operator", "coordinator"):
        channel, stub = _signer(live_cluster, 1, who)
        with channel:
            for name, call in calls.items():
                if name in allowed.get(who, set()) or (who == "coordinator" and name != "ExportBackup"):
                    continue
                with pytest.raises(grpc.RpcError) as info:
                    call(stub)
                assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED, (who, name)
                assert "may not call this" in str(info.value.details())


def test_signers_refuse_forged_orders_and_changes_from_the_right_roles(
    live_cluster: cluster.ClusterInfo,
) -> None:
    impostor = Ed25519PrivateKey.generate()
    forged = sign_freeze(impostor, "officer-1", "*", int(time.time()))
    with CoordinatorClient(live_cluster.coordinator, live_cluster.client_tls("admin-1")) as c:
        g = c.governance()
    change = officer.load_change(g.policy_json, "policy", g, successor=True)
    forged_change = change.signed(impostor, "admin-1").signed(Ed25519PrivateKey.generate(), "admin-2")
    for party in sorted(live_cluster.signers):
        channel, stub = _signer(live_cluster, party, "officer-1")
        with channel, pytest.raises(grpc.RpcError) as info:
            stub.ApplyFreezeOrder(signer_pb2.ApplyFreezeOrderRequest(order=forged.to_bytes()), timeout=10)
        assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert _reason(info.value) == "bad_signature"
        channel, stub = _signer(live_cluster, party, "admin-1")
        with channel, pytest.raises(grpc.RpcError) as info:
            stub.InstallChange(
                signer_pb2.InstallChangeRequest(kind="policy", change_json=forged_change.to_json()), timeout=10
            )
        assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert _reason(info.value) == "bad_signature"


def test_a_tightening_the_coordinator_withholds_still_binds_the_signers(
    live_cluster: cluster.ClusterInfo, key: coordinator_pb2.Key, tssctl: Any, tmp_path: Path
) -> None:
    """Last in the module: afterwards the signers hold a newer policy than the coordinator."""
    rc, g, err = tssctl("policy", "show")
    assert rc == 0, err
    policy = g["policy"]
    policy.setdefault("destinations", {}).setdefault("deny", []).append(TO)
    doc = tmp_path / "deny-dead.json"
    doc.write_text(json.dumps(policy))
    rc, out, err = tssctl(
        "policy", "propose", str(doc), "--kind", "policy", "--admin", "admin-1", "--admin", "admin-2",
        "--successor", "--signers-only",
    )  # fmt: skip
    assert rc == 0, err
    assert [(s["confirmed"], s["policy_version"]) for s in out["signers"].values()] == [(True, 2)] * 3
    rc, g, _ = tssctl("policy", "show")
    assert g["policy_version"] == 1  # the coordinator never heard of it and still releases to TO

    code, request_id = _submit(live_cluster, key)
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    with CoordinatorClient(live_cluster.coordinator, live_cluster.client_tls("operator")) as op:
        r = op.get_request(request_id)
    assert r.state == "failed" and not r.raw_tx
    assert r.error.count("refused: policy_mismatch") == 2, r.error
