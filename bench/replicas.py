"""Replica benchmark: signing throughput with one and with two coordinator replicas on PostgreSQL.

    python -m bench.replicas [--json] [--clients 8] [--requests 4] [--database URL]

For each replica count (1, then 2) it starts a local 2-of-3 cluster at level 112 whose
coordinators share one fresh PostgreSQL database (coordinator/cluster_replicas.py), creates a
key, then `--clients` backend threads (split round-robin across the replicas) each sign
`--requests` transfers back to back; throughput is signatures per second of wall time from the
first submission to the last signature, presigning included (the pool starts empty). Without
`--database` a throwaway PostgreSQL server is started (tests/postgres.py: Debian's postgresql
must be installed; `./dev` does it). Progress goes to stderr; the result to stdout and to
bench/results/replicas.json. On one machine every process shares its cores, and signing is
dominated by the signers' cryptography, so a second replica adds availability far more than
throughput here; spread over hosts the coordinator's share is what a replica divides.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import structlog

from coordinator import cluster, cluster_replicas
from coordinator.client import CoordinatorClient
from signer.policy import PolicyDocument
from tests.integration.support import eth_tx
from tests.postgres import running_server

RESULTS = Path(__file__).parent / "results" / "replicas.json"


def say(msg: str) -> None:
    """Progress, on stderr."""
    print(f"[bench.replicas] {msg}", file=sys.stderr, flush=True)


def no_client_rate(policy: PolicyDocument) -> PolicyDocument:
    """The demo policy without its per-client rate (clients sign back to back)."""
    return dataclasses.replace(policy, limits=tuple(x for x in policy.limits if x.scope != "client_rate"))


@contextmanager
def databases(url: str) -> Iterator[Any]:
    """A factory of fresh databases: on the given server, or on a throwaway one."""
    if url:
        n = iter(range(1_000_000))

        def fresh() -> str:
            name = f"bench_replicas_{int(time.time())}_{next(n)}"
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(f"CREATE DATABASE {name}".encode())
            return url.rsplit("/", 1)[0] + "/" + name

        yield fresh
    else:
        with running_server() as server:
            yield server.new_database


def throughput(rc: cluster_replicas.ReplicatedCluster, clients: int, requests: int) -> dict[str, float]:
    """Sign clients x requests transfers, clients split across the replicas; signatures per second."""
    names = sorted(rc.addresses)
    with CoordinatorClient(rc.addresses[names[0]], rc.info.client_tls("operator")) as op:
        key = op.create_key("bench-replicas", 2, "112")
    errors: list[BaseException] = []

    def run(c: int) -> None:
        try:
            with CoordinatorClient(
                rc.addresses[names[c % len(names)]], rc.info.client_tls("backend"), timeout=300
            ) as be:
                for n in range(requests):
                    req = be.sign_eth(key.key_id, eth_tx(c * 1000 + n), f"bench-{c}-{n}")
                    if req.state != "signed":
                        raise RuntimeError(f"request {req.request_id} is {req.state}")
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(c,)) for c in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    if errors:
        raise errors[0]
    return {"signatures": clients * requests, "wall_s": wall, "per_s": clients * requests / wall}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.replicas", description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--requests", type=int, default=4, help="transfers per client")
    ap.add_argument("--database", default="", help="a PostgreSQL server URL (default: a throwaway one)")
    args = ap.parse_args(argv)
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    result: dict[str, Any] = {"level": "112", "clients": args.clients, "requests_per_client": args.requests}
    with databases(args.database) as fresh, tempfile.TemporaryDirectory(prefix="bench-replicas-") as tmp:
        for names in (("a",), ("a", "b")):
            say(f"{len(names)} replica(s): starting the cluster")
            rc = cluster_replicas.up(Path(tmp) / f"r{len(names)}", fresh(), names, adjust_policy=no_client_rate)
            try:
                result[f"replicas_{len(names)}"] = m = throughput(rc, args.clients, args.requests)
                say(f"{len(names)} replica(s): {m['per_s']:.2f} signatures/s ({m['wall_s']:.1f} s)")
            finally:
                cluster.down(rc.info.root)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for k in ("replicas_1", "replicas_2"):
            print(f"{k}: {result[k]['per_s']:.2f} signatures/s over {result[k]['wall_s']:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
