"""What the coordinator's copy of the policy allows for a request now (no moves, no writes).

`assess` evaluates a request that is not final with the registry, policy, freeze state and ledger
the coordinator holds (the same library the signers run) and the approvals that still verify now.
The lifecycle turns the answer into moves.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from signer.policy import Approval, Decision, Intent, OfficerRegistry, PolicyError, evaluate, verify_approval

from .governance import Governance, NoPolicy
from .request_states import SUBMITTED
from .store import RequestRecord, Store

log = structlog.get_logger("coordinator")


@dataclass(frozen=True, slots=True)
class Blocked:
    """The policy (or a freeze at submission, or a cold sweep to a warm address) refuses the request."""

    reason: str
    rule_id: str = ""
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Assessment:
    """The policy's decision (not a block) over the approvals that still verify."""

    decision: Decision
    intent: Intent
    approvals: tuple[tuple[Approval, bytes], ...]  # (parsed, as the officer signed it)
    frozen: bool


class RequestPolicy:
    """Assesses requests against the governance in force."""

    def __init__(self, store: Store, governance: Governance) -> None:
        self.store = store
        self.governance = governance

    def assess(self, row: RequestRecord, now: int, intent: Intent | None = None) -> Blocked | Assessment:
        """The policy's answer for `row` at `now` (`intent`: the row's, if the caller holds it decoded)."""
        try:
            registry, policy = self.governance.require(now)
        except NoPolicy:
            return Blocked("no_policy")
        if intent is None:
            intent = Intent.from_bytes(row.intent)
        frozen = self.governance.freeze_state().is_frozen(row.key_id)
        if row.state == SUBMITTED and frozen:
            return Blocked("frozen", detail="signing is frozen")
        valid = self.valid_approvals(row, registry, intent, now)
        decision = evaluate(
            policy,
            registry,
            intent,
            {a.officer_id: a.signed_at for a, _ in valid},
            self.governance.ledger(),
            now,
            row.initiator,
            kind=row.kind,
        )
        if decision.action == "block":
            return Blocked(decision.reason, decision.rule_id, decision.detail)
        return Assessment(decision, intent, tuple(valid), frozen)

    def valid_approvals(
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
