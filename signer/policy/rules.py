"""The building blocks of a policy document: approval requirements, rule conditions and actions,
limits, fee rules, destination-list entries and the trust ramp, with their canonical encodings.

Destination classes a rule can name: `allowed` (on the allow-list and past its cool-down), `cold`
(a registered cold address) and `unlisted` (anything else, including allow-list entries still
cooling down). The deny-list is not a class: a denied destination is blocked before any rule.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from signer.chains.ethereum import TxError, parse_address, to_checksum
from signer.tss.encoding import Value

from .errors import PolicyError
from .kinds import APPROVAL, CONTRACT_CALL, REQUEST_KINDS, TRANSFER_KINDS

CLASSES = frozenset({"allowed", "cold", "unlisted"})
ACTIONS = ("allow", "require", "block")
SCOPES = ("transaction", "key_asset", "destination", "client_rate")
WINDOWED = frozenset({"key_asset", "destination", "client_rate"})
BPS = 10_000
MAX_EXPR_DEPTH = 4


def malformed(detail: str) -> PolicyError:
    """`PolicyError("policy_malformed", detail)`."""
    return PolicyError("policy_malformed", detail)


# --- approval requirements: k of a group, combined with AND / OR ---------------------------------
@dataclass(frozen=True, slots=True)
class Group:
    """At least `k` distinct approving officers from `group`."""

    group: str
    k: int


@dataclass(frozen=True, slots=True)
class AllOf:
    """Every term is satisfied."""

    terms: tuple[ApprovalExpr, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    """At least one term is satisfied."""

    terms: tuple[ApprovalExpr, ...]


ApprovalExpr = Group | AllOf | AnyOf


def expr_satisfied(expr: ApprovalExpr, members: Mapping[str, frozenset[str]], approvers: frozenset[str]) -> bool:
    """Whether `approvers` meet `expr`, given each group's members."""
    if isinstance(expr, Group):
        return len(approvers & members.get(expr.group, frozenset())) >= expr.k
    results = (expr_satisfied(t, members, approvers) for t in expr.terms)
    return all(results) if isinstance(expr, AllOf) else any(results)


def expr_groups(expr: ApprovalExpr) -> frozenset[str]:
    """Every group `expr` names."""
    if isinstance(expr, Group):
        return frozenset({expr.group})
    return frozenset().union(*(expr_groups(t) for t in expr.terms))


def describe_expr(expr: ApprovalExpr) -> str:
    """`2 of officers AND (1 of risk OR 1 of treasury)`."""
    if isinstance(expr, Group):
        return f"{expr.k} of {expr.group}"
    joiner = " AND " if isinstance(expr, AllOf) else " OR "
    return joiner.join(describe_expr(t) if isinstance(t, Group) else f"({describe_expr(t)})" for t in expr.terms)


def check_expr(expr: ApprovalExpr, depth: int = 0) -> None:
    if depth > MAX_EXPR_DEPTH:
        raise malformed("approval expression nested too deep")
    if isinstance(expr, Group):
        if not expr.group or not isinstance(expr.k, int) or isinstance(expr.k, bool) or expr.k < 1:
            raise malformed("a group needs a name and k >= 1")
        return
    if not expr.terms:
        raise malformed("`all` / `any` need at least one term")
    for t in expr.terms:
        check_expr(t, depth + 1)


def expr_value(expr: ApprovalExpr) -> Value:
    if isinstance(expr, Group):
        return ["group", expr.group, expr.k]
    return ["all" if isinstance(expr, AllOf) else "any", [expr_value(t) for t in expr.terms]]


def expr_json(expr: ApprovalExpr) -> dict[str, Any]:
    if isinstance(expr, Group):
        return {"group": expr.group, "k": expr.k}
    return {"all" if isinstance(expr, AllOf) else "any": [expr_json(t) for t in expr.terms]}


