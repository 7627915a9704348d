"""The histograms and counters as Prometheus scrapes them from real processes (issue 14): after a
real signature, a real refusal by the coordinator's policy and by the signers' own (a freeze the
coordinator never heard of), and a real blamed abort (a compromised signer-3 process).

The tests run in file order on one cluster with `metrics_listen` set on every process.
"""

from __future__ import annotations

import itertools
import json
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families
from tsscustody.v1 import common_pb2, coordinator_pb2

from coordinator import cluster
from coordinator.client import CoordinatorClient

from .support import GWEI, eth_tx
from .test_blame_evidence import _become_evil, _create_key_aborts

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
RUNNING: dict[str, int] = {}
_nonces = itertools.count(700)


@pytest.fixture(scope="module")
def live_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[cluster.ClusterInfo]:
    """A cluster whose coordinator and signers all serve metrics (the `tssctl` fixture uses it too)."""
    root = tmp_path_factory.mktemp("metrics-cluster")
    cluster.up(root, n=3, threshold=2, level="112")
    try:
        ports: dict[str, str] = {}
        for name, config in [
            ("coordinator", root / "coordinator" / "coordinator.json"),
            *((f"signer-{i}", root / f"signer-{i}" / "node.json") for i in (1, 2, 3)),
        ]:
            ports[name] = f"127.0.0.1:{cluster.free_port()}"
            config.write_text(json.dumps({**json.loads(config.read_text()), "metrics_listen": ports[name]}))
            cluster.restart(root, name)
        (root / "metrics.json").write_text(json.dumps(ports))
        yield cluster.ClusterInfo.load(root)
    finally:
        if "signer-3" in RUNNING:
            cluster.stop_process(RUNNING.pop("signer-3"))
        cluster.down(root)


@pytest.fixture(scope="module")
def key(live_cluster: cluster.ClusterInfo) -> coordinator_pb2.Key:
    with CoordinatorClient(live_cluster.coordinator, live_cluster.client_tls("operator")) as op:
        return op.create_key("metrics-hot", 2, "112")


def scrape(info: cluster.ClusterInfo, name: str) -> Samples:
    address = json.loads((info.root / "metrics.json").read_text())[name]
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name.startswith("tss_")
    }


