from __future__ import annotations

import dataclasses

import pytest

from signer.chains.ethereum import Eip1559Tx
from signer.policy import (
    ALL_KEYS,
    Approval,
    Decision,
    FreezeState,
    Governed,
    Intent,
    Ledger,
    PolicyDocument,
    PolicyError,
    check_release,
    demo_policy,
    evaluate,
    intent_from_eip1559,
    public_key_bytes,
    sign_approval,
    sign_freeze,
)
from tests.unit.policy.support import (
    ALLOWED,
    BACKEND,
    COLD,
    COOLING,
    DENIED,
    ETH,
    STRANGER,
    T0,
    TX,
    intent,
    key,
    policy,
    registry,
    signed_change,
)

NOW = T0 + 60
DAY = 86400


def _seasoned(*destinations: str) -> Ledger:
    """A ledger where each destination already received two withdrawals (past the trust ramp), long ago."""
    ledger = Ledger()
    for n, d in enumerate(destinations * 2):
        ledger.record_spend(intent(request_id=f"old-{n}", destination=d, amount=1, expires_at=T0 + 3600), T0 - 60 * DAY)
    return ledger


def _eval(
    i: Intent,
    approvals: dict[str, int] | None = None,
    *,
    ledger: Ledger | None = None,
    now: int = NOW,
    initiator: str = BACKEND,
    doc: PolicyDocument | None = None,
) -> Decision:
    return evaluate(
        doc or policy(), registry(), i, approvals or {}, ledger or _seasoned(ALLOWED, STRANGER, COOLING), now, initiator
    )


