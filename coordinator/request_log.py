"""What a committed move of a request emits: the `request_state_changed` log event, the
operators' timeline of it in the JSON log (restart recovery's bulk `recover` moves included,
`recovered`), and its metrics (instruments.py). Only public facts (ids, kind, states, reason
text): never the body, an approval or a signature."""

from __future__ import annotations

from collections.abc import Sequence

import structlog

from .instruments import Instruments
from .request_states import RECOVER, Move
from .step_commit import StepCommit
from .store import RECOVERED_ERROR, RecoveredRequest, RequestRecord

log = structlog.get_logger("coordinator")


def state_changed(
    commit: StepCommit, instruments: Instruments, move: Move, row: RequestRecord, source: str, reason: str
) -> None:
    """Log and measure `row`'s move from `source` once the open step commits (nothing if it rolls back)."""
    event = {
        "request_id": row.request_id,
        "key_id": row.key_id,
        "kind": row.kind,
        "from_state": source,
        "to_state": move.target,
        "move": move.name,
        "reason": reason,
    }

    def committed() -> None:
        log.info("request_state_changed", **event)
        instruments.moved(move, row, source)

    commit.after_commit(committed)


def recovered(moved: Sequence[RecoveredRequest], instruments: Instruments, now: float) -> None:
    """Log and measure each request a committed `Store.recover` failed (its `recover` move) at `now`."""
    instruments.recovered(moved, now)
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
