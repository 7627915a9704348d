"""Real processes: verifiable backups end to end. Export every signer's kit with the admin
certificate, verify them with public data only, refuse a tampered one; a compromised coordinator
cannot get a kit nor redirect one; kill a signer, wipe its data, restore it from its kit, and sign
with it under the unchanged address; after a refresh the old kit is refused."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from eth_account import Account
from tsscustody.v1 import coordinator_pb2, signer_pb2, signer_pb2_grpc

from coordinator import backup_ops, cluster
from coordinator.backup_ops import BackupError
from coordinator.cli import verify_eth_signature
from coordinator.client import CoordinatorClient
from signer.node import recovery_key
from signer.node.backup_kit import Kit, verify_kit
from signer.node.tls import channel_credentials
from signer.tss.params import LEVEL_112
from tests.helpers import FixturePrimeSource, SeededRng

from .conftest import log_text
from .support import eth_tx


@pytest.fixture(scope="module")
def live_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[cluster.ClusterInfo]:
    """A cluster whose signers pin a recovery key laid out before `up` (fixture primes)."""
    root = tmp_path_factory.mktemp("cluster")
    secret, public = recovery_key.generate(LEVEL_112, FixturePrimeSource(16), SeededRng("it-recovery"))
    recovery_key.write_files(root / "recovery", secret, public)
    info = cluster.up(root, n=3, threshold=2, level="112")
    try:
        yield info
    finally:
        cluster.down(root)


@pytest.fixture(scope="module")
def key(live_cluster: cluster.ClusterInfo) -> coordinator_pb2.Key:
    with CoordinatorClient(live_cluster.coordinator, live_cluster.client_tls("operator")) as op:
        return op.create_key("it-backup", 2, "112")


@pytest.fixture(scope="module")
def kits(live_cluster: cluster.ClusterInfo, key: coordinator_pb2.Key) -> dict[int, Path]:
    out = live_cluster.root / "kits"
    pinned = recovery_key.load_public(live_cluster.root / "recovery" / recovery_key.PUBLIC_FILE)
    results = backup_ops.export(live_cluster.signers, live_cluster.client_tls("admin-1"), key.key_id, out, pinned)
    assert all(r.ok for r in results), [r.error for r in results]
    return {r.party: r.path for r in results if r.path is not None}


def _secret(info: cluster.ClusterInfo) -> Path:
    return info.root / "recovery" / recovery_key.SECRET_FILE


def _sign(info: cluster.ClusterInfo, key_id: str, nonce: int) -> coordinator_pb2.SigningRequest:
    with CoordinatorClient(info.coordinator, info.client_tls("backend")) as be:
        return be.sign_eth(key_id, eth_tx(nonce), f"it-{uuid.uuid4()}")


def test_export_and_verify_with_public_data_only(
    live_cluster: cluster.ClusterInfo, key: coordinator_pb2.Key, kits: dict[int, Path], tssctl: Any
) -> None:
    assert sorted(kits) == [1, 2, 3]
    pub = live_cluster.root / "recovery" / recovery_key.PUBLIC_FILE
    pinned = recovery_key.load_public(pub)
    for party, path in kits.items():
        m = verify_kit(Kit.from_bytes(path.read_bytes()), pinned)
        assert (m.party, m.epoch, m.key_id) == (party, key.epoch, key.key_id)
    rc, out, err = tssctl("backup", "verify", str(kits[2]), "--recovery-public", str(pub))
    assert rc == 0, err
    assert out["ok"] and out["party"] == 2 and out["epoch"] == key.epoch and out["recovery_pinned"]
    logs = log_text(live_cluster.root)
    assert logs.count('"backup_exported"') == 3
    secret = json.loads(_secret(live_cluster).read_text())
    assert secret["p"] not in logs and secret["p"].removeprefix("0x") not in logs

    kit = Kit.from_bytes(kits[1].read_bytes())
    bad = live_cluster.root / "bad.kit"
    bad.write_bytes(dataclasses.replace(kit, manifest=dataclasses.replace(kit.manifest, party=2)).to_bytes())
    rc, out, err = tssctl("backup", "verify", str(bad))
    assert rc == 1 and out == {"error": err.strip().removeprefix("tssctl: "), "reason": "failed", "exit_code": 1}
    assert err.strip() == "tssctl: backup kit rejected: public_share_not_in_committee: " + (
        "X_2 is not the committee's share of party 2"
    )


def test_attack_compromised_coordinator_cannot_export_or_redirect(
    live_cluster: cluster.ClusterInfo, key: coordinator_pb2.Key
) -> None:
    out = live_cluster.root / "attacker-kits"
    # The coordinator's own certificate may not call ExportBackup at all.
    as_coordinator = backup_ops.export(
        live_cluster.signers, cluster.TlsFiles.in_dir(live_cluster.root / "certs", "coordinator"), key.key_id, out
    )
    assert [r.ok for r in as_coordinator] == [False] * 3
    assert all("PERMISSION_DENIED" in r.error for r in as_coordinator), [r.error for r in as_coordinator]
    # Even with an admin certificate, asking for a kit to the attacker's key is refused: the call
    # can only name a fingerprint, and each signer encrypts only to the key pinned in its config.
    attacker_fingerprint = hashlib.sha256(b"the attacker's recovery key").digest()
    for party, address in live_cluster.signers.items():
        tls = live_cluster.client_tls("admin-1")
        with grpc.secure_channel(address, channel_credentials(tls)) as channel:
            with pytest.raises(grpc.RpcError) as exc:
                signer_pb2_grpc.SignerStub(channel).ExportBackup(
                    signer_pb2.ExportBackupRequest(key_id=key.key_id, recovery_fingerprint=attacker_fingerprint),
                    timeout=60,
                )
        assert exc.value.code() == grpc.StatusCode.FAILED_PRECONDITION, party
        assert "recovery_key_mismatch" in str(exc.value.details())
    assert '"backup_refused"' in log_text(live_cluster.root)
    assert not list(out.glob("*.kit"))


def test_restore_a_wiped_signer_then_sign_with_it(
    live_cluster: cluster.ClusterInfo, key: coordinator_pb2.Key, kits: dict[int, Path]
) -> None:
    root = live_cluster.root
    cluster.stop_process(cluster.ClusterInfo.load(root).pids["signer-2"], grace=0)  # kill
    shutil.rmtree(root / "signer-2" / "store")
    secret = recovery_key.load_secret(_secret(live_cluster))
    backup_ops.restore_signer(root, 2, Kit.from_bytes(kits[2].read_bytes()), secret)
    # Signer 1 down: the only signing set left is {2, 3}, so the restored signer must sign.
    cluster.stop_process(cluster.ClusterInfo.load(root).pids["signer-1"])
    try:
        req = _sign(live_cluster, key.key_id, 0)
        assert req.state == "signed", (req.error, req.policy_reason)
        assert verify_eth_signature(req, key.public_key) == key.eth_address
        assert Account.recover_transaction(req.raw_tx) == key.eth_address
    finally:
        cluster.restart(root, "signer-1")


def test_a_kit_from_before_a_refresh_is_refused(
    live_cluster: cluster.ClusterInfo, key: coordinator_pb2.Key, kits: dict[int, Path], tssctl: Any
) -> None:
    # Signer 1 was restarted by the previous test: the coordinator's channel to it may still be in
    # its reconnect backoff (up to 2 s), and a refresh refuses while any signer is unreachable.
    deadline = time.monotonic() + 30
    while True:
        rc, out, err = tssctl("key", "refresh", key.key_id, "--admin", "admin-1", "--admin", "admin-2")
        if rc == 0 or "unreachable" not in err or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert rc == 0, err
    assert out["epoch"] == key.epoch + 1
    pid = cluster.ClusterInfo.load(live_cluster.root).pids["signer-3"]
    rc, out, err = tssctl("backup", "restore", str(kits[3]), "--recovery-key", str(_secret(live_cluster)))
    assert rc == 1 and out == {"error": err.strip().removeprefix("tssctl: "), "reason": "failed", "exit_code": 1}
    assert err.strip() == (
        f"tssctl: kit is from epoch {key.epoch}; key {key.key_id} is at epoch {key.epoch + 1} "
        "(refreshed since): take a new backup"
    )
    # Refused before anything was touched: signer 3 still runs on its own (refreshed) data.
    assert cluster.ClusterInfo.load(live_cluster.root).pids["signer-3"] == pid
    assert cluster.health(live_cluster)["signer-3"] == "SERVING"
    with pytest.raises(BackupError):
        backup_ops.check_epoch(Kit.from_bytes(kits[3].read_bytes()).manifest, key.epoch + 1)
    after = _sign(live_cluster, key.key_id, 1)
    assert after.state == "signed", after.error
