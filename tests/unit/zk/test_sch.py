from __future__ import annotations

import dataclasses

import pytest

from signer.tss.curve import Point, Q
from signer.tss.encoding import decode_value, encode_value
from signer.tss.errors import InvalidProof
from signer.tss.transcript import Transcript
from signer.tss.zk import sch
from tests.helpers import SeededRng


def _setup(rng: SeededRng) -> tuple[Transcript, sch.Statement, sch.Witness]:
    x = 1 + rng.randbelow(Q - 1)
    return Transcript.for_proof(b"session-A", 1, b"rid"), sch.Statement(Point.base_mul(x)), sch.Witness(x)


def test_completeness_and_wire_round_trip(rng: SeededRng) -> None:
    t, stmt, wit = _setup(rng)
    proof = sch.prove(t, stmt, wit, rng=rng)
    sch.verify(t, stmt, proof)
    again = sch.Proof.from_value(decode_value(encode_value(proof.to_value())))
    sch.verify(t, stmt, again)


def test_wrong_witness_rejected(rng: SeededRng) -> None:
    t, stmt, wit = _setup(rng)
    proof = sch.prove(t, stmt, sch.Witness((wit.x + 1) % Q), rng=rng)
    with pytest.raises(InvalidProof) as exc:
        sch.verify(t, stmt, proof)
    assert exc.value.check == "equation"


@pytest.mark.parametrize("field", ["A", "z"])
def test_tampered_field_rejected(rng: SeededRng, field: str) -> None:
    t, stmt, wit = _setup(rng)
    proof = sch.prove(t, stmt, wit, rng=rng)
    bad = (
        dataclasses.replace(proof, A=proof.A + Point.generator())
        if field == "A"
        else dataclasses.replace(proof, z=(proof.z + 1) % Q)
    )
    with pytest.raises(InvalidProof) as exc:
        sch.verify(t, stmt, bad)
    assert exc.value.check == "equation"


def test_z_out_of_range_rejected(rng: SeededRng) -> None:
    t, stmt, wit = _setup(rng)
    proof = sch.prove(t, stmt, wit, rng=rng)
    with pytest.raises(InvalidProof) as exc:
        sch.verify(t, stmt, dataclasses.replace(proof, z=proof.z + Q))
    assert exc.value.check == "z_range"


@pytest.mark.parametrize("other", [(b"session-B", 1, b"rid"), (b"session-A", 2, b"rid"), (b"session-A", 1, b"rid2")])
def test_proof_bound_to_session_prover_and_rid(rng: SeededRng, other: tuple[bytes, int, bytes]) -> None:
    t, stmt, wit = _setup(rng)
    proof = sch.prove(t, stmt, wit, rng=rng)
    with pytest.raises(InvalidProof):
        sch.verify(Transcript.for_proof(*other), stmt, proof)
