"""Operating a running cluster as a platform team does: tssctl from another directory with only
TSS_ADDR / TSS_CACERT / TSS_CERT / TSS_KEY (no cluster folder), an approved withdrawal signed that
way, the valid states named for a bogus filter, and health that follows the signers: the
coordinator's readiness is NOT_SERVING with fewer than t signers live (it said SERVING with signers
dead) and `tssctl cluster status` exits 3 (it exited 0 with processes down).

The tests run in file order on one cluster; the last one stops two signers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import grpc
import pytest
from eth_account import Account
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tsscustody.v1 import coordinator_pb2

from coordinator import cluster
from coordinator.cli import main
from coordinator.cli_errors import EXIT_FAILED, EXIT_UNAVAILABLE
from coordinator.client import CoordinatorClient
from coordinator.request_states import STATES
from coordinator.serving import LIVENESS
from signer.node.tls import channel_credentials

from .support import ETH, TO


@pytest.fixture(scope="module")
def key(live_cluster: cluster.ClusterInfo) -> coordinator_pb2.Key:
    with CoordinatorClient(live_cluster.coordinator, live_cluster.client_tls("operator")) as op:
        return op.create_key("ops-hot-wallet", 2, "112")


@pytest.fixture
def remote(live_cluster: cluster.ClusterInfo, tmp_path: Path) -> Any:
    """Run `python -m coordinator.cli --json ARGS` in an empty directory with only the TSS_*
    variables naming the coordinator and the certificate of `who` (copied out of the cluster)."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    def run(who: str, *argv: str) -> tuple[int, Any, str]:
        certs = live_cluster.root / "certs"
        env = {k: v for k, v in os.environ.items() if not k.startswith("TSS_")}
        env.update(
            TSS_ADDR=live_cluster.coordinator,
            TSS_CACERT=str(certs / "ca.pem"),
            TSS_CERT=str(certs / f"{who}.pem"),
            TSS_KEY=str(certs / f"{who}.key"),
            TSS_CLUSTER_DIR=str(elsewhere / "no-cluster-here"),
        )
        argv_full = [sys.executable, "-m", "coordinator.cli", "--json", *argv]
        done = subprocess.run(argv_full, cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120)  # noqa: S603
        return done.returncode, (json.loads(done.stdout) if done.stdout.strip() else None), done.stderr

    return run


def test_an_approved_withdrawal_signed_from_another_directory_with_environment_variables(
    live_cluster: cluster.ClusterInfo, key: coordinator_pb2.Key, remote: Any
) -> None:
    rc, out, err = remote(
        "backend",
        "withdraw",
        "--key",
        key.key_id,
        "--to",
        TO,
        "--value",
        str(ETH),
        "--nonce",
        "3",
        "--network",
        "eip155:1",
    )
    assert rc == 0 and out["state"] == "pending_approval", err
    request_id = out["request_id"]
    for who in ("officer-1", "officer-2"):
        officer_key = str(live_cluster.officer_key(who))
        wait = ["--wait"] if who == "officer-2" else []  # the second approval completes the quorum
        rc, out, err = remote(who, "approve", request_id, "--yes", "--officer", who, "--key", officer_key, *wait)
        assert rc == 0, err
    assert out["state"] == "signed" and out["approved_by"] == ["officer-1", "officer-2"]
    assert Account.recover_transaction(out["request"]["raw_tx"]) == key.eth_address
    rc, listed, err = remote("operator", "request", "list", "--state", "signed")
    assert rc == 0 and request_id in [r["request_id"] for r in listed["requests"]], err


