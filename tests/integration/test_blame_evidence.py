"""Blame is evidence (issue 9.6), against real processes: a compromised signer-3 process.

The coordinator (with every signer's identity key from coordinator.json) verifies envelopes before
forwarding and settles echo mismatches with SessionEvidence over mTLS. The abort record in the
coordinator's database names the compromised signer, never the relay or an honest signer.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from coordinator import cluster
from coordinator.client import CoordinatorClient
from signer.node import blame_codec

EVIL = Path(__file__).with_name("evil_signer.py")


@pytest.fixture(scope="module")
def info(tmp_path_factory: pytest.TempPathFactory) -> Iterator[cluster.ClusterInfo]:
    root = tmp_path_factory.mktemp("blame-cluster")
    try:
        yield cluster.up(root, n=3, threshold=2, level="112")
    finally:
        if "signer-3" in RUNNING:
            cluster.stop_process(RUNNING.pop("signer-3"))
        cluster.down(root)


def _become_evil(info: cluster.ClusterInfo, mode: str, running: dict[str, int]) -> None:
    """Replace signer-3's process (one this test started) by the compromised one."""
    pid = running.get("signer-3", info.pids["signer-3"])
    cluster.stop_process(pid)
    log = open(info.root / "logs" / f"evil-{mode}.log", "ab")
    proc = subprocess.Popen(  # noqa: S603 - our own test script
        [sys.executable, str(EVIL), mode, "--config", str(info.root / "signer-3" / "node.json")],
        stdout=log,
        stderr=log,
        cwd=info.root,
        start_new_session=True,
    )
    log.close()
    running["signer-3"] = proc.pid
    cluster.wait_healthy(info.signers[3], info.client_tls("coordinator"), pid=proc.pid)


def _create_key_aborts(info: cluster.ClusterInfo, name: str) -> list[tuple[int, str, str]]:
    with CoordinatorClient(info.coordinator, info.client_tls("operator")) as op:
        with pytest.raises(grpc.RpcError) as exc:
            op.create_key(name, 2, "112")
    assert exc.value.code() == grpc.StatusCode.ABORTED, exc.value.details()
    trailer = dict(exc.value.trailing_metadata() or ())
    return [(b.party, b.round, b.check) for b in blame_codec.decode_blames(trailer[blame_codec.METADATA_KEY])]


def _last_session(info: cluster.ClusterInfo) -> sqlite3.Row:
    conn = sqlite3.connect(info.root / "coordinator" / "coordinator.db")
    conn.row_factory = sqlite3.Row
    return conn.execute("SELECT * FROM sessions ORDER BY started_at DESC LIMIT 1").fetchone()


RUNNING: dict[str, int] = {}


def test_badly_signed_envelope_blames_the_signer_not_the_relay(info: cluster.ClusterInfo) -> None:
    _become_evil(info, "badsig", RUNNING)
    blames = _create_key_aborts(info, "badsig")
    assert blames == [(3, "keygen/r2", "envelope_signature")]
    row = _last_session(info)
    assert row["state"] == "failed" and "signer 3: emitted a badly signed envelope" in row["error"]
    assert [(b["party"], b["check"]) for b in json.loads(row["blame"])] == [(3, "envelope_signature")]


def test_echo_liar_is_convicted_by_its_signed_echo_and_the_sender_cleared(info: cluster.ClusterInfo) -> None:
    _become_evil(info, "echo_lie", RUNNING)
    blames = _create_key_aborts(info, "echo-lie")
    assert set(blames) == {(3, "keygen/r2", "echo_lie")}
    row = _last_session(info)
    stored = json.loads(row["blame"])
    assert {(b["party"], b["check"]) for b in stored} == {(3, "echo_lie")}
    assert all(b["evidence"] for b in stored)  # the signed echo and party 1's signed broadcast
    assert json.loads(row["unreachable"]) == []
