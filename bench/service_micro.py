"""The service benchmark's in-process micro-benchmark of the two history-dependent steps, at 0
and `history` prior releases: a signer recording a release (its journal write, fsync'd), and the
coordinator's policy decision (its ledger plus `evaluate`)."""

from __future__ import annotations

import dataclasses
import secrets
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.service_common import TO
from bench.service_seed import authorization, close_governance, governance, no_sync_waits, seed_coordinator, seed_intent
from coordinator import store as st
from signer.node.store import EncryptedStore
from signer.policy import Intent, Ledger, demo_policy, evaluate, public_key_bytes


def _timed(fn: Callable[[int], object], first: int, n: int) -> float:
    """Median milliseconds of `fn(i)` for i in first..first+n."""
    times = []
    for i in range(first, first + n):
        t0 = time.perf_counter()
        fn(i)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def micro_signer(history: int, samples: int, work: Path) -> dict[str, float]:
    """Median ms for a signer to record a release (its journal write, fsync'd) at 0 and `history`."""
    store = EncryptedStore(work / "signer-store", secrets.token_bytes(32))
    gov = governance(store, {})
    now = int(time.time())

    def record(n: int) -> None:
        gov.record(authorization(seed_intent("k", n, now)), now)

    at_zero = _timed(record, 0, samples)
    with no_sync_waits():
        for n in range(samples, history):
            record(n)
    close_governance(gov)
    gov = governance(store, {})
    at_history = _timed(record, history, samples)
    close_governance(gov)
    return {"at_0_ms": at_zero, f"at_{history}_ms": at_history, "ratio": at_history / at_zero}


def _coordinator_ledger(store: st.Store, now: int) -> Any:
    if hasattr(store, "ledger_view"):
        return store.ledger_view()
    ledger = Ledger()  # the code before the running sums: rebuilt from every signed request
    for data, at in store.signed_intents():  # type: ignore[attr-defined]
        intent = Intent.from_bytes(data)
        if not ledger.has_spent(intent.request_id):
            ledger.record_spend(intent, int(at))
    for request_id, initiator, at in store.submissions_since(now - 86400):  # type: ignore[attr-defined]
        ledger.record_request(initiator, request_id, int(at))
    return ledger


def micro_coordinator(history: int, samples: int, work: Path) -> dict[str, float]:
    """Median ms of the coordinator's policy decision (ledger + evaluate) at 0 and `history`."""
    store = st.Store(work / "coordinator.db")
    store.add_key(st.KeyRecord("k", "bench", 2, (1, 2, 3), "112", b"\x02" + b"\x11" * 32, b"\x22" * 32, 0, b"", 0.0))
    now = int(time.time())
    people = {f"o{i}": public_key_bytes_of(i) for i in range(3)}
    registry, policy = demo_policy(people, {"a0": people["o0"]}, cold=(), now=now - 86400)
    request = dataclasses.replace(
        seed_intent("k", 10**7, now), amount=10**15, max_fee_per_gas=10**9, destination=TO, policy_hash=policy.hash()
    )

    def decide(n: int) -> None:
        decision = evaluate(policy, registry, request, {}, _coordinator_ledger(store, now), now, "backend")
        if decision.action != "allow":
            raise RuntimeError(f"bench request not allowed: {decision.reason}")

    at_zero = _timed(decide, 0, samples)
    seed_coordinator(store.path, "k", 0, history)
    at_history = _timed(decide, 0, samples)
    store.close()
    return {"at_0_ms": at_zero, f"at_{history}_ms": at_history, "ratio": at_history / at_zero}


def public_key_bytes_of(i: int) -> bytes:
    """A fixed Ed25519 public key per index (the micro-benchmark signs nothing)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return public_key_bytes(Ed25519PrivateKey.from_private_bytes(bytes([i + 1]) * 32))
