"""Ethereum: EIP-1559 transactions checked against eth-account, RLP and EIP-55 vectors.

Signatures here come from a TEST-ONLY private key signed directly with coincurve (never a
threshold key); the point is that our digest, raw bytes and addresses are what Ethereum expects.
"""

from __future__ import annotations

import pytest
import rlp as pyrlp
from coincurve import PrivateKey
from eth_account import Account
from eth_account.typed_transactions.typed_transaction import TypedTransaction
from hexbytes import HexBytes

from signer.chains import rlp
from signer.chains.ethereum import Eip1559Tx, TxError, address_of, keccak256, parse_address, to_checksum, tx_hash
from signer.tss.curve import Point, Q

TEST_ONLY_KEY = bytes.fromhex("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
"""A well-known throwaway key from public documentation: TEST ONLY, never holds funds."""

TXS = [
    Eip1559Tx(1, 0, 2 * 10**9, 40 * 10**9, 21000, "0x000000000000000000000000000000000000dEaD", 10**16),
    Eip1559Tx(5, 7, 0, 1, 100_000, "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", 0, b"\xa9\x05\x9c\xbb" + b"\x00" * 64),
    Eip1559Tx(
        11155111,
        2**64 - 1,
        10**30,
        2**256 - 1,
        30_000_000,
        "0xfb6916095ca1df60bb79ce92ce3ea74c37c5d359",
        2**256 - 1,
        bytes(range(256)) * 3,
    ),
]


def _eth_dict(tx: Eip1559Tx) -> dict[str, object]:
    return {
        "type": 2,
        "chainId": tx.chain_id,
        "nonce": tx.nonce,
        "maxPriorityFeePerGas": tx.max_priority_fee_per_gas,
        "maxFeePerGas": tx.max_fee_per_gas,
        "gas": tx.gas_limit,
        "to": to_checksum(tx.to),
        "value": tx.value,
        "data": tx.data,
        "accessList": [],
    }


def _sign(tx: Eip1559Tx) -> tuple[bytes, int, int, int]:
    sig = PrivateKey(TEST_ONLY_KEY).sign_recoverable(tx.signing_digest(), hasher=None)
    r, s, v = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:64], "big"), sig[64]
    return tx.raw_signed(r, s, v), r, s, v


@pytest.mark.parametrize("tx", TXS, ids=["transfer", "erc20-call", "extremes"])
def test_signing_digest_matches_eth_account(tx: Eip1559Tx) -> None:
    assert TypedTransaction.from_dict(_eth_dict(tx)).hash() == tx.signing_digest()


@pytest.mark.parametrize("tx", TXS, ids=["transfer", "erc20-call", "extremes"])
def test_raw_signed_tx_recovers_to_the_sender(tx: Eip1559Tx) -> None:
    raw, _, s, _ = _sign(tx)
    sender = address_of(Point.from_bytes(PrivateKey(TEST_ONLY_KEY).public_key.format()))
    assert sender == Account.from_key(TEST_ONLY_KEY).address
    assert Account.recover_transaction(raw) == sender
    assert s <= Q // 2  # low-S, as Ethereum requires


@pytest.mark.parametrize("tx", TXS, ids=["transfer", "erc20-call", "extremes"])
def test_raw_bytes_equal_eth_accounts_and_decode_to_our_fields(tx: Eip1559Tx) -> None:
    raw, r, s, v = _sign(tx)
    theirs = Account.sign_transaction(_eth_dict(tx), TEST_ONLY_KEY)  # RFC 6979 on both sides: same signature
    assert bytes(theirs.raw_transaction) == raw
    assert bytes(theirs.hash) == tx_hash(raw) == keccak256(raw)
    d = TypedTransaction.from_bytes(HexBytes(raw)).as_dict()
    assert (d["chainId"], d["nonce"], d["maxPriorityFeePerGas"], d["maxFeePerGas"], d["gas"]) == (
        tx.chain_id,
        tx.nonce,
        tx.max_priority_fee_per_gas,
        tx.max_fee_per_gas,
        tx.gas_limit,
    )
    assert bytes(d["to"]) == parse_address(tx.to) and d["value"] == tx.value and bytes(d["data"]) == tx.data
    assert (d["v"], d["r"], d["s"]) == (v, r, s)


