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
from signer.tss.zk import enc_elg
from tests.helpers import SeededRng, forbid_modexp, paillier_key, ring_pedersen

CONTEXT = (b"session-A", 1, b"rid")


def _transcript() -> Transcript:
    return Transcript.for_proof(*CONTEXT)


def _setup(level: SecurityLevel, rng: SeededRng, *, x: int | None = None) -> tuple[enc_elg.Statement, enc_elg.Witness]:
    """Presign round 1 shape: C = K_i = enc(k_i), A = Y_i, B = A_i1 = a_i·G, X = A_i2 = a_i·Y_i + k_i·G."""
    sk = paillier_key(level, 0)
    k = rng.randbelow(Q) if x is None else x
    rho = rand_unit(rng, sk.n)
    y, a = 1 + rng.randbelow(Q - 1), 1 + rng.randbelow(Q - 1)
    Y = Point.base_mul(y)
    stmt = enc_elg.Statement(
        pk0=sk.public,
        C=sk.encrypt_with(k, rho),
        A=Y,
        B=Point.base_mul(a),
        X=Y * a + Point.base_mul(k),
        setup=ring_pedersen(level, 1).params,
    )
    return stmt, enc_elg.Witness(k, rho, a, key=sk)


@cache
def _honest(level: SecurityLevel) -> tuple[enc_elg.Statement, enc_elg.Witness, enc_elg.Proof]:
    """One honest proof per level, shared by the tamper tests (verification never mutates it)."""
    rng = SeededRng(f"enc_elg-honest-{level.name}")
    stmt, wit = _setup(level, rng)
    return stmt, wit, enc_elg.prove(_transcript(), stmt, wit, rng=rng, level=level)


def _check_of(stmt: enc_elg.Statement, proof: enc_elg.Proof, level: SecurityLevel) -> str:
    with pytest.raises(InvalidProof) as exc:
        enc_elg.verify(_transcript(), stmt, proof, level=level)
    assert exc.value.proof == enc_elg.NAME
    return exc.value.check


# --- completeness -------------------------------------------------------------------------------
def test_completeness_and_wire_round_trip(level: SecurityLevel) -> None:
    stmt, _wit, proof = _honest(level)
    enc_elg.verify(_transcript(), stmt, proof, level=level)
    again = enc_elg.Proof.from_value(decode_value(encode_value(proof.to_value())))
    assert again == proof
    enc_elg.verify(_transcript(), stmt, again, level=level)


def test_completeness_without_the_secret_key(level: SecurityLevel, rng: SeededRng) -> None:
    stmt, wit = _setup(level, rng)
    proof = enc_elg.prove(_transcript(), stmt, dataclasses.replace(wit, key=None), rng=rng, level=level)
    enc_elg.verify(_transcript(), stmt, proof, level=level)


def test_negative_plaintext_in_range(rng: SeededRng, level: SecurityLevel) -> None:
    stmt, wit = _setup(level, rng, x=-(1 << level.ell))
    proof = enc_elg.prove(_transcript(), stmt, wit, rng=rng, level=level)
    enc_elg.verify(_transcript(), stmt, proof, level=level)


def test_witness_repr_hides_secrets(level: SecurityLevel) -> None:
    _stmt, wit, _proof = _honest(level)
    text = repr(wit)
    assert str(wit.x) not in text and str(wit.rho) not in text and str(wit.b) not in text


def test_prover_key_must_match_statement(level: SecurityLevel, rng: SeededRng) -> None:
    stmt, wit = _setup(level, rng)
    with pytest.raises(InvalidInput):
        enc_elg.prove(_transcript(), stmt, dataclasses.replace(wit, key=paillier_key(level, 1)), rng=rng, level=level)


# --- soundness: wrong witness or statement ------------------------------------------------------
@pytest.mark.parametrize(("name", "check"), [("x", "eq_paillier"), ("rho", "eq_paillier"), ("b", "eq_x")])
def test_wrong_witness_rejected(level: SecurityLevel, rng: SeededRng, name: str, check: str) -> None:
    stmt, wit = _setup(level, rng)
    if name == "rho":
        bad = dataclasses.replace(wit, rho=rand_unit(rng, stmt.pk0.n))
    else:
        bad = dataclasses.replace(wit, **{name: (getattr(wit, name) + 1) % Q})
    proof = enc_elg.prove(_transcript(), stmt, bad, rng=rng, level=level)
    assert _check_of(stmt, proof, level) == check


def test_b_not_the_log_of_B_rejected(level: SecurityLevel, rng: SeededRng) -> None:
    # X = b·A + x·G holds but B ≠ b·G: only the last curve equation can notice.
    stmt, wit = _setup(level, rng)
    stmt = dataclasses.replace(stmt, B=stmt.B + Point.generator())
    proof = enc_elg.prove(_transcript(), stmt, wit, rng=rng, level=level)
    assert _check_of(stmt, proof, level) == "eq_b"


@pytest.mark.parametrize("sign", [1, -1])
def test_plaintext_out_of_range_rejected(level: SecurityLevel, rng: SeededRng, sign: int) -> None:
    stmt, wit = _setup(level, rng, x=sign * (1 << (level.ell + level.epsilon + 10)))
    proof = enc_elg.prove(_transcript(), stmt, wit, rng=rng, level=level)
    assert _check_of(stmt, proof, level) == "z1_range"


