from __future__ import annotations

import dataclasses
from collections.abc import Callable
from functools import cache
from typing import Any

import pytest

from signer.tss.curve import Point
from signer.tss.encoding import decode_value, encode_value
from signer.tss.errors import DecodeError, InvalidInput, InvalidProof
from signer.tss.modarith import powmod_public
from signer.tss.paillier import PaillierPublicKey
from signer.tss.params import LEVEL_112, LEVEL_128, SecurityLevel
from signer.tss.rng import rand_nonzero_scalar, rand_signed, rand_unit
from signer.tss.transcript import Transcript
from signer.tss.zk import dec
from tests.helpers import SeededRng, paillier_key

NUM_PARTIES = 3


def _transcript() -> Transcript:
    return Transcript.for_proof(b"session-A", 1, b"rid")


@cache
def _instance(level: SecurityLevel, num_parties: int = NUM_PARTIES) -> tuple[dec.Statement, dec.Witness]:
    """A random instance: enc_0(y; ρ) = K^x·D, X = x·G, S = y·Γ with Γ a random point (not G)."""
    rng = SeededRng(f"dec-instance-{level.name}-{num_parties}")
    key = paillier_key(level, 0)
    pk0 = key.public
    x = rand_signed(rng, level.ell)
    y = rand_signed(rng, dec.y_bits(level, num_parties))
    rho = rand_unit(rng, pk0.n)
    K, _ = pk0.encrypt(rng.randbelow(pk0.n), rng)
    D = pk0.encrypt_with(y, rho) * powmod_public(K, -x, pk0.n2) % pk0.n2
    Gamma = Point.base_mul(rand_nonzero_scalar(rng, 1 << 255))
    stmt = dec.Statement(pk0, K, D, Point.base_mul(x), Gamma * y, Gamma, num_parties)
    return stmt, dec.Witness(x, y, rho, key)


@cache
def _honest(level: SecurityLevel) -> dec.Proof:
    """The honest proof; at 112 bits through the public-key path, at 128 with the owner's CRT path."""
    stmt, wit = _instance(level)
    if level == LEVEL_112:
        wit = dataclasses.replace(wit, key=None)
    return dec.prove(_transcript(), stmt, wit, rng=SeededRng("dec"), level=level)


def _reject(level: SecurityLevel, proof: dec.Proof, check: str, stmt: dec.Statement | None = None) -> None:
    with pytest.raises(InvalidProof) as exc:
        dec.verify(_transcript(), stmt or _instance(level)[0], proof, level=level)
    assert exc.value.proof == "dec"
    assert exc.value.check == check


def _with_rep(proof: dec.Proof, j: int, **changes: Any) -> dec.Proof:
    reps = list(proof.reps)
    reps[j] = dataclasses.replace(reps[j], **changes)
    return dec.Proof(tuple(reps))


# --- completeness ---------------------------------------------------------------------------------
def _complete(level: SecurityLevel) -> None:
    stmt, _ = _instance(level)
    proof = _honest(level)
    assert len(proof.reps) == level.m
    dec.verify(_transcript(), stmt, proof, level=level)
    # decoding gives back an equal proof (verification is a function of the value, so it passes too)
    assert dec.Proof.from_value(decode_value(encode_value(proof.to_value()))) == proof


@pytest.mark.slow(4)
def test_completeness_and_wire_round_trip() -> None:
    _complete(LEVEL_112)


@pytest.mark.slow(10)
def test_completeness_and_wire_round_trip_at_128() -> None:
    _complete(LEVEL_128)


def test_randomizer_derived_with_the_secret_key() -> None:
    # In identification the prover derives ρ from K^x·D and y with its Paillier secret key.
    level = LEVEL_112
    stmt, wit = _instance(level)
    key = paillier_key(level, 0)
    assert key.randomness_of(powmod_public(stmt.K, wit.x, key.public.n2) * stmt.D % key.public.n2, wit.y) == wit.rho


