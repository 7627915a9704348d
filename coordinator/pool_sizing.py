"""How many presignatures the pool keeps ready, and how fast its refill may presign.

Per (key, signer set, path) the pool keeps max(floor, ceil(rate x lead x headroom)) ready, the
rate-driven part bounded by the cap: `rate` is that item's signatures per second, exponentially
weighted over `window` seconds (O(1) per signature: one decay and one add, no history); `lead` is
how long the refill takes to replace one presignature (the observed presign time of that key and
set, or the refill's pacing interval if that is longer). That is the reorder point of an
inventory: what is consumed while a replacement is made, with headroom for bursts. A set or path
unused for `IDLE_WINDOWS` windows is forgotten and falls back to the floor.

A presignature at rest is public data on the coordinator and secret state (k̃_i, χ̃_i) in the
memory of each of its t signers; a signer's restart or a key refresh loses it, and the presign
work with it. The cap bounds what a burst leaves at rest; the floor is what the operator asked
for and is kept even above the cap.

The refill is paced apart from the sizing: `RefillPacer` spaces the starts of its sessions at
least 60/`refill_per_minute` seconds apart and never lets a 60-second window hold more than that
many, so the signers' cores stay free for online signing in between. Presigning on the spot for a request
that found nothing ready does not go through it.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

Clock = Callable[[], float]
Item = tuple[str, tuple[int, ...], tuple[int, ...]]  # key id, signer set, path

HEADROOM = 4.0
"""Multiples of one refill lead time's expected consumption held ready: the refill starts below
half the target, so at that point about two lead times' worth is left."""
IDLE_WINDOWS = 10
"""An item silent this many windows (its rate decayed to e^-10 of what it was) is forgotten."""
DEFAULT_PRESIGN_SECONDS = 1.0
"""A presign's time until one is observed on the set (2-of-3 at level 112 on two cores: ~1 s)."""
PRESIGN_WEIGHT = 0.25
"""The weight of each new presign time in the set's running average."""


@dataclass(frozen=True, slots=True)
class PoolPolicy:
    """The pool's configuration: `floor` (`presign_pool`; 0 = no pool, no refill), `cap`
    (`presign_pool_max`), `refill_per_minute` (`presign_refill_per_minute`; 0 = unpaced),
    `window` (`presign_rate_window`, seconds)."""

    floor: int = 0
    cap: int = 16
    refill_per_minute: int = 0
    window: float = 60.0
    headroom: float = HEADROOM

    def __post_init__(self) -> None:
        if self.floor < 0 or self.cap < 1 or self.refill_per_minute < 0:
            raise ValueError("presign pool: floor >= 0, cap >= 1, refill_per_minute >= 0")
        if not (self.window > 0 and math.isfinite(self.window)) or self.headroom < 1:
            raise ValueError("presign pool: window > 0 seconds, headroom >= 1")

    @property
    def refill_interval(self) -> float:
        """Seconds between the starts of two refill sessions at least (0: unpaced)."""
        return 60.0 / self.refill_per_minute if self.refill_per_minute else 0.0


NO_POOL = PoolPolicy()


@dataclass(frozen=True, slots=True)
class ItemSizing:
    """One item's observed rate (signatures/s) and its target, for the metrics."""

    item: Item
    rate: float
    target: int


@dataclass(slots=True)
class _Rate:
    per_second: float  # as of `at`
    at: float


class PoolSizing:
    """The observed signing rate per item and presign time per (key, set); the targets from them."""

    def __init__(self, policy: PoolPolicy, clock: Clock = time.monotonic) -> None:
        self.policy = policy
        self.clock = clock
        self._rates: OrderedDict[Item, _Rate] = OrderedDict()  # least recently signed first
        self._presign: dict[tuple[str, tuple[int, ...]], float] = {}
        self._lock = threading.Lock()

    def signed(self, item: Item) -> None:
        """One signature consumed a presignature of `item`."""
        now = self.clock()
        with self._lock:
            got = self._rates.pop(item, None)
            before = 0.0 if got is None else self._decayed(got, now)
            self._rates[item] = _Rate(before + 1.0 / self.policy.window, now)
            self._forget_idle(now)

    def presigned(self, key_id: str, signers: tuple[int, ...], seconds: float) -> None:
        """A presign session on (key, set) took `seconds`."""
        with self._lock:
            old = self._presign.get((key_id, signers))
            self._presign[(key_id, signers)] = seconds if old is None else old + PRESIGN_WEIGHT * (seconds - old)

    def presign_seconds(self, key_id: str, signers: tuple[int, ...]) -> float:
        """The running average presign time of (key, set)."""
        with self._lock:
            return self._presign.get((key_id, signers), DEFAULT_PRESIGN_SECONDS)

    def rate(self, item: Item) -> float:
        """Signatures per second of `item` now (0 if forgotten or never seen)."""
        now = self.clock()
        with self._lock:
            got = self._rates.get(item)
            return 0.0 if got is None else self._decayed(got, now)

    def target(self, item: Item) -> int:
        """Presignatures to keep ready for `item` now."""
        return self._target(item, self.rate(item))

    def snapshot(self) -> list[ItemSizing]:
        """Every item still remembered, with its rate and target."""
        now = self.clock()
        with self._lock:
            self._forget_idle(now)
            rates = [(item, self._decayed(r, now)) for item, r in self._rates.items()]
        return [ItemSizing(item, rate, self._target(item, rate)) for item, rate in rates]

    def presign_times(self) -> dict[tuple[str, tuple[int, ...]], float]:
        """The running average presign time per (key, set) observed so far."""
        with self._lock:
            return dict(self._presign)

    def _target(self, item: Item, rate: float) -> int:
        p = self.policy
        lead = max(self.presign_seconds(item[0], item[1]), p.refill_interval)
        wanted = math.ceil(rate * lead * p.headroom - 1e-9)  # 1e-9: float noise must not add one
        return max(p.floor, min(p.cap, wanted))

    def _decayed(self, r: _Rate, now: float) -> float:
        return r.per_second * math.exp(-max(0.0, now - r.at) / self.policy.window)

    def _forget_idle(self, now: float) -> None:
        """Drop items silent for IDLE_WINDOWS windows: amortised O(1), the oldest are first."""
        horizon = IDLE_WINDOWS * self.policy.window
        while self._rates:
            item, r = next(iter(self._rates.items()))
            if now - r.at < horizon:
                return
            del self._rates[item]


class RefillPacer:
    """Starts of refill sessions at most `per_minute` in any 60 seconds and at least 60/`per_minute`
    seconds apart (0: unpaced). Used by the one refill thread only."""

    def __init__(self, per_minute: int, clock: Clock = time.monotonic) -> None:
        self.interval = 60.0 / per_minute if per_minute else 0.0
        self.clock = clock
        # The last `per_minute` starts: the spacing alone could let float rounding fit one more in a minute.
        self._starts: deque[float] = deque(maxlen=per_minute or 1)

    def wait(self, sleep: Callable[[float], bool]) -> bool:
        """Wait (through `sleep(seconds)`, True when the pool closes meanwhile) until a session may
        start, and count it as started; False if the pool closed."""
        while self.interval and self._starts:
            now = self.clock()
            left = max(self._starts[-1] + self.interval - now, 0.0)
            if len(self._starts) == self._starts.maxlen:
                left = max(left, self._starts[0] + 60.0 - now)
            if left <= 0:
                break
            if sleep(left):
                return False
        self._starts.append(self.clock())
        return True
