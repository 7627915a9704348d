"""Fiat–Shamir transcripts: determinism, binding of every input, exact challenge ranges, forks."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signer.tss.curve import Point, Q
from signer.tss.encoding import Value
from signer.tss.errors import InvalidInput
from signer.tss.transcript import Transcript

BASE_CONTEXT = (b"session-A", 1, b"rid")
BASE_APPENDS: list[tuple[str, tuple[Value, ...]]] = [
    ("statement", (12345, Point.base_mul(7), b"N")),
    ("commitment", ([1, -2, 3], "x")),
]


def run(
    context: tuple[bytes, int, bytes] = BASE_CONTEXT,
    appends: list[tuple[str, tuple[Value, ...]]] = BASE_APPENDS,
    fork: str = "proof",
    label: str = "e",
) -> int:
    t = Transcript.for_proof(*context).fork(fork)
    for name, vals in appends:
        t.append(name, *vals)
    return t.challenge_scalar(label)


def test_same_appends_same_challenge() -> None:
    assert run() == run()
    t1, t2 = Transcript("x"), Transcript("x")
    for t in (t1, t2):
        t.append("a", 1, b"2", "3")
    draws = [(t.challenge_int("c", 1000), t.challenge_scalar("d")) for t in (t1, t2)]
    assert draws[0] == draws[1]


VARIANTS: dict[str, dict[str, object]] = {
    "session id": {"context": (b"session-B", 1, b"rid")},
    "prover": {"context": (b"session-A", 2, b"rid")},
    "rid": {"context": (b"session-A", 1, b"rie")},
    "empty rid": {"context": (b"session-A", 1, b"")},
    "fork label": {"fork": "proof2"},
    "challenge label": {"label": "f"},
    "append label": {"appends": [("statemenT", BASE_APPENDS[0][1]), BASE_APPENDS[1]]},
    "a value": {"appends": [("statement", (12346, Point.base_mul(7), b"N")), BASE_APPENDS[1]]},
    "a point": {"appends": [("statement", (12345, Point.base_mul(8), b"N")), BASE_APPENDS[1]]},
    "a value's sign": {"appends": [BASE_APPENDS[0], ("commitment", ([1, 2, 3], "x"))]},
    "value order": {"appends": [("statement", (Point.base_mul(7), 12345, b"N")), BASE_APPENDS[1]]},
    "append order": {"appends": [BASE_APPENDS[1], BASE_APPENDS[0]]},
    "an extra append": {"appends": [*BASE_APPENDS, ("extra", ())]},
    "a missing append": {"appends": BASE_APPENDS[:1]},
    "values split across appends": {
        "appends": [("statement", (12345,)), ("statement", (Point.base_mul(7), b"N")), BASE_APPENDS[1]]
    },
}


@pytest.mark.parametrize("change", list(VARIANTS.values()), ids=list(VARIANTS))
def test_any_change_changes_the_challenge(change: dict[str, object]) -> None:
    assert run(**change) != run()  # type: ignore[arg-type]


def test_successive_challenges_differ_and_chain() -> None:
    t = Transcript("x")
    a, b = t.challenge_scalar("e"), t.challenge_scalar("e")
    assert a != b  # a challenge is absorbed before the next one is drawn
    u = Transcript("x")
    u.challenge_scalar("other")
    assert u.challenge_scalar("e") != a


def test_fork_does_not_alter_the_parent() -> None:
    parent, twin = Transcript.for_proof(*BASE_CONTEXT), Transcript.for_proof(*BASE_CONTEXT)
    child = parent.fork("sch")
    child.append("statement", 1, 2, 3)
    child.challenge_scalar("e")
    assert parent.challenge_scalar("e") == twin.challenge_scalar("e")
    # forks are independent of each other, separated by label, and differ from the parent
    parent2 = Transcript.for_proof(*BASE_CONTEXT)
    f1, f2, f3 = parent2.fork("a"), parent2.fork("a"), parent2.fork("b")
    assert f1.challenge_scalar("e") == f2.challenge_scalar("e")
    assert parent2.fork("a").challenge_scalar("e") != f3.challenge_scalar("e")
    assert parent2.fork("a").challenge_scalar("e") != parent2.challenge_scalar("e")


BOUNDS = st.one_of(
    st.integers(min_value=1, max_value=1 << 12),
    st.integers(min_value=1, max_value=1 << 600),
    st.integers(min_value=1, max_value=600).map(lambda k: (1 << k) + 1),
    st.integers(min_value=1, max_value=600).map(lambda k: (1 << k) - 1),
    st.integers(min_value=0, max_value=600).map(lambda k: 1 << k),
    st.just(Q),
)


@settings(max_examples=300, deadline=None)
@given(BOUNDS, st.binary(max_size=16))
def test_challenge_int_in_range(bound: int, seed: bytes) -> None:
    t = Transcript("range")
    t.append("seed", seed)
    for _ in range(3):
        assert 0 <= t.challenge_int("e", bound) < bound


@settings(max_examples=200, deadline=None)
@given(BOUNDS, st.binary(max_size=16))
def test_challenge_signed_in_closed_range(bound: int, seed: bytes) -> None:
    t = Transcript("signed")
    t.append("seed", seed)
    for _ in range(3):
        assert -bound <= t.challenge_signed("e", bound) <= bound


def test_challenge_signed_reaches_both_ends() -> None:
    seen = set()
    for i in range(200):
        t = Transcript("ends")
        t.append("i", i)
        seen.add(t.challenge_signed("e", 1))
    assert seen == {-1, 0, 1}


def test_challenge_scalar_and_bits() -> None:
    t = Transcript("x")
    assert 0 <= t.challenge_scalar("e") < Q
    bits = t.challenge_bits("e", 128)
    assert len(bits) == 128 and set(bits) <= {0, 1}
    assert 30 < sum(bits) < 98  # not constant (a 128-bit draw is balanced to within ~6 sigma)
    assert t.challenge_bits("e", 0) == []


@pytest.mark.parametrize("bound", [0, -1, -(1 << 100)])
def test_challenge_int_rejects_empty_range(bound: int) -> None:
    with pytest.raises(InvalidInput):
        Transcript("x").challenge_int("e", bound)


def test_challenge_int_with_bound_one() -> None:
    assert Transcript("x").challenge_int("e", 1) == 0


@pytest.mark.parametrize("bound", [3, 7, 10, 12])
def test_small_bound_roughly_uniform(bound: int) -> None:
    # Fixed inputs, so deterministic. Each bucket gets n/bound draws in expectation; the chi-square
    # statistic with bound-1 degrees of freedom stays far below the 0.1% critical value (< 33 for
    # 11 dof). This catches a modulo bias or a mask that drops the top value.
    n = 600 * bound
    counts: Counter[int] = Counter()
    for i in range(n):
        t = Transcript("uniform")
        t.append("i", i)
        counts[t.challenge_int("e", bound)] += 1
    assert set(counts) == set(range(bound))
    expected = n / bound
    chi2 = sum((counts[v] - expected) ** 2 / expected for v in range(bound))
    assert chi2 < 33.0, (chi2, counts)


def test_rejection_sampling_draws_the_top_value_for_non_power_of_two() -> None:
    # With bound 2^k + 1 the top value 2^k is one out of bound: it must still appear.
    bound = 5
    seen = set()
    for i in range(500):
        t = Transcript("top")
        t.append("i", i)
        seen.add(t.challenge_int("e", bound))
    assert seen == set(range(bound))
