"""The scheduler: a background pass that moves time-driven work forward.

Each `tick` promotes governance changes whose time lock ran out, brings lagging signers up to date,
delivers refreshed epochs still being committed to the signers that missed them, refreshes the keys
the policy's `key_operations.refresh_every` says are due (key_refresh.py, actor `scheduler`), then lets the
lifecycle expire stale requests, block those under a replaced policy and sign what a time lock or
a lifted freeze releases, and re-verifies the next batch of the audit log (audit/scrub.py). The
first tick after a start evaluates every open request once, so a crash between two commits of a
request's life (an approval that met the quorum, the move it allows) never leaves it waiting.
`wake` runs a pass at once (after a governance change).
"""

from __future__ import annotations

import threading

import structlog

from .audit import POLICY
from .audit.scrub import AuditScrub
from .governance_admin import GovernanceAdmin
from .key_refresh import KeyRefresh
from .lifecycle import Lifecycle
from .signer_health import SignerHealth
from .store import Store

log = structlog.get_logger("coordinator")


class Scheduler:
    """`interval` > 0 runs `tick` in a thread that often (0: call `tick` yourself, as tests with an
    injected clock do)."""

    def __init__(
        self,
        store: Store,
        admin: GovernanceAdmin,
        lifecycle: Lifecycle,
        health: SignerHealth,
        *,
        interval: float,
        key_refresh: KeyRefresh | None = None,
        audit_scrub: AuditScrub | None = None,
    ) -> None:
        self.store = store
        self.audit_scrub = audit_scrub
        self.key_refresh = key_refresh
        self.admin = admin
        self.lifecycle = lifecycle
        self.health = health
        self.interval = interval
        self._wake = threading.Event()
        self._started = False  # the first pass re-evaluates every open request (Lifecycle.release_due)
        self._closed = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the background thread (if `interval` > 0)."""
        if self.interval > 0:
            self._thread = threading.Thread(target=self._loop, name="scheduler", daemon=True)
            self._thread.start()

    def wake(self) -> None:
        """Run the next pass now."""
        self._wake.set()

    def stop(self) -> None:
        """Ask the thread to stop (a pass in progress stops between requests)."""
        self._closed = True
        self._wake.set()

    def join(self) -> None:
        """Wait for the thread after `stop`."""
        if self._thread is not None:
            self._thread.join(timeout=60)

    def tick(self) -> None:
        """One pass: promote governance changes whose time lock ran out, bring lagging signers up to
        date, expire stale requests, block those under a replaced policy, sign what a time lock or a
        lifted freeze releases."""
        now = int(self.store.now())
        governance, trail = self.admin.governance, self.admin.trail
        for kind, version, _ in governance.advance(
            now, lambda k, v, h: trail.note(POLICY, "change_effective", k, version=v, hash=h)
        ):
            log.info("governance_effective", kind=kind, version=version)
        self.admin.sync_signers(self.health.live)
        if self.key_refresh is not None:
            self.key_refresh.retry_commits()
            policy = governance.policy(now)
            if policy is not None and policy.key_operations.refresh_every:
                self.key_refresh.refresh_due(policy.key_operations.refresh_every)
        self.lifecycle.release_due(now, stop=lambda: self._closed, all_open=not self._started)
        self._started = True
        if self.audit_scrub is not None:
            self.audit_scrub.step()  # a bounded batch of the audit log checked again

    def _loop(self) -> None:
        while not self._closed:
            self._wake.wait(self.interval)
            self._wake.clear()
            if self._closed:
                return
            try:
                self.tick()
            except Exception:  # background work: log and carry on
                log.exception("scheduler_tick_failed")
