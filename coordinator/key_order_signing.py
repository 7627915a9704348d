"""Building, signing and passing around key orders (refresh / reshare) for tssctl and the cluster tools.

An order names the key's current epoch, which the coordinator reports (GetKey); each admin signs it
with their Ed25519 key (`tssctl key refresh|reshare --admin A --key F ...`), or writes it to a file
for the next admin (`--out`) and the last one submits it (`--order`). The local cluster's tools
(replace-signer, the drill, tests) sign with the demo admins' keys in D/officers/.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from signer.policy import KeyOrder, PolicyError, key_order

from . import cluster
from .client import CoordinatorClient
from .officer import OfficerError, load_key


def new_order(
    client: CoordinatorClient,
    operation: str,
    key_id: str,
    *,
    parties: Sequence[int] = (),
    threshold: int = 0,
    dealers: Sequence[int] = (),
    ttl: int = 3600,
) -> KeyOrder:
    """An unsigned order for the key's current epoch as the coordinator reports it."""
    key = client.get_key(key_id)
    if key.committing_epoch:
        raise OfficerError(f"key {key_id} is still committing epoch {key.committing_epoch}; order once it is done")
    try:
        return key_order(
            operation,
            key_id,
            key.epoch,
            int(time.time()),
            ttl=ttl,
            parties=tuple(parties),
            threshold=threshold,
            dealers=tuple(dealers),
        )
    except PolicyError as exc:
        raise OfficerError(f"cannot build the order: {exc}") from None


def sign_order(order: KeyOrder, signers: Sequence[tuple[str, Ed25519PrivateKey]]) -> KeyOrder:
    """`order` with each admin's signature added."""
    for who, key in signers:
        order = order.signed(key, who)
    return order


def demo_admins(root: Path) -> list[tuple[str, Ed25519PrivateKey]]:
    """The local cluster's demo admins and their keys (D/officers/admin-<i>.key)."""
    info = cluster.ClusterInfo.load(Path(root))
    return [(who, load_key(info.officer_key(who))) for who in cluster.ADMINS]


def demo_order(
    client: CoordinatorClient,
    root: Path,
    operation: str,
    key_id: str,
    *,
    parties: Sequence[int] = (),
    threshold: int = 0,
    dealers: Sequence[int] = (),
) -> bytes:
    """An order signed by every demo admin of the local cluster, in wire form."""
    order = new_order(client, operation, key_id, parties=parties, threshold=threshold, dealers=dealers)
    return sign_order(order, demo_admins(root)).to_bytes()


def save_order(path: Path, order: KeyOrder) -> None:
    """Write a partly signed order for the next admin."""
    Path(path).write_text(json.dumps({"key_order": order.to_bytes().hex(), **order.describe()}, indent=2) + "\n")


def load_order(path: Path) -> KeyOrder:
    """Read an order written by `save_order`."""
    try:
        data: Any = json.loads(Path(path).read_text())
        return KeyOrder.from_bytes(bytes.fromhex(data["key_order"]))
    except (OSError, ValueError, KeyError, TypeError, PolicyError) as exc:
        raise OfficerError(f"{path} is not a key order: {exc}") from None
