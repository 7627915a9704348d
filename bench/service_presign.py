"""Presignatures per second of one signing set through the coordinator's pool, against the
modular-exponentiation bound measured in the same run (`bench.service` runs this).

The service's rate: the coordinator is restarted with `presign_pool` above what the set holds,
and one signing request (the first after a restart takes the first set of the rotation) makes
its refill thread presign for that set back to back, one session after another. The rate is
taken from the `created_at` of the set's new presignature rows (the coordinator's clock):
`count` gaps between `count + 1` consecutive rows, so the refill's start-up is not in it.

The bound (bench/modexp_bound.py): one presign of a set of t parties run in this process, its
exponentiations counted and priced at their measured cost: `bound_cpu_s_per_party`. The parties
of a set compute each round side by side, one thread each; with more parties than cores they
share them, so the set cannot make more than
`bound_per_s = 1 / (bound_cpu_s_per_party * max(1, t / cores))` presignatures a second.
`ratio = per_s / bound_per_s` (the issue's target: >= 0.95).

The CPU each process spent in the window (from /proc) per presignature is reported beside it,
and the ratio split in two: `modexp_share_of_party_cpu` (the bound over a party's CPU per
presignature: how much of what a party computes is exponentiation) and `party_busy_share` (a
party's CPU per presignature times the rate: how much of the wall time it was on a core; the
rest is waiting: relay hops, a round waiting for the slower party, other processes on the cores).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sqlite3
import statistics
import time
from pathlib import Path
from typing import Any

from bench.modexp_bound import set_bound
from bench.service_common import cpu_ticks, percentiles, say, wait_quiet
from bench.service_load import Signer, set_pool
from coordinator import cluster
from coordinator.store.columns import ints_json


def set_rows(db: Path, key_id: str, signers: tuple[int, ...], after: float) -> list[float]:
    """`created_at` of the set's presignatures (path m) created after `after`, oldest first."""
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)) as c:
        rows = c.execute(
            "SELECT created_at FROM presignatures WHERE key_id = ? AND signers = ? AND path = ? AND created_at > ? "
            "ORDER BY created_at",
            (key_id, ints_json(signers), ints_json(()), after),
        ).fetchall()
    return [float(r[0]) for r in rows]


def ready_of_set(db: Path, key_id: str, signers: tuple[int, ...]) -> int:
    """Ready presignatures of one set (path m)."""
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)) as c:
        row = c.execute(
            "SELECT COUNT(*) FROM presignatures WHERE key_id = ? AND signers = ? AND path = ? AND state = 'ready'",
            (key_id, ints_json(signers), ints_json(())),
        ).fetchone()
    return int(row[0])


def service_rate(root: Path, key_id: str, threshold: int, count: int) -> dict[str, Any]:
    """`count` presignatures of the rotation's first set made back to back by the refill thread."""
    info = cluster.ClusterInfo.load(root)
    parties = sorted(int(p) for p in info.signers)
    signers = next(itertools.combinations(parties, threshold))
    db = root / "coordinator" / "coordinator.db"
    # `count + 2` above what is ready: enough for `count + 1` new rows even if the trigger takes one of them.
    info = set_pool(root, ready_of_set(db, key_id, signers) + count + 2)
    wait_quiet(list(info.pids.values()))
    names = [f"signer-{p}" for p in signers] + ["coordinator"]
    trigger = Signer(info, key_id)
    try:
        trigger.sign()  # reserves for the first set (or presigns it on the spot) and schedules its refill
    finally:
        trigger.close()
    after = time.time()
    ticks = {name: cpu_ticks([info.pids[name]]) for name in names}
    deadline = time.monotonic() + 120 * (count + 1)
    while len(rows := set_rows(db, key_id, signers, after)) < count + 1:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the refill made {len(rows)} of {count + 1} presignatures for {signers}")
        time.sleep(0.05)
    tick_s = 1 / os.sysconf("SC_CLK_TCK")
    # Sessions in the window: the `count + 1` rows, the first begun at most one session before `after`.
    cpu = {name: (cpu_ticks([info.pids[name]]) - ticks[name]) * tick_s / (count + 1) for name in names}
    rows = rows[: count + 1]
    gaps = [(b - a) * 1000 for a, b in itertools.pairwise(rows)]
    set_pool(root, 0)  # the refill stops (it may have queued other sets meanwhile)
    return {
        "signers": list(signers),
        "presignatures": count,
        "wall_s": rows[-1] - rows[0],
        "per_s": count / (rows[-1] - rows[0]),
        "gap": percentiles(gaps),
        "cpu_s_per_presignature_by_process": cpu,
    }


def presign_figures(root: Path, key_id: str, threshold: int, level: str, count: int) -> dict[str, Any]:
    """The service's rate for one set, the bound measured now, and their ratio (module docstring)."""
    say(f"presigning: {count} back to back for one {threshold}-party set through the coordinator's refill")
    rate = service_rate(root, key_id, threshold, count)
    say(f"  {rate['per_s']:.3f} presignatures/s")
    say(f"the modexp bound: keygen, aux info and one counted presign of {threshold} parties in this process")
    bound = set_bound(level, threshold)
    cores = os.cpu_count() or 1
    bound_per_s = 1 / (bound["bound_cpu_s_per_party"] * max(1.0, threshold / cores))
    say(f"  bound {bound_per_s:.3f} presignatures/s ({bound['bound_cpu_s_per_party']:.3f} s CPU per party)")
    party_cpu = statistics.fmean(v for k, v in rate["cpu_s_per_presignature_by_process"].items() if k != "coordinator")
    return {
        **rate,
        "cores": cores,
        **bound,
        "bound_per_s": bound_per_s,
        "ratio": rate["per_s"] / bound_per_s,
        # ratio ~ exponentiation share of a party's CPU x share of the wall time a party was on a core
        "modexp_share_of_party_cpu": bound["bound_cpu_s_per_party"] / party_cpu,
        "party_busy_share": party_cpu * rate["per_s"],
    }
