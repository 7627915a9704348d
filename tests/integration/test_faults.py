"""Faults with real processes (issue 11, "found in fault tests"): a signer whose store goes bad
while it runs is routed around; a damaged record or database refuses to start naming the file;
`tssctl cluster restart` restarts one process.

One cluster for the module; each test leaves it healthy again (the files it damages are put back).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from eth_account import Account
from tsscustody.v1 import coordinator_pb2

from coordinator import cluster
from coordinator.client import CoordinatorClient

from .conftest import log_text
from .support import eth_tx


@pytest.fixture(scope="module")
def key(live_cluster: cluster.ClusterInfo) -> coordinator_pb2.Key:
    with CoordinatorClient(live_cluster.coordinator, live_cluster.client_tls("operator")) as op:
        return op.create_key("faults-hot-wallet", 2, "112")


_nonce = iter(range(1000))


def _sign(root: Path, key: coordinator_pb2.Key) -> coordinator_pb2.SigningRequest:
    info = cluster.ClusterInfo.load(root)
    with CoordinatorClient(info.coordinator, info.client_tls("backend")) as be:
        req = be.sign_eth(key.key_id, eth_tx(next(_nonce)), f"faults-{uuid.uuid4()}")
    assert req.state == "signed", req.error
    assert Account.recover_transaction(req.raw_tx) == key.eth_address
    return req


def _query(root: Path, sql: str, *args: str) -> list[tuple[str, ...]]:
    """Rows from the running coordinator's database (read-only)."""
    db = root / "coordinator" / "coordinator.db"
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return [tuple(r) for r in conn.execute(sql, args)]
    finally:
        conn.close()


def _presignatures(root: Path, key_id: str) -> dict[str, tuple[str, tuple[int, ...]]]:
    """presig_id -> (state, signers)."""
    rows = _query(root, "SELECT presig_id, state, signers FROM presignatures WHERE key_id = ?", key_id)
    return {r[0]: (r[1], tuple(json.loads(r[2]))) for r in rows}


def _signers_of(root: Path, request_id: str) -> tuple[int, ...]:
    rows = _query(
        root,
        "SELECT p.signers FROM requests r JOIN presignatures p ON p.presig_id = r.presig_id WHERE r.request_id = ?",
        request_id,
    )
    return tuple(json.loads(rows[0][0]))


def _until(what: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def _start(module: str, config: Path) -> subprocess.CompletedProcess[str]:
    """Start a process of the cluster in the foreground, expecting it to refuse."""
    return subprocess.run(  # noqa: S603 - our own modules
        [sys.executable, "-m", module, "--config", str(config)], capture_output=True, text=True, timeout=60
    )


@pytest.mark.slow(60)
def test_a_signer_whose_store_breaks_is_routed_around(
    live_cluster: cluster.ClusterInfo, key: coordinator_pb2.Key
) -> None:
    root = live_cluster.root
    _sign(root, key)
    share = root / "signer-3" / "store" / "keys" / key.key_id / "share.rec"
    good = share.read_bytes()
    before = _presignatures(root, key.key_id)
    share.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))  # signer 3 keeps running; its store does not
    try:
        signed = [_sign(root, key) for _ in range(3)]
        # 2-of-3 kept signing, through {1, 2}.
        assert {_signers_of(root, r.request_id) for r in signed} == {(1, 2)}
        presigs = _presignatures(root, key.key_id)
        # At most one presignature of the healthy signers was burned on signer 3.
        burned = [s for pid, (state, s) in presigs.items() if state == "failed" and pid not in before]
        assert len(burned) <= 1 and all(3 in s for s in burned), burned
        # Signer 3 says so: its health, and its log names the file.
        _until(lambda: cluster.health(cluster.ClusterInfo.load(root))["signer-3"] == "NOT_SERVING")
        log = (root / "logs" / "signer-3.log").read_text()
        assert "store_unhealthy" in log and str(share) in log
    finally:
        share.write_bytes(good)
    _until(lambda: cluster.health(cluster.ClusterInfo.load(root))["signer-3"] == "SERVING")
    assert "store_recovered" in (root / "logs" / "signer-3.log").read_text()


