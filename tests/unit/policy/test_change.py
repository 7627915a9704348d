from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable

import pytest

from signer.policy import (
    Action,
    AllOf,
    AllowEntry,
    ColdEntry,
    Condition,
    Governed,
    Group,
    Ledger,
    Limit,
    Officer,
    OfficerRegistry,
    PolicyChange,
    PolicyDocument,
    PolicyError,
    Rule,
    TrustRamp,
    evaluate,
    parse_change,
    policy_is_tightening,
    public_key_bytes,
)
from tests.unit.policy.support import (
    ALLOWED,
    COLD,
    COOLING,
    DENIED,
    ETH,
    STRANGER,
    T0,
    intent,
    key,
    policy,
    registry,
    signed_change,
)

NOW = T0 + 60


def _reason(fn: Callable[[], object]) -> str:
    with pytest.raises(PolicyError) as exc:
        fn()
    return exc.value.reason


def _genesis() -> Governed[PolicyDocument]:
    return Governed.genesis(signed_change(policy(), T0), registry())


def _next(doc: PolicyDocument, **changes: object) -> PolicyDocument:
    return dataclasses.replace(doc, version=doc.version + 1, previous_hash=doc.hash(), **changes)  # type: ignore[arg-type]


TIGHTER = dict(deny=frozenset({DENIED, STRANGER}))
LOOSER = dict(limits=policy().limits[1:])


# --- quorum, chaining, downgrade --------------------------------------------------------------------
def test_genesis_needs_an_admin_quorum() -> None:
    assert _genesis().current(T0) == policy()
    assert (
        _reason(lambda: Governed.genesis(signed_change(policy(), T0, ("root1",)), registry())) == "admin_quorum_not_met"
    )
    assert (
        _reason(lambda: Governed.genesis(signed_change(policy(), T0, ("root1", "alice")), registry())) == "not_an_admin"
    )
    chained = dataclasses.replace(policy(), previous_hash=bytes(32))
    assert _reason(lambda: Governed.genesis(signed_change(chained, T0), registry())) == "policy_not_chained"


def test_tightening_takes_effect_at_once() -> None:
    v2 = _next(policy(), **TIGHTER)
    state = _genesis().apply(signed_change(v2, NOW), registry(), NOW)
    assert state.current(NOW) == v2 and state.pending is None


def test_loosening_waits_for_the_time_lock() -> None:
    v2 = _next(policy(), **LOOSER)
    state = _genesis().apply(signed_change(v2, NOW - 30), registry(), NOW)
    assert state.effective_at == NOW + 3600  # from the later of proposal and arrival, by the OLD change_delay
    assert state.current(NOW + 3599) == policy()
    assert state.current(NOW + 3600) == v2
    assert state.advance(NOW + 3600).active.new_document == v2 and state.advance(NOW + 3600).pending is None


def test_change_not_signed_by_an_admin_quorum_refused() -> None:
    v2 = _next(policy(), **TIGHTER)
    g = _genesis()
    assert _reason(lambda: g.apply(signed_change(v2, NOW, ("root1",)), registry(), NOW)) == "admin_quorum_not_met"
    assert _reason(lambda: g.apply(signed_change(v2, NOW, ("root1", "root1")), registry(), NOW)) == "duplicate_officer"
    assert _reason(lambda: g.apply(signed_change(v2, NOW, ("root1", "eve")), registry(), NOW)) == "unknown_officer"
    other = signed_change(_next(policy(), **LOOSER), NOW)  # signatures over another document
    moved = PolicyChange(v2, NOW, other.signatures)
    assert _reason(lambda: g.apply(moved, registry(), NOW)) == "bad_signature"
    backdated = PolicyChange(v2, NOW - 10**6, signed_change(v2, NOW).signatures)  # proposed_at is signed too
    assert _reason(lambda: g.apply(backdated, registry(), NOW)) == "bad_signature"


def test_removed_admin_cannot_sign_changes() -> None:
    reg = registry()
    reg = dataclasses.replace(
        reg, officers=tuple(o for o in reg.officers if o.officer_id != "root3"), removed=frozenset({"root3"})
    )
    v2 = _next(policy(), **TIGHTER)
    assert _reason(lambda: _genesis().apply(signed_change(v2, NOW, ("root1", "root3")), reg, NOW)) == "officer_removed"


