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
from signer.tss.zk import aff_g
from tests.helpers import SeededRng, forbid_modexp, paillier_key, ring_pedersen

CONTEXT = (b"session-A", 2, b"rid")


def _transcript() -> Transcript:
    return Transcript.for_proof(*CONTEXT)


def _setup(
    level: SecurityLevel, rng: SeededRng, *, x: int | None = None, y: int | None = None
) -> tuple[aff_g.Statement, aff_g.Witness]:
    """Presign round 2 shape: the verifier j owns N0 and K_j = C; the prover i owns N1.

    D = K_j^x · enc_0(y; ρ), Y = F = enc_1(y; ρ_y), X = x·G, under j's ring-Pedersen parameters.
    """
    sk0, sk1 = paillier_key(level, 0), paillier_key(level, 1)
    pk0, pk1 = sk0.public, sk1.public
    C, _ = pk0.encrypt(rand_signed(rng, level.ell), rng)
    x = rand_signed(rng, level.ell) if x is None else x
    y = rand_signed(rng, level.ell_prime) if y is None else y
    rho, rho_y = rand_unit(rng, pk0.n), rand_unit(rng, pk1.n)
    D = pk0.mul_secret(C, x) * pk0.encrypt_with(y, rho) % pk0.n2
    Y = sk1.encrypt_with(y, rho_y)
    stmt = aff_g.Statement(pk0, pk1, C, D, Y, Point.base_mul(x), ring_pedersen(level, 0).params)
    return stmt, aff_g.Witness(x, y, rho, rho_y, key=sk1)


@cache
def _honest(level: SecurityLevel) -> tuple[aff_g.Statement, aff_g.Witness, aff_g.Proof]:
    """One honest proof per level, shared by the tamper tests (verification never mutates it)."""
    rng = SeededRng(f"aff_g-honest-{level.name}")
    stmt, wit = _setup(level, rng)
    return stmt, wit, aff_g.prove(_transcript(), stmt, wit, rng=rng, level=level)


def _check_of(stmt: aff_g.Statement, proof: aff_g.Proof, level: SecurityLevel) -> str:
    with pytest.raises(InvalidProof) as exc:
        aff_g.verify(_transcript(), stmt, proof, level=level)
    assert exc.value.proof == aff_g.NAME
    return exc.value.check


# --- completeness -------------------------------------------------------------------------------
def test_completeness_and_wire_round_trip(level: SecurityLevel) -> None:
    stmt, _wit, proof = _honest(level)
    again = aff_g.Proof.from_value(decode_value(encode_value(proof.to_value())))
    assert again == proof
    aff_g.verify(_transcript(), stmt, again, level=level)


def test_completeness_without_the_secret_key(level: SecurityLevel, rng: SeededRng) -> None:
    stmt, wit = _setup(level, rng)
    proof = aff_g.prove(_transcript(), stmt, dataclasses.replace(wit, key=None), rng=rng, level=level)
    aff_g.verify(_transcript(), stmt, proof, level=level)


def test_completeness_at_the_edges_of_the_witness_ranges(rng: SeededRng) -> None:
    level = LEVEL_112
    for x, y in [(1 << level.ell, -(1 << level.ell_prime)), (-(1 << level.ell), 1 << level.ell_prime), (0, 0)]:
        stmt, wit = _setup(level, rng, x=x, y=y)
        aff_g.verify(_transcript(), stmt, aff_g.prove(_transcript(), stmt, wit, rng=rng, level=level), level=level)


# --- a cheating prover --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("part", "check"),
    [("D", "eq_d"), ("X", "eq_x"), ("Y", "eq_y")],
    ids=["D-with-another-x", "X-of-another-x", "Y-of-another-y"],
)
def test_wrong_witness_rejected(rng: SeededRng, part: str, check: str) -> None:
    """The statement is built from (x, y) but one part from x+1 or y+1; the prover knows only (x, y)."""
    level = LEVEL_112
    stmt, wit = _setup(level, rng)
    if part == "D":
        bad = dataclasses.replace(stmt, D=stmt.D * stmt.C % stmt.N0.n2)  # C^(x+1) · enc_0(y; ρ)
    elif part == "X":
        bad = dataclasses.replace(stmt, X=stmt.X + Point.generator())
    else:
        bad = dataclasses.replace(stmt, Y=stmt.Y * (1 + stmt.N1.n) % stmt.N1.n2)  # enc_1(y+1; ρ_y)
    proof = aff_g.prove(_transcript(), bad, wit, rng=rng, level=level)
    assert _check_of(bad, proof, level) == check