# --- one tamper per proof field -----------------------------------------------------------------
def _tamper(stmt: enc_elg.Statement, proof: enc_elg.Proof, name: str) -> enc_elg.Proof:
    n0, n0_sq, n_hat = stmt.pk0.n, stmt.pk0.n2, stmt.setup.n
    g = Point.generator()
    changes: dict[str, Callable[[], Any]] = {
        "S": lambda: proof.S * stmt.setup.s % n_hat,
        "D": lambda: proof.D * (1 + n0) % n0_sq,
        "Y": lambda: proof.Y + g,
        "Z": lambda: proof.Z + g,
        "T": lambda: proof.T * stmt.setup.t % n_hat,
        "z1": lambda: proof.z1 + 1,
        "w": lambda: (proof.w + 1) % Q,
        "z2": lambda: proof.z2 * 2 % n0,
        "z3": lambda: proof.z3 + 1,
    }
    change: dict[str, Any] = {name: changes[name]()}
    return dataclasses.replace(proof, **change)


# A changed first message changes the challenge, so the first equation (Paillier) catches it.
TAMPER_CHECKS = {
    "S": "eq_paillier",
    "D": "eq_paillier",
    "Y": "eq_paillier",
    "Z": "eq_paillier",
    "T": "eq_paillier",
    "z1": "eq_paillier",
    "w": "eq_x",
    "z2": "eq_paillier",
    "z3": "eq_pedersen",
}


@pytest.mark.parametrize("name", list(TAMPER_CHECKS))
def test_tampered_field_rejected(level: SecurityLevel, name: str) -> None:
    stmt, _wit, proof = _honest(level)
    assert _check_of(stmt, _tamper(stmt, proof, name), level) == TAMPER_CHECKS[name]


# --- range and membership checks, before any exponentiation -------------------------------------
BAD_VALUES: list[tuple[str, Callable[[enc_elg.Statement, SecurityLevel, enc_elg.Proof], int], str]] = [
    ("z1", lambda s, lv, p: (1 << (lv.ell + lv.epsilon)) + 1, "z1_range"),
    ("z1", lambda s, lv, p: -(1 << (lv.ell + lv.epsilon)) - 1, "z1_range"),
    ("w", lambda s, lv, p: p.w + Q, "w_range"),
    ("w", lambda s, lv, p: -1, "w_range"),
    ("z3", lambda s, lv, p: s.setup.n << (lv.ell + lv.epsilon + 1) | 1, "z3_range"),
    ("z3", lambda s, lv, p: -(s.setup.n << (lv.ell + lv.epsilon + 1)) - 1, "z3_range"),
    ("z2", lambda s, lv, p: 0, "z2_unit"),
    ("z2", lambda s, lv, p: s.pk0.n, "z2_unit"),
    ("z2", lambda s, lv, p: paillier_key(lv, 0).p, "z2_unit"),
    ("S", lambda s, lv, p: 0, "commitment_unit"),
    ("S", lambda s, lv, p: s.setup.n + 1, "commitment_unit"),
    ("T", lambda s, lv, p: ring_pedersen(lv, 1).p, "commitment_unit"),
    ("D", lambda s, lv, p: s.pk0.n2, "commitment_unit"),
    ("D", lambda s, lv, p: s.pk0.n * 7, "commitment_unit"),
]


@pytest.mark.parametrize(("name", "value", "check"), BAD_VALUES)
def test_out_of_range_rejected_before_exponentiation(
    level: SecurityLevel,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    value: Callable[[enc_elg.Statement, SecurityLevel, enc_elg.Proof], int],
    check: str,
) -> None:
    stmt, _wit, proof = _honest(level)
    changes: dict[str, Any] = {name: value(stmt, level, proof)}
    bad = dataclasses.replace(proof, **changes)
    forbid_modexp(monkeypatch)
    assert _check_of(stmt, bad, level) == check


@pytest.mark.parametrize("which", ["zero", "multiple_of_N0", "factor_of_N0", "N0_squared", "above", "negative"])
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
        "above": n0_sq + stmt.C,
        "negative": -stmt.C,
    }[which]
    forbid_modexp(monkeypatch)
    assert _check_of(dataclasses.replace(stmt, C=c), proof, level) == "c_unit"


# --- binding to the context and the full statement ----------------------------------------------
@pytest.mark.parametrize("other", [(b"session-B", 1, b"rid"), (b"session-A", 2, b"rid"), (b"session-A", 1, b"rid2")])
def test_proof_bound_to_session_prover_and_rid(level: SecurityLevel, other: tuple[bytes, int, bytes]) -> None:
    stmt, _wit, proof = _honest(level)
    with pytest.raises(InvalidProof):
        enc_elg.verify(Transcript.for_proof(*other), stmt, proof, level=level)


def test_proof_for_another_verifier_rejected(level: SecurityLevel) -> None:
    stmt, _wit, proof = _honest(level)
    other = dataclasses.replace(stmt, setup=ring_pedersen(level, 2).params)
    assert _check_of(other, proof, level) == "eq_paillier"


@pytest.mark.parametrize("name", ["A", "B", "X"])
def test_proof_bound_to_statement_points(level: SecurityLevel, name: str) -> None:
    stmt, _wit, proof = _honest(level)
    other = dataclasses.replace(stmt, **{name: getattr(stmt, name) + Point.generator()})
    assert _check_of(other, proof, level) == "eq_paillier"


# --- wire decoding ------------------------------------------------------------------------------
def test_decoding_rejects_malformed_proofs(level: SecurityLevel) -> None:
    _stmt, _wit, proof = _honest(level)
    value = proof.to_value()
    assert isinstance(value, list)
    for bad in (value[:-1], [*value, 1], [value[0], value[1], 7, *value[3:]], [*value[:6], Q, *value[7:]]):
        with pytest.raises(DecodeError):
            enc_elg.Proof.from_value(decode_value(encode_value(bad)))
