"""A coordinator replica's lease on its work: heartbeat, and fail what dead replicas left in flight.

Replicas share one PostgreSQL database (docs/operations.md, "Replicas"). Each heartbeats every
`interval` seconds; one silent for the store's lease is dead, and any live replica then fails the
requests, reserved presignatures and sessions it left in flight (`Store.recover(restart=False)`,
store/replicas.py), each failed request with its audit entry. A lone SQLite coordinator needs none
of this: its restart recovers everything (`CoordinatorService`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import structlog

from . import request_log
from .instruments import Instruments
from .store import AuditHook, Store

log = structlog.get_logger("coordinator")


def recover_in_flight(
    store: Store, audit: Callable[[str], AuditHook], instruments: Instruments, *, restart: bool, lease: float
) -> tuple[int, int]:
    """One recovery pass (`Store.recover`), then each request it failed logged and measured once its
    transaction has committed; returns (requests, presignatures) failed."""
    done = store.recover(audit, restart=restart, lease=lease)
    request_log.recovered(done.requests, instruments, store.now())
    return done.counts()


class ReplicaLease:
    """The heartbeat thread of one replica."""

    def __init__(
        self,
        store: Store,
        audit: Callable[[str], AuditHook],
        instruments: Instruments | None = None,
        *,
        interval: float,
        lease: float,
    ) -> None:
        if not 0 < interval < lease:
            raise ValueError("the heartbeat interval must be positive and shorter than the lease")
        self.store = store
        self._audit = audit
        self._instruments = instruments if instruments is not None else Instruments()
        self.interval = interval
        self.lease = lease
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="replica-lease", daemon=True)

    def start(self) -> None:
        """Heartbeat now, then every `interval` in the background."""
        self.store.heartbeat()
        self._thread.start()

    def tick(self) -> tuple[int, int]:
        """One heartbeat and one sweep; returns (requests, presignatures) failed for dead replicas."""
        self.store.heartbeat()
        failed = recover_in_flight(self.store, self._audit, self._instruments, restart=False, lease=self.lease)
        if failed != (0, 0):
            log.warning("recovered_dead_replica", requests_failed=failed[0], presignatures_failed=failed[1])
        return failed

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.tick()
            except Exception:  # the database may be briefly unreachable: try again next time
                log.exception("replica_heartbeat_failed", replica=self.store.replica)

    def stop(self) -> None:
        """Stop heartbeating (the lease then runs out: other replicas take over after it)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
