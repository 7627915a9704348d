"""Which signers are live: a cached up/down mark per signer, re-probed when stale, and a backoff
from signers that fail.

A signer marked up is trusted for `health_ttl` seconds, one marked down is probed again after
`down_ttl`; every RPC outcome (a session, a partial signature) marks its signer too.

A signer that is up but fails calls on its own side (its store is broken, an internal error, a
deadline) is *degraded*: `fault` keeps it out of every set choice for a time that doubles with
each consecutive fault (`backoff_base` .. `backoff_max`), and after that it is used again only
once a fresh health probe passes (a signer's health follows its store); only a `fresh` look (the
last resort when fewer than t signers are otherwise live) may take it earlier, and then only if
its probe passes. A successful call resets its fault count. Without this a degraded signer would
be picked for every request and each attempt would burn a presignature of the healthy signers in
its set.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor

import structlog

from .signer_client import SignerClient

log = structlog.get_logger("coordinator")


@dataclasses.dataclass(frozen=True, slots=True)
class Fault:
    """A degraded signer: consecutive faults, the last error, and when it may be tried again."""

    count: int
    error: str
    until: float  # monotonic


class SignerHealth:
    """Liveness of the cluster's signers (`signers` is shared with the rest of the service)."""

    def __init__(
        self,
        signers: Mapping[int, SignerClient],
        executor: Executor,
        *,
        health_ttl: float,
        down_ttl: float,
        backoff_base: float = 2.0,
        backoff_max: float = 300.0,
    ) -> None:
        self.signers = signers
        self.health_ttl = health_ttl
        self.down_ttl = down_ttl
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self._executor = executor
        self._health: dict[int, tuple[bool, float]] = {}
        self._faults: dict[int, Fault] = {}
        self._lock = threading.Lock()
        # Parties the officer registry revokes (set by the service): never live, never in a set.
        self.revoked: Callable[[], frozenset[int]] = frozenset

    def mark(self, party: int, up: bool) -> None:
        """Record what a call to `party` just showed (a call that succeeded ends its backoff)."""
        with self._lock:
            self._health[party] = (up, time.monotonic())
            fault = self._faults.pop(party, None) if up else None
        if fault is not None:
            log.info("signer_recovered", party=party, faults=fault.count)

    def fault(self, party: int, error: str) -> float:
        """`party` failed a call on its own side: keep it out of set choices for a growing time;
        returns that time in seconds."""
        now = time.monotonic()
        with self._lock:
            count = self._faults[party].count + 1 if party in self._faults else 1
            wait = float(min(self.backoff_base * 2 ** (count - 1), self.backoff_max))
            self._faults[party] = Fault(count, error, now + wait)
        log.warning("signer_degraded", party=party, error=error, faults=count, backoff_s=wait)
        return wait

    def faults(self) -> dict[int, Fault]:
        """The signers currently degraded (backing off, or waiting for a passing probe)."""
        with self._lock:
            return dict(self._faults)

    def live(self, parties: Sequence[int], *, fresh: bool = False) -> list[int]:
        """Signers of `parties` believed reachable and not backing off; stale entries (and degraded
        signers whose backoff ended) are re-probed in parallel. `fresh` probes everyone, degraded
        signers too (the last resort before giving up for want of t signers, and CreateKey)."""
        gone = self.revoked()
        parties = [p for p in parties if p not in gone]
        now = time.monotonic()
        with self._lock:
            known = dict(self._health)
            faults = dict(self._faults)
        waiting = set() if fresh else {p for p, f in faults.items() if now < f.until}
        stale = [
            p
            for p in parties
            if p not in waiting
            and (
                fresh
                or p in faults
                or p not in known
                or now - known[p][1] > (self.health_ttl if known[p][0] else self.down_ttl)
            )
        ]
        if stale:
            probes = {p: self._executor.submit(self.signers[p].healthy) for p in stale if p in self.signers}
            for p, fut in probes.items():
                up = bool(fut.result())
                with self._lock:
                    self._health[p] = (up, time.monotonic())
                if not up and p in faults and now >= faults[p].until:
                    self.fault(p, f"health probe failed after: {faults[p].error}")
        with self._lock:
            return [
                p
                for p in parties
                if p in self.signers and p not in waiting and self._health.get(p, (False, 0.0))[0]
            ]
