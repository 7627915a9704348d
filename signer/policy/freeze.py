"""Signed freeze orders: any single registered officer (or admin) freezes all keys (`scope="*"`) or
one key at once; lifting a freeze needs `unfreeze_quorum` officers of the policy.

Ordering is by the officers' signed timestamps, per scope, and strictly increasing: a freeze
applies if it is newer than the scope's last transition (an older one is a no-op while frozen and
`stale_order` otherwise); an unfreeze names the exact freeze it lifts (`lifts` = that freeze's
`issued_at`), so it cannot be replayed against a later freeze, nor lift a freeze its signers had
not seen. The state is a value: each apply returns a new `FreezeState`.

A circuit breaker (breaker.py) freezes a key's scope with no officer signature (`trip`, `by` =
`breaker:<rule id>`), at the tripping node's own time: the coordinator and each signer trip at
different moments, or not at all. So an unfreeze lifts a breaker's freeze if it was signed at or
after that trip (`issued_at >= at`), whatever `lifts` names (`trip_after_unfreeze` otherwise): it
still cannot lift a later trip, nor a freeze its signers had not seen. Because other nodes may never
have tripped, a trip and the unfreeze that lifts it leave the scope's `shared_at` (the last
transition every node holds, what signer attestations count: signer/node/state_version.py) as it
was; a signer that tripped is therefore not "ahead" of its peers.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from signer.tss.encoding import Value, as_bytes, as_int, as_list, as_str, decode, encode
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

ALL_KEYS = "*"
BREAKER = "breaker:"
"""`ScopeState.by` of a scope a circuit breaker froze: `breaker:<rule id>`."""
FREEZE_TAG = "policy/freeze/v1"
UNFREEZE_TAG = "policy/unfreeze/v1"
_SCOPE = re.compile(r"^(\*|[A-Za-z0-9._-]{1,64})$")


def _check_scope(scope: str) -> None:
    if not isinstance(scope, str) or not _SCOPE.match(scope):
        raise PolicyError("order_malformed", f"scope must be '*' or a key id, got {scope!r}")


@dataclass(frozen=True, slots=True)
class FreezeOrder:
    """One officer's signed order to freeze `scope` (a key id, or `*` for all keys)."""

    officer_id: str
    scope: str
    issued_at: int
    signature: bytes = field(repr=False)

    def message(self) -> bytes:
        """What the officer signed."""
        return encode(FREEZE_TAG, self.officer_id, self.scope, self.issued_at)

    def to_bytes(self) -> bytes:
        """Wire form."""
        return encode(FREEZE_TAG + "/wire", self.officer_id, self.scope, self.issued_at, self.signature)

    @classmethod
    def from_bytes(cls, data: bytes) -> FreezeOrder:
        """Parse the wire form; raises `order_malformed`."""
        try:
            f = decode(FREEZE_TAG + "/wire", data, 4)
            return cls(as_str(f[0]), as_str(f[1]), as_int(f[2]), as_bytes(f[3]))
        except DecodeError as exc:
            raise PolicyError("order_malformed", str(exc)) from None


def sign_freeze(key: Ed25519PrivateKey, officer_id: str, scope: str, now: int) -> FreezeOrder:
    """Issue a freeze order."""
    _check_scope(scope)
    unsigned = FreezeOrder(officer_id, scope, now, b"")
    return dataclasses.replace(unsigned, signature=key.sign(unsigned.message()))