@pytest.mark.slow(30)
def test_a_truncated_share_or_a_missing_identity_refuses_to_start(
    live_cluster: cluster.ClusterInfo, key: coordinator_pb2.Key, tssctl: Callable[..., tuple[int, object, str]]
) -> None:
    root = live_cluster.root
    config = root / "signer-2" / "node.json"
    store = root / "signer-2" / "store"
    share = store / "keys" / key.key_id / "share.rec"
    identity = store / "identity.rec"
    good = share.read_bytes()
    cluster.stop_process(cluster.ClusterInfo.load(root).pids["signer-2"])
    try:
        share.write_bytes(good[:30])
        run = _start("signer.node", config)
        assert run.returncode == 2
        assert run.stderr.splitlines()[-1] == (
            f"signer-2: refusing to start: record 'keys/{key.key_id}/share' is corrupt or truncated "
            f"({share}: bad header)"
        )
        share.write_bytes(good)

        identity.rename(identity.with_suffix(".aside"))
        run = _start("signer.node", config)
        assert run.returncode == 2
        assert run.stderr.splitlines()[-1].startswith(
            f"signer-2: refusing to start: record 'identity' is missing ({identity}) while the store holds shares"
        )
        assert not identity.exists()  # no new identity was made
    finally:
        share.write_bytes(good)
        if identity.with_suffix(".aside").exists():
            identity.with_suffix(".aside").rename(identity)
    rc, out, err = tssctl("cluster", "restart", "signer-2")
    assert rc == 0, err
    assert out["restarted"] == "signer-2" and out["pid"] == cluster.ClusterInfo.load(root).pids["signer-2"]
    _sign(root, key)


@pytest.mark.slow(30)
def test_a_corrupt_coordinator_database_refuses_to_start(
    live_cluster: cluster.ClusterInfo, key: coordinator_pb2.Key, tssctl: Callable[..., tuple[int, object, str]]
) -> None:
    root = live_cluster.root
    old_pid = cluster.ClusterInfo.load(root).pids["coordinator"]
    rc, out, err = tssctl("cluster", "restart", "coordinator")
    assert rc == 0, err
    assert out["pid"] != old_pid
    _sign(root, key)

    db = root / "coordinator" / "coordinator.db"
    cluster.stop_process(cluster.ClusterInfo.load(root).pids["coordinator"])
    assert not db.with_name(db.name + "-wal").exists() or db.with_name(db.name + "-wal").stat().st_size == 0
    shutil.copy(db, db.with_suffix(".good"))
    try:
        with sqlite3.connect(db) as conn:
            page_size = conn.execute("PRAGMA page_size").fetchone()[0]
            page = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'presignatures_pick'").fetchone()[0]
        conn.close()
        with open(db, "r+b") as f:
            f.seek((page - 1) * page_size)  # the index's b-tree page header
            f.write(b"\xff" * 64)
        run = _start("coordinator", root / "coordinator" / "coordinator.json")
        assert run.returncode == 1
        assert run.stderr.splitlines()[-1].startswith(f"coordinator: refusing to start: database {db} is corrupt: ")
        assert "btreeInitPage" in run.stderr.splitlines()[-1]  # what quick_check found, on the same line
    finally:
        shutil.copy(db.with_suffix(".good"), db)
    cluster.restart(root, "coordinator")
    _sign(root, key)
    assert "refusing_to_start" not in log_text(root).split("coordinator_listening")[-1]


@pytest.mark.slow(60)
def test_a_stalled_signer_holds_a_request_for_a_round_deadline_not_the_rpc_timeout(
    live_cluster: cluster.ClusterInfo, key: coordinator_pb2.Key
) -> None:
    root = live_cluster.root
    _sign(root, key)
    pid = cluster.ClusterInfo.load(root).pids["signer-3"]
    os.kill(pid, signal.SIGSTOP)  # up as far as TCP goes, answering nothing
    try:
        for _ in range(2):
            started = time.monotonic()
            _sign(root, key)
            assert time.monotonic() - started < 45  # a presign round's deadline (30 s) at most, not 120 s
    finally:
        os.kill(pid, signal.SIGCONT)
    _until(lambda: cluster.health(cluster.ClusterInfo.load(root))["signer-3"] == "SERVING")
