"""The Prometheus endpoint of a signer and of the coordinator: what a scrape shows, read from the
node and the service at scrape time; a busy metrics port refuses the start like a busy gRPC port."""

from __future__ import annotations

import dataclasses
import urllib.request
from dataclasses import dataclass, field

import pytest

from coordinator.audit.scrub import ScrubState
from coordinator.cluster import free_port
from coordinator.instruments import Instruments
from coordinator.metrics import CoordinatorCollector
from coordinator.pool_sizing import PoolPolicy, PoolSizing
from coordinator.request_states import PENDING_APPROVAL, TIME_LOCKED
from coordinator.signer_health import Fault
from coordinator.store import BalanceRecord
from signer.node.metrics import SignerCollector, serve_metrics, start_metrics
from signer.node.startup import EXIT_REFUSED
from signer.policy import FreezeState


class Refusals:
    def by_reason(self) -> dict[str, int]:
        return {"frozen": 2, "fee_exceeded": 1}


@dataclass
class NodeGovernance:
    refusals: Refusals = field(default_factory=Refusals)


class Node:
    party = 2
    governance = NodeGovernance()

    def key_ids(self) -> list[str]:
        return ["k1", "k2"]

    def presignature_ids(self, key_id: str) -> list[bytes]:
        return [b"a", b"b", b"c"] if key_id == "k1" else []


@dataclass
class Key:
    threshold: int


@dataclass
class Health:
    def faults(self) -> dict[int, Fault]:
        return {3: Fault(2, "store_failed", 0.0)}


class Requests:
    def now(self) -> float:
        return 1000.0

    def open_request_stats(self) -> dict[str, tuple[int, float]]:
        return {PENDING_APPROVAL: (3, 400.0)}

    def balances(self) -> list[BalanceRecord]:
        return [
            BalanceRecord("eip155:1", "0xhot", "ETH", 12 * 10**18, 4, 940.0, "backend-1", "", 0, 0.0),
            BalanceRecord(REGTEST, "bcrt1qhot", "BTC", 3_000_000, 0, 990.0, "backend-1", "", 0, 0.0),
        ]


class Scrub:
    state = ScrubState(False, 6, 1, 7, "hash_mismatch")


class Sweeps:
    def caps(self) -> dict[tuple[str, str, str], int]:
        return {("eip155:1", "0xhot", "ETH"): 10**19}


REGTEST = "bip122:0f9188f13cb7b2c71f2a335e3a4fc328"


class BtcSweeps:
    def caps(self) -> dict[tuple[str, str, str], int]:
        return {(REGTEST, "bcrt1qhot", "BTC"): 2_000_000}


class Governance:
    def freeze_state(self) -> FreezeState:
        lifted = FreezeState().trip("k9", "breaker:old", 10)
        lifted = FreezeState(tuple((s, dataclasses.replace(v, frozen=False)) for s, v in lifted.scopes))
        return FreezeState((*FreezeState().trip("k1", "breaker:outflow-eth", 100).scopes, *lifted.scopes))


def _sizing() -> PoolSizing:
    """Two sets of k1 that signed: {1, 2} at m/0/7 ten times within a second, {2, 3} at m once."""
    now = [100.0]
    sizing = PoolSizing(PoolPolicy(floor=2, cap=8, window=10.0), lambda: now[0])
    sizing.presigned("k1", (1, 2), 1.5)
    for _ in range(10):
        sizing.signed(("k1", (1, 2), (0, 7)))
        now[0] += 0.1
    sizing.signed(("k1", (2, 3), ()))
    return sizing


@dataclass
class Pool:
    sizing: PoolSizing = field(default_factory=_sizing)


@dataclass
class Service:
    signers: dict[int, object] = field(default_factory=lambda: {1: None, 2: None, 3: None})
    health: Health = field(default_factory=Health)
    store: Requests = field(default_factory=Requests)
    governance: Governance = field(default_factory=Governance)
    sweeps: Sweeps = field(default_factory=Sweeps)
    btc_sweeps: BtcSweeps = field(default_factory=BtcSweeps)
    audit_scrub: Scrub = field(default_factory=Scrub)
    instruments: Instruments = field(default_factory=Instruments)
    pool: Pool = field(default_factory=Pool)

    def live_signers(self, parties: list[int]) -> list[int]:
        return [1, 2]

    def list_keys(self) -> list[Key]:
        return [Key(2), Key(2), Key(3)]


@dataclass
class Ready:
    ready: bool | None = False


