"""A transaction on the wire: protobuf <-> `Eip1559Tx` / `LegacyTx` and its size limits.

Its own module so that a client (the officer's tool, `tssctl request show`) converts a transaction
without loading the signer node (`wire.py` imports the node and the protocol library).
"""

from __future__ import annotations

from tsscustody.v1 import common_pb2

from signer.chains.ethereum import Eip1559Tx, EvmTx, LegacyTx, TxError

from . import limits
from .limits import check_bytes, check_text

__all__ = ["check_eth", "tx_from_proto", "tx_to_proto"]


def check_eth(m: common_pb2.EthTransaction, field: str = "eth") -> None:
    """Size limits of a transaction's fields (its validity is checked by `Eip1559Tx` / `LegacyTx`)."""
    check_text(f"{field}.to", m.to, limits.MAX_ADDRESS)
    for name in ("value", "max_fee_per_gas", "max_priority_fee_per_gas", "gas_price"):
        check_text(f"{field}.{name}", getattr(m, name), limits.MAX_TX_NUMBER)
    check_bytes(f"{field}.data", bytes(m.data), limits.MAX_TX_DATA)


def tx_from_proto(m: common_pb2.EthTransaction) -> EvmTx:
    """Domain transaction from its protobuf form (decimal strings for 256-bit amounts); a field of
    the other type is refused rather than ignored, so no two messages name one transaction."""
    try:
        if m.legacy:
            if m.max_fee_per_gas or m.max_priority_fee_per_gas:
                raise TxError("a legacy transaction has a gas_price, not EIP-1559 fee fields")
            return LegacyTx(
                chain_id=m.chain_id,
                nonce=m.nonce,
                gas_price=int(m.gas_price or "0"),
                gas_limit=m.gas_limit,
                to=m.to,
                value=int(m.value or "0"),
                data=bytes(m.data),
            )
        if m.gas_price:
            raise TxError("gas_price is for legacy transactions only")
        return Eip1559Tx(
            chain_id=m.chain_id,
            nonce=m.nonce,
            max_priority_fee_per_gas=int(m.max_priority_fee_per_gas or "0"),
            max_fee_per_gas=int(m.max_fee_per_gas or "0"),
            gas_limit=m.gas_limit,
            to=m.to,
            value=int(m.value or "0"),
            data=bytes(m.data),
        )
    except ValueError as exc:
        raise TxError(str(exc)) from None


def tx_to_proto(tx: EvmTx) -> common_pb2.EthTransaction:
    """Protobuf form of a transaction (256-bit amounts as decimal strings)."""
    if isinstance(tx, LegacyTx):
        return common_pb2.EthTransaction(
            chain_id=tx.chain_id,
            nonce=tx.nonce,
            gas_limit=tx.gas_limit,
            to=tx.to,
            value=str(tx.value),
            data=tx.data,
            legacy=True,
            gas_price=str(tx.gas_price),
        )
    return common_pb2.EthTransaction(
        chain_id=tx.chain_id,
        nonce=tx.nonce,
        max_priority_fee_per_gas=str(tx.max_priority_fee_per_gas),
        max_fee_per_gas=str(tx.max_fee_per_gas),
        gas_limit=tx.gas_limit,
        to=tx.to,
        value=str(tx.value),
        data=tx.data,
    )
