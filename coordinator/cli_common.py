"""What every tssctl command shares: errors, output, clients per identity, JSON views of replies."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tsscustody.v1 import common_pb2, coordinator_pb2
from tsscustody_client.names import kind_name, state_name

from . import cluster
from .cli_errors import CliError, UsageError, uint64, uint256
from .cli_format import utc_text
from .cli_remote import add_remote_options, resolve
from .client import CoordinatorClient

if TYPE_CHECKING:
    from signer.node.tls import TlsFiles
    from signer.policy import Intent

# Every command loads this module: the policy library and the curve are imported by the helpers that
# need them, so `tssctl key show` does not pay for them (tests/unit/coordinator/test_cli_imports.py).

DEFAULT_DIR = Path(os.environ.get("TSS_CLUSTER_DIR", "run/cluster"))
FINAL_STATES = frozenset({"signed", "rejected", "blocked", "expired", "failed"})
NOT_SIGNED = FINAL_STATES - {"signed"}
"""Final states a command exits with `EXIT_NOT_SIGNED` on (a request still pending approval is not one)."""


Command = Callable[[argparse.Namespace], Any]


def command(module: str, name: str) -> Command:
    """The command function `module.name`, imported when it runs (not when the parser is built)."""

    def run(args: argparse.Namespace) -> Any:
        func: Command = getattr(importlib.import_module(module), name)
        return func(args)

    return run


def progress(quiet: bool) -> cluster.Progress:
    """Timestamped progress lines on stderr (none when `quiet`)."""
    start = time.monotonic()

    def say(msg: str) -> None:
        if not quiet:
            print(f"[{time.monotonic() - start:6.1f}s] {msg}", file=sys.stderr, flush=True)

    return say


@contextlib.contextmanager
def ticking(say: cluster.Progress, what: str, every: float = 10.0) -> Iterator[None]:
    """Say `what` now and "still ..." every `every` seconds until the block ends (a long RPC)."""
    say(what)
    start, done = time.monotonic(), threading.Event()

    def tick() -> None:
        while not done.wait(every):
            say(f"  still {what.split(' (')[0]}: {time.monotonic() - start:.0f}s")

    ticker = threading.Thread(target=tick, name="progress", daemon=True)
    ticker.start()
    try:
        yield
    finally:
        done.set()
        ticker.join()


def emit(args: argparse.Namespace, data: dict[str, Any], human: str) -> None:
    """One JSON object with --json, else the human text."""
    print(json.dumps(data) if args.json else human)


def connection(args: argparse.Namespace, default: str) -> tuple[str, TlsFiles]:
    """The coordinator's address and the certificate to present: a remote coordinator's
    (cli_remote.py: flags, environment, profile), else `--as` (or `default`) of the cluster directory."""
    remote = resolve(args)
    if remote is not None:
        return remote.address, remote.tls
    root = Path(args.dir)
    try:
        info = cluster.ClusterInfo.load(root)
    except cluster.ClusterError as exc:
        raise CliError(f"{exc}; for a remote coordinator set TSS_ADDR (or --addr, or --profile)") from None
    who = getattr(args, "identity", None) or default
    tls = info.client_tls(who)
    if not tls.cert.exists():
        raise CliError(f"no certificate for {who!r} in {root / 'certs'}")
    return info.coordinator, tls


def client_for(args: argparse.Namespace, default: str) -> CoordinatorClient:
    """A client of the coordinator `connection` names."""
    return CoordinatorClient(*connection(args, default))


def key_json(k: coordinator_pb2.Key) -> dict[str, Any]:
    """A key as tssctl prints it."""
    return {
        "key_id": k.key_id,
        "name": k.name,
        "public_key": k.public_key.hex(),
        "chain_code": k.chain_code.hex(),
        "threshold": k.threshold,
        "parties": list(k.parties),
        "address": k.eth_address,
        "epoch": k.epoch,
        "committing_epoch": k.committing_epoch,
        "retired": list(k.retired),
        "created_at": k.create_time.seconds,
    }


def path_text(path: tuple[int, ...] | list[int]) -> str:
    """(0, 7) -> 'm/0/7'."""
    return "m" + "".join(f"/{i}" for i in path)


def intent_json(intent: Intent) -> dict[str, Any]:
    """The decoded intent (amounts in base units as decimal strings)."""
    from signer.policy.intent import describe_calldata

    return {
        "chain": intent.chain,
        "asset": intent.asset,
        "amount": str(intent.amount),
        "destination": intent.destination,
        "call": intent.call,
        "contract": intent.contract,
        "source": intent.source,
        "decimals": intent.decimals,
        "fee_asset": intent.fee_asset,
        "fee_cap": str(intent.fee_cap),
        "nonce": intent.nonce,
        "gas_limit": intent.gas_limit,
        "max_fee_per_gas": str(intent.max_fee_per_gas),
        "max_priority_fee_per_gas": str(intent.max_priority_fee_per_gas),
        "tx_type": intent.tx_type,
        "calldata": describe_calldata(intent.data),
        "tx_digest": intent.tx_digest.hex(),
        "key_id": intent.key_id,
        "path": path_text(intent.path),
        "request_id": intent.request_id,
        "policy_hash": intent.policy_hash.hex(),
        "expires_at": intent.expires_at,
        "initiator": intent.initiator,
        "digest": intent.digest().hex(),
    }


def request_json(r: coordinator_pb2.SigningRequest) -> dict[str, Any]:
    """A signing request: its transaction, its policy outcome, its intent, its result."""
    from signer.policy import Intent, PolicyError

    intent: dict[str, Any] | None = None
    if r.intent:
        try:
            intent = intent_json(Intent.from_bytes(r.intent))
        except PolicyError:
            intent = None
    return {
        "request_id": r.request_id,
        "key_id": r.key_id,
        "kind": kind_name(r.request_kind),
        "state": state_name(r.request_state),
        "policy_reason": r.policy_reason,
        "hold_note": r.hold_note,
        "chain_id": r.eth.chain_id,
        "tx_type": 0 if r.eth.legacy else 2,
        "nonce": r.eth.nonce,
        "nonce_allocated": r.nonce_allocated,
        "replaces_request_id": r.replaces_request_id,
        "to": r.eth.to,
        "value": r.eth.value,
        "path": list(r.path),
        "initiator": r.initiator,
        "expires_at": r.expire_time.seconds,
        "intent_digest": bytes(r.intent_digest).hex(),
        "intent": intent,
        "approved_by": list(r.approved_by),
        "time_lock_until": r.time_lock_end_time.seconds,
        "time_lock_until_utc": utc_text(r.time_lock_end_time.seconds) if r.time_lock_end_time.seconds else "",
        "created_at": r.create_time.seconds,
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


def request_line(r: coordinator_pb2.SigningRequest) -> str:
    """One human line about a request's state."""
    text = f"request {r.request_id}: {state_name(r.request_state)}"
    if r.policy_reason and r.policy_reason != state_name(r.request_state):
        text += f" ({r.policy_reason})"
    if r.approved_by:
        text += f"; approved by {', '.join(r.approved_by)}"
    if state_name(r.request_state) == "time_locked" and r.time_lock_end_time.seconds:
        text += f"; time lock until {utc_text(r.time_lock_end_time.seconds)}"
    if r.message_signature:  # a message: no transaction, the signature is the result
        text += f"; signature 0x{bytes(r.message_signature).hex()}"
    elif r.txid:  # a Bitcoin spend: tx_hash holds its txid's bytes
        text += f"; txid {r.txid}"
    elif r.tx_hash:
        text += f"; tx 0x{r.tx_hash.hex()}"
    if r.error and not (r.policy_reason and r.policy_reason in r.error):
        text += f"; {r.error}"
    if r.hold_note:
        text += f"; {r.hold_note}"
    return text


