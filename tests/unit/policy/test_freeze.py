from __future__ import annotations

import dataclasses

import pytest

from signer.policy import ALL_KEYS, FreezeOrder, FreezeState, PolicyError, UnfreezeOrder, sign_freeze
from tests.unit.policy.support import T0, key, registry

NOW = T0 + 60


def _freeze(state: FreezeState, who: str = "dave", scope: str = ALL_KEYS, at: int = T0) -> FreezeState:
    return state.apply_freeze(registry(), sign_freeze(key(who), who, scope, at), NOW)


def _unfreeze(lifts: int, *who: str, scope: str = ALL_KEYS, at: int = T0 + 30) -> UnfreezeOrder:
    order = UnfreezeOrder(scope, lifts, at)
    for w in who:
        order = order.signed(key(w), w)
    return order


def _refused(fn: object, reason: str) -> None:
    with pytest.raises(PolicyError) as exc:
        fn()  # type: ignore[operator]
    assert exc.value.reason == reason


def test_any_single_officer_freezes_everything_at_once() -> None:
    state = _freeze(FreezeState())
    assert state.is_frozen("hot") and state.is_frozen("cold")
    assert _freeze(FreezeState(), who="root1").is_frozen("hot")  # admins may pull the brake too


def test_freeze_one_key() -> None:
    state = _freeze(FreezeState(), scope="hot")
    assert state.is_frozen("hot") and not state.is_frozen("cold")


def test_unfreeze_needs_a_quorum() -> None:
    state = _freeze(FreezeState())
    _refused(lambda: state.apply_unfreeze(registry(), _unfreeze(T0, "alice"), NOW, quorum=2), "unfreeze_quorum_not_met")
    _refused(
        lambda: state.apply_unfreeze(registry(), _unfreeze(T0, "alice", "alice"), NOW, quorum=2), "duplicate_officer"
    )
    _refused(lambda: state.apply_unfreeze(registry(), _unfreeze(T0, "alice", "root1"), NOW, quorum=2), "not_an_officer")
    lifted = state.apply_unfreeze(registry(), _unfreeze(T0, "alice", "bob"), NOW, quorum=2)
    assert not lifted.is_frozen("hot")


@pytest.mark.parametrize(
    "lifts,at,scope",
    [(T0 - 1, T0 + 30, ALL_KEYS), (T0, T0 + 31, ALL_KEYS), (T0, T0 + 30, "hot")],
    ids=["lifts", "issued_at", "scope"],
)
def test_unfreeze_fields_are_covered_by_the_signatures(lifts: int, at: int, scope: str) -> None:
    state = _freeze(FreezeState())
    other = _unfreeze(lifts, "alice", "bob", scope=scope, at=at)
    moved = dataclasses.replace(_unfreeze(T0, scope=ALL_KEYS, at=T0 + 30), signatures=other.signatures)
    _refused(lambda: state.apply_unfreeze(registry(), moved, NOW, quorum=2), "bad_signature")


def test_forged_unknown_and_removed_freezers_refused() -> None:
    forged = sign_freeze(key("mallory"), "alice", ALL_KEYS, T0)
    _refused(lambda: FreezeState().apply_freeze(registry(), forged, NOW), "bad_signature")
    _refused(lambda: _freeze(FreezeState(), who="eve"), "unknown_officer")
    reg = registry()
    reg = dataclasses.replace(
        reg, officers=tuple(o for o in reg.officers if o.officer_id != "dave"), removed=frozenset({"dave"})
    )
    order = sign_freeze(key("dave"), "dave", ALL_KEYS, T0)
    _refused(lambda: FreezeState().apply_freeze(reg, order, NOW), "officer_removed")


def test_orders_from_the_future_refused() -> None:
    _refused(lambda: _freeze(FreezeState(), at=NOW + 61), "order_not_yet_valid")
    state = _freeze(FreezeState())
    _refused(
        lambda: state.apply_unfreeze(registry(), _unfreeze(T0, "alice", "bob", at=NOW + 61), NOW, quorum=2),
        "order_not_yet_valid",
    )


def test_unfreeze_must_name_the_freeze_in_force() -> None:
    state = _freeze(_freeze(FreezeState()), who="carol", at=T0 + 10)  # a second, newer freeze
    _refused(lambda: state.apply_unfreeze(registry(), _unfreeze(T0, "alice", "bob"), NOW, quorum=2), "stale_order")
    assert not state.apply_unfreeze(registry(), _unfreeze(T0 + 10, "alice", "bob"), NOW, quorum=2).is_frozen("hot")


def test_replays_do_not_undo_later_orders() -> None:
    first = sign_freeze(key("dave"), "dave", ALL_KEYS, T0)
    unfreeze = _unfreeze(T0, "alice", "bob", at=T0 + 30)
    state = FreezeState().apply_freeze(registry(), first, NOW)
    assert state.apply_freeze(registry(), first, NOW) == state  # delivered twice: no-op
    state = state.apply_unfreeze(registry(), unfreeze, NOW, quorum=2)
    _refused(lambda: state.apply_freeze(registry(), first, NOW), "stale_order")  # old freeze replayed
    _refused(lambda: state.apply_unfreeze(registry(), unfreeze, NOW, quorum=2), "not_frozen")
    refrozen = _freeze(state, at=T0 + 40)
    _refused(lambda: refrozen.apply_unfreeze(registry(), unfreeze, NOW, quorum=2), "stale_order")  # old unfreeze
    assert refrozen.is_frozen("hot")


def test_global_unfreeze_leaves_key_freezes_alone() -> None:
    state = _freeze(_freeze(FreezeState(), scope="hot", at=T0 - 5))
    state = state.apply_unfreeze(registry(), _unfreeze(T0, "alice", "bob"), NOW, quorum=2)
    assert state.is_frozen("hot") and not state.is_frozen("cold")


def test_wire_round_trips_and_malformed_scope() -> None:
    order = sign_freeze(key("dave"), "dave", "hot", T0)
    assert FreezeOrder.from_bytes(order.to_bytes()) == order
    unfreeze = _unfreeze(T0, "alice", "bob")
    assert UnfreezeOrder.from_bytes(unfreeze.to_bytes()) == unfreeze
    state = _freeze(_freeze(FreezeState(), scope="hot"))
    assert FreezeState.from_bytes(state.to_bytes()) == state
    _refused(lambda: sign_freeze(key("dave"), "dave", "../etc", T0), "order_malformed")
    _refused(lambda: FreezeOrder.from_bytes(b"junk"), "order_malformed")
