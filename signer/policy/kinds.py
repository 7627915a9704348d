"""Request kinds and the rule that depends on the kind, checked by the coordinator and every signer.

A `withdrawal` goes through the policy's rules as they stand. A `cold_sweep` moves funds to cold
storage, and may only go to a destination the policy lists as cold (else `NOT_COLD`), checked
before any rule so that a sweep never rides on a rule written for withdrawals.
An `approval` (ERC-20 `approve` / `increaseAllowance`) and a `contract_call` (any other calldata)
are kinds of their own: only rules that name the kind match them (rules.py), and the kind must be
what the body decodes to (`kind_mismatch`), so a token approval never rides on a withdrawal rule.
A `replacement` (speed-up or cancel) signs another transaction with the nonce of an earlier one;
only rules naming the kind match it, and never automatically (engine.py: approvals required), so
no two transactions from one address share a nonce without officers approving the second.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import PolicyError
from .intent import APPROVE, CALL, INCREASE_ALLOWANCE, TRANSFER, TRANSFER_FROM, Intent, canonical_destination

if TYPE_CHECKING:
    # document.py imports rules.py, which imports this module's kind names.
    from .document import PolicyDocument

WITHDRAWAL = "withdrawal"
COLD_SWEEP = "cold_sweep"
APPROVAL = "approval"
CONTRACT_CALL = "contract_call"
REPLACEMENT = "replacement"
REQUEST_KINDS = (WITHDRAWAL, COLD_SWEEP, APPROVAL, CONTRACT_CALL, REPLACEMENT)
TRANSFER_KINDS = frozenset({WITHDRAWAL, COLD_SWEEP})
"""The kinds a rule without a `kinds` condition matches."""
NOT_COLD = "sweep_destination_not_cold"
"""The block reason of a cold sweep whose destination is not a registered cold address."""
CALLS_OF_KIND = {
    WITHDRAWAL: frozenset({TRANSFER, TRANSFER_FROM}),
    COLD_SWEEP: frozenset({TRANSFER}),
    APPROVAL: frozenset({APPROVE, INCREASE_ALLOWANCE}),
    CONTRACT_CALL: frozenset({CALL}),
    REPLACEMENT: frozenset({TRANSFER, TRANSFER_FROM, APPROVE, INCREASE_ALLOWANCE}),
}


def check_kind(kind: str) -> None:
    """Raises `PolicyError("kind_invalid")` unless `kind` is one of `REQUEST_KINDS`."""
    if kind not in REQUEST_KINDS:
        raise PolicyError("kind_invalid", f"kind must be one of {REQUEST_KINDS}")


def check_kind_rule(policy: PolicyDocument, intent: Intent, kind: str, now: int) -> None:
    """What the kind alone demands of a request; raises `PolicyError` with `kind_invalid`,
    `kind_mismatch`, `undecodable_destination` or `NOT_COLD`."""
    check_kind(kind)
    if intent.call not in CALLS_OF_KIND[kind]:
        raise PolicyError("kind_mismatch", f"a {kind} request cannot carry a {intent.call} call")
    if kind == COLD_SWEEP:
        destination = canonical_destination(intent.chain, intent.destination)
        if policy.destination_class(destination, now) != "cold":
            raise PolicyError(NOT_COLD, f"a cold sweep may only go to a registered cold address, not {destination}")
