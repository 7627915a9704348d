from __future__ import annotations

import dataclasses
from functools import cache
from typing import NoReturn

import gmpy2
import pytest

from signer.tss.encoding import decode_value, encode_value
from signer.tss.errors import DecodeError, InvalidInput, InvalidProof
from signer.tss.params import LEVEL_112, LEVEL_128, SecurityLevel
from signer.tss.ring_pedersen import RingPedersenParams, RingPedersenSecret
from signer.tss.transcript import Transcript
from signer.tss.zk import prm
from tests.helpers import SeededRng, ring_pedersen

CONTEXT = (b"session-A", 1, b"rid")
L = LEVEL_112  # tamper tests run at the cheaper level; completeness runs at both


def _transcript() -> Transcript:
    return Transcript.for_proof(*CONTEXT)


@cache
def _honest(level: SecurityLevel) -> tuple[prm.Statement, prm.Proof]:
    """One honest proof per level, shared by the tests (verification never mutates it)."""
    sec = ring_pedersen(level, 0)
    stmt = prm.Statement(sec.params)
    return stmt, prm.prove(_transcript(), stmt, prm.Witness(sec), rng=SeededRng(f"prm-{level.name}"), level=level)


def _check_of(stmt: prm.Statement, proof: prm.Proof, level: SecurityLevel = L) -> str:
    with pytest.raises(InvalidProof) as exc:
        prm.verify(_transcript(), stmt, proof, level=level)
    assert exc.value.proof == prm.NAME
    return exc.value.check


def _set(values: tuple[int, ...], i: int, v: int) -> tuple[int, ...]:
    out = list(values)
    out[i] = v
    return tuple(out)


# --- completeness -------------------------------------------------------------------------------
def test_completeness_and_wire_round_trip(level: SecurityLevel) -> None:
    stmt, proof = _honest(level)
    assert len(proof.A) == len(proof.z) == level.m
    prm.verify(_transcript(), stmt, proof, level=level)
    again = prm.Proof.from_value(decode_value(encode_value(proof.to_value())))
    assert again == proof


def test_decoding_is_type_checked() -> None:
    with pytest.raises(DecodeError):
        prm.Proof.from_value(decode_value(encode_value([[1, 2]])))
    with pytest.raises(DecodeError):
        prm.Proof.from_value(decode_value(encode_value([[1, b"2"], [3, 4]])))
    with pytest.raises(DecodeError):
        prm.Proof.from_value(decode_value(encode_value([5, [3, 4]])))


def test_prover_uses_crt_consistently() -> None:
    """The CRT commitments equal plain t^a mod N̂: check through z on an e = 0 repetition."""
    stmt, proof = _honest(L)
    rp = stmt.params
    e = prm._challenge(_transcript(), stmt, proof.A, L.m)
    i = e.index(0)
    assert gmpy2.powmod(rp.t, proof.z[i], rp.n) == proof.A[i]


# --- wrong witness, wrong statement, wrong session, wrong level ----------------------------------
def test_wrong_lambda_rejected(rng: SeededRng) -> None:
    sec = ring_pedersen(L, 0)
    bad = RingPedersenSecret(sec.p, sec.q, sec.lam + 1, sec.params)
    proof = prm.prove(_transcript(), prm.Statement(sec.params), prm.Witness(bad), rng=rng, level=L)
    assert _check_of(prm.Statement(sec.params), proof) == "equation"


def test_s_outside_the_group_of_t_cannot_be_proved(rng: SeededRng) -> None:
    # t is a square, so ⟨t⟩ holds only squares; −s is a non-residue mod both Blum primes.
    sec = ring_pedersen(L, 0)
    rp = sec.params
    forged = RingPedersenParams(rp.n, rp.n - rp.s, rp.t)
    cheat = RingPedersenSecret(sec.p, sec.q, sec.lam, forged)
    proof = prm.prove(_transcript(), prm.Statement(forged), prm.Witness(cheat), rng=rng, level=L)
    assert _check_of(prm.Statement(forged), proof) == "equation"


def test_witness_for_other_params_refused(rng: SeededRng) -> None:
    stmt, _ = _honest(L)
    with pytest.raises(InvalidInput):
        prm.prove(_transcript(), stmt, prm.Witness(ring_pedersen(L, 1)), rng=rng, level=L)


