"""Decoding an EVM transaction body into the intent the policy judges.

A signer never trusts an intent it is handed: it rebuilds it from the transaction body, EIP-1559
or legacy EIP-155 alike (`intent_from_eip1559`), with its own policy's registry (assets.py),
and compares digests.

What the body is, fail closed at each step:
  network `eip155:<chain id>` not registered -> `unknown_network`;
  no calldata -> a transfer of the network's native asset to `to`;
  ERC-20 `transfer` / `transferFrom` / `approve` / `increaseAllowance` calldata (signer/chains/erc20.py)
  to a registered token -> that call, with the real recipient (or spender) and amount; to a
  contract the registry does not list -> `unknown_asset`; with native value attached or with
  malformed arguments -> `undecodable_transaction`;
  any other calldata -> a `call` to the contract when the request kind is `contract_call`
  (a rule must name the contract and selector), else `undecodable_transaction`.
"""

from __future__ import annotations

from dataclasses import dataclass

from signer.chains.erc20 import decode_token_call
from signer.chains.ethereum import EvmTx, TxError, tx_type

from .assets import DEFAULT_ASSETS, AssetRegistry
from .errors import PolicyError
from .intent import CALL, TRANSFER, Intent, canonical_address
from .kinds import CONTRACT_CALL, WITHDRAWAL


@dataclass(frozen=True, slots=True)
class DecodedTx:
    """What an EVM body does, in the intent's terms (see `Intent`)."""

    asset: str
    amount: int
    destination: str
    call: str
    fee_asset: str
    contract: str = ""
    source: str = ""
    decimals: int = 18
    fee_decimals: int = 18


def decode_eip1559(tx: EvmTx, assets: AssetRegistry = DEFAULT_ASSETS, kind: str = WITHDRAWAL) -> DecodedTx:
    """The decoded call of `tx` under the registry `assets`, for a request of `kind`; raises
    `PolicyError` with `unknown_network`, `unknown_asset` or `undecodable_transaction`."""
    network_id = f"eip155:{tx.chain_id}"
    network = assets.network(network_id)
    if network is None:
        raise PolicyError("unknown_network", f"{network_id} is not in the policy's network registry")
    coin = assets.native(network_id)
    if coin is None:  # never: a registered network has its native asset (assets.py)
        raise PolicyError("unknown_asset", f"{network_id} has no native asset")
    native, places = coin.symbol, coin.decimals
    to = canonical_address(tx.to)
    if not tx.data:
        return DecodedTx(native, tx.value, to, TRANSFER, native, decimals=places, fee_decimals=places)
    try:
        token_call = decode_token_call(tx.data)
    except TxError as exc:
        raise PolicyError("undecodable_transaction", str(exc)) from None
    token = assets.token(network_id, to)
    if token_call is not None and (token is not None or kind != CONTRACT_CALL):
        if token is None:
            raise PolicyError("unknown_asset", f"{to} is not a registered token on {network_id}")
        if tx.value != 0:
            raise PolicyError("undecodable_transaction", "native value attached to a token call")
        c = token_call
        return DecodedTx(token.symbol, c.amount, c.party, c.method, native, to, c.owner, token.decimals, places)
    if kind != CONTRACT_CALL:
        raise PolicyError("undecodable_transaction", "not a plain transfer or a known ERC-20 call")
    return DecodedTx(native, tx.value, to, CALL, native, contract=to, decimals=places, fee_decimals=places)


def intent_from_eip1559(
    tx: EvmTx,
    *,
    key_id: str,
    path: tuple[int, ...],
    request_id: str,
    policy_hash: bytes,
    expires_at: int,
    initiator: str = "",
    assets: AssetRegistry = DEFAULT_ASSETS,
    kind: str = WITHDRAWAL,
) -> Intent:
    """The intent of an EIP-1559 or legacy EIP-155 transaction: chain `eip155:<id>`, the decoded call under the
    registry `assets` (that of the policy `policy_hash` names), the body's fields and its signing digest."""
    d = decode_eip1559(tx, assets, kind)
    return Intent(
        chain=f"eip155:{tx.chain_id}",
        asset=d.asset,
        amount=d.amount,
        destination=d.destination,
        key_id=key_id,
        path=path,
        request_id=request_id,
        policy_hash=policy_hash,
        expires_at=expires_at,
        nonce=tx.nonce,
        gas_limit=tx.gas_limit,
        max_fee_per_gas=tx.max_fee_per_gas,
        max_priority_fee_per_gas=tx.max_priority_fee_per_gas,
        data=tx.data,
        tx_digest=tx.signing_digest(),
        initiator=initiator,
        call=d.call,
        fee_asset=d.fee_asset,
        contract=d.contract,
        source=d.source,
        decimals=d.decimals,
        fee_decimals=d.fee_decimals,
        tx_type=tx_type(tx),
    )
