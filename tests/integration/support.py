"""Shared pieces of the real-process tests: the payee, transaction bodies."""

from __future__ import annotations

from tsscustody.v1 import common_pb2

ETH = 10**18
GWEI = 10**9
TO = "0x000000000000000000000000000000000000dEaD"
SEPOLIA = 11155111


def eth_tx(
    nonce: int = 0,
    value: int = 10**15,
    *,
    chain_id: int = SEPOLIA,
    gas_limit: int = 21000,
    max_fee: int = 30 * GWEI,
    priority_fee: int = GWEI,
    data: bytes = b"",
    to: str = TO,
) -> common_pb2.EthTransaction:
    """An EIP-1559 body; the defaults fit the demo policy's automatic tier (fee ≤ amount)."""
    return common_pb2.EthTransaction(
        chain_id=chain_id,
        nonce=nonce,
        max_priority_fee_per_gas=str(priority_fee),
        max_fee_per_gas=str(max_fee),
        gas_limit=gas_limit,
        to=to,
        value=str(value),
        data=data,
    )
