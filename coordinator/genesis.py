"""The first officer registry and policy of a deployment, signed by its admins (offline).

One home for genesis: `tssctl governance genesis` (cli_governance.py) and the local cluster
(cluster.py) both build and sign it here. A signer accepts the first registry only if its admins
are exactly the node config's `trusted_admins` and an admin quorum of them signed it; the first
policy must be signed by that quorum too (signer/policy/change.py, `Governed.genesis`). A policy
that the registry could never satisfy (a rule needing more officers of a group than it holds, a
group it does not have, more officers to unfreeze or admins for a key order than registered) is
refused here (`check_satisfiable`): installed, it would block every request it governs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from signer.policy import (
    AllOf,
    ApprovalExpr,
    Governed,
    Group,
    Officer,
    OfficerRegistry,
    PolicyChange,
    PolicyDocument,
    PolicyError,
    describe_expr,
    public_key_bytes,
)
from signer.policy.rules import expr_groups

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

OFFICER_GROUP = "officers"
"""The group genesis officers join: the group the shipped policies' approval rules name."""


@dataclass(frozen=True, slots=True)
class Genesis:
    """The signed first registry and policy, ready for `tssctl governance install`."""

    registry: PolicyChange[OfficerRegistry]
    policy: PolicyChange[PolicyDocument]

    def changes(self) -> tuple[tuple[str, str], ...]:
        """(kind, change JSON) in install order: the registry first (the policy is checked against it)."""
        return (("registry", self.registry.to_json()), ("policy", self.policy.to_json()))


def registry(
    officers: Mapping[str, bytes],
    admins: Mapping[str, bytes],
    *,
    admin_quorum: int = 0,
    change_delay: int = 86400,
    group: str = OFFICER_GROUP,
) -> OfficerRegistry:
    """Genesis registry (version 1): `officers` in `group`, `admins` with the admin role.
    `admin_quorum` 0 means a majority of the admins. Raises `PolicyError` (`registry_malformed`)."""
    if not admins:
        raise PolicyError("registry_malformed", "at least one admin")
    people: dict[str, Officer] = {
        o: Officer(o, pub, frozenset({group}), frozenset({"officer"})) for o, pub in officers.items()
    }
    for a, pub in admins.items():
        if a in people:  # one id, one key: an id in both lists gets both roles only with the same key
            if people[a].public_key != pub:
                raise PolicyError("registry_malformed", f"{a} has two keys")
            people[a] = Officer(a, pub, people[a].groups, frozenset({"officer", "admin"}))
        else:
            people[a] = Officer(a, pub, frozenset(), frozenset({"admin"}))
    quorum = admin_quorum or len(admins) // 2 + 1
    return OfficerRegistry(1, tuple(people.values()), admin_quorum=quorum, change_delay=change_delay)


def trusted_admins(reg: OfficerRegistry) -> dict[str, str]:
    """The `trusted_admins` block of every signer config: the registry's admins, hex public keys."""
    return {o.officer_id: o.public_key.hex() for o in reg.officers if "admin" in o.roles}


def sign(reg: OfficerRegistry, policy: PolicyDocument, keys: Mapping[str, Ed25519PrivateKey], now: int) -> Genesis:
    """Sign both documents with each admin key, then check them as a signer will (`Governed.genesis`),
    so a genesis that no signer would accept is refused here. Raises `PolicyError`."""
    admins = trusted_admins(reg)
    for who, key in keys.items():
        if who not in admins:
            raise PolicyError("unknown_admin", f"{who} is not an admin of the registry")
        if public_key_bytes(key).hex() != admins[who]:
            raise PolicyError("admin_key_mismatch", f"{who}'s key file does not match its public key")
    if policy.version != 1 or policy.previous_hash:
        raise PolicyError("policy_not_chained", "a genesis policy has version 1 and no previous_hash")
    check_satisfiable(policy, reg)
    reg_change: PolicyChange[OfficerRegistry] = PolicyChange(reg, now)
    pol_change: PolicyChange[PolicyDocument] = PolicyChange(policy, now)
    for who, key in keys.items():
        reg_change = reg_change.signed(key, who)
        pol_change = pol_change.signed(key, who)
    Governed.genesis(reg_change, reg)  # raises admin_quorum_not_met with too few keys
    Governed.genesis(pol_change, reg)
    return Genesis(reg_change, pol_change)


def check_satisfiable(policy: PolicyDocument, reg: OfficerRegistry) -> None:
    """Refuse (`policy_unsatisfiable`) a policy the registry's officers and admins could never meet."""
    every = frozenset(o.officer_id for o in reg.officers if "officer" in o.roles)
    rules = [(f"rule {r.rule_id}", r.action.approvals) for r in policy.rules]
    rules += [(f"message rule {m.rule_id}", m.action.approvals) for m in policy.messages]
    for name, expr in rules:
        if expr is None:
            continue
        # A group the registry does not have is refused even inside an `any`: a typo, not a choice.
        unknown = sorted(g for g in expr_groups(expr) if not reg.members(g))
        short = f"the registry has no officer in group {unknown[0]!r}" if unknown else _short(expr, reg)
        if short is not None:
            raise PolicyError("policy_unsatisfiable", f"{name} needs {describe_expr(expr)}: {short}")
    if policy.unfreeze_quorum > len(every):
        raise PolicyError(
            "policy_unsatisfiable",
            f"unfreeze_quorum {policy.unfreeze_quorum}: the registry holds {len(every)} officer(s)",
        )
    admins = sum(1 for o in reg.officers if "admin" in o.roles)
    ops = policy.key_operations
    for name, k in (("refresh_admins", ops.refresh_admins), ("reshare_admins", ops.reshare_admins)):
        if k > admins:
            raise PolicyError(
                "policy_unsatisfiable", f"key_operations {name} {k}: the registry holds {admins} admin(s)"
            )


def _short(expr: ApprovalExpr, reg: OfficerRegistry) -> str | None:
    """Why `expr` stays unmet with every registered officer approving (None: it is met then)."""
    if isinstance(expr, Group):
        members = reg.members(expr.group)
        if len(members) < expr.k:
            return f"the registry holds {len(members)} officer(s) in group {expr.group!r}: {', '.join(sorted(members))}"
        return None
    failing = [why for why in (_short(t, reg) for t in expr.terms) if why is not None]
    if failing and (isinstance(expr, AllOf) or len(failing) == len(expr.terms)):
        return failing[0]
    return None
