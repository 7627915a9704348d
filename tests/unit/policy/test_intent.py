from __future__ import annotations

import dataclasses

import pytest

from signer.chains.ethereum import Eip1559Tx
from signer.policy import Intent, PolicyError, intent_from_eip1559
from signer.policy.evm_intent import decode_eip1559
from signer.policy.intent import INTENT_TAG, describe_calldata, format_amount
from signer.tss.encoding import encode
from tests.unit.policy.support import ALLOWED, ASSETS, ETH, T0, TX, addr, intent

TOKEN = addr(40)


def _tx(**changes: object) -> Eip1559Tx:
    return dataclasses.replace(TX, **changes)  # type: ignore[arg-type]


def _transfer(recipient: str, amount: int) -> bytes:
    return bytes.fromhex("a9059cbb") + bytes(12) + bytes.fromhex(recipient[2:]) + amount.to_bytes(32, "big")


def _meta(i: Intent) -> dict[str, object]:
    return {
        "key_id": i.key_id,
        "path": i.path,
        "request_id": i.request_id,
        "policy_hash": i.policy_hash,
        "expires_at": i.expires_at,
    }


@pytest.mark.parametrize(
    "field,value",
    [
        ("chain", "eip155:5"),
        ("asset", "WETH"),
        ("amount", ETH + 1),
        ("destination", addr(9)),
        ("key_id", "cold"),
        ("path", (0, 8)),
        ("request_id", "req-2"),
        ("policy_hash", bytes(32)),
        ("expires_at", T0 + 3601),
        ("initiator", "mallory"),
        ("nonce", 8),
        ("gas_limit", 21001),
        ("max_fee_per_gas", 51 * 10**9),
        ("max_priority_fee_per_gas", 2 * 10**9),
        ("data", b"\x00"),
        ("tx_digest", bytes(32)),
        ("call", "transfer_from"),
        ("fee_asset", "POL"),
        ("contract", addr(40)),
        ("source", addr(9)),
        ("decimals", 6),
        ("fee_decimals", 9),
    ],
)
def test_digest_covers_every_field(field: str, value: object) -> None:
    base = intent()
    assert dataclasses.replace(base, **{field: value}).digest() != base.digest()  # type: ignore[arg-type]


def test_digest_is_injective_across_field_boundaries() -> None:
    a = intent(key_id="ab", request_id="c")
    b = intent(key_id="a", request_id="bc")
    assert a.digest() != b.digest()
    assert intent(path=(1, 23)).digest() != intent(path=(12, 3)).digest()


def test_wire_round_trip_and_malformed() -> None:
    i = intent(initiator="backend-1")
    assert Intent.from_bytes(i.to_bytes()) == i
    with pytest.raises(PolicyError) as exc:
        Intent.from_bytes(i.to_bytes()[:-1])
    assert exc.value.reason == "intent_malformed"


@pytest.mark.parametrize(
    "changes",
    [
        {"amount": "1"},
        {"path": (1 << 31,)},
        {"path": [0]},
        {"policy_hash": b"short"},
        {"asset": 5},
        {"amount": True},
        {"nonce": "7"},
        {"tx_digest": bytes(31)},
        {"data": "0x"},
    ],
)
def test_malformed_intent_refused(changes: dict[str, object]) -> None:
    with pytest.raises(PolicyError) as exc:
        intent(**changes)
    assert exc.value.reason == "intent_malformed"


def test_describe_shows_the_decoded_intent() -> None:
    i = intent(amount=1_500_000_000_000_000_000, initiator="backend-1")
    text = i.describe()
    for part in (
        "1.5 ETH (1500000000000000000 base units)",
        ALLOWED,
        "0.00105 ETH",
        "nonce       7",
        "gas limit 21000 x max fee per gas 50000000000",
        "priority fee per gas 1000000000",
        "calldata    none",
        TX.signing_digest().hex(),
        "hot path m/0/7",
        "req-1",
        "backend-1",
        i.policy_hash.hex(),
        "2023-11-14T23:13:20Z",
        i.digest().hex(),
    ):
        assert part in text
    assert format_amount(7, "XYZ") == "7 base units of XYZ"


def test_eip1559_eth_transfer() -> None:
    want = intent()
    got = intent_from_eip1559(_tx(to=ALLOWED.lower()), **_meta(want))  # type: ignore[arg-type]
    assert got == want  # destination canonicalized, fee cap = max fee per gas * gas limit
    assert got.fee_cap == 50 * 10**9 * 21000
    assert got.tx_digest == TX.signing_digest() and got.nonce == 7