def test_downgrade_to_an_older_version_refused() -> None:
    v1 = policy()
    v2 = _next(v1, **TIGHTER)
    state = _genesis().apply(signed_change(v2, NOW), registry(), NOW)
    assert _reason(lambda: state.apply(signed_change(v1, T0), registry(), NOW)) == "policy_downgrade"
    same_version = dataclasses.replace(v2, cooldown=10**6)
    assert _reason(lambda: state.apply(signed_change(same_version, NOW), registry(), NOW)) == "policy_downgrade"


def test_fork_from_an_older_version_refused() -> None:
    v1 = policy()
    v2 = _next(v1, **TIGHTER)
    state = _genesis().apply(signed_change(v2, NOW), registry(), NOW)
    fork = dataclasses.replace(_next(v1, **TIGHTER), version=3)  # version 3, but chained to v1
    assert _reason(lambda: state.apply(signed_change(fork, NOW), registry(), NOW)) == "policy_not_chained"


def test_change_from_the_future_refused() -> None:
    v2 = _next(policy(), **TIGHTER)
    assert _reason(lambda: _genesis().apply(signed_change(v2, NOW + 61), registry(), NOW)) == "change_not_yet_valid"


def test_tightening_supersedes_a_pending_loosening_which_cannot_come_back() -> None:
    loosen = signed_change(_next(policy(), **LOOSER), NOW)
    state = _genesis().apply(loosen, registry(), NOW)
    tighten = _next(policy(), **TIGHTER)
    state = state.apply(signed_change(tighten, NOW + 10), registry(), NOW + 10)
    assert state.pending is None and state.current(NOW + 10**6) == tighten
    assert _reason(lambda: state.apply(loosen, registry(), NOW + 20)) == "policy_downgrade"


def test_new_allow_entry_cannot_be_backdated_to_skip_the_cool_down() -> None:
    entry = AllowEntry(STRANGER, NOW - 86400)
    v2 = _next(policy(), allow=(*policy().allow, entry))
    assert _reason(lambda: _genesis().apply(signed_change(v2, NOW), registry(), NOW)) == "backdated_allow_entry"
    ok = _next(policy(), allow=(*policy().allow, AllowEntry(STRANGER, NOW)))
    assert _genesis().apply(signed_change(ok, NOW), registry(), NOW).pending is not None  # loosening


def test_governed_state_and_change_json_round_trip() -> None:
    state = _genesis().apply(signed_change(_next(policy(), **LOOSER), NOW), registry(), NOW)
    assert Governed.from_json(state.to_json(), PolicyDocument) == state
    assert _reason(lambda: parse_change(state.active.to_json(), OfficerRegistry)) == "change_malformed"
    assert _reason(lambda: parse_change("[]", PolicyDocument)) == "change_malformed"


# --- what counts as tightening ------------------------------------------------------------------
def _rules(doc: PolicyDocument, fn: Callable[[list[Rule]], None]) -> PolicyDocument:
    rules = list(doc.rules)
    fn(rules)
    return dataclasses.replace(doc, rules=tuple(rules))


def _swap_action(i: int, action: Action) -> Callable[[PolicyDocument], PolicyDocument]:
    def go(d: PolicyDocument) -> PolicyDocument:
        return _rules(d, lambda rs: rs.__setitem__(i, dataclasses.replace(rs[i], action=action)))

    return go


def _drop(d: PolicyDocument, address: str) -> tuple[AllowEntry, ...]:
    return tuple(e for e in d.allow if e.address != address)


def _redate(d: PolicyDocument, address: str, added_at: int) -> PolicyDocument:
    return dataclasses.replace(d, allow=(*_drop(d, address), AllowEntry(address, added_at)))


BLOCK_ALL = Rule("stop-everything", Condition(), Action("block"))
TWO = Group("officers", 2)

