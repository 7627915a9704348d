"""Request kinds: a withdrawal follows the rules; a cold sweep only goes to a cold address."""

from __future__ import annotations

import pytest

from signer.policy import (
    APPROVAL,
    COLD_SWEEP,
    CONTRACT_CALL,
    NOT_COLD,
    REPLACEMENT,
    REQUEST_KINDS,
    WITHDRAWAL,
    FreezeState,
    Ledger,
    PolicyError,
    check_kind,
    check_kind_rule,
    check_release,
    evaluate,
    sign_approval,
)
from tests.unit.policy.support import ALLOWED, BACKEND, COLD, ETH, T0, intent, key, policy, registry

NOW = T0 + 60


def test_the_kinds() -> None:
    assert REQUEST_KINDS == (WITHDRAWAL, COLD_SWEEP, APPROVAL, CONTRACT_CALL, REPLACEMENT)
    assert REQUEST_KINDS == ("withdrawal", "cold_sweep", "approval", "contract_call", "replacement")
    for kind in REQUEST_KINDS:
        check_kind(kind)
    with pytest.raises(PolicyError) as exc:
        check_kind("transfer")
    assert exc.value.reason == "kind_invalid"


def test_cold_sweep_only_to_a_cold_address() -> None:
    check_kind_rule(policy(), intent(destination=COLD), COLD_SWEEP, NOW)
    check_kind_rule(policy(), intent(destination=ALLOWED), WITHDRAWAL, NOW)
    with pytest.raises(PolicyError) as exc:
        check_kind_rule(policy(), intent(destination=ALLOWED), COLD_SWEEP, NOW)
    assert exc.value.reason == NOT_COLD == "sweep_destination_not_cold"
    assert ALLOWED in exc.value.detail
    with pytest.raises(PolicyError) as exc:
        check_kind_rule(policy(), intent(destination="not an address"), COLD_SWEEP, NOW)
    assert exc.value.reason == "undecodable_destination"


def test_evaluate_takes_the_kind() -> None:
    def decide(destination: str, kind: str) -> tuple[str, str]:
        d = evaluate(policy(), registry(), intent(destination=destination), {}, Ledger(), NOW, BACKEND, kind=kind)
        return d.action, d.reason

    assert decide(ALLOWED, COLD_SWEEP) == ("block", NOT_COLD)
    assert decide(ALLOWED, "transfer") == ("block", "kind_invalid")
    # To a cold address the sweep meets the rules like any request (here: one officer).
    assert decide(COLD, COLD_SWEEP) == ("require", "approvals_pending")
    assert decide(COLD, WITHDRAWAL) == ("require", "approvals_pending")
    blocked = evaluate(policy(), registry(), intent(destination=ALLOWED), {}, Ledger(), NOW, BACKEND, kind=COLD_SWEEP)
    assert "registered cold address" in blocked.detail


def test_check_release_takes_the_kind() -> None:
    i = intent(destination=ALLOWED, amount=ETH // 100)
    approvals = [sign_approval(key(n), n, i, T0) for n in ("alice", "bob")]

    def release(kind: str) -> None:
        check_release(
            policy=policy(),
            registry=registry(),
            freeze=FreezeState(),
            ledger=Ledger(),
            intent=i,
            approvals=approvals,
            now=NOW,
            initiator=BACKEND,
            share=(1, 1),
            kind=kind,
        )

    for kind, reason in ((COLD_SWEEP, NOT_COLD), ("transfer", "kind_invalid")):
        with pytest.raises(PolicyError) as exc:
            release(kind)
        assert exc.value.reason == reason
