"""CLI start-up benchmark: wall and CPU time of one `tssctl` command, process start to exit.

    python -m bench.cli [--json] [--runs N] [--dir D]

Starts a local 2-of-3 cluster at the 112-bit level (or uses the running one in `--dir`, which
must hold a key), creates a key and one withdrawal, then runs each command N times as a fresh
process (`python -m coordinator.cli ...`, what the `tssctl` script runs): `--help`, `key show`,
`request show` and `policy show`. Reports per command the median and p95 wall time and the median
CPU time (user + system of the child; steadier than wall time on a shared machine), plus how many
modules `import coordinator.cli` loads. Progress on stderr; results on stdout (a table, or JSON
with --json) and in bench/results/cli.json. docs/performance.md explains the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results" / "cli.json"


def say(msg: str) -> None:
    """Progress, on stderr."""
    print(f"[bench.cli] {msg}", file=sys.stderr, flush=True)


def tssctl(*args: str, check: bool = True) -> tuple[float, float, str]:
    """Run one tssctl command in a fresh process: (wall seconds, CPU seconds, stdout)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    argv = [sys.executable, "-m", "coordinator.cli", *args]
    done = subprocess.run(argv, capture_output=True, text=True)  # noqa: S603 - our own module
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if check and done.returncode != 0:
        raise RuntimeError(f"tssctl {' '.join(args)} failed: {done.stderr.strip()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.stdout


def _p95(xs: list[float]) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(0.95 * (len(s) - 1)))]


def measure(argv: list[str], runs: int) -> dict[str, float]:
    """Median and p95 wall time and median CPU time of `runs` runs, in ms (after one warm-up run)."""
    tssctl(*argv)
    walls, cpus = [], []
    for _ in range(runs):
        wall, cpu, _out = tssctl(*argv)
        walls.append(wall * 1000)
        cpus.append(cpu * 1000)
    return {
        "p50_ms": round(statistics.median(walls), 1),
        "p95_ms": round(_p95(walls), 1),
        "cpu_p50_ms": round(statistics.median(cpus), 1),
        "runs": runs,
    }


def _fixture(root: Path) -> tuple[str, str]:
    """A key and a request in the cluster at `root` (created when the cluster has none)."""
    d = ["--dir", str(root), "--json"]
    listed = json.loads(tssctl("request", "list", "--limit", "1", *d)[2])["requests"]
    if listed:
        return listed[0]["key_id"], listed[0]["request_id"]
    say("creating a key (112-bit) and one withdrawal")
    key = json.loads(tssctl("key", "create", "--name", "bench-cli", *d)[2])["key_id"]
    to = "0x000000000000000000000000000000000000dEaD"
    req = json.loads(
        tssctl("withdraw", "--key", key, "--to", to, "--value", "1000", "--network", "eip155:1", "--nonce", "0", *d)[2]
    )["request_id"]
    return key, req


def run(root: Path, runs: int) -> dict[str, Any]:
    """Every figure against the running cluster in `root`."""
    key, req = _fixture(root)
    d = ["--dir", str(root)]
    commands = {
        "help": ["--help"],
        "key_show": ["key", "show", key, *d],
        "request_show": ["request", "show", req, *d],
        "policy_show": ["policy", "show", *d],
    }
    out: dict[str, Any] = {}
    for name, argv in commands.items():
        say(f"{name}: {runs} runs")
        out[name] = measure(argv, runs)
    probe = "import sys, coordinator.cli; print(len(sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)  # noqa: S603
    out["modules_after_import"] = int(loaded.stdout)
    out["baseline_python_ms"] = measure_python(runs)
    return out


def measure_python(runs: int) -> float:
    """Median wall time of a bare `python -c pass`: the floor under every figure, in ms."""
    walls = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        walls.append((time.perf_counter() - t0) * 1000)
    return round(statistics.median(walls), 1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.cli", description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ap.add_argument("--runs", type=int, default=20, help="runs per command (after one warm-up)")
    ap.add_argument("--dir", type=Path, help="a running cluster (default: a fresh one, stopped afterwards)")
    args = ap.parse_args(argv)
    result: dict[str, Any] = {"load_average": os.getloadavg()[0]}
    if args.dir:
        result.update(run(args.dir, args.runs))
    else:
        root = Path(tempfile.mkdtemp(prefix="bench-cli-"))
        say(f"cluster up in {root} (112-bit)")
        tssctl("cluster", "up", "--dir", str(root), "--level", "112")
        try:
            result.update(run(root, args.runs))
        finally:
            tssctl("cluster", "down", "--dir", str(root), check=False)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{'command':<14} {'p50 ms':>8} {'p95 ms':>8} {'cpu ms':>8}")
        for name, row in result.items():
            if isinstance(row, dict):
                print(f"{name:<14} {row['p50_ms']:>8} {row['p95_ms']:>8} {row['cpu_p50_ms']:>8}")
        floor, mods = result["baseline_python_ms"], result["modules_after_import"]
        print(f"python -c pass: {floor} ms; modules after `import coordinator.cli`: {mods}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
