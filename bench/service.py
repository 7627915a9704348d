"""Service benchmark: does the cost of a request grow with the history behind it?

    python -m bench.service [--json] [--quick] [--history 0,1000,10000] [--samples N] [--root DIR]

Starts a local 2-of-3 cluster (coordinator/cluster.py; level 112 with --quick, the default level
otherwise), creates a key, and measures online signing latency through the coordinator's gRPC
API with a warm presignature pool (each request waits until the pool is full again, so
no presigning competes with it) at each history size: 0, 1,000 and 10,000 prior
released signatures. The history is seeded through the stores' own write paths with the
processes stopped: each signer's release record (`NodeGovernance.record`, the path a release
takes) and the coordinator's request rows (`Store.create_request` + `transition` to signed).
Seeding skips the disk's fsync waits (the bytes go down the same code path; durability of seed
data is not what is measured).

Then, on the same cluster, the load figures (bench/service_load.py): throughput with 1, 8 and 32
concurrent clients on a warm pool, latency while the pool refills against idle (their ratio),
the empty-pool rate, and the memory of every process. `bench.service_breakdown` times the steps
of one request.

Also an in-process micro-benchmark of the two history-dependent steps at 0 and 10,000 prior
releases: a signer recording a release, and the coordinator's policy decision (its ledger plus
`evaluate`). Progress goes to stderr; the results to stdout (a table, or JSON with --json) and
to bench/results/service.json. docs/performance.md explains the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import secrets
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import structlog

from bench.service_common import TO, bench_policy, eth_tx, percentiles, say, wait_quiet, wait_ready
from bench.service_load import run_load
from coordinator import cluster
from coordinator import store as st
from coordinator.client import CoordinatorClient
from signer.node.governance import Authorization, NodeGovernance
from signer.node.state_version import StateVersions
from signer.node.store import EncryptedStore, load_kek
from signer.policy import Intent, Ledger, demo_policy, evaluate, public_key_bytes

RESULTS = Path(__file__).resolve().parent / "results" / "service.json"
SEPOLIA = 11155111
SEED_INITIATOR = "bench-history"
SEED_NONCES = 10**9
"""The seeded history's nonces start here: a nonce is released once per (chain, key, path)."""


def seed_intent(key_id: str, n: int, now: int) -> Intent:
    """A tiny released transfer (1 wei, 21,000 gas at 1 wei): history that never nears a limit."""
    return Intent(
        chain=f"eip155:{SEPOLIA}",
        asset="ETH",
        amount=1,
        destination=f"0x{n % 97 + 1:040x}",
        key_id=key_id,
        path=(),
        request_id=f"seed-{n:08d}",
        policy_hash=bytes(32),
        expires_at=now + 3600,
        nonce=SEED_NONCES + n,  # apart from the benchmark's own transfers (each signer indexes nonces)
        gas_limit=21000,
        max_fee_per_gas=1,
        max_priority_fee_per_gas=1,
        data=b"",
        tx_digest=n.to_bytes(32, "big"),
    )


@contextlib.contextmanager
def no_sync_waits() -> Iterator[None]:
    """Seed without waiting for the disk after every record; one `sync` at the end."""
    saved = os.fsync, getattr(os, "fdatasync", os.fsync)
    os.fsync = os.fdatasync = lambda fd: None  # type: ignore[assignment]
    try:
        yield
    finally:
        os.fsync, os.fdatasync = saved
        os.sync()


def _governance(store: EncryptedStore, trusted: dict[str, str]) -> NodeGovernance:
    """A node's governance wired to its state versions as `SignerNode` does (either layout of the ledger)."""
    gov = NodeGovernance(store, trusted)
    if hasattr(gov, "counter"):
        rel = gov.releases
        gov.counter = StateVersions(store, journal_seq=rel.last_seq, journal_peer_seen=rel.peer_seen)
    else:  # the code before the release journal
        gov.on_release_recorded = StateVersions(store).release_recorded  # type: ignore[attr-defined]
    return gov


def _close(gov: NodeGovernance) -> None:
    for t in threading.enumerate():
        if t.name == "ledger-compaction":
            t.join()
    if hasattr(gov, "releases"):
        gov.releases.close()


def _authorization(intent: Intent) -> Authorization:
    return Authorization(intent, None, intent.tx_digest, SEED_INITIATOR, False)  # type: ignore[arg-type]


def seed_signers(root: Path, key_id: str, start: int, count: int) -> None:
    """`count` releases into every signer's ledger through `NodeGovernance.record` (processes stopped)."""
    now = int(time.time())
    for sdir in sorted(root.glob("signer-*")):
        trusted = json.loads((sdir / "node.json").read_text())["trusted_admins"]
        store = EncryptedStore(sdir / "store", load_kek(sdir / "kek"))
        gov = _governance(store, trusted)
        with no_sync_waits():
            for n in range(start, start + count):
                gov.record(_authorization(seed_intent(key_id, n, now)), now)
        _close(gov)


