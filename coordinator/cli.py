"""tssctl: the operator's and officer's command line. Every command takes --json.

tssctl cluster up [--signers 3] [--threshold 2] [--dir D] [--level 128|112]
tssctl cluster down|status [--dir D]
tssctl key create --name NAME [--threshold T]      tssctl key show KEY_ID
tssctl sign-eth --key KEY_ID --to 0x.. --value WEI [--chain-id 1] [--nonce 0] [--gas 21000]
                [--max-fee WEI] [--priority-fee WEI] [--data 0x..] [--path m/0/1] [--idempotency-key K]
tssctl request show ID
tssctl demo [--dir D] [--level 128|112]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import grpc
from coincurve import PublicKey
from tsscustody.v1 import common_pb2, coordinator_pb2

from signer.chains.ethereum import address_of, keccak256
from signer.tss.curve import Point

from . import cluster
from .client import CoordinatorClient

DEFAULT_DIR = Path(os.environ.get("TSS_CLUSTER_DIR", "run/cluster"))


class CliError(Exception):
    """A user-facing failure: printed, exit code 1."""


def _progress(quiet: bool) -> cluster.Progress:
    start = time.monotonic()

    def say(msg: str) -> None:
        if not quiet:
            print(f"[{time.monotonic() - start:6.1f}s] {msg}", file=sys.stderr, flush=True)

    return say


def _emit(args: argparse.Namespace, data: dict[str, Any], human: str) -> None:
    print(json.dumps(data, indent=None if args.json else 2) if args.json else human)


def _key_json(k: coordinator_pb2.Key) -> dict[str, Any]:
    return {
        "key_id": k.key_id,
        "name": k.name,
        "public_key": k.public_key.hex(),
        "chain_code": k.chain_code.hex(),
        "threshold": k.threshold,
        "parties": list(k.parties),
        "address": k.eth_address,
        "epoch": k.epoch,
    }


def _request_json(r: coordinator_pb2.SigningRequest) -> dict[str, Any]:
    return {
        "request_id": r.request_id,
        "key_id": r.key_id,
        "state": r.state,
        "chain_id": r.eth.chain_id,
        "to": r.eth.to,
        "value": r.eth.value,
        "path": list(r.path),
        "digest": "0x" + r.digest.hex(),
        "r": "0x" + r.r.hex(),
        "s": "0x" + r.s.hex(),
        "v": r.v,
        "raw_tx": "0x" + r.raw_tx.hex(),
        "tx_hash": "0x" + r.tx_hash.hex(),
        "from": r.from_address,
        "blame": [{"party": b.party, "round": b.round, "check": b.check} for b in r.blame],
        "error": r.error,
    }


def parse_path(text: str) -> tuple[int, ...]:
    """'m/0/1' or '0/1' -> (0, 1); hardened steps are refused (they would need the private key)."""
    text = text.strip()
    if text in ("", "m"):
        return ()
    parts = text.split("/")
    if parts[0] == "m":
        parts = parts[1:]
    out = []
    for p in parts:
        if p.endswith(("'", "h")):
            raise CliError("hardened derivation needs the private key, which never exists; use non-hardened steps")
        if not p.isdigit() or int(p) >= 2**31:
            raise CliError(f"bad path step {p!r}")
        out.append(int(p))
    return tuple(out)


def _client(root: Path, who: str = "backend") -> CoordinatorClient:
    info = cluster.ClusterInfo.load(root)
    return CoordinatorClient(info.coordinator, info.client_tls(who))


def _tx_from_args(args: argparse.Namespace) -> common_pb2.EthTransaction:
    data = bytes.fromhex(args.data.removeprefix("0x")) if args.data else b""
    return common_pb2.EthTransaction(
        chain_id=args.chain_id,
        nonce=args.nonce,
        max_priority_fee_per_gas=str(args.priority_fee),
        max_fee_per_gas=str(args.max_fee),
        gas_limit=args.gas,
        to=args.to,
        value=str(args.value),
        data=data,
    )


def verify_eth_signature(req: coordinator_pb2.SigningRequest, public_key: bytes, path_pub: bytes | None = None) -> str:
    """Independently check a signed request: recover the signer from (digest, r, s, v) and the tx hash."""
    sig = req.r.rjust(32, b"\x00") + req.s.rjust(32, b"\x00") + bytes([req.v])
    recovered = PublicKey.from_signature_and_message(sig, req.digest, hasher=None)
    expected = Point.from_bytes(path_pub or public_key)
    if recovered.format() != expected.to_bytes():
        raise CliError("the signature does not recover to the key's public key")
    if keccak256(req.raw_tx) != req.tx_hash:
        raise CliError("tx_hash is not keccak256(raw_tx)")
    return address_of(expected)


def cmd_cluster(args: argparse.Namespace) -> None:
    root = Path(args.dir)
    if args.action == "up":
        info = cluster.up(root, args.signers, args.threshold, args.level, _progress(args.json))
        _emit(args, {"dir": str(root), **info.to_json()}, f"cluster up in {root}: coordinator {info.coordinator}")
    elif args.action == "down":
        stopped = cluster.down(root)
        _emit(args, {"dir": str(root), "stopped": stopped}, f"stopped {', '.join(stopped) or 'nothing'}")
    else:
        info = cluster.ClusterInfo.load(root)
        alive = {name: cluster._alive(pid) for name, pid in info.pids.items()}
        _emit(args, {"dir": str(root), **info.to_json(), "alive": alive}, json.dumps(alive, indent=2))


def cmd_key(args: argparse.Namespace) -> None:
    root = Path(args.dir)
    with _client(root, "operator") as c:
        if args.action == "create":
            info = cluster.ClusterInfo.load(root)
            k = c.create_key(args.name, args.threshold or info.threshold, args.level or "")
        else:
            k = c.get_key(args.key_id)
    d = _key_json(k)
    _emit(args, d, f"key {d['key_id']} ({d['threshold']}-of-{len(d['parties'])}) address {d['address']}")


def cmd_sign_eth(args: argparse.Namespace) -> None:
    root = Path(args.dir)
    with _client(root) as c:
        r = c.sign_eth(args.key, _tx_from_args(args), args.idempotency_key or str(uuid.uuid4()), parse_path(args.path))
    d = _request_json(r)
    _emit(args, d, f"request {d['request_id']}: {d['state']} tx {d['tx_hash']}")


def cmd_request(args: argparse.Namespace) -> None:
    with _client(Path(args.dir)) as c:
        r = c.get_request(args.request_id)
    d = _request_json(r)
    _emit(args, d, json.dumps(d, indent=2))


def cmd_demo(args: argparse.Namespace) -> None:
    say = _progress(args.json and args.quiet)
    root = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="tss-demo-", dir=_ensure_run_dir()))
    t0 = time.monotonic()
    say(f"demo: 2-of-3 cluster at the {args.level}-bit level in {root}")
    info = cluster.up(root, 3, 2, args.level, say)
    try:
        with CoordinatorClient(info.coordinator, info.client_tls("operator")) as op:
            say("creating a key: distributed keygen, then auxiliary info (safe primes, Πmod/Πprm/Πfac)")
            t_key = time.monotonic()
            key = op.create_key("demo-hot-wallet", 2, args.level)
            key_s = time.monotonic() - t_key
        say(f"key {key.key_id} ready in {key_s:.1f}s; address {key.eth_address}")
        tx = common_pb2.EthTransaction(
            chain_id=1,
            nonce=0,
            max_priority_fee_per_gas=str(2 * 10**9),
            max_fee_per_gas=str(40 * 10**9),
            gas_limit=21000,
            to="0x000000000000000000000000000000000000dEaD",
            value=str(10**16),
        )
        with CoordinatorClient(info.coordinator, info.client_tls("backend")) as be:
            say("signing an EIP-1559 transfer of 0.01 ETH (presign, then one-round signing)")
            t_sign = time.monotonic()
            req = be.sign_eth(key.key_id, tx, f"demo-{uuid.uuid4()}")
            sign_s = time.monotonic() - t_sign
        if req.state != "signed":
            raise CliError(f"request ended in state {req.state}: {req.error}")
        address = verify_eth_signature(req, key.public_key)
        say(f"signed and verified in {sign_s:.1f}s: tx {req.tx_hash.hex()}")
        out = {
            "public_key": key.public_key.hex(),
            "address": address,
            "chain_id": req.eth.chain_id,
            "raw_tx": "0x" + req.raw_tx.hex(),
            "tx_hash": "0x" + req.tx_hash.hex(),
            "r": "0x" + req.r.hex(),
            "s": "0x" + req.s.hex(),
            "v": req.v,
            "key_id": key.key_id,
            "request_id": req.request_id,
            "level": args.level,
            "verified": True,
            "timings_s": {"key": round(key_s, 2), "sign": round(sign_s, 3), "total": round(time.monotonic() - t0, 2)},
            "dir": str(root),
        }
    finally:
        cluster.down(root)
        say("cluster stopped")
    print(json.dumps(out, indent=None if args.json else 2))


def _ensure_run_dir() -> Path:
    d = Path("run")
    d.mkdir(exist_ok=True)
    return d


def build_parser() -> argparse.ArgumentParser:
    """The tssctl argument parser."""
    ap = argparse.ArgumentParser(prog="tssctl", description="threshold-ECDSA custody signing: operator CLI")
    ap.add_argument("--json", action="store_true", help="machine-readable output")
    sub = ap.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--dir", default=str(DEFAULT_DIR), help="cluster directory")
        p.add_argument("--json", action="store_true", default=argparse.SUPPRESS)

    c = sub.add_parser("cluster", help="local cluster")
    c.add_argument("action", choices=["up", "down", "status"])
    c.add_argument("--signers", type=int, default=3)
    c.add_argument("--threshold", type=int, default=2)
    c.add_argument("--level", choices=["128", "112"], default="128")
    common(c)
    c.set_defaults(func=cmd_cluster)

    k = sub.add_parser("key", help="keys")
    ksub = k.add_subparsers(dest="action", required=True)
    kc = ksub.add_parser("create")
    kc.add_argument("--name", required=True)
    kc.add_argument("--threshold", type=int, default=0)
    kc.add_argument("--level", choices=["128", "112"], default=None)
    common(kc)
    ks = ksub.add_parser("show")
    ks.add_argument("key_id")
    common(ks)
    k.set_defaults(func=cmd_key)

    s = sub.add_parser("sign-eth", help="sign an EIP-1559 transaction")
    s.add_argument("--key", required=True)
    s.add_argument("--to", required=True)
    s.add_argument("--value", type=int, required=True, help="wei")
    s.add_argument("--chain-id", type=int, default=1)
    s.add_argument("--nonce", type=int, default=0)
    s.add_argument("--gas", type=int, default=21000)
    s.add_argument("--max-fee", type=int, default=40 * 10**9)
    s.add_argument("--priority-fee", type=int, default=2 * 10**9)
    s.add_argument("--data", default="")
    s.add_argument("--path", default="m")
    s.add_argument("--idempotency-key", default="")
    common(s)
    s.set_defaults(func=cmd_sign_eth)

    r = sub.add_parser("request", help="signing requests")
    r.add_argument("action", choices=["show"])
    r.add_argument("request_id")
    common(r)
    r.set_defaults(func=cmd_request)

    d = sub.add_parser("demo", help="bring up a 2-of-3 cluster, keygen, sign and verify a withdrawal, shut down")
    d.add_argument("--dir", default="")
    d.add_argument("--level", choices=["128", "112"], default="128")
    d.add_argument("--quiet", action="store_true", help="with --json, no progress on stderr")
    d.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    d.set_defaults(func=cmd_demo)
    return ap


def main(argv: list[str] | None = None) -> int:
    """Entry point of the tssctl console script."""
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (CliError, cluster.ClusterError) as exc:
        print(f"tssctl: {exc}", file=sys.stderr)
        return 1
    except grpc.RpcError as exc:
        print(f"tssctl: {exc.code().name}: {exc.details()}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
