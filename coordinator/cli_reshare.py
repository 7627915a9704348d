"""tssctl commands that change a key's shares or who holds them: refresh and reshare a key (each
under an admin quorum's signed key order), add / retire / replace a signer.

tssctl key refresh KEY_ID ORDER                                  (new shares, same key and committee)
tssctl key reshare KEY_ID --parties 1,2,4 --threshold 2 [--dealers 1,2] ORDER   (same key, new committee)
    ORDER: --admin A [--key FA] --admin B [--key FB] ... signs a new order for the key's current
    epoch (keys default to D/officers/<id>.key); --order FILE adds to / submits a saved one;
    --out FILE writes it for the next admin instead of submitting. The coordinator and every
    signer check the admins reach the policy's quorum (key_operations, default the registry's
    admin_quorum); the call is made with the first admin's certificate (or --as NAME).
tssctl cluster add-signer [--dir D]            a new signer under a fresh index (restarts the others)
tssctl cluster retire-signer signer-N          revoke a signer's identity in every config
tssctl cluster replace-signer signer-N         add a signer, retire N, reshare every key N held to it
tssctl cluster prepare-standby                 lay out the next signer ahead with its safe primes
                                               (add/replace-signer then use it: a fast replacement)

`replace-signer` is the disaster-recovery path for a lost signer (see docs/operations.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tsscustody.v1 import coordinator_pb2

from . import cluster
from .cli_common import add_common, client_for, emit, key_json, progress
from .cli_errors import CliError, positive

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from signer.policy import KeyOrder

    from .client import CoordinatorClient

# tssctl's parser registers this module's parsers for every command, so what only these commands
# need (the officer's tool, key orders, reshare operations) is imported where it is used.

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


def _admins(args: argparse.Namespace) -> list[tuple[str, Ed25519PrivateKey]]:
    """(id, key) of each --admin, keys from --key (same order) or D/officers/<id>.key."""
    from .officer import load_key

    ids, keys = args.admin or [], args.key or []
    if keys and len(keys) != len(ids):
        raise CliError("give one --key per --admin, in the same order (or none for the cluster's demo keys)")
    if not ids and not args.order:
        raise CliError("a key order needs admin signatures: --admin A [--key FILE] (repeat), or --order FILE")
    if keys:
        return [(who, load_key(Path(keys[i]))) for i, who in enumerate(ids)]
    info = cluster.ClusterInfo.load(Path(args.dir))
    return [(who, load_key(info.officer_key(who))) for who in ids]


def _signed_order(
    args: argparse.Namespace,
    c: CoordinatorClient,
    operation: str,
    signers: list[tuple[str, Ed25519PrivateKey]],
    **fields: Any,
) -> KeyOrder | None:
    """The order to submit (signed by every --admin), or None once it was written to --out."""
    from .key_order_signing import load_order, new_order, save_order, sign_order

    order = load_order(Path(args.order)) if args.order else new_order(c, operation, args.key_id, **fields)
    if order.operation != operation or (args.key_id and order.key_id != args.key_id):
        raise CliError(f"{args.order} is a {order.operation} order for key {order.key_id}")
    order = sign_order(order, signers)
    if not args.out:
        return order
    save_order(Path(args.out), order)
    signed_by = ", ".join(e.signer_id for e in order.signatures)
    human = f"{operation} order signed by {signed_by} written to {args.out}"
    emit(args, {"saved": args.out, **order.describe()}, human)
    return None


def _submitter(args: argparse.Namespace) -> str:
    return args.identity or (args.admin[0] if args.admin else "admin-1")


def _emit_key(args: argparse.Namespace, k: coordinator_pb2.Key, human: str) -> None:
    if k.committing_epoch:
        human += f"\ncommitting epoch {k.committing_epoch} on the signers (signing waits; the coordinator retries)"
    emit(args, key_json(k), human)


def cmd_key_refresh(args: argparse.Namespace) -> None:
    """tssctl key refresh."""
    signers = _admins(args)
    with client_for(args, _submitter(args)) as c:
        order = _signed_order(args, c, "refresh", signers)
        if order is None:
            return
        k = c.refresh_key(order.key_id, order.to_bytes())
    signed_by = ", ".join(e.signer_id for e in order.signatures)
    _emit_key(args, k, f"key {k.key_id} refreshed to epoch {k.epoch} (order signed by {signed_by})")


def cmd_key_reshare(args: argparse.Namespace) -> None:
    """tssctl key reshare."""
    parties, dealers = parse_parties(args.parties), parse_parties(args.dealers) if args.dealers else ()
    signers = _admins(args)
    with client_for(args, _submitter(args)) as c:
        order = _signed_order(args, c, "reshare", signers, parties=parties, threshold=args.threshold, dealers=dealers)
        if order is None:
            return
        k = c.reshare_key(order.key_id, parties, args.threshold, dealers, key_order=order.to_bytes())
    human = f"key {k.key_id} now {k.threshold}-of-{list(k.parties)} epoch {k.epoch}, address {k.eth_address}"
    _emit_key(args, k, human)


def cmd_cluster(args: argparse.Namespace) -> None:
    """tssctl cluster add-signer | retire-signer | replace-signer."""
    from . import reshare_ops

    say = progress(args.json)
    if args.action == "prepare-standby":
        from . import signer_layout

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


def _order_opts(p: argparse.ArgumentParser) -> None:
    p.add_argument("key_id", nargs="?", default="", help="the key (or --key-id; default: the --order's)")
    p.add_argument("--key-id", dest="key_id_opt", default="", help="the key")
    p.add_argument("--admin", action="append", help="a signing admin (repeat)")
    p.add_argument("--key", action="append", help="that admin's Ed25519 key file (repeat, same order)")
    p.add_argument("--order", default="", help="a saved, partly signed order to add signatures to and submit")
    p.add_argument("--out", default="", help="write the signed order here instead of submitting it")
    add_common(p, "the first --admin")


def _key_id(func: Any) -> Any:
    def run(args: argparse.Namespace) -> None:
        args.key_id = args.key_id or args.key_id_opt
        if not args.key_id and not args.order:
            raise CliError("name the key: KEY_ID or --key-id")
        func(args)

    return run


def add_key_parsers(ksub: Any) -> None:
    """`key refresh` and `key reshare` under the `key` command's subparsers."""
    kf = ksub.add_parser("refresh", help="new shares and aux info for the same key (an admin quorum's order)")
    _order_opts(kf)
    kf.set_defaults(func=_key_id(cmd_key_refresh))
    kr = ksub.add_parser("reshare", help="move a key to a new committee / threshold (same public key and addresses)")
    kr.add_argument("--parties", required=True, help="the new committee, e.g. 1,2,4 (never an index the key left)")
    kr.add_argument("--threshold", type=positive, required=True, help="the new threshold t'")
    kr.add_argument("--dealers", default="", help="live old parties that deal (default: every reachable one)")
    _order_opts(kr)
    kr.set_defaults(func=_key_id(cmd_key_reshare))
