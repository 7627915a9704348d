from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from signer.tss.curve import Point, Q
from signer.tss.encoding import decode_value, encode_value
from signer.tss.errors import DecodeError, InvalidInput, InvalidProof
from signer.tss.params import SecurityLevel
from signer.tss.transcript import Transcript
from signer.tss.zk import elog
from tests.helpers import SeededRng

CONTEXT = (b"session-A", 1, b"rid")


def _transcript() -> Transcript:
    return Transcript.for_proof(*CONTEXT)


def _scalar(rng: SeededRng) -> int:
    return 1 + rng.randbelow(Q - 1)


def _round2(rng: SeededRng) -> tuple[elog.Statement, elog.Witness]:
    """Presign round 2: L = B_i1 = b·G, M = B_i2 = b·Y_i + γ·G, X = Y_i, Y = Γ_i = γ·G, h = G."""
    gamma, b, y_key = _scalar(rng), _scalar(rng), Point.base_mul(_scalar(rng))
    stmt = elog.Statement(
        L=Point.base_mul(b),
        M=y_key * b + Point.base_mul(gamma),
        X=y_key,
        Y=Point.base_mul(gamma),
        h=Point.generator(),
    )
    return stmt, elog.Witness(y=gamma, lam=b)


def _round3(rng: SeededRng) -> tuple[elog.Statement, elog.Witness]:
    """Presign round 3: L = A_i1 = a·G, M = A_i2 = a·Y_i + k·G, X = Y_i, Y = Δ_i = k·Γ, h = Γ."""
    k, a, y_key, big_gamma = _scalar(rng), _scalar(rng), Point.base_mul(_scalar(rng)), Point.base_mul(_scalar(rng))
    stmt = elog.Statement(
        L=Point.base_mul(a),
        M=y_key * a + Point.base_mul(k),
        X=y_key,
        Y=big_gamma * k,
        h=big_gamma,
    )
    return stmt, elog.Witness(y=k, lam=a)


SHAPES = {"round2": _round2, "round3": _round3}


def _check_of(stmt: elog.Statement, proof: elog.Proof) -> str:
    with pytest.raises(InvalidProof) as exc:
        elog.verify(_transcript(), stmt, proof)
    assert exc.value.proof == elog.NAME
    return exc.value.check


# --- completeness -------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", list(SHAPES))
def test_completeness_and_wire_round_trip(level: SecurityLevel, rng: SeededRng, shape: str) -> None:
    stmt, wit = SHAPES[shape](rng)
    proof = elog.prove(_transcript(), stmt, wit, rng=rng, level=level)
    elog.verify(_transcript(), stmt, proof, level=level)
    again = elog.Proof.from_value(decode_value(encode_value(proof.to_value())))
    assert again == proof
    elog.verify(_transcript(), stmt, again, level=level)


def test_witness_repr_hides_secrets(rng: SeededRng) -> None:
    _stmt, wit = _round3(rng)
    assert str(wit.y) not in repr(wit) and str(wit.lam) not in repr(wit)


# --- soundness ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "check"), [("lam", "eq_l"), ("y", "eq_m")])
def test_wrong_witness_rejected(rng: SeededRng, name: str, check: str) -> None:
    stmt, wit = _round3(rng)
    bad = dataclasses.replace(wit, **{name: (getattr(wit, name) + 1) % Q})
    proof = elog.prove(_transcript(), stmt, bad, rng=rng)
    assert _check_of(stmt, proof) == check


def test_Y_not_y_times_h_rejected(rng: SeededRng) -> None:
    # L and M are consistent with the witness but Y ≠ y·h: only the last equation can notice.
    stmt, wit = _round3(rng)
    stmt = dataclasses.replace(stmt, Y=stmt.Y + Point.generator())
    proof = elog.prove(_transcript(), stmt, wit, rng=rng)
    assert _check_of(stmt, proof) == "eq_y"