def test_proof_for_other_params_rejected() -> None:
    _, proof = _honest(L)
    rp = ring_pedersen(L, 0).params
    swapped = prm.Statement(RingPedersenParams(rp.n, rp.t, rp.s))
    assert _check_of(swapped, proof) == "equation"


@pytest.mark.parametrize("other", [(b"session-B", 1, b"rid"), (b"session-A", 2, b"rid"), (b"session-A", 1, b"rid2")])
def test_proof_bound_to_session_prover_and_rid(other: tuple[bytes, int, bytes]) -> None:
    stmt, proof = _honest(L)
    with pytest.raises(InvalidProof) as exc:
        prm.verify(Transcript.for_proof(*other), stmt, proof, level=L)
    assert exc.value.check == "equation"


def test_never_fewer_repetitions_than_the_level() -> None:
    stmt, proof = _honest(L)  # m = 112
    assert _check_of(stmt, proof, LEVEL_128) == "repetitions"


# --- the statement's own checks --------------------------------------------------------------------
@pytest.mark.parametrize("which", ["s_zero", "t_zero", "s_factor", "t_factor", "t_n", "n_even"])
def test_params_not_units_rejected(which: str) -> None:
    stmt, proof = _honest(L)
    sec = ring_pedersen(L, 0)
    rp = stmt.params
    bad = {
        "s_zero": RingPedersenParams(rp.n, 0, rp.t),
        "t_zero": RingPedersenParams(rp.n, rp.s, 0),
        "s_factor": RingPedersenParams(rp.n, sec.p, rp.t),
        "t_factor": RingPedersenParams(rp.n, rp.s, sec.q),
        "t_n": RingPedersenParams(rp.n, rp.s, rp.t + rp.n),
        "n_even": RingPedersenParams(2 * rp.n, rp.s, rp.t),
    }[which]
    assert _check_of(prm.Statement(bad), proof) == "params"


# --- one tamper per proof field, each with its exact check ---------------------------------------
@pytest.mark.parametrize(
    ("field", "how", "check"),
    [
        ("A", "times_t", "equation"),
        ("A", "zero", "a_unit"),
        ("A", "n", "a_unit"),
        ("A", "factor", "a_unit"),
        ("A", "drop", "repetitions"),
        ("A", "extra", "repetitions"),
        ("z", "plus_one", "equation"),
        ("z", "negative", "z_range"),
        ("z", "n", "z_range"),
        ("z", "drop", "repetitions"),
        ("z", "extra", "repetitions"),
    ],
)
def test_tampered_field_rejected(field: str, how: str, check: str) -> None:
    stmt, proof = _honest(L)
    rp = stmt.params
    values: tuple[int, ...] = getattr(proof, field)
    new = {
        "times_t": _set(values, 0, values[0] * rp.t % rp.n),
        "zero": _set(values, 0, 0),
        "n": _set(values, 0, values[0] + rp.n),
        "factor": _set(values, 0, ring_pedersen(L, 0).p),
        "drop": values[:-1],
        "extra": (*values, values[0]),
        "plus_one": _set(values, 0, values[0] + 1),
        "negative": _set(values, 0, -1),
    }[how]
    assert _check_of(stmt, dataclasses.replace(proof, **{field: new})) == check


def test_both_lists_shortened_rejected() -> None:
    stmt, proof = _honest(L)
    assert _check_of(stmt, prm.Proof(proof.A[:-1], proof.z[:-1])) == "repetitions"


def _boom(*_args: object) -> NoReturn:
    raise AssertionError("exponentiation before the range checks")


@pytest.mark.parametrize(
    ("field", "value", "check"), [("A", 0, "a_unit"), ("z", -1, "z_range"), ("z", 1 << 4096, "z_range")]
)
def test_out_of_range_rejected_before_exponentiation(
    monkeypatch: pytest.MonkeyPatch, field: str, value: int, check: str
) -> None:
    stmt, proof = _honest(L)
    monkeypatch.setattr(prm, "powmod_fixed_base", _boom)
    values: tuple[int, ...] = getattr(proof, field)
    bad = dataclasses.replace(proof, **{field: _set(values, L.m - 1, value)})
    assert _check_of(stmt, bad) == check
