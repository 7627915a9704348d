"""Evaluate a request against the policy: the one function the coordinator and every signer run.

`evaluate` is pure: the document, registry, intent, verified approvals, ledger and `now` go in, a
`Decision` comes out. Order of checks (fail closed at each):
  request kind (kinds.py: the kind is what the body does; a cold sweep only to a cold address)
  -> expired intent -> policy version mismatch -> initiator mismatch -> amount / destination that
  cannot be decoded -> network and asset in the registry (assets.py) -> fee fields -> fee rule of
  the network (none: block) -> gas limit range -> gas limit below the body's intrinsic gas ->
  deny-list -> shared deny-lists (any address the body names: `denylisted:<list>`) -> spent
  request id -> first matching rule (none: block; rules match by asset symbol,
  amount, destination class, initiator, key, and request kind / contract / selector) -> block
  rule -> unlimited approval whose spender the rule does not name -> fee cap (the tier's, else the
  network's absolute and relative caps) -> hard limits (fees counted in the fee asset) and trust
  ramp -> approvals and time lock.
The fee is always the worst case the body allows, max fee per gas × gas limit: a signer computes
it from the transaction it rebuilt, never from a figure the coordinator sends.
A time lock runs from the moment the approvals first met the requirement (the officers' signed
times, earliest satisfying prefix), so a signer can check it without trusting the coordinator.

`check_release` is what a signer runs before it releases a partial signature: the request kind,
freeze state, every approval verified against its own registry, then `evaluate`, then the circuit
breakers on its own outflow (breaker.py); it raises `PolicyError(reason)` (`BreakerTripped` when
a breaker trips, so the caller freezes the key).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from signer.chains.ethereum import intrinsic_gas

from .approvals import Approval, Officer, OfficerRegistry, verify_approvals
from .assets import check_registered
from .breaker import BreakerTripped, Trip, check_breakers
from .document import PolicyDocument
from .errors import PolicyError
from .freeze import FreezeState
from .intent import CALL, TRANSFER, Intent, canonical_destination
from .kinds import REPLACEMENT, WITHDRAWAL, check_kind_rule
from .limits import LedgerView, check_limits, is_approval
from .rules import (
    BPS,
    Action,
    AllowEntry,
    ApprovalExpr,
    ColdEntry,
    Condition,
    FeeRule,
    Group,
    Limit,
    Rule,
    expr_groups,
    expr_satisfied,
)

DEMO_CHAINS = (1, 11155111)  # mainnet and Sepolia
UNLIMITED_ALLOWANCE = 1 << 128
"""An allowance at or above this is unlimited in effect (no token's supply comes near it): blocked
unless the matching rule names the spender in its `contracts`."""


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome for one request at one time.

    `action` is `allow`, `require` or `block`; `required` the approval expression (for `require`);
    `satisfied` whether the approvals meet it (always True for `allow`, False for `block`);
    `time_lock_until` the earliest signing time (0 when there is none or it is not yet known);
    `reason` a stable string; `rule_id` the rule that matched ("" when none did); `detail` free
    text for people (never compared).
    """

    action: str
    required: ApprovalExpr | None
    satisfied: bool
    time_lock_until: int
    reason: str
    rule_id: str
    detail: str = ""

    def may_sign(self, now: int) -> bool:
        """Whether the request may be signed at `now`."""
        return self.action != "block" and self.satisfied and now >= self.time_lock_until


def _block(reason: str, rule_id: str = "", detail: str = "") -> Decision:
    return Decision("block", None, False, 0, reason, rule_id, detail)


def quorum_time(
    expr: ApprovalExpr, registry: OfficerRegistry, approvals: Mapping[str, int], excluded: Iterable[str] = ()
) -> int | None:
    """The signed time at which `approvals` (officer id -> signed_at) first met `expr`, or None."""
    skip = set(excluded)
    members = {g: registry.members(g) - skip for g in expr_groups(expr)}
    got: set[str] = set()
    for officer_id, at in sorted(approvals.items(), key=lambda kv: (kv[1], kv[0])):
        got.add(officer_id)
        if expr_satisfied(expr, members, frozenset(got)):
            return at
    return None


def fee_fields_problem(intent: Intent) -> str | None:
    """Why the fee fields cannot be a sane transaction, or None. A Bitcoin payout's fee field is
    its share of the spend's fee (btc_intent.py), which may round to 0 for a small payout."""
    if intent.chain.startswith("bip122:") and intent.gas_limit >= 1 and intent.max_fee_per_gas >= 0:
        return None
    if intent.gas_limit < 1 or intent.max_fee_per_gas < 1:
        return "gas limit and max fee per gas must be positive"
    if intent.max_priority_fee_per_gas > intent.max_fee_per_gas:
        return "priority fee per gas exceeds max fee per gas"
    return None


def fee_over_cap(fees: FeeRule, action: Action, intent: Intent) -> str | None:
    """`fee_exceeded` / `fee_exceeded_relative` if the worst-case fee is over this tier's cap."""
    fee = intent.fee_cap
    if action.fee_cap is not None:
        return "fee_exceeded" if fee > action.fee_cap else None
    if fee > fees.max_fee:
        return "fee_exceeded"
    # Relative only for a transfer whose amount is in the fee asset: a token transfer has no common
    # unit with its fee, and a contract call's value is not what it is for.
    relative = fees.max_fee_bps is not None and intent.call == TRANSFER and intent.asset == fees.asset
    if relative and fee * BPS > intent.amount * (fees.max_fee_bps or 0):
        return "fee_exceeded_relative"
    return None


def evaluate(
    policy: PolicyDocument,
    registry: OfficerRegistry,
    intent: Intent,
    approvals_ok: Mapping[str, int],
    ledger: LedgerView,
    now: int,
    initiator: str,
    share: tuple[int, int] = (1, 1),
    kind: str = WITHDRAWAL,
) -> Decision:
    """The decision for `intent`, a request of `kind`, given the verified approvals (as returned
    by `verify_approvals`).

    `share` is (t, n) for a signer of a t-of-n key (its fair share of every windowed limit), and
    (1, 1) for the coordinator, which sees every release.
    """
    try:
        check_kind_rule(policy, intent, kind, now)
    except PolicyError as exc:
        return _block(exc.reason, detail=exc.detail)
    if now >= intent.expires_at:
        return _block("intent_expired")
    if intent.policy_hash != policy.hash():
        return _block("policy_mismatch")
    if intent.initiator and intent.initiator != initiator:
        return _block("initiator_mismatch")
    if not isinstance(intent.amount, int) or intent.amount < 0 or intent.fee_cap < 0:
        return _block("undecodable_amount")
    try:
        destination = canonical_destination(intent.chain, intent.destination)
    except PolicyError:
        return _block("undecodable_destination")
    try:
        check_registered(policy.assets, intent)
    except PolicyError as exc:
        return _block(exc.reason, detail=exc.detail)
    if fee_fields_problem(intent) is not None:
        return _block("fee_fields_invalid")
    fees = policy.fee_rule(intent.chain)
    if fees is None:
        return _block("no_fee_rule")
    if not fees.min_gas_limit <= intent.gas_limit <= fees.max_gas_limit:
        return _block("gas_limit_out_of_range")
    if intent.chain.startswith("eip155:") and intent.gas_limit < intrinsic_gas(intent.data):
        return _block("intrinsic_gas_too_low", detail=f"the body needs at least {intrinsic_gas(intent.data)} gas")
    destination_class = policy.destination_class(destination, now)
    if destination_class == "denied":
        return _block("destination_denied")
    listed = policy.denylisted(destination, *(_named(intent.chain, a) for a in (intent.contract, intent.source) if a))
    if listed is not None:
        return _block(f"denylisted:{listed}", detail=f"an address of the request is on the deny-list {listed}")
    if ledger.has_spent(intent.request_id):
        return _block("request_replayed")
    rule = matching_rule(policy, intent, destination, destination_class, initiator, kind)
    if rule is None:
        return _block("no_matching_rule")
    if rule.action.kind == "block":
        return _block("rule_block", rule.rule_id)
    if kind == REPLACEMENT and (rule.action.kind == "allow" or rule.action.approvals is None):
        # A second transaction with a used nonce is never signed without officers approving it.
        return _block("replacement_needs_approval", rule.rule_id)
    if is_approval(intent) and intent.amount >= UNLIMITED_ALLOWANCE:
        if rule.when.contracts is None or destination not in rule.when.contracts:
            return _block("unlimited_approval", rule.rule_id, f"spender {destination} is not named by the rule")
    over = fee_over_cap(fees, rule.action, intent)
    if over is not None:
        return _block(over, rule.rule_id)
    exceeded = check_limits(
        policy,
        ledger,
        intent,
        destination=destination,
        destination_class=destination_class,
        initiator=initiator,
        now=now,
        share=share,
    )
    if exceeded is not None:
        return _block(exceeded, rule.rule_id)
    return rule_decision(rule, registry, approvals_ok, (initiator, intent.initiator), now)


def rule_decision(
    rule: Rule, registry: OfficerRegistry, approvals_ok: Mapping[str, int], initiators: Iterable[str], now: int
) -> Decision:
    """What a matched allow or require rule decides given the verified approvals (`initiators`
    never count toward the quorum): allowed, pending, time-locked or approved."""
    expr = rule.action.approvals
    if rule.action.kind == "allow" or expr is None:
        return Decision("allow", None, True, 0, "allowed", rule.rule_id)
    at = quorum_time(expr, registry, approvals_ok, excluded=initiators)
    if at is None:
        return Decision("require", expr, False, 0, "approvals_pending", rule.rule_id)
    until = at + rule.action.time_lock if rule.action.time_lock else 0
    reason = "time_locked" if now < until else "approved"
    return Decision("require", expr, True, until, reason, rule.rule_id)


def matching_rule(
    policy: PolicyDocument, intent: Intent, destination: str, destination_class: str, initiator: str, kind: str
) -> Rule | None:
    """The first rule of `policy` whose condition matches the intent (`destination` canonical, of
    `destination_class`): the tier that decides it, as officers are shown it."""
    attrs = (intent.asset, intent.amount, destination_class, initiator, intent.key_id)
    call = (kind, destination, "0x" + intent.data[:4].hex() if intent.call == CALL else "")
    return next((r for r in policy.rules if r.when.matches(*attrs, call)), None)


def check_release(
    *,
    policy: PolicyDocument,
    registry: OfficerRegistry,
    freeze: FreezeState,
    ledger: LedgerView,
    intent: Intent,
    approvals: Iterable[Approval],
    now: int,
    initiator: str,
    share: tuple[int, int],
    kind: str,
) -> Decision:
    """A signer's own authorization of a request of `kind` before releasing a partial signature;
    raises `PolicyError`.

    `intent` must be rebuilt by the signer from the transaction body (e.g. `intent_from_eip1559`),
    never taken from the coordinator. `share` is (t, n) of the key, from the signer's own key
    share: its ledger holds only the releases it took part in, so it enforces its fair share of
    every windowed limit. On success the caller records the spend in its ledger
    (`ledger.record_spend`, `ledger.record_request`) before the partial signature leaves.
    """
    check_kind_rule(policy, intent, kind, now)
    if freeze.is_frozen(intent.key_id):
        raise PolicyError("frozen", intent.key_id)
    approved = verify_approvals(registry, intent, approvals, now, initiator)
    decision = evaluate(policy, registry, intent, approved, ledger, now, initiator, share, kind)
    if not decision.may_sign(now):
        raise PolicyError(decision.reason, decision.rule_id)
    trip = check_policy_breakers(policy, ledger, intent, now=now, reset_at=freeze.reset_at(intent.key_id), share=share)
    if trip is not None:
        raise BreakerTripped(trip)
    return decision


def check_policy_breakers(
    policy: PolicyDocument,
    ledger: LedgerView,
    intent: Intent,
    *,
    now: int,
    reset_at: int,
    share: tuple[int, int] = (1, 1),
) -> Trip | None:
    """The policy's breakers for a release the policy allows (`check_breakers`), with the
    destination and its class worked out as the policy sees them."""
    destination = _named(intent.chain, intent.destination)
    cold = bool(destination) and policy.destination_class(destination, now) == "cold"
    return check_breakers(
        policy.breakers, ledger, intent, now=now, reset_at=reset_at, share=share, destination=destination, cold=cold
    )


def _named(chain: str, address: str) -> str:
    """An address the body names besides its destination, canonical ("" if it does not decode)."""
    try:
        return canonical_destination(chain, address)
    except PolicyError:
        return ""


def demo_policy(
    officers: Mapping[str, bytes],
    admins: Mapping[str, bytes],
    *,
    small: int = 10**17,
    large: int = 10**19,
    time_lock: int = 300,
    change_delay: int = 3600,
    allow: Iterable[str] = (),
    cold: Iterable[str] = (),
    now: int = 0,
    chains: Iterable[int] = DEMO_CHAINS,
    max_fee: int = 10**16,
    approved_fee_cap: int = 10**17,
) -> tuple[OfficerRegistry, PolicyDocument]:
    """The local cluster's demo registry (genesis, version 1) and policy (version 1).

    `officers` / `admins` map ids to raw Ed25519 public keys (an id in both gets both roles).
    ETH up to `small` wei is automatic, up to `large` needs 2 of the officers, above that 2 of
    the officers plus `time_lock` seconds; cold sweeps need 1 officer; other assets are blocked.
    Fees on each of `chains`: gas limit 21000..200000; an automatic withdrawal may pay at most
    `max_fee` wei and never more than its amount; an officer-approved tier up to `approved_fee_cap`.
    """
    people: dict[str, Officer] = {}
    for oid, pub in officers.items():
        people[oid] = Officer(oid, pub, frozenset({"officers"}), frozenset({"officer"}))
    for oid, pub in admins.items():
        prev = people.get(oid)
        if prev is not None and prev.public_key != pub:
            raise PolicyError("registry_malformed", f"{oid} has two keys")
        groups, roles = (prev.groups, prev.roles) if prev else (frozenset[str](), frozenset[str]())
        people[oid] = Officer(oid, pub, groups, roles | {"admin"})
    registry = OfficerRegistry(1, tuple(people.values()), admin_quorum=min(2, len(admins)), change_delay=change_delay)
    eth = frozenset({"ETH"})
    two = Group("officers", min(2, len(officers)))
    cold_only = frozenset({"cold"})
    cap = approved_fee_cap
    policy = PolicyDocument(
        version=1,
        rules=(
            Rule(
                "cold-sweep",
                Condition(assets=eth, destinations=cold_only),
                Action("require", Group("officers", 1), fee_cap=cap),
            ),
            Rule("small-auto", Condition(assets=eth, amount_max=small), Action("allow")),
            Rule("medium-2-of-officers", Condition(assets=eth, amount_max=large), Action("require", two, fee_cap=cap)),
            Rule("large-2-of-officers-time-lock", Condition(assets=eth), Action("require", two, time_lock, cap)),
        ),
        fees=tuple(FeeRule(f"eip155:{c}", "ETH", max_fee, 21000, 200_000, max_fee_bps=BPS) for c in chains),
        limits=(
            Limit("eth-per-transaction", "transaction", asset="ETH", max_amount=100 * 10**18),
            Limit("eth-24h-per-key", "key_asset", asset="ETH", window=86400, max_amount=500 * 10**18),
            Limit("eth-30d-per-key", "key_asset", asset="ETH", window=30 * 86400, max_amount=5000 * 10**18),
            Limit("requests-per-client-minute", "client_rate", window=60, max_count=60),
        ),
        allow=tuple(AllowEntry(a, now) for a in allow),
        cold=tuple(ColdEntry(a) for a in cold),
        cooldown=3600,
        unfreeze_quorum=min(2, len(officers)),
        change_delay=change_delay,
    )
    return registry, policy
