"""Key creation in the service benchmark, warm and cold (`bench.service` runs these).

- **warm**: every signer's safe-prime pool holds one aux-info run's primes (4) before the key is
  asked for (`coordinator.drill.primes_ready.wait`), so key creation is keygen plus aux info
  with primes at hand: what an operator sees on a cluster that has been up for a while.
- **cold**: every signer restarted with `prime_pool` 0 and its stashed primes deleted (with the
  process stopped), so each generates its four safe primes inside the aux-info session: what
  the first key of a freshly started cluster costs. The coordinator's `rpc_timeout` is raised
  for it (safe primes of 1536 bits can take minutes on a busy machine; the default deadline is
  120 s per round). It is the last measurement on its cluster: pools and deadline stay so.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

from bench.service_common import say, wait_quiet
from coordinator import cluster
from coordinator.client import CoordinatorClient
from coordinator.drill import primes_ready
from signer.node import prime_stash
from signer.node.store import EncryptedStore, load_kek

PRIME_POOL = 4
"""The signers' default `prime_pool` (one aux-info run's primes)."""
COLD_RPC_TIMEOUT = 1800.0


def _edit_json(path: Path, **fields: object) -> None:
    raw = json.loads(path.read_text())
    raw.update(fields)
    path.write_text(json.dumps(raw, indent=2) + "\n")


def set_prime_pools(root: Path, parties: Sequence[int], size: int, *, empty: bool) -> cluster.ClusterInfo:
    """Restart each signer with `prime_pool` = `size` (same port, same data); with `empty`, its
    stashed primes are deleted while it is stopped."""
    for party in parties:
        name = f"signer-{party}"
        cluster.stop_process(cluster.ClusterInfo.load(root).pids[name])
        _edit_json(root / name / "node.json", prime_pool=size)
        if empty:
            store = EncryptedStore(root / name / "store", load_kek(root / name / "kek"))
            if store.exists(prime_stash.RECORD):
                store.delete(prime_stash.RECORD)
        cluster.restart_signer(root, party)
    return cluster.ClusterInfo.load(root)


def set_rpc_timeout(root: Path, seconds: float) -> cluster.ClusterInfo:
    """Restart the coordinator with `rpc_timeout` = `seconds`."""
    _edit_json(root / "coordinator" / "coordinator.json", rpc_timeout=seconds)
    cluster.restart(root, "coordinator")
    return cluster.ClusterInfo.load(root)


def _create(info: cluster.ClusterInfo, name: str, threshold: int, level: str) -> tuple[str, float]:
    """Create a key through the operator API; (its id, seconds)."""
    with CoordinatorClient(info.coordinator, info.client_tls("operator")) as op:
        t0 = time.perf_counter()
        key = op.create_key(name, threshold, level)
        return key.key_id, time.perf_counter() - t0


def create_warm(info: cluster.ClusterInfo, threshold: int, level: str) -> tuple[str, float]:
    """The benchmark's key, created once every signer's prime pool is full; (key id, seconds).
    Returns after the pools are full again, so their refill competes with nothing measured later."""
    parties = sorted(int(p) for p in info.signers)
    waited = primes_ready.wait(info.root, parties, PRIME_POOL)
    say(f"prime pools full ({waited:.1f} s waited); creating the key")
    wait_quiet(list(info.pids.values()), timeout=1800)
    key_id, seconds = _create(info, "bench", threshold, level)
    say(f"key {key_id} created with warm prime pools in {seconds:.1f} s")
    waited = primes_ready.wait(info.root, parties, PRIME_POOL)
    say(f"prime pools refilled in {waited:.1f} s")
    return key_id, seconds


def create_cold(root: Path, threshold: int, level: str) -> float:
    """Seconds to create a key with every signer's prime pool empty (see the module docstring).
    The pools stay empty and the deadline raised: this is the last step on a cluster."""
    parties = sorted(int(p) for p in cluster.ClusterInfo.load(root).signers)
    say("restarting the signers with empty prime pools")
    set_prime_pools(root, parties, 0, empty=True)
    info = set_rpc_timeout(root, COLD_RPC_TIMEOUT)
    wait_quiet(list(info.pids.values()), timeout=1800)
    _key_id, seconds = _create(info, "bench-cold", threshold, level)
    say(f"key created with empty prime pools (fresh primes) in {seconds:.1f} s")
    return seconds
