"""Changing the policy or the officer registry: admin-quorum-signed, chained, never downgraded.

A `PolicyChange` carries the new document, the time it was proposed and the admins' signatures over
(kind, new version hash, proposed_at). `Governed.apply` accepts it only if the admins of the active
registry reach its `admin_quorum`, the version goes up and `previous_hash` names the active
version (so an older or forked version is refused). A change that provably tightens takes effect at
once and drops any pending change; anything else waits `change_delay` seconds of the *old* document
(counted from the later of `proposed_at` and the time it was applied) and supersedes a pending one.

"Provably tighter" is `PolicyDocument.is_tightening_of` (tightening.py) and
`OfficerRegistry.is_tightening_of` (approvals.py).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from signer.tss.encoding import encode

from .approvals import MAX_CLOCK_SKEW, Endorsement, OfficerRegistry, endorse, verify_endorsements
from .document import PolicyDocument
from .errors import PolicyError, loads_bounded

D = TypeVar("D", PolicyDocument, OfficerRegistry)
CHANGE_TAG = "policy/change/v1"
CHANGE_KINDS = (OfficerRegistry.KIND, PolicyDocument.KIND)
"""The documents an admin-quorum change replaces, in install order (a registry before any policy)."""


@dataclass(frozen=True, slots=True)
class PolicyChange(Generic[D]):
    """A proposed policy or registry version with the admin signatures collected so far."""

    new_document: D
    proposed_at: int
    signatures: tuple[Endorsement, ...] = ()

    def message(self) -> bytes:
        """What each admin signs."""
        return encode(CHANGE_TAG, self.new_document.KIND, self.new_document.hash(), self.proposed_at)

    def signed(self, key: Ed25519PrivateKey, admin_id: str) -> PolicyChange[D]:
        """This change with one more admin signature."""
        return dataclasses.replace(self, signatures=(*self.signatures, endorse(key, admin_id, self.message())))

    def verify(self, registry: OfficerRegistry) -> frozenset[str]:
        """The admins who signed; raises `admin_quorum_not_met` or the reason of a bad signature."""
        return verify_endorsements(
            registry,
            self.message(),
            self.signatures,
            role="admin",
            k=registry.admin_quorum,
            not_met="admin_quorum_not_met",
        )

    def to_json(self) -> str:
        """Wire and storage form."""
        return json.dumps(
            {
                "kind": self.new_document.KIND,
                "document": json.loads(self.new_document.to_json()),
                "proposed_at": self.proposed_at,
                "signatures": [{"signer": e.signer_id, "signature": e.signature.hex()} for e in self.signatures],
            }
        )


def parse_change(text: str, doc_type: type[D]) -> PolicyChange[D]:
    """Parse `PolicyChange.to_json` output for a document of `doc_type`."""
    try:
        d = loads_bounded(text)
        if set(d) != {"kind", "document", "proposed_at", "signatures"} or d["kind"] != doc_type.KIND:
            raise PolicyError("change_malformed", "wrong fields or kind")
        sigs = tuple(Endorsement(s["signer"], bytes.fromhex(s["signature"])) for s in d["signatures"])
        proposed_at = d["proposed_at"]
        if not isinstance(proposed_at, int) or isinstance(proposed_at, bool):
            raise PolicyError("change_malformed", "proposed_at must be an integer")
        return PolicyChange(doc_type.from_json(json.dumps(d["document"])), proposed_at, sigs)
    except PolicyError:
        raise
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
        raise PolicyError("change_malformed", str(exc)) from None


@dataclass(frozen=True, slots=True)
class Governed(Generic[D]):
    """The active version (with the change that installed it) and at most one pending loosening."""

    active: PolicyChange[D]
    pending: PolicyChange[D] | None = None
    effective_at: int = 0

    @classmethod
    def genesis(cls, change: PolicyChange[D], registry: OfficerRegistry) -> Governed[D]:
        """The first version (empty `previous_hash`), signed by an admin quorum of `registry`.

        For the registry itself, pass the genesis registry as `registry` (self-endorsed).
        """
        if change.new_document.previous_hash:
            raise PolicyError(f"{change.new_document.KIND}_not_chained", "a genesis version has no predecessor")
        change.verify(registry)
        return cls(change)

    def current(self, now: int) -> D:
        """The document in force at `now`."""
        if self.pending is not None and now >= self.effective_at:
            return self.pending.new_document
        return self.active.new_document

    def advance(self, now: int) -> Governed[D]:
        """Promote the pending change once its time lock has run out."""
        if self.pending is not None and now >= self.effective_at:
            return Governed(self.pending)
        return self

    def apply(self, change: PolicyChange[D], registry: OfficerRegistry, now: int) -> Governed[D]:
        """Accept a signed change (see the module docstring); raises `PolicyError` with the reason."""
        state = self.advance(now)
        old, new = state.active.new_document, change.new_document
        kind = old.KIND
        if type(new) is not type(old):
            raise PolicyError("change_malformed", "document kind differs")
        if new.version <= old.version:
            raise PolicyError(f"{kind}_downgrade", f"version {new.version} after {old.version}")
        if new.previous_hash != old.hash():
            raise PolicyError(f"{kind}_not_chained", "previous_hash is not the active version")
        if change.proposed_at > now + MAX_CLOCK_SKEW:
            raise PolicyError("change_not_yet_valid", "proposed in the future")
        change.verify(registry)
        new.check_successor(old, change.proposed_at)
        if new.is_tightening_of(old):
            return Governed(change)
        return Governed(state.active, change, max(change.proposed_at, now) + old.change_delay)

    def to_json(self) -> str:
        """Storage form (a signer's own store is trusted; it is not re-verified on load)."""
        return json.dumps(
            {
                "active": json.loads(self.active.to_json()),
                "pending": None if self.pending is None else json.loads(self.pending.to_json()),
                "effective_at": self.effective_at,
            }
        )

    @staticmethod
    def from_json(text: str, doc_type: type[D]) -> Governed[D]:
        """Inverse of `to_json`."""
        try:
            d: Any = loads_bounded(text)
            pending = None if d["pending"] is None else parse_change(json.dumps(d["pending"]), doc_type)
            return Governed(parse_change(json.dumps(d["active"]), doc_type), pending, int(d["effective_at"]))
        except PolicyError:
            raise
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
            raise PolicyError("change_malformed", str(exc)) from None
