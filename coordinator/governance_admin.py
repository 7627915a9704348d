"""The audited front of governance: admin-quorum changes, freeze orders and signer catch-up.

`Governance` (governance.py) validates and installs; this module turns its outcomes into audit
entries, log lines and service errors, and brings lagging or restored signers up to date from the
governance log.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import structlog

from signer.policy import FreezeOrder, PolicyError, UnfreezeOrder

from .audit import FREEZE, POLICY
from .errors import FailedPrecondition, refused
from .governance import Delivery, Governance, GovernanceView, NoPolicy, PreparedChange, SignersRefused
from .signer_health import SignerHealth
from .store import AuditHook, Store
from .trail import AuditTrail

log = structlog.get_logger("coordinator")


class GovernanceAdmin:
    """Changes, freeze orders and signer sync; `wake` nudges the scheduler after a change."""

    def __init__(
        self,
        store: Store,
        governance: Governance,
        trail: AuditTrail,
        health: SignerHealth,
        wake: Callable[[], None],
    ) -> None:
        self.store = store
        self.governance = governance
        self.trail = trail
        self.health = health
        self._wake = wake
        self._sync_refusals: set[tuple[int, int]] = set()

    def _now(self) -> int:
        return int(self.store.now())

    def view(self) -> GovernanceView:
        """The registry and policy in force, pending loosenings, frozen scopes."""
        return self.governance.view(self._now())

    def propose_change(self, kind: str, change_json: str, *, admin: str = "") -> GovernanceView:
        """Apply an admin-quorum-signed change (`PolicyChange.to_json()`, kind `registry` or
        `policy`): validated here, installed on every signer, then stored. Tightening takes effect
        at once, loosening after the old document's `change_delay` (see GetGovernance's pending).
        The first registry / policy is a genesis change (the signers pin its admins)."""
        now = self._now()
        actor = admin or "coordinator"

        def note(prepared: PreparedChange, delivery: Delivery) -> AuditHook:
            return self.trail.note(
                POLICY,
                "change_applied" if prepared.tightening else "change_pending",
                kind,
                actor,
                version=prepared.version,
                hash=prepared.document_hash,
                tightening=prepared.tightening,
                effective_at=prepared.effective_at,
                change=change_json,
                **_delivered(delivery),
            )

        try:
            prepared, delivery = self.governance.propose(kind, change_json, now, note)
        except PolicyError as exc:
            self.trail.record(
                POLICY, "change_refused", kind, actor, reason=exc.reason, detail=exc.detail, change=change_json
            )
            raise refused(exc) from None
        except NoPolicy as exc:
            raise FailedPrecondition(str(exc)) from None
        except SignersRefused as exc:
            self.trail.record(
                POLICY,
                "change_refused",
                kind,
                actor,
                signers=exc.refusals,
                installed_on=exc.accepted,
                change=change_json,
            )
            log.error("governance_refused_by_signers", kind=kind, refusals=exc.refusals, installed_on=exc.accepted)
            raise FailedPrecondition(f"signers refused the {kind} change: {exc}") from None
        log.info(
            "governance_change",
            kind=kind,
            version=prepared.version,
            tightening=prepared.tightening,
            effective_at=prepared.effective_at,
            pending_signers=list(delivery.pending),
        )
        self._wake()  # open requests under another policy version get blocked by the scheduler
        return self.governance.view(now)

    def freeze(self, order: bytes, *, officer: str) -> GovernanceView:
        """Apply a freeze order (`FreezeOrder.to_bytes()`, signed by `officer` itself) here at
        once and on every signer. Nothing of the scope is signed until an unfreeze."""
        now = self._now()
        try:
            parsed = FreezeOrder.from_bytes(order)
            if parsed.officer_id != officer:
                raise PolicyError("officer_mismatch", f"order by {parsed.officer_id} presented by {officer}")
            delivery = self.governance.freeze(
                parsed,
                now,
                lambda d: self.trail.note(
                    FREEZE,
                    "freeze",
                    parsed.scope,
                    officer,
                    officer_id=parsed.officer_id,
                    issued_at=parsed.issued_at,
                    order=order,
                    **_delivered(d),
                ),
            )
        except PolicyError as exc:
            self.trail.record(FREEZE, "freeze_refused", "", officer, reason=exc.reason, detail=exc.detail, order=order)
            raise refused(exc) from None
        except NoPolicy as exc:
            raise FailedPrecondition(str(exc)) from None
        log.warning("frozen", scope=parsed.scope, officer_id=parsed.officer_id, refusals=delivery.refusals)
        return self.governance.view(now)

    def unfreeze(self, order: bytes, *, officer: str = "") -> GovernanceView:
        """Lift a freeze with an `UnfreezeOrder` signed by the policy's `unfreeze_quorum` of
        officers (any officer may deliver it); held requests are released by the scheduler."""
        now = self._now()
        actor = officer or "coordinator"
        try:
            parsed = UnfreezeOrder.from_bytes(order)
            signed_by = sorted(e.signer_id for e in parsed.signatures)
            self.governance.unfreeze(
                parsed,
                now,
                lambda d: self.trail.note(
                    FREEZE,
                    "unfreeze",
                    parsed.scope,
                    actor,
                    lifts=parsed.lifts,
                    issued_at=parsed.issued_at,
                    signed_by=signed_by,
                    order=order,
                    **_delivered(d),
                ),
            )
        except PolicyError as exc:
            self.trail.record(FREEZE, "unfreeze_refused", "", actor, reason=exc.reason, detail=exc.detail, order=order)
            raise refused(exc) from None
        except NoPolicy as exc:
            raise FailedPrecondition(str(exc)) from None
        except SignersRefused as exc:
            self.trail.record(
                FREEZE, "unfreeze_refused", parsed.scope, actor, signers=exc.refusals, installed_on=exc.accepted
            )
            raise FailedPrecondition(f"signers refused the unfreeze: {exc}") from None
        log.warning("unfrozen", scope=parsed.scope, signed_by=signed_by)
        self._wake()
        return self.governance.view(now)

    def sync_signers(self, reachable: Callable[[Sequence[int]], list[int]]) -> None:
        """Bring lagging signers up to date from the governance log, audited."""
        for sync in self.governance.sync(reachable):
            if sync.outcome in ("ok", "held"):
                log.info("governance_synced", party=sync.party, seq=sync.seq, kind=sync.kind, outcome=sync.outcome)
                event = "freeze_synced" if sync.kind in ("freeze", "unfreeze") else "change_synced"
                self.trail.record(
                    FREEZE if sync.kind in ("freeze", "unfreeze") else POLICY,
                    event,
                    f"signer-{sync.party}",
                    party=sync.party,
                    log_seq=sync.seq,
                    outcome=sync.outcome,
                )
            elif (sync.party, sync.seq) not in self._sync_refusals:
                self._sync_refusals.add((sync.party, sync.seq))
                log.error("governance_sync_refused", party=sync.party, seq=sync.seq, error=sync.outcome)
                self.trail.record(
                    FREEZE if sync.kind in ("freeze", "unfreeze") else POLICY,
                    "sync_refused",
                    f"signer-{sync.party}",
                    party=sync.party,
                    log_seq=sync.seq,
                    error=sync.outcome,
                )

    def resync(self, parties: set[int]) -> None:
        """Signers whose governance state is behind (a restore): send them the whole log again now."""
        if not parties:
            return
        for p in sorted(parties):
            n = self.store.unack_governance(p)
            log.warning("signer_state_behind_resync", party=p, entries=n)
        self.sync_signers(lambda ps: [p for p in self.health.live(ps) if p in parties])


def _delivered(d: Delivery) -> dict[str, Any]:
    out: dict[str, Any] = {"log_seq": d.seq, "signers": d.installed}
    if d.pending:
        out["signers_pending"] = d.pending
    if d.refusals:
        out["signers_refused"] = d.refusals
    return out
