"""Replacing, adding and retiring signers of the local cluster (coordinator/cluster.py).

    add_signer(root, retire=())    a new signer under a new index (never one the cluster used):
                                   its certificate, KEK, identity and node.json, or the standby
                                   prepared ahead with its safe primes (signer_layout.py); every other
                                   signer's node.json and coordinator.json learn its address and
                                   identity keys. Parties in `retire` are revoked in the same pass
                                   (below). Then the new signer starts, every running signer
                                   reloads its peers on SIGHUP (no restart: presignatures and the
                                   warm prime pool stay) and the coordinator restarts (it loads
                                   its signers at start).
    retire_signer(root, party)     revoke a party: first in the officer registry (revocation_ops:
                                   an admin-quorum change every signer and the coordinator enforce,
                                   the authoritative revocation), then in the process layout:
                                   removed from coordinator.json (signers, peers) and from every
                                   signer's peers, listed under `retired` in every config (a node
                                   configured as a retired party does not start); reloads as above.
    replace_signer(root, lost)     the disaster-recovery path: add a signer retiring `lost`, then
                                   reshare every key that `lost` held to (its parties − lost + new)
                                   at the same threshold, dealt by the live old signers, each under
                                   a reshare order signed by the cluster's demo admins
                                   (D/officers/admin-*.key); returns the new party. Killing and
                                   wiping the lost one is the caller's job.

Only the coordinator's own reshare (ReshareKey) moves a key; these functions lay out and restart
processes around it.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from . import cluster, revocation_ops, signer_layout
from .client import CoordinatorClient
from .key_order_signing import demo_order
from .signer_layout import used_indices

ADMIN = "admin-1"
RELOAD_TIMEOUT = 10.0


def _read(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _write(path: Path, data: object) -> None:
    cluster._write_json(path, data)


def _signer_configs(root: Path) -> dict[int, Path]:
    return {int(p.parent.name.removeprefix("signer-")): p for p in root.glob("signer-*/node.json")}


def _known_peers(configs: dict[int, Path]) -> dict[str, dict[str, str]]:
    """Every signer's public identity, as the signers' configs list each other."""
    peers: dict[str, dict[str, str]] = {}
    for path in configs.values():
        peers.update(_read(path).get("peers", {}))
    return peers


def _revoke(root: Path, retire: Iterable[int], say: cluster.Progress) -> None:
    """Write `retire` into every config (coordinator and signers), dropping them as signers and peers."""
    gone = {str(p) for p in retire}
    if not gone:
        return
    revocation_ops.revoke(root, map(int, gone), say)  # the authoritative revocation, before the configs lose its keys
    for path in [root / "coordinator" / "coordinator.json", *_signer_configs(root).values()]:
        raw = _read(path)
        for field in ("signers", "peers"):
            if field in raw:
                raw[field] = {k: v for k, v in raw[field].items() if k not in gone}
        raw["retired"] = sorted({*map(int, raw.get("retired", [])), *map(int, gone)})
        _write(path, raw)
    info = cluster.ClusterInfo.load(root)
    for p in map(int, gone):
        info.signers.pop(p, None)
    _write(root / "cluster.json", info.to_json())


def _reload_running(root: Path, skip: Sequence[int], say: cluster.Progress) -> None:
    """SIGHUP every running signer (it reloads its peers, keeping its presignatures and warm prime
    pool) and wait for its `peers_reloaded` log line; then restart the coordinator."""
    info = cluster.ClusterInfo.load(root)
    for party in sorted(info.signers):
        name = f"signer-{party}"
        pid = info.pids.get(name)
        if party in skip or pid is None or not cluster._alive(pid):
            continue
        log = root / "logs" / f"{name}.log"
        before = log.read_text(errors="replace").count('"peers_reloaded"')
        say(f"{name} reloads its peers (SIGHUP)")
        os.kill(pid, signal.SIGHUP)
        deadline = time.monotonic() + RELOAD_TIMEOUT
        while log.read_text(errors="replace").count('"peers_reloaded"') <= before:
            if time.monotonic() > deadline:
                raise cluster.ClusterError(f"{name} did not reload its peers in time (logs/{name}.log)")
            time.sleep(0.05)
    say("restarting the coordinator (it loads its signers at start)")
    cluster.restart(root, "coordinator")


def add_signer(root: Path, retire: Sequence[int] = (), progress: cluster.Progress | None = None) -> int:
    """Lay out and start a new signer under a fresh index (see the module); returns its party index."""
    say = progress or (lambda _m: None)
    root = Path(root).resolve()
    info = cluster.ClusterInfo.load(root)
    configs = _signer_configs(root)
    template = _read(next(iter(configs.values())))
    peers = {k: v for k, v in _known_peers(configs).items() if int(k) not in retire}
    standby = signer_layout.take_standby(root, peers)  # laid out ahead, its safe primes ready
    if standby is not None:
        party, (pub, entry, address) = standby
        say(f"signer {party}: the standby prepared ahead (its safe primes are ready)")
    else:
        party = max(used_indices(root)) + 1
        say(f"laying out signer {party} (certificate, KEK, identity, config)")
        pub, entry, address = signer_layout.lay_out_signer(root, party, template, peers, info.level)
    for path in configs.values():
        raw = _read(path)
        raw.setdefault("peers", {})[str(party)] = entry
        _write(path, raw)
    coord = _read(root / "coordinator" / "coordinator.json")
    coord["signers"][str(party)] = address
    coord.setdefault("peers", {})[str(party)] = pub.sign_pub.hex()
    _write(root / "coordinator" / "coordinator.json", coord)
    info.signers[party] = address
    _write(root / "cluster.json", info.to_json())
    _revoke(root, retire, say)
    say(f"starting signer {party} at {address}")
    cluster.restart_signer(root, party)
    _reload_running(root, (party,), say)
    return party


def retire_signer(root: Path, party: int, progress: cluster.Progress | None = None) -> None:
    """Revoke `party` in every config and stop it if it runs (see the module)."""
    say = progress or (lambda _m: None)
    root = Path(root).resolve()
    info = cluster.ClusterInfo.load(root)
    name = f"signer-{party}"
    if name in info.pids and cluster._alive(info.pids[name]):
        say(f"stopping {name}")
        cluster.stop_process(info.pids[name])
    _revoke(root, (party,), say)
    _reload_running(root, (), say)


def keys_of(root: Path, party: int) -> list[tuple[str, tuple[int, ...], int]]:
    """(key id, parties, threshold) of every key `party` holds a share of, read from the
    coordinator's database (read-only; the local cluster's file)."""
    db = root / "coordinator" / "coordinator.db"
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT key_id, parties, threshold FROM keys ORDER BY created_at").fetchall()
    keys = [(str(k), tuple(int(p) for p in json.loads(ps)), int(t)) for k, ps, t in rows]
    return [k for k in keys if party in k[1]]


def replace_signer(
    root: Path, lost_party: int, progress: cluster.Progress | None = None, key_ids: Sequence[str] | None = None
) -> int:
    """Add a signer (retiring `lost_party`) and reshare every key it held to the new one from the
    live old signers; returns the new party index."""
    say = progress or (lambda _m: None)
    root = Path(root).resolve()
    keys = [k for k in keys_of(root, lost_party) if key_ids is None or k[0] in key_ids]
    new = add_signer(root, retire=(lost_party,), progress=say)
    info = cluster.ClusterInfo.load(root)
    with CoordinatorClient(info.coordinator, info.client_tls(ADMIN)) as admin:
        for key_id, parties, threshold in keys:
            committee = tuple(sorted({*parties, new} - {lost_party}))
            say(f"resharing key {key_id} from {list(parties)} to {list(committee)} (t = {threshold})")
            order = demo_order(admin, root, "reshare", key_id, parties=committee, threshold=threshold)
            key = admin.reshare_key(key_id, committee, threshold, key_order=order)
            if key.committing_epoch:
                say(f"key {key_id}: epoch {key.committing_epoch} still committing (the coordinator retries)")
    return new
