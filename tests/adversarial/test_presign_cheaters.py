"""Presigning with one cheating signer: every abort names exactly the cheater and the failed check.

The tamper hook decodes the cheater's message to a victim, alters one field and re-encodes it
(skipping the cheater's own checks), so the victim's verification is what is under test.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from signer.tss import echo, presign, presign_identify, simulation
from signer.tss.curve import Q
from signer.tss.key_share import AuxInfo, KeyShare
from signer.tss.params import LEVEL_112
from signer.tss.presign_identify import PresignIdentifyRound
from signer.tss.presign_msgs import (
    PresignRound1Broadcast,
    PresignRound1Direct,
    PresignRound2Broadcast,
    PresignRound2Direct,
    PresignRound3Broadcast,
    PresignRound4Broadcast,
)
from signer.tss.rounds import Outgoing
from signer.tss.simulation import SimulationResult, Tamper
from tests.helpers import SeededRng
from tests.sessions import aux_from_fixtures, keygen_shares

PARTIES = (1, 2, 3)
CHEATER, VICTIM = 2, 1
Setup = tuple[dict[int, KeyShare], dict[int, AuxInfo]]


@pytest.fixture(scope="module")
def t2n3() -> Setup:
    return keygen_shares(2, PARTIES), aux_from_fixtures(LEVEL_112, PARTIES)


@pytest.fixture(scope="module")
def t3() -> Setup:
    """Three signers (t = 3 of 5): equivocation needs a third party to compare echoes with."""
    parties = (1, 2, 3, 4, 5)
    return keygen_shares(3, parties), aux_from_fixtures(LEVEL_112, parties)


def starts(setup: Setup, signers: tuple[int, ...], seed: str) -> dict[int, Any]:
    shares, aux = setup
    rng = SeededRng(seed)
    sid = f"adv-presign/{seed}".encode()
    return {p: presign.start(sid, shares[p], aux[p], signers, rng=rng) for p in signers}


def run(setup: Setup, signers: tuple[int, ...], seed: str, tamper: Tamper) -> SimulationResult:
    return simulation.run(starts(setup, signers, seed), tamper=tamper)


def alter(
    round_name: str, kind: str, decode: Callable[[bytes], Any], change: Callable[[Any], Any], to: int | None = VICTIM
) -> Tamper:
    """Tamper with the cheater's `kind` ("broadcast"/"direct") message of a round, to one recipient or all."""

    def hook(msg: Outgoing, recipient: int) -> bytes | None:
        is_kind = (msg.recipient is None) == (kind == "broadcast")
        if msg.sender == CHEATER and msg.round == round_name and is_kind and (to is None or recipient == to):
            new: bytes = change(decode(msg.payload)).encode()
            return new
        return msg.payload

    return hook


def assert_blamed(result: SimulationResult, check: str) -> None:
    """The honest parties name the cheater, and only it, with `check` among the failed checks.

    The simulation leaves out the verdicts of the cheater (a corrupted sender runs honest code that
    never learns what was sent in its name).
    """
    assert result.aborts, "the cheat went unnoticed"
    assert result.corrupted == {CHEATER}
    assert result.culprits() == {CHEATER}
    checks = {b.check for p, a in result.aborts.items() if p not in result.corrupted for b in a.blames}
    assert check in checks, checks


def pk(setup: Setup, party: int) -> Any:
    return setup[1][party].of(party).paillier


@pytest.mark.parametrize(("field", "check"), [("psi0", "enc_elg_k"), ("psi1", "enc_elg_g")])
def test_bad_enc_elg_to_one_victim(t2n3: Setup, field: str, check: str) -> None:
    def change(dm: PresignRound1Direct) -> PresignRound1Direct:
        proof = getattr(dm, field)
        return dataclasses.replace(dm, **{field: dataclasses.replace(proof, z1=proof.z1 + 1)})

    result = run(t2n3, (1, 2), f"enc-elg-{field}", alter("presign/r1", "direct", PresignRound1Direct.decode, change))
    assert_blamed(result, check)
    assert set(result.aborts) == {VICTIM}


def test_ciphertext_outside_the_unit_group_is_a_decode_failure(t2n3: Setup) -> None:
    n = pk(t2n3, CHEATER).n

    def decode(data: bytes) -> PresignRound1Broadcast:
        return PresignRound1Broadcast.decode(data, pk(t2n3, CHEATER))

    def change(b: PresignRound1Broadcast) -> PresignRound1Broadcast:
        return dataclasses.replace(b, K=n * 7)  # shares the factor N with the modulus: not in Z*_{N²}

    result = run(t2n3, (1, 2), "k-not-unit", alter("presign/r1", "broadcast", decode, change))
    assert_blamed(result, "decode")


def _r2_direct(setup: Setup) -> Callable[[bytes], PresignRound2Direct]:
    def decode(data: bytes) -> PresignRound2Direct:
        return PresignRound2Direct.decode(data, pk(setup, VICTIM), pk(setup, CHEATER))

    return decode


@pytest.mark.parametrize(("field", "check"), [("psi", "aff_g_gamma"), ("psi_hat", "aff_g_x")])
def test_bad_aff_g(t2n3: Setup, field: str, check: str) -> None:
    def change(dm: PresignRound2Direct) -> PresignRound2Direct:
        proof = getattr(dm, field)
        return dataclasses.replace(dm, **{field: dataclasses.replace(proof, z2=proof.z2 + 1)})

    result = run(t2n3, (1, 2), f"aff-g-{field}", alter("presign/r2", "direct", _r2_direct(t2n3), change))
    assert_blamed(result, check)