def wait_final(c: CoordinatorClient, r: coordinator_pb2.SigningRequest) -> coordinator_pb2.SigningRequest:
    """The request once it is final (following the Watch stream), or as it is if already final."""
    if state_name(r.request_state) in FINAL_STATES:
        return r
    for _ in c.watch(r.request_id):
        pass
    return c.get_request(r.request_id)


def tx_from_args(args: argparse.Namespace, value: int | None = None) -> common_pb2.EthTransaction:
    """The transaction described by the --to/--value/--nonce/... options: EIP-1559 (--max-fee,
    --priority-fee), or with --legacy a type-0 EIP-155 one paying --gas-price."""
    data = bytes.fromhex(args.data.removeprefix("0x")) if getattr(args, "data", "") else b""
    max_fee, tip, gas_price = getattr(args, "max_fee", None), getattr(args, "priority_fee", None), None
    if getattr(args, "legacy", False):
        # One fee field per type, so a fee the operator typed is never silently dropped.
        if max_fee is not None or tip is not None:
            raise UsageError("--legacy pays --gas-price; --max-fee and --priority-fee are EIP-1559 fields")
        gas_price = getattr(args, "gas_price", None)
        if gas_price is None:
            raise UsageError("--legacy needs --gas-price (wei per gas); there is no default")
        return common_pb2.EthTransaction(
            chain_id=args.chain_id,
            nonce=args.nonce,
            gas_limit=args.gas,
            to=args.to,
            value=str(args.value if value is None else value),
            data=data,
            legacy=True,
            gas_price=str(gas_price),
        )
    if getattr(args, "gas_price", None) is not None:
        raise UsageError("--gas-price is for --legacy transactions; EIP-1559 uses --max-fee and --priority-fee")
    return common_pb2.EthTransaction(
        chain_id=args.chain_id,
        nonce=args.nonce,
        max_priority_fee_per_gas=str(DEFAULT_PRIORITY_FEE if tip is None else tip),
        max_fee_per_gas=str(DEFAULT_MAX_FEE if max_fee is None else max_fee),
        gas_limit=args.gas,
        to=args.to,
        value=str(args.value if value is None else value),
        data=data,
    )


