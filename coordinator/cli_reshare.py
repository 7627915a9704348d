"""tssctl commands that change who holds a key: reshare a key, add / retire / replace a signer.

tssctl key reshare KEY_ID --parties 1,2,4 --threshold 2 [--dealers 1,2]   (admin: same key, new committee)
tssctl cluster add-signer [--dir D]            a new signer under a fresh index (restarts the others)
tssctl cluster retire-signer signer-N          revoke a signer's identity in every config
tssctl cluster replace-signer signer-N         add a signer, retire N, reshare every key N held to it
tssctl cluster prepare-standby                 lay out the next signer ahead with its safe primes
                                               (add/replace-signer then use it: a fast replacement)

`replace-signer` is the disaster-recovery path for a lost signer (see docs/operations.md).
"""

from __future__ import annotations

import argparse
from typing import Any

from . import reshare_ops, signer_layout
from .cli_common import CliError, add_common, client_for, emit, key_json, progress

CLUSTER_ACTIONS = ("add-signer", "retire-signer", "replace-signer", "prepare-standby")


def parse_parties(text: str) -> tuple[int, ...]:
    """'1,2,4' -> (1, 2, 4)."""
    try:
        parties = tuple(int(p) for p in text.split(",") if p.strip())
    except ValueError:
        raise CliError(f"parties are comma-separated indices, e.g. 1,2,4 (got {text!r})") from None
    if not parties:
        raise CliError("name at least one party")
    return parties


def _party(name: str | None) -> int:
    text = (name or "").removeprefix("signer-")
    if not text.isdigit():
        raise CliError("name the signer: signer-N (or N)")
    return int(text)


def cmd_key_reshare(args: argparse.Namespace) -> None:
    """tssctl key reshare."""
    parties, dealers = parse_parties(args.parties), parse_parties(args.dealers) if args.dealers else ()
    with client_for(args, "admin-1") as c:
        k = c.reshare_key(args.key_id, parties, args.threshold, dealers)
    d = key_json(k)
    human = f"key {k.key_id} now {k.threshold}-of-{list(k.parties)} epoch {k.epoch}, address {k.eth_address}"
    if k.committing_epoch:
        human += f"\ncommitting epoch {k.committing_epoch} on the signers (signing waits; the coordinator retries)"
    emit(args, d, human)


def cmd_cluster(args: argparse.Namespace) -> None:
    """tssctl cluster add-signer | retire-signer | replace-signer."""
    say = progress(args.json)
    if args.action == "prepare-standby":
        party = signer_layout.prepare_standby(args.dir, progress=say)
        emit(args, {"dir": args.dir, "standby": party}, f"standby signer {party} prepared (not started)")
    elif args.action == "add-signer":
        party = reshare_ops.add_signer(args.dir, progress=say)
        emit(args, {"dir": args.dir, "added": party}, f"signer {party} added and started")
    elif args.action == "retire-signer":
        party = _party(args.name)
        reshare_ops.retire_signer(args.dir, party, progress=say)
        emit(args, {"dir": args.dir, "retired": party}, f"signer {party} retired")
    else:
        lost = _party(args.name)
        new = reshare_ops.replace_signer(args.dir, lost, progress=say)
        emit(args, {"dir": args.dir, "retired": lost, "added": new}, f"signer {lost} replaced by signer {new}")


def add_key_parsers(ksub: Any) -> None:
    """`key reshare` under the `key` command's subparsers."""
    kr = ksub.add_parser("reshare", help="move a key to a new committee / threshold (same public key and addresses)")
    kr.add_argument("key_id")
    kr.add_argument("--parties", required=True, help="the new committee, e.g. 1,2,4 (never an index the key left)")
    kr.add_argument("--threshold", type=int, required=True, help="the new threshold t'")
    kr.add_argument("--dealers", default="", help="live old parties that deal (default: every reachable one)")
    add_common(kr, "admin-1")
    kr.set_defaults(func=cmd_key_reshare)
