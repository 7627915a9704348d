"""EIP-191 and EIP-712 digests checked against eth-account (an independent implementation, used
only here) and the EIP's own example; refusals of malformed typed data, each with its reason."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_defunct, encode_typed_data

from signer.chains.eip712 import MessageError, TypedData, eip191_digest, encode_type

TEST_ONLY_KEY = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
"""A well-known throwaway key from public documentation: TEST ONLY, never holds funds."""

DOMAIN_TYPE = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]
MAIL: dict[str, Any] = {
    "types": {
        "EIP712Domain": DOMAIN_TYPE,
        "Person": [{"name": "name", "type": "string"}, {"name": "wallet", "type": "address"}],
        "Mail": [
            {"name": "from", "type": "Person"},
            {"name": "to", "type": "Person"},
            {"name": "contents", "type": "string"},
        ],
    },
    "primaryType": "Mail",
    "domain": {
        "name": "Ether Mail",
        "version": "1",
        "chainId": 1,
        "verifyingContract": "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC",
    },
    "message": {
        "from": {"name": "Cow", "wallet": "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},
        "to": {"name": "Bob", "wallet": "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},
        "contents": "Hello, Bob!",
    },
}
PERMIT: dict[str, Any] = {
    "types": {
        "EIP712Domain": DOMAIN_TYPE,
        "Permit": [
            {"name": "owner", "type": "address"},
            {"name": "spender", "type": "address"},
            {"name": "value", "type": "uint256"},
            {"name": "nonce", "type": "uint256"},
            {"name": "deadline", "type": "uint256"},
        ],
    },
    "primaryType": "Permit",
    "domain": {
        "name": "USD Coin",
        "version": "2",
        "chainId": 1,
        "verifyingContract": "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48",
    },
    "message": {
        "owner": "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826",
        "spender": "0x1111111254EEB25477B68fb85Ed929f73A960582",
        "value": (1 << 256) - 1,
        "nonce": 0,
        "deadline": "1800000000",
    },
}
EVERYTHING: dict[str, Any] = {
    "types": {
        "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "salt", "type": "bytes32"}],
        "Leaf": [{"name": "tag", "type": "bytes4"}, {"name": "n", "type": "int64"}],
        "Order": [
            {"name": "flag", "type": "bool"},
            {"name": "blob", "type": "bytes"},
            {"name": "ids", "type": "uint8[]"},
            {"name": "pair", "type": "address[2]"},
            {"name": "leaves", "type": "Leaf[]"},
            {"name": "grid", "type": "int16[][]"},
        ],
    },
    "primaryType": "Order",
    "domain": {"name": "x", "salt": "0x" + "ab" * 32},
    "message": {
        "flag": True,
        "blob": "0x00ff10",
        "ids": [0, 255, 7],
        "pair": ["0x" + "11" * 20, "0x" + "22" * 20],
        "leaves": [{"tag": "0xdeadbeef", "n": -5}, {"tag": "0x00000001", "n": 2**63 - 1}],
        "grid": [[-1, 2], [], [-32768]],
    },
}


@pytest.mark.parametrize("data", [MAIL, PERMIT, EVERYTHING], ids=["mail", "permit", "everything"])
def test_typed_data_digest_matches_eth_account(data: dict[str, Any]) -> None:
    ours = TypedData.from_json(data).digest()
    assert ours == _hash_eip191_message(encode_typed_data(full_message=data))
    signed = Account.sign_typed_data(TEST_ONLY_KEY, full_message=data)
    assert bytes(signed.message_hash) == ours


def test_the_eips_own_example() -> None:
    td = TypedData.from_json(MAIL)
    expected = "Mail(Person from,Person to,string contents)Person(string name,address wallet)"
    assert encode_type(td.types, "Mail") == expected
    assert td.digest().hex() == "be609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2"


@pytest.mark.parametrize("message", [b"", b"hello", "Héllo, wörld".encode(), bytes(range(256)) * 3])
def test_personal_message_digest_matches_eth_account(message: bytes) -> None:
    assert eip191_digest(message) == _hash_eip191_message(encode_defunct(primitive=message))


def _broken(change: str) -> dict[str, Any]:
    d = copy.deepcopy(PERMIT)
    if change == "missing member":
        del d["message"]["deadline"]
    elif change == "extra member":
        d["message"]["extra"] = 1
    elif change == "out of range":
        d["message"]["value"] = 1 << 256
    elif change == "negative uint":
        d["message"]["nonce"] = -1
    elif change == "bad address":
        d["message"]["spender"] = "0x1234"
    elif change == "undeclared type":
        d["types"]["Permit"][0]["type"] = "Owner"
    elif change == "domain primary":
        d["primaryType"] = "EIP712Domain"
    elif change == "odd domain field":
        d["types"]["EIP712Domain"].append({"name": "chain", "type": "uint256"})
    elif change == "float":
        d["message"]["nonce"] = 1.0
    return d


@pytest.mark.parametrize(
    "change",
    [
        "missing member",
        "extra member",
        "out of range",
        "negative uint",
        "bad address",
        "undeclared type",
        "domain primary",
        "odd domain field",
        "float",
    ],
)
def test_malformed_typed_data_is_refused(change: str) -> None:
    with pytest.raises(MessageError):
        TypedData.from_json(_broken(change))


def test_short_fixed_bytes_are_refused_not_padded() -> None:
    d = copy.deepcopy(EVERYTHING)
    d["message"]["leaves"][0]["tag"] = "0xdead"
    with pytest.raises(MessageError, match="exactly 4 bytes"):
        TypedData.from_json(d)
