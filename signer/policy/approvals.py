"""Officer identities and their Ed25519 signatures: withdrawal approvals and admin endorsements.

`OfficerRegistry` maps an officer id to an Ed25519 public key, groups and roles (`officer` approves
and freezes, `admin` endorses policy and registry changes). It is itself a versioned, hashed
document whose changes need an admin quorum (see `change.py`); removed ids stay as tombstones so an
approval from a removed officer is named as such and the id can never come back with another key.

An `Approval` signs one intent digest, or the Merkle root of a batch of intent digests together
with the inclusion proof of this intent. `verify_approvals` checks every approval and refuses the
whole set on the first bad one (a coordinator forwarding a bad approval is misbehaving).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from signer.tss.encoding import Decoded, Value, as_bytes, as_int, as_list, as_str, decode, encode
from signer.tss.errors import DecodeError

from .errors import PolicyError, loads_bounded
from .intent import Approvable, Intent
from .merkle import InclusionProof, inclusion_proof, merkle_root, root_from_proof
from .revocation import Revocations, RevokedSigner, check_kept, sorted_revocations

ROLES = frozenset({"officer", "admin"})
MAX_CLOCK_SKEW = 60
DEFAULT_APPROVAL_TTL = 24 * 3600
_ID = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")


def public_key_bytes(key: Ed25519PrivateKey) -> bytes:
    """The raw 32-byte public key of an Ed25519 private key."""
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def tagged_hash(tag: str, *values: Value) -> bytes:
    """SHA-256 of the tagged encoding of `values` (never of JSON bytes)."""
    return hashlib.sha256(encode(tag, *values)).digest()


def _malformed(detail: str) -> PolicyError:
    return PolicyError("registry_malformed", detail)


@dataclass(frozen=True, slots=True)
class Officer:
    """One registered identity: id, raw Ed25519 public key, groups, roles."""

    officer_id: str
    public_key: bytes
    groups: frozenset[str] = frozenset()
    roles: frozenset[str] = frozenset({"officer"})

    def __post_init__(self) -> None:
        if not isinstance(self.officer_id, str) or not _ID.match(self.officer_id):
            raise _malformed(f"bad officer id {self.officer_id!r}")
        if not isinstance(self.public_key, bytes) or len(self.public_key) != 32:
            raise _malformed(f"{self.officer_id}: public key must be 32 raw bytes")
        if not self.roles or not self.roles <= ROLES:
            raise _malformed(f"{self.officer_id}: roles must be a non-empty subset of {sorted(ROLES)}")
        if not all(isinstance(g, str) and _ID.match(g) for g in self.groups):
            raise _malformed(f"{self.officer_id}: bad group name")

    def verify(self, signature: bytes, message: bytes) -> bool:
        """Whether `signature` is this officer's Ed25519 signature on `message`."""
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True


