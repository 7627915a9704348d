"""Shared deny-lists: address lists published by a third party, installed by the admins.

A list is its addresses, their Merkle root (merkle.py: one leaf per address, its 20 bytes, in
ascending order) and the publisher's Ed25519 signature over (name, root, count, issued_at). The
admins pin the publisher's public key with the list in the policy document, so installing or
updating a list is an admin-quorum policy change; whoever parses the document (the coordinator
and every signer, each for itself) recomputes the root from the addresses and checks the
signature against the pinned key, and refuses the document otherwise
(`denylist_root_mismatch`, `denylist_bad_signature`).

A request whose destination (the real recipient or spender of an ERC-20 call), token contract or
debited account is on an installed list is blocked as `denylisted:<list name>`.

Tightening (tightening.py): a new list, or a list that keeps its name and publisher key and only
gains addresses, takes effect at once; removing a list or an address, or re-pinning a publisher,
is a loosening and waits out the change delay.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from signer.tss.encoding import Value, encode

from .errors import PolicyError
from .intent import canonical_address
from .merkle import merkle_root

DENYLIST_TAG = "policy/denylist/v1"
_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def address_leaf(address: str) -> bytes:
    """The Merkle leaf of a canonical address: its 20 bytes."""
    return bytes.fromhex(address[2:])


@dataclass(frozen=True, slots=True)
class DenyList:
    """One installed list; construction checks the root and the publisher's signature."""

    name: str
    publisher_key: bytes
    issued_at: int
    addresses: tuple[str, ...]
    root: bytes
    signature: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise PolicyError("policy_malformed", f"deny-list name {self.name!r} is not [A-Za-z0-9._-]{{1,64}}")
        if not isinstance(self.issued_at, int) or isinstance(self.issued_at, bool) or self.issued_at < 0:
            raise PolicyError("policy_malformed", f"deny-list {self.name}: issued_at must be a non-negative integer")
        addresses = sorted({canonical_address(a) for a in self.addresses}, key=address_leaf)
        if len(addresses) != len(self.addresses):
            raise PolicyError("policy_malformed", f"deny-list {self.name}: an address twice")
        object.__setattr__(self, "addresses", tuple(addresses))
        if merkle_root([address_leaf(a) for a in addresses]) != self.root:
            raise PolicyError("denylist_root_mismatch", f"{self.name}: the addresses do not hash to the signed root")
        try:
            Ed25519PublicKey.from_public_bytes(self.publisher_key).verify(self.signature, self.message())
        except (InvalidSignature, ValueError):
            raise PolicyError("denylist_bad_signature", f"{self.name}: not signed by the pinned publisher") from None

    def message(self) -> bytes:
        """What the publisher signs."""
        return encode(DENYLIST_TAG, self.name, self.root, len(self.addresses), self.issued_at)

    def value(self) -> list[Value]:
        """The list's part of the document hash (the root commits to the addresses)."""
        return [self.name, self.publisher_key, self.issued_at, self.root, self.signature]

    def to_json(self) -> dict[str, Any]:
        """The JSON form (bytes as hex)."""
        return {
            "name": self.name,
            "publisher_key": self.publisher_key.hex(),
            "issued_at": self.issued_at,
            "root": self.root.hex(),
            "signature": self.signature.hex(),
            "addresses": list(self.addresses),
        }

    @classmethod
    def from_json(cls, d: Any) -> DenyList:
        """Parse the JSON form; raises `policy_malformed`, `denylist_root_mismatch`, `denylist_bad_signature`."""
        keys = {"name", "publisher_key", "issued_at", "root", "signature", "addresses"}
        if not isinstance(d, dict) or set(d) != keys or not isinstance(d["addresses"], list):
            raise PolicyError("policy_malformed", f"a deny-list has exactly {sorted(keys)}")
        try:
            raw = {k: bytes.fromhex(d[k]) for k in ("publisher_key", "root", "signature")}
        except (TypeError, ValueError):
            raise PolicyError("policy_malformed", "deny-list keys, roots and signatures are hex") from None
        if not all(isinstance(a, str) for a in d["addresses"]):
            raise PolicyError("policy_malformed", "deny-list addresses are text")
        try:
            addresses = tuple(canonical_address(a) for a in d["addresses"])
        except PolicyError as exc:
            raise PolicyError("policy_malformed", f"deny-list address: {exc.detail}") from None
        return cls(d["name"], raw["publisher_key"], d["issued_at"], addresses, raw["root"], raw["signature"])


def publish_denylist(key: Ed25519PrivateKey, name: str, addresses: Iterable[str], issued_at: int) -> DenyList:
    """What a publisher hands out: the list, its root and its signature (tests and tooling)."""
    canonical = sorted({canonical_address(a) for a in addresses}, key=address_leaf)
    root = merkle_root([address_leaf(a) for a in canonical])
    public = key.public_key().public_bytes_raw()
    unsigned = encode(DENYLIST_TAG, name, root, len(canonical), issued_at)
    return DenyList(name, public, issued_at, tuple(canonical), root, key.sign(unsigned))


def index_denylists(lists: Sequence[DenyList]) -> dict[str, str]:
    """Address -> the first list (by name) that names it; lists must have distinct names."""
    names = [x.name for x in lists]
    if len(set(names)) != len(names):
        raise PolicyError("policy_malformed", "two deny-lists with the same name")
    out: dict[str, str] = {}
    for x in sorted(lists, key=lambda x: x.name):
        for a in x.addresses:
            out.setdefault(a, x.name)
    return out


def denylists_tighter(old: Sequence[DenyList], new: Sequence[DenyList]) -> bool:
    """Every old list kept under its name and publisher key, with no address dropped."""
    by_name = {x.name: x for x in new}
    for x in old:
        n = by_name.get(x.name)
        if n is None or n.publisher_key != x.publisher_key or not set(x.addresses) <= set(n.addresses):
            return False
    return True
