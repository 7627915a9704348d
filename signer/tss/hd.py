"""BIP32 non-hardened derivation from the group public key and the joint chain code.

CKDpub (BIP32, "Public parent key -> public child key"): for an index i < 2^31,
    I = HMAC-SHA512(key = c_par, data = ser_P(K_par) ‖ ser_32(i)),  I_L, I_R = I[:32], I[32:],
    K_i = parse_256(I_L)·G + K_par,  c_i = I_R.
Along a path the I_L values add up: the child key is K + tweak·G with tweak = Σ I_L mod q, so
the signers shift their Shamir shares by the same tweak (`derive_share`) and no private key is ever
formed. Hardened indices need the private key, which never exists, so they are refused. A step
with I_L ≥ q or an identity child is BIP32's "invalid, proceed with the next index" case: we raise
InvalidInput naming the index and leave the choice of the next index to the caller.

The derivation path must be fixed before presigning (CVE-2025-66017): derive the share first,
then presign and sign with the derived share only.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
from dataclasses import dataclass

from .curve import Point, Q
from .errors import InvalidInput
from .key_share import KeyShare

HARDENED = 1 << 31
"""The first hardened index; every index of a path must be below it."""
CHAIN_CODE_BYTES = 32


@dataclass(frozen=True, slots=True)
class Derived:
    """A derived public key and chain code, and the tweak with public_key = parent + tweak·G."""

    public_key: Point
    chain_code: bytes
    tweak: int


def parse_path(path: str) -> tuple[int, ...]:
    """Parse "m/0/1/5" or "0/1/5" ("m" or "" is the empty path); hardened steps are refused.

    Each index is plain decimal without sign or leading zeros, so one path has one spelling.
    """
    if not isinstance(path, str):
        raise InvalidInput("a derivation path is a string")
    if path in ("", "m"):
        return ()
    parts = path.split("/")
    if parts[0] == "m":
        parts = parts[1:]
    out = []
    for part in parts:
        if part.endswith(("'", "h", "H")):
            raise InvalidInput(f"hardened step {part!r} refused: hardened derivation needs the private key")
        if not part or not part.isascii() or not part.isdigit() or (len(part) > 1 and part[0] == "0"):
            raise InvalidInput(f"bad path component {part!r} in {path!r}")
        index = int(part)
        if index >= HARDENED:
            raise InvalidInput(f"index {index} is hardened (>= 2^31): hardened derivation needs the private key")
        out.append(index)
    return tuple(out)


def format_path(path: tuple[int, ...]) -> str:
    """The canonical spelling "m/0/1/5" of a parsed path."""
    return "/".join(["m", *(str(i) for i in path)])


def _check_index(index: int) -> None:
    if not isinstance(index, int) or isinstance(index, bool) or index < 0:
        raise InvalidInput(f"path index {index!r} must be a non-negative integer")
    if index >= HARDENED:
        raise InvalidInput(f"index {index} is hardened (>= 2^31): hardened derivation needs the private key")


def derive_child(public_key: Point, chain_code: bytes, index: int) -> tuple[Point, bytes, int]:
    """One CKDpub step: (child key, child chain code, I_L)."""
    _check_index(index)
    if public_key.is_identity:
        raise InvalidInput("cannot derive from the identity point")
    if not isinstance(chain_code, bytes) or len(chain_code) != CHAIN_CODE_BYTES:
        raise InvalidInput("chain code must be 32 bytes")
    mac = hmac.new(chain_code, public_key.to_bytes() + index.to_bytes(4, "big"), hashlib.sha512).digest()
    il = int.from_bytes(mac[:32], "big")
    if il >= Q:
        raise InvalidInput(f"index {index} is invalid for this key (I_L >= q): BIP32 says use the next index")
    child = public_key + Point.base_mul(il)
    if child.is_identity:
        raise InvalidInput(f"index {index} is invalid for this key (identity child): BIP32 says use the next index")
    return child, mac[32:], il


def derive(public_key: Point, chain_code: bytes, path: tuple[int, ...]) -> Derived:
    """Non-hardened BIP32 derivation along `path`; the empty path gives the parent and tweak 0."""
    if not isinstance(path, tuple):
        raise InvalidInput("path must be a tuple of indices (use parse_path for strings)")
    for index in path:
        _check_index(index)
    if public_key.is_identity:
        raise InvalidInput("cannot derive from the identity point")
    if not isinstance(chain_code, bytes) or len(chain_code) != CHAIN_CODE_BYTES:
        raise InvalidInput("chain code must be 32 bytes")
    key, code, tweak = public_key, chain_code, 0
    for index in path:
        key, code, il = derive_child(key, code, index)
        tweak = (tweak + il) % Q
    return Derived(key, code, tweak)


def derive_share(share: KeyShare, path: tuple[int, ...]) -> KeyShare:
    """The key share of the child key at `path`: every Shamir share and public share shifted by the tweak.

    Adding the tweak δ to the constant term of the sharing polynomial adds δ to every share
    (Σ λ_j = 1 over any signer set), so x_j + δ is a share of x + δ and X_j + δ·G its public share.
    """
    d = derive(share.public_key, share.chain_code, path)
    shift = Point.base_mul(d.tweak)
    return dataclasses.replace(
        share,
        public_key=d.public_key,
        public_shares=tuple((j, X + shift) for j, X in share.public_shares),
        chain_code=d.chain_code,
        x=(share.x + d.tweak) % Q,
    )
