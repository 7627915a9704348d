"""Πlog*: completeness, one rejection per tampered field (asserting the check), range checks
before any exponentiation, binding to the context and the full statement."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from functools import cache
from typing import Any

import pytest

from signer.tss.curve import Point, Q
from signer.tss.encoding import decode_value, encode_value
from signer.tss.errors import DecodeError, InvalidInput, InvalidProof
from signer.tss.params import SecurityLevel
from signer.tss.rng import rand_unit
from signer.tss.transcript import Transcript
from signer.tss.zk import log_star
from tests.helpers import SeededRng, forbid_modexp, paillier_key, ring_pedersen

CONTEXT = (b"backup-A", 1, b"manifest")


def _transcript() -> Transcript:
    return Transcript.for_proof(*CONTEXT)


def _setup(
    level: SecurityLevel, rng: SeededRng, *, x: int | None = None
) -> tuple[log_star.Statement, log_star.Witness]:
    """The backup shape: C = enc_0(x_i) under the recovery key, X = X_i = x_i·G."""
    sk = paillier_key(level, 0)
    x_i = 1 + rng.randbelow(Q - 1) if x is None else x
    rho = rand_unit(rng, sk.n)
    stmt = log_star.Statement(
        pk0=sk.public, C=sk.encrypt_with(x_i, rho), X=Point.base_mul(x_i), setup=ring_pedersen(level, 1).params
    )
    return stmt, log_star.Witness(x_i, rho, key=sk)


@cache
def _honest(level: SecurityLevel) -> tuple[log_star.Statement, log_star.Witness, log_star.Proof]:
    """One honest proof per level, shared by the tamper tests (verification never mutates it)."""
    rng = SeededRng(f"log_star-honest-{level.name}")
    stmt, wit = _setup(level, rng)
    return stmt, wit, log_star.prove(_transcript(), stmt, wit, rng=rng, level=level)


def _check_of(stmt: log_star.Statement, proof: log_star.Proof, level: SecurityLevel) -> str:
    with pytest.raises(InvalidProof) as exc:
        log_star.verify(_transcript(), stmt, proof, level=level)
    assert exc.value.proof == log_star.NAME
    return exc.value.check


# --- completeness -------------------------------------------------------------------------------
def test_completeness_and_wire_round_trip(level: SecurityLevel) -> None:
    stmt, _wit, proof = _honest(level)
    log_star.verify(_transcript(), stmt, proof, level=level)
    again = log_star.Proof.from_value(decode_value(encode_value(proof.to_value())))
    assert again == proof
    log_star.verify(_transcript(), stmt, again, level=level)


def test_completeness_without_the_secret_key(level: SecurityLevel, rng: SeededRng) -> None:
    stmt, wit = _setup(level, rng)
    proof = log_star.prove(_transcript(), stmt, dataclasses.replace(wit, key=None), rng=rng, level=level)
    log_star.verify(_transcript(), stmt, proof, level=level)


def test_negative_plaintext_in_range(rng: SeededRng, level: SecurityLevel) -> None:
    x = -(1 << level.ell)
    sk = paillier_key(level, 0)
    rho = rand_unit(rng, sk.n)
    stmt = log_star.Statement(sk.public, sk.encrypt_with(x, rho), Point.base_mul(x), ring_pedersen(level, 1).params)
    proof = log_star.prove(_transcript(), stmt, log_star.Witness(x, rho, key=sk), rng=rng, level=level)
    log_star.verify(_transcript(), stmt, proof, level=level)


def test_witness_repr_hides_secrets(level: SecurityLevel) -> None:
    _stmt, wit, _proof = _honest(level)
    text = repr(wit)
    assert str(wit.x) not in text and str(wit.rho) not in text


def test_prover_key_must_match_statement(level: SecurityLevel, rng: SeededRng) -> None:
    stmt, wit = _setup(level, rng)
    with pytest.raises(InvalidInput):
        log_star.prove(_transcript(), stmt, dataclasses.replace(wit, key=paillier_key(level, 1)), rng=rng, level=level)


# --- soundness: wrong witness or statement ------------------------------------------------------
@pytest.mark.parametrize(("name", "check"), [("x", "eq_paillier"), ("rho", "eq_paillier")])
def test_wrong_witness_rejected(level: SecurityLevel, rng: SeededRng, name: str, check: str) -> None:
    stmt, wit = _setup(level, rng)
    if name == "rho":
        bad = dataclasses.replace(wit, rho=rand_unit(rng, stmt.pk0.n))
    else:
        bad = dataclasses.replace(wit, x=(wit.x + 1) % Q)
    proof = log_star.prove(_transcript(), stmt, bad, rng=rng, level=level)
    assert _check_of(stmt, proof, level) == check


def test_ciphertext_of_another_value_than_the_log_rejected(level: SecurityLevel, rng: SeededRng) -> None:
    # C encrypts x and the prover knows it, but X is not x·G: only the curve equation notices.
    stmt, wit = _setup(level, rng)
    stmt = dataclasses.replace(stmt, X=stmt.X + Point.generator())
    proof = log_star.prove(_transcript(), stmt, wit, rng=rng, level=level)
    assert _check_of(stmt, proof, level) == "eq_log"


def test_same_log_mod_q_but_plaintext_out_of_range_rejected(level: SecurityLevel, rng: SeededRng) -> None:
    # x + k·q has the same discrete log, but is far outside ±2^ℓ: the range check refuses it.
    stmt, wit = _setup(level, rng)
    big = wit.x + (Q << (level.ell + level.epsilon))
    sk = paillier_key(level, 0)
    rho = rand_unit(rng, sk.n)
    stmt = dataclasses.replace(stmt, C=sk.encrypt_with(big, rho), X=Point.base_mul(big))
    proof = log_star.prove(_transcript(), stmt, log_star.Witness(big, rho, key=sk), rng=rng, level=level)
    assert _check_of(stmt, proof, level) == "z1_range"


# --- one tamper per proof field -----------------------------------------------------------------
def _tamper(stmt: log_star.Statement, proof: log_star.Proof, name: str) -> log_star.Proof:
    n0, n0_sq, n_hat = stmt.pk0.n, stmt.pk0.n2, stmt.setup.n
    changes: dict[str, Callable[[], Any]] = {
        "S": lambda: proof.S * stmt.setup.s % n_hat,
        "A": lambda: proof.A * (1 + n0) % n0_sq,
        "Y": lambda: proof.Y + Point.generator(),
        "D": lambda: proof.D * stmt.setup.t % n_hat,
        "z1": lambda: proof.z1 + 1,
        "z2": lambda: proof.z2 * 2 % n0,
        "z3": lambda: proof.z3 + 1,
    }
    change: dict[str, Any] = {name: changes[name]()}
    return dataclasses.replace(proof, **change)


# A changed first message changes the challenge, so the first equation (Paillier) catches it.
TAMPER_CHECKS = {
    "S": "eq_paillier",
    "A": "eq_paillier",
    "Y": "eq_paillier",
    "D": "eq_paillier",
    "z1": "eq_paillier",
    "z2": "eq_paillier",
    "z3": "eq_pedersen",
}


@pytest.mark.parametrize("name", list(TAMPER_CHECKS))
def test_tampered_field_rejected(level: SecurityLevel, name: str) -> None:
    stmt, _wit, proof = _honest(level)
    assert _check_of(stmt, _tamper(stmt, proof, name), level) == TAMPER_CHECKS[name]


# --- range and membership checks, before any exponentiation -------------------------------------
BAD_VALUES: list[tuple[str, Callable[[log_star.Statement, SecurityLevel, log_star.Proof], int], str]] = [
    ("z1", lambda s, lv, p: (1 << (lv.ell + lv.epsilon)) + 1, "z1_range"),
    ("z1", lambda s, lv, p: -(1 << (lv.ell + lv.epsilon)) - 1, "z1_range"),
    ("z3", lambda s, lv, p: s.setup.n << (lv.ell + lv.epsilon + 1) | 1, "z3_range"),
    ("z3", lambda s, lv, p: -(s.setup.n << (lv.ell + lv.epsilon + 1)) - 1, "z3_range"),
    ("z2", lambda s, lv, p: 0, "z2_unit"),
    ("z2", lambda s, lv, p: s.pk0.n, "z2_unit"),
    ("z2", lambda s, lv, p: paillier_key(lv, 0).p, "z2_unit"),
    ("S", lambda s, lv, p: 0, "commitment_unit"),
    ("S", lambda s, lv, p: s.setup.n + 1, "commitment_unit"),
    ("D", lambda s, lv, p: ring_pedersen(lv, 1).p, "commitment_unit"),
    ("A", lambda s, lv, p: s.pk0.n2, "commitment_unit"),
    ("A", lambda s, lv, p: s.pk0.n * 7, "commitment_unit"),
]


@pytest.mark.parametrize(("name", "value", "check"), BAD_VALUES)
def test_out_of_range_rejected_before_exponentiation(
    level: SecurityLevel,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    value: Callable[[log_star.Statement, SecurityLevel, log_star.Proof], int],
    check: str,
) -> None:
    stmt, _wit, proof = _honest(level)
    changes: dict[str, Any] = {name: value(stmt, level, proof)}
    bad = dataclasses.replace(proof, **changes)
    forbid_modexp(monkeypatch)
    assert _check_of(stmt, bad, level) == check


@pytest.mark.parametrize("which", ["zero", "multiple_of_N0", "factor_of_N0", "N0_squared", "negative"])
def test_ciphertext_outside_units_rejected_before_exponentiation(
    level: SecurityLevel, monkeypatch: pytest.MonkeyPatch, which: str
) -> None:
    stmt, _wit, proof = _honest(level)
    n0, n0_sq = stmt.pk0.n, stmt.pk0.n2
    c = {
        "zero": 0,
        "multiple_of_N0": 5 * n0,
        "factor_of_N0": paillier_key(level, 0).q,
        "N0_squared": n0_sq,
        "negative": -stmt.C,
    }[which]
    forbid_modexp(monkeypatch)
    assert _check_of(dataclasses.replace(stmt, C=c), proof, level) == "c_unit"


# --- binding to the context and the full statement ----------------------------------------------
@pytest.mark.parametrize(
    "other", [(b"backup-B", 1, b"manifest"), (b"backup-A", 2, b"manifest"), (b"backup-A", 1, b"x")]
)
def test_proof_bound_to_context(level: SecurityLevel, other: tuple[bytes, int, bytes]) -> None:
    stmt, _wit, proof = _honest(level)
    with pytest.raises(InvalidProof) as exc:
        log_star.verify(Transcript.for_proof(*other), stmt, proof, level=level)
    assert exc.value.check == "eq_paillier"


def test_proof_for_another_verifier_rejected(level: SecurityLevel) -> None:
    stmt, _wit, proof = _honest(level)
    other = dataclasses.replace(stmt, setup=ring_pedersen(level, 2).params)
    assert _check_of(other, proof, level) == "eq_paillier"


def test_proof_bound_to_the_point(level: SecurityLevel) -> None:
    stmt, _wit, proof = _honest(level)
    assert _check_of(dataclasses.replace(stmt, X=stmt.X + Point.generator()), proof, level) == "eq_paillier"


def test_proof_bound_to_the_ciphertext(level: SecurityLevel) -> None:
    stmt, _wit, proof = _honest(level)
    other = dataclasses.replace(stmt, C=stmt.C * (1 + stmt.pk0.n) % stmt.pk0.n2)
    assert _check_of(other, proof, level) == "eq_paillier"


# --- wire decoding ------------------------------------------------------------------------------
def test_decoding_rejects_malformed_proofs(level: SecurityLevel) -> None:
    _stmt, _wit, proof = _honest(level)
    value = proof.to_value()
    assert isinstance(value, list)
    for bad in (value[:-1], [*value, 1], [value[0], value[1], 7, *value[3:]]):
        with pytest.raises(DecodeError):
            log_star.Proof.from_value(decode_value(encode_value(bad)))
