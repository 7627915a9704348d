"""The coordinator's histograms and counters: observed where things happen, exported with the
gauges of metrics.py on the same endpoint.

Per process: replicas on one database each count what they did and Prometheus sums them. So
every observation is made once, by the replica whose committed move, session or signing it is: a
request's moves after their transaction commits (request_log.py; a move another replica won is
not observed, an idempotent resubmission creates nothing), recovery's bulk failures by the one
replica whose transaction failed them, protocol aborts by the replica that ran the session or
signing attempt (recovery fails requests without blame, so it never counts an abort). Nothing is
derived from the database at start, so a restart or a recovery pass never counts anything twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from prometheus_client import Counter, Histogram
from prometheus_client.metrics_core import Metric

from signer.node.node import PROTOCOLS
from signer.tss.errors import Blame

from .request_states import APPROVE, BLOCK, FINAL_STATES, PENDING_APPROVAL, SUBMIT, Move
from .store import RecoveredRequest, RequestRecord

SIGNING_BUCKETS = (0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.5, 5.0, 10.0)
"""The online step is one PartialSign round trip and a combine: milliseconds (docs/performance.md)."""
REQUEST_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 1800, 3600, 14400, 43200, 86400, 259200)
"""Automatic requests end in milliseconds, approved ones after minutes to days (the TTL: a day)."""
APPROVAL_BUCKETS = (5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 28800, 86400, 259200)
"""Officers answer in seconds to hours."""
SIGN_PHASE = "sign"
"""The phase of an abort while partial signatures are produced or combined (sessions: their protocol)."""
PHASES = (*PROTOCOLS, SIGN_PHASE)


class Instruments:
    """tss_coordinator_* histograms and counters of one coordinator process."""

    def __init__(self, parties: Iterable[int] = ()) -> None:
        self.signing = Histogram(
            "tss_coordinator_signing_seconds",
            "online signing: PartialSign to the signers of a presignature, to the verified combined signature",
            buckets=SIGNING_BUCKETS,
            registry=None,
        )
        self.request = Histogram(
            "tss_coordinator_request_seconds",
            "submission to a final state, by kind and final state",
            ["kind", "state"],
            buckets=REQUEST_BUCKETS,
            registry=None,
        )
        self.approval_wait = Histogram(
            "tss_coordinator_approval_wait_seconds",
            "submission (the request waits in pending_approval from then) to approved, by kind",
            ["kind"],
            buckets=APPROVAL_BUCKETS,
            registry=None,
        )

        self.submitted = Counter(
            "tss_coordinator_requests_submitted",
            "requests created (an idempotent resubmission creates none), by kind",
            ["kind"],
            registry=None,
        )
        self.refusals = Counter(
            "tss_coordinator_policy_refusals",
            "requests the coordinator's policy refused (blocked, or no policy installed), by the engine's reason",
            ["reason"],
            registry=None,
        )
        self.aborts = Counter(
            "tss_coordinator_protocol_aborts",
            "sessions and signing attempts aborted with proven blame: one per blamed party (0: the relay) and phase",
            ["party", "phase"],
            registry=None,
        )

        # Each (party, phase) exported from the start at 0: `rate`/`increase` see the first abort
        # (a series born at 1 shows no increase). Party 0 is the relay.
        for party in (0, *parties):
            for phase in PHASES:
                self.aborts.labels(str(party), phase)

    def collect(self) -> Iterator[Metric]:
        """Every family, for the scrape (metrics.py)."""
        for m in (self.signing, self.request, self.approval_wait, self.submitted, self.refusals, self.aborts):
            yield from m.collect()

    def moved(self, move: Move, row: RequestRecord, source: str) -> None:
        """A committed move of `row` (its record after the move) from `source`."""
        if move is SUBMIT:
            self.submitted.labels(row.kind).inc()
        if move is BLOCK:
            self.refusals.labels(row.policy_reason or "blocked").inc()
        if move is APPROVE and source == PENDING_APPROVAL:
            self.approval_wait.labels(row.kind).observe(max(0.0, row.updated_at - row.created_at))
        if move.target in FINAL_STATES:
            self.request.labels(row.kind, move.target).observe(max(0.0, row.updated_at - row.created_at))

    def recovered(self, moved: Iterable[RecoveredRequest], now: float) -> None:
        """Requests a committed recovery failed."""
        for req in moved:
            self.request.labels(req.kind, "failed").observe(max(0.0, now - req.created_at))

    def aborted(self, phase: str, blames: Sequence[Blame]) -> None:
        """One abort of `phase` (a session's protocol, or `sign`): once per party it proves at fault
        (a missing message or an unsettled accusation proves nothing: not counted)."""
        for party in sorted({b.party for b in blames if b.proven}):
            self.aborts.labels(str(party), phase).inc()