def test_a_legacy_withdrawal_is_approved_in_the_officers_tool_and_signed(
    live_cluster: cluster.ClusterInfo, key: coordinator_pb2.Key, remote: Any
) -> None:
    # Real processes end to end: tssctl builds the type-0 body, the coordinator and the signers
    # decode it, the officers' tool rebuilds the intent from it before signing an approval.
    argv = ["withdraw", "--key", key.key_id, "--to", TO, "--value", str(ETH), "--nonce", "4", "--network", "eip155:1"]
    rc, out, err = remote("backend", *argv, "--legacy", "--gas-price", str(30 * 10**9))
    assert rc == 0 and out["state"] == "pending_approval" and out["tx_type"] == 0, (err, out)
    assert out["intent"]["tx_type"] == 0 and out["intent"]["max_fee_per_gas"] == str(30 * 10**9)
    request_id = out["request_id"]
    for who in ("officer-1", "officer-2"):
        officer_key = str(live_cluster.officer_key(who))
        wait = ["--wait"] if who == "officer-2" else []
        rc, out, err = remote(who, "approve", request_id, "--officer", who, "--key", officer_key, "--yes", *wait)
        assert rc == 0, err
    assert "legacy EIP-155 transaction" in out["intent_text"]
    raw = out["request"]["raw_tx"]
    assert out["state"] == "signed" and Account.recover_transaction(raw) == key.eth_address
    assert int(raw[2:4], 16) >= 0xC0  # an RLP list, no type byte


def test_an_approve_without_a_key_file_is_refused_remotely(remote: Any) -> None:
    rc, out, err = remote("officer-1", "approve", "r-1", "--yes", "--officer", "officer-1")
    assert rc == 2 and out["reason"] == "usage"
    assert "--key FILE: officer-1's key file" in err


def test_a_bogus_state_filter_names_the_valid_states(remote: Any) -> None:
    rc, out, err = remote("operator", "request", "list", "--state", "bogus")
    assert rc == EXIT_FAILED and err.count("\n") == 1
    expected = f"INVALID_ARGUMENT: state: unknown state 'bogus'; one of {', '.join(STATES)}"
    assert out["error"] == expected and err == f"tssctl: {expected}\n"


def test_the_coordinator_serves_metrics_once_configured(
    live_cluster: cluster.ClusterInfo, key: coordinator_pb2.Key
) -> None:
    config = live_cluster.root / "coordinator" / "coordinator.json"
    port = cluster.free_port()
    config.write_text(json.dumps({**json.loads(config.read_text()), "metrics_listen": f"127.0.0.1:{port}"}))
    cluster.restart(live_cluster.root, "coordinator")
    deadline = time.monotonic() + 20
    while True:  # readiness is checked every 5 s after the start
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
            lines = reply.read().decode().splitlines()
        if "tss_coordinator_ready 1.0" in lines or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert "tss_coordinator_ready 1.0" in lines
    assert {f'tss_signer_live{{party="{p}"}} 1.0' for p in (1, 2, 3)} <= set(lines)
    assert any(line.startswith("tss_coordinator_keys{") for line in lines)


def _health(info: cluster.ClusterInfo, service: str) -> str:
    with grpc.secure_channel(info.coordinator, channel_credentials(info.client_tls())) as ch:
        reply = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


def test_health_follows_the_signers_and_cluster_status_exits_3(
    live_cluster: cluster.ClusterInfo, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _health(live_cluster, "") == "SERVING"
    assert main(["cluster", "status", "--dir", str(live_cluster.root)]) == 0
    info = cluster.ClusterInfo.load(live_cluster.root)
    for name in ("signer-2", "signer-3"):  # one signer left of the two a signature needs
        cluster.stop_process(info.pids[name])
    deadline = time.monotonic() + 30
    while _health(live_cluster, "") != "NOT_SERVING":
        assert time.monotonic() < deadline, "the coordinator still says SERVING with 2 of 3 signers dead"
        time.sleep(0.5)
    assert _health(live_cluster, "tsscustody.v1.Coordinator") == "NOT_SERVING"
    assert _health(live_cluster, LIVENESS) == "SERVING"  # alive: a restart would not help
    capsys.readouterr()
    assert main(["--json", "cluster", "status", "--dir", str(live_cluster.root)]) == EXIT_UNAVAILABLE
    status = json.loads(capsys.readouterr().out)
    assert status["ok"] is False and status["down"] == ["coordinator", "signer-2", "signer-3"]
    assert status["alive"] == {"coordinator": True, "signer-1": True, "signer-2": False, "signer-3": False}
