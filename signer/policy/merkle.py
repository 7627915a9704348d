"""RFC 6962 / RFC 9162 Merkle tree (SHA-256) with domain-separated leaves and nodes.

leaf = SHA-256(0x00 || data), node = SHA-256(0x01 || left || right); the tree over n leaves splits
at the largest power of two below n. Inclusion proofs are the RFC 6962 audit path and are checked
with the RFC 9162 §2.1.3.2 algorithm. Used for batch approvals and audit checkpoints.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from .errors import PolicyError

_LEAF = b"\x00"
_NODE = b"\x01"
MAX_PATH = 64


def leaf_hash(data: bytes) -> bytes:
    """The hash of one leaf."""
    return hashlib.sha256(_LEAF + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The hash of an inner node."""
    return hashlib.sha256(_NODE + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly below n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def _root_of_hashes(hashes: Sequence[bytes]) -> bytes:
    if len(hashes) == 1:
        return hashes[0]
    k = _split(len(hashes))
    return node_hash(_root_of_hashes(hashes[:k]), _root_of_hashes(hashes[k:]))


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """The tree head over the leaves' data (SHA-256 of the empty string for no leaves)."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    return _root_of_hashes([leaf_hash(x) for x in leaves])


@dataclass(frozen=True, slots=True)
class InclusionProof:
    """The audit path of leaf `index` in a tree of `size` leaves."""

    index: int
    size: int
    path: tuple[bytes, ...]


def _path(m: int, hashes: Sequence[bytes]) -> list[bytes]:
    if len(hashes) == 1:
        return []
    k = _split(len(hashes))
    if m < k:
        return [*_path(m, hashes[:k]), _root_of_hashes(hashes[k:])]
    return [*_path(m - k, hashes[k:]), _root_of_hashes(hashes[:k])]


def inclusion_proof(leaves: Sequence[bytes], index: int) -> InclusionProof:
    """The inclusion proof of `leaves[index]`."""
    if not 0 <= index < len(leaves):
        raise PolicyError("inclusion_proof_invalid", "index out of range")
    return InclusionProof(index, len(leaves), tuple(_path(index, [leaf_hash(x) for x in leaves])))


def root_from_proof(leaf: bytes, proof: InclusionProof) -> bytes:
    """The root that `proof` implies for the leaf data `leaf`; raises if the proof is malformed."""
    bad = PolicyError("inclusion_proof_invalid", "malformed proof")
    if not 0 <= proof.index < proof.size or len(proof.path) > MAX_PATH:
        raise bad
    if any(len(p) != 32 for p in proof.path):
        raise bad
    fn, sn, r = proof.index, proof.size - 1, leaf_hash(leaf)
    for p in proof.path:
        if sn == 0:
            raise bad
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise bad
    return r


def verify_inclusion(root: bytes, leaf: bytes, proof: InclusionProof) -> None:
    """Raise `PolicyError("inclusion_proof_invalid")` unless `leaf` is in the tree with head `root`."""
    if root_from_proof(leaf, proof) != root:
        raise PolicyError("inclusion_proof_invalid", "root mismatch")
