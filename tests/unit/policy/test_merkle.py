from __future__ import annotations

import dataclasses

import pytest

from signer.policy import PolicyError
from signer.policy.merkle import (
    InclusionProof,
    inclusion_proof,
    leaf_hash,
    merkle_root,
    root_from_proof,
    verify_inclusion,
)

# RFC 6962 reference leaves and tree heads (certificate-transparency test data).
LEAVES = [
    bytes.fromhex(h)
    for h in ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]
]
ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
PATHS = {
    0: [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    5: [
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
}


@pytest.mark.parametrize("size", range(9))
def test_rfc6962_tree_heads(size: int) -> None:
    assert merkle_root(LEAVES[:size]).hex() == ROOTS[size]


@pytest.mark.parametrize("index", sorted(PATHS))
def test_rfc6962_inclusion_paths(index: int) -> None:
    proof = inclusion_proof(LEAVES, index)
    assert [p.hex() for p in proof.path] == PATHS[index]
    verify_inclusion(bytes.fromhex(ROOTS[8]), LEAVES[index], proof)


def test_every_leaf_of_every_size_verifies_and_nothing_else_does() -> None:
    leaves = [bytes([i, i * 7 % 256]) for i in range(23)]
    for size in range(1, len(leaves) + 1):
        root = merkle_root(leaves[:size])
        for i in range(size):
            proof = inclusion_proof(leaves[:size], i)
            verify_inclusion(root, leaves[i], proof)
            with pytest.raises(PolicyError) as exc:
                verify_inclusion(root, leaves[i] + b"x", proof)
            assert exc.value.reason == "inclusion_proof_invalid"


def test_leaf_and_node_hashes_are_domain_separated() -> None:
    # A two-leaf tree's head must not verify as a leaf whose data is the concatenated child hashes.
    a, b = b"a", b"b"
    root = merkle_root([a, b])
    assert leaf_hash(leaf_hash(a) + leaf_hash(b)) != root


@pytest.mark.parametrize(
    "tamper",
    [
        lambda p: dataclasses.replace(p, path=(bytes(32), *p.path[1:])),
        lambda p: dataclasses.replace(p, index=p.index ^ 1),
        lambda p: dataclasses.replace(p, size=p.size + 1),
        lambda p: dataclasses.replace(p, size=p.index),
        lambda p: dataclasses.replace(p, path=p.path[:-1]),
        lambda p: dataclasses.replace(p, path=(*p.path, bytes(32))),
        lambda p: dataclasses.replace(p, path=(b"short", *p.path[1:])),
    ],
    ids=["path_element", "index", "size_up", "size_index", "path_short", "path_long", "bad_length"],
)
def test_tampered_proof_rejected(tamper: object) -> None:
    proof = inclusion_proof(LEAVES, 5)
    bad: InclusionProof = tamper(proof)  # type: ignore[operator]
    with pytest.raises(PolicyError) as exc:
        verify_inclusion(bytes.fromhex(ROOTS[8]), LEAVES[5], bad)
    assert exc.value.reason == "inclusion_proof_invalid"


def test_single_leaf_tree_and_out_of_range_index() -> None:
    proof = inclusion_proof([b"only"], 0)
    assert proof.path == () and root_from_proof(b"only", proof) == merkle_root([b"only"])
    with pytest.raises(PolicyError):
        inclusion_proof([b"only"], 1)
