"""Online signing beside a refilling pool, with the signers' rounds in worker processes or threads.

    python -m bench.refill_modes [--json] [--modes processes,threads] [--runs 1] [--out FILE]

For each mode in turn (node.json `protocol_work`, signer/node/protocol_work.py), a fresh local
2-of-3 cluster at level 112: a key, the pool filled (`bench.service_load.fill`), then one client
signs `--idle` requests with every process quiet before each, and `--refilling` requests 100 ms
apart while the refill thread presigns (`presign_pool` far above what is ready), so the samples
span several presign rounds; the presign sessions completed in that window are counted, and the
ready count before and after is kept (none ready would mean on-the-spot presigning was measured).
The figure is the ratio of the two p99s per run (docs/performance.md). Results to stdout (JSON with
--json) and to `--out`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import structlog

from bench.service_common import bench_policy, percentiles, ready_count, say, wait_quiet
from bench.service_load import BIG_POOL, Signer, fill, set_pool
from coordinator import cluster
from coordinator.client import CoordinatorClient

RESULTS = Path(__file__).resolve().parent / "results" / "refill_modes.json"
GAP_S = 0.1


def _set_mode(root: Path, mode: str) -> cluster.ClusterInfo:
    for i in (1, 2, 3):
        config = root / f"signer-{i}" / "node.json"
        raw = json.loads(config.read_text())
        raw["protocol_work"] = mode
        config.write_text(json.dumps(raw, indent=2))
        cluster.restart(root, f"signer-{i}")
    return cluster.ClusterInfo.load(root)


def _presigns_done(db: Path, t0: float, t1: float) -> int:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as c:
        sql = "SELECT COUNT(*) FROM sessions WHERE protocol = 'presign' AND state = 'done' AND ended_at BETWEEN ? AND ?"
        return int(c.execute(sql, (t0, t1)).fetchone()[0])


def run(mode: str, idle_n: int, refilling_n: int) -> dict[str, Any]:
    """One cluster with its signers in `mode`: idle against refilling latency."""
    with tempfile.TemporaryDirectory(prefix=f"bench-refill-{mode}-") as tmp:
        root = Path(tmp) / "cluster"
        say(f"{mode}: starting a 2-of-3 cluster at level 112")
        cluster.up(root, 3, 2, "112", progress=say, adjust_policy=bench_policy)
        try:
            info = _set_mode(root, mode)
            with CoordinatorClient(info.coordinator, info.client_tls("operator")) as op:
                key = op.create_key("bench", 2, "112")
            db = root / "coordinator" / "coordinator.db"
            info = fill(root, key.key_id, idle_n + refilling_n + 12)
            s = Signer(info, key.key_id)
            idle = []
            for n in range(idle_n + 3):  # three uncounted warm-ups
                wait_quiet(list(info.pids.values()))
                ms = s.sign()
                if n >= 3:
                    idle.append(ms)
            s.close()
            info = set_pool(root, BIG_POOL)
            s = Signer(info, key.key_id)
            for _ in range(3):  # warm the channel; the first reservation schedules the refill
                s.sign()
            time.sleep(1.0)
            t0, ready_before = time.time(), ready_count(db, key.key_id)
            refilling = []
            for _ in range(refilling_n):
                refilling.append(s.sign())
                time.sleep(GAP_S)
            t1, ready_after = time.time(), ready_count(db, key.key_id)
            s.close()
            made = _presigns_done(db, t0, t1)
        finally:
            cluster.down(root)
    pi, pr = percentiles(idle), percentiles(refilling)
    return {
        "mode": mode,
        "idle": pi,
        "refilling": pr,
        "ratio_p50": pr["p50_ms"] / pi["p50_ms"],
        "ratio_p99": pr["p99_ms"] / pi["p99_ms"],
        "window_s": t1 - t0,
        "presigns_completed_in_window": made,
        "ready_before": ready_before,
        "ready_after": ready_after,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.refill_modes", description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ap.add_argument("--modes", default="processes,threads", help="protocol_work values, run in this order")
    ap.add_argument("--runs", type=int, default=1, help="times the sequence of modes is run (interleaved)")
    ap.add_argument("--idle", type=int, default=20, help="idle samples per run")
    ap.add_argument("--refilling", type=int, default=40, help="refilling samples per run")
    ap.add_argument("--out", type=Path, default=RESULTS, help="where the JSON result is written (default: %(default)s)")
    args = ap.parse_args(argv)
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))  # stdout is the result
    modes = [m for m in args.modes.split(",") if m]
    results = [run(m, args.idle, args.refilling) for _ in range(args.runs) for m in modes]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for r in results:
            print(
                f"{r['mode']:9}  idle p50/p99 {r['idle']['p50_ms']:.1f}/{r['idle']['p99_ms']:.1f} ms  "
                f"refilling {r['refilling']['p50_ms']:.1f}/{r['refilling']['p99_ms']:.1f} ms  "
                f"ratio p50 {r['ratio_p50']:.2f} p99 {r['ratio_p99']:.2f}  "
                f"presigns {r['presigns_completed_in_window']} in {r['window_s']:.1f} s"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
