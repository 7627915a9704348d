"""A signer server's protocol rounds run in worker processes below its priority (issue 12).

Real processes: the signers of a local cluster (coordinator/cluster.py) compute their rounds in a
pool of worker processes (signer/node/protocol_work.py), children of multiprocessing's fork server,
itself a child of the signer. Read from /proc: the workers run 10 nice levels below the signer and
do the presign's CPU work; a worker killed with SIGKILL in the middle of a presign fails that
session (the coordinator records it failed with the signer UNAVAILABLE, the request does not hang)
and the next presign succeeds on a new worker; a signer killed with SIGKILL leaves no worker behind.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from eth_account import Account
from tsscustody.v1 import coordinator_pb2

from coordinator import cluster
from coordinator.client import CoordinatorClient
from signer.node.prime_workers import COMM
from tests.fixtures.fixture_signer import PROTOCOL_WORK_ENV

from .support import eth_tx

_nonce = iter(range(1000))


@pytest.fixture(scope="module")
def live_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[cluster.ClusterInfo]:
    """The suite's cluster (tests/integration/conftest.py) with production's worker processes: the
    suite's other signers use threads (tests/fixtures/fixture_signer.py)."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv(PROTOCOL_WORK_ENV, "processes")  # restarted signers inherit it too
        root = tmp_path_factory.mktemp("cluster")
        info = cluster.up(root, n=3, threshold=2, level="112")
        try:
            yield info
        finally:
            cluster.down(root)


def _stat(pid: int) -> list[str] | None:
    """/proc/PID/stat after the command name: [state, ppid, ...]; None once the process is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _stat(int(entry))
            if st is not None and int(st[1]) == pid and st[0] != "Z":
                out.append(int(entry))
    return out


def _descendants(pid: int) -> list[int]:
    out = []
    for child in _children(pid):
        out += [child, *_descendants(child)]
    return out


def _workers(signer: int) -> list[int]:
    """The signer's protocol workers: the children of its children (the fork server's), but not
    the prime pool's children (signer/node/prime_workers.py), which the fork server also starts."""
    return [w for child in _children(signer) for w in _children(child) if _comm(w) != COMM]


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _cpu_ticks(pid: int) -> int:
    st = _stat(pid)
    return 0 if st is None else int(st[11]) + int(st[12])  # utime + stime


def _nice(pid: int) -> int:
    st = _stat(pid)
    assert st is not None, f"process {pid} is gone"
    return int(st[16])