def sample(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def named(samples: Samples, name: str) -> dict[frozenset[tuple[str, str]], float]:
    return {labels: v for (n, labels), v in samples.items() if n == name and v}


def _submit(info: cluster.ClusterInfo, key: coordinator_pb2.Key, tx: common_pb2.EthTransaction) -> Any:
    """Submit from the backend; the request as the coordinator holds it afterwards."""
    with CoordinatorClient(info.coordinator, info.client_tls("backend"), timeout=300) as c:
        try:
            return c.sign_eth(key.key_id, tx, str(uuid.uuid4()))
        except grpc.RpcError:
            return next(r for r in c.list_requests(key.key_id) if r.eth.nonce == tx.nonce)


def _automatic() -> common_pb2.EthTransaction:
    return eth_tx(next(_nonces), chain_id=1, max_fee=40 * GWEI, priority_fee=2 * GWEI)


def test_a_signature_is_timed_and_counted(live_cluster: cluster.ClusterInfo, key: coordinator_pb2.Key) -> None:
    signed = _submit(live_cluster, key, _automatic())
    assert signed.state == "signed", signed.error
    coordinator = scrape(live_cluster, "coordinator")
    assert sample(coordinator, "tss_coordinator_requests_submitted_total", kind="withdrawal") == 1.0
    assert sample(coordinator, "tss_coordinator_signing_seconds_count") == 1.0
    assert 0 < sample(coordinator, "tss_coordinator_signing_seconds_sum") < 30
    assert sample(coordinator, "tss_coordinator_request_seconds_count", kind="withdrawal", state="signed") == 1.0
    # The pool's sizing from coordinator.json (defaults: floor 2, 60 s window): one set signed once.
    targets = named(coordinator, "tss_coordinator_presign_pool_target")
    assert list(targets.values()) == [2.0] and dict(next(iter(targets)))["key_id"] == key.key_id, targets
    assert 0 < sum(named(coordinator, "tss_coordinator_presign_pool_signing_rate").values()) <= 1 / 60
    presign_seconds = named(coordinator, "tss_coordinator_presign_seconds")
    assert presign_seconds and all(0 < v < 60 for v in presign_seconds.values()), presign_seconds
    # The two signers of the presignature each released one partial signature, and timed it.
    released = {p: sample(scrape(live_cluster, f"signer-{p}"), "tss_signer_partial_sign_seconds_count", party=str(p))
                for p in (1, 2, 3)}  # fmt: skip
    assert sorted(released.values()) == [0.0, 1.0, 1.0], released
    for p in (p for p, n in released.items() if n):
        signer = scrape(live_cluster, f"signer-{p}")
        assert sample(signer, "tss_signer_partial_sign_seconds_bucket", party=str(p), le="+Inf") == 1.0
        assert named(signer, "tss_signer_policy_refusals_total") == {}


def test_a_coordinator_refusal_is_counted_by_reason(
    live_cluster: cluster.ClusterInfo, key: coordinator_pb2.Key
) -> None:
    tip = eth_tx(next(_nonces), chain_id=1, max_fee=10**18, priority_fee=10**18)  # a 21000 ETH fee
    blocked = _submit(live_cluster, key, tip)
    assert (blocked.state, blocked.policy_reason) == ("blocked", "fee_exceeded")
    coordinator = scrape(live_cluster, "coordinator")
    assert named(coordinator, "tss_coordinator_policy_refusals_total") == {frozenset({("reason", "fee_exceeded")}): 1.0}
    assert sample(coordinator, "tss_coordinator_request_seconds_count", kind="withdrawal", state="blocked") == 1.0
    assert sample(coordinator, "tss_coordinator_requests_submitted_total", kind="withdrawal") == 2.0


def test_a_blamed_abort_is_counted_against_the_compromised_signer(live_cluster: cluster.ClusterInfo) -> None:
    assert named(scrape(live_cluster, "coordinator"), "tss_coordinator_protocol_aborts_total") == {}
    _become_evil(live_cluster, "badsig", RUNNING)  # signer-3's keygen/r2 envelopes carry a bad signature
    assert _create_key_aborts(live_cluster, "metrics-badsig") == [(3, "keygen/r2", "envelope_signature")]
    assert named(scrape(live_cluster, "coordinator"), "tss_coordinator_protocol_aborts_total") == {
        frozenset({("party", "3"), ("phase", "keygen")}): 1.0
    }
    cluster.stop_process(RUNNING.pop("signer-3"))
    cluster.restart_signer(live_cluster.root, 3)  # honest again


def test_signer_refusals_are_counted_by_reason(
    live_cluster: cluster.ClusterInfo, key: coordinator_pb2.Key, tssctl: Any
) -> None:
    # A freeze delivered to the signers only: the coordinator releases, every signer asked refuses.
    rc, _, err = tssctl("freeze", "--officer", "officer-1", "--signers-only")
    assert rc == 0, err
    failed = _submit(live_cluster, key, _automatic())
    assert failed.state == "failed" and failed.error.count("refused: frozen") == 2, failed.error
    refused = {p: named(scrape(live_cluster, f"signer-{p}"), "tss_signer_policy_refusals_total") for p in (1, 2, 3)}
    asked = [p for p, counts in refused.items() if counts]
    assert len(asked) == 2, refused
    for p in asked:
        assert refused[p] == {frozenset({("party", str(p)), ("reason", "frozen")}): 1.0}
    coordinator = scrape(live_cluster, "coordinator")
    # The coordinator's policy refused nothing more: the signers did (the request failed, not blocked).
    assert sum(named(coordinator, "tss_coordinator_policy_refusals_total").values()) == 1.0
    assert sample(coordinator, "tss_coordinator_request_seconds_count", kind="withdrawal", state="failed") == 1.0
