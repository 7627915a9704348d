"""Fees are money: fee rules per network, tier fee caps, fees in the windowed limits, fair shares."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from signer.policy import (
    Action,
    Condition,
    Decision,
    FeeRule,
    Intent,
    Ledger,
    Limit,
    PolicyDocument,
    PolicyError,
    Rule,
    check_limits,
    evaluate,
    intent_from_eip1559,
    policy_is_tightening,
)
from tests.unit.policy.support import ALLOWED, BACKEND, ETH, FEE, STRANGER, T0, TX, addr, intent, policy, registry

NOW = T0 + 60
APPROVED = {"alice": T0, "bob": T0, "carol": T0}
GWEI = 10**9
TOKEN = addr(40)
BASE_FEES = policy().fees[0]


def _eval(i: Intent, doc: PolicyDocument | None = None, ledger: Ledger | None = None) -> Decision:
    doc = doc or policy()
    i = dataclasses.replace(i, policy_hash=doc.hash())
    return evaluate(doc, registry(), i, APPROVED, ledger or _seasoned(), NOW, BACKEND)


def _seasoned() -> Ledger:
    """Every test destination is past its trust ramp (two old withdrawals each)."""
    ledger = Ledger()
    for n, d in enumerate((ALLOWED, STRANGER) * 2):
        ledger.record_spend(intent(request_id=f"ramp-{n}", destination=d, amount=1, key_id="other"), T0 - 60 * 86400)
    return ledger


def _with_fees(**changes: object) -> PolicyDocument:
    return dataclasses.replace(policy(), fees=(dataclasses.replace(BASE_FEES, **changes),))  # type: ignore[arg-type]


def test_an_automatic_withdrawal_with_a_huge_tip_is_blocked() -> None:
    # The attack: 0.01 ETH with 1 ETH per gas, 21000 gas = a 21000 ETH fee.
    i = intent(amount=ETH // 100, max_fee_per_gas=ETH, max_priority_fee_per_gas=ETH)
    d = _eval(i)
    assert (d.action, d.reason, d.rule_id) == ("block", "fee_exceeded", "script-small")
    assert _eval(intent(amount=ETH // 100)).reason == "allowed"


def test_the_absolute_cap_is_on_the_worst_case_fee() -> None:
    at_cap = intent(amount=ETH // 100, max_fee_per_gas=BASE_FEES.max_fee // 21000)
    assert at_cap.fee_cap <= BASE_FEES.max_fee and _eval(at_cap).reason == "allowed"
    over = intent(amount=ETH // 100, max_fee_per_gas=BASE_FEES.max_fee // 21000 + 1)
    assert _eval(over).reason == "fee_exceeded"
    # Same per-gas price, more gas: the cap is on max fee per gas x gas limit.
    assert _eval(dataclasses.replace(at_cap, gas_limit=21001)).reason == "fee_exceeded"


def test_no_fee_rule_for_the_network_blocks() -> None:
    assert _eval(intent(chain="eip155:5")).reason == "no_fee_rule"
    assert _eval(intent(), dataclasses.replace(policy(), fees=())).reason == "no_fee_rule"


@pytest.mark.parametrize("gas", [20999, 300_001])
def test_gas_limit_out_of_range(gas: int) -> None:
    assert _eval(intent(amount=ETH // 100, gas_limit=gas, max_fee_per_gas=GWEI)).reason == "gas_limit_out_of_range"


@pytest.mark.parametrize(
    "changes",
    [
        {"max_priority_fee_per_gas": 51 * GWEI},  # priority above the max fee per gas
        {"max_fee_per_gas": 0, "max_priority_fee_per_gas": 0},
        {"gas_limit": 0},
    ],
)
def test_insane_fee_fields_are_refused(changes: dict[str, object]) -> None:
    assert _eval(intent(**changes)).reason == "fee_fields_invalid"


def test_relative_cap_applies_to_transfers_of_the_fee_asset() -> None:
    doc = _with_fees(max_fee_bps=100)  # fee <= 1% of the amount
    assert _eval(intent(amount=100 * FEE), doc).reason == "approved"
    assert _eval(intent(amount=100 * FEE - 1), doc).reason == "fee_exceeded_relative"


def test_relative_cap_does_not_apply_to_token_transfers_the_absolute_one_does() -> None:
    usdc = Rule("usdc", Condition(assets=frozenset({"USDC"})), Action("allow"))
    doc = dataclasses.replace(_with_fees(max_fee_bps=1), rules=(usdc,))
    data = bytes.fromhex("a9059cbb") + bytes(12) + bytes.fromhex(ALLOWED[2:]) + (5).to_bytes(32, "big")
    tx = dataclasses.replace(TX, to=TOKEN, value=0, data=data, gas_limit=60_000)
    i = intent_from_eip1559(
        tx,
        key_id="hot",
        path=(0, 7),
        request_id="t",
        policy_hash=doc.hash(),
        expires_at=T0 + 3600,
        assets=doc.assets,
    )
    assert (i.asset, i.amount) == ("USDC", 5)
    assert _eval(i, doc).reason == "allowed"  # a 5-unit transfer with a 0.003 ETH fee: no common unit
    greedy = intent_from_eip1559(
        dataclasses.replace(tx, max_fee_per_gas=10**12, max_priority_fee_per_gas=10**12),
        key_id="hot",
        path=(0, 7),
        request_id="t",
        policy_hash=doc.hash(),
        expires_at=T0 + 3600,
        assets=doc.assets,
    )
    assert _eval(greedy, doc).reason == "fee_exceeded"


def test_an_approved_tier_may_carry_a_higher_fee_cap() -> None:
    pricey = intent(max_fee_per_gas=ETH // 100 // 21000 * 5)  # 0.05 ETH worst case, over the 0.01 ETH base cap
    assert _eval(pricey).reason == "fee_exceeded"
    rules = tuple(
        dataclasses.replace(r, action=dataclasses.replace(r.action, fee_cap=ETH // 10))
        if r.rule_id == "allowed-medium"
        else r
        for r in policy().rules
    )
    doc = dataclasses.replace(policy(), rules=rules)
    assert _eval(pricey, doc).reason == "approved"
    assert _eval(intent(max_fee_per_gas=ETH // 10 // 21000 + 1), doc).reason == "fee_exceeded"


def test_fees_count_in_the_windowed_limits_of_the_fee_asset() -> None:
    doc = dataclasses.replace(
        policy(rules=(Rule("any", Condition(), Action("allow")),)),
        limits=(Limit("eth-day", "key_asset", asset="ETH", window=86400, max_amount=ETH),),
    )
    ledger = Ledger()
    first = intent(doc, request_id="a", amount=ETH // 2)
    ledger.record_spend(first, NOW - 10)
    assert ledger.spent("hot", "ETH", 86400, NOW) == ETH // 2 + FEE
    # ETH transfer: amount + fee.
    assert _eval(intent(doc, request_id="b", amount=ETH // 2 - 2 * FEE), doc, ledger).reason == "allowed"
    assert _eval(intent(doc, request_id="b", amount=ETH // 2 - 2 * FEE + 1), doc, ledger).reason == (
        "limit_exceeded:eth-day"
    )
    # Token transfer: its fee alone is charged to the ETH limit.
    token = intent(doc, request_id="c", asset="USDC", amount=10**12)
    ledger.record_spend(token, NOW - 5)
    assert ledger.spent("hot", "ETH", 86400, NOW) == ETH // 2 + 2 * FEE
    assert ledger.spent("hot", "USDC", 86400, NOW) == 10**12
    full = Ledger()
    full.record_spend(intent(doc, request_id="d", amount=ETH - FEE), NOW - 10)
    assert _eval(intent(doc, request_id="e", asset="USDC", amount=1), doc, full).reason == "limit_exceeded:eth-day"


def test_a_signer_enforces_its_fair_share_of_windowed_limits() -> None:
    doc = dataclasses.replace(
        policy(),
        limits=(
            Limit("tx", "transaction", asset="ETH", max_amount=10 * ETH),
            Limit("day", "key_asset", asset="ETH", window=86400, max_amount=9 * ETH),
            Limit("rate", "client_rate", window=60, max_count=4),
        ),
    )
    i = intent(doc, amount=3 * ETH - FEE)
    kw: dict[str, Any] = {"destination": ALLOWED, "destination_class": "allowed", "initiator": BACKEND, "now": NOW}
    ledger = Ledger()
    ledger.record_spend(intent(doc, request_id="x", amount=3 * ETH - FEE), NOW - 1)
    assert check_limits(doc, ledger, i, share=(1, 1), **kw) is None  # 6 of 9 ETH
    assert check_limits(doc, ledger, i, share=(2, 3), **kw) is None  # 6 of floor(9 * 2 / 3) = 6
    assert check_limits(doc, ledger, i, share=(2, 4), **kw) == "limit_exceeded:day"  # 6 of 4.5
    # Counts too: floor(4 * 2 / 4) = 2 requests per minute for this signer.
    for n in range(2):
        ledger.record_request(BACKEND, f"r{n}", NOW)
    small = intent(doc, amount=1)
    assert check_limits(doc, ledger, small, share=(2, 4), **kw) == "limit_exceeded:rate"
    assert check_limits(doc, ledger, small, share=(1, 1), **kw) is None
    # The per-transaction limit is not scaled.
    tx_only = dataclasses.replace(doc, limits=doc.limits[:1], trust_ramp=None)
    assert check_limits(tx_only, Ledger(), intent(doc, amount=10 * ETH), share=(2, 4), **kw) is None
    assert check_limits(tx_only, Ledger(), intent(doc, amount=10 * ETH + 1), share=(2, 4), **kw) == "limit_exceeded:tx"


def test_fee_rules_round_trip_through_json_and_change_the_hash() -> None:
    doc = _with_fees(max_fee_bps=250)
    rules = tuple(
        dataclasses.replace(r, action=dataclasses.replace(r.action, fee_cap=7)) if r.rule_id == "large" else r
        for r in doc.rules
    )
    doc = dataclasses.replace(doc, rules=rules)
    again = PolicyDocument.from_json(doc.to_json())
    assert again == doc and again.hash() == doc.hash()
    assert json.loads(doc.to_json())["fees"][0]["max_fee_bps"] == 250
    assert _with_fees(max_fee=1).hash() != policy().hash()


@pytest.mark.parametrize(
    "fee",
    [
        {"chain": "eip155:x", "asset": "ETH", "max_fee": "1", "min_gas_limit": 1, "max_gas_limit": 2},
        {"chain": "eip155:1", "asset": "USDC", "max_fee": "1", "min_gas_limit": 1, "max_gas_limit": 2},
        {"chain": "eip155:1", "asset": "ETH", "max_fee": "1", "min_gas_limit": 3, "max_gas_limit": 2},
        {"chain": "eip155:1", "asset": "ETH", "max_fee": "1", "min_gas_limit": 0, "max_gas_limit": 2},
        {
            "chain": "eip155:1",
            "asset": "ETH",
            "max_fee": "1",
            "min_gas_limit": 1,
            "max_gas_limit": 2,
            "max_fee_bps": 10001,
        },
        {"chain": "eip155:1", "asset": "ETH", "max_fee": "-1", "min_gas_limit": 1, "max_gas_limit": 2},
        {"chain": "eip155:1", "asset": "ETH", "min_gas_limit": 1, "max_gas_limit": 2},
        {"chain": "eip155:1", "asset": "ETH", "max_fee": "1", "min_gas_limit": 1, "max_gas_limit": 2, "extra": 1},
    ],
)
def test_malformed_fee_rules_are_refused(fee: dict[str, object]) -> None:
    d = json.loads(policy().to_json())
    d["fees"] = [fee]
    with pytest.raises(PolicyError) as exc:
        PolicyDocument.from_json(json.dumps(d))
    assert exc.value.reason == "policy_malformed"


def test_two_fee_rules_for_one_network_and_a_fee_cap_on_block_are_refused() -> None:
    with pytest.raises(PolicyError) as exc:
        dataclasses.replace(policy(), fees=(BASE_FEES, BASE_FEES))
    assert exc.value.reason == "policy_malformed"
    with pytest.raises(PolicyError) as exc:
        dataclasses.replace(policy(), rules=(Rule("b", Condition(), Action("block", fee_cap=1)),))
    assert exc.value.reason == "policy_malformed"


def test_only_lower_fee_caps_are_a_tightening() -> None:
    old = policy()
    assert policy_is_tightening(old, _with_fees(max_fee=BASE_FEES.max_fee - 1))
    assert policy_is_tightening(old, _with_fees(max_fee_bps=100))  # a relative cap where there was none
    assert policy_is_tightening(old, dataclasses.replace(old, fees=()))  # the network is now blocked
    assert not policy_is_tightening(old, _with_fees(max_fee=BASE_FEES.max_fee + 1))
    assert not policy_is_tightening(old, _with_fees(max_gas_limit=BASE_FEES.max_gas_limit + 1))
    assert not policy_is_tightening(old, _with_fees(min_gas_limit=BASE_FEES.min_gas_limit - 1))
    other_net = FeeRule("eip155:5", "ETH", 1, 21000, 21000)
    assert not policy_is_tightening(old, dataclasses.replace(old, fees=(BASE_FEES, other_net)))
    bps = _with_fees(max_fee_bps=100)
    assert not policy_is_tightening(bps, _with_fees(max_fee_bps=200))
    assert not policy_is_tightening(bps, old)  # the relative cap dropped
    capped = tuple(
        dataclasses.replace(r, action=dataclasses.replace(r.action, fee_cap=ETH)) if r.action.kind != "block" else r
        for r in old.rules
    )
    assert not policy_is_tightening(old, dataclasses.replace(old, rules=capped))  # a tier cap replaces the base one
