"""CI smoke of the service benchmark (bench/service.py): a small run, checked only against itself.

The benchmark drives a real local 2-of-3 cluster through the backend API after seeding history
through the stores' own write paths; a change to what the stores or the signers accept (e.g. the
signers' nonce index, which once made the benchmark's own transfer `nonce_reused` after seeding)
breaks it, and a change that makes a request's cost grow with the history behind it shows as the
ratio below. No absolute time is checked: CI times nothing, only ratios measured in the same run.

It runs in this process (not `python -m bench.service`), so the cluster's ports, including those it
takes when it comes back up after seeding, come from this worker's band of coordinator/ports.py and
are never ones this process handed to another cluster.
"""

from __future__ import annotations

import json
from pathlib import Path

from bench import service

HISTORY = 500
SAMPLES = 8
RATIO_LIMIT = 2.0
"""The issue's target is 1.10 on a quiet machine. CI shares its two cores with the other worker's
tests, and with nothing changed two CI runs read 1.26x (medians) and 1.43x (fastest of ten). The
cost this guards against, the O(history) ledger rewrite and policy rebuild, read about +0.08 ms per
prior release: some 4x at 500."""
PERCENTILES = {"min_ms", "p50_ms", "p95_ms", "p99_ms", "mean_ms", "samples"}


def test_latency_at_a_seeded_history_stays_within_twice_latency_at_zero(tmp_path: Path) -> None:
    opts = service.Options(
        level="112",
        sets=((2, 3),),
        history=(0, HISTORY),
        samples=SAMPLES,
        micro_history=HISTORY,
        micro_samples=20,
        warmups=1,  # the first signature after the cluster comes back up presigns on the spot
        load=False,
        quick=True,
        presignatures=0,
        cold=False,
        cli_runs=0,
    )
    work = tmp_path / "work"
    work.mkdir()
    result = json.loads(json.dumps(service.measure(opts, work)))  # what --out writes

    assert {"level", "threshold", "parties", "quick", "micro", "key_creation", "online"} <= set(result)
    assert (result["threshold"], result["parties"]) == (2, 3)
    assert set(result["micro"]) == {"signer_record_release", "coordinator_policy_decision"}
    for figures in result["micro"].values():
        assert set(figures) == {"at_0_ms", f"at_{HISTORY}_ms", "ratio"}
    assert result["key_creation"]["warm_s"] > 0
    assert set(result["online"]) == {"0", str(HISTORY)}
    for figures in result["online"].values():
        assert set(figures) == PERCENTILES
        assert figures["samples"] == SAMPLES
        assert 0 < figures["min_ms"] <= figures["p50_ms"] <= figures["p95_ms"] <= figures["p99_ms"]
    assert set(result["slope_ms_per_1000"]) == set(result["ratio_last_over_first"]) == {"p50_ms", "p95_ms", "p99_ms"}
    assert not {"presign", "load", "cli", "sets"} & set(result)  # not asked for

    # The fastest of each run: a cost that grows with history moves every request, the fastest
    # included, while the other CI worker's load lands on some requests and not others (a median
    # of ten at load 7 once read 1.26x with nothing changed).
    at_zero, at_history = result["online"]["0"]["min_ms"], result["online"][str(HISTORY)]["min_ms"]
    assert at_history <= RATIO_LIMIT * at_zero, result["online"]
    p50 = result["online"]["0"]["p50_ms"], result["online"][str(HISTORY)]["p50_ms"]
    assert result["ratio_last_over_first"]["p50_ms"] == p50[1] / p50[0]