CASES: list[tuple[str, Callable[[PolicyDocument], PolicyDocument], bool]] = [
    ("deny_more", lambda d: dataclasses.replace(d, deny=d.deny | {STRANGER}), True),
    ("block_rule_first", lambda d: _rules(d, lambda rs: rs.insert(0, BLOCK_ALL)), True),
    ("block_rule_middle", lambda d: _rules(d, lambda rs: rs.insert(3, BLOCK_ALL)), True),
    ("drop_trailing_rules", lambda d: dataclasses.replace(d, rules=d.rules[:4]), True),
    ("more_approvers", _swap_action(3, Action("require", Group("officers", 3))), True),
    ("extra_group_and", _swap_action(3, Action("require", AllOf((TWO, Group("risk", 1))))), True),
    ("allow_to_require", _swap_action(2, Action("require", TWO)), True),
    ("rule_to_block", _swap_action(4, Action("block")), True),
    (
        "longer_time_lock",
        lambda d: _rules(
            d,
            lambda rs: rs.__setitem__(
                5, dataclasses.replace(rs[5], action=dataclasses.replace(rs[5].action, time_lock=7200))
            ),
        ),
        True,
    ),
    (
        "lower_limit",
        lambda d: dataclasses.replace(d, limits=(dataclasses.replace(d.limits[0], max_amount=ETH), *d.limits[1:])),
        True,
    ),
    (
        "extra_limit",
        lambda d: dataclasses.replace(d, limits=(*d.limits, Limit("new", "transaction", "ETH", max_amount=ETH))),
        True,
    ),
    ("ramp_stricter", lambda d: dataclasses.replace(d, trust_ramp=TrustRamp(5, (("ETH", ETH), ("USDC", 1)))), True),
    ("unfreeze_quorum_up", lambda d: dataclasses.replace(d, unfreeze_quorum=3), True),
    ("change_delay_up", lambda d: dataclasses.replace(d, change_delay=7200), True),
    ("no_change", lambda d: d, True),
    # loosening (or not provably tighter)
    ("deny_less", lambda d: dataclasses.replace(d, deny=frozenset()), False),
    (
        "raise_limit",
        lambda d: dataclasses.replace(d, limits=(dataclasses.replace(d.limits[0], max_amount=10**30), *d.limits[1:])),
        False,
    ),
    ("drop_limit", lambda d: dataclasses.replace(d, limits=d.limits[1:]), False),
    (
        "retarget_limit",
        lambda d: dataclasses.replace(
            d, limits=(dataclasses.replace(d.limits[1], window=3600), *d.limits[2:], d.limits[0])
        ),
        False,
    ),
    ("allow_more", lambda d: dataclasses.replace(d, allow=(*d.allow, AllowEntry(STRANGER, T0))), False),
    ("cold_more", lambda d: dataclasses.replace(d, cold=(*d.cold, ColdEntry(STRANGER))), False),
    ("drop_first_rule", lambda d: dataclasses.replace(d, rules=d.rules[1:]), False),
    ("reorder_rules", lambda d: dataclasses.replace(d, rules=(d.rules[1], d.rules[0], *d.rules[2:])), False),
    ("fewer_approvers", _swap_action(3, Action("require", Group("officers", 1))), False),
    ("other_group", _swap_action(3, Action("require", Group("risk", 2))), False),
    ("require_to_allow", _swap_action(3, Action("allow")), False),
    ("block_to_allow", _swap_action(0, Action("allow")), False),
    (
        "shorter_time_lock",
        lambda d: _rules(
            d,
            lambda rs: rs.__setitem__(
                5, dataclasses.replace(rs[5], action=dataclasses.replace(rs[5].action, time_lock=60))
            ),
        ),
        False,
    ),
    (
        "wider_condition",
        lambda d: _rules(
            d,
            lambda rs: rs.__setitem__(
                2, dataclasses.replace(rs[2], when=dataclasses.replace(rs[2].when, amount_max=ETH))
            ),
        ),
        False,
    ),
    (
        "narrower_condition",
        lambda d: _rules(
            d,
            lambda rs: rs.__setitem__(
                2, dataclasses.replace(rs[2], when=dataclasses.replace(rs[2].when, amount_max=1))
            ),
        ),
        False,
    ),  # falls through: unknown
    ("append_allow_rule", lambda d: _rules(d, lambda rs: rs.append(Rule("x", Condition(), Action("allow")))), False),
    ("no_ramp", lambda d: dataclasses.replace(d, trust_ramp=None), False),
    ("ramp_cap_up", lambda d: dataclasses.replace(d, trust_ramp=TrustRamp(2, (("ETH", 6 * ETH),))), False),
    ("cooldown_down", lambda d: dataclasses.replace(d, cooldown=60), False),
    # A longer cool-down, or removing an allow-list entry, turns `allowed` into `unlisted`, and this
    # policy still lets unlisted destinations through (with other approvers): not provably tighter.
    ("cooldown_up", lambda d: dataclasses.replace(d, cooldown=10 * 86400), False),
    ("unlist_allowed", lambda d: dataclasses.replace(d, allow=_drop(d, ALLOWED)), False),
    ("change_delay_down", lambda d: dataclasses.replace(d, change_delay=60), False),
    ("unfreeze_quorum_down", lambda d: dataclasses.replace(d, unfreeze_quorum=1), False),
]


