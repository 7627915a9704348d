"""Shamir sharing, Feldman commitments and Lagrange interpolation (signer/tss/vss.py)."""

from __future__ import annotations

from itertools import combinations

import pytest

from signer.tss.curve import Point, Q
from signer.tss.errors import InvalidInput
from signer.tss.vss import (
    check_indices,
    commit,
    evaluate,
    evaluate_commitment,
    lagrange_at_zero,
    public_key_from_shares,
    random_polynomial,
)
from tests.helpers import SeededRng


def test_check_indices_sorts_and_accepts_any_distinct_nonzero() -> None:
    assert check_indices([11, 3, 7]) == (3, 7, 11)
    assert check_indices((1,)) == (1,)
    assert check_indices([Q - 1, 1]) == (1, Q - 1)


@pytest.mark.parametrize(
    ("indices", "message"),
    [([1, 2, 2], "distinct"), ([0, 1], "non-zero"), ([-1, 2], "non-zero"), ([1, Q], "non-zero")],
)
def test_check_indices_rejects(indices: list[int], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        check_indices(indices)


def test_random_polynomial_degree_and_constant(rng: SeededRng) -> None:
    f = random_polynomial(rng, 3)
    assert len(f) == 4 and all(0 <= c < Q for c in f)
    g = random_polynomial(rng, 2, constant=Q + 5)
    assert len(g) == 3 and g[0] == 5
    assert random_polynomial(rng, 1, constant=0)[0] == 0


def test_evaluate_matches_naive(rng: SeededRng) -> None:
    f = random_polynomial(rng, 4)
    for x in (0, 1, 2, 12345, Q - 1):
        assert evaluate(f, x) == sum(c * pow(x, k, Q) for k, c in enumerate(f)) % Q
    assert evaluate(f, 0) == f[0]


def test_feldman_commitment_opens_every_share(rng: SeededRng) -> None:
    f = random_polynomial(rng, 2)
    F = commit(f)
    assert len(F) == 3 and F[0] == Point.base_mul(f[0])
    for x in (1, 2, 3, 99):
        assert evaluate_commitment(F, x) == Point.base_mul(evaluate(f, x))


def test_feldman_rejects_a_wrong_share(rng: SeededRng) -> None:
    f = random_polynomial(rng, 2)
    F = commit(f)
    assert evaluate_commitment(F, 4) != Point.base_mul(evaluate(f, 4) + 1)
    # A commitment vector one term short does not open the true shares either.
    assert evaluate_commitment(F[:2], 4) != Point.base_mul(evaluate(f, 4))


@pytest.mark.parametrize(("t", "parties"), [(2, (1, 2, 3)), (3, (1, 2, 3, 4, 5)), (2, (3, 7, 11))])
def test_lagrange_reconstructs_from_every_t_subset(rng: SeededRng, t: int, parties: tuple[int, ...]) -> None:
    f = random_polynomial(rng, t - 1)
    shares = {i: evaluate(f, i) for i in parties}
    public = {i: Point.base_mul(s) for i, s in shares.items()}
    for signers in combinations(parties, t):
        assert sum(lagrange_at_zero(i, signers) * shares[i] for i in signers) % Q == f[0]
        assert sum(lagrange_at_zero(i, signers) for i in signers) % Q == 1
        assert public_key_from_shares(public, signers) == Point.base_mul(f[0])


def test_fewer_than_t_shares_do_not_reconstruct(rng: SeededRng) -> None:
    f = random_polynomial(rng, 2)
    signers = (1, 2)
    assert sum(lagrange_at_zero(i, signers) * evaluate(f, i) for i in signers) % Q != f[0]


def test_lagrange_index_must_be_in_the_set() -> None:
    with pytest.raises(InvalidInput):
        lagrange_at_zero(4, (1, 2, 3))
