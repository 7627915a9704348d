"""The policy's decision on a Bitcoin spend: the engine's checks on each payout, the fee cap on the
whole fee, one approval of the whole spend; the same function on the coordinator and every signer.

A spend pays several destinations at once. Each payout (btc_intent.py) goes through `evaluate`
as a transfer of its own, against a ledger that already counts the payouts before it, so the
windowed limits see the spend's total and a batch cannot split a payout to slip under a limit.
Any payout blocked blocks the spend. Splitting one large payment into small outputs of one
request does not lower its tier either: each payout's destination is also matched with the
spend's total amount (the tier a single transfer of the whole would get), and the stricter of
the two rules applies; the per-transaction limits see the total too. The absolute fee caps (the
network's and the tier of every rule matched) apply to the whole fee, the relative cap to the
fee over all payouts. Approvals are of the whole spend (`SpendIntent.digest`) and must meet the
requirement of every matched rule; the latest time lock among them applies. A spend that pays
only change is refused (`no_payout`): consolidations are not a request kind yet.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

from .approvals import Approval, OfficerRegistry, verify_approvals
from .breaker import BreakerTripped, Trip
from .btc_intent import SpendIntent
from .document import PolicyDocument
from .engine import Decision, check_policy_breakers, evaluate, fee_over_cap, matching_rule, rule_decision
from .errors import PolicyError
from .freeze import FreezeState
from .intent import Intent, canonical_destination
from .kinds import TRANSFER_KINDS, WITHDRAWAL, check_kind
from .limits import LedgerView, charges


class PendingLedger:
    """A ledger view that also counts the payouts of this spend already evaluated (at `now`).

    `withdrawals_to` counts them only for the breakers (`count_withdrawals`): there more payouts to
    a new destination come closer to tripping, while for the trust ramp a destination this very
    spend pays first is still new."""

    def __init__(self, ledger: LedgerView, now: int, *, count_withdrawals: bool = False) -> None:
        self._ledger = ledger
        self._now = now
        self._count_withdrawals = count_withdrawals
        self._pending: list[tuple[Intent, str, dict[str, int]]] = []

    def add(self, intent: Intent) -> None:
        """Count `intent` (one payout) from now on."""
        self._pending.append((intent, canonical_destination(intent.chain, intent.destination), charges(intent)))

    def has_spent(self, request_id: str) -> bool:
        return self._ledger.has_spent(request_id)

    def spent(self, key_id: str, asset: str, window: int, now: int, exclude: str = "") -> int:
        mine = sum(c.get(asset, 0) for i, _, c in self._pending if i.key_id == key_id)
        return self._ledger.spent(key_id, asset, window, now, exclude) + mine

    def spent_to(self, destination: str, asset: str, window: int, now: int, exclude: str = "") -> int:
        mine = sum(c.get(asset, 0) for _, d, c in self._pending if d == destination)
        return self._ledger.spent_to(destination, asset, window, now, exclude) + mine

    def requests_by(self, client: str, window: int, now: int, exclude: str = "") -> int:
        return self._ledger.requests_by(client, window, now, exclude)

    def withdrawals_to(self, destination: str) -> int:
        mine = sum(1 for _, d, _ in self._pending if d == destination) if self._count_withdrawals else 0
        return self._ledger.withdrawals_to(destination) + mine

    def first_paid(self, destination: str) -> int | None:
        first = self._ledger.first_paid(destination)
        if first is None and any(d == destination for _, d, _ in self._pending):
            return self._now
        return first


def _block(reason: str, rule_id: str = "", detail: str = "") -> Decision:
    return Decision("block", None, False, 0, reason, rule_id, detail)


def evaluate_spend(
    policy: PolicyDocument,
    registry: OfficerRegistry,
    intent: SpendIntent,
    approvals_ok: Mapping[str, int],
    ledger: LedgerView,
    now: int,
    initiator: str,
    share: tuple[int, int] = (1, 1),
    kind: str = WITHDRAWAL,
) -> Decision:
    """The decision for the spend `intent` (see the module docstring); `approvals_ok` are the
    officers who validly approved the spend intent (`verify_approvals`), with their times."""
    if kind not in TRANSFER_KINDS:
        return _block("kind_mismatch", detail=f"a Bitcoin spend is a withdrawal or a cold sweep, not {kind!r}")
    payouts = intent.payout_intents()
    if not payouts:
        return _block("no_payout", detail="the spend pays only change back to the key")
    view = PendingLedger(ledger, now)
    decisions: list[Decision] = []
    for index, payout in enumerate(payouts):
        decision = evaluate(policy, registry, payout, approvals_ok, view, now, initiator, share, kind)
        if decision.action == "block":
            detail = f"payout {index} to {payout.destination}" + (f": {decision.detail}" if decision.detail else "")
            return replace(decision, detail=detail)
        decisions.append(decision)
        view.add(payout)
    whole = intent.whole()
    for x in policy.limits:
        if x.scope == "transaction" and x.asset == whole.asset and whole.amount > x.max_amount:
            classes = {policy.destination_class(canonical_destination(p.chain, p.destination), now) for p in payouts}
            if x.destinations is None or classes & x.destinations:
                return _block(f"limit_exceeded:{x.limit_id}", detail="the spend's total")
    for payout in payouts:
        decision = _tier_of_total(policy, registry, payout, whole.amount, approvals_ok, now, initiator, kind)
        if decision.action == "block":
            return decision
        decisions.append(decision)
    fees = policy.fee_rule(intent.chain)
    if fees is None:  # never: evaluate blocked above
        return _block("no_fee_rule")
    rules = {r.rule_id: r for r in policy.rules}
    for decision in decisions:
        over = fee_over_cap(fees, rules[decision.rule_id].action, whole)
        if over is not None:
            return _block(over, decision.rule_id, "the spend's whole fee")
    unmet = next((d for d in decisions if not d.satisfied), None)
    if unmet is not None:
        return unmet
    return max(decisions, key=lambda d: (d.action == "require", d.time_lock_until))


def _tier_of_total(
    policy: PolicyDocument,
    registry: OfficerRegistry,
    payout: Intent,
    total: int,
    approvals_ok: Mapping[str, int],
    now: int,
    initiator: str,
    kind: str,
) -> Decision:
    """The rule `payout`'s destination matches with the spend's `total` as its amount, decided."""
    destination = canonical_destination(payout.chain, payout.destination)
    klass = policy.destination_class(destination, now)
    rule = matching_rule(policy, replace(payout, amount=total), destination, klass, initiator, kind)
    if rule is None:
        return _block("no_matching_rule", detail=f"the spend's total to {destination}")
    if rule.action.kind == "block":
        return _block("rule_block", rule.rule_id, f"the spend's total to {destination}")
    return rule_decision(rule, registry, approvals_ok, (initiator, payout.initiator), now)


def check_spend_release(
    *,
    policy: PolicyDocument,
    registry: OfficerRegistry,
    freeze: FreezeState,
    ledger: LedgerView,
    intent: SpendIntent,
    approvals: Iterable[Approval],
    now: int,
    initiator: str,
    share: tuple[int, int],
    kind: str,
) -> Decision:
    """A signer's own authorization of a Bitcoin spend, as `check_release` for a transaction:
    kind, freeze state, approvals against its own registry, `evaluate_spend`, then the circuit
    breakers over the payouts; raises `PolicyError` (`BreakerTripped` when a breaker trips).
    `intent` must be rebuilt by the signer from the PSBT (`spend_intent`)."""
    check_kind(kind)
    if freeze.is_frozen(intent.key_id):
        raise PolicyError("frozen", intent.key_id)
    approved = verify_approvals(registry, intent, approvals, now, initiator)
    decision = evaluate_spend(policy, registry, intent, approved, ledger, now, initiator, share, kind)
    if not decision.may_sign(now):
        raise PolicyError(decision.reason, decision.rule_id)
    trip = spend_breaker_trip(policy, ledger, intent, now=now, reset_at=freeze.reset_at(intent.key_id), share=share)
    if trip is not None:
        raise BreakerTripped(trip)
    return decision


def spend_breaker_trip(
    policy: PolicyDocument,
    ledger: LedgerView,
    intent: SpendIntent,
    *,
    now: int,
    reset_at: int,
    share: tuple[int, int] = (1, 1),
) -> Trip | None:
    """The first circuit breaker the spend's payouts trip, each counted after the ones before it
    (a new destination paid twice in one spend counts twice); the coordinator and every signer."""
    view = PendingLedger(ledger, now, count_withdrawals=True)
    for payout in intent.payout_intents():
        trip = check_policy_breakers(policy, view, payout, now=now, reset_at=reset_at, share=share)
        if trip is not None:
            return trip
        view.add(payout)
    return None
