"""Which signers are live: a cached up/down mark per signer, re-probed when stale.

A signer marked up is trusted for `health_ttl` seconds, one marked down is probed again after
`down_ttl`; every RPC outcome (a session, a partial signature) marks its signer too.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor

from .signer_client import SignerClient


class SignerHealth:
    """Liveness of the cluster's signers (`signers` is shared with the rest of the service)."""

    def __init__(
        self, signers: Mapping[int, SignerClient], executor: Executor, *, health_ttl: float, down_ttl: float
    ) -> None:
        self.signers = signers
        self.health_ttl = health_ttl
        self.down_ttl = down_ttl
        self._executor = executor
        self._health: dict[int, tuple[bool, float]] = {}
        self._lock = threading.Lock()

    def mark(self, party: int, up: bool) -> None:
        """Record what a call to `party` just showed."""
        with self._lock:
            self._health[party] = (up, time.monotonic())

    def live(self, parties: Sequence[int], *, fresh: bool = False) -> list[int]:
        """Signers of `parties` believed reachable; stale entries are re-probed in parallel."""
        now = time.monotonic()
        with self._lock:
            known = dict(self._health)
        stale = [
            p
            for p in parties
            if fresh or p not in known or now - known[p][1] > (self.health_ttl if known[p][0] else self.down_ttl)
        ]
        if stale:
            probes = {p: self._executor.submit(self.signers[p].healthy) for p in stale if p in self.signers}
            for p, fut in probes.items():
                self.mark(p, bool(fut.result()))
        with self._lock:
            return [p for p in parties if p in self.signers and self._health.get(p, (False, 0.0))[0]]
