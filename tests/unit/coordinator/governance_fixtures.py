"""Shared fixtures for coordinator tests: demo officers and admins with fixed Ed25519 keys, the demo
registry and policy as admin-signed genesis changes, key orders signed by the demo admins,
in-process signer nodes over fixture key shares, and a settable clock shared by the coordinator and
the signers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from coordinator.service import CoordinatorService
from coordinator.store import KeyRecord, Store
from signer.node.config import NodeConfig
from signer.node.identity import Identity
from signer.node.node import SignerNode
from signer.node.store import EncryptedStore, load_kek, write_kek_file
from signer.node.tls import TlsFiles
from signer.policy import PolicyChange, demo_policy, public_key_bytes
from signer.policy import key_order as new_key_order
from signer.tss.params import LEVEL_112
from tests.sessions import aux_from_fixtures, keygen_shares

PARTIES = (1, 2, 3)
OFFICERS = ("officer-1", "officer-2", "officer-3")
ADMINS = ("admin-1", "admin-2")
COLD = "0x00000000000000000000000000000000000C01D0"
START = 1_700_000_000


class Clock:
    """A settable clock (seconds since the epoch); `advance` moves it forward."""

    def __init__(self, t: float = START) -> None:
        self.t = float(t)

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@cache
def key(identity: str) -> Ed25519PrivateKey:
    """A fixed Ed25519 key per identity (tests only)."""
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(f"test-officer-key/{identity}".encode()).digest())


def trusted_admins() -> dict[str, str]:
    """The admins every signer trusts for genesis (id -> hex public key)."""
    return {a: public_key_bytes(key(a)).hex() for a in ADMINS}


def genesis_changes(now: int, *, cold: Iterable[str] = (COLD,), **kw: Any) -> tuple[str, str]:
    """(registry change JSON, policy change JSON): the demo governance signed by both admins."""
    registry, policy = demo_policy(
        {o: public_key_bytes(key(o)) for o in OFFICERS},
        {a: public_key_bytes(key(a)) for a in ADMINS},
        cold=cold,
        now=now,
        **kw,
    )
    return signed_change(registry, now).to_json(), signed_change(policy, now).to_json()


def signed_change(document: Any, now: int, admins: Iterable[str] = ADMINS) -> PolicyChange[Any]:
    """A change to `document` proposed at `now`, signed by `admins`."""
    change: PolicyChange[Any] = PolicyChange(document, now)
    for a in admins:
        change = change.signed(key(a), a)
    return change


def install_demo_governance(service: CoordinatorService, **kw: Any) -> None:
    """Install the demo registry, then the demo policy, through the service (and so on every signer)."""
    registry_json, policy_json = genesis_changes(int(service.store.now()), **kw)
    service.propose_change("registry", registry_json, admin="admin-1")
    service.propose_change("policy", policy_json, admin="admin-1")


def key_order(
    service: CoordinatorService, operation: str, key_id: str, admins: Iterable[str] = ADMINS, **kw: Any
) -> bytes:
    """A refresh or reshare order for the key's current epoch (as the coordinator records it), signed by `admins`."""
    epoch = service.get_key(key_id).epoch
    order = new_key_order(operation, key_id, epoch, int(service.store.now()), **kw)
    for a in admins:
        order = order.signed(key(a), a)
    return order.to_bytes()


def make_nodes(root: Path, key_id: str, clock: Clock | None = None) -> dict[int, SignerNode]:
    """In-process signers holding shares of `key_id` (cached keygen, fixture aux info, level 112)."""
    idents = {p: Identity.generate(p) for p in PARTIES}
    shares = keygen_shares(2, PARTIES)
    aux = aux_from_fixtures(LEVEL_112, PARTIES)
    out: dict[int, SignerNode] = {}
    for p in PARTIES:
        d = root / f"signer-{p}"
        d.mkdir(parents=True)
        write_kek_file(d / "kek")
        store = EncryptedStore(d / "store", load_kek(d / "kek"))
        store.put("identity", idents[p].to_bytes())
        store.put(f"keys/{key_id}/share", shares[p].to_bytes())
        store.put(f"keys/{key_id}/aux", aux[p].to_bytes())
        peers = {q: idents[q].public() for q in PARTIES if q != p}
        config = NodeConfig(
            p, "unused", d, d / "kek", TlsFiles(d, d, d), "112", peers, prime_pool=0, trusted_admins=trusted_admins()
        )
        kwargs: dict[str, Any] = {} if clock is None else {"clock": clock}
        out[p] = SignerNode(config, primes=lambda bits: 0, **kwargs)
    return out


def add_key(store: Store, key_id: str) -> KeyRecord:
    """Record the fixture key in the coordinator's store."""
    share = keygen_shares(2, PARTIES)[1]
    record = KeyRecord(
        key_id,
        "hot",
        2,
        PARTIES,
        "112",
        share.public_key.to_bytes(),
        share.chain_code,
        share.epoch,
        aux_from_fixtures(LEVEL_112, PARTIES)[1].epoch_id,
        store.now(),
    )
    store.add_key(record)
    return record