def test_single_party_range() -> None:
    assert dec.y_bits(LEVEL_112, 1) == LEVEL_112.ell_prime + LEVEL_112.epsilon + 1
    assert dec.y_bits(LEVEL_112, 2) == dec.y_bits(LEVEL_112, 1) + 1
    assert dec.y_bits(LEVEL_112, 4) == dec.y_bits(LEVEL_112, 1) + 2
    assert dec.y_bits(LEVEL_112, 5) == dec.y_bits(LEVEL_112, 1) + 3
    with pytest.raises(InvalidInput):
        dec.y_bits(LEVEL_112, 0)


def test_wire_rejects_wrong_shape() -> None:
    value = _honest(LEVEL_112).to_value()
    assert isinstance(value, list)
    first = value[0]
    assert isinstance(first, list)
    with pytest.raises(DecodeError):
        dec.Proof.from_value(decode_value(encode_value([first[:-1]])))
    with pytest.raises(DecodeError):
        dec.Proof.from_value(decode_value(encode_value([[first[0], first[3], *first[2:]]])))  # int for B
    with pytest.raises(DecodeError):
        dec.Proof.from_value(decode_value(encode_value(b"not a list")))


# --- soundness ------------------------------------------------------------------------------------
def test_wrong_witness_rejected(rng: SeededRng) -> None:
    level = LEVEL_112
    stmt, wit = _instance(level)
    bad = dataclasses.replace(wit, rho=rand_unit(rng, stmt.pk0.n))
    _reject(level, dec.prove(_transcript(), stmt, bad, rng=rng, level=level), "eq_paillier")


def test_prover_refuses_out_of_range_witness(rng: SeededRng) -> None:
    level = LEVEL_112
    stmt, wit = _instance(level)
    with pytest.raises(InvalidInput):
        dec.prove(
            _transcript(),
            stmt,
            dataclasses.replace(wit, y=(1 << dec.y_bits(level, NUM_PARTIES)) + 1),
            rng=rng,
            level=level,
        )
    with pytest.raises(InvalidInput):
        dec.prove(_transcript(), stmt, dataclasses.replace(wit, x=-(1 << level.ell) - 1), rng=rng, level=level)
    with pytest.raises(InvalidInput):
        dec.prove(_transcript(), stmt, dataclasses.replace(wit, key=paillier_key(level, 1)), rng=rng, level=level)


# --- one test per proof field ---------------------------------------------------------------------
# A, B, C are absorbed before the challenge, so changing one moves the challenge bits and the
# first curve equation (eq_x, checked for every repetition before eq_s and eq_paillier) fails.
# z appears first in eq_x, w in eq_s, ν only in eq_paillier.
def _tampered(proof: dec.Proof, n0: int, name: str, j: int) -> dec.Proof:
    rep = proof.reps[j]
    changes: dict[str, Callable[[], Any]] = {
        "A": lambda: rep.A * (1 + n0) % (n0 * n0),  # still a unit mod N0²
        "B": lambda: rep.B + Point.generator(),
        "C": lambda: rep.C + Point.generator(),
        "z": lambda: rep.z + 1,
        "w": lambda: rep.w + 1,
        "nu": lambda: rep.nu * 2 % n0,  # still a unit mod N0
    }
    return _with_rep(proof, j, **{name: changes[name]()})


FIELD_CHECK = {"A": "eq_x", "B": "eq_x", "C": "eq_x", "z": "eq_x", "w": "eq_s", "nu": "eq_paillier"}


# ν is tampered only in the first repetition: in the last one, the check would first run the
# Paillier equation of every other repetition (a full verification's cost).
@pytest.mark.parametrize(("name", "j"), [(n, 0) for n in FIELD_CHECK] + [(n, -1) for n in FIELD_CHECK if n != "nu"])
def test_tampered_field_rejected(name: str, j: int) -> None:
    check = FIELD_CHECK[name]
    level = LEVEL_112
    stmt, _ = _instance(level)
    _reject(level, _tampered(_honest(level), stmt.pk0.n, name, j), check)


@pytest.mark.parametrize("count", [-1, +1])
def test_wrong_number_of_repetitions_rejected(count: int) -> None:
    level = LEVEL_112
    reps = _honest(level).reps
    changed = reps[:-1] if count < 0 else (*reps, reps[0])
    _reject(level, dec.Proof(changed), "repetitions")
    _reject(level, dec.Proof(()), "repetitions")


