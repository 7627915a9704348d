"""Service benchmark under load: throughput with concurrent clients, latency while the pool refills
against idle, the empty-pool rate, and every process's memory (`bench.service` runs these).

The coordinator's pool size (`presign_pool` in coordinator.json) is set per phase and the
coordinator restarted (the signers keep their presignatures in memory, the coordinator's ready
rows stay ready):
- **empty pool** (`presign_pool` 0, nothing ready): one client; every request presigns on the spot.
- **warm pool**: the pool filled first (enough ready presignatures for every request of the
  phase), then `presign_pool` 0, so no refill competes: throughput with 1, 8 and 32 concurrent
  clients (each its own channel), each client signing back to back.
- **idle vs refilling**, in one run on the same cluster: one client, sequential requests with
  presignatures ready; idle = `presign_pool` 0 and every process quiet before each request;
  refilling = `presign_pool` set far above what is ready, so the refill thread presigns
  throughout. The ratio of the two p99s is the figure (never an absolute time). The fill covers
  both phases, and the ready count before and after the refilling phase is recorded: a request
  that found none ready would presign on the spot and measure that instead.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from pathlib import Path
from typing import Any

from bench.service_common import cpu_ticks, eth_tx, percentiles, ready_count, rss_mib, say, wait_quiet, wait_ready
from coordinator import cluster
from coordinator.client import CoordinatorClient

BIG_POOL = 10_000  # a refill that never completes: presigning the whole time


def set_pool(root: Path, size: int) -> cluster.ClusterInfo:
    """Restart the coordinator with `presign_pool` = `size`; the cluster's info afterwards."""
    config = root / "coordinator" / "coordinator.json"
    raw = json.loads(config.read_text())
    raw["presign_pool"] = size
    config.write_text(json.dumps(raw, indent=2))
    cluster.restart(root, "coordinator")
    return cluster.ClusterInfo.load(root)


class Signer:
    """One backend client signing benchmark transfers (unique nonces and idempotency keys)."""

    _count = 0
    _lock = threading.Lock()

    def __init__(self, info: cluster.ClusterInfo, key_id: str) -> None:
        self.client = CoordinatorClient(info.coordinator, info.client_tls("backend"))
        self.key_id = key_id

    def sign(self) -> float:
        """Sign one transfer; its latency in ms."""
        with Signer._lock:
            Signer._count += 1
            n = Signer._count
        t0 = time.perf_counter()
        req = self.client.sign_eth(self.key_id, eth_tx(n), f"load-{n}-{time.time_ns()}", ())
        ms = (time.perf_counter() - t0) * 1000
        if req.state != "signed":
            raise RuntimeError(f"request {req.request_id} is {req.state}: {req.error or req.policy_reason}")
        return ms

    def close(self) -> None:
        """Close the channel."""
        self.client.close()


def sequential(info: cluster.ClusterInfo, key_id: str, count: int, *, quiet: bool) -> list[float]:
    """`count` requests one after another (after 3 uncounted warm-ups); `quiet`: wait before each
    until no process uses CPU (nothing presigns)."""
    s = Signer(info, key_id)
    try:
        out = []
        for n in range(count + 3):
            if quiet:
                wait_quiet(list(info.pids.values()))
            ms = s.sign()
            if n >= 3:
                out.append(ms)
        return out
    finally:
        s.close()


def concurrent(info: cluster.ClusterInfo, key_id: str, clients: int, per_client: int) -> dict[str, Any]:
    """`clients` threads, each with its own channel (connected first), signing `per_client` back to back."""
    signers = [Signer(info, key_id) for _ in range(clients)]
    for s in signers:
        s.client.get_key(key_id)  # connect (TLS handshake) before the clock starts
    barrier = threading.Barrier(clients + 1)
    times: list[float] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(s: Signer) -> None:
        barrier.wait()
        try:
            mine = [s.sign() for _ in range(per_client)]
        except BaseException as exc:  # reported after the run
            with lock:
                errors.append(exc)
            return
        with lock:
            times.extend(mine)

    threads = [threading.Thread(target=run, args=(s,)) for s in signers]
    for t in threads:
        t.start()
    barrier.wait()
    t0, ticks = time.perf_counter(), {name: cpu_ticks([pid]) for name, pid in info.pids.items()}
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    tick_ms = 1000 / os.sysconf("SC_CLK_TCK")
    by_process = {name: (cpu_ticks([pid]) - ticks[name]) * tick_ms for name, pid in info.pids.items()}
    cpu_ms = sum(by_process.values())
    for s in signers:
        s.close()
    if errors:
        raise RuntimeError(f"{len(errors)} clients failed: {errors[0]}")
    n = len(times)
    # CPU of the cluster's processes per signature: with `os.cpu_count()` cores, the rate cannot exceed
    # cores * 1000 / cpu_ms_per_signature (what bounds throughput when the machine is saturated).
    # A process is one interpreter (one GIL): it cannot exceed 1000 / its CPU ms per signature either.
    cpu = {
        "cpu_ms_per_signature": cpu_ms / n,
        "cpu_bound_per_s": (os.cpu_count() or 1) * 1000 * n / cpu_ms,
        "cpu_ms_per_signature_by_process": {name: ms / n for name, ms in by_process.items()},
    }
    return {"clients": clients, "signatures": n, "wall_s": wall, "per_s": n / wall, **cpu, **percentiles(times)}


