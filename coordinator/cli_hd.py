"""`tssctl key derive` and `tssctl key addresses`: child keys and deposit addresses of a key, with
no signer involved.

The coordinator's GetKey gives the key's group public key and joint chain code (its BIP32 root);
everything else is computed here, by `signer.chains.hd_keys` over `signer.tss.hd` (non-hardened
CKDpub only: hardened steps need a private key, which never exists). Addresses: Ethereum (EIP-55,
the same on every EVM chain) and Bitcoin P2WPKH on mainnet, testnet, signet and regtest.
"""

from __future__ import annotations

import argparse
from typing import Any

from .cli_common import client_for, command, emit
from .cli_errors import CliError, UsageError

MAX_COUNT = 10_000
"""Addresses per `key addresses` call."""


def _root(args: argparse.Namespace) -> Any:
    from signer.chains.hd_keys import ExtendedKey
    from signer.tss.curve import Point

    with client_for(args, "operator") as c:
        k = c.get_key(args.key_id)
    return ExtendedKey(Point.from_bytes(k.public_key), bytes(k.chain_code))


def _path(text: str) -> tuple[int, ...]:
    from signer.tss import hd
    from signer.tss.errors import InvalidInput

    try:
        return hd.parse_path(text)
    except InvalidInput as exc:
        raise UsageError(f"--path {text!r}: {exc}") from None


def _networks(name: str | None) -> tuple[str, ...] | None:
    """The address names `--network` selects (None: all of them)."""
    from signer.chains.bitcoin import NETWORKS

    if name is None:
        return None
    if name.startswith("eip155:") and name[7:].isdigit():
        return ("ethereum",)  # one address for every EVM chain
    for n, net in NETWORKS.items():
        if name in (f"bitcoin:{n}", net.caip2) or (name == "bitcoin" and n == "mainnet"):
            return (f"bitcoin:{n}",)
    known = ", ".join(["eip155:<chain id>", "bitcoin", *(f"bitcoin:{n}" for n in NETWORKS)])
    raise UsageError(f"--network {name}: expected one of {known} (or a bip122 CAIP-2 id)")


def _described(key: Any, path: tuple[int, ...], networks: tuple[str, ...] | None) -> dict[str, Any]:
    from signer.chains.hd_keys import addresses
    from signer.tss import hd

    found = addresses(key.public_key)
    return {
        "path": hd.format_path(path),
        "public_key": key.public_key.to_bytes().hex(),
        "addresses": {n: a for n, a in found.items() if networks is None or n in networks},
    }


def cmd_key_derive(args: argparse.Namespace) -> None:
    from signer.chains.hd_keys import TPUB
    from signer.tss.errors import InvalidInput

    path, networks = _path(args.path), _networks(args.network)
    root = _root(args)
    try:
        child = root.derive(path)
    except InvalidInput as exc:  # BIP32's "invalid index" (probability below 2^-127) names the index
        raise CliError(str(exc)) from None
    d = {
        "key_id": args.key_id,
        **_described(child, path, networks),
        "chain_code": child.chain_code.hex(),
        "depth": child.depth,
        "parent_fingerprint": child.parent_fingerprint.hex(),
        "child_number": child.child_number,
        "xpub": child.serialise(),
        "tpub": child.serialise(TPUB),
    }
    lines = [f"key {args.key_id} {d['path']}", f"  public key  {d['public_key']}", f"  xpub        {d['xpub']}"]
    lines += [f"  {name:<16}{a}" for name, a in d["addresses"].items()]
    emit(args, d, "\n".join(lines))


def cmd_key_addresses(args: argparse.Namespace) -> None:
    from signer.tss.errors import InvalidInput

    base, networks = _path(args.path), _networks(args.network)
    if not 1 <= args.count <= MAX_COUNT:
        raise UsageError(f"--count must be 1..{MAX_COUNT}")
    if args.start + args.count > 1 << 31:
        raise UsageError("--start + --count must stay below 2^31 (non-hardened indices)")
    try:
        parent = _root(args).derive(base)
        rows = [
            {"index": i, **_described(parent.child(i), (*base, i), networks)}
            for i in range(args.start, args.start + args.count)
        ]
    except InvalidInput as exc:
        raise CliError(str(exc)) from None
    d = {"key_id": args.key_id, "base_path": "/".join(["m", *map(str, base)]), "addresses": rows}
    emit(args, d, "\n".join(f"{r['path']}  " + "  ".join(r["addresses"].values()) for r in rows))


def add_parsers(ksub: Any, add_common: Any, uint64: Any, positive: Any) -> None:
    """`key derive` and `key addresses` under the `key` command's subparsers."""
    network_help = "only this network's address: eip155:<chain id>, bitcoin, bitcoin:testnet|signet|regtest"
    kd = ksub.add_parser("derive", help="a child key of KEY: public key, chain code, xpub and addresses")
    kd.add_argument("key_id", help="the key to derive from")
    kd.add_argument("--path", required=True, help="non-hardened path below the key's root, e.g. m/0/5")
    kd.add_argument("--network", default=None, help=network_help + " (default: all)")
    add_common(kd, "operator")
    kd.set_defaults(func=command("coordinator.cli_hd", "cmd_key_derive"))
    ka = ksub.add_parser("addresses", help="deposit addresses in bulk: children START.. of --path")
    ka.add_argument("key_id", help="the key to derive from")
    ka.add_argument("--count", type=positive, required=True, help=f"how many addresses (at most {MAX_COUNT})")
    ka.add_argument("--start", type=uint64, default=0, help="the first child index")
    ka.add_argument("--path", default="m", help="the parent path of the addresses, e.g. m/0 (default: the root)")
    ka.add_argument("--network", default=None, help=network_help + " (default: all)")
    add_common(ka, "operator")
    ka.set_defaults(func=command("coordinator.cli_hd", "cmd_key_addresses"))