def test_y_far_out_of_range_rejected(rng: SeededRng) -> None:
    """y = 2^(ℓ'+ε+8) with D and Y consistent: z2 = β + e·y leaves ±2^(ℓ'+ε)."""
    level = LEVEL_112
    stmt, wit = _setup(level, rng, y=1 << (level.ell_prime + level.epsilon + 8))
    proof = aff_g._prove(_transcript(), stmt, wit, rng=rng, level=level)
    assert _check_of(stmt, proof, level) == "z2_range"


def test_x_out_of_range_rejected(rng: SeededRng) -> None:
    level = LEVEL_112
    stmt, wit = _setup(level, rng, x=1 << (level.ell + level.epsilon + 8))
    proof = aff_g._prove(_transcript(), stmt, wit, rng=rng, level=level)
    assert _check_of(stmt, proof, level) == "z1_range"


def test_range_guarantee_has_the_documented_slack(rng: SeededRng) -> None:
    """The proof bounds y by about 2^(ℓ'+ε), not 2^ℓ': a y = 2^(ℓ'+1) slips through (as documented)."""
    level = LEVEL_112
    stmt, wit = _setup(level, rng, y=1 << (level.ell_prime + 1))
    aff_g.verify(_transcript(), stmt, aff_g._prove(_transcript(), stmt, wit, rng=rng, level=level), level=level)


def test_prover_refuses_a_witness_out_of_range(rng: SeededRng) -> None:
    level = LEVEL_112
    stmt, wit = _setup(level, rng)
    for bad in [
        dataclasses.replace(wit, x=(1 << level.ell) + 1),
        dataclasses.replace(wit, y=-(1 << level.ell_prime) - 1),
        dataclasses.replace(wit, rho=0),
        dataclasses.replace(wit, rho_y=stmt.N1.n),
        dataclasses.replace(wit, key=paillier_key(level, 2)),
    ]:
        with pytest.raises(InvalidInput):
            aff_g.prove(_transcript(), stmt, bad, rng=rng, level=level)


# --- one tampered field at a time ---------------------------------------------------------------
# A first-message field changes the challenge e, so the cheap curve equation (checked first) fails.
_TAMPER: dict[str, tuple[Callable[[aff_g.Statement, aff_g.Proof], aff_g.Proof], str]] = {
    "A": (lambda s, p: dataclasses.replace(p, A=p.A * (1 + s.N0.n) % s.N0.n2), "eq_x"),
    "B_x": (lambda s, p: dataclasses.replace(p, B_x=p.B_x + Point.generator()), "eq_x"),
    "B_y": (lambda s, p: dataclasses.replace(p, B_y=p.B_y * (1 + s.N1.n) % s.N1.n2), "eq_x"),
    "E": (lambda s, p: dataclasses.replace(p, E=p.E * s.rp.s % s.rp.n), "eq_x"),
    "F": (lambda s, p: dataclasses.replace(p, F=p.F * s.rp.s % s.rp.n), "eq_x"),
    "S": (lambda s, p: dataclasses.replace(p, S=p.S * s.rp.s % s.rp.n), "eq_x"),
    "T": (lambda s, p: dataclasses.replace(p, T=p.T * s.rp.s % s.rp.n), "eq_x"),
    "z1": (lambda s, p: dataclasses.replace(p, z1=p.z1 + 1), "eq_x"),
    "z2": (lambda s, p: dataclasses.replace(p, z2=p.z2 + 1), "eq_d"),
    "z3": (lambda s, p: dataclasses.replace(p, z3=p.z3 + 1), "eq_pedersen_x"),
    "z4": (lambda s, p: dataclasses.replace(p, z4=p.z4 + 1), "eq_pedersen_y"),
    "w": (lambda s, p: dataclasses.replace(p, w=p.w * 2 % s.N0.n), "eq_d"),
    "w_y": (lambda s, p: dataclasses.replace(p, w_y=p.w_y * 2 % s.N1.n), "eq_y"),
}


