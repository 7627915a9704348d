from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from signer.policy import (
    Action,
    AllOf,
    AnyOf,
    Condition,
    Group,
    Limit,
    PolicyDocument,
    PolicyError,
    Rule,
    describe_expr,
)
from tests.unit.policy.support import ALLOWED, COLD, COOLING, DENIED, STRANGER, T0, policy


def _json() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(policy().to_json())
    return loaded


def _parse(d: dict[str, Any]) -> PolicyDocument:
    return PolicyDocument.from_json(json.dumps(d))


def test_json_round_trip() -> None:
    doc = policy()
    assert PolicyDocument.from_json(doc.to_json()) == doc


def test_hash_is_over_the_parsed_document_not_json_bytes() -> None:
    doc = policy()
    d = _json()
    compact = json.dumps(d, sort_keys=True, separators=(",", ":"))
    d["destinations"]["allow"] = list(reversed(d["destinations"]["allow"]))  # list order of a set
    d["destinations"]["deny"] = [a.lower() for a in d["destinations"]["deny"]]  # address spelling
    d["limits"][0]["max_amount"] = int(d["limits"][0]["max_amount"])  # number vs string
    assert PolicyDocument.from_json(compact).hash() == doc.hash()
    assert _parse(d).hash() == doc.hash()


def test_hash_covers_rule_order_and_every_part() -> None:
    doc = policy()
    variants = [
        dataclasses.replace(doc, rules=(doc.rules[1], doc.rules[0], *doc.rules[2:])),
        dataclasses.replace(doc, version=2),
        dataclasses.replace(doc, cooldown=doc.cooldown + 1),
        dataclasses.replace(doc, limits=doc.limits[1:]),
        dataclasses.replace(doc, deny=frozenset()),
        dataclasses.replace(doc, cold=()),
        dataclasses.replace(doc, trust_ramp=None),
        dataclasses.replace(doc, unfreeze_quorum=3),
        dataclasses.replace(doc, change_delay=1),
        dataclasses.replace(doc, previous_hash=bytes(32)),
    ]
    assert len({v.hash() for v in variants} | {doc.hash()}) == len(variants) + 1


def test_destination_classes_and_cool_down() -> None:
    doc = policy()
    assert doc.destination_class(DENIED, T0) == "denied"
    assert doc.destination_class(COLD, T0) == "cold"
    assert doc.destination_class(ALLOWED, T0) == "allowed"
    assert doc.destination_class(STRANGER, T0) == "unlisted"
    assert doc.destination_class(COOLING, T0 + 86399) == "unlisted"  # still cooling down
    assert doc.destination_class(COOLING, T0 + 86400) == "allowed"


def test_describe_expr() -> None:
    expr = AllOf((Group("officers", 2), AnyOf((Group("risk", 1), Group("treasury", 1)))))
    assert describe_expr(expr) == "2 of officers AND (1 of risk OR 1 of treasury)"


def _set(path: str, value: object) -> dict[str, Any]:
    d = _json()
    *parents, last = path.split(".")
    node: Any = d
    for p in parents:
        node = node[int(p)] if p.isdigit() else node[p]
    if value is KeyError:
        del node[last]
    else:
        node[int(last) if last.isdigit() else last] = value
    return d


@pytest.mark.parametrize(
    "path,value",
    [
        ("surprise", 1),
        ("version", 0),
        ("version", "1"),
        ("rules.0.when.colour", "red"),
        ("rules.0.action.type", "maybe"),
        ("rules.1.when.destinations", ["cold", "denied"]),
        ("rules.1.when.assets", []),
        ("rules.2.action.time_lock", 60),  # a time lock without approvals
        ("rules.1.action.approvals", {"group": "officers", "k": 0}),
        ("rules.1.action.approvals", {"all": []}),
        ("rules.1.action.approvals", {"group": "officers"}),
        ("rules.0.action.approvals", {"group": "officers", "k": 1}),  # block with approvals
        ("rules.3.action.approvals", KeyError),  # require without approvals
        ("rules.2.when.amount_min", "1000000000000000000000"),  # min above max
        ("rules.2.when.amount_max", "-5"),
        ("rules.2.when.amount_max", 1.5),
        ("rules.1.id", "ops-key-blocked"),  # duplicate rule id
        ("limits.0.window", 60),  # per-transaction limit with a window
        ("limits.1.window", KeyError),  # rolling limit without a window
        ("limits.4.asset", "ETH"),  # rate limit with an asset
        ("limits.4.scope", "per_moon"),
        ("destinations.deny", ["not-an-address"]),
        ("destinations.allow.0.address", "0x" + "Ab" * 20),  # bad EIP-55 checksum
        ("trust_ramp.first", 0),
        ("previous_hash", "zz"),
        ("rules.1.action.approvals", {"all": [{"any": [{"all": [{"any": [{"all": [{"group": "g", "k": 1}]}]}]}]}]}),
    ],
)
def test_malformed_document_refused(path: str, value: object) -> None:
    with pytest.raises(PolicyError) as exc:
        _parse(_set(path, value))
    assert exc.value.reason == "policy_malformed"


def test_deeply_nested_json_refused_cleanly() -> None:
    with pytest.raises(PolicyError) as exc:
        PolicyDocument.from_json("[" * 100_000 + "]" * 100_000)
    assert exc.value.reason == "policy_malformed"


def test_duplicate_list_entries_refused() -> None:
    d = _json()
    d["destinations"]["cold"].append(d["destinations"]["cold"][0])
    with pytest.raises(PolicyError, match="duplicate"):
        _parse(d)


def test_built_documents_are_validated_too() -> None:
    with pytest.raises(PolicyError):
        PolicyDocument(1, (Rule("r", Condition(), Action("allow", time_lock=5)),))
    with pytest.raises(PolicyError):
        PolicyDocument(1, (), limits=(Limit("x", "client_rate", window=60, max_count=0),))
    with pytest.raises(PolicyError):
        PolicyDocument(1, (Rule("r", Condition(amount_min=5, amount_max=4), Action("block")),))
