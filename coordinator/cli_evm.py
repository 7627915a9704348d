"""`tssctl withdraw` / `sweep` transactions: the network always named, amounts in decimal units of a
registered asset, converted exactly.

The network (`--network eip155:137` or its display name, or the older `--chain-id 137`) and the
asset (`--asset USDC`, default the network's native coin) are looked up in the registry of the
policy the coordinator has in force (GetGovernance), so the backend builds what the signers will
decode. `--amount 1.5` is converted with integer arithmetic (no floats); more decimals than the
asset has is an error. A token transfer becomes an ERC-20 `transfer(to, amount)` call to the
token contract; with `--kind approval` an ERC-20 `approve(spender = --to, amount)`; with
`--kind contract_call` the raw `--data` to `--to`. The gas limit must cover the body's intrinsic
gas (21000 plus calldata).
"""

from __future__ import annotations

import argparse
import re
from typing import TYPE_CHECKING

from tsscustody.v1 import common_pb2

from .cli_common import tx_from_args
from .cli_errors import CliError, UsageError

if TYPE_CHECKING:
    from signer.policy import AssetRegistry, Network

    from .client import CoordinatorClient

_DECIMAL = re.compile(r"^([0-9]+)(?:\.([0-9]+))?$")
WITHDRAW_KINDS = ("withdrawal", "approval", "contract_call")
TOKEN_TRANSFER_GAS = 100_000
"""The default gas limit of a token transfer (a plain transfer defaults to 21000)."""


def parse_units(text: str, decimals: int, symbol: str) -> int:
    """`1.5` with 6 decimals -> 1500000, exactly; raises `CliError` for anything else."""
    m = _DECIMAL.match(text.strip()) if isinstance(text, str) and len(text) <= 100 else None
    if m is None:
        raise UsageError(f"--amount {text!r}: expected a non-negative decimal number such as 1.5")
    whole, frac = m.group(1), m.group(2) or ""
    if len(frac) > decimals:
        raise UsageError(f"--amount {text}: {symbol} has {decimals} decimals, the amount has {len(frac)}")
    scale: int = 10**decimals
    return int(whole) * scale + int(frac.ljust(decimals, "0") or "0")


def decimal_amount(text: str) -> str:
    """argparse type of --amount: a non-negative decimal number (its decimals are checked against
    the asset once the registry is known)."""
    if _DECIMAL.match(text.strip()) is None or len(text) > 100:
        raise argparse.ArgumentTypeError(f"expected a non-negative decimal number such as 1.5, got {text!r}")
    return text


def add_amount_options(p: argparse.ArgumentParser) -> None:
    """--asset, --amount and --kind of a withdrawal (kinds as in signer/policy/kinds.py, which the
    parser does not import: tssctl starts without the policy library)."""
    p.add_argument("--asset", default=None, help="registered asset symbol (default: the network's native coin)")
    p.add_argument("--amount", type=decimal_amount, default=None, help="decimal units of the asset, e.g. 1.5")
    p.add_argument("--kind", default="withdrawal", choices=WITHDRAW_KINDS, help="the request kind the policy judges")


def nonce_of(args: argparse.Namespace) -> int:
    """The body's nonce: --nonce, or 0 for the coordinator to fill (--allocate-nonce allocates the
    next one, --replaces takes the replaced request's); never a silent default."""
    nonce, allocate, replaces = args.nonce, getattr(args, "allocate_nonce", False), getattr(args, "replaces", "")
    if allocate and replaces:
        raise UsageError("--replaces reuses the replaced request's nonce; --allocate-nonce takes a new one")
    if allocate and nonce is not None:
        raise UsageError("give --nonce N or --allocate-nonce, not both")
    if nonce is None and not (allocate or replaces):
        raise UsageError("give the transaction's --nonce N or --allocate-nonce; there is no default")
    return 0 if nonce is None else int(nonce)


def policy_assets(c: CoordinatorClient) -> AssetRegistry:
    """The registry of the policy in force at the coordinator."""
    from signer.policy import DEFAULT_ASSETS, PolicyDocument, PolicyError

    g = c.governance()
    if not g.policy_json:
        return DEFAULT_ASSETS
    try:
        return PolicyDocument.from_json(g.policy_json).assets
    except PolicyError as exc:
        raise CliError(f"the coordinator's policy does not parse: {exc}") from None