# --- one tamper per proof field -----------------------------------------------------------------
# A changed first message changes the challenge, so the first equation catches it.
TAMPER_CHECKS = {"A": "eq_l", "N": "eq_l", "B": "eq_l", "z": "eq_l", "u": "eq_m"}


@pytest.mark.parametrize("name", list(TAMPER_CHECKS))
def test_tampered_field_rejected(rng: SeededRng, name: str) -> None:
    stmt, wit = _round3(rng)
    proof = elog.prove(_transcript(), stmt, wit, rng=rng)
    value = getattr(proof, name)
    change: dict[str, Any] = {name: value + Point.generator() if isinstance(value, Point) else (value + 1) % Q}
    assert _check_of(stmt, dataclasses.replace(proof, **change)) == TAMPER_CHECKS[name]


@pytest.mark.parametrize(("name", "check"), [("z", "z_range"), ("u", "u_range")])
@pytest.mark.parametrize("offset", [Q, -Q])
def test_non_canonical_scalar_rejected(rng: SeededRng, name: str, check: str, offset: int) -> None:
    stmt, wit = _round2(rng)
    proof = elog.prove(_transcript(), stmt, wit, rng=rng)
    bad = dataclasses.replace(proof, **{name: getattr(proof, name) + offset})
    assert _check_of(stmt, bad) == check


def test_identity_h_rejected(rng: SeededRng) -> None:
    stmt, wit = _round3(rng)
    proof = elog.prove(_transcript(), stmt, wit, rng=rng)
    degenerate = dataclasses.replace(stmt, Y=Point.identity(), h=Point.identity())
    assert _check_of(degenerate, proof) == "identity_point"
    with pytest.raises(InvalidInput):
        elog.prove(_transcript(), degenerate, wit, rng=rng)


# --- binding to the context and the full statement ----------------------------------------------
@pytest.mark.parametrize("other", [(b"session-B", 1, b"rid"), (b"session-A", 2, b"rid"), (b"session-A", 1, b"rid2")])
def test_proof_bound_to_session_prover_and_rid(rng: SeededRng, other: tuple[bytes, int, bytes]) -> None:
    stmt, wit = _round2(rng)
    proof = elog.prove(_transcript(), stmt, wit, rng=rng)
    with pytest.raises(InvalidProof):
        elog.verify(Transcript.for_proof(*other), stmt, proof)


@pytest.mark.parametrize("name", ["L", "M", "X", "Y", "h"])
def test_proof_bound_to_statement_points(rng: SeededRng, name: str) -> None:
    stmt, wit = _round3(rng)
    proof = elog.prove(_transcript(), stmt, wit, rng=rng)
    other = dataclasses.replace(stmt, **{name: getattr(stmt, name) + Point.generator()})
    assert _check_of(other, proof) == "eq_l"


def test_fig8_argument_order_does_not_verify(rng: SeededRng) -> None:
    # Fig. 8 lists (Γ_i, g, B_i1, B_i2, Y_i); wiring the proof in that order must not verify.
    stmt, wit = _round2(rng)
    proof = elog.prove(_transcript(), stmt, wit, rng=rng)
    misordered = elog.Statement(L=stmt.Y, M=stmt.h, X=stmt.L, Y=stmt.M, h=stmt.X)
    with pytest.raises(InvalidProof):
        elog.verify(_transcript(), misordered, proof)


# --- wire decoding ------------------------------------------------------------------------------
def test_decoding_rejects_malformed_proofs(rng: SeededRng) -> None:
    stmt, wit = _round2(rng)
    value = elog.prove(_transcript(), stmt, wit, rng=rng).to_value()
    assert isinstance(value, list)
    for bad in (value[:-1], [*value, 1], [1, *value[1:]], [*value[:3], Q, value[4]], [*value[:4], -1]):
        with pytest.raises(DecodeError):
            elog.Proof.from_value(decode_value(encode_value(bad)))
