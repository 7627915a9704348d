"""Πaff-g* is m repetitions of Paillier work per proof (seconds at 112, tens of seconds at 128).

So one honest proof per level is shared (the 112 one made without the prover's secret key, the
128 one with it, covering both encryption paths), tampering hits repetition 0 so that verification
fails early, and only two cheating proofs are made, at the 112 level.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from functools import cache
from typing import Any

import pytest

from signer.tss.curve import Point, Q
from signer.tss.encoding import Value, decode_value, encode_value
from signer.tss.errors import DecodeError, InvalidInput, InvalidProof
from signer.tss.params import LEVEL_112, LEVEL_128, SecurityLevel
from signer.tss.rng import rand_signed, rand_unit
from signer.tss.transcript import Transcript
from signer.tss.zk import aff_g_star
from tests.helpers import SeededRng, forbid_modexp, paillier_key

CONTEXT = (b"session-A", 2, b"rid")
Stmt = aff_g_star.Statement
Rep = aff_g_star.Repetition


def _transcript() -> Transcript:
    return Transcript.for_proof(*CONTEXT)


def _setup(
    level: SecurityLevel, rng: SeededRng, *, y: int | None = None, with_key: bool = True
) -> tuple[Stmt, aff_g_star.Witness]:
    """Identification shape: D = K_j^x · enc_0(y; ρ) under N0 = N_j, Y = F = enc_1(y; μ) under N1 = N_i."""
    sk0, sk1 = paillier_key(level, 0), paillier_key(level, 1)
    pk0, pk1 = sk0.public, sk1.public
    C, _ = pk0.encrypt(rand_signed(rng, level.ell), rng)
    x = rand_signed(rng, level.ell)
    y = rand_signed(rng, level.ell_prime) if y is None else y
    rho, mu = rand_unit(rng, pk0.n), rand_unit(rng, pk1.n)
    D = pk0.mul_secret(C, x) * pk0.encrypt_with(y, rho) % pk0.n2
    stmt = Stmt(pk0, pk1, C, D, sk1.encrypt_with(y, mu), Point.base_mul(x))
    return stmt, aff_g_star.Witness(x, y, rho, mu, key=sk1 if with_key else None)


@cache
def _honest(level: SecurityLevel) -> tuple[Stmt, aff_g_star.Witness, aff_g_star.Proof]:
    """One honest proof per level, shared by the tests (verification never mutates it)."""
    rng = SeededRng(f"aff_g_star-honest-{level.name}")
    stmt, wit = _setup(level, rng, with_key=level is not LEVEL_112)
    return stmt, wit, aff_g_star.prove(_transcript(), stmt, wit, rng=rng, level=level)


def _check_of(stmt: Stmt, proof: aff_g_star.Proof, level: SecurityLevel) -> str:
    with pytest.raises(InvalidProof) as exc:
        aff_g_star.verify(_transcript(), stmt, proof, level=level)
    assert exc.value.proof == aff_g_star.NAME
    return exc.value.check


def _with_rep(proof: aff_g_star.Proof, j: int, **changes: Any) -> aff_g_star.Proof:
    reps = list(proof.reps)
    reps[j] = dataclasses.replace(reps[j], **changes)
    return aff_g_star.Proof(tuple(reps))


# --- completeness -------------------------------------------------------------------------------
def _complete(level: SecurityLevel) -> None:
    stmt, _wit, proof = _honest(level)
    assert len(proof.reps) == level.m
    again = aff_g_star.Proof.from_value(decode_value(encode_value(proof.to_value())))
    assert again == proof
    aff_g_star.verify(_transcript(), stmt, again, level=level)


@pytest.mark.slow(7)
def test_completeness_and_wire_round_trip() -> None:
    _complete(LEVEL_112)


@pytest.mark.slow(20)
def test_completeness_and_wire_round_trip_at_128() -> None:
    _complete(LEVEL_128)


# --- a cheating prover (112 only: each proof costs seconds) --------------------------------------
@pytest.mark.slow(3)
def test_wrong_witness_rejected(rng: SeededRng) -> None:
    """D is built from x+1 (a D built with a different x); the prover knows only x."""
    level = LEVEL_112
    stmt, wit = _setup(level, rng)
    bad = dataclasses.replace(stmt, D=stmt.D * stmt.C % stmt.N0.n2)
    proof = aff_g_star.prove(_transcript(), bad, wit, rng=rng, level=level)
    assert _check_of(bad, proof, level) == "eq_d"


@pytest.mark.slow(3)
def test_y_far_out_of_range_rejected(rng: SeededRng) -> None:
    """y = 2^(ℓ'+ε+8) with D and Y consistent: every z2 = β + y (e_j = 1) leaves ±2^(ℓ'+ε)."""
    level = LEVEL_112
    stmt, wit = _setup(level, rng, y=1 << (level.ell_prime + level.epsilon + 8))
    proof = aff_g_star._prove(_transcript(), stmt, wit, rng=rng, level=level)
    assert _check_of(stmt, proof, level) == "z2_range"


def test_prover_refuses_a_witness_out_of_range(rng: SeededRng) -> None:
    level = LEVEL_112
    stmt, wit = _setup(level, rng)
    for bad in [
        dataclasses.replace(wit, x=(1 << level.ell) + 1),
        dataclasses.replace(wit, y=(1 << level.ell_prime) + 1),
        dataclasses.replace(wit, rho=stmt.N0.n),
        dataclasses.replace(wit, mu=0),
        dataclasses.replace(wit, key=paillier_key(level, 2)),
    ]:
        with pytest.raises(InvalidInput):
            aff_g_star.prove(_transcript(), stmt, bad, rng=rng, level=level)


# --- one tampered field at a time (in repetition 0) ---------------------------------------------
# A first-message field changes the challenge bits, so the curve equations (all run first) fail.
_TAMPER: dict[str, tuple[Callable[[Stmt, Rep], dict[str, Any]], str]] = {
    "A": (lambda s, r: {"A": r.A * (1 + s.N0.n) % s.N0.n2}, "eq_x"),
    "B_x": (lambda s, r: {"B_x": r.B_x + Point.generator()}, "eq_x"),
    "B_y": (lambda s, r: {"B_y": r.B_y * (1 + s.N1.n) % s.N1.n2}, "eq_x"),
    "z1": (lambda s, r: {"z1": r.z1 + 1}, "eq_x"),
    "z2": (lambda s, r: {"z2": r.z2 + 1}, "eq_d"),
    "w": (lambda s, r: {"w": r.w * 2 % s.N0.n}, "eq_d"),
    "w_y": (lambda s, r: {"w_y": r.w_y * 2 % s.N1.n}, "eq_y"),
}


def test_every_proof_field_has_a_tamper_case() -> None:
    assert set(_TAMPER) == {f.name for f in dataclasses.fields(Rep)}


@pytest.mark.parametrize("name", sorted(_TAMPER))
def test_tampered_field_rejected(name: str) -> None:
    level = LEVEL_112
    stmt, _wit, proof = _honest(level)
    tamper, check = _TAMPER[name]
    assert _check_of(stmt, _with_rep(proof, 0, **tamper(stmt, proof.reps[0])), level) == check


def test_z1_shifted_by_the_group_order_fails_eq_d() -> None:
    """z1 + q passes the curve equation; the Paillier one still binds z1 as an integer."""
    level = LEVEL_112
    stmt, _wit, proof = _honest(level)
    assert _check_of(stmt, _with_rep(proof, 0, z1=proof.reps[0].z1 + Q), level) == "eq_d"


def test_reordered_repetitions_rejected() -> None:
    level = LEVEL_112
    stmt, _wit, proof = _honest(level)
    swapped = aff_g_star.Proof((proof.reps[1], proof.reps[0], *proof.reps[2:]))
    assert _check_of(stmt, swapped, level) == "eq_x"


@pytest.mark.parametrize("how", ["missing", "extra", "empty"])
def test_wrong_number_of_repetitions_rejected(monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    level = LEVEL_112
    stmt, _wit, proof = _honest(level)
    reps = {"missing": proof.reps[:-1], "extra": (*proof.reps, proof.reps[0]), "empty": ()}[how]
    forbid_modexp(monkeypatch)
    assert _check_of(stmt, aff_g_star.Proof(reps), level) == "repetitions"


# --- range and membership checks, before any exponentiation -------------------------------------
_EDGE: dict[str, tuple[Callable[[SecurityLevel, Stmt], dict[str, Any]], str]] = {
    "z1-high": (lambda lv, s: {"z1": (1 << (lv.ell + lv.epsilon)) + 1}, "z1_range"),
    "z1-low": (lambda lv, s: {"z1": -(1 << (lv.ell + lv.epsilon)) - 1}, "z1_range"),
    "z1-huge": (lambda lv, s: {"z1": 1 << 100_000}, "z1_range"),
    "z2-high": (lambda lv, s: {"z2": (1 << (lv.ell_prime + lv.epsilon)) + 1}, "z2_range"),
    "z2-low": (lambda lv, s: {"z2": -(1 << (lv.ell_prime + lv.epsilon)) - 1}, "z2_range"),
    "w-zero": (lambda lv, s: {"w": 0}, "w_unit"),
    "w-factor": (lambda lv, s: {"w": paillier_key(lv, 0).q}, "w_unit"),
    "w_y-big": (lambda lv, s: {"w_y": s.N1.n + 1}, "w_unit"),
    "A-factor": (lambda lv, s: {"A": paillier_key(lv, 0).p * 3}, "commitment_unit"),
    "A-big": (lambda lv, s: {"A": s.N0.n2}, "commitment_unit"),
    "B_y-zero": (lambda lv, s: {"B_y": 0}, "commitment_unit"),
    "B_y-negative": (lambda lv, s: {"B_y": -s.N1.n - 1}, "commitment_unit"),
}


@pytest.mark.parametrize("case", sorted(_EDGE))
def test_bad_value_rejected_before_any_exponentiation(monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    """The bad value sits in the last repetition: all of them are checked before any Paillier work."""
    level = LEVEL_112
    stmt, _wit, proof = _honest(level)
    change, check = _EDGE[case]
    bad = _with_rep(proof, level.m - 1, **change(level, stmt))
    forbid_modexp(monkeypatch)
    assert _check_of(stmt, bad, level) == check


def test_boundary_values_pass_the_range_checks() -> None:
    """Exactly ±2^(ℓ+ε) and ±2^(ℓ'+ε) are inside: the proof reaches the equations."""
    level = LEVEL_112
    stmt, _wit, proof = _honest(level)
    edge = _with_rep(proof, 0, z1=-(1 << (level.ell + level.epsilon)), z2=1 << (level.ell_prime + level.epsilon))
    assert _check_of(stmt, edge, level) == "eq_x"


def test_malformed_statement_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    level = LEVEL_112
    stmt, _wit, proof = _honest(level)
    p0, q1 = paillier_key(level, 0).p, paillier_key(level, 1).q
    bad = [
        dataclasses.replace(stmt, C=0),
        dataclasses.replace(stmt, C=p0 * 11),
        dataclasses.replace(stmt, D=stmt.N0.n2 + stmt.D),
        dataclasses.replace(stmt, Y=q1),
        dataclasses.replace(stmt, Y=-stmt.Y),
        dataclasses.replace(stmt, N1=type(stmt.N1)(stmt.N1.n << 1)),
    ]
    forbid_modexp(monkeypatch)
    for s in bad:
        assert _check_of(s, proof, level) == "statement"


# --- binding: session, prover, rid, level -----------------------------------------------------------
@pytest.mark.parametrize("other", [(b"session-B", 2, b"rid"), (b"session-A", 3, b"rid"), (b"session-A", 2, b"rid2")])
def test_proof_bound_to_session_prover_and_rid(other: tuple[bytes, int, bytes]) -> None:
    level = LEVEL_112
    stmt, _wit, proof = _honest(level)
    with pytest.raises(InvalidProof) as exc:
        aff_g_star.verify(Transcript.for_proof(*other), stmt, proof, level=level)
    assert exc.value.check == "eq_x"


def test_proof_for_another_statement_rejected() -> None:
    """The verifier's own X differs from the prover's: the challenge bits and eq_x both change."""
    level = LEVEL_112
    stmt, _wit, proof = _honest(level)
    assert _check_of(dataclasses.replace(stmt, X=stmt.X + Point.generator()), proof, level) == "eq_x"


def test_proof_bound_to_the_level() -> None:
    stmt, _wit, proof = _honest(LEVEL_112)
    assert _check_of(stmt, proof, LEVEL_128) == "repetitions"


# --- wire decoding --------------------------------------------------------------------------------
def test_decoding_rejects_malformed_proofs() -> None:
    _stmt, _wit, proof = _honest(LEVEL_112)
    reps = proof.to_value()
    assert isinstance(reps, list)
    first = reps[0]
    assert isinstance(first, list)
    malformed: list[Value] = [
        [first[:-1], *reps[1:]],  # a repetition with a field missing
        [[*first, 1], *reps[1:]],  # one field too many
        [[first[0], b"\x02" * 33, *first[2:]], *reps[1:]],  # B_x as bytes, not a point
        [[first[1], *first[1:]], *reps[1:]],  # A as a point, not an integer
        [5, *reps[1:]],  # a repetition that is not a list
        5,  # not a list
    ]
    for bad in malformed:
        with pytest.raises(DecodeError):
            aff_g_star.Proof.from_value(decode_value(encode_value(bad)))
