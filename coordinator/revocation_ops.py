"""Revoking signers of the local cluster in the officer registry (the authoritative revocation).

`revoke(root, parties)` reads each party's identity key (from the signers' and the coordinator's
configs) and the SHA-256 fingerprint of its certificate (certs/signer-<i>.pem), builds the next
registry version with those parties added to `revoked_signers` (signer/policy/revocation.py),
signs it with the cluster's demo admin keys (an admin quorum) and proposes it through the
coordinator, which installs it on every reachable signer. Revoking is tightening, so it takes
effect at once; a signer that is down gets it from the coordinator's governance sync when it
comes back. From then on every signer and the coordinator refuse the party's certificate,
envelopes and sessions, whatever the config files say. The configs' `retired` list
(reshare_ops.py) only lays out the processes: which signer runs and whose keys each one loads.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from signer.policy import OfficerRegistry, PolicyChange
from signer.policy.revocation import RevokedSigner, cert_fingerprint

from . import cluster
from .client import CoordinatorClient
from .officer import load_key


class RevocationError(cluster.ClusterError):
    """A party cannot be revoked (its identity is unknown); the message is one line."""


def _identity_key(root: Path, party: int) -> bytes:
    """The party's Ed25519 identity key as the other components know it."""
    for path in [root / "coordinator" / "coordinator.json", *sorted(root.glob("signer-*/node.json"))]:
        entry = json.loads(path.read_text()).get("peers", {}).get(str(party))
        if entry:
            return bytes.fromhex(entry["sign_pub"] if isinstance(entry, dict) else entry)
    raise RevocationError(f"no config lists the identity key of signer {party}")


def revoked_entry(root: Path, party: int) -> RevokedSigner:
    """The registry entry that revokes `party`: index, certificate fingerprint, identity key."""
    pem = root / "certs" / f"signer-{party}.pem"
    if not pem.exists():
        raise RevocationError(f"no certificate for signer {party} ({pem})")
    der = x509.load_pem_x509_certificate(pem.read_bytes()).public_bytes(Encoding.DER)
    return RevokedSigner(party, cert_fingerprint(der), _identity_key(root, party))


def revoke(root: Path, parties: Iterable[int], progress: Callable[[str], None] | None = None) -> int:
    """Propose the registry version revoking `parties` (signed by the demo admins); returns its
    version (the current one if every party was revoked already)."""
    say = progress or (lambda _m: None)
    root = Path(root).resolve()
    info = cluster.ClusterInfo.load(root)
    with CoordinatorClient(info.coordinator, info.client_tls(cluster.ADMINS[0])) as admin:
        shown = admin.governance().registry_json
        if not shown:
            raise RevocationError("no officer registry is installed: nothing can revoke a signer yet")
        current = OfficerRegistry.from_json(shown)
        known = {r.party for r in current.revoked_signers}
        added = [revoked_entry(root, p) for p in sorted(set(parties) - known)]
        if not added:
            return current.version
        new = dataclasses.replace(
            current,
            version=current.version + 1,
            previous_hash=current.hash(),
            revoked_signers=(*current.revoked_signers, *added),
        )
        change: PolicyChange[OfficerRegistry] = PolicyChange(new, int(time.time()))
        for a in cluster.ADMINS:
            change = change.signed(load_key(info.officer_key(a)), a)
        say(f"revoking signer(s) {[r.party for r in added]} in the officer registry (v{new.version}, both admins)")
        admin.propose_change("registry", change.to_json())
    return new.version
