"""Threshold-signed Ethereum messages: an EIP-191 personal message and EIP-712 typed data (a
Permit), digests computed by signer/chains/eip712.py, signed 2-of-3 in simulation, and the signer
recovered by eth-account (an independent implementation) as the key's address."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data

from signer.chains.eip712 import TypedData, eip191_digest
from signer.chains.ethereum import address_of
from signer.tss.key_share import AuxInfo, KeyShare
from signer.tss.params import LEVEL_112
from tests.sessions import aux_from_fixtures, keygen_shares
from tests.unit.test_eip712 import PERMIT

from .test_presign_sign import T2N3, run_presign, sign_all


@pytest.fixture(scope="module")
def t2n3() -> tuple[dict[int, KeyShare], dict[int, AuxInfo]]:
    return keygen_shares(2, T2N3), aux_from_fixtures(LEVEL_112, T2N3)


def _rsv(r: int, s: int, y_parity: int) -> tuple[int, int, int]:
    return (y_parity + 27, r, s)  # eth-account's vrs: v in {27, 28} for messages


@pytest.mark.slow(2)
def test_threshold_signed_messages_recover_to_the_key(t2n3: tuple[dict[int, KeyShare], dict[int, AuxInfo]]) -> None:
    shares, aux = t2n3
    sender = address_of(shares[1].public_key)
    text = b"I control this address: custody proof 2026-12-06"
    sig = sign_all(run_presign(shares, aux, (1, 2), "eip191"), eip191_digest(text))
    assert Account.recover_message(encode_defunct(primitive=text), vrs=_rsv(sig.r, sig.s, sig.v)) == sender
    typed = TypedData.from_json(PERMIT)
    sig = sign_all(run_presign(shares, aux, (2, 3), "eip712"), typed.digest())
    recovered = Account.recover_message(encode_typed_data(full_message=PERMIT), vrs=_rsv(sig.r, sig.s, sig.v))
    assert recovered == sender
    # A signature over one message names someone else for another: the digest is the message's.
    other = dict(PERMIT, message={**PERMIT["message"], "value": 1})
    assert Account.recover_message(encode_typed_data(full_message=other), vrs=_rsv(sig.r, sig.s, sig.v)) != sender
