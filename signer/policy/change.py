"""Changing the policy or the officer registry: admin-quorum-signed, chained, never downgraded.

A `PolicyChange` carries the new document, the time it was proposed and the admins' signatures over
(kind, new version hash, proposed_at). `Governed.apply` accepts it only if the admins of the active
registry reach its `admin_quorum`, the version goes up and `previous_hash` names the active
version (so an older or forked version is refused). A change that provably tightens takes effect at
once and drops any pending change; anything else waits `change_delay` seconds of the *old* document
(counted from the later of `proposed_at` and the time it was applied) and supersedes a pending one.

"Provably tighter" is decided conservatively (`policy_is_tightening`): the new rules are the old
ones with block rules inserted, trailing rules removed and actions made no weaker (a tier's fee cap
kept or lowered); every old limit is kept and not raised; no network gains a fee rule and none
has its fee caps raised or its gas limit range widened; the deny-list only grows; the cool-down,
change delay and unfreeze quorum do not shrink; the trust ramp does not loosen; and a destination
may only lose a listing (or start its cool-down later) if every rule that would then apply to it
blocks. Anything else is loosening.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from functools import cache
from typing import Any, Generic, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from signer.tss.encoding import encode

from .approvals import MAX_CLOCK_SKEW, Endorsement, OfficerRegistry, endorse, verify_endorsements
from .document import PolicyDocument
from .errors import PolicyError, loads_bounded
from .rules import CLASSES, Action, AllOf, AnyOf, ApprovalExpr, FeeRule, Group, Limit, Rule, TrustRamp

D = TypeVar("D", PolicyDocument, OfficerRegistry)
CHANGE_TAG = "policy/change/v1"


@dataclass(frozen=True, slots=True)
class PolicyChange(Generic[D]):
    """A proposed policy or registry version with the admin signatures collected so far."""

    new_document: D
    proposed_at: int
    signatures: tuple[Endorsement, ...] = ()

    def message(self) -> bytes:
        """What each admin signs."""
        return encode(CHANGE_TAG, self.new_document.KIND, self.new_document.hash(), self.proposed_at)

    def signed(self, key: Ed25519PrivateKey, admin_id: str) -> PolicyChange[D]:
        """This change with one more admin signature."""
        return dataclasses.replace(self, signatures=(*self.signatures, endorse(key, admin_id, self.message())))

    def verify(self, registry: OfficerRegistry) -> frozenset[str]:
        """The admins who signed; raises `admin_quorum_not_met` or the reason of a bad signature."""
        return verify_endorsements(
            registry,
            self.message(),
            self.signatures,
            role="admin",
            k=registry.admin_quorum,
            not_met="admin_quorum_not_met",
        )

    def to_json(self) -> str:
        """Wire and storage form."""
        return json.dumps(
            {
                "kind": self.new_document.KIND,
                "document": json.loads(self.new_document.to_json()),
                "proposed_at": self.proposed_at,
                "signatures": [{"signer": e.signer_id, "signature": e.signature.hex()} for e in self.signatures],
            }
        )


def parse_change(text: str, doc_type: type[D]) -> PolicyChange[D]:
    """Parse `PolicyChange.to_json` output for a document of `doc_type`."""
    try:
        d = loads_bounded(text)
        if set(d) != {"kind", "document", "proposed_at", "signatures"} or d["kind"] != doc_type.KIND:
            raise PolicyError("change_malformed", "wrong fields or kind")
        sigs = tuple(Endorsement(s["signer"], bytes.fromhex(s["signature"])) for s in d["signatures"])
        proposed_at = d["proposed_at"]
        if not isinstance(proposed_at, int) or isinstance(proposed_at, bool):
            raise PolicyError("change_malformed", "proposed_at must be an integer")
        return PolicyChange(doc_type.from_json(json.dumps(d["document"])), proposed_at, sigs)
    except PolicyError:
        raise
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
        raise PolicyError("change_malformed", str(exc)) from None


@dataclass(frozen=True, slots=True)
class Governed(Generic[D]):
    """The active version (with the change that installed it) and at most one pending loosening."""

    active: PolicyChange[D]
    pending: PolicyChange[D] | None = None
    effective_at: int = 0

    @classmethod
    def genesis(cls, change: PolicyChange[D], registry: OfficerRegistry) -> Governed[D]:
        """The first version (empty `previous_hash`), signed by an admin quorum of `registry`.

        For the registry itself, pass the genesis registry as `registry` (self-endorsed).
        """
        if change.new_document.previous_hash:
            raise PolicyError(f"{change.new_document.KIND}_not_chained", "a genesis version has no predecessor")
        change.verify(registry)
        return cls(change)

    def current(self, now: int) -> D:
        """The document in force at `now`."""
        if self.pending is not None and now >= self.effective_at:
            return self.pending.new_document
        return self.active.new_document

    def advance(self, now: int) -> Governed[D]:
        """Promote the pending change once its time lock has run out."""
        if self.pending is not None and now >= self.effective_at:
            return Governed(self.pending)
        return self

    def apply(self, change: PolicyChange[D], registry: OfficerRegistry, now: int) -> Governed[D]:
        """Accept a signed change (see the module docstring); raises `PolicyError` with the reason."""
        state = self.advance(now)
        old, new = state.active.new_document, change.new_document
        kind = old.KIND
        if type(new) is not type(old):
            raise PolicyError("change_malformed", "document kind differs")
        if new.version <= old.version:
            raise PolicyError(f"{kind}_downgrade", f"version {new.version} after {old.version}")
        if new.previous_hash != old.hash():
            raise PolicyError(f"{kind}_not_chained", "previous_hash is not the active version")
        if change.proposed_at > now + MAX_CLOCK_SKEW:
            raise PolicyError("change_not_yet_valid", "proposed in the future")
        change.verify(registry)
        new.check_successor(old, change.proposed_at)
        if new.is_tightening_of(old):
            return Governed(change)
        return Governed(state.active, change, max(change.proposed_at, now) + old.change_delay)

    def to_json(self) -> str:
        """Storage form (a signer's own store is trusted; it is not re-verified on load)."""
        return json.dumps(
            {
                "active": json.loads(self.active.to_json()),
                "pending": None if self.pending is None else json.loads(self.pending.to_json()),
                "effective_at": self.effective_at,
            }
        )

    @staticmethod
    def from_json(text: str, doc_type: type[D]) -> Governed[D]:
        """Inverse of `to_json`."""
        try:
            d: Any = loads_bounded(text)
            pending = None if d["pending"] is None else parse_change(json.dumps(d["pending"]), doc_type)
            return Governed(parse_change(json.dumps(d["active"]), doc_type), pending, int(d["effective_at"]))
        except PolicyError:
            raise
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
            raise PolicyError("change_malformed", str(exc)) from None


# --- conservative "is this a tightening?" --------------------------------------------------------
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
    )
