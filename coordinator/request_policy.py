"""What the coordinator's copy of the policy allows for a request now (no moves, no writes).

`assess` evaluates a request that is not final with the registry, policy, freeze state and ledger
the coordinator holds (the same library the signers run) and the approvals that still verify now.
The lifecycle turns the answer into moves.

One side effect: a request about to be signed that would take its key's outflow past a circuit
breaker (signer/policy/breaker.py, at the full threshold: the coordinator sees every release)
trips it. The request is blocked as `breaker_tripped:<rule id>` and the key's scope frozen in the
coordinator's freeze state, with a `breaker_tripped` audit entry naming the rule and the figures,
in one transaction; the officers' unfreeze quorum lifts it. Signers trip on their own. A request
the policy blocks counts toward the `refusals` breakers (in this process's memory), and the one
past a threshold trips them the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import structlog

from signer.policy import (
    PROTOCOL_ABORT,
    Approval,
    Decision,
    Intent,
    OfficerRegistry,
    PolicyError,
    RefusalCounter,
    Trip,
    check_policy_breakers,
    evaluate,
    verify_approval,
)
from signer.policy.btc_intent import SpendIntent
from signer.policy.btc_policy import evaluate_spend, spend_breaker_trip
from signer.policy.message_intent import MessageIntent, check_message

from .audit import FREEZE
from .btc_request import AnyIntent, intent_of_row
from .funds import AWAITING_FUNDS
from .governance import Governance, NoPolicy
from .request_states import SUBMITTED
from .store import RequestRecord, Store
from .trail import AuditTrail

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
    intent: AnyIntent
    approvals: tuple[tuple[Approval, bytes], ...]  # (parsed, as the officer signed it)
    frozen: bool
    awaiting: str = ""
    """Why the request waits for its hot wallet's funds (funds.py), "" when it need not."""

    @property
    def hold_reason(self) -> str:
        """Why an allowed request is held in `approved` ("" when it is not): a freeze, or funds."""
        return "frozen" if self.frozen else AWAITING_FUNDS if self.awaiting else ""


class RequestPolicy:
    """Assesses requests against the governance in force."""

    def __init__(self, store: Store, governance: Governance, trail: AuditTrail) -> None:
        self.store = store
        self.governance = governance
        self.trail = trail
        self.refusals = RefusalCounter()
        # Whether an allowed withdrawal waits for its hot wallet's funds (set by the service: funds.py).
        self.funds: Callable[[RequestRecord, Intent, int], str] | None = None

    def assess(self, row: RequestRecord, now: int, intent: AnyIntent | None = None) -> Blocked | Assessment:
        """The policy's answer for `row` at `now` (`intent`: the row's, if the caller holds it decoded;
        a Bitcoin spend's is judged payout by payout, `evaluate_spend`)."""
        try:
            registry, policy = self.governance.require(now)
        except NoPolicy:
            return Blocked("no_policy")
        if intent is None:
            intent = intent_of_row(row)
        freeze = self.governance.freeze_state()
        frozen = freeze.is_frozen(row.key_id)
        if row.state == SUBMITTED and frozen:
            return Blocked("frozen", detail="signing is frozen")
        valid = self.valid_approvals(row, registry, intent, now)
        approved, ledger = {a.officer_id: a.signed_at for a, _ in valid}, self.governance.ledger()
        if isinstance(intent, MessageIntent):  # the policy's `messages` rules; no amount, no limits
            decision = check_message(policy, registry, intent, approved, now, row.initiator)
        elif isinstance(intent, SpendIntent):
            decision = evaluate_spend(policy, registry, intent, approved, ledger, now, row.initiator, kind=row.kind)
        else:
            decision = evaluate(policy, registry, intent, approved, ledger, now, row.initiator, kind=row.kind)
        reset_at = freeze.reset_at(row.key_id)
        if decision.action == "block":
            if not frozen:
                counted = self.refusals.note(policy.breakers, row.key_id, decision.reason, now=now, reset_at=reset_at)
                if counted is not None:
                    self._trip(row, counted, now)
            return Blocked(decision.reason, decision.rule_id, decision.detail)
        if decision.may_sign(now) and not frozen and not isinstance(intent, MessageIntent):
            trip = (
                spend_breaker_trip(policy, ledger, intent, now=now, reset_at=reset_at)
                if isinstance(intent, SpendIntent)
                else check_policy_breakers(policy, ledger, intent, now=now, reset_at=reset_at)
            )
            if trip is not None:
                self._trip(row, trip, now)
                return Blocked(trip.reason, trip.rule_id, trip.detail())
        awaiting = ""
        # Hot-wallet funds are tracked for EVM native coins only (funds.py); a spend's coins are its inputs.
        if self.funds is not None and isinstance(intent, Intent) and decision.may_sign(now) and not frozen:
            awaiting = self.funds(row, intent, now)
        return Assessment(decision, intent, tuple(valid), frozen, awaiting)

    def _trip(self, row: RequestRecord, trip: Trip, now: int) -> None:
        self._trip_key(row.key_id, row.request_id, trip, now)

    def _trip_key(self, key_id: str, request_id: str, trip: Trip, now: int) -> None:
        """Freeze the key a breaker tripped on, with its audit entry (which rule, which figures)."""
        note = self.trail.note(FREEZE, "breaker_tripped", key_id, request_id=request_id, **trip.figures())
        self.governance.trip_breaker(trip, now, note)
        log.warning("breaker_tripped", request_id=request_id, **trip.figures())

    def note_abort(self, key_id: str, request_id: str = "") -> None:
        """Count a protocol abort naming a culprit in one of the key's sessions or signatures; an
        `aborts` breaker past its count freezes the key."""
        now = int(self.store.now())
        policy = self.governance.policy(now)
        freeze = self.governance.freeze_state()
        if policy is None or freeze.is_frozen(key_id):
            return
        trip = self.refusals.note(policy.breakers, key_id, PROTOCOL_ABORT, now=now, reset_at=freeze.reset_at(key_id))
        if trip is not None:
            self._trip_key(key_id, request_id, trip, now)

    def valid_approvals(
        self, row: RequestRecord, registry: OfficerRegistry, intent: AnyIntent, now: int
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
