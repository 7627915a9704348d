"""Service benchmark: cost per request against the history behind it, and presigning against its bound.

    python -m bench.service [--json] [--quick] [--sets 2of3,3of5] [--history 0,1000,10000]
                            [--samples N] [--presignatures N] [--root DIR] [--out FILE] [--no-...]

For each t-of-n configuration of `--sets` (default 2-of-3 and 3-of-5) it starts a local cluster
(coordinator/cluster.py; level 112 with --quick, the default level 128 otherwise) and measures:
- key creation with warm prime pools (bench/service_keys.py), and last, cold (empty pools);
- online signing latency through the coordinator's gRPC API with a presignature ready and every
  process quiet before each request; for the first configuration at each history size (0, 1,000
  and 10,000 prior released signatures), for the others at the smallest. The history is seeded
  through the stores' own write paths with the processes stopped (bench/service_seed.py);
- presignatures/s of one signing set through the coordinator's refill, against the modexp bound
  measured in the same run (bench/service_presign.py, bench/modexp_bound.py);
- for the first configuration only: the load figures (bench/service_load.py: throughput with 1,
  8 and 32 clients, latency while the pool refills against idle, the empty-pool rate, memory)
  and the wall time of each tssctl command (bench/cli.py's `run`).

Also an in-process micro-benchmark of the two history-dependent steps (bench/service_micro.py).
Progress goes to stderr; the results to stdout (a table, or JSON with --json) and to --out
(bench/results/service.json). The first configuration's figures are at the top level of the
JSON, the others' under `sets.<t>of<n>`. docs/performance.md explains the figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import structlog

from bench import cli as cli_bench
from bench.service_common import bench_policy, eth_tx, percentiles, say, wait_quiet, wait_ready
from bench.service_keys import create_cold, create_warm
from bench.service_load import run_load
from bench.service_micro import micro_coordinator, micro_signer
from bench.service_presign import presign_figures
from bench.service_seed import seed_coordinator, seed_signers
from coordinator import cluster
from coordinator.client import CoordinatorClient

RESULTS = Path(__file__).resolve().parent / "results" / "service.json"


@dataclasses.dataclass(frozen=True)
class Options:
    """What one run measures (`main` builds it from the command line; the CI smoke builds its own)."""

    level: str
    sets: tuple[tuple[int, int], ...]  # (t, n): the first gets the history, load and tssctl figures
    history: tuple[int, ...]
    samples: int
    micro_history: int
    micro_samples: int = 200
    warmups: int = 3  # uncounted signatures before each history size (the first after a restart presigns)
    service: bool = True
    load: bool = True
    quick: bool = False
    presignatures: int = 0  # back to back per set (0: not measured)
    cold: bool = True
    cli_runs: int = 0  # runs per tssctl command (0: not measured)


def set_name(t: int, n: int) -> str:
    """`2of3`: how --sets and the result name a configuration."""
    return f"{t}of{n}"


def parse_sets(text: str) -> tuple[tuple[int, int], ...]:
    """`2of3,3of5` -> ((2, 3), (3, 5))."""
    out = []
    for part in text.split(","):
        t, sep, n = part.strip().partition("of")
        if not sep or not t.isdigit() or not n.isdigit() or not 2 <= int(t) <= int(n):
            raise argparse.ArgumentTypeError(f"a set is TofN with 2 <= T <= N, e.g. 2of3 (got {part!r})")
        out.append((int(t), int(n)))
    return tuple(out)


# --- the service --------------------------------------------------------------------------------------
def online_latency(
    info: cluster.ClusterInfo, key_id: str, samples: int, tag: str, warmups: int = 3
) -> dict[str, float]:
    """Latency of `sign_eth` through the coordinator, each request with a presignature ready and
    every process quiet (no presigning competes with it)."""
    db = info.root / "coordinator" / "coordinator.db"
    times: list[float] = []
    with CoordinatorClient(info.coordinator, info.client_tls("backend")) as backend:
        for n in range(samples + warmups):  # the first ones warm the channel and are not counted
            if n:  # a restarted coordinator presigns the first on the spot; a signature schedules the refill
                wait_ready(db, key_id, 1)
                wait_quiet(list(info.pids.values()))
            t0 = time.perf_counter()
            req = backend.sign_eth(key_id, eth_tx(n), f"bench-{tag}-{n}-{secrets.token_hex(4)}", ())
            elapsed = (time.perf_counter() - t0) * 1000
            if req.state != "signed":
                raise RuntimeError(f"request {req.request_id} is {req.state}: {req.error or req.policy_reason}")
            if n >= warmups:
                times.append(elapsed)
    return percentiles(times)


def run_set(root: Path, t: int, n: int, opts: Options, *, first: bool) -> dict[str, Any]:
    """One t-of-n cluster: key creation (warm), online latency (at every history size for the
    first set, at the smallest for the others), presigning against its bound, then for the first
    set the load and tssctl figures, and last key creation cold (it empties the prime pools)."""
    level, name = opts.level, set_name(t, n)
    say(f"starting a {t}-of-{n} cluster at level {level} in {root}")
    info = cluster.up(root, n, t, level, progress=say, adjust_policy=bench_policy)
    try:
        key_id, warm_s = create_warm(info, t, level)
        out: dict[str, Any] = {"threshold": t, "parties": n, "key_creation": {"warm_s": warm_s}, "online": {}}
        seeded = 0
        for h in opts.history if first else opts.history[:1]:
            if h > seeded:
                say(f"stopping the cluster to seed {h - seeded} more releases (history {h})")
                cluster.down(root)
                seed_signers(root, key_id, seeded, h - seeded)
                seed_coordinator(root / "coordinator" / "coordinator.db", key_id, seeded, h - seeded)
                seeded = h
                info = cluster.up(root, n, t, level, progress=say, adjust_policy=bench_policy)
            say(f"{name}: measuring {opts.samples} signatures at {h} prior releases")
            out["online"][str(h)] = online_latency(info, key_id, opts.samples, f"{name}-{h}", opts.warmups)
            say(f"  p50 {out['online'][str(h)]['p50_ms']:.2f} ms")
        if opts.presignatures:
            out["presign"] = presign_figures(root, key_id, t, level, opts.presignatures)
        if first and opts.load:
            out["load"] = run_load(root, key_id, quick=opts.quick)
        if first and opts.cli_runs:
            say(f"tssctl: each command {opts.cli_runs} times as a fresh process (bench/cli.py)")
            out["cli"] = cli_bench.run(root, opts.cli_runs)
        if opts.cold:
            out["key_creation"]["cold_s"] = create_cold(root, t, level)
        return out
    finally:
        cluster.down(root)


def slope_per_1000(points: dict[str, dict[str, float]], field: str = "p50_ms") -> float:
    """Least-squares slope of `field` against history, per 1,000 prior releases."""
    xs = [int(h) / 1000 for h in points]
    ys = [p[field] for p in points.values()]
    if len(xs) < 2:
        return 0.0
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)


def measure(opts: Options, work: Path, root: Path | None = None) -> dict[str, Any]:
    """Every figure `opts` asks for; clusters under `root` (default: `work`), one directory per set."""
    t0, n0 = opts.sets[0]
    result: dict[str, Any] = {"level": opts.level, "threshold": t0, "parties": n0, "quick": opts.quick}
    result["load_average"] = {"start": os.getloadavg()[0]}  # the machine is shared: say how busy it was
    say(f"micro-benchmark: recording a release and a policy decision at 0 and {opts.micro_history}")
    micro_signer_dir, micro_coord_dir = work / "micro-signer", work / "micro-coordinator"
    micro_signer_dir.mkdir()
    micro_coord_dir.mkdir()
    result["micro"] = {
        "signer_record_release": micro_signer(opts.micro_history, opts.micro_samples, micro_signer_dir),
        "coordinator_policy_decision": micro_coordinator(opts.micro_history, opts.micro_samples, micro_coord_dir),
    }
    if not opts.service:
        return result
    base = root or work
    for i, (t, n) in enumerate(opts.sets):
        figures = run_set(base / f"cluster-{set_name(t, n)}", t, n, opts, first=i == 0)
        if i == 0:
            result.update({k: v for k, v in figures.items() if k not in ("threshold", "parties")})
        else:
            result.setdefault("sets", {})[set_name(t, n)] = figures
    result["load_average"]["end"] = os.getloadavg()[0]
    online = result["online"]
    result["slope_ms_per_1000"] = {f: slope_per_1000(online, f) for f in ("p50_ms", "p95_ms", "p99_ms")}
    first, last = online[str(opts.history[0])], online[str(opts.history[-1])]
    result["ratio_last_over_first"] = {f: last[f] / first[f] for f in ("p50_ms", "p95_ms", "p99_ms")}
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.service", description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ap.add_argument("--quick", action="store_true", help="level 112 and fewer samples (a smoke run)")
    ap.add_argument("--sets", type=parse_sets, default="2of3,3of5", help="t-of-n clusters (%(default)s)")
    ap.add_argument("--history", default="0,1000,10000", help="prior releases to measure at (ascending)")
    ap.add_argument("--samples", type=int, default=0, help="signatures per history size (default 30, quick 15)")
    ap.add_argument("--presignatures", type=int, default=0, help="presigned back to back per set (default 8, quick 4)")
    ap.add_argument("--cli-runs", type=int, default=0, help="runs per tssctl command (default 20, quick 5)")
    ap.add_argument("--micro-history", type=int, default=10000, help="history of the micro-benchmark")
    ap.add_argument("--no-service", action="store_true", help="the in-process micro-benchmark only")
    ap.add_argument("--no-load", action="store_true", help="skip throughput, refill-vs-idle, empty pool and RSS")
    ap.add_argument("--no-presign", action="store_true", help="skip presignatures/s against the modexp bound")
    ap.add_argument("--no-cold", action="store_true", help="skip key creation with empty prime pools")
    ap.add_argument("--no-cli", action="store_true", help="skip the tssctl wall times")
    ap.add_argument("--root", type=Path, help="where the clusters go, one directory per set (default: a temporary one)")
    ap.add_argument("--out", type=Path, default=RESULTS, help="where the JSON result is written (default: %(default)s)")
    args = ap.parse_args(argv)
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))  # stdout is the result
    opts = Options(
        level="112" if args.quick else "128",
        sets=args.sets,
        history=tuple(sorted(int(h) for h in args.history.split(","))),
        samples=args.samples or (15 if args.quick else 30),
        micro_history=args.micro_history,
        service=not args.no_service,
        load=not args.no_load,
        quick=args.quick,
        presignatures=0 if args.no_presign else args.presignatures or (4 if args.quick else 8),
        cold=not args.no_cold,
        cli_runs=0 if args.no_cli else args.cli_runs or (5 if args.quick else 20),
    )
    with tempfile.TemporaryDirectory(prefix="bench-service-") as tmp:
        result = measure(opts, Path(tmp), args.root)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        _table(result)
    return 0


def _table(result: dict[str, Any]) -> None:
    for name, m in result["micro"].items():
        cells = "  ".join(f"{k} {v:.3f}" for k, v in m.items())
        print(f"{name:32} {cells}")
    configurations = {f"{result['threshold']}of{result['parties']}": result, **result.get("sets", {})}
    for cfg, figures in configurations.items():
        if "key_creation" not in figures:
            continue
        kc = figures["key_creation"]
        cold = f"{kc['cold_s']:.1f} s" if "cold_s" in kc else "not measured"
        print(f"{cfg}: key creation warm {kc['warm_s']:.1f} s, cold {cold}")
        for h, p in figures["online"].items():
            cells = f"p50 {p['p50_ms']:7.2f}  p95 {p['p95_ms']:7.2f}  p99 {p['p99_ms']:7.2f} ms"
            print(f"{cfg}: online @ {h:>6} prior  {cells}")
        if "presign" in figures:
            ps = figures["presign"]
            print(f"{cfg}: presign {ps['per_s']:.3f}/s, bound {ps['bound_per_s']:.3f}/s, ratio {ps['ratio']:.2f}")
    load = result.get("load", {})
    for c, r in load.get("throughput", {}).items():
        rate, p50, p99 = r["per_s"], r["p50_ms"], r["p99_ms"]
        print(f"throughput {c:>2} clients  {rate:7.1f} signatures/s  p50 {p50:7.2f}  p99 {p99:7.2f} ms")
    if "refill_vs_idle" in load:
        rv = load["refill_vs_idle"]
        print(f"refilling / idle: p50 x{rv['ratio_p50']:.2f}, p99 x{rv['ratio_p99']:.2f}")
        print(f"empty pool: {load['empty_pool']['per_s']:.2f} signatures/s")
        for name, m in load["rss"].items():
            print(f"RSS {name:12} {m['rss_mib']:7.1f} MiB (peak {m['peak_rss_mib']:.1f})")
    for name, row in result.get("cli", {}).items():
        if isinstance(row, dict):
            cells = f"wall p50 {row['p50_ms']:7.1f}  p95 {row['p95_ms']:7.1f}  cpu {row['cpu_p50_ms']:7.1f} ms"
            print(f"tssctl {name:<14} {cells}")
    if "slope_ms_per_1000" in result:
        print(f"slope per 1,000 prior (p50): {result['slope_ms_per_1000']['p50_ms']:+.3f} ms")
        print(f"latency at most history / at least (p50): {result['ratio_last_over_first']['p50_ms']:.3f}")


if __name__ == "__main__":
    sys.exit(main())
