"""`tssctl balance report` / `report-utxos`: a backend reports a hot wallet's balance (EVM) or its
unspent outputs (Bitcoin); the coordinator answers with what it did (coordinator/sweeps.py,
btc_sweeps.py: a cold sweep proposed when the wallet is over its cap, or why not). Registered by
`add_parsers` (called from cli_parser.py)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from tsscustody.v1 import coordinator_pb2

from .cli_common import add_common, client_for, command, emit, request_json
from .cli_errors import UsageError, positive, uint64, uint256
from .cli_evm import decimal_amount, parse_units

NATIVE_DECIMALS = 18  # every EVM network's native coin; sweeps are of native coins only (sweeps.py)


def cmd_report(args: argparse.Namespace) -> None:
    if (args.amount is None) == (args.wei is None):
        raise UsageError("balance report: give the balance as --amount (decimal) or --wei (base units)")
    wei = args.wei if args.amount is None else parse_units(args.amount, NATIVE_DECIMALS, args.asset)
    at = time.time() if args.at is None else float(args.at)
    with client_for(args, "backend") as c:
        out = c.report_balance(args.chain_id, args.address, args.asset, wei, args.next_nonce, at)
    _show(args, out)


UTXO_FIELDS = {"txid", "vout", "amount_sat", "prev_tx"}
MAX_UTXO_FILE = 2 * 1024 * 1024  # hex doubles the coordinator's 512 KiB of previous transactions


def read_utxos(path: str) -> list[coordinator_pb2.Utxo]:
    """The UTXO file: a JSON list of {"txid": hex, "vout": n, "amount_sat": n, "prev_tx": hex};
    a one-line `UsageError` naming the first bad entry otherwise."""
    try:
        text = Path(path).read_bytes()[: MAX_UTXO_FILE + 1]
    except OSError as exc:
        raise UsageError(f"--utxos {path}: {exc.strerror or exc}") from None
    if len(text) > MAX_UTXO_FILE:
        raise UsageError(f"--utxos {path}: larger than {MAX_UTXO_FILE} bytes")
    try:
        entries = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise UsageError(f"--utxos {path}: not JSON ({exc})") from None
    if not isinstance(entries, list):
        raise UsageError(f"--utxos {path}: must be a JSON list of unspent outputs")
    out = []
    for i, e in enumerate(entries):
        where = f"--utxos {path}: entry {i}"
        if not isinstance(e, dict) or set(e) != UTXO_FIELDS:
            raise UsageError(f"{where} must have exactly the keys {sorted(UTXO_FIELDS)}")
        for field, top in (("vout", 2**32 - 1), ("amount_sat", 21 * 10**14)):
            if type(e[field]) is not int or not 0 <= e[field] <= top:
                raise UsageError(f"{where}: {field} must be a whole number in 0..{top}")
        try:
            txid, prev = bytes.fromhex(e["txid"]), bytes.fromhex(e["prev_tx"])
        except (TypeError, ValueError):
            raise UsageError(f"{where}: txid and prev_tx must be hex") from None
        if len(txid) != 32 or not prev:
            raise UsageError(f"{where}: txid is 32 bytes and prev_tx the whole previous transaction")
        out.append(coordinator_pb2.Utxo(txid=txid, vout=e["vout"], amount_sat=e["amount_sat"], prev_tx=prev))
    return out


def cmd_report_utxos(args: argparse.Namespace) -> None:
    utxos = read_utxos(args.utxos)
    at = time.time() if args.at is None else float(args.at)
    with client_for(args, "backend") as c:
        out = c.report_utxos(args.network, args.address, utxos, at)
    _show(args, out)


def _show(args: argparse.Namespace, out: coordinator_pb2.ReportBalanceResponse) -> None:
    data: dict[str, Any] = {"action": out.action, "detail": out.detail}
    human = f"{out.action}: {out.detail}"
    if out.HasField("sweep"):
        data["sweep"] = request_json(out.sweep)
        human += f"\nsweep {out.sweep.request_id}: {out.sweep.state}"
        if out.sweep.state == "pending_approval":
            human += f"\nofficers: tssctl approve {out.sweep.request_id} --officer ID --key FILE"
    emit(args, data, human)


def add_parsers(sub: Any) -> None:
    """Register `balance report` on tssctl's subparsers."""
    b = sub.add_parser("balance", help="hot-wallet balances (the coordinator sweeps full wallets to cold storage)")
    bsub = b.add_subparsers(dest="action", required=True)
    r = bsub.add_parser("report", help="report a hot wallet's balance; prints the sweep it led to, if any")
    r.add_argument("--chain-id", type=positive, required=True, help="EVM chain id of the wallet's network")
    r.add_argument("--address", required=True, help="the hot wallet's address (0x..)")
    r.add_argument("--asset", default="ETH", help="the network's native coin (default: %(default)s)")
    r.add_argument("--amount", type=decimal_amount, default=None, help="the balance in decimal units, e.g. 80.5")
    r.add_argument("--wei", type=uint256, default=None, help="the balance in base units (instead of --amount)")
    r.add_argument("--next-nonce", type=uint64, required=True, help="the account's next nonce (a sweep uses it)")
    r.add_argument("--at", type=uint64, default=None, help="unix time the balance was read (default: now)")
    add_common(r, "backend")
    r.set_defaults(func=command("coordinator.cli_balance", "cmd_report"))
    u = bsub.add_parser("report-utxos", help="report a Bitcoin hot wallet's unspent outputs; prints the sweep, if any")
    u.add_argument(
        "--network", required=True, help="the wallet's network: bip122:... or mainnet|testnet|signet|regtest"
    )
    u.add_argument("--address", required=True, help="the hot wallet's P2WPKH address (bc1.., tb1.., bcrt1..)")
    u.add_argument(
        "--utxos",
        required=True,
        metavar="FILE",
        help='JSON list of {"txid": hex, "vout": n, "amount_sat": n, "prev_tx": hex}: every unspent output',
    )
    u.add_argument("--at", type=uint64, default=None, help="unix time the outputs were read (default: now)")
    add_common(u, "backend")
    u.set_defaults(func=command("coordinator.cli_balance", "cmd_report_utxos"))
