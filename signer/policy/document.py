"""The versioned policy document: ordered rules (first match wins, block by default), limits,
fee rules (one per network and fee asset; a network without one is blocked), destination lists
(allow with cool-down, deny, registered cold addresses), a trust ramp, circuit-breaker rules
(breaker.py) and shared deny-lists signed by their publishers (denylist.py).

Admins edit it as JSON; everything else works on the parsed form. Its version hash is SHA-256 over
the tagged encoding of the parsed document, never over JSON bytes, so whitespace or key order
cannot change it. A document only takes effect through an admin-quorum-signed change (change.py).

The rule building blocks (conditions, actions, approval expressions, limits) are in rules.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, ClassVar

from signer.tss.encoding import Value

from .approvals import tagged_hash
from .assets import DEFAULT_ASSETS, AssetRegistry
from .breaker import BreakerRule, check_breaker_rules
from .denylist import DenyList, index_denylists
from .document_checks import validate_document, validate_fees
from .document_json import (
    check_keys,
    parse_breaker,
    parse_fee,
    parse_limit,
    parse_registry,
    parse_rule,
    read_address,
    read_amount,
    read_int,
    read_list,
    read_str,
)
from .errors import PolicyError, loads_bounded
from .key_order import NO_KEY_OPERATIONS, KeyOperations
from .message_rules import MessageRule, check_message_rules, parse_message_rule
from .rules import (
    Action,
    AllowEntry,
    ColdEntry,
    Condition,
    FeeRule,
    Limit,
    Rule,
    TrustRamp,
    action_value,
    condition_value,
    expr_json,
    fee_rule_value,
    malformed,
    names_value,
    opt_names_value,
)
from .tightening import policy_is_tightening


@dataclass(frozen=True, slots=True)
class PolicyDocument:
    """A complete policy version."""

    KIND: ClassVar[str] = "policy"

    version: int
    rules: tuple[Rule, ...]
    limits: tuple[Limit, ...] = ()
    fees: tuple[FeeRule, ...] = ()
    allow: tuple[AllowEntry, ...] = ()
    deny: frozenset[str] = frozenset()
    cold: tuple[ColdEntry, ...] = ()
    cooldown: int = 86400
    trust_ramp: TrustRamp | None = None
    unfreeze_quorum: int = 2
    change_delay: int = 86400
    previous_hash: bytes = b""
    key_operations: KeyOperations = NO_KEY_OPERATIONS
    assets: AssetRegistry = DEFAULT_ASSETS
    breakers: tuple[BreakerRule, ...] = ()
    denylists: tuple[DenyList, ...] = ()
    messages: tuple[MessageRule, ...] = ()
    _hash: bytes = field(default=b"", init=False, repr=False, compare=False)
    _denied_by: dict[str, str] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        validate_document(self)
        allow = [AllowEntry(read_address(e.address), e.added_at, e.label) for e in self.allow]
        cold = [ColdEntry(read_address(e.address), e.label) for e in self.cold]
        object.__setattr__(self, "allow", tuple(sorted(allow, key=lambda e: e.address)))
        object.__setattr__(self, "cold", tuple(sorted(cold, key=lambda e: e.address)))
        object.__setattr__(self, "deny", frozenset(read_address(a) for a in self.deny))
        object.__setattr__(self, "fees", tuple(sorted(self.fees, key=lambda f: (f.chain, f.asset))))
        if self.trust_ramp is not None:
            ramp = TrustRamp(self.trust_ramp.first, tuple(sorted(self.trust_ramp.caps)))
            object.__setattr__(self, "trust_ramp", ramp)
        for entries in (allow, cold):
            if len({e.address for e in entries}) != len(entries):
                raise malformed("duplicate address in a destination list")
        if not isinstance(self.key_operations, KeyOperations):
            raise malformed("key_operations must be a KeyOperations")
        if not isinstance(self.assets, AssetRegistry):
            raise malformed("assets must be an AssetRegistry")
        validate_fees(self.fees, self.assets)
        check_breaker_rules(self.breakers)
        object.__setattr__(self, "breakers", tuple(sorted(self.breakers, key=lambda b: b.rule_id)))
        object.__setattr__(self, "denylists", tuple(sorted(self.denylists, key=lambda x: x.name)))
        object.__setattr__(self, "_denied_by", index_denylists(self.denylists))
        check_message_rules(self.messages)  # kept in order: the first match decides
        object.__setattr__(self, "_hash", tagged_hash("policy/document/v2", *self._values()))

    def destination_class(self, destination: str, now: int) -> str:
        """`denied`, `cold`, `allowed` or `unlisted` for a canonical destination at time `now`."""
        if destination in self.deny:
            return "denied"
        if any(e.address == destination for e in self.cold):
            return "cold"
        entry = next((e for e in self.allow if e.address == destination), None)
        if entry is not None and now >= entry.added_at + self.cooldown:
            return "allowed"
        return "unlisted"

    def denylisted(self, *addresses: str) -> str | None:
        """The name of the first installed deny-list naming any of the canonical `addresses`."""
        return next((self._denied_by[a] for a in addresses if a in self._denied_by), None)

    def fee_rule(self, chain: str) -> FeeRule | None:
        """The fee rule for `chain` and its fee asset, if there is one."""
        network = self.assets.network(chain)
        if network is None:
            return None
        return next((f for f in self.fees if f.chain == chain and f.asset == network.native), None)

    def hash(self) -> bytes:
        """The policy version hash (computed once, at construction)."""
        return self._hash

    def _values(self) -> list[Value]:
        rules: list[Value] = [[r.rule_id, condition_value(r.when), action_value(r.action)] for r in self.rules]
        limits: list[Value] = [
            [x.limit_id, x.scope, x.asset, x.window, x.max_amount, x.max_count, opt_names_value(x.destinations)]
            for x in self.limits
        ]
        ramp: list[Value] = []
        if self.trust_ramp is not None:
            ramp = [self.trust_ramp.first, [[a, c] for a, c in self.trust_ramp.caps]]
        allow: list[Value] = [[e.address, e.added_at, e.label] for e in self.allow]
        cold: list[Value] = [[e.address, e.label] for e in self.cold]
        # Appended only when set, so the hash of every document without it is unchanged.
        ops: list[Value] = [] if self.key_operations == NO_KEY_OPERATIONS else [self.key_operations.value()]
        key_ops: list[Value] = ops
        if self.breakers or self.denylists or self.messages:
            # 16 fields with breakers or deny-lists: key operations, registry (empty if default), then
            # them; 17 with message rules, so the hash of every document without them is unchanged.
            registry: Value = self.assets.value() if self.assets != DEFAULT_ASSETS else []
            key_ops = [ops, registry, [b.value() for b in self.breakers], [x.value() for x in self.denylists]]
            if self.messages:
                key_ops.append([m.value() for m in self.messages])
        elif self.assets != DEFAULT_ASSETS:
            # 14 fields only with a registry: an optional key-operations slot, then the registry.
            key_ops = [ops, self.assets.value()]
        return [
            self.version,
            self.previous_hash,
            self.change_delay,
            self.cooldown,
            self.unfreeze_quorum,
            rules,
            limits,
            allow,
            names_value(self.deny),
            cold,
            ramp,
            [fee_rule_value(f) for f in self.fees],
            *key_ops,
        ]

    def check_successor(self, old: PolicyDocument, proposed_at: int) -> None:
        """A new or re-dated allow-list entry may not be dated before the change was proposed."""
        before = {e.address: e.added_at for e in old.allow}
        for e in self.allow:
            if before.get(e.address) != e.added_at and e.added_at < proposed_at:
                raise PolicyError("backdated_allow_entry", e.address)

    def is_tightening_of(self, old: PolicyDocument) -> bool:
        """True only if this document provably allows a subset of what `old` allows (see tightening.py)."""
        return policy_is_tightening(old, self)

    # --- JSON ----------------------------------------------------------------------------------------
    def to_json(self) -> str:
        """The JSON form admins edit (amounts as decimal strings)."""

        def cond(c: Condition) -> dict[str, Any]:
            out: dict[str, Any] = {}
            for name in ("assets", "destinations", "initiators", "keys", "kinds", "contracts", "selectors"):
                v = getattr(c, name)
                if v is not None:
                    out[name] = sorted(v)
            for name in ("amount_min", "amount_max"):
                if getattr(c, name) is not None:
                    out[name] = str(getattr(c, name))
            return out

        def action(a: Action) -> dict[str, Any]:
            out: dict[str, Any] = {"type": a.kind}
            if a.approvals is not None:
                out["approvals"] = expr_json(a.approvals)
            if a.time_lock:
                out["time_lock"] = a.time_lock
            if a.fee_cap is not None:
                out["fee_cap"] = str(a.fee_cap)
            return out

        def fee(f: FeeRule) -> dict[str, Any]:
            out: dict[str, Any] = {"chain": f.chain, "asset": f.asset, "max_fee": str(f.max_fee)}
            out |= {"min_gas_limit": f.min_gas_limit, "max_gas_limit": f.max_gas_limit}
            if f.max_fee_bps is not None:
                out["max_fee_bps"] = f.max_fee_bps
            return out

        def limit(x: Limit) -> dict[str, Any]:
            out: dict[str, Any] = {"id": x.limit_id, "scope": x.scope}
            if x.asset:
                out["asset"] = x.asset
            if x.window:
                out["window"] = x.window
            if x.scope == "client_rate":
                out["max_count"] = x.max_count
            else:
                out["max_amount"] = str(x.max_amount)
            if x.destinations is not None:
                out["destinations"] = sorted(x.destinations)
            return out

        doc: dict[str, Any] = {
            "version": self.version,
            "previous_hash": self.previous_hash.hex(),
            "change_delay": self.change_delay,
            "cooldown": self.cooldown,
            "unfreeze_quorum": self.unfreeze_quorum,
            "destinations": {
                "allow": [{"address": e.address, "added_at": e.added_at, "label": e.label} for e in self.allow],
                "deny": sorted(self.deny),
                "cold": [{"address": e.address, "label": e.label} for e in self.cold],
            },
            "limits": [limit(x) for x in self.limits],
            "fees": [fee(f) for f in self.fees],
            "rules": [{"id": r.rule_id, "when": cond(r.when), "action": action(r.action)} for r in self.rules],
        }
        if self.trust_ramp is not None:
            doc["trust_ramp"] = {"first": self.trust_ramp.first, "caps": {a: str(c) for a, c in self.trust_ramp.caps}}
        if self.key_operations != NO_KEY_OPERATIONS:
            doc["key_operations"] = self.key_operations.to_json()
        if self.assets != DEFAULT_ASSETS:
            doc["networks"], doc["assets"] = self.assets.to_json()
        if self.breakers:
            doc["breakers"] = [b.to_json() for b in self.breakers]
        if self.denylists:
            doc["denylists"] = [x.to_json() for x in self.denylists]
        if self.messages:
            doc["messages"] = [m.to_json() for m in self.messages]
        return json.dumps(doc, indent=2)

    @classmethod
    def from_json(cls, text: str) -> PolicyDocument:
        """Parse the JSON form strictly: unknown keys, wrong types or bad values raise `policy_malformed`."""
        try:
            d = loads_bounded(text)
        except (ValueError, RecursionError) as exc:
            raise malformed(f"not JSON: {exc}") from None
        check_keys(
            d,
            {"version", "rules"},
            {
                "previous_hash",
                "change_delay",
                "cooldown",
                "unfreeze_quorum",
                "destinations",
                "limits",
                "fees",
                "trust_ramp",
                "key_operations",
                "networks",
                "assets",
                "breakers",
                "denylists",
                "messages",
            },
        )
        dests = d.get("destinations", {})
        check_keys(dests, set(), {"allow", "deny", "cold"})
        allow = []
        for e in read_list(dests.get("allow", [])):
            check_keys(e, {"address", "added_at"}, {"label"})
            label = read_str(e.get("label", ""), empty=True)
            allow.append(AllowEntry(read_str(e["address"]), read_int(e["added_at"]), label))
        cold = []
        for e in read_list(dests.get("cold", [])):
            check_keys(e, {"address"}, {"label"})
            cold.append(ColdEntry(read_str(e["address"]), read_str(e.get("label", ""), empty=True)))
        ramp = None
        if "trust_ramp" in d:
            check_keys(d["trust_ramp"], {"first", "caps"})
            caps = d["trust_ramp"]["caps"]
            if not isinstance(caps, dict):
                raise malformed("trust_ramp.caps must map assets to amounts")
            ramp_caps = tuple((read_str(a), read_amount(c)) for a, c in caps.items())
            ramp = TrustRamp(read_int(d["trust_ramp"]["first"]), ramp_caps)
        try:
            previous = bytes.fromhex(read_str(d.get("previous_hash", ""), empty=True))
        except ValueError:
            raise malformed("previous_hash must be hex") from None
        return cls(
            version=read_int(d["version"]),
            rules=tuple(parse_rule(r) for r in read_list(d["rules"])),
            limits=tuple(parse_limit(x) for x in read_list(d.get("limits", []))),
            fees=tuple(parse_fee(f) for f in read_list(d.get("fees", []))),
            allow=tuple(allow),
            deny=frozenset(read_str(a) for a in read_list(dests.get("deny", []))),
            cold=tuple(cold),
            cooldown=read_int(d.get("cooldown", 86400)),
            trust_ramp=ramp,
            unfreeze_quorum=read_int(d.get("unfreeze_quorum", 2)),
            change_delay=read_int(d.get("change_delay", 86400)),
            previous_hash=previous,
            key_operations=KeyOperations.from_json(d.get("key_operations", {})),
            assets=parse_registry(d) if "networks" in d or "assets" in d else DEFAULT_ASSETS,
            breakers=tuple(parse_breaker(b) for b in read_list(d.get("breakers", []))),
            denylists=tuple(DenyList.from_json(x) for x in read_list(d.get("denylists", []))),
            messages=tuple(parse_message_rule(m) for m in read_list(d.get("messages", []))),
        )
