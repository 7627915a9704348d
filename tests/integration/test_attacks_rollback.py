"""A signer's data directory restored from an old copy, against real processes.

The attack of issue 9 item 4: copy a signer's files, sign, put the copy back, sign again. Before,
the restored presignature file signed a second transaction with the same nonce and the key
followed from the two signatures. Presignatures now live only in signer memory: the restore (a
stop, a copy put back, `restart_signer`) brings none back; the coordinator notices the signer
lost its pool (`presignature_unknown`), drops every presignature made before the restart and
presigns afresh; the restored signer's rolled-back ledger is named by its peer's attestation
check, it gets the governance log again, and the request is signed by another set. No r ever
repeats.
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from eth_account import Account
from tsscustody.v1 import coordinator_pb2

from coordinator import cluster
from coordinator.client import CoordinatorClient
from coordinator.signer_client import GrpcSignerClient
from signer.node.tls import TlsFiles

from .conftest import log_text
from .support import eth_tx


@pytest.fixture(scope="module")
def key(live_cluster: cluster.ClusterInfo) -> coordinator_pb2.Key:
    with CoordinatorClient(live_cluster.coordinator, live_cluster.client_tls("operator")) as op:
        return op.create_key("rollback-hot-wallet", 2, "112")


def _sign(info: cluster.ClusterInfo, key_id: str, nonce: int) -> coordinator_pb2.SigningRequest:
    with CoordinatorClient(info.coordinator, info.client_tls("backend")) as be:
        return be.sign_eth(key_id, eth_tx(nonce), f"rb-{uuid.uuid4()}")


@pytest.fixture
def signer2(live_cluster: cluster.ClusterInfo) -> Iterator[GrpcSignerClient]:
    c = GrpcSignerClient(2, live_cluster.signers[2], TlsFiles.in_dir(live_cluster.root / "certs", "coordinator"))
    yield c
    c.close()


def _wait_presignatures(client: GrpcSignerClient, key_id: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while client.status().presignatures.get(key_id, 0) == 0:
        assert time.monotonic() < deadline, "the presignature pool did not refill"
        time.sleep(0.5)


def test_restoring_a_signers_data_directory_never_repeats_r(
    live_cluster: cluster.ClusterInfo, key: coordinator_pb2.Key, signer2: GrpcSignerClient, tmp_path: Path
) -> None:
    root = live_cluster.root
    store = root / "signer-2" / "store"
    rs: list[bytes] = []

    def signed(nonce: int) -> None:
        req = _sign(cluster.ClusterInfo.load(root), key.key_id, nonce)
        assert req.state == "signed", req.error
        assert Account.recover_transaction(req.raw_tx) == key.eth_address
        rs.append(bytes(req.r))

    cluster.stop_process(live_cluster.pids["signer-3"])  # every signature goes through {1, 2}
    try:
        signed(0)
        _wait_presignatures(signer2, key.key_id)  # the pool refilled: signer 2 holds presignatures
        assert not (store / "presig").exists()  # ... in memory only

        # The snapshot: signer 2's data directory as it is now (stopped for a consistent copy).
        cluster.stop_process(cluster.ClusterInfo.load(root).pids["signer-2"])
        shutil.copytree(store, tmp_path / "snapshot")
        cluster.restart_signer(root, 2)
        signed(1)  # the pool's presignatures died with the old process: fresh ones are made
        log = log_text(root)
        assert "presignatures_dropped_signer_restarted" in log
        _wait_presignatures(signer2, key.key_id)
    finally:
        cluster.restart_signer(root, 3)

    # The attack: put the old copy back while signer 2 is stopped, start it again, sign again.
    # Signer 3 is stopped again so that the first set after the restore is {1, 2}: signer 1 saw
    # signer 2's newer ledger (signer 3 was down then and could not notice the rollback).
    boot_before = signer2.status().boot_id
    cluster.stop_process(cluster.ClusterInfo.load(root).pids["signer-2"])
    shutil.rmtree(store)
    shutil.copytree(tmp_path / "snapshot", store)
    cluster.restart_signer(root, 2)
    status = signer2.status()
    assert status.boot_id != boot_before and status.presignatures.get(key.key_id, 0) == 0
    cluster.stop_process(cluster.ClusterInfo.load(root).pids["signer-3"])
    try:
        # Signer 1 names the rollback when it presigns with the restored signer; the restored
        # signer then saturates its windowed limits and refuses, so {1, 2} alone cannot sign.
        with pytest.raises(grpc.RpcError, match="ledger_saturated"):
            signed(2)
    finally:
        cluster.restart_signer(root, 3)
    signed(2)  # ... and {1, 3} signs it
    signed(3)
    assert len(set(rs)) == len(rs) == 4, "two signatures share r: the key would follow"
    # Signer 1 named the restored signer when it attested a ledger older than before; the restored
    # signer adopted the count and saturated its windowed limits (it reports until when).
    log = log_text(root)
    assert "state_rolled_back" in log and "ledger_rolled_back_saturated" in log
    assert "signer_state_behind_resync" in log  # the coordinator re-sent it the governance log
    assert signer2.status().ledger_saturated_until > time.time()