def _until(what: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _signer_pids(root: Path) -> dict[int, int]:
    info = cluster.ClusterInfo.load(root)
    return {int(name.split("-")[1]): pid for name, pid in info.pids.items() if name.startswith("signer-")}


def _sign(root: Path, key: coordinator_pb2.Key) -> coordinator_pb2.SigningRequest:
    info = cluster.ClusterInfo.load(root)
    with CoordinatorClient(info.coordinator, info.client_tls("backend"), timeout=300) as be:
        return be.sign_eth(key.key_id, eth_tx(next(_nonce)), f"workers-{uuid.uuid4()}")


def _query(root: Path, sql: str) -> list[tuple[object, ...]]:
    db = root / "coordinator" / "coordinator.db"
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return [tuple(r) for r in conn.execute(sql)]
    finally:
        conn.close()


def _failed_presign_errors(root: Path) -> list[str]:
    return [
        str(r[0]) for r in _query(root, "SELECT error FROM sessions WHERE protocol = 'presign' AND state = 'failed'")
    ]


@pytest.fixture(scope="module")
def key(live_cluster: cluster.ClusterInfo) -> coordinator_pb2.Key:
    """A key, then no background refill: each signature presigns on the spot, when the test asks."""
    with CoordinatorClient(live_cluster.coordinator, live_cluster.client_tls("operator")) as op:
        k = op.create_key("workers-hot-wallet", 2, "112")
    config = live_cluster.root / "coordinator" / "coordinator.json"
    raw = json.loads(config.read_text())
    raw["presign_pool"] = 0
    config.write_text(json.dumps(raw, indent=2))
    cluster.restart(live_cluster.root, "coordinator")
    ready = _query(live_cluster.root, "SELECT COUNT(*) FROM presignatures WHERE state = 'ready'")[0][0]
    for _ in range(int(str(ready))):  # what the refill made before: used up
        assert _sign(live_cluster.root, k).state == "signed"
    return k


@pytest.mark.slow(30)
def test_presign_rounds_run_in_child_processes_below_the_signers_priority(
    live_cluster: cluster.ClusterInfo, key: coordinator_pb2.Key
) -> None:
    signers = _signer_pids(live_cluster.root)
    _until(lambda: all(_workers(pid) for pid in signers.values()))  # keygen and aux ran there already
    for pid in signers.values():
        for worker in _workers(pid):
            assert _nice(worker) == min(19, _nice(pid) + 10), (pid, worker)
    before = {w: _cpu_ticks(w) for pid in signers.values() for w in _workers(pid)}
    own_before = {pid: _cpu_ticks(pid) for pid in signers.values()}
    req = _sign(live_cluster.root, key)  # no presignature ready: presigns on the spot
    assert req.state == "signed", req.error
    assert Account.recover_transaction(req.raw_tx) == key.eth_address
    worker_ticks = sum(_cpu_ticks(w) - before.get(w, 0) for pid in signers.values() for w in _workers(pid))
    own_ticks = sum(_cpu_ticks(pid) - own_before[pid] for pid in signers.values())
    # Two signers' presign rounds (Paillier encryptions and range proofs at 112 bits) are far more
    # CPU than their RPC handling, and it is the workers that spent it.
    assert worker_ticks > own_ticks, (worker_ticks, own_ticks)


@pytest.mark.slow(60)
def test_a_worker_killed_mid_presign_fails_the_session_and_the_next_presign_succeeds(
    live_cluster: cluster.ClusterInfo, key: coordinator_pb2.Key
) -> None:
    root = live_cluster.root
    signers = _signer_pids(root)
    failed_before = len(_failed_presign_errors(root))
    outcome: list[coordinator_pb2.SigningRequest | BaseException] = []

    def sign() -> None:
        try:
            outcome.append(_sign(root, key))
        except BaseException as exc:  # reported below
            outcome.append(exc)

    thread = threading.Thread(target=sign)
    thread.start()
    killed = 0
    deadline = time.monotonic() + 60
    while not killed and thread.is_alive() and time.monotonic() < deadline:
        for pid in signers.values():
            busy = [w for w in _workers(pid) if (_stat(w) or ["?"])[0] == "R"]  # computing a round
            if busy:
                os.kill(busy[0], signal.SIGKILL)
                killed = busy[0]
                break
        time.sleep(0.005)
    assert killed, "no worker was seen computing a round"
    thread.join(timeout=300)
    assert not thread.is_alive(), "the request hung after its worker died"
    assert len(outcome) == 1 and not isinstance(outcome[0], BaseException), outcome
    # The next presign succeeds (if the worker died between two rounds, its signer's next step is
    # the one that fails: then this request's first presign, and the coordinator's retry signs).
    req = _sign(root, key)
    assert req.state == "signed", req.error
    # The coordinator saw a session fail with that signer unavailable, never a hang.
    _until(lambda: len(_failed_presign_errors(root)) > failed_before)
    assert any("worker process" in e and "UNAVAILABLE" in e for e in _failed_presign_errors(root))
    req = _sign(root, key)  # and the pool of the signer whose worker died was replaced
    assert req.state == "signed", req.error
    assert all(_workers(pid) for pid in signers.values())
    assert all(killed not in _workers(pid) for pid in signers.values())


@pytest.mark.slow(30)
def test_a_signer_killed_leaves_no_worker_behind(live_cluster: cluster.ClusterInfo, key: coordinator_pb2.Key) -> None:
    del key  # the workers exist once a key was made
    root = live_cluster.root
    party, pid = sorted(_signer_pids(root).items())[0]
    _until(lambda: bool(_workers(pid)))
    family = _descendants(pid)
    assert family
    os.kill(pid, signal.SIGKILL)
    _until(lambda: all(_stat(p) is None or _stat(p)[0] == "Z" for p in family))  # type: ignore[index]
    new = cluster.restart(root, f"signer-{party}")
    assert new != pid
    # A graceful stop (SIGTERM) shuts the pool down as well.
    _until(lambda: bool(_workers(new)))
    family = _descendants(new)
    cluster.restart(root, f"signer-{party}")
    _until(lambda: all(_stat(p) is None or _stat(p)[0] == "Z" for p in family))  # type: ignore[index]
