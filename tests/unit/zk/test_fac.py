from __future__ import annotations

import dataclasses
from functools import cache

import gmpy2
import pytest

from signer.tss import ring_pedersen
from signer.tss.encoding import decode_value, encode_value
from signer.tss.errors import DecodeError, InvalidInput, InvalidProof
from signer.tss.paillier import PaillierPublicKey
from signer.tss.params import LEVEL_112, SecurityLevel
from signer.tss.primes import SMALL_PRIMES, check_modulus
from signer.tss.transcript import Transcript
from signer.tss.zk import fac
from tests.helpers import SeededRng, paillier_key
from tests.helpers import ring_pedersen as rp_secret


def _transcript() -> Transcript:
    return Transcript.for_proof(b"session-A", 1, b"rid")


def _statement(level: SecurityLevel, n0: int | None = None) -> fac.Statement:
    n = paillier_key(level, 0).n if n0 is None else n0
    return fac.Statement(PaillierPublicKey(n), rp_secret(level, 0).params)


@cache
def _honest(level: SecurityLevel) -> fac.Proof:
    key = paillier_key(level, 0)
    return fac.prove(_transcript(), _statement(level), fac.Witness(key.p, key.q), rng=SeededRng("fac"), level=level)


def _reject(level: SecurityLevel, proof: fac.Proof, check: str, stmt: fac.Statement | None = None) -> None:
    with pytest.raises(InvalidProof) as exc:
        fac.verify(_transcript(), stmt or _statement(level), proof, level=level)
    assert exc.value.proof == "fac"
    assert exc.value.check == check


def _prime_with_top_bits(rng: SeededRng, bits: int) -> int:
    """A prime of exactly `bits` bits with its top two bits set (so products keep their full length)."""
    while True:
        p = int(gmpy2.next_prime(rng.randbits(bits) | (3 << (bits - 2))))
        if p.bit_length() == bits:
            return p


@cache
def _bitforge_modulus(level: SecurityLevel) -> tuple[int, int]:
    """N0 = p_small · q_big with a 200-bit p_small and N0 of the full size."""
    rng = SeededRng(f"bitforge-{level.name}")
    p_small = _prime_with_top_bits(rng, 200)
    q_big = _prime_with_top_bits(rng, level.modulus_bits - 200)
    assert (p_small * q_big).bit_length() == level.modulus_bits
    return p_small, q_big


# --- completeness ---------------------------------------------------------------------------------
def test_completeness_and_wire_round_trip(level: SecurityLevel, rng: SeededRng) -> None:
    key = paillier_key(level, 0)
    stmt = _statement(level)
    proof = fac.prove(_transcript(), stmt, fac.Witness(key.p, key.q), rng=rng, level=level)
    fac.verify(_transcript(), stmt, proof, level=level)
    again = fac.Proof.from_value(decode_value(encode_value(proof.to_value())))
    assert again == proof
    fac.verify(_transcript(), stmt, again, level=level)


def test_swapped_factors_also_prove(rng: SeededRng) -> None:
    key = paillier_key(LEVEL_112, 0)
    stmt = _statement(LEVEL_112)
    proof = fac.prove(_transcript(), stmt, fac.Witness(key.q, key.p), rng=rng, level=LEVEL_112)
    fac.verify(_transcript(), stmt, proof, level=LEVEL_112)


def test_wire_rejects_wrong_shape() -> None:
    value = _honest(LEVEL_112).to_value()
    assert isinstance(value, list)
    with pytest.raises(DecodeError, match="11 proof fields"):
        fac.Proof.from_value(decode_value(encode_value(value[:-1])))
    with pytest.raises(DecodeError, match="integer"):
        fac.Proof.from_value(decode_value(encode_value([*value[:-1], b"v"])))


# --- soundness: wrong witness, small factors ----------------------------------------------------------
def test_wrong_witness_rejected(level: SecurityLevel, rng: SeededRng) -> None:
    other = paillier_key(level, 1)  # full-size primes, but not the factors of N0
    proof = fac.prove(_transcript(), _statement(level), fac.Witness(other.p, other.q), rng=rng, level=level)
    _reject(level, proof, "eq_n")


@pytest.mark.parametrize("small_first", [True, False], ids=["p_small", "q_small"])
def test_bitforge_modulus_cannot_prove(level: SecurityLevel, rng: SeededRng, small_first: bool) -> None:
    p_small, q_big = _bitforge_modulus(level)
    n0 = p_small * q_big
    check_modulus(n0, level.modulus_bits)  # the cheap checks cannot see a 200-bit factor: Πfac must
    stmt = _statement(level, n0)
    wit = fac.Witness(p_small, q_big) if small_first else fac.Witness(q_big, p_small)
    proof = fac.prove(_transcript(), stmt, wit, rng=rng, level=level)
    _reject(level, proof, "z_range", stmt)


def test_sixteen_tiny_factors_rejected_by_check_modulus() -> None:
    rng = SeededRng("6ix1een")
    tiny = SMALL_PRIMES[-16:]  # 16 primes just below 2^16
    prod = 1
    for s in tiny:
        prod *= s
    big = _prime_with_top_bits(rng, LEVEL_112.modulus_bits - prod.bit_length())
    n0 = prod * big
    if n0.bit_length() != LEVEL_112.modulus_bits:
        big = _prime_with_top_bits(rng, LEVEL_112.modulus_bits - prod.bit_length() + 1)
        n0 = prod * big
    assert n0.bit_length() == LEVEL_112.modulus_bits
    with pytest.raises(InvalidInput, match="small factor"):
        check_modulus(n0, LEVEL_112.modulus_bits)


