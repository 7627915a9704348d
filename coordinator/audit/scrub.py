"""The coordinator re-verifies its own audit log in the background, a bounded batch per pass.

An auditor runs `tssctl audit verify` now and then; between two runs an edited or deleted row (a
database administrator, a restored backup of the wrong day) would go unnoticed. `AuditScrub.step`
feeds the next `batch` entries to the auditor's own checker (`verifier._Checker`: chain links,
entry hashes, checkpoint roots and signatures) and remembers where it stopped, so each pass costs
at most `batch` entries whatever the log's length: the first pass after a start walks the history
in slices, then only what was appended since. Every `rescan` seconds it starts again from the first
entry, so a change to an old entry is found within about `rescan` plus the history's length over
`batch` passes. A failure is sticky until a later full pass finds the log whole again (the log
repaired from a backup). The scheduler calls `step` on every tick; the coordinator's metrics
export the state (`tss_coordinator_audit_chain_ok`, alert `TssAuditChainBroken`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from .verifier import _Checker
from .writer import AuditLog

log = structlog.get_logger("coordinator")


@dataclass(frozen=True, slots=True)
class ScrubState:
    """What the scrub knows: whether the log checked whole so far, up to which entry, and the first
    bad entry with the auditor's reason once one is found."""

    ok: bool
    verified_seq: int
    passes: int
    first_bad_seq: int | None = None
    reason: str = ""


class AuditScrub:
    """Continuous verification of one `AuditLog` with its own public key."""

    def __init__(
        self,
        audit: AuditLog,
        *,
        batch: int = 2000,
        rescan: float = 86400.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if batch < 1 or rescan <= 0:
            raise ValueError("batch must be >= 1 and rescan > 0")
        self.audit = audit
        self.batch = batch
        self.rescan = rescan
        self._clock = clock
        self._lock = threading.Lock()
        self._checker = _Checker(audit.public_key, 1, None)
        self._started = clock()
        self._passes = 0
        self._broken: ScrubState | None = None

    @property
    def state(self) -> ScrubState:
        """The latest state (a failure stays until a full pass finds the log whole)."""
        with self._lock:
            return self._state()

    def step(self) -> ScrubState:
        """Check the next batch of entries (starting a new pass when the last one is due again)."""
        with self._lock:
            due = self._clock() - self._started >= self.rescan
            if due and (self._checker.bad is not None or self._at_head()):
                self._new_pass()
            if self._checker.bad is None:
                for row in self.audit.rows(self._checker.expected, self.batch):
                    if not self._checker.feed(row):
                        self._found()
                        break
                else:
                    if self._at_head() and self._broken is not None:
                        log.warning("audit_chain_whole_again", verified_seq=self._checker.expected - 1)
                        self._broken = None
            return self._state()

    def _at_head(self) -> bool:
        return self.audit.head()[0] < self._checker.expected

    def _new_pass(self) -> None:
        self._checker = _Checker(self.audit.public_key, 1, None)
        self._started = self._clock()
        self._passes += 1

    def _found(self) -> None:
        bad = self._checker.bad
        assert bad is not None
        self._broken = ScrubState(False, bad.seq - 1, self._passes, bad.seq, bad.reason)
        log.error("audit_chain_broken", first_bad_seq=bad.seq, reason=bad.reason, detail=bad.detail)

    def _state(self) -> ScrubState:
        if self._broken is not None:
            return self._broken
        return ScrubState(True, self._checker.expected - 1, self._passes)