def test_every_proof_field_has_a_tamper_case() -> None:
    assert set(_TAMPER) == {f.name for f in dataclasses.fields(aff_g.Proof)}


@pytest.mark.parametrize("name", sorted(_TAMPER))
def test_tampered_field_rejected(level: SecurityLevel, name: str) -> None:
    stmt, _wit, proof = _honest(level)
    tamper, check = _TAMPER[name]
    assert _check_of(stmt, tamper(stmt, proof), level) == check


def test_z1_shifted_by_the_group_order_fails_eq_d() -> None:
    """z1 + q passes the curve equation; the Paillier one still binds z1 as an integer."""
    level = LEVEL_112
    stmt, _wit, proof = _honest(level)
    assert _check_of(stmt, dataclasses.replace(proof, z1=proof.z1 + Q), level) == "eq_d"


# --- range and membership checks, before any exponentiation -------------------------------------
_Change = Callable[[SecurityLevel, aff_g.Statement], dict[str, Any]]


def _z1_max(level: SecurityLevel, _s: aff_g.Statement) -> int:
    return 1 << (level.ell + level.epsilon)


def _z2_max(level: SecurityLevel, _s: aff_g.Statement) -> int:
    return 1 << (level.ell_prime + level.epsilon)


def _p0(level: SecurityLevel) -> int:
    return paillier_key(level, 0).p


_EDGE: dict[str, tuple[_Change, str]] = {
    "z1-high": (lambda lv, s: {"z1": _z1_max(lv, s) + 1}, "z1_range"),
    "z1-low": (lambda lv, s: {"z1": -_z1_max(lv, s) - 1}, "z1_range"),
    "z1-huge": (lambda lv, s: {"z1": 1 << 100_000}, "z1_range"),
    "z2-high": (lambda lv, s: {"z2": _z2_max(lv, s) + 1}, "z2_range"),
    "z2-low": (lambda lv, s: {"z2": -_z2_max(lv, s) - 1}, "z2_range"),
    "z3-high": (lambda lv, s: {"z3": aff_g.z34_bound(lv, s.rp.n) + 1}, "z3_range"),
    "z4-low": (lambda lv, s: {"z4": -aff_g.z34_bound(lv, s.rp.n) - 1}, "z4_range"),
    "w-zero": (lambda lv, s: {"w": 0}, "w_unit"),
    "w-factor": (lambda lv, s: {"w": _p0(lv)}, "w_unit"),
    "w-big": (lambda lv, s: {"w": s.N0.n + 1}, "w_unit"),
    "w_y-modulus": (lambda lv, s: {"w_y": s.N1.n}, "w_unit"),
    "A-zero": (lambda lv, s: {"A": 0}, "commitment_unit"),
    "A-factor": (lambda lv, s: {"A": _p0(lv) * 5}, "commitment_unit"),
    "A-big": (lambda lv, s: {"A": s.N0.n2}, "commitment_unit"),
    "B_y-big": (lambda lv, s: {"B_y": s.N1.n2 + 1}, "commitment_unit"),
    "E-zero": (lambda lv, s: {"E": 0}, "commitment_unit"),
    "F-modulus": (lambda lv, s: {"F": s.rp.n}, "commitment_unit"),
    "S-big": (lambda lv, s: {"S": s.rp.n + 1}, "commitment_unit"),
    "T-negative": (lambda lv, s: {"T": -1}, "commitment_unit"),
}