@dataclass(frozen=True, slots=True)
class UnfreezeOrder:
    """A quorum's order to lift the freeze of `scope` issued at `lifts`."""

    scope: str
    lifts: int
    issued_at: int
    signatures: tuple[Endorsement, ...] = ()

    def message(self) -> bytes:
        """What each officer signs."""
        return encode(UNFREEZE_TAG, self.scope, self.lifts, self.issued_at)

    def signed(self, key: Ed25519PrivateKey, officer_id: str) -> UnfreezeOrder:
        """This order with one more officer's signature."""
        return dataclasses.replace(self, signatures=(*self.signatures, endorse(key, officer_id, self.message())))

    def to_bytes(self) -> bytes:
        """Wire form."""
        return encode(
            UNFREEZE_TAG + "/wire", self.scope, self.lifts, self.issued_at, endorsements_value(self.signatures)
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> UnfreezeOrder:
        """Parse the wire form; raises `order_malformed`."""
        try:
            f = decode(UNFREEZE_TAG + "/wire", data, 4)
            return cls(as_str(f[0]), as_int(f[1]), as_int(f[2]), endorsements_from_value(f[3]))
        except DecodeError as exc:
            raise PolicyError("order_malformed", str(exc)) from None


@dataclass(frozen=True, slots=True)
class ScopeState:
    """The last transition of one scope."""

    frozen: bool
    at: int
    by: str
    signed_at: int | None = None
    """The last transition every node holds, when this one is a breaker's (None: `at`)."""

    @property
    def shared_at(self) -> int:
        """The last transition of this scope that every node holds (an officer's signed order)."""
        return self.at if self.signed_at is None else self.signed_at


@dataclass(frozen=True, slots=True)
class FreezeState:
    """Freeze state per scope (sorted by scope)."""

    scopes: tuple[tuple[str, ScopeState], ...] = ()

    def get(self, scope: str) -> ScopeState | None:
        """The state of `scope`, if it was ever frozen."""
        return dict(self.scopes).get(scope)

    def is_frozen(self, key_id: str) -> bool:
        """Whether signing with `key_id` is frozen (by a global or a per-key freeze)."""
        return any(s is not None and s.frozen for s in (self.get(ALL_KEYS), self.get(key_id)))

    def reset_at(self, key_id: str) -> int:
        """The last transition of `key_id`'s scope or of `*` (0 if never frozen): breakers count from it."""
        return max((s.at for s in (self.get(ALL_KEYS), self.get(key_id)) if s is not None), default=0)

    def trip(self, scope: str, by: str, now: int) -> FreezeState:
        """Freeze `scope` for a circuit breaker (`by` = `breaker:<rule id>`); a frozen scope stays as it is."""
        _check_scope(scope)
        current = self.get(scope)
        if current is not None and current.frozen:
            return self
        at = now if current is None else max(now, current.at + 1)  # transitions strictly increase
        return self._with(scope, ScopeState(True, at, by, 0 if current is None else current.shared_at))

    def _with(self, scope: str, state: ScopeState) -> FreezeState:
        return FreezeState(tuple(sorted({**dict(self.scopes), scope: state}.items())))

    def apply_freeze(self, registry: OfficerRegistry, order: FreezeOrder, now: int) -> FreezeState:
        """Apply a freeze order; raises `PolicyError` (unknown/removed officer, bad signature, ...)."""
        _check_scope(order.scope)
        officer = registry.lookup(order.officer_id)
        if not officer.verify(order.signature, order.message()):
            raise PolicyError("bad_signature", order.officer_id)
        if order.issued_at > now + MAX_CLOCK_SKEW:
            raise PolicyError("order_not_yet_valid", order.officer_id)
        current = self.get(order.scope)
        if current is not None and order.issued_at <= current.at:
            if current.frozen:
                return self
            raise PolicyError("stale_order", "issued before the last unfreeze")
        return self._with(order.scope, ScopeState(True, order.issued_at, order.officer_id))

    def apply_unfreeze(self, registry: OfficerRegistry, order: UnfreezeOrder, now: int, quorum: int) -> FreezeState:
        """Apply an unfreeze signed by `quorum` officers (the policy's `unfreeze_quorum`)."""
        _check_scope(order.scope)
        if order.issued_at > now + MAX_CLOCK_SKEW:
            raise PolicyError("order_not_yet_valid", "issued in the future")
        current = self.get(order.scope)
        if current is None or not current.frozen:
            raise PolicyError("not_frozen", order.scope)
        if current.by.startswith(BREAKER):
            if order.issued_at < current.at:
                raise PolicyError("trip_after_unfreeze", f"{current.by} tripped after the unfreeze was signed")
        elif order.lifts != current.at or order.issued_at < order.lifts:
            raise PolicyError("stale_order", "does not name the freeze in force")
        signers = verify_endorsements(
            registry, order.message(), order.signatures, role="officer", k=quorum, not_met="unfreeze_quorum_not_met"
        )
        by, shared = ",".join(sorted(signers)), current.shared_at if current.by.startswith(BREAKER) else None
        return self._with(order.scope, ScopeState(False, order.issued_at, by, shared))

    def to_bytes(self) -> bytes:
        """Storage form."""
        items: list[Value] = [
            [scope, int(s.frozen), s.at, s.by, *([] if s.signed_at is None else [s.signed_at])]
            for scope, s in self.scopes
        ]
        return encode("policy/freeze-state/v1", items)

    @classmethod
    def from_bytes(cls, data: bytes) -> FreezeState:
        """Inverse of `to_bytes`."""
        try:
            (items,) = decode("policy/freeze-state/v1", data, 1)
            out = []
            for item in as_list(items):
                v = as_list(item)
                if len(v) not in (4, 5):
                    raise DecodeError("expected four or five fields")
                signed_at = as_int(v[4]) if len(v) == 5 else None
                out.append((as_str(v[0]), ScopeState(as_int(v[1]) == 1, as_int(v[2]), as_str(v[3]), signed_at)))
            return cls(tuple(sorted(out, key=lambda p: p[0])))
        except DecodeError as exc:
            raise PolicyError("order_malformed", str(exc)) from None
