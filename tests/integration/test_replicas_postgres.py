"""Two coordinator replicas on one PostgreSQL database, real processes (issue 12, "Scale out on
PostgreSQL"): 8 backend clients split across them, kill -9 of one replica mid-run. Every client's
transfer ends signed exactly once (a client of the dead replica resubmits to the live one: the
same idempotency key gives back the same request, settled by the live replica once the dead one's
lease ran out), no nonce is signed twice, each signature recovers to the key's address, and
`tssctl audit verify` passes over the one audit chain both replicas wrote.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import threading
import time
from collections.abc import Iterator

import grpc
import psycopg
import pytest
from eth_account import Account

from coordinator import cluster, cluster_replicas
from coordinator.cli import main
from coordinator.client import CoordinatorClient
from coordinator.cluster_replicas import ReplicatedCluster
from signer.policy import PolicyDocument
from tests.postgres import PgServer

from .support import eth_tx

CLIENTS = 8
TRANSFERS = 2  # per client
LEASE = 4.0  # seconds: the dead replica's work is failed by the live one after this


def _no_client_rate(policy: PolicyDocument) -> PolicyDocument:
    """Eight clients signing back to back would hit the demo policy's per-client rate."""
    return dataclasses.replace(policy, limits=tuple(x for x in policy.limits if x.scope != "client_rate"))


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory, postgres_server: PgServer) -> Iterator[ReplicatedCluster]:
    root = tmp_path_factory.mktemp("replicas")
    rc = cluster_replicas.up(
        root, postgres_server.new_database(), ("a", "b"), lease=LEASE, adjust_policy=_no_client_rate
    )
    try:
        yield rc
    finally:
        cluster.down(rc.info.root)


def _client(r: ReplicatedCluster, replica: str) -> CoordinatorClient:
    return CoordinatorClient(r.addresses[replica], r.info.client_tls("backend"), timeout=120)


def test_kill_9_of_one_replica_loses_nothing_and_signs_nothing_twice(replicas: ReplicatedCluster) -> None:
    with CoordinatorClient(replicas.addresses["a"], replicas.info.client_tls("operator")) as op:
        key = op.create_key("replicas-hot", 2, "112")
    signed: dict[int, list[tuple[str, bytes]]] = {}  # nonce -> (request id, raw tx) the clients got
    errors: list[BaseException] = []
    lock = threading.Lock()
    done_before_kill, killed = threading.Event(), threading.Event()
    through_b = [0]

    def transfer(client: int, n: int) -> None:
        nonce = client * 100 + n
        replica = "a" if client % 2 == 0 else "b"
        idem = f"c{client}-{n}"
        for attempt in range(6):
            try:
                with _client(replicas, replica) as be:
                    req = be.sign_eth(key.key_id, eth_tx(nonce), idem)
                if req.state == "signed":
                    with lock:
                        signed.setdefault(nonce, []).append((req.request_id, req.raw_tx))
                        through_b[0] += replica == "b"
                        if through_b[0] >= 2:  # b is busy signing: kill it now
                            done_before_kill.set()
                    return
                raise AssertionError(f"request {req.request_id} is {req.state}")
            except grpc.RpcError as exc:
                if replica == "b" and killed.is_set():
                    replica = "a"  # its replica died (whatever the status said): same idempotency key on a
                elif exc.code() == grpc.StatusCode.INTERNAL and "in flight" in (exc.details() or ""):
                    idem = f"c{client}-{n}-retry{attempt}"  # failed by the recovery: resubmit anew
                else:
                    raise
        raise AssertionError(f"client {client} transfer {n} never signed")

    def run(client: int) -> None:
        try:
            for n in range(TRANSFERS):
                transfer(client, n)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(c,)) for c in range(CLIENTS)]
    for t in threads:
        t.start()
    assert done_before_kill.wait(120)
    killed.set()  # before the kill: a client that sees b fail knows why
    os.kill(replicas.pid("b"), signal.SIGKILL)
    killed_at = time.monotonic()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(signed) == sorted(c * 100 + n for c in range(CLIENTS) for n in range(TRANSFERS))
    with psycopg.connect(replicas.database) as conn:
        rows = conn.execute("SELECT tx, raw_tx, owner FROM requests WHERE state = 'signed'").fetchall()
    by_nonce: dict[int, int] = {}
    for tx, raw, _owner in rows:
        nonce = int(json.loads(tx)["nonce"])
        by_nonce[nonce] = by_nonce.get(nonce, 0) + 1
        assert Account.recover_transaction(bytes(raw)) == key.eth_address
    assert by_nonce == {n: 1 for n in signed}  # every transfer signed, none twice
    assert {o for *_, o in rows} == {"a", "b"}  # both replicas signed
    assert time.monotonic() - killed_at < 90
    rc = main(["--json", "audit", "verify", "--dir", str(replicas.info.root)])
    assert rc == 0