@dataclass(frozen=True, slots=True)
class OfficerRegistry:
    """Versioned officer registry; `hash()` is its version hash."""

    KIND: ClassVar[str] = "registry"

    version: int
    officers: tuple[Officer, ...]
    admin_quorum: int
    change_delay: int = 86400
    removed: frozenset[str] = frozenset()
    previous_hash: bytes = b""
    revoked_signers: tuple[RevokedSigner, ...] = ()  # revocation.py: never dropped once listed

    def __post_init__(self) -> None:
        object.__setattr__(self, "officers", tuple(sorted(self.officers, key=lambda o: o.officer_id)))
        object.__setattr__(self, "revoked_signers", sorted_revocations(self.revoked_signers))
        ids = [o.officer_id for o in self.officers]
        if len(set(ids)) != len(ids):
            raise _malformed("duplicate officer id")
        if set(ids) & self.removed:
            raise _malformed("a removed id is registered again")
        for name in ("version", "admin_quorum", "change_delay"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise _malformed(f"{name} must be a non-negative integer")
        if self.version < 1:
            raise _malformed("version starts at 1")
        admins = sum(1 for o in self.officers if "admin" in o.roles)
        if not 1 <= self.admin_quorum <= admins:
            raise _malformed(f"admin_quorum must be in [1, {admins}]")
        if len(self.previous_hash) not in (0, 32):
            raise _malformed("previous_hash must be empty or 32 bytes")

    def lookup(self, officer_id: str) -> Officer:
        """The officer, or `unknown_officer` / `officer_removed`."""
        if officer_id in self.removed:
            raise PolicyError("officer_removed", officer_id)
        for o in self.officers:
            if o.officer_id == officer_id:
                return o
        raise PolicyError("unknown_officer", officer_id)

    def members(self, group: str) -> frozenset[str]:
        """The ids of the officers (role `officer`) in `group`."""
        return frozenset(o.officer_id for o in self.officers if group in o.groups and "officer" in o.roles)

    def revocations(self) -> Revocations:
        """The signers this version revokes, for the refusal checks."""
        return Revocations(self.revoked_signers, self.version)

    def hash(self) -> bytes:
        """The registry version hash (revocations, when any, appended: older hashes stay valid)."""
        officers: list[Value] = [
            [o.officer_id, o.public_key, _sorted(o.groups), _sorted(o.roles)] for o in self.officers
        ]
        fields: list[Value] = [
            self.version,
            self.previous_hash,
            self.admin_quorum,
            self.change_delay,
            officers,
            _sorted(self.removed),
        ]
        if self.revoked_signers:
            fields.append([r.value() for r in self.revoked_signers])
        return tagged_hash("policy/registry/v1", *fields)

    def check_successor(self, old: OfficerRegistry, proposed_at: int) -> None:
        """A dropped officer must be tombstoned in `removed`."""
        dropped = {o.officer_id for o in old.officers} - {o.officer_id for o in self.officers}
        if not dropped <= self.removed or not old.removed <= self.removed:
            raise _malformed("dropped or previously removed officers must stay in `removed`")
        check_kept(old.revoked_signers, self.revoked_signers)

    def is_tightening_of(self, old: OfficerRegistry) -> bool:
        """True only if no one gains a key, group or role, no quorum or delay shrinks and no
        revocation is dropped (revoking more signers is tightening)."""
        if self.admin_quorum < old.admin_quorum or self.change_delay < old.change_delay:
            return False
        if not set(old.revoked_signers) <= set(self.revoked_signers):
            return False
        previous = {o.officer_id: o for o in old.officers}
        for o in self.officers:
            p = previous.get(o.officer_id)
            if p is None or p.public_key != o.public_key or not o.groups <= p.groups or not o.roles <= p.roles:
                return False
        return True

    def to_json(self) -> str:
        """The JSON form admins edit."""
        return json.dumps(
            {
                "version": self.version,
                "previous_hash": self.previous_hash.hex(),
                "admin_quorum": self.admin_quorum,
                "change_delay": self.change_delay,
                "officers": [
                    {
                        "id": o.officer_id,
                        "public_key": o.public_key.hex(),
                        "groups": sorted(o.groups),
                        "roles": sorted(o.roles),
                    }
                    for o in self.officers
                ],
                "removed": sorted(self.removed),
                **({"revoked_signers": [r.to_json() for r in self.revoked_signers]} if self.revoked_signers else {}),
            },
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str) -> OfficerRegistry:
        """Parse the JSON form; unknown keys and wrong types raise `registry_malformed`."""
        try:
            d = loads_bounded(text)
            optional = {"change_delay", "removed", "previous_hash", "revoked_signers"}
            _keys(d, {"version", "admin_quorum", "officers"}, optional)
            revoked = d.get("revoked_signers", [])
            if not isinstance(revoked, list):
                raise _malformed("revoked_signers must be a list")
            officers = []
            for o in d["officers"]:
                _keys(o, {"id", "public_key"}, {"groups", "roles"})
                groups, roles = _names(o.get("groups", [])), _names(o.get("roles", ["officer"]))
                officers.append(Officer(o["id"], bytes.fromhex(o["public_key"]), groups, roles))
            return cls(
                version=_int(d["version"]),
                officers=tuple(officers),
                admin_quorum=_int(d["admin_quorum"]),
                change_delay=_int(d.get("change_delay", 86400)),
                removed=_names(d.get("removed", [])),
                previous_hash=bytes.fromhex(d.get("previous_hash", "")),
                revoked_signers=tuple(RevokedSigner.from_json(r) for r in revoked),
            )
        except PolicyError:
            raise
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
            raise _malformed(str(exc)) from None


def _sorted(names: frozenset[str]) -> list[Value]:
    return list(sorted(names))


def _keys(d: Any, required: set[str], optional: set[str]) -> None:
    if not isinstance(d, dict):
        raise _malformed("expected an object")
    missing, unknown = required - d.keys(), d.keys() - required - optional
    if missing or unknown:
        raise _malformed(f"missing {sorted(missing)} / unknown {sorted(unknown)}")


def _int(v: Any) -> int:
    if not isinstance(v, int) or isinstance(v, bool):
        raise _malformed("expected an integer")
    return v


def _names(v: Any) -> frozenset[str]:
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise _malformed("expected a list of names")
    return frozenset(v)


# --- admin (or officer) endorsements of a message: policy/registry changes, unfreeze orders --------
@dataclass(frozen=True, slots=True)
class Endorsement:
    """One identity's Ed25519 signature on a governance message."""

    signer_id: str
    signature: bytes


def endorse(key: Ed25519PrivateKey, signer_id: str, message: bytes) -> Endorsement:
    """Sign a governance message."""
    return Endorsement(signer_id, key.sign(message))


def verify_endorsements(
    registry: OfficerRegistry, message: bytes, endorsements: Iterable[Endorsement], *, role: str, k: int, not_met: str
) -> frozenset[str]:
    """The ids that validly endorsed `message` with `role`; raises `not_met` if fewer than k.

    Any bad endorsement (unknown or removed signer, missing role, duplicate, bad signature) refuses
    the whole set with its own reason.
    """
    seen: set[str] = set()
    for e in endorsements:
        signer = registry.lookup(e.signer_id)
        if role not in signer.roles:
            raise PolicyError(f"not_an_{role}", e.signer_id)
        if e.signer_id in seen:
            raise PolicyError("duplicate_officer", e.signer_id)
        if not signer.verify(e.signature, message):
            raise PolicyError("bad_signature", e.signer_id)
        seen.add(e.signer_id)
    if len(seen) < k:
        raise PolicyError(not_met, f"{len(seen)} of {k}")
    return frozenset(seen)


def endorsements_value(endorsements: Iterable[Endorsement]) -> list[Value]:
    """Encodable form of endorsements."""
    return [[e.signer_id, e.signature] for e in endorsements]


def endorsements_from_value(v: Decoded) -> tuple[Endorsement, ...]:
    """Inverse of `endorsements_value` (raises DecodeError)."""
    out = []
    for item in as_list(v):
        pair = as_list(item)
        if len(pair) != 2:
            raise DecodeError("endorsement must have two fields")
        out.append(Endorsement(as_str(pair[0]), as_bytes(pair[1])))
    return tuple(out)


# --- approvals of intents ------------------------------------------------------------------------
APPROVAL_TAG = "policy/approval/v1"
BATCH_APPROVAL_TAG = "policy/batch-approval/v1"
_WIRE_TAG = "policy/approval-wire/v1"


@dataclass(frozen=True, slots=True)
class BatchProof:
    """The batch root an officer signed and this intent's inclusion proof under it."""

    root: bytes
    proof: InclusionProof


@dataclass(frozen=True, slots=True)
class Approval:
    """An officer's signed approval of one intent digest (directly or through a batch root)."""

    officer_id: str
    intent_digest: bytes
    signed_at: int
    expires_at: int
    signature: bytes = field(repr=False)
    batch: BatchProof | None = None

    def message(self) -> bytes:
        """The bytes the officer signed."""
        if self.batch is None:
            return encode(APPROVAL_TAG, self.officer_id, self.intent_digest, self.signed_at, self.expires_at)
        return encode(
            BATCH_APPROVAL_TAG, self.officer_id, self.batch.root, self.batch.proof.size, self.signed_at, self.expires_at
        )

    def to_bytes(self) -> bytes:
        """Wire form."""
        batch: list[Value] = []
        if self.batch is not None:
            p = self.batch.proof
            batch = [self.batch.root, p.index, p.size, list(p.path)]
        return encode(
            _WIRE_TAG, self.officer_id, self.intent_digest, self.signed_at, self.expires_at, self.signature, batch
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Approval:
        """Parse the wire form; raises `PolicyError("approval_malformed")`."""
        try:
            f = decode(_WIRE_TAG, data, 6)
            b = as_list(f[5])
            batch = None
            if b:
                if len(b) != 4:
                    raise DecodeError("batch must have four fields")
                path = tuple(as_bytes(x) for x in as_list(b[3]))
                batch = BatchProof(as_bytes(b[0]), InclusionProof(as_int(b[1]), as_int(b[2]), path))
            return cls(as_str(f[0]), as_bytes(f[1]), as_int(f[2]), as_int(f[3]), as_bytes(f[4]), batch)
        except DecodeError as exc:
            raise PolicyError("approval_malformed", str(exc)) from None


def sign_approval(
    key: Ed25519PrivateKey, officer_id: str, intent: Approvable, now: int, ttl: int = DEFAULT_APPROVAL_TTL
) -> Approval:
    """Approve one intent; the approval expires after `ttl` seconds or with the intent, whichever is first."""
    unsigned = Approval(officer_id, intent.digest(), now, min(now + ttl, intent.expires_at), b"")
    return Approval(officer_id, unsigned.intent_digest, now, unsigned.expires_at, key.sign(unsigned.message()))


def sign_batch(
    key: Ed25519PrivateKey, officer_id: str, intents: Sequence[Intent], now: int, ttl: int = DEFAULT_APPROVAL_TTL
) -> list[Approval]:
    """Approve a batch by signing the Merkle root of its intent digests; one approval per intent."""
    if not intents:
        raise PolicyError("empty_batch")
    digests = [i.digest() for i in intents]
    root = merkle_root(digests)
    expires_at = min(now + ttl, *(i.expires_at for i in intents))
    proofs = [BatchProof(root, inclusion_proof(digests, n)) for n in range(len(digests))]
    signature = key.sign(Approval(officer_id, digests[0], now, expires_at, b"", proofs[0]).message())
    return [Approval(officer_id, d, now, expires_at, signature, p) for d, p in zip(digests, proofs, strict=True)]


def verify_approval(
    registry: OfficerRegistry, intent: Approvable, approval: Approval, now: int, initiator: str
) -> None:
    """Check one approval of `intent` by an officer other than `initiator`; raises `PolicyError`."""
    officer = registry.lookup(approval.officer_id)
    if "officer" not in officer.roles:
        raise PolicyError("not_an_officer", approval.officer_id)
    if approval.officer_id in (initiator, intent.initiator):
        raise PolicyError("self_approval", approval.officer_id)
    if approval.intent_digest != intent.digest():
        raise PolicyError("intent_mismatch", approval.officer_id)
    batch = approval.batch
    if batch is not None and root_from_proof(approval.intent_digest, batch.proof) != batch.root:
        raise PolicyError("inclusion_proof_invalid", approval.officer_id)
    if not officer.verify(approval.signature, approval.message()):
        raise PolicyError("bad_signature", approval.officer_id)
    if approval.expires_at <= approval.signed_at:
        raise PolicyError("approval_malformed", "expires before it was signed")
    if approval.signed_at > now + MAX_CLOCK_SKEW:
        raise PolicyError("approval_not_yet_valid", approval.officer_id)
    if now >= approval.expires_at:
        raise PolicyError("approval_expired", approval.officer_id)


def verify_approvals(
    registry: OfficerRegistry, intent: Approvable, approvals: Iterable[Approval], now: int, initiator: str
) -> dict[str, int]:
    """The officers who validly approved `intent`, each with the time they signed.

    Use it as the set of approving officer ids; the times anchor time locks. Raises on the first
    bad approval, including a second vote by the same officer (`duplicate_officer`).
    """
    if intent.initiator and initiator != intent.initiator:
        raise PolicyError("initiator_mismatch", initiator)
    out: dict[str, int] = {}
    for a in approvals:
        if a.officer_id in out:
            raise PolicyError("duplicate_officer", a.officer_id)
        verify_approval(registry, intent, a, now, initiator)
        out[a.officer_id] = a.signed_at
    return out