def test_sixteen_factors_above_sieve_rejected_by_fac(rng: SeededRng) -> None:
    # 16 primes just above the 2^16 trial-division bound pass check_modulus; Πfac still stops them.
    level = LEVEL_112
    tiny: list[int] = []
    p = 1 << 16
    while len(tiny) < 16:
        p = int(gmpy2.next_prime(p))
        tiny.append(p)
    prod = 1
    for s in tiny:
        prod *= s
    for extra in (0, 1):
        big = _prime_with_top_bits(rng, level.modulus_bits - prod.bit_length() + extra)
        if (prod * big).bit_length() == level.modulus_bits:
            break
    n0 = prod * big
    check_modulus(n0, level.modulus_bits)
    stmt = _statement(level, n0)
    proof = fac.prove(_transcript(), stmt, fac.Witness(prod, big), rng=rng, level=level)
    _reject(level, proof, "z_range", stmt)


def test_short_modulus_rejected(level: SecurityLevel) -> None:
    short = _statement(level, paillier_key(level, 0).n >> 64 | 1)
    _reject(level, _honest(level), "modulus_size", short)


# --- one test per proof field ---------------------------------------------------------------------
# Changing any part of the first message (P, Q, A, B, T, σ) moves the challenge, so eq_p, the first
# equation, fails; a response fails the equation it appears in first.
FIELD_CHECK = {
    "P": "eq_p",
    "Q": "eq_p",
    "A": "eq_p",
    "B": "eq_p",
    "T": "eq_p",
    "sigma": "eq_p",
    "z1": "eq_p",
    "z2": "eq_q",
    "w1": "eq_p",
    "w2": "eq_q",
    "v": "eq_n",
}


@pytest.mark.parametrize("name", list(FIELD_CHECK))
def test_tampered_field_rejected(level: SecurityLevel, name: str) -> None:
    proof = _honest(level)
    bad = dataclasses.replace(proof, **{name: getattr(proof, name) + 1})
    _reject(level, bad, FIELD_CHECK[name])


@pytest.fixture
def no_exponentiation(monkeypatch: pytest.MonkeyPatch, level: SecurityLevel) -> None:
    """Make any modular exponentiation on the verifier's path fail the test."""

    def boom(*_: object) -> int:
        raise AssertionError("exponentiation before the range checks")

    _honest(level)  # build the cached proof before the patch
    monkeypatch.setattr(fac, "powmod_public", boom)
    monkeypatch.setattr(ring_pedersen, "powmod_public", boom)


@pytest.mark.usefixtures("no_exponentiation")
@pytest.mark.parametrize("name", ["P", "Q", "A", "B", "T"])
@pytest.mark.parametrize("kind", ["zero", "modulus", "factor"])
def test_commitment_not_a_unit_rejected(level: SecurityLevel, name: str, kind: str) -> None:
    rp = rp_secret(level, 0)
    value = {"zero": 0, "modulus": rp.params.n, "factor": rp.p}[kind]
    _reject(level, dataclasses.replace(_honest(level), **{name: value}), "commitment_unit")


@pytest.mark.usefixtures("no_exponentiation")
@pytest.mark.parametrize(
    ("name", "check"),
    [
        ("z1", "z_range"),
        ("z2", "z_range"),
        ("sigma", "sigma_range"),
        ("w1", "w_range"),
        ("w2", "w_range"),
        ("v", "v_range"),
    ],
)
@pytest.mark.parametrize("sign", [1, -1])
def test_out_of_range_rejected_before_exponentiation(level: SecurityLevel, name: str, check: str, sign: int) -> None:
    n0, n_hat = paillier_key(level, 0).n, rp_secret(level, 0).params.n
    ell, eps = level.ell, level.epsilon
    bound = {
        "z1": int(gmpy2.isqrt(n0)) << (ell + eps),
        "z2": int(gmpy2.isqrt(n0)) << (ell + eps),
        "sigma": (n0 * n_hat) << ell,
        "w1": n_hat << (ell + eps + 1),
        "w2": n_hat << (ell + eps + 1),
        "v": (n0 * n_hat) << (ell + eps + 1),
    }[name]
    _reject(level, dataclasses.replace(_honest(level), **{name: sign * (bound + 1)}), check)


def test_honest_values_sit_inside_the_bounds(level: SecurityLevel) -> None:
    proof = _honest(level)
    n0, n_hat = paillier_key(level, 0).n, rp_secret(level, 0).params.n
    ell, eps = level.ell, level.epsilon
    assert abs(proof.z1) <= int(gmpy2.isqrt(n0)) << (ell + eps)
    assert abs(proof.w1) <= n_hat << (ell + eps + 1)
    assert abs(proof.v) <= (n0 * n_hat) << (ell + eps + 1)


# --- binding to the context and the verifier ---------------------------------------------------------
@pytest.mark.parametrize("other", [(b"session-B", 1, b"rid"), (b"session-A", 2, b"rid"), (b"session-A", 1, b"rid2")])
def test_proof_bound_to_session_prover_and_rid(other: tuple[bytes, int, bytes]) -> None:
    with pytest.raises(InvalidProof) as exc:
        fac.verify(Transcript.for_proof(*other), _statement(LEVEL_112), _honest(LEVEL_112), level=LEVEL_112)
    assert exc.value.check == "eq_p"


def test_proof_bound_to_the_verifiers_params() -> None:
    level = LEVEL_112
    other_verifier = fac.Statement(PaillierPublicKey(paillier_key(level, 0).n), rp_secret(level, 1).params)
    with pytest.raises(InvalidProof):
        fac.verify(_transcript(), other_verifier, _honest(level), level=level)


def test_proof_bound_to_the_modulus() -> None:
    level = LEVEL_112
    _reject(level, _honest(level), "eq_p", _statement(level, paillier_key(level, 1).n))
