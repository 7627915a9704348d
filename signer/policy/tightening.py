"""Whether a new policy document provably allows no more than the old one, decided conservatively
(`policy_is_tightening`; a tightening takes effect at once, change.py): the new rules are the old
ones with block rules inserted, trailing rules removed and actions made no weaker (a tier's fee cap
kept or lowered); every old limit is kept and not raised; no network gains a fee rule and none
has its fee caps raised or its gas limit range widened; the deny-list only grows; the cool-down,
change delay and unfreeze quorum do not shrink; the trust ramp does not loosen; no key-operation
quorum shrinks and a scheduled refresh is not dropped or made rarer (key_order.py); and a destination
may only lose a listing (or start its cool-down later) if every rule that would then apply to it
blocks; the network and asset registry is unchanged; every breaker is kept with a threshold no higher
(breaker.py); and every shared deny-list is kept, by the same publisher, losing no address
(denylist.py); message-signing rules only lose trailing rules (message_rules.py). Anything else is
loosening.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from .breaker import breakers_tighter
from .denylist import denylists_tighter
from .message_rules import messages_tighter
from .rules import CLASSES, Action, AllOf, AnyOf, ApprovalExpr, FeeRule, Group, Limit, Rule, TrustRamp

if TYPE_CHECKING:
    # document.py calls this module from `is_tightening_of`; the type is only for annotations.
    from .document import PolicyDocument


def implies(a: ApprovalExpr, b: ApprovalExpr) -> bool:
    """Sufficient test that every approver set meeting `a` also meets `b`."""
    if a == b:
        return True
    if isinstance(b, AllOf):
        return all(implies(a, t) for t in b.terms)
    if isinstance(a, AnyOf):
        return all(implies(t, b) for t in a.terms)
    if isinstance(b, AnyOf):
        return any(implies(a, t) for t in b.terms)
    if isinstance(a, AllOf):
        return any(implies(t, b) for t in a.terms)
    return isinstance(a, Group) and isinstance(b, Group) and a.group == b.group and a.k >= b.k


def action_no_weaker(old: Action, new: Action) -> bool:
    """Whether `new` demands at least what `old` demands."""
    if new.kind == "block":
        return True
    if old.kind == "block" or new.time_lock < old.time_lock:
        return False
    # A tier's own fee cap replaces the network's caps: only the same or a lower one is tighter.
    if (old.fee_cap is None) != (new.fee_cap is None) or (new.fee_cap or 0) > (old.fee_cap or 0):
        return False
    if old.kind == "allow":
        return True
    return (
        new.kind == "require"
        and new.approvals is not None
        and old.approvals is not None
        and implies(new.approvals, old.approvals)
    )


def _rules_tighter(old: tuple[Rule, ...], new: tuple[Rule, ...]) -> bool:
    @cache
    def fits(i: int, j: int) -> bool:
        if j == len(new):
            return True  # old rules left over were removed from the end: their requests now block
        r = new[j]
        if i < len(old) and r.when == old[i].when and action_no_weaker(old[i].action, r.action) and fits(i + 1, j + 1):
            return True
        return r.action.kind == "block" and fits(i, j + 1)  # an inserted block rule

    return fits(0, 0)


def _limits_tighter(old: tuple[Limit, ...], new: tuple[Limit, ...]) -> bool:
    by_id = {x.limit_id: x for x in new}
    for x in old:
        y = by_id.get(x.limit_id)
        if y is None or (y.scope, y.asset, y.window, y.destinations) != (x.scope, x.asset, x.window, x.destinations):
            return False
        if y.max_amount > x.max_amount or y.max_count > x.max_count:
            return False
    return True


def _fees_tighter(old: tuple[FeeRule, ...], new: tuple[FeeRule, ...]) -> bool:
    """Every network keeps a fee rule no looser than before (a network without one is blocked)."""
    by_net = {(f.chain, f.asset): f for f in old}
    for f in new:
        o = by_net.get((f.chain, f.asset))
        if o is None or f.max_fee > o.max_fee or f.min_gas_limit < o.min_gas_limit or f.max_gas_limit > o.max_gas_limit:
            return False
        if o.max_fee_bps is not None and (f.max_fee_bps is None or f.max_fee_bps > o.max_fee_bps):
            return False
    return True


def _ramp_tighter(old: TrustRamp | None, new: TrustRamp | None) -> bool:
    if old is None:
        return True
    if new is None or new.first < old.first:
        return False
    return all((c := new.cap(asset)) is not None and c <= cap for asset, cap in old.caps)


def _destinations_tighter(old: PolicyDocument, new: PolicyDocument) -> bool:
    """Every destination whose class may change must land in a class only block rules accept."""
    open_classes: set[str] = set()
    for r in new.rules:
        if r.action.kind != "block":
            open_classes |= r.when.destinations if r.when.destinations is not None else CLASSES
    never = 1 << 256

    def allowed_from(doc: PolicyDocument, addr: str) -> int:
        entry = next((e for e in doc.allow if e.address == addr), None)
        return never if entry is None else entry.added_at + doc.cooldown

    addresses = {e.address for e in (*old.allow, *new.allow)} | {e.address for e in (*old.cold, *new.cold)}
    for addr in addresses:
        if addr in new.deny:
            continue
        cold_old = any(e.address == addr for e in old.cold)
        cold_new = any(e.address == addr for e in new.cold)
        if cold_new:
            if not cold_old:
                return False
            continue
        t_old, t_new = allowed_from(old, addr), allowed_from(new, addr)
        if cold_old:
            changed = {"unlisted"} | ({"allowed"} if t_new < never else set())
        elif t_new < t_old:
            return False
        elif t_new == t_old:
            continue
        else:
            changed = {"unlisted"}
        if changed & open_classes:
            return False
    return True


def policy_is_tightening(old: PolicyDocument, new: PolicyDocument) -> bool:
    """Whether `new` provably allows no more than `old` (see the module docstring)."""
    return (
        new.change_delay >= old.change_delay
        and new.cooldown >= old.cooldown
        and new.unfreeze_quorum >= old.unfreeze_quorum
        and old.deny <= new.deny
        and _rules_tighter(old.rules, new.rules)
        and _limits_tighter(old.limits, new.limits)
        and _fees_tighter(old.fees, new.fees)
        and _ramp_tighter(old.trust_ramp, new.trust_ramp)
        and _destinations_tighter(old, new)
        and new.key_operations.is_tightening_of(old.key_operations)
        and new.assets == old.assets  # a registry change (even a removal) waits out the delay
        and breakers_tighter(old.breakers, new.breakers)
        and denylists_tighter(old.denylists, new.denylists)
        and messages_tighter(old.messages, new.messages)
    )