# --- rules -------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Condition:
    """What a rule matches; a field left as None matches anything. Amount bounds are inclusive.

    `kinds`: the request kinds it matches; None means the transfer kinds only (withdrawal and cold
    sweep), so an approval or a contract call is matched only by a rule that names its kind.
    `contracts`: the spender of an approval or the contract called (canonical addresses);
    `selectors`: the 4-byte function selectors (`0x` + 8 lower-case hex digits) of a contract call.
    """

    assets: frozenset[str] | None = None
    amount_min: int | None = None
    amount_max: int | None = None
    destinations: frozenset[str] | None = None
    initiators: frozenset[str] | None = None
    keys: frozenset[str] | None = None
    kinds: frozenset[str] | None = None
    contracts: frozenset[str] | None = None
    selectors: frozenset[str] | None = None

    def matches(
        self,
        asset: str,
        amount: int,
        destination_class: str,
        initiator: str,
        key_id: str,
        call: CallFacts = ("withdrawal", "", ""),
    ) -> bool:
        """Whether a request with these decoded attributes falls under this condition; `call` is
        (request kind, counterparty address, selector)."""
        kind, counterparty, selector = call
        return (
            (self.assets is None or asset in self.assets)
            and (self.amount_min is None or amount >= self.amount_min)
            and (self.amount_max is None or amount <= self.amount_max)
            and (self.destinations is None or destination_class in self.destinations)
            and (self.initiators is None or initiator in self.initiators)
            and (self.keys is None or key_id in self.keys)
            and (kind in TRANSFER_KINDS if self.kinds is None else kind in self.kinds)
            and (self.contracts is None or counterparty in self.contracts)
            and (self.selectors is None or selector in self.selectors)
        )

    def call_names(self) -> tuple[tuple[str, frozenset[str] | None], ...]:
        """The call-related fields by JSON name."""
        return (("kinds", self.kinds), ("contracts", self.contracts), ("selectors", self.selectors))


CallFacts = tuple[str, str, str]
_SELECTOR = re.compile(r"^0x[0-9a-f]{8}$")


def check_call_condition(rule_id: str, c: Condition) -> None:
    """The call fields of a rule's condition make sense: known kinds; contracts (canonical
    addresses) only for approvals and contract calls; selectors only for contract calls; and a
    rule that matches contract calls names both the contracts and the selectors it allows."""
    if c.kinds is not None and not c.kinds <= set(REQUEST_KINDS):
        raise malformed(f"rule {rule_id}: kinds are {list(REQUEST_KINDS)}")
    kinds = c.kinds if c.kinds is not None else TRANSFER_KINDS
    if c.contracts is not None:
        if not kinds <= {APPROVAL, CONTRACT_CALL}:
            raise malformed(f"rule {rule_id}: contracts only apply to approval and contract_call rules")
        for a in c.contracts:
            try:
                ok = isinstance(a, str) and to_checksum(parse_address(a).hex()) == a
            except TxError:
                ok = False
            if not ok:
                raise malformed(f"rule {rule_id}: contract {a!r} is not a checksummed address")
    if c.selectors is not None:
        if kinds != {CONTRACT_CALL}:
            raise malformed(f"rule {rule_id}: selectors only apply to contract_call rules")
        if not all(isinstance(x, str) and _SELECTOR.match(x) for x in c.selectors):
            raise malformed(f"rule {rule_id}: a selector is 0x and 8 lower-case hex digits")
    if CONTRACT_CALL in kinds and (c.contracts is None or c.selectors is None):
        raise malformed(f"rule {rule_id}: a contract_call rule must name its contracts and selectors")


@dataclass(frozen=True, slots=True)
class Action:
    """`allow`, `require` approvals (optionally plus a time lock in seconds after the quorum), or `block`.

    `fee_cap` (base units of the fee asset), when set, replaces the fee rule's `max_fee` and
    `max_fee_bps` for requests this tier releases: the tier's own worst-case fee bound, e.g. a
    higher one for a tier whose officers read the fee in the intent they approve.
    """

    kind: str
    approvals: ApprovalExpr | None = None
    time_lock: int = 0
    fee_cap: int | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    """One ordered rule."""

    rule_id: str
    when: Condition
    action: Action


