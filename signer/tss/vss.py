"""Shamir secret sharing over Z_Q with Feldman commitments, and Lagrange conversion.

Party indices are the evaluation points: distinct, non-zero, below Q.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .curve import Point, Q, point_sum
from .errors import InvalidInput
from .rng import Rng


def check_indices(indices: Iterable[int]) -> tuple[int, ...]:
    """Sorted tuple of distinct, non-zero indices below Q; raise InvalidInput otherwise."""
    out = tuple(sorted(indices))
    if len(set(out)) != len(out):
        raise InvalidInput("party indices must be distinct")
    if any(not 0 < i < Q for i in out):
        raise InvalidInput("party indices must be non-zero scalars")
    return out


def random_polynomial(rng: Rng, degree: int, constant: int | None = None) -> list[int]:
    """Coefficients a_0..a_degree; a_0 = constant when given (0 for a zero-sharing)."""
    coeffs = [rng.randbelow(Q) for _ in range(degree + 1)]
    if constant is not None:
        coeffs[0] = constant % Q
    return coeffs


def evaluate(coeffs: Sequence[int], x: int) -> int:
    """f(x) mod Q by Horner's rule."""
    acc = 0
    for c in reversed(coeffs):
        acc = (acc * x + c) % Q
    return acc


def commit(coeffs: Sequence[int]) -> tuple[Point, ...]:
    """Feldman commitments a_k·G."""
    return tuple(Point.base_mul(c) for c in coeffs)


def evaluate_commitment(commitments: Sequence[Point], x: int) -> Point:
    """Σ_k x^k·F_k, the public image f(x)·G."""
    acc = Point.identity()
    for c in reversed(commitments):
        acc = acc * x + c
    return acc


def lagrange_at_zero(i: int, signers: Sequence[int]) -> int:
    """λ_i with Σ_{i∈S} λ_i·f(i) = f(0) for deg f < |S|."""
    if i not in signers:
        raise InvalidInput("index not in the signer set")
    num, den = 1, 1
    for j in signers:
        if j != i:
            num = num * j % Q
            den = den * (j - i) % Q
    return num * pow(den, -1, Q) % Q


def public_key_from_shares(public_shares: dict[int, Point], signers: Sequence[int]) -> Point:
    """Σ λ_j·X_j over a signer set: equals the group key when the shares are consistent."""
    return point_sum([public_shares[j] * lagrange_at_zero(j, signers) for j in signers])
