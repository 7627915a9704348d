"""Message-signing rules (request kind `message`): EIP-191 personal messages and EIP-712 typed
data are off unless a rule allows them, and an approval-like message needs a rule naming its spender.

A signed message can move funds as surely as a transaction: an EIP-2612 `Permit` or a Permit2
`PermitSingle` lets the spender pull tokens with no transaction from us at all, so these are a top
drain vector. Hence, checked by the coordinator and by every signer on the intent it rebuilt from
the message itself (message_intent.py):
  no `MessageRule` of the policy matches           -> `message_not_allowed` (fail closed);
  approval-like (`is_approval_like`) and the matching
  rule does not list the spender in `spenders`     -> `message_spender_not_allowed`;
  otherwise the rule's action (allow / require a quorum / block), as for transactions.
Rules are tried in order; the first whose standard, networks, contracts and primary types all
match decides. A rule's `networks` and `contracts` bind the EIP-712 domain (chainId,
verifyingContract); an EIP-191 message has neither, so only a rule without them matches it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from signer.tss.encoding import Value

from .document_json import check_keys, parse_expr, read_address, read_int, read_list, read_names, read_str
from .rules import Action, check_expr, expr_json, expr_value, malformed, names_value

EIP191, EIP712 = "eip191", "eip712"
STANDARDS = (EIP191, EIP712)
APPROVAL_WORDS = ("permit", "approv", "allowance", "delegat")
"""Primary-type names containing one of these (case-insensitive) are approval-like."""
SPENDER_FIELDS = ("spender", "operator", "delegatee", "delegate")
"""Address members that name who is granted something; a struct with one is approval-like."""


@dataclass(frozen=True, slots=True)
class MessageRule:
    """Allows messages of one `standard`; empty `networks` / `contracts` / `primary_types` match any
    (an EIP-191 message only matches a rule with empty `networks` and `contracts`). `spenders`:
    the only spenders an approval-like message may name (none: approval-like messages refused)."""

    rule_id: str
    standard: str
    action: Action
    networks: frozenset[str] = frozenset()
    contracts: frozenset[str] = frozenset()
    primary_types: frozenset[str] = frozenset()
    spenders: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not self.rule_id or self.standard not in STANDARDS:
            raise malformed(f"message rule {self.rule_id!r}: standard must be one of {STANDARDS}")
        if self.action.kind not in ("allow", "require", "block"):
            raise malformed(f"message rule {self.rule_id}: bad action {self.action.kind!r}")
        if (self.action.kind == "require") != (self.action.approvals is not None):
            raise malformed(f"message rule {self.rule_id}: `require` and only it names approvals")
        if self.action.approvals is not None:
            check_expr(self.action.approvals)
        if self.action.fee_cap is not None or self.action.time_lock < 0:
            raise malformed(f"message rule {self.rule_id}: no fee cap for messages; time lock >= 0")
        if self.standard == EIP191 and (self.networks or self.contracts or self.primary_types or self.spenders):
            raise malformed(f"message rule {self.rule_id}: an EIP-191 message has no domain or type")
        object.__setattr__(self, "contracts", frozenset(read_address(a) for a in self.contracts))
        object.__setattr__(self, "spenders", frozenset(read_address(a) for a in self.spenders))

    def matches(self, standard: str, network: str, contract: str, primary_type: str) -> bool:
        """Whether a message with these decoded fields falls under this rule."""
        return (
            standard == self.standard
            and (not self.networks or network in self.networks)
            and (not self.contracts or contract in self.contracts)
            and (not self.primary_types or primary_type in self.primary_types)
        )

    def value(self) -> list[Value]:
        """The rule's part of the document hash."""
        a = self.action
        action: list[Value] = [a.kind, [] if a.approvals is None else [expr_value(a.approvals)], a.time_lock]
        return [
            self.rule_id,
            self.standard,
            action,
            names_value(self.networks),
            names_value(self.contracts),
            names_value(self.primary_types),
            names_value(self.spenders),
        ]

    def to_json(self) -> dict[str, Any]:
        """The JSON form admins edit."""
        action: dict[str, Any] = {"type": self.action.kind}
        if self.action.approvals is not None:
            action["approvals"] = expr_json(self.action.approvals)
        if self.action.time_lock:
            action["time_lock"] = self.action.time_lock
        d: dict[str, Any] = {"id": self.rule_id, "standard": self.standard, "action": action}
        for name in ("networks", "contracts", "primary_types", "spenders"):
            if getattr(self, name):
                d[name] = sorted(getattr(self, name))
        return d


def parse_message_rule(d: Any) -> MessageRule:
    """A message rule from its JSON form; raises `policy_malformed`."""
    check_keys(d, {"id", "standard", "action"}, {"networks", "contracts", "primary_types", "spenders"})
    a = d["action"]
    check_keys(a, {"type"}, {"approvals", "time_lock"})
    approvals = parse_expr(a["approvals"]) if "approvals" in a else None
    action = Action(read_str(a["type"]), approvals, read_int(a.get("time_lock", 0)))
    return MessageRule(
        read_str(d["id"]),
        read_str(d["standard"]),
        action,
        read_names(d.get("networks", [])),
        frozenset(read_str(x) for x in read_list(d.get("contracts", []))),
        read_names(d.get("primary_types", [])),
        frozenset(read_str(x) for x in read_list(d.get("spenders", []))),
    )


def check_message_rules(rules: Sequence[MessageRule]) -> None:
    """Rule ids are unique; raises `policy_malformed`."""
    if len({r.rule_id for r in rules}) != len(rules):
        raise malformed("duplicate message rule id")


def messages_tighter(old: Sequence[MessageRule], new: Sequence[MessageRule]) -> bool:
    """Conservative: `new` is `old` with trailing rules removed (first match decides, so removing
    an earlier rule could expose a looser later one; anything else waits out the change delay)."""
    return tuple(new) == tuple(old)[: len(new)]


def is_approval_like(primary_type: str, has_spender_field: bool) -> bool:
    """Whether a typed-data message grants someone a right over our assets (see module docstring)."""
    name = primary_type.lower()
    return has_spender_field or any(w in name for w in APPROVAL_WORDS)
