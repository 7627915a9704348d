"""The coordinator's copy of the signers' check of key orders (refresh / reshare), before any work.

RefreshKey and ReshareKey carry an admin quorum's signed `KeyOrder` (signer/policy/key_order.py).
The coordinator verifies it against the registry and policy in force here and the key's current
epoch, and refuses with the reason every signer would give (`key_order_quorum_not_met`,
`key_order_expired`, `key_order_mismatch`, ...), so an under-signed order fails at once and is
audited (`key_order_refused`) instead of failing inside a session. Every signer checks the order
again for itself (signer/node/key_operations.py): this check is for the operator, not for safety.

A refresh without an order is the scheduler's (`refresh_every` in the policy): the coordinator
starts it only when the key's epoch is that old by its own count; each signer decides by its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from signer.policy import KeyOrder, PolicyError

from .audit import KEY
from .errors import FailedPrecondition, refused
from .governance import Governance
from .store import KeyRecord
from .trail import AuditTrail


@dataclass(frozen=True, slots=True)
class CheckedOrder:
    """An order that passed the coordinator's check, with the admins who signed it."""

    order: KeyOrder
    signers: tuple[str, ...]
    raw: bytes

    def audit_fields(self) -> dict[str, object]:
        """What the audit entry of the operation records about its authority (the order itself too,
        so an auditor can check its signatures offline)."""
        return {
            "authorized_by": self.signers,
            "order_issued_at": self.order.issued_at,
            "order_expires_at": self.order.expires_at,
            "key_order": self.raw,
        }


class KeyOrders:
    """Verifies key orders against the governance in force; refusals are audited and raised."""

    def __init__(self, governance: Governance, trail: AuditTrail) -> None:
        self.governance = governance
        self.trail = trail

    def check(
        self,
        operation: str,
        key: KeyRecord,
        raw: bytes,
        now: int,
        *,
        actor: str,
        parties: tuple[int, ...] = (),
        threshold: int = 0,
        dealers: tuple[int, ...] = (),
    ) -> CheckedOrder:
        """The order in `raw` for `operation` on `key` from its current epoch (a reshare: to
        `parties` at `threshold`, dealt by `dealers`); raises `Refused` with the policy reason
        (audited `key_order_refused`)."""
        try:
            if not raw:
                raise PolicyError("key_order_missing", f"a {operation} needs an admin quorum's key order")
            registry, policy = self.governance.registry(now), self.governance.policy(now)
            if registry is None or policy is None:
                raise FailedPrecondition("no officer registry and policy installed")
            order = KeyOrder.from_bytes(raw)
            signers = order.verify(registry, policy.key_operations, now)
            order.check_session(operation, key.key_id, key.epoch, parties, threshold, dealers)
        except PolicyError as exc:
            self.refused(operation, key, actor, exc)
            raise refused(exc) from None
        return CheckedOrder(order, tuple(sorted(signers)), raw)

    def refused(self, operation: str, key: KeyRecord, actor: str, exc: PolicyError) -> None:
        """Audit a refused order."""
        self.trail.record(
            KEY,
            "key_order_refused",
            key.key_id,
            actor,
            key_id=key.key_id,
            operation=operation,
            epoch=key.epoch,
            reason=exc.reason,
            detail=exc.detail,
        )