def seed_coordinator(db: Path, key_id: str, start: int, count: int) -> None:
    """`count` signed requests in the coordinator's database through the store's API."""
    store = st.Store(db)
    now = int(time.time())
    for n in range(start, start + count):
        i = seed_intent(key_id, n, now)
        rid = f"seed-{n:08d}"
        store.create_request(
            request_id=rid,
            key_id=key_id,
            idempotency_key=rid,
            body_hash=rid,
            tx={"seed": n},
            path=(),
            initiator=SEED_INITIATOR,
            intent=i.to_bytes(),
        )
        for state in (st.APPROVED, st.SIGNING, st.SIGNED):
            store.transition(rid, state)
    store.close()


# --- the in-process micro-benchmark -------------------------------------------------------------------
def _timed(fn: Callable[[int], object], first: int, n: int) -> float:
    """Median milliseconds of `fn(i)` for i in first..first+n."""
    times = []
    for i in range(first, first + n):
        t0 = time.perf_counter()
        fn(i)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def micro_signer(history: int, samples: int, work: Path) -> dict[str, float]:
    """Median ms for a signer to record a release (its journal write, fsync'd) at 0 and `history`."""
    store = EncryptedStore(work / "signer-store", secrets.token_bytes(32))
    gov = _governance(store, {})
    now = int(time.time())

    def record(n: int) -> None:
        gov.record(_authorization(seed_intent("k", n, now)), now)

    at_zero = _timed(record, 0, samples)
    with no_sync_waits():
        for n in range(samples, history):
            record(n)
    _close(gov)
    gov = _governance(store, {})
    at_history = _timed(record, history, samples)
    _close(gov)
    return {"at_0_ms": at_zero, f"at_{history}_ms": at_history, "ratio": at_history / at_zero}


def _coordinator_ledger(store: st.Store, now: int) -> Any:
    if hasattr(store, "ledger_view"):
        return store.ledger_view()
    ledger = Ledger()  # the code before the running sums: rebuilt from every signed request
    for data, at in store.signed_intents():  # type: ignore[attr-defined]
        intent = Intent.from_bytes(data)
        if not ledger.has_spent(intent.request_id):
            ledger.record_spend(intent, int(at))
    for request_id, initiator, at in store.submissions_since(now - 86400):  # type: ignore[attr-defined]
        ledger.record_request(initiator, request_id, int(at))
    return ledger


def micro_coordinator(history: int, samples: int, work: Path) -> dict[str, float]:
    """Median ms of the coordinator's policy decision (ledger + evaluate) at 0 and `history`."""
    store = st.Store(work / "coordinator.db")
    store.add_key(st.KeyRecord("k", "bench", 2, (1, 2, 3), "112", b"\x02" + b"\x11" * 32, b"\x22" * 32, 0, b"", 0.0))
    now = int(time.time())
    people = {f"o{i}": public_key_bytes_of(i) for i in range(3)}
    registry, policy = demo_policy(people, {"a0": people["o0"]}, cold=(), now=now - 86400)
    request = dataclasses.replace(
        seed_intent("k", 10**7, now), amount=10**15, max_fee_per_gas=10**9, destination=TO, policy_hash=policy.hash()
    )

    def decide(n: int) -> None:
        decision = evaluate(policy, registry, request, {}, _coordinator_ledger(store, now), now, "backend")
        if decision.action != "allow":
            raise RuntimeError(f"bench request not allowed: {decision.reason}")

    at_zero = _timed(decide, 0, samples)
    seed_coordinator(store.path, "k", 0, history)
    at_history = _timed(decide, 0, samples)
    store.close()
    return {"at_0_ms": at_zero, f"at_{history}_ms": at_history, "ratio": at_history / at_zero}


