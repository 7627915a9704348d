"""The pool's target from the observed signing rate and presign time, and the refill's pace, over
an injected clock (coordinator/pool_sizing.py)."""

from __future__ import annotations

import itertools
import math

import pytest

from coordinator.pool_sizing import IDLE_WINDOWS, PoolPolicy, PoolSizing, RefillPacer

ITEM = ("k1", (1, 2), (0, 7))
OTHER = ("k1", (2, 3), (0, 7))


class Clock:
    """Seconds that move only when a test (or a pacer's sleep) moves them."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> bool:
        self.slept.append(seconds)
        self.now += seconds
        return False


def _burst(sizing: PoolSizing, clock: Clock, count: int, every: float, item: tuple[object, ...] = ITEM) -> None:
    for _ in range(count):
        sizing.signed(item)  # type: ignore[arg-type]
        clock.now += every


def test_a_burst_raises_the_target_and_idleness_brings_it_back_to_the_floor() -> None:
    clock = Clock()
    sizing = PoolSizing(PoolPolicy(floor=2, cap=64, window=10.0), clock)
    sizing.presigned("k1", (1, 2), 2.0)
    assert sizing.target(ITEM) == 2  # nothing signed yet: the floor
    _burst(sizing, clock, 30, 0.2)  # 5 signatures/s for 6 s
    rate = sizing.rate(ITEM)
    # the exponentially weighted count over a 10 s window after 6 s at 5/s: 5 (1 - e^-0.6), within one event
    assert abs(rate - 5 * (1 - math.exp(-0.6))) < 0.1 + 1e-9
    assert sizing.target(ITEM) == math.ceil(rate * 2.0 * 4.0) > 10
    assert sizing.target(OTHER) == 2  # another set of the same key and path is not affected
    clock.now += 10  # one window later the rate is e^-1 of it
    assert sizing.target(ITEM) == math.ceil(rate * math.exp(-1) * 2.0 * 4.0) == 7
    clock.now += 30
    assert sizing.target(ITEM) == 2
    assert [s.item for s in sizing.snapshot()] == [ITEM]  # still remembered, decayed
    clock.now += IDLE_WINDOWS * 10.0
    assert sizing.snapshot() == [] and sizing.rate(ITEM) == 0.0 and sizing.target(ITEM) == 2


def test_a_steady_rate_is_measured() -> None:
    clock = Clock()
    sizing = PoolSizing(PoolPolicy(floor=1, cap=1000, window=60.0), clock)
    _burst(sizing, clock, 1500, 0.2)  # 5/s for five windows
    assert 4.8 < sizing.rate(ITEM) < 5.2


def test_the_cap_holds_whatever_the_burst_and_the_floor_is_kept_above_it() -> None:
    clock = Clock()
    sizing = PoolSizing(PoolPolicy(floor=2, cap=6, window=10.0), clock)
    _burst(sizing, clock, 1000, 0.0)  # a thousand at once
    assert sizing.rate(ITEM) == pytest.approx(100.0)
    assert sizing.target(ITEM) == 6
    assert [(s.item, s.target) for s in sizing.snapshot()] == [(ITEM, 6)]
    above = PoolSizing(PoolPolicy(floor=50, cap=6, window=10.0), clock)  # bench's "refill forever" pool
    _burst(above, clock, 1000, 0.0)
    assert above.target(ITEM) == 50


def test_the_lead_time_is_the_observed_presign_time_or_the_refill_pace() -> None:
    clock = Clock()
    sizing = PoolSizing(PoolPolicy(floor=1, cap=100, window=100.0), clock)
    _burst(sizing, clock, 100, 0.0)  # 1/s
    assert sizing.target(ITEM) == 4  # no presign observed: 1 s assumed, x headroom 4
    sizing.presigned("k1", (1, 2), 3.0)
    assert sizing.presign_seconds("k1", (1, 2)) == 3.0 and sizing.target(ITEM) == 12
    sizing.presigned("k1", (1, 2), 7.0)  # a running average, not the last one
    assert sizing.presign_seconds("k1", (1, 2)) == 4.0 and sizing.target(ITEM) == 16
    assert sizing.presign_seconds("k1", (2, 3)) == 1.0
    paced = PoolSizing(PoolPolicy(floor=1, cap=100, window=100.0, refill_per_minute=6), clock)
    _burst(paced, clock, 100, 0.0)
    assert paced.target(ITEM) == 40  # one refill session per 10 s: that is the lead time


def test_forgotten_items_do_not_pile_up() -> None:
    clock = Clock()
    sizing = PoolSizing(PoolPolicy(floor=1, window=1.0), clock)
    for i in range(5000):  # one signature per path, as deposit sweeps do
        sizing.signed(("k1", (1, 2), (0, i)))
        clock.now += 0.01
    # Only the paths of the last IDLE_WINDOWS seconds are remembered (pruned as signatures arrive).
    remembered = sizing.snapshot()
    assert len(remembered) == IDLE_WINDOWS * 100
    assert remembered[0].item == ("k1", (1, 2), (0, 5000 - IDLE_WINDOWS * 100))


@pytest.mark.parametrize("per_minute", [1, 6, 45])
def test_the_pacer_never_starts_more_sessions_than_the_rate_allows(per_minute: int) -> None:
    clock = Clock()
    pacer = RefillPacer(per_minute, clock)
    starts = []
    for _ in range(3 * per_minute + 5):
        assert pacer.wait(clock.sleep)
        starts.append(clock.now)
        clock.now += 0.5  # the session's own time, shorter than the pace
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert min(gaps) == pytest.approx(60 / per_minute)
    for s in starts:  # any 60 s window holds at most `per_minute` starts
        assert sum(1 for t in starts if s <= t < s + 60) <= per_minute
    assert starts[0] == 1000.0  # the first start does not wait


def test_an_unpaced_refill_never_waits_and_a_closing_pool_stops_the_wait() -> None:
    clock = Clock()
    unpaced = RefillPacer(0, clock)
    assert all(unpaced.wait(clock.sleep) for _ in range(100)) and clock.slept == []
    paced = RefillPacer(1, clock)
    assert paced.wait(clock.sleep)
    assert not paced.wait(lambda seconds: True)  # closed while waiting: no start
    assert clock.now == 1000.0


def test_a_long_pause_does_not_bank_starts() -> None:
    clock = Clock()
    pacer = RefillPacer(6, clock)
    assert pacer.wait(clock.sleep)
    clock.now += 3600  # an hour idle: the next start is immediate, the one after waits again
    assert pacer.wait(clock.sleep) and clock.slept == []
    assert pacer.wait(clock.sleep) and clock.slept == [10.0]


@pytest.mark.parametrize(
    "kwargs", [{"floor": -1}, {"cap": 0}, {"refill_per_minute": -1}, {"window": 0.0}, {"window": math.inf}]
)
def test_a_bad_policy_is_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="presign pool"):
        PoolPolicy(**kwargs)  # type: ignore[arg-type]
