"""The network and asset registries: governed data in the policy document, validated, hashed,
and the call conditions of rules (kinds, contracts, selectors)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from signer.policy import (
    DEFAULT_ASSETS,
    Asset,
    AssetRegistry,
    Condition,
    FeeRule,
    Intent,
    Network,
    PolicyDocument,
    PolicyError,
    Rule,
    check_registered,
    policy_is_tightening,
)
from signer.policy.rules import Action
from tests.unit.policy.support import ASSETS, TOKENS, intent, policy

OLD_POLICY_HASH = "292c29bfbd586cc51034986a2b29f92a4cee3dad6e77bcdc9ff5d1f27ed2dd03"
OLD_INTENT_DIGEST = "329307e0651aafa2bcf7cc0559b91225ec49c7b6b2f345a9cc3840ab4508533d"
USDC = TOKENS["USDC"][0]
POLYGON = Network("eip155:137", "Polygon", "POL")


def _doc_json(**extra: Any) -> dict[str, Any]:
    return json.loads(policy(**extra).to_json())  # type: ignore[no-any-return]


def _malformed(d: dict[str, Any]) -> str:
    with pytest.raises(PolicyError) as exc:
        PolicyDocument.from_json(json.dumps(d))
    assert exc.value.reason == "policy_malformed"
    return exc.value.detail


def test_documents_and_intents_without_the_new_fields_hash_as_before() -> None:
    old = dataclasses.replace(policy(), assets=DEFAULT_ASSETS)
    assert old.hash().hex() == OLD_POLICY_HASH
    assert "networks" not in json.loads(old.to_json())
    assert intent(old).digest().hex() == OLD_INTENT_DIGEST
    assert policy().hash() != old.hash()  # a registry is part of the version hash


def test_registry_round_trips_through_json() -> None:
    d = _doc_json()
    assert {n["id"] for n in d["networks"]} == {"eip155:1", "eip155:5", "eip155:11155111"}
    assert {"symbol": "USDC", "network": "eip155:1", "decimals": 6, "contract": USDC} in d["assets"]
    doc = PolicyDocument.from_json(json.dumps(d))
    assert doc.assets == ASSETS and doc.hash() == policy().hash()
    # A contract in lower case is stored in its checksummed form.
    for a in d["assets"]:
        if a.get("contract"):
            a["contract"] = a["contract"].lower()
    assert PolicyDocument.from_json(json.dumps(d)).hash() == policy().hash()


@pytest.mark.parametrize(
    "mutate,detail",
    [
        (lambda d: d.pop("assets"), "needs both"),
        (lambda d: d["networks"].append({"id": "eip155:1", "name": "x", "native": "ETH"}), "registered twice"),
        (lambda d: d["networks"].append({"id": "polygon", "name": "Polygon", "native": "POL"}), "CAIP-2"),
        (lambda d: d["networks"].append({"id": "eip155:0", "name": "zero", "native": "ETH"}), "positive chain id"),
        (
            lambda d: d["networks"].append({"id": "eip155:137", "name": "Polygon", "native": "POL"}),
            "must be registered",
        ),
        (lambda d: d["assets"].append({"symbol": "X", "network": "eip155:2", "decimals": 1}), "not registered"),
        (
            lambda d: d["assets"].append({"symbol": "USDC", "network": "eip155:5", "decimals": 6, "contract": USDC}),
            "unique",
        ),
        (
            lambda d: d["assets"].append(
                {"symbol": "ETH", "network": "eip155:1", "decimals": 18, "contract": "0x" + "11" * 20}
            ),
            "unique",
        ),
        (
            lambda d: d["assets"].append({"symbol": "W", "network": "eip155:1", "decimals": 6, "contract": USDC}),
            "one address",
        ),
        (
            lambda d: d["assets"].append(
                {"symbol": "DOGE", "network": "eip155:5", "decimals": 9, "contract": "0x" + "22" * 20}
            ),
            "decimals",
        ),
        (
            lambda d: d["assets"].append(
                {"symbol": "BAD SYMBOL", "network": "eip155:1", "decimals": 1, "contract": "0x" + "33" * 20}
            ),
            "symbol",
        ),
        (
            lambda d: d["assets"].append(
                {"symbol": "Z", "network": "eip155:1", "decimals": 99, "contract": "0x" + "44" * 20}
            ),
            "decimals",
        ),
        (
            lambda d: d["fees"].append(
                {"chain": "eip155:10", "asset": "ETH", "max_fee": "1", "min_gas_limit": 1, "max_gas_limit": 2}
            ),
            "not in the registry",
        ),
    ],
)
def test_malformed_registries_are_refused(mutate: Any, detail: str) -> None:
    d = _doc_json()
    mutate(d)
    assert detail in _malformed(d)


def test_a_network_fee_rule_is_in_its_native_asset() -> None:
    reg = AssetRegistry((*ASSETS.networks, POLYGON), (*ASSETS.assets, Asset("POL", "eip155:137", 18)))
    doc = policy(assets=reg, fees=(FeeRule("eip155:137", "POL", 10**17, 21000, 100_000),))
    assert doc.fee_rule("eip155:137") is not None
    with pytest.raises(PolicyError) as exc:
        policy(assets=reg, fees=(FeeRule("eip155:137", "ETH", 10**17, 21000, 100_000),))
    assert "paid in POL" in exc.value.detail


def test_check_registered_fails_closed() -> None:
    check_registered(ASSETS, intent())
    check_registered(ASSETS, intent(asset="USDC"))
    cases: list[tuple[Intent, str]] = [
        (intent(chain="eip155:137"), "unknown_network"),
        (intent(asset="POL"), "unknown_asset"),
        (intent(fee_asset="POL"), "unknown_asset"),
        (intent(asset="USDC", contract=TOKENS["DOGE"][0]), "unknown_asset"),
        (intent(asset="USDC", contract=USDC, decimals=18), "unknown_asset"),
        (intent(fee_decimals=9), "unknown_asset"),
    ]
    for i, reason in cases:
        with pytest.raises(PolicyError) as exc:
            check_registered(ASSETS, i)
        assert exc.value.reason == reason


def test_a_registry_change_is_never_a_tightening() -> None:
    smaller = AssetRegistry(ASSETS.networks, tuple(a for a in ASSETS.assets if a.symbol != "DOGE"))
    assert not policy_is_tightening(policy(), policy(assets=smaller))
    assert policy_is_tightening(policy(), policy())


@pytest.mark.parametrize(
    "when,detail",
    [
        ({"kinds": ["payout"]}, "kinds are"),
        ({"contracts": ["0x" + "11" * 20]}, "only apply to approval"),
        ({"kinds": ["approval"], "selectors": ["0x095ea7b3"]}, "only apply to contract_call"),
        ({"kinds": ["contract_call"], "contracts": ["0x" + "11" * 20]}, "must name its contracts and selectors"),
        ({"kinds": ["contract_call"], "contracts": ["0x" + "11" * 20], "selectors": ["12aa3caf"]}, "8 lower-case"),
        ({"kinds": ["approval"], "contracts": ["not an address"]}, "destination list"),
    ],
)
def test_call_conditions_are_validated(when: dict[str, Any], detail: str) -> None:
    d = _doc_json()
    d["rules"].insert(0, {"id": "new", "when": when, "action": {"type": "allow"}})
    assert detail in _malformed(d)


def test_call_conditions_round_trip_and_change_the_hash() -> None:
    rule = Rule(
        "swap",
        Condition(kinds=frozenset({"contract_call"}), contracts=frozenset({USDC}), selectors=frozenset({"0x12aa3caf"})),
        Action("allow"),
    )
    doc = policy(rules=(rule, *policy().rules))
    assert PolicyDocument.from_json(doc.to_json()) == doc
    assert doc.hash() != policy().hash()


def test_rules_without_kinds_match_transfers_only() -> None:
    c = Condition()
    assert c.matches("ETH", 1, "allowed", "b", "k", ("withdrawal", "", ""))
    assert c.matches("ETH", 1, "cold", "b", "k", ("cold_sweep", "", ""))
    assert not c.matches("USDC", 1, "allowed", "b", "k", ("approval", USDC, ""))
    assert not c.matches("ETH", 0, "allowed", "b", "k", ("contract_call", USDC, "0x12aa3caf"))
    assert Condition(kinds=frozenset({"approval"})).matches("USDC", 1, "allowed", "b", "k", ("approval", USDC, ""))


def test_the_default_registry_is_what_was_signed_before() -> None:
    assert {n.network_id: n.native for n in DEFAULT_ASSETS.networks} == {
        "eip155:1": "ETH",
        "eip155:5": "ETH",
        "eip155:11155111": "ETH",
    }
    assert all(a.symbol == "ETH" and a.decimals == 18 and not a.contract for a in DEFAULT_ASSETS.assets)
