"""Taking, checking and restoring verifiable backups (docs/operations.md, Backups).

- `export` asks every signer directly (ExportBackup, an admin certificate; not through the
  coordinator, like the direct freeze orders in direct.py) for its kit of a key, checks each kit
  with public data (`backup_kit.verify_kit`, against the recovery key the operator expects when
  given) and writes the good ones as `<out>/<key_id>.party-<i>.epoch-<e>.kit`.
- `check_epoch` refuses a kit that is not from the key's current epoch (the coordinator owns it).
- `restore_store` writes a kit's records (identity, share, aux info) into a node's encrypted store
  under that node's KEK, refusing a store that already holds another identity or this key.
- `restore_signer` does all of it for one signer of the local cluster: epoch check, stop, wipe
  the store, restore, start, wait until healthy. The disaster-recovery drill calls it.
- `pin_recovery_key` pins a recovery public key in every local signer's config (restarting them).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import grpc
from tsscustody.v1 import signer_pb2, signer_pb2_grpc

from signer.node import limits
from signer.node.backup_kit import Kit, KitError, Manifest, Restored, kit_digest, open_kit, verify_kit
from signer.node.identity import Identity
from signer.node.recovery_key import PUBLIC_FILE, RecoveryPublic, RecoverySecret, load_public
from signer.node.store import EncryptedStore, load_kek
from signer.node.tls import TlsFiles, channel_credentials

from . import cluster
from .client import CoordinatorClient
from .signer_client import error_from_rpc

EXPORT_TIMEOUT = 60.0
"""Seconds a signer may take to build a kit (its Πlog* proof and the recovery key's check)."""


class BackupError(Exception):
    """A backup operation refused or failed; the message is the one line an operator sees."""


@dataclass(frozen=True, slots=True)
class Exported:
    """One signer's answer to an export: the kit file written, or the error."""

    party: int
    path: Path | None = None
    epoch: int = 0
    kit_sha256: str = ""
    error: str = ""

    @property
    def ok(self) -> bool:
        """A verified kit was written."""
        return self.path is not None

    def line(self) -> str:
        """One human line."""
        if self.path is not None:
            return f"signer {self.party}: kit {self.path} (epoch {self.epoch}, sha256 {self.kit_sha256[:16]}…)"
        return f"signer {self.party}: NO kit: {self.error}"


def kit_name(manifest: Manifest) -> str:
    """The file name of a kit."""
    return f"{manifest.key_id}.party-{manifest.party}.epoch-{manifest.epoch}.kit"


def _export_one(
    party: int, address: str, tls: TlsFiles, key_id: str, out: Path, recovery: RecoveryPublic | None
) -> Exported:
    options = limits.channel_options(limits.SIGNER_MAX_MESSAGE, limits.SIGNER_MAX_MESSAGE)
    expected = recovery.fingerprint() if recovery is not None else b""
    with grpc.secure_channel(address, channel_credentials(tls), options=options) as channel:
        try:
            reply = signer_pb2_grpc.SignerStub(channel).ExportBackup(
                signer_pb2.ExportBackupRequest(key_id=key_id, recovery_fingerprint=expected), timeout=EXPORT_TIMEOUT
            )
        except grpc.RpcError as exc:
            return Exported(party, error=str(error_from_rpc(party, exc)))
    data = bytes(reply.kit)
    try:
        kit = Kit.from_bytes(data)
        manifest = verify_kit(kit, recovery)
    except KitError as exc:
        return Exported(party, error=f"the kit does not verify: {exc}")
    if manifest.party != party or manifest.key_id != key_id:
        return Exported(party, error=f"the kit is party {manifest.party}'s of key {manifest.key_id}")
    path = out / kit_name(manifest)
    path.write_bytes(data)
    return Exported(party, path, manifest.epoch, kit_digest(data))


def export(
    signers: Mapping[int, str], tls: TlsFiles, key_id: str, out: Path, recovery: RecoveryPublic | None = None
) -> list[Exported]:
    """ExportBackup on every signer in parallel; each kit verified before it is written to `out`."""
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not signers:
        return []
    with ThreadPoolExecutor(max_workers=len(signers)) as pool:
        futures = [pool.submit(_export_one, p, a, tls, key_id, out, recovery) for p, a in sorted(signers.items())]
        return [f.result() for f in futures]


def check_epoch(manifest: Manifest, key_epoch: int, committing_epoch: int = 0) -> None:
    """Refuse a kit that is not from the key's current epoch (or while a refresh is committing)."""
    if committing_epoch:
        raise BackupError(
            f"key {manifest.key_id} is committing epoch {committing_epoch}: "
            "wait until it is done, then take a new backup"
        )
    if manifest.epoch < key_epoch:
        raise BackupError(
            f"kit is from epoch {manifest.epoch}; key {manifest.key_id} is at epoch {key_epoch} "
            "(refreshed since): take a new backup"
        )
    if manifest.epoch != key_epoch:
        raise BackupError(
            f"kit is from epoch {manifest.epoch}; key {manifest.key_id} is at epoch {key_epoch}: "
            "the coordinator does not know that epoch"
        )


def read_kit(path: Path) -> Kit:
    """A kit file, decoded (BackupError naming the file otherwise)."""
    try:
        return Kit.from_bytes(Path(path).read_bytes())
    except OSError as exc:
        raise BackupError(f"cannot read kit {path}: {exc.strerror}") from None
    except KitError as exc:
        raise BackupError(f"kit {path} rejected: {exc}") from None


def open_checked(kit: Kit, secret: RecoverySecret, coordinator: CoordinatorClient) -> Restored:
    """The kit's records, once it verifies, opens under `secret` and is from the key's current epoch."""
    try:
        restored = open_kit(kit, secret)
    except KitError as exc:
        raise BackupError(f"kit rejected: {exc}") from None
    key = coordinator.get_key(restored.manifest.key_id)
    if bytes(key.public_key) != restored.manifest.public_key.to_bytes():
        raise BackupError(f"kit's public key is not key {key.key_id}'s")
    check_epoch(restored.manifest, key.epoch, key.committing_epoch)
    return restored


def restore_store(store: EncryptedStore, restored: Restored) -> list[str]:
    """Write the kit's records into a node's store (under that node's KEK); returns the names.

    Refuses a store that holds another identity (another node's data: wipe it first) or already a
    share of this key (restore onto a fresh or wiped node only)."""
    m = restored.manifest
    if store.exists("identity") and store.get("identity") != restored.identity:
        raise BackupError(f"the store {store.root} holds another identity: restore onto a fresh or wiped node")
    share_name, aux_name = f"keys/{m.key_id}/share", f"keys/{m.key_id}/aux"
    if store.exists(share_name):
        raise BackupError(f"the store {store.root} already holds a share of key {m.key_id}: wipe it first")
    Identity.from_bytes(m.party, restored.identity)  # decodes, or the kit was refused already
    store.put("identity", restored.identity)
    store.put(aux_name, restored.aux)
    store.put(share_name, restored.share.to_bytes())  # last: a share without aux never looks complete
    return ["identity", aux_name, share_name]


def restore_signer(cluster_root: Path, party: int, kit: Kit, secret: RecoverySecret) -> int:
    """Restore signer `party` of the local cluster from `kit`: check (kit, recovery key, epoch),
    stop the signer, wipe its store, write the records under its KEK, start it; its new pid."""
    root = Path(cluster_root).resolve()
    info = cluster.ClusterInfo.load(root)
    if kit.manifest.party != party:
        raise BackupError(f"the kit is party {kit.manifest.party}'s, not party {party}'s")
    with CoordinatorClient(info.coordinator, info.client_tls("operator")) as op:
        restored = open_checked(kit, secret, op)  # refuses before anything is touched
    sdir = root / f"signer-{party}"
    name = f"signer-{party}"
    if name in info.pids:
        cluster.stop_process(info.pids[name])
    shutil.rmtree(sdir / "store", ignore_errors=True)
    restore_store(EncryptedStore(sdir / "store", load_kek(sdir / "kek")), restored)
    return cluster.restart_signer(root, party)


def pin_recovery_key(cluster_root: Path, public_file: Path) -> RecoveryPublic:
    """Pin a (verified) recovery public key in every signer config of the local cluster: copy it
    to D/recovery/, set `recovery_key` in each node.json and restart the signers that run."""
    root = Path(cluster_root).resolve()
    public = load_public(public_file)
    target = root / "recovery" / PUBLIC_FILE
    target.parent.mkdir(exist_ok=True, mode=0o700)
    if Path(public_file).resolve() != target:
        target.write_text(json.dumps(public.to_json(), indent=2) + "\n")
    info = cluster.ClusterInfo.load(root)
    for party in sorted(info.signers):
        config = root / f"signer-{party}" / "node.json"
        raw = json.loads(config.read_text())
        raw["recovery_key"] = f"../recovery/{PUBLIC_FILE}"
        config.write_text(json.dumps(raw, indent=2) + "\n")
        cluster.restart(root, f"signer-{party}")
    return public
