"""Recovery after a restart: the `ReplicaTables` part of the store."""

from __future__ import annotations

from collections.abc import Callable

from ..request_states import FAILED, SIGNING, SUBMITTED
from .database import AuditHook, Database
from .keys import PRESIG_FAILED, RESERVED
from .requests import record_event


class ReplicaTables(Database):
    """Failing what a coordinator left in flight."""

    def recover(self, audit: Callable[[str], AuditHook] | None = None) -> tuple[int, int]:
        """After a restart: fail requests caught mid-flight and every reserved presignature.

        A reserved presignature may have produced partial signatures before the crash, so it is
        failed, never made ready again. `audit(request_id)` gives the audit entry of each failed
        request. Returns (requests failed, presignatures failed).
        """
        now = self.now()
        with self._tx() as c:
            stuck = [
                r["request_id"]
                for r in c.execute("SELECT request_id FROM requests WHERE state IN (?, ?)", (SUBMITTED, SIGNING))
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
                "UPDATE presignatures SET state = ?, updated_at = ? WHERE state = ?", (PRESIG_FAILED, now, RESERVED)
            )
            c.execute(
                "UPDATE sessions SET state = 'failed', error = 'coordinator restarted', ended_at = ? "
                "WHERE state = 'running'",
                (now,),
            )
            return len(stuck), int(cur.rowcount)