def _scrape(port: int) -> list[str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        return [line for line in reply.read().decode().splitlines() if line.startswith("tss_")]


def test_a_signer_exposes_store_health_keys_and_presignatures() -> None:
    port = free_port()
    errors = [""]
    stop = serve_metrics(f"127.0.0.1:{port}", SignerCollector(Node(), lambda: errors[0]))
    try:
        lines = _scrape(port)
        assert 'tss_signer_store_healthy{party="2"} 1.0' in lines
        assert 'tss_signer_keys{party="2"} 2.0' in lines
        assert 'tss_signer_presignatures{key_id="k1",party="2"} 3.0' in lines
        assert 'tss_signer_presignatures{key_id="k2",party="2"} 0.0' in lines
        assert 'tss_signer_policy_refusals_total{party="2",reason="frozen"} 2.0' in lines
        assert 'tss_signer_policy_refusals_total{party="2",reason="fee_exceeded"} 1.0' in lines
        errors[0] = "record 'identity' does not decrypt"
        assert 'tss_signer_store_healthy{party="2"} 0.0' in _scrape(port)
    finally:
        stop()


def test_the_coordinator_exposes_readiness_liveness_faults_and_keys() -> None:
    port = free_port()
    stop = serve_metrics(f"127.0.0.1:{port}", CoordinatorCollector(Service(), Ready()))
    try:
        lines = _scrape(port)
    finally:
        stop()
    assert "tss_coordinator_ready 0.0" in lines
    assert [line for line in lines if line.startswith("tss_signer_live")] == [
        'tss_signer_live{party="1"} 1.0',
        'tss_signer_live{party="2"} 1.0',
        'tss_signer_live{party="3"} 0.0',
    ]
    assert 'tss_signer_degraded_faults{party="3"} 2.0' in lines
    assert 'tss_coordinator_keys{threshold="2"} 2.0' in lines and 'tss_coordinator_keys{threshold="3"} 1.0' in lines
    assert 'tss_coordinator_requests_open{state="pending_approval"} 3.0' in lines
    assert f'tss_coordinator_requests_open{{state="{TIME_LOCKED}"}} 0.0' in lines
    assert 'tss_coordinator_oldest_open_request_seconds{state="pending_approval"} 600.0' in lines
    assert f'tss_coordinator_oldest_open_request_seconds{{state="{TIME_LOCKED}"}} 0.0' in lines
    # a tripped breaker is a frozen scope and a tripped rule; a lifted one is neither
    assert [line for line in lines if line.startswith(("tss_coordinator_frozen", "tss_coordinator_breaker"))] == [
        'tss_coordinator_frozen{by="breaker:outflow-eth",scope="k1"} 1.0',
        'tss_coordinator_breaker_tripped{rule="outflow-eth",scope="k1"} 1.0',
    ]
    where = 'address="0xhot",asset="ETH",network="eip155:1"'
    assert f"tss_coordinator_hot_balance{{{where}}} 1.2e+19" in lines
    assert f"tss_coordinator_hot_balance_cap{{{where}}} 1e+19" in lines
    assert f"tss_coordinator_hot_balance_report_age_seconds{{{where}}} 60.0" in lines
    btc_where = f'address="bcrt1qhot",asset="BTC",network="{REGTEST}"'  # a Bitcoin wallet's, in satoshis
    assert f"tss_coordinator_hot_balance{{{btc_where}}} 3e+06" in lines
    assert f"tss_coordinator_hot_balance_cap{{{btc_where}}} 2e+06" in lines
    assert "tss_coordinator_audit_chain_ok 0.0" in lines and "tss_coordinator_audit_verified_seq 6.0" in lines
    # ten signatures in a second over a 10 s window: ~0.95/s; x 1.5 s presign x headroom 4 = 6 ready
    pool = [line for line in lines if line.startswith("tss_coordinator_presign")]
    assert pool[:2] == [
        'tss_coordinator_presign_pool_target{key_id="k1",path="m/0/7",signers="1,2"} 6.0',
        'tss_coordinator_presign_pool_target{key_id="k1",path="m",signers="2,3"} 2.0',
    ]
    rate = float(pool[2].rsplit(" ", 1)[1])
    assert pool[2].startswith('tss_coordinator_presign_pool_signing_rate{key_id="k1",path="m/0/7",signers="1,2"}')
    assert 0.9 < rate < 1.0
    assert pool[4:] == [
        'tss_coordinator_presign_seconds{key_id="k1",signers="1,2"} 1.5',
    ]


def test_a_busy_metrics_port_refuses_the_start(capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    stop = serve_metrics(f"127.0.0.1:{port}", SignerCollector(Node(), lambda: ""))
    try:
        with pytest.raises(SystemExit) as exit_info:
            start_metrics("signer-2", f"127.0.0.1:{port}", SignerCollector(Node(), lambda: ""))
    finally:
        stop()
    assert exit_info.value.code == EXIT_REFUSED
    err = capsys.readouterr().err
    assert err.startswith(f"signer-2: refusing to start: metrics_listen 127.0.0.1:{port}: ") and err.count("\n") == 1
    assert start_metrics("signer-2", "", SignerCollector(Node(), lambda: "")) is not None
