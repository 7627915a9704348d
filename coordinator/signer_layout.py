"""Laying out a new signer of the local cluster on disk (reshare_ops.add_signer starts it).

    used_indices(root)           every party index the cluster has used (never given out again)
    lay_out_signer(root, ...)    certificate, KEK, identity and node.json of signer-<party>
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from signer.node.identity import Identity, PeerKeys
from signer.node.store import EncryptedStore, load_kek, write_kek_file

from . import certs, cluster


def _read(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def used_indices(root: Path) -> set[int]:
    """Every party index the cluster has used: current signers, retired ones and signer directories."""
    info = cluster.ClusterInfo.load(root)
    retired = _read(root / "coordinator" / "coordinator.json").get("retired", [])
    dirs = {int(d.name.removeprefix("signer-")) for d in root.glob("signer-*") if d.name[7:].isdigit()}
    return set(info.signers) | {int(p) for p in retired} | dirs


def lay_out_signer(
    root: Path, party: int, template: dict[str, Any], peers: dict[str, Any], level: str
) -> tuple[PeerKeys, dict[str, str], str]:
    """Write signer-<party>'s certificate, KEK, identity and node.json; returns its public
    identity, its peers entry and its address."""
    sdir = root / f"signer-{party}"
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