def test_address_of_private_key_one() -> None:
    assert address_of(Point.generator()) == "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf"


# --- RLP ------------------------------------------------------------------------------------------------
RLP_VECTORS: list[tuple[rlp.RlpItem, str]] = [
    (b"", "80"),
    (b"\x00", "00"),
    (b"\x7f", "7f"),
    (b"\x80", "8180"),
    (b"dog", "83646f67"),
    ([b"cat", b"dog"], "c88363617483646f67"),
    ([], "c0"),
    (0, "80"),
    (15, "0f"),
    (127, "7f"),
    (128, "8180"),
    (1024, "820400"),
    (2**64, "89010000000000000000"),
    ([[], [[]], [[], [[]]]], "c7c0c1c0c3c0c1c0"),
    (
        b"Lorem ipsum dolor sit amet, consectetur adipisicing elit",
        "b8384c6f72656d20697073756d20646f6c6f722073697420616d65742c20636f6e7365637465747572206164697069736963696e6720656c6974",
    ),
]


@pytest.mark.parametrize(("item", "expected"), RLP_VECTORS)
def test_rlp_vectors(item: rlp.RlpItem, expected: str) -> None:
    assert rlp.encode(item).hex() == expected


@pytest.mark.parametrize("length", [0, 1, 55, 56, 255, 256, 1024, 70000])
def test_rlp_long_strings_and_lists_match_pyrlp(length: int) -> None:
    data = bytes(i % 251 for i in range(length))
    assert rlp.encode(data) == pyrlp.encode(data)
    items = [bytes([i % 256]) * (i % 7) for i in range(length // 50 + 1)]
    assert rlp.encode(list(items)) == pyrlp.encode(items)


def test_rlp_refuses_negative_and_bool() -> None:
    with pytest.raises(ValueError):
        rlp.encode(-1)
    with pytest.raises(TypeError):
        rlp.encode(True)


# --- EIP-55 -----------------------------------------------------------------------------------------------
EIP55_VECTORS = [
    "0x52908400098527886E0F7030069857D2E4169EE7",
    "0x8617E340B3D01FA5F11F306F4090FD50E238070D",
    "0xde709f2102306220921060314715629080e2fb77",
    "0x27b1fdb04752bbc536007a920d24acb045561c26",
    "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
    "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
    "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
    "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
]


@pytest.mark.parametrize("address", EIP55_VECTORS)
def test_eip55_vectors(address: str) -> None:
    assert to_checksum(address.lower()) == to_checksum(address.upper()[2:])
    assert parse_address(address) == bytes.fromhex(address[2:])
    if address[2:] != address[2:].lower() and address[2:] != address[2:].upper():
        assert to_checksum(address) == address


def test_bad_checksum_is_refused() -> None:
    good = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
    with pytest.raises(TxError, match="checksum"):
        parse_address(good[:3] + good[3].swapcase() + good[4:])


@pytest.mark.parametrize("bad", ["", "0x1234", "5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "0x" + "g" * 40])
def test_malformed_address_is_refused(bad: str) -> None:
    with pytest.raises(TxError):
        parse_address(bad)


# --- field validation ----------------------------------------------------------------------------------
def test_transaction_field_checks() -> None:
    to = "0x000000000000000000000000000000000000dEaD"
    with pytest.raises(TxError, match="chain_id"):
        Eip1559Tx(0, 0, 1, 1, 21000, to, 0)
    with pytest.raises(TxError, match="exceeds"):
        Eip1559Tx(1, 0, 2, 1, 21000, to, 0)
    with pytest.raises(TxError):
        Eip1559Tx(1, -1, 1, 1, 21000, to, 0)
    with pytest.raises(TxError):
        Eip1559Tx(1, 0, 1, 1, 21000, to, 2**256)
    with pytest.raises(TxError, match="y_parity"):
        TXS[0].raw_signed(1, 1, 2)
