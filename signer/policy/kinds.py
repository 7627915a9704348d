"""Request kinds and the rule that depends on the kind, checked by the coordinator and every signer.

A `withdrawal` goes through the policy's rules as they stand. A `cold_sweep` moves funds to cold
storage, and may only go to a destination the policy lists as cold (else `NOT_COLD`), checked
before any rule so that a sweep never rides on a rule written for withdrawals.
"""

from __future__ import annotations

from .document import PolicyDocument
from .errors import PolicyError
from .intent import Intent, canonical_destination

WITHDRAWAL = "withdrawal"
COLD_SWEEP = "cold_sweep"
REQUEST_KINDS = (WITHDRAWAL, COLD_SWEEP)
NOT_COLD = "sweep_destination_not_cold"
"""The block reason of a cold sweep whose destination is not a registered cold address."""


def check_kind(kind: str) -> None:
    """Raises `PolicyError("kind_invalid")` unless `kind` is one of `REQUEST_KINDS`."""
    if kind not in REQUEST_KINDS:
        raise PolicyError("kind_invalid", f"kind must be one of {REQUEST_KINDS}")


def check_kind_rule(policy: PolicyDocument, intent: Intent, kind: str, now: int) -> None:
    """What the kind alone demands of a request; raises `PolicyError` with `kind_invalid`,
    `undecodable_destination` or `NOT_COLD`."""
    check_kind(kind)
    if kind == COLD_SWEEP:
        destination = canonical_destination(intent.chain, intent.destination)
        if policy.destination_class(destination, now) != "cold":
            raise PolicyError(NOT_COLD, f"a cold sweep may only go to a registered cold address, not {destination}")
