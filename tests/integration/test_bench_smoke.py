"""The service benchmark still runs end to end (a smoke run, not a measurement: CI times nothing).

`python -m bench.service` drives a real local cluster through the backend API after seeding
history through the stores' own write paths; a change to what the stores or the signers accept
(e.g. the signers' nonce index) can break it silently. Only completion and the shape of the
result are checked here; the figures are docs/performance.md's business."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow(60)
def test_the_service_benchmark_runs_against_a_seeded_history(tmp_path: Path) -> None:
    out = tmp_path / "service.json"
    argv = [sys.executable, "-m", "bench.service", "--quick", "--history", "0,200", "--samples", "3"]
    argv += ["--micro-history", "200", "--no-load", "--root", str(tmp_path / "cluster"), "--out", str(out)]
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(argv, cwd=root, capture_output=True, text=True, timeout=600, check=False)  # noqa: S603
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert set(result["online"]) == {"0", "200"}
    for figures in result["online"].values():
        assert figures["samples"] == 3 and 0 < figures["p50_ms"] <= figures["p99_ms"]
    assert set(result["ratio_last_over_first"]) == {"p50_ms", "p95_ms", "p99_ms"}
    assert result["micro"]["signer_record_release"] and result["micro"]["coordinator_policy_decision"]