@pytest.mark.parametrize("name,mutate,tighter", CASES, ids=[c[0] for c in CASES])
def test_tightening_classification(
    name: str, mutate: Callable[[PolicyDocument], PolicyDocument], tighter: bool
) -> None:
    old = policy()
    assert policy_is_tightening(old, mutate(old)) is tighter


def _listed_only() -> PolicyDocument:
    """A policy that only ever pays allow-listed or cold destinations."""
    return dataclasses.replace(
        policy(),
        rules=(
            Rule("cold", Condition(destinations=frozenset({"cold"})), Action("require", Group("officers", 1))),
            Rule("allowed", Condition(destinations=frozenset({"allowed"})), Action("require", TWO)),
            Rule("rest", Condition(destinations=frozenset({"unlisted"})), Action("block")),
        ),
    )


@pytest.mark.parametrize(
    "mutate,tighter",
    [
        (lambda d: dataclasses.replace(d, allow=_drop(d, ALLOWED)), True),  # unlisted destinations are blocked
        (lambda d: dataclasses.replace(d, cold=()), True),
        (lambda d: dataclasses.replace(d, cooldown=10 * 86400), True),
        (lambda d: dataclasses.replace(d, cold=(), allow=(*d.allow, AllowEntry(COLD, T0))), False),  # cold -> allowed
        (lambda d: _redate(d, ALLOWED, T0 - 86400 * 30), False),
        (lambda d: _redate(d, ALLOWED, T0), True),
    ],
    ids=["unlist_allowed", "unlist_cold", "cooldown_up", "cold_to_allowed", "allowed_earlier", "allowed_later"],
)
def test_listing_changes_are_tighter_when_only_listed_destinations_are_paid(
    mutate: Callable[[PolicyDocument], PolicyDocument], tighter: bool
) -> None:
    old = _listed_only()
    assert policy_is_tightening(old, mutate(old)) is tighter


def test_denying_a_destination_is_tighter_whatever_else_it_was() -> None:
    old = policy()
    new = dataclasses.replace(old, allow=_drop(old, ALLOWED), cold=(), deny=old.deny | {ALLOWED, COLD})
    assert policy_is_tightening(old, new)


# --- registry changes ------------------------------------------------------------------------------
def _reg_genesis() -> Governed[OfficerRegistry]:
    return Governed.genesis(signed_change(registry(), T0), registry())


def _reg_next(reg: OfficerRegistry, **changes: object) -> OfficerRegistry:
    return dataclasses.replace(reg, version=reg.version + 1, previous_hash=reg.hash(), **changes)  # type: ignore[arg-type]


def _without(reg: OfficerRegistry, name: str) -> tuple[Officer, ...]:
    return tuple(o for o in reg.officers if o.officer_id != name)


def test_removing_an_officer_takes_effect_at_once() -> None:
    reg = registry()
    v2 = _reg_next(reg, officers=_without(reg, "bob"), removed=frozenset({"bob"}))
    state = _reg_genesis().apply(signed_change(v2, NOW), reg, NOW)
    assert state.current(NOW) == v2
    assert _reason(lambda: state.current(NOW).lookup("bob")) == "officer_removed"


def test_dropping_an_officer_without_a_tombstone_refused() -> None:
    reg = registry()
    v2 = _reg_next(reg, officers=_without(reg, "bob"))
    assert _reason(lambda: _reg_genesis().apply(signed_change(v2, NOW), reg, NOW)) == "registry_malformed"


@pytest.mark.parametrize(
    "changes",
    [
        lambda r: {"officers": (*r.officers, Officer("erin", public_key_bytes(key("erin")), frozenset({"officers"})))},
        lambda r: {
            "officers": (*_without(r, "dave"), Officer("dave", public_key_bytes(key("dave2")), frozenset({"risk"})))
        },
        lambda r: {
            "officers": (
                *_without(r, "dave"),
                Officer("dave", public_key_bytes(key("dave")), frozenset({"risk", "officers"})),
            )
        },
        lambda r: {
            "officers": (
                *_without(r, "dave"),
                Officer("dave", public_key_bytes(key("dave")), frozenset({"risk"}), frozenset({"officer", "admin"})),
            )
        },
        lambda r: {"admin_quorum": 1},
        lambda r: {"change_delay": 60},
    ],
    ids=["add_officer", "new_key", "new_group", "new_role", "lower_quorum", "shorter_delay"],
)
def test_registry_loosening_waits(changes: Callable[[OfficerRegistry], dict[str, object]]) -> None:
    reg = registry()
    v2 = _reg_next(reg, **changes(reg))
    state = _reg_genesis().apply(signed_change(v2, NOW), reg, NOW)
    assert state.current(NOW) == reg and state.current(NOW + 3600) == v2