@pytest.mark.parametrize("case", sorted(_EDGE))
def test_bad_value_rejected_before_any_exponentiation(monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    level = LEVEL_112
    stmt, _wit, proof = _honest(level)
    change, check = _EDGE[case]
    bad = dataclasses.replace(proof, **change(level, stmt))
    forbid_modexp(monkeypatch)
    assert _check_of(stmt, bad, level) == check


def test_boundary_values_pass_the_range_checks() -> None:
    """Exactly ±2^(ℓ+ε), ±2^(ℓ'+ε) and the z3/z4 bound are inside: the proof reaches the equations."""
    level = LEVEL_112
    stmt, _wit, proof = _honest(level)
    z34 = aff_g.z34_bound(level, stmt.rp.n)
    edge = dataclasses.replace(
        proof, z1=1 << (level.ell + level.epsilon), z2=-(1 << (level.ell_prime + level.epsilon)), z3=z34, z4=-z34
    )
    assert _check_of(stmt, edge, level) == "eq_x"


def test_malformed_statement_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    level = LEVEL_112
    stmt, _wit, proof = _honest(level)
    p0, p1 = paillier_key(level, 0).p, paillier_key(level, 1).q
    bad = [
        dataclasses.replace(stmt, C=0),
        dataclasses.replace(stmt, C=p0 * 7),
        dataclasses.replace(stmt, D=stmt.N0.n2),
        dataclasses.replace(stmt, D=-stmt.D),
        dataclasses.replace(stmt, Y=p1),
        dataclasses.replace(stmt, Y=stmt.N1.n2 + 1),
        dataclasses.replace(stmt, N0=type(stmt.N0)(stmt.N0.n >> 1)),
        dataclasses.replace(stmt, rp=dataclasses.replace(stmt.rp, n=stmt.rp.n << 1)),
        dataclasses.replace(stmt, rp=dataclasses.replace(stmt.rp, s=0)),
        dataclasses.replace(stmt, rp=dataclasses.replace(stmt.rp, t=stmt.rp.n + 1)),
    ]
    forbid_modexp(monkeypatch)
    for s in bad:
        assert _check_of(s, proof, level) == "statement"


# --- binding: session, prover, rid, and the verifier's own statement -------------------------------
@pytest.mark.parametrize("other", [(b"session-B", 2, b"rid"), (b"session-A", 3, b"rid"), (b"session-A", 2, b"rid2")])
def test_proof_bound_to_session_prover_and_rid(other: tuple[bytes, int, bytes]) -> None:
    level = LEVEL_112
    stmt, _wit, proof = _honest(level)
    with pytest.raises(InvalidProof) as exc:
        aff_g.verify(Transcript.for_proof(*other), stmt, proof, level=level)
    assert exc.value.check == "eq_x"


def test_proof_for_another_verifier_rejected(rng: SeededRng) -> None:
    """A proof made under verifier 0's setup does not verify under another verifier's own parameters."""
    level = LEVEL_112
    stmt, _wit, proof = _honest(level)
    theirs = dataclasses.replace(stmt, rp=ring_pedersen(level, 1).params)
    with pytest.raises(InvalidProof):
        aff_g.verify(_transcript(), theirs, proof, level=level)


def test_proof_bound_to_the_level() -> None:
    """A 112-level proof checked with the other level's parameters fails (sizes and transcript differ)."""
    stmt, _wit, proof = _honest(LEVEL_112)
    assert _check_of(stmt, proof, LEVEL_128) == "statement"


# --- wire decoding --------------------------------------------------------------------------------
def test_decoding_rejects_malformed_proofs() -> None:
    _stmt, _wit, proof = _honest(LEVEL_112)
    fields = proof.to_value()
    assert isinstance(fields, list)
    malformed: list[Value] = [
        fields[:-1],  # a field missing
        [*fields, 1],  # one too many
        [fields[0], b"\x02" * 33, *fields[2:]],  # B_x as bytes, not a point
        [fields[1], *fields[1:]],  # A as a point, not an integer
        5,  # not a list
    ]
    for bad in malformed:
        with pytest.raises(DecodeError):
            aff_g.Proof.from_value(decode_value(encode_value(bad)))
