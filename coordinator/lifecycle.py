"""The policy side of a request's life: what the policy allows now, and the moves that follow.

    submitted -> pending_approval -> approved -> time_locked -> signing -> signed
    exits: rejected (an officer's signed veto), blocked (the policy, a freeze at submission, an
    undecodable body: final, with the engine's reason), expired, failed (with blame).

`advance` evaluates a request that is not final with the coordinator's copy of the registry,
policy, freeze state and ledger (the same library the signers run) and moves it as far as it may
go now: to `pending_approval` (quorum not met), `approved`, `time_locked` (until the officers'
quorum time plus the rule's lock), or on to signing through the `sign` callback. A request approved
while signing is frozen stays `approved` (policy_reason `frozen`) until an unfreeze; the scheduler
(`release_due`) expires requests, blocks those made under a replaced policy version and signs
what a time lock or an unfreeze releases. Every move names the state it starts from, so threads
racing on one request agree on who moves it; each is a durable row, an event and an audit entry
committed together.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

import structlog

from signer.policy import (
    Approval,
    Intent,
    OfficerRegistry,
    PolicyError,
    describe_expr,
    evaluate,
    verify_approval,
)
from signer.tss.encoding import encode

from .audit import APPROVAL, REQUEST
from .errors import AlreadyExists, FailedPrecondition, NotFound, ServiceError, refused
from .governance import Governance, NoPolicy
from .signer_client import Release
from .store import (
    APPROVED,
    BLOCKED,
    EXPIRED,
    FAILED,
    OPEN_STATES,
    PENDING_APPROVAL,
    REJECTED,
    SIGNING,
    SUBMITTED,
    TIME_LOCKED,
    DuplicateApproval,
    InvalidTransition,
    RequestRecord,
    Store,
)
from .store import NotFound as StoreNotFound
from .trail import AuditTrail

log = structlog.get_logger("coordinator")
DEFAULT_REQUEST_TTL = 24 * 3600
MAX_REQUEST_TTL = 30 * 24 * 3600
REJECT_TAG = "reject/v1"
_AUDITED_FIELDS = frozenset(
    {"policy_reason", "rule_id", "time_lock_until", "error", "error_code", "blame", "tx_hash", "digest", "presig_id"}
)


def reject_message(request_id: str, intent_digest: bytes) -> bytes:
    """What an officer signs (Ed25519) to reject a request: encode("reject/v1", request_id, digest)."""
    return encode(REJECT_TAG, request_id, intent_digest)


def in_flight(row: RequestRecord) -> bool:
    """Being evaluated or signed right now (an approved request moves on at once unless a freeze holds it)."""
    return row.state in (SUBMITTED, SIGNING) or (row.state == APPROVED and row.policy_reason != "frozen")


Sign = Callable[[RequestRecord, Release, str], RequestRecord]
"""Claims an approved or released request for signing (from the state it is in) and signs it."""


class Lifecycle:
    """Moves requests through the lifecycle; signing itself is the `sign` callback (the service's)."""

    def __init__(
        self,
        store: Store,
        governance: Governance,
        trail: AuditTrail,
        notify: Callable[[str, bool], None],
        sign: Sign,
    ) -> None:
        self.store = store
        self.governance = governance
        self.trail = trail
        self._notify_watchers = notify
        self._sign = sign

    def _now(self) -> int:
        return int(self.store.now())

    def _get(self, request_id: str) -> RequestRecord:
        try:
            return self.store.get_request(request_id)
        except StoreNotFound as exc:
            raise NotFound(str(exc)) from None

    def _notify(self, request_id: str, final: bool = False) -> None:
        self._notify_watchers(request_id, final)

    def transition(
        self,
        request_id: str,
        state: str,
        detail: str = "",
        *,
        expect: Collection[str] = (),
        actor: str = "coordinator",
        evidence: Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> RequestRecord:
        """Move a request (durable row + event + audit entry, in one transaction); wake its watchers.
        `evidence` is audited only (e.g. the officer's signature on a rejection)."""
        audited = {k: v for k, v in fields.items() if k in _AUDITED_FIELDS and v not in ("", (), None)}
        note = self.trail.note(REQUEST, state, request_id, actor, detail=detail, **audited, **(evidence or {}))
        row = self.store.transition(request_id, state, detail, expect=expect, audit=note, **fields)
        self._notify(request_id, final=row.final)
        return row

    def fail(self, request_id: str, error: ServiceError) -> RequestRecord:
        log.warning(
            "request_failed",
            request_id=request_id,
            code=error.code,
            error=error.message,
            culprits=sorted({b.party for b in error.blames}),
        )
        return self.transition(
            request_id, FAILED, error.message, error=error.message, error_code=error.code, blame=error.blames
        )

    def block(self, row: RequestRecord, reason: str, rule_id: str = "", detail: str = "") -> RequestRecord:
        log.info("request_blocked", request_id=row.request_id, reason=reason, rule_id=rule_id)
        return self.transition(
            row.request_id,
            BLOCKED,
            detail or f"blocked: {reason}" + (f" (rule {rule_id})" if rule_id else ""),
            expect=(row.state,),
            policy_reason=reason,
            rule_id=rule_id,
            error=f"blocked by policy: {reason}",
        )

    def advance(self, request_id: str) -> RequestRecord:
        """Evaluate a request that is not final and move it as far as the policy allows now.

        Safe to call from several threads: every move names the state it starts from, and a
        thread that loses the race returns the request as the winner left it.
        """
        try:
            return self._advance_once(request_id)
        except InvalidTransition:
            return self.store.get_request(request_id)

    def _advance_once(self, request_id: str) -> RequestRecord:
        row = self.store.get_request(request_id)
        if row.final or row.state == SIGNING:
            return row
        now = self._now()
        if now >= row.expires_at:
            return self.transition(
                request_id, EXPIRED, "not signed before it expired", expect=(row.state,), policy_reason="expired"
            )
        try:
            registry, policy = self.governance.require(now)
        except NoPolicy:
            return self.block(row, "no_policy")
        intent = Intent.from_bytes(row.intent)
        frozen = self.governance.freeze_state().is_frozen(row.key_id)
        if row.state == SUBMITTED and frozen:
            return self.block(row, "frozen", detail="signing is frozen")
        valid = self._valid_approvals(row, registry, intent, now)
        decision = evaluate(
            policy,
            registry,
            intent,
            {a.officer_id: a.signed_at for a, _ in valid},
            self.governance.ledger(policy, now),
            now,
            row.initiator,
            kind=row.kind,
        )
        if decision.action == "block":
            return self.block(row, decision.reason, decision.rule_id, decision.detail)
        if not decision.satisfied:
            if row.state == SUBMITTED:
                need = describe_expr(decision.required) if decision.required is not None else "approvals"
                return self.transition(
                    request_id,
                    PENDING_APPROVAL,
                    f"needs {need} (rule {decision.rule_id})",
                    expect=(SUBMITTED,),
                    policy_reason=decision.reason,
                    rule_id=decision.rule_id,
                )
            if row.state == PENDING_APPROVAL:
                return row
            # Approved before, but the approvals no longer meet the policy (expired, officer removed).
            return self.block(row, decision.reason, decision.rule_id)
        if row.state in (SUBMITTED, PENDING_APPROVAL):
            who = ", ".join(sorted(a.officer_id for a, _ in valid))
            row = self.transition(
                request_id,
                APPROVED,
                f"allowed by rule {decision.rule_id}"
                if decision.action == "allow"
                else f"approved by {who} (rule {decision.rule_id})",
                expect=(row.state,),
                policy_reason="frozen" if frozen else decision.reason,
                rule_id=decision.rule_id,
                time_lock_until=decision.time_lock_until,
            )
        if now < decision.time_lock_until:
            if row.state == APPROVED:
                row = self.transition(
                    request_id,
                    TIME_LOCKED,
                    f"time lock until {decision.time_lock_until}",
                    expect=(APPROVED,),
                    policy_reason="time_locked",
                    time_lock_until=decision.time_lock_until,
                )
            return row
        if frozen:
            return row  # held; the scheduler releases it once unfrozen
        release = Release(
            request_id=request_id,
            approvals=tuple(raw for _, raw in valid),
            initiator=row.initiator,
            expires_at=row.expires_at,
            path=row.path,
            policy_hash=row.policy_hash,
            kind=row.kind,
        )
        return self._sign(row, release, decision.reason)

    def _valid_approvals(
        self, row: RequestRecord, registry: OfficerRegistry, intent: Intent, now: int
    ) -> list[tuple[Approval, bytes]]:
        """The recorded approvals that still verify now (an officer removed or an approval expired
        since drops out: the signers would refuse the whole set otherwise)."""
        out: list[tuple[Approval, bytes]] = []
        for stored in self.store.approvals(row.request_id):
            try:
                a = Approval.from_bytes(stored.approval)
                verify_approval(registry, intent, a, now, row.initiator)
            except PolicyError as exc:
                log.info("approval_dropped", request_id=row.request_id, officer_id=stored.officer_id, reason=exc.reason)
                continue
            out.append((a, stored.approval))
        return out

    def approve(self, request_id: str, approval: bytes, *, officer: str) -> RequestRecord:
        """Record an officer's approval (`Approval.to_bytes()`) presented by `officer` (its
        certificate name, which must be the approving officer) and move the request forward.

        Refused: malformed or for another intent (INVALID_ARGUMENT); a bad signature, an unknown,
        removed or non-officer id, the initiator, someone else's approval (PERMISSION_DENIED);
        expired (FAILED_PRECONDITION); a second, different approval by the same officer
        (ALREADY_EXISTS). The same approval twice is a no-op.
        """
        try:
            parsed = Approval.from_bytes(approval)
        except PolicyError as exc:
            raise refused(exc) from None
        row = self._get(request_id)
        now = self._now()
        try:
            if parsed.officer_id != officer:
                raise PolicyError("officer_mismatch", f"approval by {parsed.officer_id} presented by {officer}")
            if row.state != PENDING_APPROVAL:
                if any(a.approval == approval for a in self.store.approvals(request_id)):
                    return row
                raise FailedPrecondition(f"request {request_id} is {row.state}, not {PENDING_APPROVAL}")
            registry, _ = self.governance.require(now)
            verify_approval(registry, Intent.from_bytes(row.intent), parsed, now, row.initiator)
            recorded = self.store.add_approval(
                request_id,
                parsed.officer_id,
                approval,
                parsed.signed_at,
                parsed.expires_at,
                f"approved by {parsed.officer_id}",
                audit=self.trail.note(
                    APPROVAL,
                    "approval",
                    request_id,
                    officer,
                    officer_id=parsed.officer_id,
                    intent_digest=parsed.intent_digest,
                    signed_at=parsed.signed_at,
                    expires_at=parsed.expires_at,
                    batch_root=b"" if parsed.batch is None else parsed.batch.root,
                    approval=approval,
                ),
            )
        except PolicyError as exc:
            self.trail.record(
                APPROVAL,
                "approval_refused",
                request_id,
                officer,
                officer_id=parsed.officer_id,
                reason=exc.reason,
                detail=exc.detail,
                approval=approval,
            )
            log.warning("approval_refused", request_id=request_id, officer_id=parsed.officer_id, reason=exc.reason)
            raise refused(exc) from None
        except NoPolicy as exc:
            raise FailedPrecondition(str(exc)) from None
        except DuplicateApproval as exc:
            self.trail.record(
                APPROVAL,
                "approval_refused",
                request_id,
                officer,
                officer_id=parsed.officer_id,
                reason="duplicate_officer",
                approval=approval,
            )
            raise AlreadyExists(f"duplicate_officer: {exc}") from None
        except InvalidTransition as exc:
            raise FailedPrecondition(str(exc)) from None
        if recorded:
            self._notify(request_id)
            log.info("approval_recorded", request_id=request_id, officer_id=parsed.officer_id)
        return self.advance(request_id)

    def reject(self, request_id: str, officer_id: str, signature: bytes, reason: str, *, officer: str) -> RequestRecord:
        """End a request that is not yet signing: `officer_id` (= the caller `officer`) signed
        `reject_message(request_id, intent digest)` with its registered key."""
        row = self._get(request_id)
        now = self._now()
        try:
            if officer_id != officer:
                raise PolicyError("officer_mismatch", f"rejection by {officer_id} presented by {officer}")
            registry, _ = self.governance.require(now)
            who = registry.lookup(officer_id)
            if "officer" not in who.roles:
                raise PolicyError("not_an_officer", officer_id)
            if not who.verify(signature, reject_message(request_id, row.intent_digest)):
                raise PolicyError("bad_signature", officer_id)
        except PolicyError as exc:
            self.trail.record(REQUEST, "reject_refused", request_id, officer, officer_id=officer_id, reason=exc.reason)
            raise refused(exc) from None
        except NoPolicy as exc:
            raise FailedPrecondition(str(exc)) from None
        if row.state not in OPEN_STATES:
            raise FailedPrecondition(f"request {request_id} is {row.state}; only an unsigned, open request is rejected")
        text = reason[:500]
        try:
            out = self.transition(
                request_id,
                REJECTED,
                f"rejected by {officer_id}" + (f": {text}" if text else ""),
                expect=OPEN_STATES,
                actor=officer,
                policy_reason="rejected",
                error=f"rejected by {officer_id}" + (f": {text}" if text else ""),
                evidence={"officer_id": officer_id, "signature": signature},
            )
        except InvalidTransition as exc:
            raise FailedPrecondition(str(exc)) from None
        log.info("request_rejected", request_id=request_id, officer_id=officer_id)
        return out

    def release_due(self, now: int, stop: Callable[[], bool] = lambda: False) -> None:
        """The scheduler's pass over open requests: expire the stale, block those under a replaced
        policy, sign what a time lock or a lifted freeze releases."""
        policy = self.governance.policy(now)
        frozen = self.governance.freeze_state()
        for row in self.store.open_requests():
            if stop():
                return
            due = (
                now >= row.expires_at
                or policy is None
                or row.policy_hash != policy.hash()
                or (row.state == APPROVED and not frozen.is_frozen(row.key_id))
                or (row.state == TIME_LOCKED and now >= row.time_lock_until and not frozen.is_frozen(row.key_id))
            )
            if due:
                try:
                    self.advance(row.request_id)
                except Exception:  # background work: one bad request must not stop the others
                    log.exception("scheduler_request_failed", request_id=row.request_id)