def test_registry_tightening_and_downgrade() -> None:
    reg = registry()
    v2 = _reg_next(reg, admin_quorum=3)
    state = _reg_genesis().apply(signed_change(v2, NOW), reg, NOW)
    assert state.current(NOW) == v2
    # The new registry now needs 3 admins for the next change, and the old one cannot come back.
    v3 = _reg_next(v2, change_delay=7200)
    assert _reason(lambda: state.apply(signed_change(v3, NOW), v2, NOW)) == "admin_quorum_not_met"
    assert state.apply(signed_change(v3, NOW, ("root1", "root2", "root3")), v2, NOW).current(NOW) == v3
    assert _reason(lambda: state.apply(signed_change(reg, NOW), v2, NOW)) == "registry_downgrade"


# --- soundness: whatever `policy_is_tightening` accepts never permits more ------------------------------
def _permits(doc: PolicyDocument, rng: random.Random) -> list[tuple[object, bool]]:
    """Sampled requests and whether `doc` lets each be signed (the same samples for the same seed)."""
    out: list[tuple[object, bool]] = []
    ledger, reg = Ledger(), registry()
    officers = ["alice", "bob", "carol", "dave"]
    for _ in range(300):
        i = intent(
            doc,
            asset=rng.choice(["ETH", "ETH", "USDC", "DOGE"]),
            amount=rng.choice([1, ETH // 10, ETH // 10 + 1, ETH, 5 * ETH + 1, 10 * ETH, 10 * ETH + 1, 99 * ETH]),
            destination=rng.choice([ALLOWED, COLD, STRANGER, DENIED, COOLING]),
            key_id=rng.choice(["hot", "hot", "frozen-key"]),
            expires_at=T0 + 100 * 86400,
        )
        approvals = {o: T0 + rng.randrange(0, 600) for o in rng.sample(officers, rng.randrange(0, 5))}
        now = T0 + rng.choice([60, 3000, 5000, 2 * 86400])
        initiator = rng.choice(["backend-1", "backend-2"])
        d = evaluate(doc, reg, i, approvals, ledger, now, initiator)
        out.append(
            ((i.asset, i.amount, i.destination, i.key_id, sorted(approvals.items()), now, initiator), d.may_sign(now))
        )
    return out


@pytest.mark.parametrize("name,mutate,tighter", [c for c in CASES if c[2]], ids=[c[0] for c in CASES if c[2]])
def test_accepted_tightenings_never_permit_more(
    name: str, mutate: Callable[[PolicyDocument], PolicyDocument], tighter: bool
) -> None:
    old, new = policy(), mutate(policy())
    before = _permits(old, random.Random(name))  # noqa: S311 (sampling, not cryptography)
    after = _permits(new, random.Random(name))  # noqa: S311
    assert any(ok for _, ok in before)
    for (request, was_ok), (same, now_ok) in zip(before, after, strict=True):
        assert request == same
        assert was_ok or not now_ok, request


LISTED_TIGHTER: list[Callable[[PolicyDocument], PolicyDocument]] = [
    lambda d: dataclasses.replace(d, allow=_drop(d, ALLOWED)),
    lambda d: dataclasses.replace(d, cold=()),
    lambda d: dataclasses.replace(d, cooldown=10 * 86400),
    lambda d: _redate(d, ALLOWED, T0),
]


@pytest.mark.parametrize("n", range(len(LISTED_TIGHTER)))
def test_accepted_listing_tightenings_never_permit_more(n: int) -> None:
    old = _listed_only()
    new = LISTED_TIGHTER[n](old)
    assert policy_is_tightening(old, new)
    before = _permits(old, random.Random(n))  # noqa: S311
    after = _permits(new, random.Random(n))  # noqa: S311
    assert any(ok for _, ok in before)
    assert all(was_ok or not now_ok for (_, was_ok), (_, now_ok) in zip(before, after, strict=True))
