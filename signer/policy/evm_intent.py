"""Decoding an EVM transaction body into the intent the policy judges.

A signer never trusts an intent it is handed: it rebuilds it from the transaction body
(`intent_from_eip1559`) and compares digests. Fail closed: a transaction whose asset, amount or
destination cannot be decoded raises `PolicyError("undecodable_transaction")`.
"""

from __future__ import annotations

from collections.abc import Mapping

from signer.chains.ethereum import Eip1559Tx, to_checksum

from .errors import PolicyError
from .intent import _ERC20_TRANSFER, Intent, canonical_address


def decode_eip1559(tx: Eip1559Tx, tokens: Mapping[str, str] | None = None) -> tuple[str, int, str]:
    """(asset, amount, destination) of a plain ETH transfer or an ERC-20 `transfer` to a known token.

    Anything else (another call, value attached to a token call, an unknown contract) is
    undecodable and refused: the policy cannot judge what it cannot read.
    """
    if not tx.data:
        return "ETH", tx.value, canonical_address(tx.to)
    token = {canonical_address(k): v for k, v in (tokens or {}).items()}.get(canonical_address(tx.to))
    data = tx.data
    if token is None or tx.value != 0 or len(data) != 68 or data[:4] != _ERC20_TRANSFER:
        raise PolicyError("undecodable_transaction", "not a plain transfer or a known ERC-20 transfer")
    if data[4:16] != bytes(12):
        raise PolicyError("undecodable_transaction", "recipient word is not an address")
    return token, int.from_bytes(data[36:68], "big"), to_checksum(data[16:36].hex())


def intent_from_eip1559(
    tx: Eip1559Tx,
    *,
    key_id: str,
    path: tuple[int, ...],
    request_id: str,
    policy_hash: bytes,
    expires_at: int,
    initiator: str = "",
    tokens: Mapping[str, str] | None = None,
) -> Intent:
    """The intent of an EIP-1559 transaction: chain `eip155:<id>`, the body's fields and its signing digest."""
    asset, amount, destination = decode_eip1559(tx, tokens)
    return Intent(
        chain=f"eip155:{tx.chain_id}",
        asset=asset,
        amount=amount,
        destination=destination,
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
    )
