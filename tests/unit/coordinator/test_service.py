"""The coordinator's business logic over real in-process signer nodes (no gRPC).

Key shares come from the cached simulated keygen and aux info from fixture primes (tests/sessions.py),
so only presigning runs here; signatures are checked with eth-account. Every coordinator installs the
demo governance (registry + policy) first: the small amounts here sign automatically under it.
The policy lifecycle itself is tested in test_lifecycle.py.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from eth_account import Account

from coordinator import service as svc
from coordinator import store as st
from coordinator.pool_sizing import PoolPolicy
from coordinator.service import CoordinatorService
from coordinator.signer_client import LocalSignerClient, SignerClient
from coordinator.store import Store
from signer.chains.ethereum import Eip1559Tx, address_of
from signer.node.node import PartialSig, SignerNode
from signer.policy import Release
from signer.tss import hd
from tests.sessions import keygen_shares

from .governance_fixtures import add_key, install_demo_governance, make_nodes

PARTIES = (1, 2, 3)
KEY_ID = "k-test"
TX = Eip1559Tx(1, 0, 2 * 10**9, 40 * 10**9, 21000, "0x000000000000000000000000000000000000dEaD", 10**16)


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[int, SignerNode]]:
    out = make_nodes(tmp_path_factory.mktemp("signers"), KEY_ID)
    yield out
    for n in out.values():
        n.close()


def _service(tmp_path: Path, clients: dict[int, SignerClient]) -> CoordinatorService:
    store = Store(tmp_path / "coordinator.db")
    add_key(store, KEY_ID)
    service = CoordinatorService(store, clients, level="112")
    install_demo_governance(service)  # signers that already hold it say so; that counts as installed
    return service


def _clients(nodes: dict[int, SignerNode]) -> dict[int, SignerClient]:
    return {p: LocalSignerClient(n) for p, n in nodes.items()}


@pytest.fixture(scope="module")
def signed(
    nodes: dict[int, SignerNode], tmp_path_factory: pytest.TempPathFactory
) -> tuple[CoordinatorService, st.RequestRecord, list[str]]:
    service = _service(tmp_path_factory.mktemp("coord"), _clients(nodes))
    results: list[st.RequestRecord] = []
    # Two concurrent submits with one idempotency key: one signs, the other waits for its result.
    threads = [
        threading.Thread(target=lambda: results.append(service.sign_eth(KEY_ID, "idem-1", (0, 7), TX)))
        for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 2 and results[0] == results[1]
    first = results[0]
    seen = [r.state for r in service.watch(first.request_id, timeout=5)]
    return service, first, seen


def test_signed_transaction_recovers_to_the_derived_address(
    signed: tuple[CoordinatorService, st.RequestRecord, list[str]],
) -> None:
    service, row, _ = signed
    assert row.state == st.SIGNED and row.error == ""
    share = keygen_shares(2, PARTIES)[1]
    expected = address_of(hd.derive(share.public_key, share.chain_code, (0, 7)).public_key)
    assert row.from_address == expected
    assert Account.recover_transaction(row.raw_tx) == expected
    assert row.digest == TX.signing_digest() and row.v in (0, 1)
    presig = service.store.get_presignature(row.presignature_id or b"")
    assert presig.state == st.CONSUMED and presig.request_id == row.request_id and presig.path == (0, 7)


def test_watch_replays_every_transition(signed: tuple[CoordinatorService, st.RequestRecord, list[str]]) -> None:
    _, _, seen = signed
    assert seen[:2] == ["submitted", "approved"] and seen[-1] == "signed" and set(seen[2:-1]) == {"signing"}


def test_idempotent_retry_returns_the_same_request(
    signed: tuple[CoordinatorService, st.RequestRecord, list[str]],
) -> None:
    service, row, _ = signed
    sessions = len(service.store.list_sessions())
    again = service.sign_eth(KEY_ID, "idem-1", (0, 7), dataclasses.replace(TX, to=TX.to.lower()))
    assert again.request_id == row.request_id and again.raw_tx == row.raw_tx
    assert len(service.store.list_sessions()) == sessions  # no new presignature, no new signature
    with pytest.raises(svc.AlreadyExists):
        service.sign_eth(KEY_ID, "idem-1", (0, 7), dataclasses.replace(TX, value=1))
    with pytest.raises(svc.AlreadyExists):
        service.sign_eth(KEY_ID, "idem-1", (0, 8), TX)


def test_signer_down_the_other_two_sign(nodes: dict[int, SignerNode], tmp_path: Path) -> None:
    clients = _clients(nodes)
    down = clients[1]
    assert isinstance(down, LocalSignerClient)
    down.down = True
    service = _service(tmp_path, clients)
    row = service.sign_eth(KEY_ID, "idem-down", (), TX)
    assert row.state == st.SIGNED
    assert service.store.get_presignature(row.presignature_id or b"").signers == (2, 3)
    assert Account.recover_transaction(row.raw_tx) == row.from_address


def test_bad_partial_signature_fails_the_request_naming_the_signer(
    nodes: dict[int, SignerNode], tmp_path: Path
) -> None:
    class Corrupt(LocalSignerClient):
        def partial_sign(
            self,
            key_id: str,
            presignature_id: bytes,
            tx: Eip1559Tx,
            release: Release,
            attestations: Sequence[bytes] = (),
        ) -> PartialSig:
            p = super().partial_sign(key_id, presignature_id, tx, release, attestations)
            return dataclasses.replace(p, sigma=(int.from_bytes(p.sigma, "big") ^ 1).to_bytes(32, "big"))

    clients = _clients(nodes)
    clients[2] = Corrupt(nodes[2])
    service = _service(tmp_path, clients)
    row = service.sign_eth(KEY_ID, "idem-bad", (), TX)
    assert row.state == st.FAILED and row.error_code == "aborted"
    assert {(b.party, b.check) for b in row.blame} == {(2, "partial_signature")}
    presig = service.store.get_presignature(row.presignature_id or b"")
    assert presig.state == st.PRESIG_FAILED  # never handed out again
    assert service.store.count_ready(KEY_ID, (1, 2), (), 0) == 0


def test_a_submit_whose_request_another_thread_claims_first_returns_the_outcome(
    nodes: dict[int, SignerNode], tmp_path: Path
) -> None:
    """The scheduler's first pass re-evaluates every open request, so it can claim a request between
    its creation and the submitting thread's own advance (seen in CI as a submit answering
    `signing`). The submitter must still get the signed request, not a snapshot in flight."""
    release = threading.Event()

    class Slow(LocalSignerClient):
        def partial_sign(
            self,
            key_id: str,
            presignature_id: bytes,
            tx: Eip1559Tx,
            release_: Release,
            attestations: Sequence[bytes] = (),
        ) -> PartialSig:
            release.wait(10)
            return super().partial_sign(key_id, presignature_id, tx, release_, attestations)

    clients = _clients(nodes)
    clients[1] = Slow(nodes[1])
    service = _service(tmp_path, clients)
    lifecycle = service.submission.lifecycle
    real_advance = lifecycle.advance

    def claimed_by_another_thread_first(request_id: str, **kw: object) -> st.RequestRecord:
        other = threading.Thread(target=real_advance, args=(request_id,))
        other.start()
        deadline = time.monotonic() + 10
        while service.store.get_request(request_id).state != st.SIGNING:
            assert time.monotonic() < deadline, "the other thread never claimed the request"
            time.sleep(0.01)
        threading.Timer(0.3, release.set).start()
        try:
            return real_advance(request_id, **kw)  # type: ignore[arg-type]  # loses the claim
        finally:
            other.join(10)

    lifecycle.advance = claimed_by_another_thread_first  # type: ignore[method-assign]
    row = service.sign_eth(KEY_ID, "idem-claimed", (), TX)
    assert row.state == st.SIGNED, (row.state, row.error)
    assert Account.recover_transaction(row.raw_tx) == row.from_address


def test_too_few_live_signers_is_unavailable(nodes: dict[int, SignerNode], tmp_path: Path) -> None:
    clients = _clients(nodes)
    for p in (1, 2):
        c = clients[p]
        assert isinstance(c, LocalSignerClient)
        c.down = True
    service = _service(tmp_path, clients)
    row = service.sign_eth(KEY_ID, "idem-unavailable", (), TX)
    assert row.state == st.FAILED and row.error_code == "unavailable"
    with pytest.raises(svc.Unavailable):
        service.create_key("new", 2)


def test_input_errors(nodes: dict[int, SignerNode], tmp_path: Path) -> None:
    service = _service(tmp_path, _clients(nodes))
    with pytest.raises(svc.InvalidRequest, match="t = 1"):
        service.create_key("bad", 1)
    with pytest.raises(svc.InvalidRequest):
        service.create_key("bad", 4)
    with pytest.raises(svc.NotFound):
        service.sign_eth("no-such-key", "i", (), TX)
    with pytest.raises(svc.InvalidRequest):
        service.sign_eth(KEY_ID, "i", (hd.HARDENED,), TX)
    with pytest.raises(svc.InvalidRequest):
        service.sign_eth(KEY_ID, "", (), TX)
    with pytest.raises(svc.InvalidRequest):
        service.ensure_presignatures(KEY_ID, (1, 2, 3))
    with pytest.raises(svc.NotFound):
        service.get_request("nope")


def test_background_refill_tops_up_the_pool_of_the_set_that_signed(
    nodes: dict[int, SignerNode], tmp_path: Path
) -> None:
    share = keygen_shares(2, PARTIES)[1]
    base = _service(tmp_path, _clients(nodes))
    pooled = CoordinatorService(
        base.store, _clients(nodes), level="112", pool_policy=PoolPolicy(floor=1), recover=False
    )
    try:
        row = pooled.sign_eth(KEY_ID, "idem-pool", (), TX)
        assert row.state == st.SIGNED
        signers = pooled.store.get_presignature(row.presignature_id or b"").signers
        deadline = time.monotonic() + 60
        while pooled.store.count_ready(KEY_ID, signers, (), share.epoch) < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert pooled.store.count_ready(KEY_ID, signers, (), share.epoch) == 1
    finally:
        pooled.close()
        base.close()
