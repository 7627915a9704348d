"""Circuit-breaker rules (signer/policy/breaker.py): the document form, the trip at the threshold
and not below, the fair share, the reset by an unfreeze, tightening, and the breaker's freeze."""

from __future__ import annotations

import dataclasses
import json

import pytest

from signer.policy import (
    BreakerRule,
    BreakerTripped,
    FreezeState,
    Ledger,
    PolicyDocument,
    PolicyError,
    RefusalCounter,
    UnfreezeOrder,
    check_breakers,
    check_release,
)
from tests.unit.policy.support import BACKEND, ETH, T0, intent, key, policy, registry

NOW = T0 + 60
RULE = BreakerRule("eth-5min", "ETH", 300, ETH // 2)
SMALL = ETH // 20  # automatic tier (script-small), 0.05 ETH
FEE = 50 * 10**9 * 21000


def _doc(*rules: BreakerRule) -> PolicyDocument:
    return policy(breakers=rules or (RULE,))


def _ledger(*outflows: int, at: int = NOW - 10) -> Ledger:
    """Releases from `hot` whose outflow (amount + worst-case fee) is each of `outflows`."""
    ledger = Ledger()
    for n, outflow in enumerate(outflows):
        ledger.record_spend(intent(request_id=f"old-{n}", key_id="hot", amount=outflow - FEE), at)
    return ledger


def test_breakers_round_trip_through_json_and_change_the_hash() -> None:
    doc = _doc()
    assert json.loads(doc.to_json())["breakers"] == [
        {"id": "eth-5min", "asset": "ETH", "window": 300, "max_amount": str(ETH // 2)}
    ]
    assert PolicyDocument.from_json(doc.to_json()) == doc
    assert PolicyDocument.from_json(doc.to_json()).hash() == doc.hash() != policy().hash()
    assert _doc(dataclasses.replace(RULE, max_amount=ETH)).hash() != doc.hash()


@pytest.mark.parametrize(
    ("rule", "detail"),
    [
        (BreakerRule("b", "ETH", 0, 1), "window"),
        (BreakerRule("b", "ETH", 86401, 1), "window"),
        (BreakerRule("b", "ETH", 300, 0), "max_amount"),
        (BreakerRule("", "ETH", 300, 1), "an id"),
    ],
)
def test_malformed_breakers_are_refused(rule: BreakerRule, detail: str) -> None:
    with pytest.raises(PolicyError) as e:
        _doc(rule)
    assert e.value.reason == "policy_malformed" and detail in e.value.detail


def test_trips_above_the_threshold_and_not_at_it() -> None:
    # 0.5 ETH threshold: 0.4 ETH released, this one costs 0.05 ETH + fee.
    at_threshold = ETH // 2 - SMALL - FEE
    assert check_breakers((RULE,), _ledger(at_threshold), intent(amount=SMALL), now=NOW, reset_at=0) is None
    trip = check_breakers((RULE,), _ledger(at_threshold + 1), intent(amount=SMALL), now=NOW, reset_at=0)
    assert trip is not None and trip.reason == "breaker_tripped:eth-5min"
    assert (trip.outflow, trip.cost, trip.threshold) == (at_threshold + 1, SMALL + FEE, ETH // 2)
    assert trip.figures()["threshold"] == str(ETH // 2)


def test_only_the_window_counts_and_an_unfreeze_resets_it() -> None:
    big = _ledger(ETH // 2, at=NOW - 301)
    assert check_breakers((RULE,), big, intent(amount=SMALL), now=NOW, reset_at=0) is None
    recent = _ledger(ETH // 2, at=NOW - 100)
    assert check_breakers((RULE,), recent, intent(amount=SMALL), now=NOW, reset_at=0) is not None
    assert check_breakers((RULE,), recent, intent(amount=SMALL), now=NOW, reset_at=NOW - 100) is None
    assert check_breakers((RULE,), recent, intent(amount=SMALL), now=NOW, reset_at=NOW - 101) is not None


def test_a_signer_trips_at_its_fair_share() -> None:
    # 2-of-3: a signer trips past floor(0.5 ETH × 2 / 3) of its own outflow.
    share = ETH // 2 * 2 // 3
    fits = _ledger(share - SMALL - FEE)
    assert check_breakers((RULE,), fits, intent(amount=SMALL), now=NOW, reset_at=0, share=(2, 3)) is None
    over = _ledger(share - SMALL - FEE + 1)
    trip = check_breakers((RULE,), over, intent(amount=SMALL), now=NOW, reset_at=0, share=(2, 3))
    assert trip is not None and trip.threshold == share


def test_other_assets_and_keys_are_not_counted() -> None:
    usdc_rule = BreakerRule("usdc", "USDC", 300, 1)
    assert check_breakers((usdc_rule,), _ledger(ETH), intent(amount=SMALL), now=NOW, reset_at=0) is None
    other_key = intent(amount=SMALL, key_id="other")
    assert check_breakers((RULE,), _ledger(ETH), other_key, now=NOW, reset_at=0) is None


def test_check_release_raises_the_trip_and_a_frozen_key_is_frozen() -> None:
    doc = _doc()
    ledger = _ledger(ETH // 2)
    args = dict(policy=doc, registry=registry(), ledger=ledger, approvals=(), now=NOW, initiator=BACKEND)
    with pytest.raises(BreakerTripped) as e:
        check_release(freeze=FreezeState(), intent=intent(doc, amount=SMALL), share=(1, 1), kind="withdrawal", **args)  # type: ignore[arg-type]
    assert e.value.reason == "breaker_tripped:eth-5min"
    frozen = FreezeState().trip("hot", "breaker:eth-5min", NOW)
    with pytest.raises(PolicyError) as e2:
        check_release(freeze=frozen, intent=intent(doc, amount=1), share=(1, 1), kind="withdrawal", **args)  # type: ignore[arg-type]
    assert e2.value.reason == "frozen"


def test_tightening_keeps_every_breaker_no_higher() -> None:
    doc = _doc()
    assert _doc(dataclasses.replace(RULE, max_amount=ETH // 4)).is_tightening_of(doc)
    assert _doc(RULE, BreakerRule("more", "ETH", 60, ETH)).is_tightening_of(doc)
    assert doc.is_tightening_of(policy())  # adding a breaker
    assert not policy().is_tightening_of(doc)  # dropping one
    assert not _doc(dataclasses.replace(RULE, max_amount=ETH)).is_tightening_of(doc)
    assert not _doc(dataclasses.replace(RULE, window=60)).is_tightening_of(doc)


def _unfreeze(lifts: int, issued_at: int, *officers: str) -> UnfreezeOrder:
    order = UnfreezeOrder("hot", lifts, issued_at)
    for o in officers:
        order = order.signed(key(o), o)
    return order


def test_a_trip_is_lifted_only_by_the_unfreeze_quorum_signed_after_it() -> None:
    tripped = FreezeState().trip("hot", "breaker:eth-5min", NOW)
    assert tripped.is_frozen("hot") and tripped.get("hot").by == "breaker:eth-5min"  # type: ignore[union-attr]
    assert tripped.trip("hot", "breaker:other", NOW + 5) == tripped  # already frozen: the first trip stays
    with pytest.raises(PolicyError) as e:
        tripped.apply_unfreeze(registry(), _unfreeze(NOW, NOW + 10, "alice"), NOW + 10, 2)
    assert e.value.reason == "unfreeze_quorum_not_met"
    with pytest.raises(PolicyError) as e:
        tripped.apply_unfreeze(registry(), _unfreeze(NOW - 5, NOW - 1, "alice", "bob"), NOW + 10, 2)
    assert e.value.reason == "trip_after_unfreeze"
    # `lifts` names the coordinator's trip time, which may differ from this node's.
    lifted = tripped.apply_unfreeze(registry(), _unfreeze(NOW - 5, NOW + 10, "alice", "bob"), NOW + 10, 2)
    assert not lifted.is_frozen("hot") and lifted.reset_at("hot") == NOW + 10
    again = lifted.trip("hot", "breaker:eth-5min", NOW + 10)
    assert again.get("hot").at == NOW + 11  # type: ignore[union-attr]
    with pytest.raises(PolicyError) as e:  # the old unfreeze cannot lift the later trip
        again.apply_unfreeze(registry(), _unfreeze(NOW - 5, NOW + 10, "alice", "bob"), NOW + 20, 2)
    assert e.value.reason == "trip_after_unfreeze"


def test_a_trip_and_its_unfreeze_leave_the_shared_transition_and_round_trip() -> None:
    # What a signer attests of its freeze state (a peer holding more is ahead of it).
    from signer.node.state_version import freeze_seq

    tripped = FreezeState().trip("hot", "breaker:eth-5min", NOW)
    lifted = tripped.apply_unfreeze(registry(), _unfreeze(0, NOW + 10, "alice", "bob"), NOW + 10, 2)
    assert freeze_seq(tripped) == freeze_seq(lifted) == freeze_seq(FreezeState()) == 0
    for state in (tripped, lifted):
        assert FreezeState.from_bytes(state.to_bytes()) == state


REFUSALS_RULE = BreakerRule("refusals-10min", "", 600, kind="refusals", max_count=3)


def test_a_refusals_rule_round_trips_and_is_validated() -> None:
    doc = _doc(RULE, REFUSALS_RULE)
    assert {"id": "refusals-10min", "kind": "refusals", "window": 600, "max_count": 3} in json.loads(doc.to_json())[
        "breakers"
    ]
    assert (
        PolicyDocument.from_json(doc.to_json()) == doc and PolicyDocument.from_json(doc.to_json()).hash() == doc.hash()
    )
    for bad in (
        dataclasses.replace(REFUSALS_RULE, max_count=0),
        dataclasses.replace(REFUSALS_RULE, asset="ETH"),
        dataclasses.replace(REFUSALS_RULE, kind="bursts"),
        dataclasses.replace(RULE, max_count=1),
    ):
        with pytest.raises(PolicyError) as e:
            _doc(bad)
        assert e.value.reason == "policy_malformed"
    assert _doc(dataclasses.replace(REFUSALS_RULE, max_count=2)).is_tightening_of(_doc(REFUSALS_RULE))
    assert not _doc(dataclasses.replace(REFUSALS_RULE, max_count=4)).is_tightening_of(_doc(REFUSALS_RULE))


def test_refusals_trip_past_max_count_within_the_window_and_not_at_it() -> None:
    counter = RefusalCounter()
    rules = (RULE, REFUSALS_RULE)
    for n in range(3):
        assert counter.note(rules, "hot", "limit_exceeded:eth-24h", now=NOW + n, reset_at=0) is None
    assert counter.note(rules, "hot", "frozen", now=NOW + 3, reset_at=0) is None  # not counted
    assert counter.note(rules, "hot", "policy_mismatch", now=NOW + 3, reset_at=0) is None
    assert counter.note(rules, "other", "bad_signature", now=NOW + 3, reset_at=0) is None  # another key
    trip = counter.note(rules, "hot", "bad_signature", now=NOW + 4, reset_at=0)
    assert trip is not None and trip.reason == "breaker_tripped:refusals-10min"
    assert trip.figures() == {
        "rule_id": "refusals-10min",
        "key_id": "hot",
        "kind": "refusals",
        "window": 600,
        "refusals": 4,
        "threshold": 3,
    }
    # Counted afresh after an unfreeze, and only within the window.
    assert counter.note(rules, "hot", "bad_signature", now=NOW + 5, reset_at=NOW + 4) is None
    # Every refusal is counted by its reason (the metrics), anomalies or not, breakers or none.
    assert counter.note((), "cold", "no_policy", now=NOW + 5, reset_at=0) is None
    assert counter.by_reason() == {
        "limit_exceeded:eth-24h": 3,
        "frozen": 1,
        "policy_mismatch": 1,
        "bad_signature": 3,
        "no_policy": 1,
    }
    later = RefusalCounter()
    for n in range(4):
        assert later.note(rules, "hot", "rule_block", now=NOW + n * 200, reset_at=0) is None


def test_an_aborts_rule_counts_protocol_aborts_only() -> None:
    aborts = BreakerRule("aborts-1h", "", 3600, kind="aborts", max_count=2)
    doc = _doc(aborts)
    assert PolicyDocument.from_json(doc.to_json()) == doc
    written = json.loads(doc.to_json())["breakers"]
    assert {"id": "aborts-1h", "kind": "aborts", "window": 3600, "max_count": 2} in written
    counter = RefusalCounter()
    rules = (aborts, REFUSALS_RULE)
    for n in range(3):  # refusals count toward the refusals rule only
        assert counter.note(rules, "hot", "rule_block", now=NOW + n, reset_at=0) is None
    for n in range(2):
        assert counter.note(rules, "hot", "protocol_abort", now=NOW + 10 + n, reset_at=0) is None
    trip = counter.note(rules, "hot", "protocol_abort", now=NOW + 20, reset_at=0)
    assert trip is not None and trip.reason == "breaker_tripped:aborts-1h"
    assert trip.figures() == {
        "rule_id": "aborts-1h",
        "key_id": "hot",
        "kind": "aborts",
        "window": 3600,
        "aborts": 3,
        "threshold": 2,
    }
    # A signer's release check ignores it: only the coordinator sees every abort.
    assert check_breakers(rules, _ledger(ETH), intent(amount=SMALL), now=NOW, reset_at=0) is None