def add_common(p: argparse.ArgumentParser, identity: str | None = None) -> None:
    """--dir, --json (after the subcommand too) and, when `identity` is given (a command that talks
    to the coordinator), --as NAME and the remote coordinator's options."""
    p.add_argument("--dir", default=str(DEFAULT_DIR), help="cluster directory (env TSS_CLUSTER_DIR)")
    p.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS,
        help="machine-readable output (also accepted before the command)",
    )
    if identity is not None:
        p.add_argument(
            "--as",
            dest="identity",
            default=None,
            metavar="NAME",
            help=f"certificate to present (D/certs/NAME.pem; default {identity})",
        )
        add_remote_options(p)


DEFAULT_MAX_FEE, DEFAULT_PRIORITY_FEE = 40 * 10**9, 2 * 10**9
"""EIP-1559 fees per gas in wei when none is given (the policy's fee cap still bounds them)."""


def add_tx_options(p: argparse.ArgumentParser) -> None:
    """The transaction fields other than --to and --value."""
    # No defaults for the network and nonce: a silent mainnet / nonce-0 default signed the wrong thing.
    p.add_argument("--network", default=None, help="CAIP-2 id (eip155:1) or display name of a registered network")
    p.add_argument("--chain-id", type=uint64, default=None, help="the EIP-155 chain id (instead of --network)")
    p.add_argument(
        "--nonce", type=uint64, default=None, help="the nonce (required unless --allocate-nonce or --replaces)"
    )
    p.add_argument(
        "--allocate-nonce",
        action="store_true",
        help="the coordinator allocates the next nonce of the sending address (instead of --nonce)",
    )
    p.add_argument(
        "--replaces",
        default="",
        metavar="REQUEST_ID",
        help="speed up or cancel that request: kind replacement, its nonce (needs a replacement rule)",
    )
    p.add_argument("--gas", type=uint64, default=None, help="gas limit (default 21000, 100000 for a token transfer)")
    p.add_argument("--max-fee", type=uint256, default=None, help="max fee per gas, wei (default 40 gwei)")
    p.add_argument("--priority-fee", type=uint256, default=None, help="max priority fee per gas, wei (default 2 gwei)")
    p.add_argument("--legacy", action="store_true", help="a legacy EIP-155 (type 0) transaction instead of EIP-1559")
    p.add_argument("--gas-price", type=uint256, default=None, help="gas price, wei (required with --legacy)")
    p.add_argument("--path", default="m", help="non-hardened derivation path, e.g. m/0/7")
    p.add_argument("--idempotency-key", default="", help="default: a fresh random one")


def verify_eth_signature(req: coordinator_pb2.SigningRequest, public_key: bytes, path_pub: bytes | None = None) -> str:
    """Independently check a signed request: recover the signer from (digest, r, s, v) and the tx hash."""
    from coincurve import PublicKey

    from signer.chains.ethereum import address_of, keccak256
    from signer.tss.curve import Point

    sig = req.r.rjust(32, b"\x00") + req.s.rjust(32, b"\x00") + bytes([req.v])
    recovered = PublicKey.from_signature_and_message(sig, req.digest, hasher=None)
    expected = Point.from_bytes(path_pub or public_key)
    if recovered.format() != expected.to_bytes():
        raise CliError("the signature does not recover to the key's public key")
    if keccak256(req.raw_tx) != req.tx_hash:
        raise CliError("tx_hash is not keccak256(raw_tx)")
    return address_of(expected)
