"""The first officer registry and policy of a deployment, signed by its admins (offline).

One home for genesis: `tssctl governance genesis` (cli_governance.py) and the local cluster
(cluster.py) both build and sign it here. A signer accepts the first registry only if its admins
are exactly the node config's `trusted_admins` and an admin quorum of them signed it; the first
policy must be signed by that quorum too (signer/policy/change.py, `Governed.genesis`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from signer.policy import (
    Governed,
    Officer,
    OfficerRegistry,
    PolicyChange,
    PolicyDocument,
    PolicyError,
    public_key_bytes,
)

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
    reg_change: PolicyChange[OfficerRegistry] = PolicyChange(reg, now)
    pol_change: PolicyChange[PolicyDocument] = PolicyChange(policy, now)
    for who, key in keys.items():
        reg_change = reg_change.signed(key, who)
        pol_change = pol_change.signed(key, who)
    Governed.genesis(reg_change, reg)  # raises admin_quorum_not_met with too few keys
    Governed.genesis(pol_change, reg)
    return Genesis(reg_change, pol_change)
