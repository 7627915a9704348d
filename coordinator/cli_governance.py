"""`tssctl governance genesis|install`: the first officer registry and policy of a deployment.

`genesis` runs offline on an admin's machine (no coordinator): from the officers' and admins'
public keys, the admins' key files and a policy document it writes DIR/registry.json and
DIR/policy.json (admin-signed change files, coordinator/genesis.py) and DIR/trusted_admins.json,
the block every signer config pins. `install` presents both change files to a running coordinator
(ProposeChange, the path `tssctl policy propose` uses), which installs them on every signer.
Registered by `add_parsers` (called from cli_parser.py).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from .cli_common import add_common, client_for, command, emit
from .cli_errors import CliError, UsageError, uint64

FILES = {"registry": "registry.json", "policy": "policy.json"}
TRUSTED = "trusted_admins.json"


def _pairs(values: list[str] | None, option: str) -> dict[str, str]:
    """ID=VALUE options (repeatable) as a dict; a malformed or repeated id is a usage error."""
    out: dict[str, str] = {}
    for text in values or []:
        who, sep, value = text.partition("=")
        if not sep or not who or not value:
            raise UsageError(f"{option} {text!r}: expected ID=VALUE")
        if who in out:
            raise UsageError(f"{option}: {who} given twice")
        out[who] = value
    return out


def _public_key(who: str, text: str, option: str) -> bytes:
    try:
        raw = bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        raise UsageError(f"{option} {who}: not hex") from None
    if len(raw) != 32:
        raise UsageError(f"{option} {who}: an Ed25519 public key is 32 bytes, not {len(raw)}")
    return raw


def cmd_genesis(args: argparse.Namespace) -> None:
    from signer.policy import PolicyDocument, PolicyError, public_key_bytes

    from . import genesis
    from .officer import OfficerError, load_key

    officers = {o: _public_key(o, v, "--officer") for o, v in _pairs(args.officer, "--officer").items()}
    admins = {a: _public_key(a, v, "--admin") for a, v in _pairs(args.admin, "--admin").items()}
    keys = {}
    for who, path in _pairs(args.admin_key, "--admin-key").items():
        try:
            keys[who] = load_key(Path(path))
        except OfficerError as exc:
            raise UsageError(f"--admin-key {who}: {exc}") from None
        pub = public_key_bytes(keys[who])
        if admins.setdefault(who, pub) != pub:
            raise UsageError(f"--admin-key {who}: the key file does not match --admin {who}")
    if not officers:
        raise UsageError("governance genesis needs at least one --officer ID=HEX")
    if not keys:
        raise UsageError("governance genesis needs the admins' key files (--admin-key ID=FILE) to sign")
    try:
        policy_text = Path(args.policy).read_text()
    except OSError as exc:
        raise UsageError(f"--policy: cannot read {args.policy}: {exc.strerror}") from None
    try:
        policy = PolicyDocument.from_json(policy_text)
    except PolicyError as exc:
        raise UsageError(f"--policy {args.policy}: invalid policy document: {exc}") from None
    try:
        reg = genesis.registry(
            officers, admins, admin_quorum=args.admin_quorum, change_delay=args.change_delay, group=args.group
        )
        signed = genesis.sign(reg, policy, keys, int(time.time()))
    except PolicyError as exc:
        raise UsageError(f"governance genesis: {exc}") from None
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for kind, change_json in signed.changes():
        (out / FILES[kind]).write_text(change_json + "\n")
    trusted = genesis.trusted_admins(reg)
    (out / TRUSTED).write_text(json.dumps({"trusted_admins": trusted}, indent=2) + "\n")
    data = {
        "dir": str(out),
        "registry_hash": reg.hash().hex(),
        "policy_hash": policy.hash().hex(),
        "admin_quorum": reg.admin_quorum,
        "signed_by": sorted(keys),
        "trusted_admins": trusted,
    }
    human = (
        f"genesis signed by {', '.join(sorted(keys))} (admin quorum {reg.admin_quorum}) in {out}: "
        f"{FILES['registry']}, {FILES['policy']}\n"
        f"paste into every signer's node.json:\n"
        f'"trusted_admins": {json.dumps(trusted, indent=2)}'
    )
    emit(args, data, human)


def cmd_install(args: argparse.Namespace) -> None:
    d = Path(args.genesis_dir)
    texts: dict[str, str] = {}
    for kind, name in FILES.items():
        try:
            texts[kind] = (d / name).read_text()
        except OSError as exc:
            raise UsageError(
                f"cannot read {d / name}: {exc.strerror} (written by `tssctl governance genesis`)"
            ) from None
    hashes = {kind: _document_hash(kind, text, d / FILES[kind]) for kind, text in texts.items()}
    with client_for(args, "admin-1") as c:
        current = c.governance()
        installed: dict[str, Any] = {}
        for kind in FILES:  # the registry first: the coordinator checks the policy against it
            version, held = (
                (current.registry_version, current.registry_hash)
                if kind == "registry"
                else (current.policy_version, current.policy_hash)
            )
            if version:  # a genesis again would be refused as unchained; an earlier partial install is fine
                if version == 1 and bytes(held) == hashes[kind]:
                    installed[kind] = "present"
                    continue
                raise CliError(f"the coordinator holds another {kind} (v{version}): use `tssctl policy propose`")
            current = c.propose_change(kind, texts[kind].strip())
            installed[kind] = "installed"
    if all(v == "present" for v in installed.values()):
        raise CliError("the coordinator already holds this genesis (later changes: `tssctl policy propose`)")
    data = {
        **installed,
        "registry_version": current.registry_version,
        "registry_hash": bytes(current.registry_hash).hex(),
        "policy_version": current.policy_version,
        "policy_hash": bytes(current.policy_hash).hex(),
    }
    emit(
        args,
        data,
        f"registry v{current.registry_version} ({installed['registry']}), "
        f"policy v{current.policy_version} ({installed['policy']}) in force on the coordinator and its signers",
    )


def _document_hash(kind: str, text: str, path: Path) -> bytes:
    """The version hash of the document in a genesis change file (compared with what is in force)."""
    from signer.policy import OfficerRegistry, PolicyDocument, PolicyError, parse_change

    try:
        if kind == "registry":
            return parse_change(text, OfficerRegistry).new_document.hash()
        return parse_change(text, PolicyDocument).new_document.hash()
    except PolicyError as exc:
        raise UsageError(f"{path}: not a {kind} change file: {exc}") from None


def add_parsers(sub: Any) -> None:
    """Register `governance genesis|install` on tssctl's subparsers."""
    g = sub.add_parser("governance", help="bootstrap: the first officer registry and policy")
    gsub = g.add_subparsers(dest="action", required=True)
    ge = gsub.add_parser("genesis", help="offline: sign the first registry and policy; print trusted_admins")
    ge.add_argument("--officer", action="append", metavar="ID=HEX", help="an officer's Ed25519 public key (repeat)")
    ge.add_argument(
        "--admin", action="append", metavar="ID=HEX", help="an admin's public key, not signing here (repeat)"
    )
    ge.add_argument(
        "--admin-key", action="append", metavar="ID=FILE", help="an admin's key file: that admin signs (repeat)"
    )
    ge.add_argument("--policy", required=True, help="the policy document (JSON, version 1)")
    ge.add_argument("--out", required=True, help="directory for registry.json, policy.json, trusted_admins.json")
    ge.add_argument(
        "--admin-quorum", type=uint64, default=0, help="admin signatures a change needs (default: majority)"
    )
    ge.add_argument(
        "--change-delay", type=uint64, default=86400, help="seconds before a loosening registry change takes effect"
    )
    ge.add_argument("--group", default="officers", help="the group the officers join (as the policy's rules name it)")
    ge.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS,
        help="machine-readable output (also accepted before the command)",
    )
    ge.set_defaults(func=command("coordinator.cli_governance", "cmd_genesis"))
    gi = gsub.add_parser("install", help="present the genesis files to the coordinator (and so every signer)")
    gi.add_argument("genesis_dir", metavar="DIR", help="the directory `governance genesis --out` wrote")
    add_common(gi, "admin-1")
    gi.set_defaults(func=command("coordinator.cli_governance", "cmd_install"))