def test_calldata_is_shown_decoded_or_truncated_with_its_length() -> None:
    recipient = addr(11)
    assert describe_calldata(_transfer(recipient, 250)) == f"ERC-20 transfer(to={recipient}, amount=250)"
    long = bytes(range(100))
    shown = describe_calldata(long)
    assert shown.startswith("0x" + long[:64].hex() + "...") and shown.endswith("(100 bytes)")
    assert describe_calldata(bytes.fromhex("deadbeef")) == "0xdeadbeef (4 bytes)"
    recipient_tx = _tx(to=TOKEN, value=0, data=_transfer(recipient, 250), gas_limit=60000)
    text = intent_from_eip1559(recipient_tx, assets=ASSETS, **_meta(intent())).describe()  # type: ignore[arg-type]
    assert f"ERC-20 transfer(to={recipient}, amount=250)" in text


def test_eip1559_any_field_change_changes_digest() -> None:
    base = intent_from_eip1559(_tx(), **_meta(intent()))  # type: ignore[arg-type]
    for changes in (
        {"value": ETH + 1},
        {"to": addr(9)},
        {"max_fee_per_gas": 51 * 10**9},
        {"max_priority_fee_per_gas": 2 * 10**9},
        {"gas_limit": 21001},
        {"chain_id": 5},
        {"nonce": 8},
    ):
        other = intent_from_eip1559(_tx(**changes), **_meta(intent()))  # type: ignore[arg-type]
        assert other.digest() != base.digest()


def test_erc20_transfer_decoded_only_for_known_tokens() -> None:
    recipient = addr(11)
    data = _transfer(recipient, 250 * 10**6)
    tx = _tx(to=TOKEN, value=0, data=data, gas_limit=60000)
    d = decode_eip1559(tx, ASSETS)
    assert (d.asset, d.amount, d.destination, d.contract) == ("USDC", 250 * 10**6, recipient, TOKEN)
    with pytest.raises(PolicyError) as exc:
        decode_eip1559(tx)  # the default registry lists no token
    assert exc.value.reason == "unknown_asset"


@pytest.mark.parametrize(
    "data,value",
    [
        (bytes.fromhex("deadbeef"), 0),  # unknown call
        (bytes.fromhex("a9059cbb") + bytes(64), 1),  # value attached to a token call
        (bytes.fromhex("a9059cbb") + bytes(63), 0),  # truncated
        (bytes.fromhex("a9059cbb") + b"\x01" + bytes(63), 0),  # dirty address word
    ],
)
def test_undecodable_transactions_fail_closed(data: bytes, value: int) -> None:
    with pytest.raises(PolicyError) as exc:
        intent_from_eip1559(_tx(to=TOKEN, value=value, data=data), assets=ASSETS, **_meta(intent()))  # type: ignore[arg-type]
    assert exc.value.reason == "undecodable_transaction"


def test_call_fields_round_trip_and_are_shown() -> None:
    plain = intent()
    assert Intent.from_bytes(plain.to_bytes()) == plain
    pulled = intent(asset="USDC", amount=5 * 10**6, call="transfer_from", contract=TOKEN, source=addr(9), decimals=6)
    assert Intent.from_bytes(pulled.to_bytes()) == pulled
    assert len(pulled.to_bytes()) > len(plain.to_bytes())
    text = pulled.describe()  # with the intent's own decimals
    assert text.startswith("Send 5 USDC (5000000 base units) on eip155:1")
    assert f"token       {TOKEN}" in text and f"debiting    {addr(9)} (transferFrom)" in text
    allowance = intent(asset="USDC", amount=2**256 - 1, call="approve", contract=TOKEN, destination=addr(9))
    assert allowance.describe({"ETH": 18}).startswith(f"Approve spender {addr(9)} for {2**256 - 1} base units of USDC")
    with pytest.raises(PolicyError) as exc:
        intent(call="mint")
    assert exc.value.reason == "intent_malformed"
    # One wire form per intent: an extension holding only the defaults is refused.
    padded = encode(INTENT_TAG, *plain._values(), ["transfer", "ETH", "", ""])
    with pytest.raises(PolicyError) as exc:
        Intent.from_bytes(padded)
    assert exc.value.reason == "intent_malformed"
