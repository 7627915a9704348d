"""The presignature pool's refill over real in-process signers (real presign sessions), with an
injected clock: it tops a set up to the target the observed signing rate sets, never past the
cap, starts no more sessions than `presign_refill_per_minute` allows, and a request that finds
nothing ready still presigns at once."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from coordinator.pool_sizing import PoolPolicy
from coordinator.presign_pool import PresignPool
from coordinator.service import CoordinatorService
from coordinator.signer_client import LocalSignerClient, SignerClient
from coordinator.store import SIGNED, KeyRecord, Store
from signer.chains.ethereum import Eip1559Tx
from signer.node.node import SignerNode

from .governance_fixtures import add_key, install_demo_governance, make_nodes

KEY_ID = "k-pool"
SET = (1, 2)
NONCES = iter(range(10**6))


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[int, SignerNode]]:
    out = make_nodes(tmp_path_factory.mktemp("signers"), KEY_ID)
    yield out
    for n in out.values():
        n.close()


class Clock:
    """Injected time: moves only when the pool's pacing sleeps or the test moves it."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept = 0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds

    def sleep(self, seconds: float) -> bool:
        self.slept += 1
        self.advance(seconds)
        return False


class Down(LocalSignerClient):
    """A signer the coordinator cannot reach: its health probe fails."""

    def healthy(self) -> bool:
        return False


