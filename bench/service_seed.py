"""Seeding a history for the service benchmark: released transfers written through the stores'
own write paths with the cluster's processes stopped (every signer's `NodeGovernance.record`, the
path a release takes; the coordinator's `Store.create_request` + `transition` to signed), without
waiting for the disk after every record (the bytes go down the same code path; durability of seed
data is not what is measured)."""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from coordinator import store as st
from signer.node.governance import Authorization, NodeGovernance
from signer.node.state_version import StateVersions
from signer.node.store import EncryptedStore, load_kek
from signer.policy import Intent

SEPOLIA = 11155111
SEED_INITIATOR = "bench-history"
SEED_NONCES = 10**9
"""The seeded history's nonces start here: a nonce is released once per (chain, key, path)."""


def seed_intent(key_id: str, n: int, now: int) -> Intent:
    """A tiny released transfer (1 wei, 21,000 gas at 1 wei): history that never nears a limit."""
    return Intent(
        chain=f"eip155:{SEPOLIA}",
        asset="ETH",
        amount=1,
        destination=f"0x{n % 97 + 1:040x}",
        key_id=key_id,
        path=(),
        request_id=f"seed-{n:08d}",
        policy_hash=bytes(32),
        expires_at=now + 3600,
        nonce=SEED_NONCES + n,  # apart from the benchmark's own transfers (each signer indexes nonces)
        gas_limit=21000,
        max_fee_per_gas=1,
        max_priority_fee_per_gas=1,
        data=b"",
        tx_digest=n.to_bytes(32, "big"),
    )


@contextlib.contextmanager
def no_sync_waits() -> Iterator[None]:
    """Seed without waiting for the disk after every record; one `sync` at the end."""
    saved = os.fsync, getattr(os, "fdatasync", os.fsync)
    os.fsync = os.fdatasync = lambda fd: None
    try:
        yield
    finally:
        os.fsync, os.fdatasync = saved
        os.sync()


def governance(store: EncryptedStore, trusted: dict[str, str]) -> NodeGovernance:
    """A node's governance wired to its state versions as `SignerNode` does (either layout of the ledger)."""
    gov = NodeGovernance(store, trusted)
    if hasattr(gov, "counter"):
        rel = gov.releases
        gov.counter = StateVersions(store, journal_seq=rel.last_seq, journal_peer_seen=rel.peer_seen)
    else:  # the code before the release journal
        gov.on_release_recorded = StateVersions(store).release_recorded  # type: ignore[attr-defined]
    return gov


def close_governance(gov: NodeGovernance) -> None:
    """Wait for a background compaction, then close the release journal."""
    for t in threading.enumerate():
        if t.name == "ledger-compaction":
            t.join()
    if hasattr(gov, "releases"):
        gov.releases.close()


def authorization(intent: Intent) -> Authorization:
    return Authorization(intent, None, intent.tx_digest, SEED_INITIATOR, False)  # type: ignore[arg-type]


def seed_signers(root: Path, key_id: str, start: int, count: int) -> None:
    """`count` releases into every signer's ledger through `NodeGovernance.record` (processes stopped)."""
    now = int(time.time())
    for sdir in sorted(root.glob("signer-*")):
        trusted = json.loads((sdir / "node.json").read_text())["trusted_admins"]
        store = EncryptedStore(sdir / "store", load_kek(sdir / "kek"))
        gov = governance(store, trusted)
        with no_sync_waits():
            for n in range(start, start + count):
                gov.record(authorization(seed_intent(key_id, n, now)), now)
        close_governance(gov)


def seed_coordinator(db: Path, key_id: str, start: int, count: int) -> None:
    """`count` signed requests in the coordinator's database through the store's API."""
    store = st.Store(db)
    now = int(time.time())
    for n in range(start, start + count):
        i = seed_intent(key_id, n, now)
        rid = f"seed-{n:08d}"
        store.create_request(
            request_id=rid,
            key_id=key_id,
            idempotency_key=rid,
            body_hash=rid,
            tx={"seed": n},
            path=(),
            initiator=SEED_INITIATOR,
            intent=i.to_bytes(),
        )
        for state in (st.APPROVED, st.SIGNING, st.SIGNED):
            store.transition(rid, state)
    store.close()
