"""`tssctl balance report`: a backend reports a hot wallet's balance; the coordinator answers with
what it did (coordinator/sweeps.py: a cold sweep proposed when the wallet is over its cap, or why
not). Registered by `add_parsers` (called from cli_parser.py)."""

from __future__ import annotations

import argparse
import time
from typing import Any

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
