"""Ring-Pedersen parameters: the trapdoor relation, commitments, and the checks on received params."""

from __future__ import annotations

import dataclasses
import time

import gmpy2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signer.tss.errors import DecodeError, InvalidInput
from signer.tss.modarith import powmod_public
from signer.tss.params import SecurityLevel
from signer.tss.ring_pedersen import RingPedersenParams, generate_ring_pedersen
from tests.helpers import SeededRng, fixture_primes, ring_pedersen

HYPO = settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
exponents = st.integers(min_value=-(1 << 1100), max_value=1 << 1100)


def test_trapdoor_relation(level: SecurityLevel) -> None:
    sec = ring_pedersen(level, 0)
    rp = sec.params
    assert rp.n == sec.p * sec.q
    assert rp.n.bit_length() == level.modulus_bits
    assert powmod_public(rp.t, sec.lam, rp.n) == rp.s  # s = t^λ
    assert gmpy2.jacobi(rp.t, sec.p) == 1 and gmpy2.jacobi(rp.t, sec.q) == 1  # t is a square
    assert 0 <= sec.lam < sec.phi
    rp.check(level.modulus_bits)
    assert str(sec.lam) not in repr(sec) and str(sec.p) not in repr(sec)


def test_generation_is_fresh_per_rng(level: SecurityLevel) -> None:
    p, q = fixture_primes(level.prime_bits)[-2:]
    a = generate_ring_pedersen(p, q, SeededRng("a")).params
    b = generate_ring_pedersen(p, q, SeededRng("b")).params
    assert a.n == b.n and (a.s, a.t) != (b.s, b.t)


@HYPO
@given(x=exponents, mu=exponents, x2=exponents, mu2=exponents)
def test_commit_matches_commit_public(level: SecurityLevel, x: int, mu: int, x2: int, mu2: int) -> None:
    rp = ring_pedersen(level, 0).params
    c = rp.commit(x, mu)
    assert c == rp.commit_public(x, mu)
    assert c == powmod_public(rp.s, x, rp.n) * powmod_public(rp.t, mu, rp.n) % rp.n
    # additively homomorphic in both exponents
    assert c * rp.commit(x2, mu2) % rp.n == rp.commit_public(x + x2, mu + mu2)
    assert rp.check_element(c) == c


def test_commit_edge_exponents(level: SecurityLevel) -> None:
    rp = ring_pedersen(level, 0).params
    assert rp.commit(0, 0) == 1 == rp.commit_public(0, 0)
    assert rp.commit(1, 0) == rp.s and rp.commit(0, 1) == rp.t
    assert rp.commit(-1, 0) * rp.s % rp.n == 1


def _bad_params(level: SecurityLevel) -> dict[str, RingPedersenParams]:
    sec = ring_pedersen(level, 0)
    rp = sec.params
    other = ring_pedersen(level, 1).params
    return {
        "s = t": dataclasses.replace(rp, s=rp.t),
        "s = 1": dataclasses.replace(rp, s=1),
        "t = 1": dataclasses.replace(rp, t=1),
        "s = 0": dataclasses.replace(rp, s=0),
        "s = N": dataclasses.replace(rp, s=rp.n),
        "t above N": dataclasses.replace(rp, t=rp.n + rp.t),
        "s negative": dataclasses.replace(rp, s=-rp.s),
        "s a multiple of p (not a unit)": dataclasses.replace(rp, s=sec.p * 5),
        "t a multiple of q (not a unit)": dataclasses.replace(rp, t=sec.q),
        "N one bit short": RingPedersenParams(other.n >> 1 | 1, 4, 9),
        "N one bit long": RingPedersenParams(other.n << 1 | 1, 4, 9),
        "N even": dataclasses.replace(rp, n=rp.n + 1),
        "N negative": dataclasses.replace(rp, n=-rp.n),
        "N with a small factor": dataclasses.replace(rp, n=rp.n - rp.n % 65521),  # 65521 < 2^16 is prime
        "N a square": RingPedersenParams(sec.p * sec.p, 4, 9),
    }


def test_check_rejects_bad_parameters(level: SecurityLevel) -> None:
    for name, rp in _bad_params(level).items():
        with pytest.raises((DecodeError, InvalidInput)):
            rp.check(level.modulus_bits)
            pytest.fail(f"accepted {name}")


def test_check_rejects_wrong_size(level: SecurityLevel) -> None:
    rp = ring_pedersen(level, 0).params
    for bits in (level.modulus_bits - 1, level.modulus_bits + 1, 2048 if level.modulus_bits == 3072 else 3072):
        with pytest.raises(InvalidInput):
            rp.check(bits)


def test_check_element(level: SecurityLevel) -> None:
    sec = ring_pedersen(level, 0)
    rp = sec.params
    for v in (0, rp.n, rp.n + 1, -1, sec.p, sec.q * 7, True, 1 << 1_000_000):
        with pytest.raises(DecodeError):
            rp.check_element(v)
    assert rp.check_element(1) == 1 and rp.check_element(rp.n - 1) == rp.n - 1


def test_oversize_element_rejected_quickly(level: SecurityLevel) -> None:
    rp = ring_pedersen(level, 0).params
    huge = (1 << 1_000_000) + 1
    t0 = time.perf_counter()
    with pytest.raises(DecodeError):
        rp.check_element(huge)
    with pytest.raises(InvalidInput):
        RingPedersenParams(huge, 4, 9).check(level.modulus_bits)
    assert time.perf_counter() - t0 < 0.05