def fill(root: Path, key_id: str, need: int) -> cluster.ClusterInfo:
    """At least `need` presignatures ready across the signer sets, then no refill (`presign_pool` 0)."""
    per_set = math.ceil(need / 3) + 2
    info = set_pool(root, per_set)
    db = root / "coordinator" / "coordinator.db"
    t0 = time.perf_counter()
    before = ready_count(db, key_id)
    for _ in range(3):  # one request per set in the rotation schedules that set's refill
        sequential(info, key_id, 0, quiet=False)
    wait_ready(db, key_id, min(need, 3 * per_set - 3), timeout=1800)
    wait_quiet(list(info.pids.values()), timeout=1800)  # the last batches done
    made = ready_count(db, key_id) - before
    say(f"pool filled: {ready_count(db, key_id)} ready ({made} made in {time.perf_counter() - t0:.1f} s)")
    return set_pool(root, 0)


def run_load(root: Path, key_id: str, *, quick: bool) -> dict[str, Any]:
    """Every load figure on a running cluster (see the module docstring)."""
    out: dict[str, Any] = {}
    empty = 3 if quick else 8
    say(f"empty pool: {empty} signatures presigned on the spot")
    info = set_pool(root, 0)
    db = root / "coordinator" / "coordinator.db"
    ready = ready_count(db, key_id)
    if ready:  # use up what is ready first, so the measured requests presign
        sequential(info, key_id, max(0, ready - 3), quiet=False)
    t0 = time.perf_counter()
    times = sequential(info, key_id, empty, quiet=False)
    out["empty_pool"] = {"per_s": len(times) / (time.perf_counter() - t0), **percentiles(times)}
    runs = [(1, 6 if quick else 30), (8, 2 if quick else 8), (32, 1 if quick else 4)]
    idle_n = 15 if quick else 30
    # Ready for every measured request: the idle and the refilling phases take idle_n + 3 each. A
    # refilling request that finds none presigns on the spot (~1 s): that was the whole "refill" tail.
    need = sum(c * k for c, k in runs) + 2 * (idle_n + 3) + 6
    info = fill(root, key_id, need)
    out["throughput"] = {}
    for clients, per_client in runs:
        say(f"throughput: {clients} clients x {per_client} signatures (warm pool, no refill)")
        wait_quiet(list(info.pids.values()))
        out["throughput"][str(clients)] = r = concurrent(info, key_id, clients, per_client)
        say(f"  {r['per_s']:.1f} signatures/s, p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms")
    say(f"latency idle: {idle_n} signatures, every process quiet before each")
    idle = percentiles(sequential(info, key_id, idle_n, quiet=True))
    say(f"latency while refilling: {idle_n} signatures, the refill thread presigning throughout")
    info = set_pool(root, BIG_POOL)
    time.sleep(1.0)  # the refill thread started (a request's reservation schedules its set)
    ready_before = ready_count(db, key_id)
    refilling = percentiles(sequential(info, key_id, idle_n, quiet=False))
    ready_after = ready_count(db, key_id)
    if ready_after == 0:
        say("warning: the pool ran dry while refilling: some requests presigned on the spot")
    out["refill_vs_idle"] = {
        "idle": idle,
        "refilling": refilling,
        "ready_before": ready_before,
        "ready_after": ready_after,
        "ratio_p50": refilling["p50_ms"] / idle["p50_ms"],
        "ratio_p99": refilling["p99_ms"] / idle["p99_ms"],
    }
    out["rss"] = {name: rss_mib(pid) for name, pid in sorted(info.pids.items())}
    set_pool(root, 0)
    return out