def public_key_bytes_of(i: int) -> bytes:
    """A fixed Ed25519 public key per index (the micro-benchmark signs nothing)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return public_key_bytes(Ed25519PrivateKey.from_private_bytes(bytes([i + 1]) * 32))


# --- the service --------------------------------------------------------------------------------------
def online_latency(info: cluster.ClusterInfo, key_id: str, samples: int, tag: str) -> dict[str, float]:
    """Latency of `sign_eth` through the coordinator, each request with a presignature ready and
    every process quiet (no presigning competes with it)."""
    db = info.root / "coordinator" / "coordinator.db"
    times: list[float] = []
    with CoordinatorClient(info.coordinator, info.client_tls("backend")) as backend:
        for n in range(samples + 3):  # the first three warm the channel and are not counted
            if n:  # a restarted coordinator presigns the first on the spot; a signature schedules the refill
                wait_ready(db, key_id, 1)
                wait_quiet(list(info.pids.values()))
            t0 = time.perf_counter()
            req = backend.sign_eth(key_id, eth_tx(n), f"bench-{tag}-{n}-{secrets.token_hex(4)}", ())
            elapsed = (time.perf_counter() - t0) * 1000
            if req.state != "signed":
                raise RuntimeError(f"request {req.request_id} is {req.state}: {req.error or req.policy_reason}")
            if n >= 3:
                times.append(elapsed)
    return percentiles(times)


def run_service(root: Path, level: str, history: list[int], samples: int, *, load: bool, quick: bool) -> dict[str, Any]:
    """Start the cluster, create a key, measure online latency at each history size, then the load figures."""
    say(f"starting a 2-of-3 cluster at level {level} in {root}")
    info = cluster.up(root, 3, 2, level, progress=say, adjust_policy=bench_policy)
    try:
        with CoordinatorClient(info.coordinator, info.client_tls("operator")) as op:
            t0 = time.perf_counter()
            key = op.create_key("bench", 2, level)
            key_s = time.perf_counter() - t0
        say(f"key {key.key_id} created in {key_s:.1f} s")
        out: dict[str, Any] = {"key_creation_s": key_s, "online": {}}
        seeded = 0
        for h in history:
            if h > seeded:
                say(f"stopping the cluster to seed {h - seeded} more releases (history {h})")
                cluster.down(root)
                seed_signers(root, key.key_id, seeded, h - seeded)
                seed_coordinator(root / "coordinator" / "coordinator.db", key.key_id, seeded, h - seeded)
                seeded = h
                info = cluster.up(root, 3, 2, level, progress=say, adjust_policy=bench_policy)
            say(f"measuring {samples} signatures at {h} prior releases")
            out["online"][str(h)] = online_latency(info, key.key_id, samples, str(h))
            say(f"  p50 {out['online'][str(h)]['p50_ms']:.2f} ms")
        if load:
            out["load"] = run_load(root, key.key_id, quick=quick)
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.service", description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ap.add_argument("--quick", action="store_true", help="level 112 and fewer samples (a smoke run)")
    ap.add_argument("--history", default="0,1000,10000", help="prior releases to measure at (ascending)")
    ap.add_argument("--samples", type=int, default=0, help="signatures per history size (default 30, quick 15)")
    ap.add_argument("--micro-history", type=int, default=10000, help="history of the micro-benchmark")
    ap.add_argument("--no-service", action="store_true", help="the in-process micro-benchmark only")
    ap.add_argument("--no-load", action="store_true", help="skip throughput, refill-vs-idle, empty pool and RSS")
    ap.add_argument("--root", type=Path, help="cluster directory (default: a fresh temporary one)")
    ap.add_argument("--out", type=Path, default=RESULTS, help="where the JSON result is written (default: %(default)s)")
    args = ap.parse_args(argv)
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))  # stdout is the result
    level = "112" if args.quick else "128"
    samples = args.samples or (15 if args.quick else 30)
    history = sorted(int(h) for h in args.history.split(","))
    result: dict[str, Any] = {"level": level, "threshold": 2, "parties": 3, "quick": args.quick}
    with tempfile.TemporaryDirectory(prefix="bench-service-") as tmp:
        work = Path(tmp)
        say(f"micro-benchmark: recording a release and a policy decision at 0 and {args.micro_history}")
        micro_signer_dir, micro_coord_dir = work / "micro-signer", work / "micro-coordinator"
        micro_signer_dir.mkdir()
        micro_coord_dir.mkdir()
        result["micro"] = {
            "signer_record_release": micro_signer(args.micro_history, 200, micro_signer_dir),
            "coordinator_policy_decision": micro_coordinator(args.micro_history, 200, micro_coord_dir),
        }
        if not args.no_service:
            root = args.root or work / "cluster"
            result.update(run_service(root, level, history, samples, load=not args.no_load, quick=args.quick))
            online = result["online"]
            result["slope_ms_per_1000"] = {f: slope_per_1000(online, f) for f in ("p50_ms", "p95_ms", "p99_ms")}
            first, last = online[str(history[0])], online[str(history[-1])]
            result["ratio_last_over_first"] = {f: last[f] / first[f] for f in ("p50_ms", "p95_ms", "p99_ms")}
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
    for h, p in result.get("online", {}).items():
        print(f"online @ {h:>6} prior  p50 {p['p50_ms']:7.2f} ms  p95 {p['p95_ms']:7.2f} ms  p99 {p['p99_ms']:7.2f} ms")
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
    if "slope_ms_per_1000" in result:
        print(f"slope per 1,000 prior (p50): {result['slope_ms_per_1000']['p50_ms']:+.3f} ms")
        print(f"latency at most history / at least (p50): {result['ratio_last_over_first']['p50_ms']:.3f}")


if __name__ == "__main__":
    sys.exit(main())