def test_d_computed_with_a_wrong_gamma(t2n3: Setup) -> None:
    """D' = D·K_victim encrypts k·(γ+1) + β: the Πaff-g for D no longer holds."""
    seen: dict[str, int] = {}
    inner = alter(
        "presign/r2",
        "direct",
        _r2_direct(t2n3),
        lambda dm: dataclasses.replace(dm, D=dm.D * seen["K"] % pk(t2n3, VICTIM).n2),
    )

    def hook(msg: Outgoing, recipient: int) -> bytes | None:
        if msg.sender == VICTIM and msg.round == "presign/r1" and msg.recipient is None:
            seen["K"] = PresignRound1Broadcast.decode(msg.payload, pk(t2n3, VICTIM)).K
        return inner(msg, recipient)

    assert_blamed(run(t2n3, (1, 2), "wrong-gamma", hook), "aff_g_gamma")


def test_bad_elog_in_round_2(t2n3: Setup) -> None:
    def change(b: PresignRound2Broadcast) -> PresignRound2Broadcast:
        return dataclasses.replace(b, psi_elog=dataclasses.replace(b.psi_elog, z=(b.psi_elog.z + 1) % Q))

    tamper = alter("presign/r2", "broadcast", PresignRound2Broadcast.decode, change, to=None)
    assert_blamed(run(t2n3, (1, 2), "elog-r2", tamper), "elog_gamma")


def test_bad_elog_in_round_3(t2n3: Setup) -> None:
    def change(b: PresignRound3Broadcast) -> PresignRound3Broadcast:
        return dataclasses.replace(b, psi_prime=dataclasses.replace(b.psi_prime, u=(b.psi_prime.u + 1) % Q))

    tamper = alter("presign/r3", "broadcast", PresignRound3Broadcast.decode, change, to=None)
    assert_blamed(run(t2n3, (2, 3), "elog-r3", tamper), "elog_delta")


def test_equivocating_round_1_broadcast(t3: Setup) -> None:
    """The cheater shows the victim a second, fully valid round 1 (other nonces, valid proofs)."""
    signers = (1, 2, 3)
    shares, aux = t3
    alt = presign.start(b"adv-presign/equivocate-r1", shares[CHEATER], aux[CHEATER], signers, rng=SeededRng("alt"))
    alt_msgs = {(m.recipient, m.round): m.payload for m in alt.outgoing}

    def hook(msg: Outgoing, recipient: int) -> bytes | None:
        if msg.sender == CHEATER and msg.round == "presign/r1" and recipient == VICTIM:
            return alt_msgs[(msg.recipient, msg.round)]
        return msg.payload

    result = run(t3, signers, "equivocate-r1", hook)
    assert_blamed(result, "equivocation")
    assert set(result.aborts) >= set(signers) - {CHEATER}


def test_equivocating_delta_in_round_3(t3: Setup) -> None:
    def change(b: PresignRound3Broadcast) -> PresignRound3Broadcast:
        return dataclasses.replace(b, delta=(b.delta + 1) % Q)

    tamper = alter("presign/r3", "broadcast", PresignRound3Broadcast.decode, change)
    result = run(t3, (1, 2, 3), "equivocate-delta", tamper)
    assert_blamed(result, "equivocation")
    assert set(result.aborts) >= {1, 3}
    assert {b.round for a in result.aborts.values() for b in a.blames} == {"presign/r4"}


@pytest.mark.parametrize(("field", "reason"), [("delta", "delta"), ("S", "chi")])
def test_consistent_lie_requires_identification(t2n3: Setup, field: str, reason: str) -> None:
    """A δ_i or S_i that is wrong but the same for everyone fails only the output check: no message
    names the liar, so the round continues into the identification round with its state."""

    def change(b: PresignRound3Broadcast) -> PresignRound3Broadcast:
        if field == "delta":
            return dataclasses.replace(b, delta=(b.delta + 1) % Q)
        return dataclasses.replace(b, S=b.S + b.S)

    seed = f"lie-{field}"
    sid = f"adv-presign/{seed}".encode()
    lie = alter("presign/r3", "broadcast", PresignRound3Broadcast.decode, change, to=None)
    told: dict[str, bytes] = {}

    def hook(msg: Outgoing, recipient: int) -> bytes | None:
        if msg.sender == CHEATER and msg.round == "presign/r3":
            told["r3"] = lie(msg, recipient) or b""
            return told["r3"]
        if msg.sender == CHEATER and msg.round == "presign/r4":
            # The cheater's own echo vouches for the lie, so every echo agrees.
            own = echo.digest(sid, "presign/r3", CHEATER, told["r3"])
            mine = PresignRound4Broadcast.decode(msg.payload).echo
            return PresignRound4Broadcast(tuple((j, own if j == CHEATER else h) for j, h in mine)).encode()
        return msg.payload

    result = run(t2n3, (1, 2), seed, hook)
    # The cheater's own code sees its true δ_i, S_i against echoes of the lie: it aborts, the honest
    # signer goes on to identification (presign_identify; named culprits: test_presign_identification).
    assert set(result.pending) == {1} and result.corrupted == {CHEATER}
    step = result.pending[1]
    assert isinstance(step.next_round, PresignIdentifyRound)
    assert [m.round for m in step.outgoing] == [presign_identify.ROUND]
    state = step.next_round.state
    assert state.reason == reason
    assert set(state.sent) == set(state.received) == {1, 2} - {state.context.party}
    assert "beta" not in repr(state)
