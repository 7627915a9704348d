"""A degraded signer does not stop signing: the coordinator routes around a signer that fails on
its own side, backs off from it, and tells the operator (issue 11, "found in fault tests").

In-process signers over real encrypted stores: signer 3's share record is corrupted on disk, so
it answers PartialSign and StartSession with FAILED_PRECONDITION `store_failed` while staying up.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from tsscustody.v1 import signer_pb2

from coordinator import store as st
from coordinator.certs import create_ca, issue
from coordinator.service import CoordinatorService
from coordinator.signer_client import (
    GrpcSignerClient,
    LocalSignerClient,
    SessionParams,
    SignerClient,
    SignerInternal,
    SignerRejected,
    SignerUnavailable,
    degraded,
)
from coordinator.signer_health import SignerHealth
from coordinator.signer_state import state_refusals
from coordinator.store import Store
from signer.chains.ethereum import Eip1559Tx
from signer.node import wire
from signer.node.node import SignerNode
from signer.node.tls import TlsFiles

from .governance_fixtures import add_key, install_demo_governance, make_nodes

KEY_ID = "k-failover"


def _tx(nonce: int) -> Eip1559Tx:
    return Eip1559Tx(1, nonce, 2 * 10**9, 40 * 10**9, 21000, "0x000000000000000000000000000000000000dEaD", 10**16)


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[int, SignerNode]]:
    out = make_nodes(tmp_path_factory.mktemp("signers"), KEY_ID)
    yield out
    for n in out.values():
        n.close()


def _service(tmp_path: Path, nodes: dict[int, SignerNode]) -> CoordinatorService:
    store = Store(tmp_path / "coordinator.db")
    add_key(store, KEY_ID)
    clients: dict[int, SignerClient] = {p: LocalSignerClient(n) for p, n in nodes.items()}
    service = CoordinatorService(store, clients, level="112")
    install_demo_governance(service)
    return service


def _presignatures(store: Store) -> list[tuple[str, tuple[int, ...]]]:
    rows = store._conn().execute("SELECT state, signers FROM presignatures").fetchall()
    return [(r["state"], tuple(json.loads(r["signers"]))) for r in rows]


@pytest.mark.slow(20)
def test_a_signer_with_a_corrupt_share_is_routed_around_and_wastes_at_most_one_presignature(
    nodes: dict[int, SignerNode], tmp_path: Path
) -> None:
    service = _service(tmp_path, nodes)
    key = service.store.get_key(KEY_ID)
    service.pool.presign(key, (1, 3), ())  # the only ready presignature: the next request picks {1, 3}
    assert service.live_signers((1, 2, 3)) == [1, 2, 3]  # cached as up: the fault shows only when signing

    share = nodes[3].store.path_of(f"keys/{KEY_ID}/share")
    good = share.read_bytes()
    share.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))  # signer 3 is up, its store is not
    try:
        rows = [service.sign_eth(KEY_ID, f"f-{n}", (), _tx(n)) for n in range(4)]
    finally:
        share.write_bytes(good)

    for row in rows:
        assert row.state == st.SIGNED, row.error
        assert Account.recover_transaction(row.raw_tx) == row.from_address
    # Every signature went through {1, 2}, within the request that met the fault too.
    assert {service.store.get_presignature(r.presignature_id or b"").signers for r in rows} == {(1, 2)}
    # Exactly one presignature of a healthy signer was burned: the {1, 3} one the first attempt used.
    assert [s for state, s in _presignatures(service.store) if state == st.PRESIG_FAILED] == [(1, 3)]
    # Reported: the request's events say why it moved on, and the coordinator's health view.
    attempts = [e.detail for e in service.store.events(rows[0].request_id) if e.detail.startswith("attempt")]
    assert attempts[0] == "attempt 1: signers [1, 3]"
    assert attempts[1].startswith("attempt 2: signers [1, 2] (after: signers [3] degraded, [] restarted")
    assert f"signer 3: FAILED_PRECONDITION: record 'keys/{KEY_ID}/share' does not decrypt ({share})" in attempts[1]
    fault = service.health.faults()[3]
    assert f"does not decrypt ({share})" in fault.error
    service.close()


@pytest.mark.slow(8)
def test_a_signer_restored_without_governance_gets_it_again_and_signs(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    nodes = make_nodes(tmp_path_factory.mktemp("restored"), KEY_ID)  # its own: signer 3 loses governance
    service = _service(tmp_path, nodes)
    down = service.signers[1]
    assert isinstance(down, LocalSignerClient)
    down.down = True  # only {2, 3} can sign
    service.pool.presign(service.store.get_key(KEY_ID), (2, 3), ())

    # Signer 3 comes back from a restore without its registry and policy (its presignatures kept
    # in memory, so that PartialSign reaches its own check): it refuses with `no_policy`.
    old = nodes[3]
    for name in ("governance/registry", "governance/policy"):
        old.store.delete(name)
    restored = SignerNode(old.config, primes=lambda bits: 0)
    restored._presigs = old._presigs
    client = service.signers[3]
    assert isinstance(client, LocalSignerClient)
    client.node = restored
    assert restored.governance_view().policy_version == 0

    # A coordinator that restarted holds no attestation to show signer 3 it is behind its peers.
    clients = service.signers
    service.close()
    service = CoordinatorService(Store(tmp_path / "coordinator.db"), clients, level="112")
    row = service.sign_eth(KEY_ID, "g-1", (), _tx(0))
    assert row.state == st.SIGNED, row.error
    assert Account.recover_transaction(row.raw_tx) == row.from_address
    assert restored.governance_view().policy_version > 0  # the coordinator re-installed it
    details = [e.detail for e in service.store.events(row.request_id)]
    assert any("state refusals {3: 'no_policy'}" in d for d in details), details
    service.close()
    for n in (*nodes.values(), restored):
        n.close()


def test_degraded_tells_a_fault_from_a_refusal() -> None:
    assert degraded(SignerUnavailable(3, "DEADLINE_EXCEEDED: slow"))
    assert degraded(SignerInternal(3, "UNKNOWN: bug"))
    assert degraded(SignerRejected(3, "FAILED_PRECONDITION: record ...", wire.STORE_FAILED))
    assert not degraded(SignerRejected(3, "FAILED_PRECONDITION: refused: limit", "limit_exceeded"))
    assert not degraded(SignerRejected(3, "INVALID_ARGUMENT: presignature unknown", wire.PRESIGNATURE_UNKNOWN))
    assert not degraded(SignerRejected(3, "INVALID_ARGUMENT: bad tx"))


def test_a_signer_without_governance_gets_the_log_again() -> None:
    failed = {3: SignerRejected(3, "FAILED_PRECONDITION: refused: no_policy", "no_policy")}
    assert state_refusals(failed) == {3: "no_policy"}
    failed = {3: SignerRejected(3, "FAILED_PRECONDITION: refused: limit", "limit_exceeded")}
    assert state_refusals(failed) == {}


class _Probe:
    def __init__(self, party: int) -> None:
        self.party = party
        self.up = True
        self.probes = 0

    def healthy(self) -> bool:
        self.probes += 1
        return self.up


def test_backoff_grows_needs_a_passing_probe_and_resets_on_success() -> None:
    probes = {p: _Probe(p) for p in (1, 2, 3)}
    with ThreadPoolExecutor(2) as ex:
        health = SignerHealth(probes, ex, health_ttl=60, down_ttl=60, backoff_base=0.2, backoff_max=0.4)  # type: ignore[arg-type]
        assert health.live((1, 2, 3)) == [1, 2, 3]
        assert health.fault(3, "store_failed") == 0.2
        assert health.live((1, 2, 3)) == [1, 2]  # backing off: not even probed
        assert probes[3].probes == 1
        probes[3].up = False
        assert health.live((1, 2, 3), fresh=True) == [1, 2]  # the last resort probes it, still broken
        assert health.faults()[3].count == 1  # (a probe during the backoff does not extend it)
        probes[3].up = True
        assert health.live((1, 2, 3), fresh=True) == [1, 2, 3]  # passes: usable when nothing else is
        assert health.live((1, 2, 3)) == [1, 2]  # but no ordinary set choice takes it yet
        time.sleep(0.25)
        probes[3].up = False  # still broken: the probe fails, the backoff doubles
        assert health.live((1, 2, 3)) == [1, 2]
        assert health.faults()[3].count == 2
        assert health.fault(3, "again") == 0.4  # capped at backoff_max
        time.sleep(0.45)
        probes[3].up = True  # repaired: a passing probe lets it be tried again ...
        assert health.live((1, 2, 3)) == [1, 2, 3]
        assert 3 in health.faults()  # ... but only a successful call clears the record
        health.mark(3, True)
        assert health.faults() == {}


class _Stub:
    """Records the deadline of each session call; the step is done at the third round."""

    def __init__(self) -> None:
        self.timeouts: list[tuple[str, float]] = []

    def _step(self, name: str, timeout: float) -> Any:
        self.timeouts.append((name, timeout))
        return signer_pb2.SessionStep(done=len(self.timeouts) % 3 == 0)

    def StartSession(self, req: Any, timeout: float) -> Any:
        return self._step("start", timeout)

    def Deliver(self, req: Any, timeout: float) -> Any:
        return self._step("deliver", timeout)


def test_session_rounds_get_deadlines_proportionate_to_the_protocol(tmp_path: Path) -> None:
    create_ca(tmp_path)
    issue(tmp_path, "coordinator", "coordinator")
    client = GrpcSignerClient(1, "127.0.0.1:9", TlsFiles.in_dir(tmp_path, "coordinator"), session_timeout=120.0)
    stub = _Stub()
    client._stub = stub  # type: ignore[assignment]
    params = SessionParams(KEY_ID)
    try:
        client.start_session(b"presign-1", "presign", (1, 2), params)
        client.deliver(b"presign-1", [])
        assert client.deliver(b"presign-1", []).done
        client.start_session(b"aux-0001", "aux", (1, 2, 3), params)
        client.deliver(b"aux-0001", [])
        assert client.deliver(b"aux-0001", []).done
    finally:
        client.close()
    # A stalled signer holds a presign round 30 s, not the 120 s an aux round (safe primes) may need.
    presign = [("start", 30.0), ("deliver", 30.0), ("deliver", 30.0)]
    aux = [("start", 120.0), ("deliver", 120.0), ("deliver", 120.0)]
    assert stub.timeouts == presign + aux
    assert client._protocols == {}  # finished sessions are forgotten


class _StalledSessions(LocalSignerClient):
    """Answers its health probe, but every presign round runs past its deadline (a hung disk, an
    overloaded host, a one-way partition)."""

    def start_session(self, *args: Any, **kwargs: Any) -> Any:
        raise SignerUnavailable(self.party, "DEADLINE_EXCEEDED: Deadline Exceeded")


def test_a_signer_whose_presign_rounds_time_out_is_backed_off_though_its_probe_passes(
    nodes: dict[int, SignerNode], tmp_path: Path
) -> None:
    store = Store(tmp_path / "coordinator.db")
    add_key(store, KEY_ID)
    clients: dict[int, SignerClient] = {p: LocalSignerClient(n) for p, n in nodes.items()}
    clients[3] = _StalledSessions(nodes[3])
    # down_ttl 0: a real round deadline (30 s) outlasts the 1 s a down mark is trusted.
    service = CoordinatorService(store, clients, level="112", down_ttl=0.0)
    install_demo_governance(service)
    try:
        for nonce in range(3):
            assert service.sign_eth(KEY_ID, f"stalled-{nonce}", (), _tx(nonce)).state == st.SIGNED
        assert 3 in service.health.faults()
    finally:
        service.close()
