"""Signed key orders: an admin quorum's order to refresh a key or reshare it to a new committee.

A `KeyOrder` names the operation (`refresh` | `reshare`), the key, the epoch it starts from, for a
reshare the new committee, its threshold and (optionally) the dealers, when it was issued and when
it expires (at most `MAX_KEY_ORDER_TTL` after issue), and carries admin Ed25519 signatures over its
tagged encoding. Because it names the epoch it starts from, it is good for one epoch change: once
the key moved on, the order no longer matches any session.

`KeyOrder.verify` checks it against an installed registry and policy: the admins of the registry
reach the quorum the policy names for the operation (`KeyOperations`; by default and at least the
registry's `admin_quorum`). `KeyOrder.check_session` checks it against the session a coordinator
started. Each signer runs both for itself (signer/node/key_operations.py); the coordinator runs
them first to refuse early with the same reason.

`KeyOperations` is the policy document's optional `key_operations` field: raised quorums per
operation and `refresh_every` (seconds; 0: no scheduled refresh). Raising a quorum or shortening
`refresh_every` (or setting it where there was none) tightens; the reverse loosens.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from signer.tss.encoding import Value, as_int, as_list, as_str, decode, encode
from signer.tss.errors import DecodeError

from .approvals import (
    MAX_CLOCK_SKEW,
    Endorsement,
    OfficerRegistry,
    endorse,
    endorsements_from_value,
    endorsements_value,
    verify_endorsements,
)
from .errors import PolicyError

KEY_ORDER_TAG = "policy/key-order/v1"
REFRESH = "refresh"
RESHARE = "reshare"
KEY_OPERATIONS = (REFRESH, RESHARE)
MAX_KEY_ORDER_TTL = 24 * 3600
DEFAULT_KEY_ORDER_TTL = 3600
MIN_REFRESH_EVERY = 60

# Refusal reasons (exact strings, asserted by the attack tests).
ORDER_MISSING = "key_order_missing"
ORDER_MALFORMED = "key_order_malformed"
ORDER_QUORUM_NOT_MET = "key_order_quorum_not_met"
ORDER_EXPIRED = "key_order_expired"
ORDER_NOT_YET_VALID = "key_order_not_yet_valid"
ORDER_MISMATCH = "key_order_mismatch"


def _malformed(detail: str) -> PolicyError:
    return PolicyError("policy_malformed", f"key_operations: {detail}")


@dataclass(frozen=True, slots=True)
class KeyOperations:
    """The policy's rule for key operations: admin quorums (0: the registry's) and the refresh schedule."""

    refresh_admins: int = 0
    reshare_admins: int = 0
    refresh_every: int = 0

    def __post_init__(self) -> None:
        for name in ("refresh_admins", "reshare_admins", "refresh_every"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise _malformed(f"{name} must be a non-negative integer")
        if 0 < self.refresh_every < MIN_REFRESH_EVERY:
            raise _malformed(f"refresh_every is at least {MIN_REFRESH_EVERY} seconds (0: no scheduled refresh)")

    def quorum(self, operation: str, registry: OfficerRegistry) -> int:
        """Admins needed for `operation`: the policy's number, never below the registry's admin quorum."""
        raised = self.refresh_admins if operation == REFRESH else self.reshare_admins
        return max(raised, registry.admin_quorum)

    def value(self) -> list[Value]:
        """Encodable form (part of the policy's version hash)."""
        return [self.refresh_admins, self.reshare_admins, self.refresh_every]

    def is_tightening_of(self, old: KeyOperations) -> bool:
        """No quorum shrinks and the refresh schedule is kept or made more frequent."""
        if self.refresh_admins < old.refresh_admins or self.reshare_admins < old.reshare_admins:
            return False
        if old.refresh_every == 0:
            return True
        return 0 < self.refresh_every <= old.refresh_every

    def to_json(self) -> dict[str, Any]:
        """The JSON form in the policy document (defaults left out)."""
        out: dict[str, Any] = {}
        if self.refresh_admins:
            out[REFRESH] = {"admins": self.refresh_admins}
        if self.reshare_admins:
            out[RESHARE] = {"admins": self.reshare_admins}
        if self.refresh_every:
            out["refresh_every"] = self.refresh_every
        return out

    @classmethod
    def from_json(cls, d: Any) -> KeyOperations:
        """Parse `{"refresh": {"admins": k}, "reshare": {"admins": k}, "refresh_every": s}` (all optional)."""
        if not isinstance(d, dict) or not set(d) <= {REFRESH, RESHARE, "refresh_every"}:
            raise _malformed("expected an object with refresh, reshare, refresh_every")

        def admins(op: str) -> Any:
            rule = d.get(op, {"admins": 0})
            if not isinstance(rule, dict) or set(rule) != {"admins"}:
                raise _malformed(f"{op} must be {{\"admins\": k}}")
            if rule["admins"] == 0 and op in d:
                raise _malformed(f"{op}.admins must be at least 1")
            return rule["admins"]

        return cls(admins(REFRESH), admins(RESHARE), d.get("refresh_every", 0))


NO_KEY_OPERATIONS = KeyOperations()


@dataclass(frozen=True, slots=True)
class KeyOrder:
    """An admin quorum's order to refresh `key_id` from `from_epoch`, or reshare it to `parties`/`threshold`.

    `dealers` empty: the coordinator picks the live old parties that deal.
    """

    operation: str
    key_id: str
    from_epoch: int
    issued_at: int
    expires_at: int
    parties: tuple[int, ...] = ()
    threshold: int = 0
    dealers: tuple[int, ...] = ()
    signatures: tuple[Endorsement, ...] = ()

    def _fields(self) -> tuple[Value, ...]:
        """Every field but the signatures, in wire order: one list for what is signed and what is
        sent, so no field can travel unsigned."""
        return (
            self.operation,
            self.key_id,
            self.from_epoch,
            list(self.parties),
            self.threshold,
            list(self.dealers),
            self.issued_at,
            self.expires_at,
        )

    def message(self) -> bytes:
        """What each admin signs."""
        return encode(KEY_ORDER_TAG, *self._fields())

    def signed(self, key: Ed25519PrivateKey, admin_id: str) -> KeyOrder:
        """This order with one more admin signature."""
        return dataclasses.replace(self, signatures=(*self.signatures, endorse(key, admin_id, self.message())))

    def to_bytes(self) -> bytes:
        """Wire form."""
        return encode(KEY_ORDER_TAG + "/wire", *self._fields(), endorsements_value(self.signatures))

    @classmethod
    def from_bytes(cls, data: bytes) -> KeyOrder:
        """Parse the wire form; raises `key_order_malformed`."""
        try:
            f = decode(KEY_ORDER_TAG + "/wire", data, 9)
            order = cls(
                as_str(f[0]),
                as_str(f[1]),
                as_int(f[2]),
                as_int(f[6]),
                as_int(f[7]),
                tuple(as_int(p) for p in as_list(f[3])),
                as_int(f[4]),
                tuple(as_int(p) for p in as_list(f[5])),
                endorsements_from_value(f[8]),
            )
        except DecodeError as exc:
            raise PolicyError(ORDER_MALFORMED, str(exc)) from None
        order.check_form()
        return order

    def check_form(self) -> None:
        """Raise `key_order_malformed` unless the fields fit the operation."""
        if self.operation not in KEY_OPERATIONS:
            raise PolicyError(ORDER_MALFORMED, f"operation must be one of {KEY_OPERATIONS}")
        if not 0 < self.expires_at - self.issued_at <= MAX_KEY_ORDER_TTL:
            raise PolicyError(ORDER_MALFORMED, f"an order expires within {MAX_KEY_ORDER_TTL} s of its issue")
        if self.operation == REFRESH and (self.parties or self.threshold or self.dealers):
            raise PolicyError(ORDER_MALFORMED, "a refresh order names no committee")
        if self.operation == RESHARE:
            new = self.parties
            if list(new) != sorted(set(new)) or not new or not 2 <= self.threshold <= len(new):
                raise PolicyError(ORDER_MALFORMED, "a reshare order names a sorted committee and 2 <= t <= n")
            if list(self.dealers) != sorted(set(self.dealers)):
                raise PolicyError(ORDER_MALFORMED, "dealers are sorted and distinct")

    def verify(self, registry: OfficerRegistry, operations: KeyOperations, now: int) -> frozenset[str]:
        """The admins who signed; raises `PolicyError` (malformed, not yet valid, expired, a bad
        signature's reason, or `key_order_quorum_not_met` below the policy's quorum for the operation)."""
        self.check_form()
        if self.issued_at > now + MAX_CLOCK_SKEW:
            raise PolicyError(ORDER_NOT_YET_VALID, f"issued at {self.issued_at}, now {now}")
        if now >= self.expires_at:
            raise PolicyError(ORDER_EXPIRED, f"expired at {self.expires_at}, now {now}")
        return verify_endorsements(
            registry,
            self.message(),
            self.signatures,
            role="admin",
            k=operations.quorum(self.operation, registry),
            not_met=ORDER_QUORUM_NOT_MET,
        )

    def check_session(
        self,
        operation: str,
        key_id: str,
        epoch: int,
        parties: tuple[int, ...] = (),
        threshold: int = 0,
        dealers: tuple[int, ...] = (),
    ) -> None:
        """Raise `key_order_mismatch` unless this order is for exactly this session: the operation,
        key and starting epoch, and for a reshare the committee, threshold and (if named) dealers."""
        expected: tuple[Any, ...] = (self.operation, self.key_id, self.from_epoch)
        if (operation, key_id, epoch) != expected:
            raise PolicyError(ORDER_MISMATCH, f"order for {expected}, session {(operation, key_id, epoch)}")
        if operation != RESHARE:
            return
        if (tuple(sorted(parties)), threshold) != (self.parties, self.threshold):
            raise PolicyError(ORDER_MISMATCH, f"order names {self.threshold}-of-{list(self.parties)}")
        if self.dealers and tuple(sorted(dealers)) != self.dealers:
            raise PolicyError(ORDER_MISMATCH, f"order names dealers {list(self.dealers)}")

    def describe(self) -> dict[str, Any]:
        """JSON summary for the CLI and the audit log."""
        out: dict[str, Any] = {
            "operation": self.operation,
            "key_id": self.key_id,
            "from_epoch": self.from_epoch,
            "issued_at": self.issued_at,
            "expires_at": self.expires_at,
            "signed_by": [e.signer_id for e in self.signatures],
        }
        if self.operation == RESHARE:
            out |= {"parties": list(self.parties), "threshold": self.threshold, "dealers": list(self.dealers)}
        return out


def key_order(
    operation: str,
    key_id: str,
    from_epoch: int,
    now: int,
    *,
    ttl: int = DEFAULT_KEY_ORDER_TTL,
    parties: tuple[int, ...] = (),
    threshold: int = 0,
    dealers: tuple[int, ...] = (),
) -> KeyOrder:
    """An unsigned order issued at `now` (sign it with `KeyOrder.signed`)."""
    order = KeyOrder(
        operation,
        key_id,
        from_epoch,
        now,
        now + ttl,
        tuple(sorted(parties)),
        threshold,
        tuple(sorted(dealers)),
    )
    order.check_form()
    return order