class Harness:
    def __init__(
        self, service: CoordinatorService, pool: PresignPool, clock: Clock, starts: list[float], done: list[int]
    ) -> None:
        self.service, self.pool, self.clock, self.starts, self.done = service, pool, clock, starts, done
        self.key: KeyRecord = service.store.get_key(KEY_ID)

    def sign(self, path: tuple[int, ...] = ()) -> tuple[int, ...]:
        """One real signature through the service (and so through this pool); its signer set."""
        nonce = next(NONCES)
        tx = Eip1559Tx(1, nonce, 2 * 10**9, 40 * 10**9, 21000, "0x000000000000000000000000000000000000dEaD", 10**16)
        row = self.service.sign_eth(KEY_ID, f"pool-{nonce}", path, tx)
        assert row.state == SIGNED, row
        return tuple(self.service.store.get_presignature(row.presignature_id or b"").signers)

    def ready(self, path: tuple[int, ...] = ()) -> int:
        return self.service.store.count_ready(KEY_ID, SET, path, self.key.epoch)

    def wait_ready(self, count: int, path: tuple[int, ...] = (), timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while self.ready(path) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self.ready(path) == count

    def wait_idle(self) -> None:
        """Until the refill thread has nothing queued or running (it presigns no more)."""
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self._settled():
                time.sleep(0.3)  # the refill may be between taking an item and starting its session
                if self._settled():
                    return
            time.sleep(0.05)
        raise AssertionError("the refill did not settle")

    def _settled(self) -> bool:
        return len(self.starts) == self.done[0] and not self.pool._pending and self.pool._queue.empty()


@pytest.fixture
def harness(nodes: dict[int, SignerNode], tmp_path: Path) -> Iterator[Callable[..., Harness]]:
    made: list[tuple[CoordinatorService, PresignPool]] = []

    def build(policy: PoolPolicy, presign_seconds: float = 0.0) -> Harness:
        store = Store(tmp_path / f"coordinator-{len(made)}.db")
        add_key(store, KEY_ID)
        clients: dict[int, SignerClient] = {p: LocalSignerClient(n) for p, n in nodes.items()}
        service = CoordinatorService(store, clients, level="112")
        install_demo_governance(service)
        service.signers[3] = Down(nodes[3])  # every signature from {1, 2}
        service.health.mark(3, False)
        clock = Clock()
        parts = (service.signers, service.sessions, service.health, service.signer_states)
        pool = PresignPool(store, *parts, policy=policy, clock=clock, sleep=clock.sleep)
        starts: list[float] = []
        done = [0]
        run = service.sessions.run

        def counted(protocol: str, *args: Any, **kwargs: Any) -> Any:
            if protocol != "presign":
                return run(protocol, *args, **kwargs)
            starts.append(clock())
            try:
                return run(protocol, *args, **kwargs)
            finally:
                clock.advance(presign_seconds)  # the session's time as the pool observes it
                done[0] += 1

        service.sessions.run = counted  # type: ignore[method-assign]
        service.pool = service.signing.pool = pool  # the service signs through this pool
        made.append((service, pool))
        pool.start()
        return Harness(service, pool, clock, starts, done)

    yield build
    for service, pool in made:
        pool.close()
        service.close()


@pytest.mark.slow(25)
def test_the_refill_starts_no_more_sessions_than_the_configured_rate(harness: Callable[..., Harness]) -> None:
    h = harness(PoolPolicy(floor=5, refill_per_minute=3))
    h.pool.schedule_refill(KEY_ID, SET, ())
    h.wait_ready(5)
    h.wait_idle()
    assert len(h.starts) == 5
    assert [b - a for a, b in zip(h.starts, h.starts[1:], strict=False)] == [20.0] * 4  # 60 / 3 apart
    assert all(sum(1 for t in h.starts if s <= t < s + 60) <= 3 for s in h.starts)


@pytest.mark.slow(20)
def test_a_request_with_nothing_ready_presigns_at_once_whatever_the_refill_pace(
    harness: Callable[..., Harness],
) -> None:
    h = harness(PoolPolicy(floor=1, refill_per_minute=1))
    h.pool.schedule_refill(KEY_ID, SET, ())
    h.wait_ready(1)
    h.wait_idle()
    # The refill's next session waits a minute; a request on the same set does not.
    assert h.starts == [0.0] and h.clock.slept == 0
    assert h.sign((0, 3)) == SET
    assert h.starts[1] == 0.0  # the request's own presign session, at once
    h.wait_ready(1, (0, 3))  # the refill after that signature, at the refill's pace
    h.wait_idle()
    refill = [h.starts[0], *h.starts[2:]]
    assert len(refill) >= 2 and {b - a for a, b in itertools.pairwise(refill)} == {60.0}


@pytest.mark.slow(30)
def test_a_burst_grows_the_pool_to_its_target_never_past_the_cap(harness: Callable[..., Harness]) -> None:
    h = harness(PoolPolicy(floor=1, cap=4, window=3.0), presign_seconds=1.0)
    item = (KEY_ID, SET, ())
    assert h.pool.ensure(KEY_ID, SET, (), count=8) == 8  # ready for the whole burst; 1 s observed per presign
    assert h.pool.sizing.presign_seconds(KEY_ID, SET) == 1.0 and h.pool.sizing.target(item) == 1
    for _ in range(7):  # a burst: 7 signatures 0.1 s apart, none waiting for a presign
        assert h.sign() == SET
        h.clock.advance(0.1)
    # ~2/s x 1 s x headroom 4 = 8 wanted, 4 allowed; the refill (its sessions moving the clock 1 s
    # each, the rate decaying meanwhile: 8, 6, 5 wanted) tops the set up from 1 to the cap, no further.
    assert h.pool.sizing.rate(item) > 2.0 and h.pool.sizing.target(item) == 4
    h.wait_ready(4)
    h.wait_idle()
    assert h.ready() == 4 and len(h.starts) == 8 + 3
    h.clock.advance(30.0)  # ten windows idle: back to the floor; what is ready stays ready
    assert h.pool.sizing.target(item) == 1 and h.pool.sizing.snapshot() == []
    for _ in range(3):  # one signature every ten windows: what is ready is used, nothing is made
        assert h.sign() == SET
        h.clock.advance(30.0)
    h.wait_idle()
    assert h.ready() == 1 and len(h.starts) == 8 + 3