# --- tiers and actions --------------------------------------------------------------------------
def test_small_amount_from_the_backend_is_automatic() -> None:
    d = _eval(intent(amount=ETH // 10))
    assert (d.action, d.satisfied, d.reason, d.rule_id) == ("allow", True, "allowed", "script-small")
    assert d.may_sign(NOW)


def test_amount_tier_bounds_are_inclusive() -> None:
    assert _eval(intent(amount=ETH // 10 + 1)).rule_id == "allowed-medium"
    assert _eval(intent(amount=10 * ETH)).rule_id == "allowed-medium"
    assert _eval(intent(amount=10 * ETH + 1, expires_at=T0 + DAY)).rule_id == "large"


def test_initiator_condition() -> None:
    d = _eval(intent(amount=ETH // 10), initiator="backend-2")
    assert (d.rule_id, d.action, d.reason) == ("allowed-medium", "require", "approvals_pending")


def test_k_of_group() -> None:
    assert _eval(intent(), {"alice": T0}).reason == "approvals_pending"
    assert _eval(intent(), {"alice": T0, "dave": T0}).reason == "approvals_pending"  # dave is not in `officers`
    d = _eval(intent(), {"alice": T0, "bob": T0 + 1})
    assert (d.satisfied, d.reason, d.time_lock_until) == (True, "approved", 0)
    assert d.may_sign(NOW)


def test_groups_combined_with_and() -> None:
    i = intent(destination=STRANGER)
    assert _eval(i, {"alice": T0, "bob": T0}).reason == "approvals_pending"  # no one from `risk`
    assert _eval(i, {"alice": T0, "bob": T0, "dave": T0}).reason == "approved"
    assert _eval(i, {"alice": T0, "carol": T0}).reason == "approved"  # carol counts in both groups


def test_groups_combined_with_or_and_time_lock() -> None:
    i = intent(amount=20 * ETH, expires_at=T0 + DAY)
    assert _eval(i, {"alice": T0, "bob": T0 + 10}).reason == "approvals_pending"
    d = _eval(i, {"alice": T0, "bob": T0 + 10, "carol": T0 + 20})  # 3 officers (and 2 + risk) at T0+20
    assert (d.satisfied, d.reason, d.time_lock_until) == (True, "time_locked", T0 + 20 + 3600)
    assert not d.may_sign(NOW) and not d.may_sign(T0 + 3619) and d.may_sign(T0 + 3620)
    assert _eval(i, {"alice": T0, "bob": T0 + 10, "carol": T0 + 20}, now=T0 + 3620).reason == "approved"
    # The time lock runs from the earliest moment the approvals met the requirement.
    assert _eval(i, {"alice": T0, "carol": T0 + 5, "bob": T0 + 900}).time_lock_until == T0 + 5 + 3600


def test_block_rules_by_key_and_asset_and_default_block() -> None:
    assert (_eval(intent(key_id="frozen-key")).reason, _eval(intent(key_id="frozen-key")).rule_id) == (
        "rule_block",
        "ops-key-blocked",
    )
    assert _eval(intent(asset="USDC")).rule_id == "usdc-block"
    d = _eval(intent(asset="DOGE"))
    assert (d.action, d.reason, d.rule_id) == ("block", "no_matching_rule", "")


def test_cold_sweep_has_its_own_lighter_rule() -> None:
    i = intent(destination=COLD, amount=90 * ETH)  # no trust ramp or per-destination limit for cold
    assert _eval(i).reason == "approvals_pending"
    d = _eval(i, {"dave": T0})
    assert d.reason == "approvals_pending"  # dave is not an `officers` member
    assert _eval(i, {"bob": T0}).reason == "approved"


def test_new_allow_list_entry_waits_for_its_cool_down() -> None:
    i = intent(destination=COOLING, expires_at=T0 + 2 * DAY)
    assert _eval(i, {"alice": T0, "bob": T0}).rule_id == "unlisted-medium"
    assert _eval(i, {"alice": T0, "bob": T0}, now=T0 + DAY).rule_id == "allowed-medium"


# --- fail closed ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "changes,reason",
    [
        ({"destination": DENIED}, "destination_denied"),
        ({"destination": DENIED.lower()}, "destination_denied"),
        ({"destination": "0xnot-an-address"}, "undecodable_destination"),
        ({"destination": ALLOWED[:-1]}, "undecodable_destination"),
        ({"chain": "bip122:000000000019d6689c085ae165831e93"}, "undecodable_destination"),
        ({"amount": -1}, "undecodable_amount"),
        ({"max_fee_per_gas": -1}, "undecodable_amount"),
        ({"expires_at": NOW}, "intent_expired"),
        ({"policy_hash": bytes(32)}, "policy_mismatch"),
        ({"initiator": "someone-else"}, "initiator_mismatch"),
    ],
)
def test_fail_closed(changes: dict[str, object], reason: str) -> None:
    d = _eval(intent(**changes), {"alice": T0, "bob": T0, "carol": T0})
    assert (d.action, d.satisfied, d.reason) == ("block", False, reason)
    assert not d.may_sign(NOW)


def test_spent_request_id_is_refused() -> None:
    ledger = _seasoned(ALLOWED)
    ledger.record_spend(intent(), NOW)
    assert _eval(intent(), {"alice": T0, "bob": T0}, ledger=ledger).reason == "request_replayed"


def test_evaluate_ignores_approvals_from_non_members_and_the_initiator() -> None:
    assert _eval(intent(), {"alice": T0, "zed": T0}).reason == "approvals_pending"
    assert _eval(intent(), {"alice": T0, "bob": T0}, initiator="bob").reason == "approvals_pending"


# --- a signer's own check -----------------------------------------------------------------------
def _tx(**changes: object) -> Eip1559Tx:
    return dataclasses.replace(TX, **changes)  # type: ignore[arg-type]


def _signer_intent(tx: Eip1559Tx, policy_hash: bytes | None = None) -> Intent:
    """What a signer rebuilds from the body it was sent plus the request metadata."""
    return intent_from_eip1559(
        tx,
        key_id="hot",
        path=(0, 7),
        request_id="req-1",
        policy_hash=policy_hash or policy().hash(),
        expires_at=T0 + 3600,
    )


def _release(i: Intent, approvals: list[Approval], *, freeze: FreezeState | None = None, now: int = NOW) -> Decision:
    return check_release(
        policy=policy(),
        registry=registry(),
        freeze=freeze or FreezeState(),
        ledger=_seasoned(ALLOWED),
        intent=i,
        approvals=approvals,
        now=now,
        initiator=BACKEND,
        share=(1, 1),
        kind="withdrawal",
    )


def _approvals(i: Intent, *names: str) -> list[Approval]:
    return [sign_approval(key(n), n, i, T0) for n in names]


def test_signer_releases_what_officers_approved() -> None:
    approved = _signer_intent(_tx())
    assert approved == intent()
    assert _release(approved, _approvals(approved, "alice", "bob")).reason == "approved"


def test_coordinator_altering_the_transaction_after_approval_is_refused() -> None:
    approvals = _approvals(_signer_intent(_tx()), "alice", "bob")
    for altered in (
        _tx(value=2 * ETH),
        _tx(to=STRANGER),
        _tx(max_fee_per_gas=500 * 10**9),
        _tx(chain_id=5),
        _tx(nonce=8),  # one approval = one transaction: not the next nonce
        _tx(max_priority_fee_per_gas=2 * 10**9),
    ):
        with pytest.raises(PolicyError) as exc:
            _release(_signer_intent(altered), approvals)
        assert exc.value.reason == "intent_mismatch"


def test_coordinator_dropping_an_approval_is_refused() -> None:
    i = _signer_intent(_tx())
    with pytest.raises(PolicyError) as exc:
        _release(i, _approvals(i, "alice"))
    assert (exc.value.reason, exc.value.detail) == ("approvals_pending", "allowed-medium")


def test_coordinator_using_an_older_policy_version_is_refused() -> None:
    old = dataclasses.replace(policy(), cooldown=1)  # any other version
    i = _signer_intent(_tx(), policy_hash=old.hash())
    with pytest.raises(PolicyError) as exc:
        _release(i, _approvals(i, "alice", "bob"))
    assert exc.value.reason == "policy_mismatch"


def test_time_lock_enforced_at_the_signer() -> None:
    i = _signer_intent(_tx(value=20 * ETH))
    i = dataclasses.replace(i, expires_at=T0 + DAY)
    approvals = _approvals(i, "alice", "carol")
    with pytest.raises(PolicyError) as exc:
        _release(i, approvals, now=T0 + 3599)
    assert exc.value.reason == "time_locked"
    assert _release(i, approvals, now=T0 + 3600).may_sign(T0 + 3600)


def test_frozen_key_or_all_keys_refused() -> None:
    i = _signer_intent(_tx())
    for scope in ("hot", ALL_KEYS):
        frozen = FreezeState().apply_freeze(registry(), sign_freeze(key("dave"), "dave", scope, T0), NOW)
        with pytest.raises(PolicyError) as exc:
            _release(i, _approvals(i, "alice", "bob"), freeze=frozen)
        assert exc.value.reason == "frozen"
    other = FreezeState().apply_freeze(registry(), sign_freeze(key("dave"), "dave", "cold", T0), NOW)
    assert _release(i, _approvals(i, "alice", "bob"), freeze=other).may_sign(NOW)


# --- the demo policy ----------------------------------------------------------------------------
def test_demo_policy_tiers() -> None:
    officers = {n: public_key_bytes(key(n)) for n in ("alice", "bob", "carol")}
    admins = {n: public_key_bytes(key(n)) for n in ("root1", "root2", "root3")}
    reg, doc = demo_policy(officers, admins, allow=[ALLOWED], cold=[COLD], now=T0 - DAY)
    assert reg.admin_quorum == 2 and reg.members("officers") == {"alice", "bob", "carol"}
    assert PolicyDocument.from_json(doc.to_json()) == doc

    def run(amount: int, approvals: dict[str, int], now: int = NOW, destination: str = STRANGER) -> Decision:
        i = intent(doc, amount=amount, destination=destination, expires_at=T0 + DAY)
        return evaluate(doc, reg, i, approvals, Ledger(), now, BACKEND)

    assert run(ETH // 10, {}).reason == "allowed"
    assert run(ETH, {"alice": T0}).reason == "approvals_pending"
    assert run(ETH, {"alice": T0, "bob": T0}).reason == "approved"
    d = run(50 * ETH, {"alice": T0, "bob": T0})
    assert (d.reason, d.time_lock_until) == ("time_locked", T0 + 300)
    assert run(50 * ETH, {"alice": T0, "bob": T0}, now=T0 + 300).reason == "approved"
    assert run(101 * ETH, {"alice": T0, "bob": T0}).reason == "limit_exceeded:eth-per-transaction"
    assert run(60 * ETH, {"carol": T0}, destination=COLD).reason == "approved"


def test_signer_checks_against_the_policy_in_force() -> None:
    reg_state = Governed.genesis(signed_change(registry(), T0), registry())
    state = Governed.genesis(signed_change(policy(), T0), reg_state.current(T0))
    v2 = dataclasses.replace(policy(), version=2, previous_hash=policy().hash(), limits=policy().limits[1:])
    state = state.apply(signed_change(v2, NOW), reg_state.current(NOW), NOW)  # loosening: waits an hour
    i = dataclasses.replace(_signer_intent(_tx(), policy_hash=v2.hash()), expires_at=T0 + DAY)
    approvals = _approvals(i, "alice", "bob")

    def release(now: int) -> Decision:
        return check_release(
            policy=state.current(now),
            registry=reg_state.current(now),
            freeze=FreezeState(),
            ledger=_seasoned(ALLOWED),
            intent=i,
            approvals=approvals,
            now=now,
            initiator=BACKEND,
            share=(1, 1),
            kind="withdrawal",
        )

    with pytest.raises(PolicyError) as exc:
        release(NOW + 3599)
    assert exc.value.reason == "policy_mismatch"
    assert release(NOW + 3600).reason == "approved"
