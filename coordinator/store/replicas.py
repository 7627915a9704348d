"""Coordinator replicas sharing one database, and recovery after a restart or a replica's death:
the `ReplicaTables` part of the store (the `replicas` table, migration 8).

Every in-flight request, reserved presignature and running session names its `owner`, the
replica that put it there (`Database.replica`; a lone coordinator is "coordinator"). A replica
heartbeats (`heartbeat`, the service's `ReplicaLease` thread); one whose heartbeat is older than
the lease is dead. What a dead replica, or this one before its restart, left in flight is failed,
never resumed: a reserved presignature may have produced partial signatures, so it is failed,
never made ready again, and its request is failed (the client resubmits under a new idempotency
key, and signs with a fresh presignature). A live replica's work is never touched.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..request_states import FAILED, SIGNING, SUBMITTED
from .database import AuditHook, Database
from .keys import PRESIG_FAILED, RESERVED
from .requests import record_event

DEFAULT_LEASE = 15.0
"""Seconds without a heartbeat after which a replica is taken for dead."""

# In flight and owned by no live replica (this one included only after its own restart).
_ORPHANED = (
    "owner NOT IN (SELECT replica_id FROM replicas WHERE heartbeat_at >= ? AND replica_id != ?) AND (? OR owner != ?)"
)
_FAIL_SESSIONS = (
    "UPDATE sessions SET state = 'failed', error = 'coordinator restarted', ended_at = ? "  # noqa: S608 - fixed text
    "WHERE state = 'running' AND " + _ORPHANED
)


# Through the `requests_by_state` index: the cost follows the requests in flight, not the history.
STUCK_REQUESTS = (
    "SELECT request_id, key_id, kind, state, created_at FROM requests WHERE state IN (?, ?) AND "  # noqa: S608 - fixed text
    + _ORPHANED
    + " ORDER BY request_id FOR UPDATE"
)
RECOVERED_ERROR = "coordinator restarted while the request was in flight"


@dataclass(frozen=True, slots=True)
class RecoveredRequest:
    """A request recovery failed: what its log event and metrics name."""

    request_id: str
    key_id: str
    kind: str
    from_state: str
    created_at: float


@dataclass(frozen=True, slots=True)
class Recovered:
    """What one `recover` failed."""

    requests: tuple[RecoveredRequest, ...]
    presignatures: int

    def counts(self) -> tuple[int, int]:
        """(requests failed, presignatures failed)."""
        return len(self.requests), self.presignatures


class ReplicaTables(Database):
    """Heartbeats of the replicas and failing what a restarted or dead one left in flight."""

    def heartbeat(self) -> None:
        """This replica is alive now."""
        now = self.now()
        with self._tx() as c:
            c.execute(
                "INSERT INTO replicas VALUES (?, ?, ?) "
                "ON CONFLICT(replica_id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
                (self.replica, now, now),
            )

    def live_replicas(self, lease: float = DEFAULT_LEASE) -> list[str]:
        """Replicas (this one included) that heartbeat within the lease."""
        rows = self._rows(
            "SELECT replica_id FROM replicas WHERE heartbeat_at >= ? ORDER BY replica_id", (self.now() - lease,)
        )
        return [r[0] for r in rows]

    def recover(
        self, audit: Callable[[str], AuditHook] | None = None, *, restart: bool = True, lease: float = DEFAULT_LEASE
    ) -> Recovered:
        """Fail requests caught mid-flight, reserved presignatures and running sessions owned by no
        live replica: this one's own after its `restart`, and those of replicas dead for `lease`.

        `audit(request_id)` gives the audit entry of each failed request. Returns what it failed
        (the caller logs each request's move once this transaction has committed).
        """
        now = self.now()
        orphaned = (now - lease, self.replica, restart, self.replica)
        with self._tx() as c:
            stuck = tuple(
                RecoveredRequest(r["request_id"], r["key_id"], r["kind"], r["state"], r["created_at"])
                for r in c.execute(STUCK_REQUESTS, (SUBMITTED, SIGNING, *orphaned)).fetchall()
            )
            for req in stuck:
                c.execute(
                    "UPDATE requests SET state = ?, error = ?, error_code = ?, updated_at = ? WHERE request_id = ?",
                    (FAILED, RECOVERED_ERROR, "internal", now, req.request_id),
                )
                record_event(c, req.request_id, FAILED, "recovered after restart", now)
                if audit is not None:
                    audit(req.request_id)(c)
            cur = c.execute(
                f"UPDATE presignatures SET state = ?, updated_at = ? WHERE state = ? AND {_ORPHANED}",  # noqa: S608 - fixed text
                (PRESIG_FAILED, now, RESERVED, *orphaned),
            )
            c.execute(_FAIL_SESSIONS, (now, *orphaned))
            return Recovered(stuck, int(cur.rowcount))