@dataclass(frozen=True, slots=True)
class Limit:
    """A hard limit; exceeding it blocks whatever the rules say.

    scopes: `transaction` (amount of one request), `key_asset` (sum per key and asset over the
    rolling `window`), `destination` (sum per destination and asset over `window`), `client_rate`
    (requests per initiator over `window`). `destinations` restricts it to some classes.
    """

    limit_id: str
    scope: str
    asset: str = ""
    window: int = 0
    max_amount: int = 0
    max_count: int = 0
    destinations: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class FeeRule:
    """What a transaction on `chain` may pay in its fee asset `asset` (base units).

    `max_fee` bounds the worst-case fee (max fee per gas × gas limit, from the body);
    `max_fee_bps` (optional) bounds it relative to the amount, fee <= amount × bps / 10000, and
    applies only when the transfer's asset is the fee asset (a token transfer has no common unit
    with its fee; it is bounded by `max_fee` and by the windowed limits on the fee asset);
    the gas limit must lie in [`min_gas_limit`, `max_gas_limit`]. On a Bitcoin chain (`bip122:`)
    `max_fee` bounds the fee in satoshis (inputs minus outputs) and the gas limits bound the
    transaction's virtual size in vbytes.
    """

    chain: str
    asset: str
    max_fee: int
    min_gas_limit: int
    max_gas_limit: int
    max_fee_bps: int | None = None


@dataclass(frozen=True, slots=True)
class AllowEntry:
    """An allow-listed destination; it counts as `allowed` from `added_at + cooldown` on."""

    address: str
    added_at: int
    label: str = ""


@dataclass(frozen=True, slots=True)
class ColdEntry:
    """A registered cold-storage address."""

    address: str
    label: str = ""


@dataclass(frozen=True, slots=True)
class TrustRamp:
    """The first `first` withdrawals to a (non-cold) destination are capped per asset."""

    first: int
    caps: tuple[tuple[str, int], ...]

    def cap(self, asset: str) -> int | None:
        """The cap for `asset`, if any."""
        return dict(self.caps).get(asset)


# --- canonical encodings (the version hash is taken over these) ---------------------------------
def names_value(names: frozenset[str]) -> list[Value]:
    """Sorted names, encodable."""
    return [*sorted(names)]


def opt_names_value(names: frozenset[str] | None) -> list[Value]:
    """`[]` for None (any), else `[sorted names]`."""
    return [] if names is None else [names_value(names)]


def condition_value(c: Condition) -> list[Value]:
    """Canonical encoding of a condition."""
    amounts: list[Value] = [[] if v is None else [v] for v in (c.amount_min, c.amount_max)]
    # The call fields are appended only when set, so the hash of every older document is unchanged.
    calls: list[Value] = [opt_names_value(v) for _, v in c.call_names()]
    return [
        opt_names_value(c.assets),
        *amounts,
        opt_names_value(c.destinations),
        opt_names_value(c.initiators),
        opt_names_value(c.keys),
        *(calls if any(v is not None for _, v in c.call_names()) else []),
    ]


def action_value(a: Action) -> list[Value]:
    """Canonical encoding of an action."""
    fee_cap: list[Value] = [] if a.fee_cap is None else [a.fee_cap]
    return [a.kind, [] if a.approvals is None else [expr_value(a.approvals)], a.time_lock, fee_cap]


def fee_rule_value(f: FeeRule) -> list[Value]:
    """Canonical encoding of a fee rule."""
    bps: list[Value] = [] if f.max_fee_bps is None else [f.max_fee_bps]
    return [f.chain, f.asset, f.max_fee, f.min_gas_limit, f.max_gas_limit, bps]
