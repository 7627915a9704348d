"""ERC-20 calldata: selectors from their signatures, strict decoding, intrinsic gas (EIP-2028)."""

from __future__ import annotations

import pytest
from eth_abi import encode as abi_encode

from signer.chains.erc20 import (
    APPROVE,
    INCREASE_ALLOWANCE,
    TRANSFER,
    TRANSFER_FROM,
    TokenCall,
    decode_token_call,
    encode_token_call,
    selector,
)
from signer.chains.ethereum import TxError, intrinsic_gas

A = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
B = "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359"


def test_selectors_are_the_published_ones() -> None:
    assert selector("transfer(address,uint256)").hex() == "a9059cbb"
    assert selector("transferFrom(address,address,uint256)").hex() == "23b872dd"
    assert selector("approve(address,uint256)").hex() == "095ea7b3"
    assert selector("increaseAllowance(address,uint256)").hex() == "39509351"


@pytest.mark.parametrize(
    "method,sig,args,expected",
    [
        (TRANSFER, "transfer(address,uint256)", (["address", "uint256"], [A, 5]), TokenCall(TRANSFER, A, 5)),
        (
            TRANSFER_FROM,
            "transferFrom(address,address,uint256)",
            (["address", "address", "uint256"], [B, A, 7]),
            TokenCall(TRANSFER_FROM, A, 7, owner=B),
        ),
        (
            APPROVE,
            "approve(address,uint256)",
            (["address", "uint256"], [A, 2**256 - 1]),
            TokenCall(APPROVE, A, 2**256 - 1),
        ),
        (
            INCREASE_ALLOWANCE,
            "increaseAllowance(address,uint256)",
            (["address", "uint256"], [A, 1]),
            TokenCall(INCREASE_ALLOWANCE, A, 1),
        ),
    ],
)
def test_decoding_agrees_with_eth_abi(
    method: str, sig: str, args: tuple[list[str], list[object]], expected: TokenCall
) -> None:
    data = selector(sig) + abi_encode(*args)
    assert decode_token_call(data) == expected
    assert encode_token_call(method, expected.party, expected.amount, expected.owner) == data


def test_other_selectors_are_not_token_calls() -> None:
    assert decode_token_call(bytes.fromhex("deadbeef") + bytes(64)) is None
    assert decode_token_call(b"") is None


@pytest.mark.parametrize(
    "data",
    [
        bytes.fromhex("a9059cbb") + bytes(63),  # truncated
        bytes.fromhex("a9059cbb") + bytes(65),  # trailing byte
        bytes.fromhex("a9059cbb") + b"\x01" + bytes(63),  # dirty address padding
        bytes.fromhex("23b872dd") + bytes(64),  # transferFrom with two words
    ],
)
def test_malformed_token_calls_are_refused(data: bytes) -> None:
    with pytest.raises(TxError):
        decode_token_call(data)


def test_intrinsic_gas_counts_calldata() -> None:
    assert intrinsic_gas(b"") == 21000
    assert intrinsic_gas(b"\x00\x01") == 21000 + 4 + 16
    assert intrinsic_gas(encode_token_call(TRANSFER, A, 5)) > 21000
