"""Officers' decisions on a request: a signed approval of its intent digest, or a signed veto.

Each is verified against the registry in force (the approving officer presents it itself, is an
officer, is not the initiator, has not approved twice; the approval has not expired), refusals
are audited, and an accepted decision is handed to the lifecycle as a move.
"""

from __future__ import annotations

import structlog

from signer.policy import Approval, PolicyError, verify_approval

from .audit import APPROVAL, REQUEST
from .btc_request import intent_of_row
from .errors import ApprovalRefused, DuplicateDecision, FailedPrecondition, RejectionRefused, refused
from .governance import NoPolicy
from .lifecycle import Lifecycle
from .request_states import OPEN_STATES, PENDING_APPROVAL, reject_message
from .store import DuplicateApproval, InvalidTransition, RequestRecord

log = structlog.get_logger("coordinator")


class OfficerDecisions:
    """Verifies approvals and vetoes; the lifecycle records them and moves the request."""

    def __init__(self, lifecycle: Lifecycle) -> None:
        self.lifecycle = lifecycle
        self.store = lifecycle.store
        self.governance = lifecycle.governance
        self.trail = lifecycle.trail

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
            raise refused(exc, ApprovalRefused) from None
        row = self.lifecycle.get(request_id)
        now = int(self.store.now())
        try:
            if parsed.officer_id != officer:
                raise PolicyError("officer_mismatch", f"approval by {parsed.officer_id} presented by {officer}")
            if row.state != PENDING_APPROVAL:
                if any(a.approval == approval for a in self.store.approvals(request_id)):
                    return row
                raise FailedPrecondition(f"request {request_id} is {row.state}, not {PENDING_APPROVAL}")
            registry, _ = self.governance.require(now)
            verify_approval(registry, intent_of_row(row), parsed, now, row.initiator)
            self.lifecycle.record_approval(row, parsed, approval, officer)
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
            raise refused(exc, ApprovalRefused) from None
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
            raise DuplicateDecision(f"duplicate_officer: {exc}") from None
        except InvalidTransition as exc:
            raise FailedPrecondition(str(exc)) from None
        return self.lifecycle.advance(request_id)

    def reject(self, request_id: str, officer_id: str, signature: bytes, reason: str, *, officer: str) -> RequestRecord:
        """End a request that is not yet signing: `officer_id` (= the caller `officer`) signed
        `reject_message(request_id, intent digest)` with its registered key."""
        row = self.lifecycle.get(request_id)
        now = int(self.store.now())
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
            raise refused(exc, RejectionRefused) from None
        except NoPolicy as exc:
            raise FailedPrecondition(str(exc)) from None
        if row.state not in OPEN_STATES:
            raise FailedPrecondition(f"request {request_id} is {row.state}; only an unsigned, open request is rejected")
        try:
            return self.lifecycle.reject(request_id, officer_id, signature, reason[:500], actor=officer)
        except InvalidTransition as exc:
            raise FailedPrecondition(str(exc)) from None
