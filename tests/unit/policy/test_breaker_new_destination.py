"""The `new_destination` circuit breaker (signer/policy/breaker.py): a destination first paid within
the window trips on its payout past `max_count`, and not at it; established and cold destinations,
approvals and destinations paid before the last unfreeze are not counted; a signer trips at its fair
share; the ledger keeps first-paid times across its storage form, also for ledgers written before."""

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
    check_policy_breakers,
    check_release,
)
from signer.policy.intent import APPROVE
from signer.policy.limits import LEDGER_TAG
from signer.tss.encoding import decode, encode
from tests.unit.policy.support import BACKEND, COLD, ETH, STRANGER, T0, intent, policy, registry

NOW = T0 + 600
RULE = BreakerRule("fresh-1h", "", 3600, kind="new_destination", max_count=3)
SMALL = ETH // 20


def _doc(*rules: BreakerRule) -> PolicyDocument:
    return policy(breakers=rules or (RULE,))


def _paid(ledger: Ledger, destination: str, *times: int) -> Ledger:
    for n, at in enumerate(times):
        ledger.record_spend(intent(request_id=f"paid-{destination[-4:]}-{at}-{n}", destination=destination), at)
    return ledger


def _check(doc: PolicyDocument, ledger: Ledger, destination: str = STRANGER, *, reset_at: int = 0, **kw: object):  # type: ignore[no-untyped-def]
    request = intent(doc, amount=SMALL, destination=destination, **kw)
    return check_policy_breakers(doc, ledger, request, now=NOW, reset_at=reset_at)


def test_round_trips_through_json_and_is_validated() -> None:
    doc = _doc()
    assert json.loads(doc.to_json())["breakers"] == [
        {"id": "fresh-1h", "kind": "new_destination", "window": 3600, "max_count": 3}
    ]
    parsed = PolicyDocument.from_json(doc.to_json())
    assert parsed == doc and parsed.hash() == doc.hash()
    for bad in (dataclasses.replace(RULE, max_count=0), dataclasses.replace(RULE, asset="ETH")):
        with pytest.raises(PolicyError) as e:
            _doc(bad)
        assert e.value.reason == "policy_malformed" and "new_destination" in e.value.detail
    assert _doc(dataclasses.replace(RULE, max_count=2)).is_tightening_of(_doc())
    assert not _doc(dataclasses.replace(RULE, max_count=4)).is_tightening_of(_doc())
    assert not policy().is_tightening_of(_doc())


def test_trips_on_the_payout_past_max_count_and_not_at_it() -> None:
    doc = _doc()
    assert _check(doc, Ledger()) is None  # the first payout to a new destination
    assert _check(doc, _paid(Ledger(), STRANGER, NOW - 30, NOW - 20)) is None  # the third
    trip = _check(doc, _paid(Ledger(), STRANGER, NOW - 30, NOW - 20, NOW - 10))  # the fourth
    assert trip is not None and trip.reason == "breaker_tripped:fresh-1h"
    assert trip.figures() == {
        "rule_id": "fresh-1h",
        "key_id": "hot",
        "kind": "new_destination",
        "window": 3600,
        "destination": STRANGER,
        "payouts": 4,
        "threshold": 3,
    }
    assert STRANGER in trip.detail() and "4 payouts" in trip.detail()


def test_a_destination_first_paid_before_the_window_or_the_unfreeze_is_not_new() -> None:
    doc = _doc()
    established = _paid(Ledger(), STRANGER, NOW - 3600, NOW - 30, NOW - 20, NOW - 10)
    assert _check(doc, established) is None  # first paid exactly a window ago
    fresh = _paid(Ledger(), STRANGER, NOW - 3599, NOW - 30, NOW - 20, NOW - 10)
    assert _check(doc, fresh) is not None
    assert _check(doc, fresh, reset_at=NOW - 3599) is None  # the officers unfroze after its first payout
    assert _check(doc, fresh, reset_at=NOW - 3600) is not None


def test_other_destinations_cold_addresses_and_approvals_are_not_counted() -> None:
    doc = _doc()
    busy = _paid(Ledger(), STRANGER, NOW - 40, NOW - 30, NOW - 20, NOW - 10)
    assert _check(doc, busy, COLD) is None
    assert _check(doc, _paid(Ledger(), COLD, NOW - 40, NOW - 30, NOW - 20, NOW - 10), COLD) is None
    assert _check(doc, busy, STRANGER, call=APPROVE) is None  # an approval pays nothing out


def test_a_signer_trips_at_its_fair_share() -> None:
    # 2-of-3: floor(3 × 2 / 3) = 2 payouts of its own.
    doc = _doc()
    request = intent(doc, amount=SMALL, destination=STRANGER)
    one = _paid(Ledger(), STRANGER, NOW - 10)
    assert check_policy_breakers(doc, one, request, now=NOW, reset_at=0, share=(2, 3)) is None
    two = _paid(Ledger(), STRANGER, NOW - 20, NOW - 10)
    trip = check_policy_breakers(doc, two, request, now=NOW, reset_at=0, share=(2, 3))
    assert trip is not None and trip.threshold == 2


def test_check_release_raises_the_trip() -> None:
    doc = _doc(RULE)
    ledger = _paid(Ledger(), STRANGER, NOW - 30, NOW - 20, NOW - 10)
    request = intent(doc, amount=SMALL, destination=STRANGER)
    with pytest.raises(BreakerTripped) as e:
        check_release(
            policy=doc,
            registry=registry(),
            freeze=FreezeState(),
            intent=request,
            ledger=ledger,
            approvals=(),
            now=NOW,
            initiator=BACKEND,
            share=(1, 1),
            kind="withdrawal",
        )
    assert e.value.reason == "breaker_tripped:fresh-1h"


def test_first_paid_times_survive_the_storage_form_and_old_ledgers_are_not_new() -> None:
    ledger = _paid(Ledger(), STRANGER, NOW - 30, NOW - 20)
    copy = Ledger.from_bytes(ledger.to_bytes())
    assert copy.first_paid(STRANGER) == NOW - 30 and copy.withdrawals_to(STRANGER) == 2
    # A ledger written before first-paid times were kept: the oldest spend held, else "long ago".
    spends, requests, counts, spent, _ = decode(LEDGER_TAG, ledger.to_bytes(), 5)
    legacy = Ledger.from_bytes(encode(LEDGER_TAG, spends, requests, counts, spent))
    assert legacy.first_paid(STRANGER) == NOW - 30
    legacy = Ledger.from_bytes(encode(LEDGER_TAG, [], requests, counts, spent))
    assert legacy.first_paid(STRANGER) == 0
