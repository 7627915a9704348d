"""Where the time of one online signing request goes, measured in the real processes.

    python -m bench.service_breakdown [--json] [--quick] [--samples N] [--root DIR]

Starts a local 2-of-3 cluster whose processes load `bench/trace/sitecustomize.py` (BENCH_TRACE_DIR
set): it times the steps of the online path in the coordinator and the signers (store
transactions, the policy assessment, audit appends, PartialSign out and in, the signer's policy
check, its journal fsync, σ_i, combining). One backend client signs `samples` requests one after
another, each with a full presignature pool (no presigning competes), and records each request's
window on the machine-wide monotonic clock; every span that starts inside a window is charged to
that request. The result: per step, the median over requests of its total time per request and
its number of calls per request. Written to bench/results/service_breakdown.json.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import structlog

from bench.service_common import SEPOLIA, bench_policy, eth_tx, say, wait_quiet, wait_ready
from coordinator import cluster
from coordinator.client import CoordinatorClient

RESULTS = Path(__file__).resolve().parent / "results" / "service_breakdown.json"
TRACE_HOOK = Path(__file__).resolve().parent / "trace"


def traced_env(trace_dir: Path) -> None:
    """Make every process started from now on load the span tracer, writing into `trace_dir`."""
    os.environ["BENCH_TRACE_DIR"] = str(trace_dir)
    os.environ["PYTHONPATH"] = os.pathsep.join([str(TRACE_HOOK), os.environ.get("PYTHONPATH", "")])


def read_spans(trace_dir: Path) -> list[tuple[str, int, int, int]]:
    """Every span written so far: (name, start ns, duration ns, pid)."""
    out = []
    for f in trace_dir.glob("*.spans"):
        pid = int(f.stem)
        for line in f.read_text().splitlines():
            name, t0, dt, _thread = line.split()
            out.append((name, int(t0), int(dt), pid))
    return out


def attribute(
    spans: list[tuple[str, int, int, int]], windows: list[tuple[int, int]], roles: dict[int, str]
) -> dict[str, dict[str, float]]:
    """Per step (`<process role>:<span>`): the median over requests of ms per request, calls per request."""
    per: dict[str, list[tuple[float, int]]] = collections.defaultdict(list)
    for w0, w1 in windows:
        total: dict[str, float] = collections.defaultdict(float)
        calls: dict[str, int] = collections.defaultdict(int)
        for name, t0, dt, pid in spans:
            if w0 <= t0 < w1:
                key = f"{roles.get(pid, '?')}:{name}"
                total[key] += dt / 1e6
                calls[key] += 1
        for key in total:
            per[key].append((total[key], calls[key]))
    n = len(windows)
    out = {}
    for key, values in sorted(per.items()):
        ms = [v for v, _ in values] + [0.0] * (n - len(values))
        out[key] = {"ms_p50": statistics.median(ms), "calls_per_request": sum(c for _, c in values) / n}
    return out


def run(root: Path, level: str, samples: int) -> dict[str, Any]:
    """Start a traced cluster, sign `samples` requests one by one, attribute the spans."""
    trace_dir = root.parent / "trace"
    trace_dir.mkdir(parents=True, exist_ok=True)
    traced_env(trace_dir)
    info = cluster.up(root, 3, 2, level, progress=say, adjust_policy=bench_policy)
    roles = {pid: name.split("-")[0] for name, pid in info.pids.items()}
    try:
        with CoordinatorClient(info.coordinator, info.client_tls("operator")) as op:
            key = op.create_key("bench", 2, level)
        db = root / "coordinator" / "coordinator.db"
        windows: list[tuple[int, int]] = []
        client_ms: list[float] = []
        with CoordinatorClient(info.coordinator, info.client_tls("backend")) as backend:
            for n in range(samples + 3):  # three to warm the channels, not counted
                wait_ready(db, key.key_id, 1)
                wait_quiet(list(info.pids.values()))  # no refill competes with the request
                t0 = time.perf_counter_ns()
                req = backend.sign_eth(key.key_id, eth_tx(n), f"breakdown-{n}-{time.time_ns()}", ())
                t1 = time.perf_counter_ns()
                if req.state != "signed":
                    raise RuntimeError(f"request {req.request_id} is {req.state}: {req.error or req.policy_reason}")
                if n >= 3:
                    windows.append((t0, t1))
                    client_ms.append((t1 - t0) / 1e6)
        time.sleep(0.2)  # the signers' last spans land after the coordinator answered
        steps = attribute(read_spans(trace_dir), windows, roles)
    finally:
        cluster.down(root)
    return {
        "level": level,
        "samples": samples,
        "chain_id": SEPOLIA,
        "client_ms_p50": statistics.median(client_ms),
        "client_ms_mean": statistics.fmean(client_ms),
        "steps": steps,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.service_breakdown", description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ap.add_argument("--quick", action="store_true", help="level 112 (faster key creation)")
    ap.add_argument("--samples", type=int, default=30)
    ap.add_argument("--root", type=Path, help="cluster directory (default: a fresh temporary one)")
    args = ap.parse_args(argv)
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    with tempfile.TemporaryDirectory(prefix="bench-breakdown-") as tmp:
        result = run(args.root or Path(tmp) / "cluster", "112" if args.quick else "128", args.samples)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"client round trip p50 {result['client_ms_p50']:.2f} ms")
        for name, s in result["steps"].items():
            print(f"  {name:55} {s['ms_p50']:8.3f} ms  x{s['calls_per_request']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
