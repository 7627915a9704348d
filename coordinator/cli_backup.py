"""tssctl's recovery-key and backup commands (docs/operations.md, Backups).

tssctl recovery keygen --out DIR [--level 128|112]    a fresh recovery key (fresh safe primes)
tssctl recovery pin FILE [--dir D]                     pin it in every local signer's config
tssctl recovery split --recovery-key SECRET --threshold M --shares K --out DIR   m-of-k shares
tssctl backup export --key KEY_ID --out DIR [--recovery-public FILE] [--as admin-1]
tssctl backup verify KIT [--recovery-public FILE]      public data only: OK, or the failed check
tssctl backup restore KIT --recovery-key SECRET [--data-dir DIR --kek FILE] [--dir D]
                                                       (--recovery-key repeated: m share files)
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from signer.node.backup_kit import KitError, verify_kit
from signer.node.recovery_key import PUBLIC_FILE, RecoveryKeyError, RecoveryPublic, generate, load_public, load_secret
from signer.node.recovery_key import write_files as write_recovery_files
from signer.node.recovery_split import load_recovery_secret, split, write_shares
from signer.node.store import EncryptedStore, StoreError, load_kek
from signer.tss.errors import InvalidInput
from signer.tss.params import level_by_name
from signer.tss.primes import generate_safe_prime
from signer.tss.rng import SystemRng

from . import backup_ops, cluster
from .backup_ops import BackupError
from .cli_common import client_for, emit, progress
from .cli_errors import CliError

Command = Callable[[argparse.Namespace], int]


def _refusals(fn: Command) -> Command:
    """Backup, kit, recovery-key and store errors end the command with their one line (exit 1)."""

    def run(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except (BackupError, KitError, RecoveryKeyError, StoreError, InvalidInput) as exc:
            raise CliError(str(exc)) from None

    return run


def _recovery_public(args: argparse.Namespace, default: Path | None = None) -> RecoveryPublic | None:
    path = Path(args.recovery_public) if args.recovery_public else default
    if path is None or not path.exists():
        return None
    try:
        return load_public(path)
    except RecoveryKeyError as exc:
        raise CliError(f"recovery public key {path} rejected: {exc}") from None


@_refusals
def cmd_recovery(args: argparse.Namespace) -> int:
    """recovery keygen | pin | split."""
    if args.action == "split":
        if len(args.recovery_key or []) != 1 or not args.out or not args.threshold or not args.shares:
            raise CliError("recovery split needs --recovery-key SECRET, --threshold M, --shares K and --out DIR")
        parts = split(load_secret(Path(args.recovery_key[0])), args.threshold, args.shares, SystemRng())
        paths = write_shares(Path(args.out), parts)
        fp = parts[0].public.fingerprint().hex()
        human = f"recovery key {fp} split {args.threshold}-of-{args.shares}: " + ", ".join(map(str, paths))
        human += "\n  give one share to each recovery officer, then destroy the whole secret file"
        emit(args, {"fingerprint": fp, "threshold": args.threshold, "shares": [str(p) for p in paths]}, human)
        return 0
    if args.action == "pin":
        if not args.file:
            raise CliError("recovery pin needs the recovery public key FILE")
        public = backup_ops.pin_recovery_key(Path(args.dir), Path(args.file))
        fp = public.fingerprint().hex()
        emit(args, {"fingerprint": fp, "pinned": True}, f"recovery key {fp} pinned on every signer (restarted)")
        return 0
    if not args.out:
        raise CliError("recovery keygen needs --out DIR")
    level = level_by_name(args.level)
    say = progress(args.json)
    made = 0

    def fresh_prime(bits: int) -> int:
        nonlocal made
        t0 = time.monotonic()
        p = generate_safe_prime(bits)
        made += 1
        say(f"safe prime {made}/4 ({bits} bits) in {time.monotonic() - t0:.1f}s")
        return p

    out = Path(args.out)
    if (out / "recovery.key.json").exists():
        raise CliError(f"{out / 'recovery.key.json'} exists: a recovery key is never overwritten")
    secret, public = generate(level, fresh_prime, SystemRng())
    secret_path, public_path = write_recovery_files(out, secret, public)
    fp = public.fingerprint().hex()
    data = {"fingerprint": fp, "public": str(public_path), "secret": str(secret_path), "level": level.name}
    emit(
        args,
        data,
        f"recovery key {fp}\n  public {public_path} (pin it: node.json recovery_key, or tssctl recovery pin)\n"
        f"  SECRET {secret_path} (mode 0600): move it offline now",
    )
    return 0


@_refusals
def cmd_backup(args: argparse.Namespace) -> int:
    """backup export | verify | restore."""
    if args.action == "export":
        return _export(args)
    if args.action == "verify":
        return _verify(args)
    return _restore(args)


def _export(args: argparse.Namespace) -> int:
    if not args.key or not args.out:
        raise CliError("backup export needs --key KEY_ID and --out DIR")
    root = Path(args.dir)
    info = cluster.ClusterInfo.load(root)
    tls = info.client_tls(args.identity or "admin-1")
    if not tls.cert.exists():
        raise CliError(f"no certificate for {args.identity!r} in {root / 'certs'}")
    recovery = _recovery_public(args, root / "recovery" / PUBLIC_FILE)
    results = backup_ops.export(info.signers, tls, args.key, Path(args.out), recovery)
    data = {
        "key_id": args.key,
        "recovery_fingerprint": recovery.fingerprint().hex() if recovery else "",
        "kits": [
            {"party": r.party, "path": str(r.path) if r.path else "", "epoch": r.epoch, "sha256": r.kit_sha256}
            | ({"error": r.error} if r.error else {})
            for r in results
        ],
    }
    emit(args, data, "\n".join(r.line() for r in results))
    return 0 if results and all(r.ok for r in results) else 1


def _verify(args: argparse.Namespace) -> int:
    kit = backup_ops.read_kit(Path(args.kit))
    recovery = _recovery_public(args)
    if args.recovery_public and recovery is None:
        raise CliError(f"no recovery public key at {args.recovery_public}")
    try:
        m = verify_kit(kit, recovery)
    except KitError as exc:
        raise CliError(f"backup kit rejected: {exc}") from None
    fp = kit.recovery.fingerprint().hex()
    data: dict[str, Any] = {
        "ok": True,
        "key_id": m.key_id,
        "epoch": m.epoch,
        "party": m.party,
        "public_share": m.public_share.to_bytes().hex(),
        "public_key": m.public_key.to_bytes().hex(),
        "threshold": m.threshold,
        "parties": list(m.parties),
        "recovery_fingerprint": fp,
        "recovery_pinned": recovery is not None,
    }
    pinned = "" if recovery is not None else " (not compared with a pinned key: pass --recovery-public)"
    emit(
        args,
        data,
        f"OK: kit of key {m.key_id}, party {m.party}, epoch {m.epoch} restores the share of X_{m.party} "
        f"under recovery key {fp[:16]}…{pinned}",
    )
    return 0


def _restore(args: argparse.Namespace) -> int:
    if not args.recovery_key:
        raise CliError("backup restore needs --recovery-key SECRET")
    kit = backup_ops.read_kit(Path(args.kit))
    secret = load_recovery_secret([Path(p) for p in args.recovery_key])
    m = kit.manifest
    if args.data_dir:
        if not args.kek:
            raise CliError("--data-dir needs --kek FILE (the node's key-encryption key)")
        with client_for(args, "operator") as op:
            restored = backup_ops.open_checked(kit, secret, op)
        store = EncryptedStore(Path(args.data_dir) / "store", load_kek(Path(args.kek)))
        names = backup_ops.restore_store(store, restored)
        where = f"store {store.root} ({', '.join(names)}); start the signer"
    else:
        pid = backup_ops.restore_signer(Path(args.dir), m.party, kit, secret)
        where = f"signer-{m.party} of {args.dir} (restarted, pid {pid})"
    data = {"key_id": m.key_id, "party": m.party, "epoch": m.epoch, "restored": True}
    emit(args, data, f"restored key {m.key_id} party {m.party} epoch {m.epoch} into {where}")
    return 0
