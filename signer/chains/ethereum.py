"""Ethereum transactions (EIP-1559 type 2 and legacy EIP-155 type 0): fields, signing digest, raw
signed bytes, addresses.

A signer never signs a digest it was handed: it rebuilds the transaction from these fields and
hashes it itself with keccak-256.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from Crypto.Hash import keccak

from signer.tss.curve import Point

from . import rlp

_ADDR = re.compile(r"^0x[0-9a-fA-F]{40}$")
UINT256 = (1 << 256) - 1


class TxError(ValueError):
    """A transaction field is missing, malformed or out of range."""


def keccak256(data: bytes) -> bytes:
    """Keccak-256 (Ethereum's pre-standard SHA-3)."""
    return keccak.new(digest_bits=256, data=data).digest()


def address_of(public_key: Point) -> str:
    """The EIP-55 checksummed address of a secp256k1 public key."""
    raw = keccak256(public_key.to_bytes_uncompressed()[1:])[-20:]
    return to_checksum(raw.hex())


def to_checksum(hex40: str) -> str:
    """EIP-55 mixed-case checksum of a 40-hex-digit address."""
    h = hex40.lower().removeprefix("0x")
    digest = keccak256(h.encode()).hex()
    return "0x" + "".join(c.upper() if c.isalpha() and int(digest[i], 16) >= 8 else c for i, c in enumerate(h))


def parse_address(addr: str) -> bytes:
    """20 bytes of a 0x-hex address; a mixed-case address must carry a valid EIP-55 checksum."""
    if not isinstance(addr, str) or not _ADDR.match(addr):
        raise TxError(f"not an Ethereum address: {addr!r}")
    body = addr[2:]
    if body != body.lower() and body != body.upper() and to_checksum(body) != addr:
        raise TxError(f"bad EIP-55 checksum: {addr}")
    return bytes.fromhex(body)


@dataclass(frozen=True, slots=True)
class Eip1559Tx:
    """An unsigned type-2 transaction (empty access list)."""

    chain_id: int
    nonce: int
    max_priority_fee_per_gas: int
    max_fee_per_gas: int
    gas_limit: int
    to: str
    value: int
    data: bytes = b""

    def __post_init__(self) -> None:
        for name in ("chain_id", "nonce", "max_priority_fee_per_gas", "max_fee_per_gas", "gas_limit", "value"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= UINT256:
                raise TxError(f"{name} must be an integer in [0, 2^256)")
        if self.chain_id == 0:
            raise TxError("chain_id must be non-zero")
        if self.max_priority_fee_per_gas > self.max_fee_per_gas:
            raise TxError("max_priority_fee_per_gas exceeds max_fee_per_gas")
        parse_address(self.to)

    def _fields(self) -> list[rlp.RlpItem]:
        return [
            self.chain_id,
            self.nonce,
            self.max_priority_fee_per_gas,
            self.max_fee_per_gas,
            self.gas_limit,
            parse_address(self.to),
            self.value,
            self.data,
            [],
        ]

    def signing_digest(self) -> bytes:
        """keccak256(0x02 || rlp([chain_id, nonce, tip, fee cap, gas, to, value, data, access_list]))."""
        return keccak256(b"\x02" + rlp.encode(self._fields()))

    def raw_signed(self, r: int, s: int, y_parity: int) -> bytes:
        """The broadcastable bytes: 0x02 || rlp([... fields, y_parity, r, s])."""
        if y_parity not in (0, 1):
            raise TxError("y_parity must be 0 or 1")
        return b"\x02" + rlp.encode([*self._fields(), y_parity, r, s])


@dataclass(frozen=True, slots=True)
class LegacyTx:
    """An unsigned legacy (type 0) transaction with EIP-155 replay protection: the chain id is
    hashed into the digest and carried in `v`, so a signature for one chain is void on another.

    A legacy transaction pays `gas_price` per gas, both as its fee cap and as its tip; the two
    EIP-1559 names are properties so that fee policing reads one field set for both types.
    """

    chain_id: int
    nonce: int
    gas_price: int
    gas_limit: int
    to: str
    value: int
    data: bytes = b""

    def __post_init__(self) -> None:
        for name in ("chain_id", "nonce", "gas_price", "gas_limit", "value"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= UINT256:
                raise TxError(f"{name} must be an integer in [0, 2^256)")
        # v = chain_id * 2 + 35 + y_parity must stay a 256-bit word; no real chain id comes near.
        if not 0 < self.chain_id <= MAX_LEGACY_CHAIN_ID:
            raise TxError(f"chain_id must be in [1, {MAX_LEGACY_CHAIN_ID}] (EIP-155)")
        if not isinstance(self.data, bytes):
            raise TxError("data must be bytes")
        parse_address(self.to)

    @property
    def max_fee_per_gas(self) -> int:
        """The gas price: what a legacy transaction pays per gas at worst."""
        return self.gas_price

    @property
    def max_priority_fee_per_gas(self) -> int:
        """The gas price again: above the base fee, all of it goes to the block producer."""
        return self.gas_price

    def _fields(self) -> list[rlp.RlpItem]:
        return [self.nonce, self.gas_price, self.gas_limit, parse_address(self.to), self.value, self.data]

    def signing_digest(self) -> bytes:
        """keccak256(rlp([nonce, gas price, gas, to, value, data, chain_id, 0, 0])) (EIP-155)."""
        return keccak256(rlp.encode([*self._fields(), self.chain_id, 0, 0]))

    def v(self, y_parity: int) -> int:
        """EIP-155 `v`: chain_id * 2 + 35 + y_parity."""
        if y_parity not in (0, 1):
            raise TxError("y_parity must be 0 or 1")
        return self.chain_id * 2 + 35 + y_parity

    def raw_signed(self, r: int, s: int, y_parity: int) -> bytes:
        """The broadcastable bytes: rlp([... fields, v, r, s]) (no type byte)."""
        return rlp.encode([*self._fields(), self.v(y_parity), r, s])


MAX_LEGACY_CHAIN_ID = (UINT256 - 36) // 2
EvmTx = Eip1559Tx | LegacyTx
"""Any transaction type the service signs; both carry `signing_digest` and `raw_signed`."""
TX_TYPE_LEGACY, TX_TYPE_EIP1559 = 0, 2


def tx_type(tx: EvmTx) -> int:
    """The EIP-2718 type number: 0 (legacy) or 2 (EIP-1559)."""
    return TX_TYPE_LEGACY if isinstance(tx, LegacyTx) else TX_TYPE_EIP1559


TX_BASE_GAS = 21000


def intrinsic_gas(data: bytes) -> int:
    """The gas a call transaction consumes before executing anything: 21000 plus 4 per zero and
    16 per non-zero calldata byte (EIP-2028); a gas limit below it can never be mined."""
    zeros = data.count(0)
    return TX_BASE_GAS + 4 * zeros + 16 * (len(data) - zeros)


def tx_hash(raw: bytes) -> bytes:
    """The transaction hash of raw signed bytes."""
    return keccak256(raw)
