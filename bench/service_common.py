"""What the service benchmarks share: the bench policy, the transaction they sign, pool waits,
percentiles and process memory."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sqlite3
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from tsscustody.v1 import common_pb2

from signer.policy import PolicyDocument

SEPOLIA = 11155111
TO = "0x000000000000000000000000000000000000dEaD"
POOL_TARGET = 2  # the coordinator's default presign_pool


def say(msg: str) -> None:
    """Progress, on stderr."""
    print(f"[bench.service] {msg}", file=sys.stderr, flush=True)


def bench_policy(policy: PolicyDocument) -> PolicyDocument:
    """The demo policy without its per-client rate (one client signing back to back would hit it)."""
    limits = tuple(x for x in policy.limits if x.scope != "client_rate")
    return dataclasses.replace(policy, limits=limits)


def eth_tx(n: int) -> common_pb2.EthTransaction:
    """The n-th benchmark transfer: 0.001 ETH on Sepolia (signs without approvals under the demo policy)."""
    return common_pb2.EthTransaction(
        chain_id=SEPOLIA,
        nonce=n,
        max_priority_fee_per_gas=str(10**9),
        max_fee_per_gas=str(30 * 10**9),
        gas_limit=21000,
        to=TO,
        value=str(10**15),
    )


def ready_count(db: Path, key_id: str) -> int:
    """Ready presignatures of a key in the coordinator's database (read-only)."""
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)) as c:
        row = c.execute("SELECT COUNT(*) FROM presignatures WHERE key_id = ? AND state = 'ready'", (key_id,)).fetchone()
        return int(row[0])


def wait_ready(db: Path, key_id: str, want: int = POOL_TARGET, timeout: float = 300.0) -> None:
    """Wait until `want` presignatures are ready (the refill thread caught up)."""
    deadline = time.monotonic() + timeout
    while ready_count(db, key_id) < want:
        if time.monotonic() > deadline:
            raise RuntimeError("the presignature pool did not refill")
        time.sleep(0.02)


def percentiles(ms: Sequence[float]) -> dict[str, float]:
    """min, p50/p95/p99 and mean of a list of milliseconds (inclusive quantiles)."""
    if len(ms) < 2:
        v = ms[0] if ms else 0.0
        return {"min_ms": v, "p50_ms": v, "p95_ms": v, "p99_ms": v, "mean_ms": v, "samples": len(ms)}
    q = statistics.quantiles(ms, n=100, method="inclusive")
    return {
        "min_ms": min(ms),
        "p50_ms": q[49],
        "p95_ms": q[94],
        "p99_ms": q[98],
        "mean_ms": statistics.fmean(ms),
        "samples": len(ms),
    }


def _status_mib(pid: int) -> dict[str, float]:
    out = {"rss_mib": 0.0, "peak_rss_mib": 0.0}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                out["rss_mib"] = int(line.split()[1]) / 1024
            elif line.startswith("VmHWM:"):
                out["peak_rss_mib"] = int(line.split()[1]) / 1024
    except OSError:
        pass
    return out


def rss_mib(pid: int) -> dict[str, float]:
    """Resident memory of a process now and at its peak, and the summed RSS of its descendants now
    (a signer's fork server and protocol workers; pages they share are counted in each) (MiB)."""
    out = _status_mib(pid)
    out["descendants_rss_mib"] = sum(_status_mib(p)["rss_mib"] for p in with_descendants([pid])[1:])
    return out


def _stat(pid: int) -> list[str] | None:
    """/proc/PID/stat after the command name (state, ppid, ...), None once the process is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def with_descendants(pids: Sequence[int]) -> list[int]:
    """These processes and all their descendants: a signer computes its protocol rounds in worker
    processes, children of its fork server (signer/node/protocol_work.py), so its CPU is theirs too."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (st := _stat(int(entry))) is not None:
            children.setdefault(int(st[1]), []).append(int(entry))
    out, todo = [], list(pids)
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += children.get(pid, [])
    return out


def cpu_ticks(pids: Sequence[int]) -> int:
    """User + system clock ticks used so far by these processes, their descendants (a signer's
    protocol workers) and their reaped children."""
    total = 0
    for pid in with_descendants(pids):
        fields = _stat(pid)
        if fields is not None:
            total += sum(int(x) for x in fields[11:15])  # utime, stime, cutime, cstime
    return total


def wait_quiet(pids: Sequence[int], window: float = 0.2, timeout: float = 300.0) -> None:
    """Wait until these processes used no CPU for `window` seconds (no presigning under way)."""
    deadline = time.monotonic() + timeout
    before = cpu_ticks(pids)
    while time.monotonic() < deadline:
        time.sleep(window)
        now = cpu_ticks(pids)
        if now - before <= 1:  # one tick (10 ms) of housekeeping allowed
            return
        before = now
    raise RuntimeError("the cluster did not go quiet")
