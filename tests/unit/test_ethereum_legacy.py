"""Legacy EIP-155 (type 0) transactions checked against eth-account, and their wire, JSON and
intent forms (each refuses fields of the other type rather than dropping them).

Signatures here come from a TEST-ONLY private key signed with eth-account itself (never a
threshold key); the point is that our digest, `v` and raw bytes are what Ethereum expects.
"""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_account._utils.legacy_transactions import serializable_unsigned_transaction_from_dict
from tsscustody.v1 import common_pb2

from coordinator.request_encoding import body_hash, tx_from_json, tx_to_json
from signer.chains.ethereum import Eip1559Tx, LegacyTx, TxError
from signer.node.wire_tx import tx_from_proto, tx_to_proto
from signer.policy import Intent, intent_from_eip1559

TEST_ONLY_KEY = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
"""A well-known throwaway key from public documentation: TEST ONLY, never holds funds."""

TO = "0x000000000000000000000000000000000000dEaD"
TXS = [
    LegacyTx(1, 0, 30 * 10**9, 21000, TO, 10**16),
    LegacyTx(137, 9, 1, 100_000, "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", 0, b"\xa9\x05\x9c\xbb" + bytes(64)),
    LegacyTx(11155111, 2**64 - 1, 2**256 - 1, 2**64 - 1, TO, 2**256 - 1, b"\x00" * 300),
]


def _as_dict(tx: LegacyTx) -> dict[str, object]:
    return {
        "nonce": tx.nonce,
        "gasPrice": tx.gas_price,
        "gas": tx.gas_limit,
        "to": tx.to,
        "value": tx.value,
        "data": tx.data,
        "chainId": tx.chain_id,
    }


@pytest.mark.parametrize("tx", TXS)
def test_digest_v_and_raw_bytes_equal_eth_accounts(tx: LegacyTx) -> None:
    assert tx.signing_digest() == serializable_unsigned_transaction_from_dict(_as_dict(tx)).hash()
    signed = Account.sign_transaction(_as_dict(tx), TEST_ONLY_KEY)
    y_parity = signed.v - 35 - 2 * tx.chain_id
    assert y_parity in (0, 1) and tx.v(y_parity) == signed.v
    raw = tx.raw_signed(signed.r, signed.s, y_parity)
    assert raw == bytes(signed.raw_transaction)
    assert Account.recover_transaction(raw) == Account.from_key(TEST_ONLY_KEY).address


def test_field_checks() -> None:
    with pytest.raises(TxError, match="chain_id"):
        LegacyTx(0, 0, 1, 21000, TO, 0)  # chain id 0 would be a pre-EIP-155, replayable signature
    with pytest.raises(TxError, match="gas_price"):
        LegacyTx(1, 0, -1, 21000, TO, 0)
    with pytest.raises(TxError, match="y_parity"):
        TXS[0].raw_signed(1, 1, 2)
    assert TXS[0].max_fee_per_gas == TXS[0].max_priority_fee_per_gas == 30 * 10**9


def test_wire_form_round_trips_and_refuses_mixed_fee_fields() -> None:
    for tx in TXS:
        assert tx_from_proto(tx_to_proto(tx)) == tx
    m = tx_to_proto(TXS[0])
    assert m.legacy and m.gas_price == str(30 * 10**9) and not m.max_fee_per_gas
    mixed = common_pb2.EthTransaction()
    mixed.CopyFrom(m)
    mixed.max_fee_per_gas = "1"
    with pytest.raises(TxError, match="legacy"):
        tx_from_proto(mixed)
    typed = tx_to_proto(Eip1559Tx(1, 0, 1, 2, 21000, TO, 0))
    typed.gas_price = "5"
    with pytest.raises(TxError, match="gas_price"):
        tx_from_proto(typed)


def test_json_form_and_body_hash_tell_the_types_apart() -> None:
    for tx in TXS:
        assert tx_from_json(tx_to_json(tx)) == tx
    legacy = LegacyTx(1, 0, 5, 21000, TO, 1)
    typed = Eip1559Tx(1, 0, 5, 5, 21000, TO, 1)
    assert "type" not in tx_to_json(typed)  # rows stored before legacy support read as EIP-1559
    assert body_hash("k", (), legacy) != body_hash("k", (), typed)


def test_intent_commits_to_the_type_and_round_trips() -> None:
    common = {"key_id": "k", "path": (), "request_id": "r", "policy_hash": bytes(32), "expires_at": 1}
    legacy = intent_from_eip1559(LegacyTx(1, 0, 5, 21000, TO, 1), **common)  # type: ignore[arg-type]
    typed = intent_from_eip1559(Eip1559Tx(1, 0, 5, 5, 21000, TO, 1), **common)  # type: ignore[arg-type]
    assert legacy.tx_type == 0 and typed.tx_type == 2
    assert Intent.from_bytes(legacy.to_bytes()) == legacy
    assert Intent.from_bytes(typed.to_bytes()) == typed
    assert legacy.digest() != typed.digest()
    # An EIP-1559 plain ETH transfer keeps the encoding it had before the type existed (no extension).
    assert len(typed.to_bytes()) < len(legacy.to_bytes())


def test_an_intent_naming_the_default_type_explicitly_is_not_canonical() -> None:
    from signer.policy.errors import PolicyError
    from signer.policy.intent import EXTENSION, INTENT_TAG
    from signer.tss.encoding import encode

    common = {"key_id": "k", "path": (), "request_id": "r", "policy_hash": bytes(32), "expires_at": 1}
    legacy = intent_from_eip1559(LegacyTx(1, 0, 5, 21000, TO, 1), **common)  # type: ignore[arg-type]
    values = legacy._values()
    # Two encodings of one intent would be two digests for one approval: type 2 is never spelled out.
    spelled = encode(INTENT_TAG, *values[:-1], [*list(EXTENSION.values()), 2])
    with pytest.raises(PolicyError, match="canonical"):
        Intent.from_bytes(spelled)
