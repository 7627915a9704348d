"""Laying out a new signer of the local cluster on disk (reshare_ops.add_signer starts it).

    used_indices(root)           every party index the cluster has used (never given out again)
    lay_out_signer(root, ...)    certificate, KEK, identity and node.json of signer-<party>
    prepare_standby(root)        the next signer laid out ahead under D/standby/, outside the
                                 cluster (no config lists it, no process runs), with the safe
                                 primes of one aux-info run already in its encrypted store
                                 (signer/node/prime_stash.py)
    take_standby(root, peers)    moves a prepared standby to D/signer-<i> with today's peers and a
                                 fresh address; add_signer uses it instead of a brand-new layout

Why a standby: a brand-new node must generate the four safe primes of its Paillier and
ring-Pedersen keys before the aux info of the new committee can run, and at the 128-bit level
(1536-bit primes) that dominates the time to replace a lost signer (docs/operations.md, Drill).
A standby made ahead (with its primes) turns that into seconds. Its primes are used once: the
node removes each from the store before using it.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from signer.node import prime_stash
from signer.node.identity import Identity, PeerKeys
from signer.node.store import EncryptedStore, load_kek, write_kek_file
from signer.tss.params import level_by_name
from signer.tss.primes import generate_safe_prime

from . import certs, cluster

STANDBY = "standby"


def _read(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def used_indices(root: Path) -> set[int]:
    """Every party index the cluster has used: current signers, retired ones and signer directories."""
    info = cluster.ClusterInfo.load(root)
    retired = _read(root / "coordinator" / "coordinator.json").get("retired", [])
    found = [*root.glob("signer-*"), *(root / STANDBY).glob("signer-*")]
    dirs = {int(d.name.removeprefix("signer-")) for d in found if d.name[7:].isdigit()}
    return set(info.signers) | {int(p) for p in retired} | dirs


def lay_out_signer(
    root: Path, party: int, template: dict[str, Any], peers: dict[str, Any], level: str, into: Path | None = None
) -> tuple[PeerKeys, dict[str, str], str]:
    """Write signer-<party>'s certificate, KEK, identity and node.json (under `into`, default
    the cluster directory); returns its public identity, its peers entry and its address."""
    sdir = (into or root) / f"signer-{party}"
    sdir.mkdir()
    certs.issue(root / "certs", f"signer-{party}", "signer")
    write_kek_file(sdir / "kek")
    ident = Identity.generate(party)
    EncryptedStore(sdir / "store", load_kek(sdir / "kek")).put("identity", ident.to_bytes())
    pub = ident.public()
    entry = {"sign_pub": pub.sign_pub.hex(), "enc_pub": pub.enc_pub.hex()}
    address = f"127.0.0.1:{cluster.free_port()}"
    cluster._write_json(
        sdir / "node.json",
        {
            "party": party,
            "listen": address,
            "data_dir": ".",
            "kek_file": "kek",
            "tls": {
                "ca": "../certs/ca.pem",
                "cert": f"../certs/signer-{party}.pem",
                "key": f"../certs/signer-{party}.key",
            },
            "level": template.get("level", level),
            "peers": peers,
            "trusted_admins": template.get("trusted_admins", {}),
        },
    )
    return pub, entry, address


def prepare_standby(
    root: Path, primes: Callable[[int], int] | None = None, count: int = 4, progress: cluster.Progress | None = None
) -> int:
    """Lay out the next signer under D/standby/ with `count` safe primes of the cluster's level in
    its store (from `primes`, default freshly generated); returns its party index."""
    say = progress or (lambda _m: None)
    root = Path(root).resolve()
    info = cluster.ClusterInfo.load(root)
    party = max(used_indices(root)) + 1
    template = _read(next(iter(sorted(root.glob("signer-*/node.json")))))
    (root / STANDBY).mkdir(exist_ok=True)
    say(f"standby signer {party}: laying out (certificate, KEK, identity, config)")
    lay_out_signer(root, party, template, {}, info.level, into=root / STANDBY)
    sdir = root / STANDBY / f"signer-{party}"
    bits = level_by_name(str(template.get("level", info.level))).prime_bits
    make = primes or generate_safe_prime
    ready = []
    for i in range(count):
        t0 = time.monotonic()
        ready.append(make(bits))
        say(f"standby signer {party}: safe prime {i + 1}/{count} ({bits} bits) in {time.monotonic() - t0:.1f}s")
    store = EncryptedStore(sdir / "store", load_kek(sdir / "kek"))
    store.put(prime_stash.RECORD, prime_stash.encode_primes(bits, ready))
    return party


def take_standby(root: Path, peers: dict[str, Any]) -> tuple[int, tuple[PeerKeys, dict[str, str], str]] | None:
    """Move the lowest prepared standby into the cluster directory with `peers` and a fresh
    address: (party, (public identity, peers entry, address)); None if none is prepared."""
    ready = sorted((root / STANDBY).glob("signer-*"), key=lambda d: int(d.name.removeprefix("signer-")))
    if not ready:
        return None
    party = int(ready[0].name.removeprefix("signer-"))
    sdir = root / f"signer-{party}"
    shutil.move(str(ready[0]), str(sdir))
    config = _read(sdir / "node.json")
    address = f"127.0.0.1:{cluster.free_port()}"
    config.update(peers=peers, listen=address)
    cluster._write_json(sdir / "node.json", config)
    store = EncryptedStore(sdir / "store", load_kek(sdir / "kek"))
    pub = Identity.from_bytes(party, store.get("identity")).public()
    return party, (pub, {"sign_pub": pub.sign_pub.hex(), "enc_pub": pub.enc_pub.hex()}, address)