def network_of(assets: AssetRegistry, args: argparse.Namespace) -> Network:
    """The network `--network` (id or display name) or `--chain-id` names; raises `CliError`."""
    name, chain_id = getattr(args, "network", None), getattr(args, "chain_id", None)
    if name is None and chain_id is None:
        raise UsageError("name the network with --network (e.g. eip155:1); there is no default")
    if name is not None:
        network = next((n for n in assets.networks if name in (n.network_id, n.name)), None)
    else:
        network = assets.network(f"eip155:{chain_id}")
    if network is None:
        known = ", ".join(f"{n.network_id} ({n.name})" for n in assets.networks)
        raise CliError(f"unknown network {name or f'eip155:{chain_id}'}; the policy lists {known}")
    if chain_id is not None and network.network_id != f"eip155:{chain_id}":
        raise CliError(f"--network {name} is {network.network_id}, not --chain-id {chain_id}")
    return network


def evm_tx(c: CoordinatorClient, args: argparse.Namespace, value: int | None = None) -> common_pb2.EthTransaction:
    """The EIP-1559 transaction the options describe (`value`: a native amount in base units)."""
    from signer.chains.erc20 import APPROVE, TRANSFER, encode_token_call
    from signer.chains.ethereum import TxError, intrinsic_gas

    args = argparse.Namespace(**{**vars(args), "nonce": nonce_of(args)})
    if getattr(args, "network", None) is None and getattr(args, "chain_id", None) is None:
        raise UsageError("name the network with --network (e.g. eip155:1); there is no default")
    assets = policy_assets(c)
    network = network_of(assets, args)
    amount, symbol, legacy = getattr(args, "amount", None), getattr(args, "asset", None), getattr(args, "value", None)
    if value is None and (amount is None) == (legacy is None):
        raise UsageError("give the amount as --amount (decimal units of --asset) or --value (base units), not both")
    to, data = args.to, bytes.fromhex(args.data.removeprefix("0x")) if getattr(args, "data", "") else b""
    asset = assets.native(network.network_id) if symbol is None else None
    if symbol is not None:
        asset = next((a for a in assets.assets if a.network == network.network_id and a.symbol == symbol), None)
        if asset is None:
            raise CliError(f"{symbol} is not a registered asset on {network.network_id} ({network.name})")
    if asset is None:  # never: a registered network has its native asset (assets.py)
        raise CliError(f"{network.network_id} has no native asset in the registry")
    if amount is not None:
        value = parse_units(amount, asset.decimals, asset.symbol)
    elif value is None and isinstance(legacy, int):
        value = legacy
    if value is None or value < 0:
        raise UsageError("the amount must be a non-negative number")
    kind = getattr(args, "kind", "withdrawal")
    if kind == "approval" and not asset.contract:
        raise UsageError("an approval needs a token --asset; --to is the spender")
    if kind == "contract_call" and (asset.contract or not data):
        raise UsageError("a contract call needs --data and sends the native coin (no token --asset)")
    if asset.contract:
        if data:
            raise UsageError("--data cannot be combined with a token transfer or approval")
        method = APPROVE if kind == "approval" else TRANSFER
        try:
            to, data, value = asset.contract, encode_token_call(method, args.to, value), 0
        except TxError as exc:
            raise CliError(str(exc)) from None
    gas = args.gas if args.gas is not None else (TOKEN_TRANSFER_GAS if data else 21000)
    if gas < intrinsic_gas(data):
        raise UsageError(f"--gas {gas} is below the transaction's intrinsic gas {intrinsic_gas(data)}")
    chain_id = network.evm_chain_id
    if chain_id is None:
        raise CliError(f"{network.network_id} is not an EVM network")
    resolved = {"chain_id": chain_id, "to": to, "gas": gas, "data": data.hex()}
    return tx_from_args(argparse.Namespace(**{**vars(args), **resolved}), value=value)
