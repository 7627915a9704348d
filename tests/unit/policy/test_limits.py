from __future__ import annotations

import pytest

from signer.policy import Decision, Intent, Ledger, PolicyError, evaluate
from tests.unit.policy.support import ALLOWED, BACKEND, COLD, ETH, FEE, STRANGER, T0, intent, policy, registry

DAY = 86400
APPROVED = {"alice": T0, "bob": T0, "carol": T0}  # meets every rule of the test policy


def _ledger(*spends: tuple[int, str, str, int]) -> Ledger:
    """Spends of (at, key, destination, amount); every destination already past its trust ramp."""
    ledger = Ledger()
    for n, d in enumerate((ALLOWED, STRANGER) * 2):
        ledger.record_spend(intent(request_id=f"ramp-{n}", destination=d, amount=1, key_id="other"), T0 - 60 * DAY)
    for n, (at, key_id, dest, amount) in enumerate(spends):
        ledger.record_spend(intent(request_id=f"s{n}", key_id=key_id, destination=dest, amount=amount), at)
    return ledger


def _eval(i: Intent, ledger: Ledger, now: int, initiator: str = BACKEND) -> Decision:
    return evaluate(policy(), registry(), i, APPROVED, ledger, now, initiator)


def _big(amount: int, at: int, **kw: object) -> Intent:
    return intent(amount=amount, expires_at=at + 10 * DAY, **kw)


def test_per_transaction_limit() -> None:
    ledger = _ledger()
    assert _eval(_big(100 * ETH, T0), ledger, T0 + 3600).reason == "approved"
    assert _eval(_big(100 * ETH + 1, T0), ledger, T0 + 3600).reason == "limit_exceeded:eth-tx"


def test_24h_window_rolls() -> None:
    t = T0 + 100 * DAY
    ledger = _ledger((t, "hot", COLD, 100 * ETH))
    i = _big(60 * ETH, t, destination=COLD)
    assert _eval(i, ledger, t + DAY - 1).reason == "limit_exceeded:eth-24h"
    assert _eval(i, ledger, t + DAY).reason == "approved"
    # Fees count: 100 ETH + FEE spent, so 50 ETH - 2 FEE (+ its own FEE) is exactly at the limit.
    assert _eval(_big(50 * ETH - 2 * FEE, t, destination=COLD), ledger, t + 10).reason == "approved"
    assert _eval(_big(50 * ETH - 2 * FEE + 1, t, destination=COLD), ledger, t + 10).reason == "limit_exceeded:eth-24h"
    assert _eval(_big(60 * ETH, t, key_id="hot2", destination=COLD), ledger, t + 10).reason == "approved"  # other key


def test_30d_window_rolls() -> None:
    t = T0 + 100 * DAY
    ledger = _ledger(*((t + n * 2 * DAY, "hot", COLD, 100 * ETH) for n in range(4)))  # 400 ETH over 6 days
    later = t + 8 * DAY
    assert _eval(_big(ETH, later, destination=COLD), ledger, later).reason == "limit_exceeded:eth-30d"
    assert _eval(_big(ETH, t + 30 * DAY, destination=COLD), ledger, t + 30 * DAY).reason == "approved"  # first one left


def test_per_destination_limit_across_keys() -> None:
    t = T0 + 100 * DAY
    ledger = _ledger((t, "k1", STRANGER, 100 * ETH))
    assert _eval(_big(21 * ETH, t, key_id="k2", destination=STRANGER), ledger, t + 60).reason == (
        "limit_exceeded:eth-dest-24h"
    )
    assert _eval(_big(20 * ETH - 2 * FEE, t, key_id="k2", destination=STRANGER), ledger, t + 60).reason == "approved"
    assert _eval(_big(20 * ETH - 2 * FEE + 1, t, key_id="k2", destination=STRANGER), ledger, t + 60).reason == (
        "limit_exceeded:eth-dest-24h"
    )
    # The per-destination limit is restricted to allowed/unlisted destinations: cold sweeps are exempt.
    cold = _ledger((t, "k1", COLD, 100 * ETH))
    assert _eval(_big(90 * ETH, t, key_id="k2", destination=COLD), cold, t + 60).reason == "approved"


def test_request_rate_per_client() -> None:
    t = T0 + 100 * DAY
    ledger = _ledger()
    for n in range(3):
        ledger.record_request(BACKEND, f"r{n}", t + n)
    new = intent(request_id="r3", amount=ETH // 10, expires_at=t + DAY)
    assert _eval(new, ledger, t + 10).reason == "limit_exceeded:rate"
    assert _eval(new, ledger, t + 10, initiator="backend-2").reason != "limit_exceeded:rate"
    assert _eval(intent(request_id="r2", expires_at=t + DAY), ledger, t + 10).reason == "approved"  # itself not counted
    assert _eval(new, ledger, t + 60).reason == "allowed"  # r0 left the window
    ledger.record_request(BACKEND, "r2", t + 30)  # idempotent per request id
    assert ledger.requests_by(BACKEND, 60, t + 30) == 3


def test_trust_ramp_caps_first_withdrawals_to_a_destination() -> None:
    fresh = Ledger()
    i = intent(destination=STRANGER, amount=5 * ETH + 1)
    assert _eval(i, fresh, T0 + 60).reason == "trust_ramp_exceeded"
    assert _eval(intent(destination=STRANGER, amount=5 * ETH), fresh, T0 + 60).reason == "approved"
    fresh.record_spend(intent(request_id="a", destination=STRANGER, amount=ETH), T0 - 10 * DAY)
    assert _eval(i, fresh, T0 + 60).reason == "trust_ramp_exceeded"
    fresh.record_spend(intent(request_id="b", destination=STRANGER.lower(), amount=ETH), T0 - 9 * DAY)
    assert _eval(i, fresh, T0 + 60).reason == "approved"  # two withdrawals done (spelling-independent)
    assert _eval(intent(destination=COLD, amount=50 * ETH), Ledger(), T0 + 60).reason == "approved"  # not for cold


def test_ledger_refuses_a_second_spend_of_the_same_request() -> None:
    ledger = Ledger()
    ledger.record_spend(intent(), T0)
    with pytest.raises(PolicyError) as exc:
        ledger.record_spend(intent(), T0 + 1)
    assert exc.value.reason == "request_replayed"


def test_ledger_round_trip_and_prune() -> None:
    ledger = _ledger((T0, "hot", STRANGER, 3 * ETH), (T0 + DAY, "hot", ALLOWED, 4 * ETH))
    ledger.record_request(BACKEND, "x", T0)
    again = Ledger.from_bytes(ledger.to_bytes())
    assert again.to_bytes() == ledger.to_bytes()
    assert again.spent("hot", "ETH", 2 * DAY, T0 + DAY) == 7 * ETH + 2 * FEE
    assert again.spent_to(STRANGER, "ETH", DAY, T0 + 1) == 3 * ETH + FEE
    ledger.prune(T0 + 2 * DAY, keep=DAY + 1)
    assert ledger.spent("hot", "ETH", 100 * DAY, T0 + 2 * DAY) == 4 * ETH + FEE
    assert ledger.withdrawals_to(STRANGER) == 3  # all-time counts survive pruning
    assert not ledger.has_spent("s0")  # its intent has expired
    with pytest.raises(PolicyError) as exc:
        Ledger.from_bytes(b"\x00")
    assert exc.value.reason == "ledger_malformed"
