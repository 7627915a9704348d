"""Whether the local cluster's signers hold warm safe-prime pools, from their `prime_pool` log
lines (signer/node/prime_stash.py logs the ready count after every change).

A fresh cluster at the 128-bit level starts with empty pools: the first key's aux info would
generate twelve 1536-bit safe primes inside one session, beyond the coordinator's RPC deadline on
a small machine. A drill therefore waits for the pools first (a step before the kill, so outside
its RTO), and before a reshare (aux info for the new committee takes four primes per signer).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

AUX_PRIMES = 4
"""Safe primes one aux-info run takes from a signer's pool (Paillier p, q and ring-Pedersen p̂, q̂)."""
TIMEOUT = 1800.0


def pool_size(root: Path, party: int) -> int:
    """The signer's ready primes as its last `prime_pool` log line says (0 without one)."""
    log = root / "logs" / f"signer-{party}.log"
    if not log.exists():
        return 0
    for line in reversed(log.read_text(errors="replace").splitlines()):
        if '"prime_pool' not in line:
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("event") in ("prime_pool", "prime_pool_restored"):
            return int(entry.get("available", 0))
    return 0


def wait(root: Path, parties: Sequence[int], need: int = AUX_PRIMES, timeout: float = TIMEOUT) -> float:
    """Block until each of `parties` holds `need` ready primes; the seconds waited (TimeoutError
    naming the pools still short)."""
    t0 = time.monotonic()
    while any(pool_size(root, p) < need for p in parties):
        if time.monotonic() - t0 > timeout:
            sizes = {p: pool_size(root, p) for p in parties}
            raise TimeoutError(f"prime pools still short of {need} after {timeout:.0f}s: {sizes}")
        time.sleep(0.5)
    return time.monotonic() - t0
