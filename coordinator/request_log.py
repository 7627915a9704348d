"""The `request_state_changed` log event: one per committed move of a request, the operators'
timeline of it in the JSON log (restart recovery's bulk `recover` moves included, `recovered`).
Only public facts (ids, kind, states, reason text): never the body, an approval or a signature."""

from __future__ import annotations

from collections.abc import Iterable

import structlog

from .request_states import RECOVER, Move
from .step_commit import StepCommit
from .store import RECOVERED_ERROR, RecoveredRequest, RequestRecord

log = structlog.get_logger("coordinator")


def state_changed(commit: StepCommit, move: Move, row: RequestRecord, source: str, reason: str) -> None:
    """Log `row`'s move from `source` once the open step commits (nothing if it rolls back)."""
    event = {
        "request_id": row.request_id,
        "key_id": row.key_id,
        "kind": row.kind,
        "from_state": source,
        "to_state": move.target,
        "move": move.name,
        "reason": reason,
    }
    commit.after_commit(lambda: log.info("request_state_changed", **event))


def recovered(moved: Iterable[RecoveredRequest]) -> None:
    """Log each request a committed `Store.recover` failed (its `recover` move)."""
    for req in moved:
        log.info(
            "request_state_changed",
            request_id=req.request_id,
            key_id=req.key_id,
            kind=req.kind,
            from_state=req.from_state,
            to_state=RECOVER.target,
            move=RECOVER.name,
            reason=RECOVERED_ERROR,
        )