@pytest.fixture
def no_exponentiation(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any modular exponentiation or scalar multiplication on the verifier's path fail the test."""

    def boom(*_: object) -> int:
        raise AssertionError("exponentiation before the range and membership checks")

    _honest(LEVEL_112)  # build the cached proof before the patch
    monkeypatch.setattr(dec, "powmod_public", boom)
    monkeypatch.setattr(PaillierPublicKey, "encrypt_with", boom)
    monkeypatch.setattr(Point, "base_mul", boom)


def _bad_value(level: SecurityLevel, name: str, kind: str) -> int:
    n0 = paillier_key(level, 0).n
    p = paillier_key(level, 0).p
    bits = {"z": level.ell + level.epsilon, "w": dec.y_bits(level, NUM_PARTIES) + level.epsilon}
    table = {
        ("z", "high"): (1 << bits["z"]) + 1,
        ("z", "low"): -(1 << bits["z"]) - 1,
        ("w", "high"): (1 << bits["w"]) + 1,
        ("w", "low"): -(1 << bits["w"]) - 1,
        ("nu", "zero"): 0,
        ("nu", "modulus"): n0,
        ("nu", "factor"): p,
        ("A", "zero"): 0,
        ("A", "modulus"): n0 * n0,
        ("A", "factor"): p * p,
    }
    return table[(name, kind)]


@pytest.mark.usefixtures("no_exponentiation")
@pytest.mark.parametrize(
    ("name", "kind", "check"),
    [
        ("z", "high", "z_range"),
        ("z", "low", "z_range"),
        ("w", "high", "w_range"),
        ("w", "low", "w_range"),
        ("nu", "zero", "nu_unit"),
        ("nu", "modulus", "nu_unit"),
        ("nu", "factor", "nu_unit"),
        ("A", "zero", "a_unit"),
        ("A", "modulus", "a_unit"),
        ("A", "factor", "a_unit"),
    ],
)
def test_out_of_range_rejected_before_exponentiation(name: str, kind: str, check: str) -> None:
    level = LEVEL_112
    _reject(level, _with_rep(_honest(level), -1, **{name: _bad_value(level, name, kind)}), check)


@pytest.mark.usefixtures("no_exponentiation")
@pytest.mark.parametrize("field", ["K", "D"])
def test_statement_ciphertext_not_a_unit_rejected(field: str) -> None:
    level = LEVEL_112
    stmt, _ = _instance(level)
    changes: dict[str, Any] = {field: paillier_key(level, 0).p}
    bad = dataclasses.replace(stmt, **changes)
    _reject(level, _honest(level), "ciphertext_unit", bad)


def test_w_range_follows_num_parties() -> None:
    # A w that fits ±2^(y_bits+ε) for 3 parties but not for 2 is a range failure at n = 2.
    level = LEVEL_112
    stmt, _ = _instance(level)
    big_w = (1 << (dec.y_bits(level, 2) + level.epsilon)) + 1
    _reject(level, _with_rep(_honest(level), 0, w=big_w), "w_range", dataclasses.replace(stmt, num_parties=2))


# --- binding to the context and the statement -------------------------------------------------------
@pytest.mark.parametrize("other", [(b"session-B", 1, b"rid"), (b"session-A", 2, b"rid"), (b"session-A", 1, b"rid2")])
def test_proof_bound_to_session_prover_and_rid(other: tuple[bytes, int, bytes]) -> None:
    stmt, _ = _instance(LEVEL_112)
    with pytest.raises(InvalidProof) as exc:
        dec.verify(Transcript.for_proof(*other), stmt, _honest(LEVEL_112), level=LEVEL_112)
    assert exc.value.check == "eq_x"


@pytest.mark.parametrize("field", ["D", "S", "Gamma", "num_parties"])
def test_proof_bound_to_statement(field: str) -> None:
    level = LEVEL_112
    stmt, _ = _instance(level)
    n2 = stmt.pk0.n2
    changed: Any = {
        "D": stmt.D * (1 + stmt.pk0.n) % n2,
        "S": stmt.S + Point.generator(),
        "Gamma": stmt.Gamma + Point.generator(),
        "num_parties": NUM_PARTIES + 1,
    }[field]
    changes: dict[str, Any] = {field: changed}
    _reject(level, _honest(level), "eq_x", dataclasses.replace(stmt, **changes))
