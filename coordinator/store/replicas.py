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
    ) -> tuple[int, int]:
        """Fail requests caught mid-flight, reserved presignatures and running sessions owned by no
        live replica: this one's own after its `restart`, and those of replicas dead for `lease`.

        `audit(request_id)` gives the audit entry of each failed request. Returns (requests
        failed, presignatures failed).
        """
        now = self.now()
        orphaned = (now - lease, self.replica, restart, self.replica)
        with self._tx() as c:
            stuck = [
                r["request_id"]
                for r in c.execute(
                    f"SELECT request_id FROM requests WHERE state IN (?, ?) AND {_ORPHANED} ORDER BY request_id "  # noqa: S608 - fixed text
                    "FOR UPDATE",
                    (SUBMITTED, SIGNING, *orphaned),
                ).fetchall()
            ]
            for rid in stuck:
                c.execute(
                    "UPDATE requests SET state = ?, error = ?, error_code = ?, updated_at = ? WHERE request_id = ?",
                    (FAILED, "coordinator restarted while the request was in flight", "internal", now, rid),
                )
                record_event(c, rid, FAILED, "recovered after restart", now)
                if audit is not None:
                    audit(rid)(c)
            cur = c.execute(
                f"UPDATE presignatures SET state = ?, updated_at = ? WHERE state = ? AND {_ORPHANED}",  # noqa: S608 - fixed text
                (PRESIG_FAILED, now, RESERVED, *orphaned),
            )
            c.execute(_FAIL_SESSIONS, (now, *orphaned))
            return len(stuck), int(cur.rowcount)
