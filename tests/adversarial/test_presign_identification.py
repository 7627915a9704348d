"""Identification after a failed presigning output check (Fig. 9, Section 4.3.1): the liar is named.

A cheater broadcasts a wrong δ_i (or S_i) to everyone and vouches for it in its own echo, so every
presigning check passes until the output step, where δ·G ≠ ΣΔ_j (or ΣS_j ≠ δ·X) and every signer
raises IdentificationRequired. presign_identify then runs one round whose abort must name the
cheater and no honest signer.

`simulation.run` stops at the first exception that is not a ProtocolAbort, and presigning ends in
IdentificationRequired at every party, so this file drives the rounds itself: the same routing and
tamper hook, then a `SimulationResult` whose `culprits()` leaves out corrupted senders (a cheater
runs honest code that never learns what was sent in its name, so its verdicts are not evidence).
The Πdec / Πaff-g* proofs cost seconds each, so the identification messages of each scenario are
built once per module, a corrupted party's own verification is run only where it is asserted, and
proofs that no honest verdict rests on are not made: Πaff-g* proofs that only the cheater would
check or that nobody checks (`_checked_aff_g_star_only`), and the proofs of a signer that only
listens (the χ trio's verifier).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import pytest

from signer.tss import echo, presign, presign_identify, simulation
from signer.tss.curve import Point, Q
from signer.tss.errors import InternalError, InvalidInput, ProtocolAbort
from signer.tss.key_share import AuxInfo, KeyShare
from signer.tss.paillier import PaillierPublicKey
from signer.tss.params import LEVEL_112, SecurityLevel
from signer.tss.presign_identify import PresignIdentifyBroadcast
from signer.tss.presign_msgs import PresignRound2Broadcast, PresignRound3Broadcast, PresignRound4Broadcast
from signer.tss.presign_round3 import PresignRound4
from signer.tss.presign_state import IdentificationRequired
from signer.tss.rng import Rng
from signer.tss.rounds import Continue, Incoming, Outgoing
from signer.tss.simulation import SimulationResult, Tamper
from signer.tss.transcript import Transcript
from signer.tss.zk import aff_g_star
from tests.helpers import SeededRng
from tests.sessions import aux_from_fixtures, keygen_shares

CHEATER = 2
Setup = tuple[dict[int, KeyShare], dict[int, AuxInfo]]


@dataclasses.dataclass
class Handoff:
    """Every signer's IdentificationRequired, the identification round it starts, and who was corrupted."""

    errors: dict[int, IdentificationRequired]
    starts: dict[int, Continue]
    corrupted: set[int]


@contextmanager
def _checked_aff_g_star_only(cheater_key: PaillierPublicKey) -> Iterator[None]:
    """Among three signers, make only the Πaff-g* proofs ψ*_{j,i} with j the cheater; the others are empty.

    ψ*_{j,i} is verified by the signers other than i and j, and a sender is named at its first failed
    check. So the cheater's own ψ* are never checked (its Πdec fails first) and an honest i's ψ*_{k,i}
    for the honest k is checked only by the cheater, whose verdict is no evidence: each would cost
    seconds for nothing. ψ*_{j,i} is about the MtA values i sent to j, under j's key N0 = N_j.
    """
    real = aff_g_star.prove

    def prove(
        transcript: Transcript,
        stmt: aff_g_star.Statement,
        wit: aff_g_star.Witness,
        *,
        rng: Rng,
        level: SecurityLevel,
    ) -> aff_g_star.Proof:
        if stmt.N0 == cheater_key:
            return real(transcript, stmt, wit, rng=rng, level=level)
        return aff_g_star.Proof(())

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(aff_g_star, "prove", prove)
        yield


# --- driver ------------------------------------------------------------------------------------------


def _route(steps: Mapping[int, Continue], tamper: Tamper | None, corrupted: set[int]) -> dict[int, dict[int, Incoming]]:
    parties = sorted(steps)
    boxes: dict[int, dict[int, dict[str, bytes]]] = {p: {} for p in parties}
    for p, step in steps.items():
        for out in step.outgoing:
            targets = [out.recipient] if out.recipient is not None else [q for q in parties if q != p]
            for to in targets:
                payload = tamper(out, to) if tamper else out.payload
                if payload != out.payload:
                    corrupted.add(out.sender)
                if payload is not None:
                    boxes[to].setdefault(p, {})["broadcast" if out.recipient is None else "direct"] = payload
    return {
        to: {j: Incoming(box.get(j, {}).get("broadcast"), box.get(j, {}).get("direct")) for j in parties if j != to}
        for to, box in boxes.items()
    }


def presign_until_identification(
    setup: Setup, signers: tuple[int, ...], seed: str, tamper: Tamper, *, listeners: frozenset[int] = frozenset()
) -> Handoff:
    """Run presigning until every honest signer raises IdentificationRequired, then start identification.

    The cheater's own code saw its true values: it either outputs a presignature or blames an
    honest echo of its lie. Playing the cheater, the test takes its honest round state (the last
    round's `_identification`) and lets it answer identification truthfully, i.e. with proofs of
    what it really computed, which cannot match the lie everyone else saw.
    `listeners` enter the identification round without sending anything (their proofs would cost
    seconds and be checked by nobody): only their own verdicts can then be asserted.
    """
    shares, aux = setup
    rng = SeededRng(seed)
    sid = f"adv-identify/{seed}".encode()
    steps = {p: presign.start(sid, shares[p], aux[p], signers, rng=rng) for p in signers}
    corrupted: set[int] = set()
    while True:
        inboxes = _route(steps, tamper, corrupted)
        errors: dict[int, IdentificationRequired] = {}
        nxt: dict[int, Continue] = {}
        for p, step in steps.items():
            try:
                out = step.next_round.receive(inboxes[p])
            except IdentificationRequired as exc:
                errors[p] = exc
                continue
            except ProtocolAbort:
                if p not in corrupted:
                    raise
                continue
            if isinstance(out, Continue):
                nxt[p] = out
            else:
                assert p in corrupted, f"honest party {p} finished presigning despite the lie"
        if errors:
            assert set(errors) == set(signers) - corrupted, "the output check must fail at every honest signer"
            reason = next(iter(errors.values())).state.reason
            for p in sorted(corrupted):
                last = steps[p].next_round
                assert isinstance(last, PresignRound4)
                errors[p] = IdentificationRequired(last._identification(reason))
            id_rng = SeededRng(f"{seed}/identify")
            starts: dict[int, Continue] = {}
            assert corrupted == {CHEATER}
            with _checked_aff_g_star_only(setup[1][CHEATER].of(CHEATER).paillier):
                for p in signers:
                    if p in listeners:
                        starts[p] = Continue((), presign_identify.PresignIdentifyRound(errors[p].state))
                    else:
                        starts[p] = presign_identify.start(errors[p], rng=id_rng)
            return Handoff(errors, starts, corrupted)
        assert nxt, "presigning stopped before its output check"
        steps = nxt


def identify(
    handoff: Handoff, tamper: Tamper | None = None, *, run_corrupted: bool = False, only: set[int] | None = None
) -> tuple[SimulationResult, dict[int, Exception]]:
    """Deliver the identification messages and run the round at every uncorrupted party (or `only` those)."""
    corrupted = set(handoff.corrupted)
    inboxes = _route(handoff.starts, tamper, corrupted)
    outcomes: dict[int, Exception] = {}
    for p, step in handoff.starts.items():
        if (p in corrupted and not run_corrupted) or (only is not None and p not in only):
            continue
        try:
            step.next_round.receive(inboxes[p])
        except (ProtocolAbort, InternalError) as exc:
            outcomes[p] = exc
        else:
            pytest.fail(f"identification at party {p} ended without a verdict")
    aborts = {p: e for p, e in outcomes.items() if isinstance(e, ProtocolAbort)}
    return SimulationResult(aborts=aborts, rounds=1, corrupted=corrupted), outcomes


def assert_named(result: SimulationResult, expected: Mapping[int, set[str]]) -> None:
    """Every uncorrupted party aborts in the identification round naming exactly `expected` (party -> checks)."""
    honest = {p: a for p, a in result.aborts.items() if p not in result.corrupted}
    assert honest, "nobody was named"
    assert result.culprits() == set(expected)
    for p, abort in honest.items():
        assert abort.culprits == set(expected), (p, abort)
        assert {b.round for b in abort.blames} == {presign_identify.ROUND}
        for culprit, checks in expected.items():
            assert {b.check for b in abort.blames if b.party == culprit} <= checks, (p, abort)
            assert any(b.check in checks for b in abort.blames if b.party == culprit), (p, abort)


# --- the lies ----------------------------------------------------------------------------------------


def consistent_lie(seed: str, change: Callable[[PresignRound3Broadcast], PresignRound3Broadcast]) -> Tamper:
    """The cheater's round-3 broadcast is altered for everyone and its own round-4 echo vouches for it."""
    sid = f"adv-identify/{seed}".encode()
    told: dict[str, bytes] = {}

    def hook(msg: Outgoing, recipient: int) -> bytes | None:
        if msg.sender != CHEATER:
            return msg.payload
        if msg.round == "presign/r3":
            told["r3"] = change(PresignRound3Broadcast.decode(msg.payload)).encode()
            return told["r3"]
        if msg.round == "presign/r4":
            own = echo.digest(sid, "presign/r3", CHEATER, told["r3"])
            mine = PresignRound4Broadcast.decode(msg.payload).echo
            return PresignRound4Broadcast(tuple((j, own if j == CHEATER else h) for j, h in mine)).encode()
        return msg.payload

    return hook


def delta_plus_one(b: PresignRound3Broadcast) -> PresignRound3Broadcast:
    return dataclasses.replace(b, delta=(b.delta + 1) % Q)


def s_off(b: PresignRound3Broadcast) -> PresignRound3Broadcast:
    return dataclasses.replace(b, S=b.S + Point.generator())


@pytest.fixture(scope="module")
def t2n3() -> Setup:
    parties = (1, 2, 3)
    return keygen_shares(2, parties), aux_from_fixtures(LEVEL_112, parties)


@pytest.fixture(scope="module")
def t3() -> Setup:
    parties = (1, 2, 3, 4, 5)
    return keygen_shares(3, parties), aux_from_fixtures(LEVEL_112, parties)


@pytest.fixture(scope="module")
def delta_pair(t2n3: Setup) -> Handoff:
    """Signers (1, 2) of a 2-of-3 key; 2 broadcasts δ_2 + 1."""
    return presign_until_identification(t2n3, (1, 2), "delta-2", consistent_lie("delta-2", delta_plus_one))


@pytest.fixture(scope="module")
def chi_pair(t2n3: Setup) -> Handoff:
    """Signers (2, 3) of a 2-of-3 key; 2 broadcasts S_2 + G."""
    return presign_until_identification(t2n3, (2, 3), "chi-2", consistent_lie("chi-2", s_off))


@pytest.fixture(scope="module")
def delta_trio(t3: Setup) -> Handoff:
    """Signers (1, 2, 3) of a 3-of-5 key; 2 broadcasts δ_2 + 1."""
    return presign_until_identification(t3, (1, 2, 3), "delta-3", consistent_lie("delta-3", delta_plus_one))


@pytest.fixture(scope="module")
def chi_trio(t3: Setup) -> Handoff:
    """Signers (2, 4, 5) of a 3-of-5 key; 2 broadcasts S_2 + G; 4 only listens."""
    return presign_until_identification(
        t3, (2, 4, 5), "chi-3", consistent_lie("chi-3", s_off), listeners=frozenset({4})
    )


def alter_identification(
    handoff: Handoff, sender: int, change: Callable[[PresignIdentifyBroadcast], PresignIdentifyBroadcast]
) -> Tamper:
    ctx = handoff.errors[sender].state.context

    def hook(msg: Outgoing, recipient: int) -> bytes | None:
        if msg.sender == sender and msg.round == presign_identify.ROUND:
            decoded = PresignIdentifyBroadcast.decode(msg.payload, sender, ctx.signers, ctx.paillier)
            return change(decoded).encode()
        return msg.payload

    return hook


# --- the liar is named ---------------------------------------------------------------------------------


@pytest.mark.slow(5)  # builds delta_pair
def test_delta_liar_is_named_between_two_signers(delta_pair: Handoff) -> None:
    assert {e.state.reason for e in delta_pair.errors.values()} == {"delta"}
    result, outcomes = identify(delta_pair, run_corrupted=True)
    assert_named(result, {CHEATER: {"identify_dec"}})
    # The cheater's own (honest) code sees its true δ and finds every proof valid: our-side error.
    assert isinstance(outcomes[CHEATER], InternalError)


@pytest.mark.slow(4)  # builds chi_pair
def test_chi_liar_is_named_between_two_signers(chi_pair: Handoff) -> None:
    assert {e.state.reason for e in chi_pair.errors.values()} == {"chi"}
    result, _ = identify(chi_pair)
    assert_named(result, {CHEATER: {"identify_dec"}})


@pytest.mark.slow(22)  # builds delta_trio
def test_delta_liar_is_named_among_three_signers(delta_trio: Handoff) -> None:
    assert {e.state.reason for e in delta_trio.errors.values()} == {"delta"}
    result, outcomes = identify(delta_trio)
    assert set(outcomes) == {1, 3}
    assert_named(result, {CHEATER: {"identify_dec"}})


@pytest.mark.slow(13)
def test_chi_liar_is_named_among_three_signers(chi_trio: Handoff) -> None:
    """Also the only run of the χ-mode Πaff-g* (D̂, F̂, X_i'): 5's about what it sent to 2, checked by 4.

    One honest verifier is enough (each verification costs seconds), so 4 only listens."""
    assert {e.state.reason for e in chi_trio.errors.values()} == {"chi"}
    result, outcomes = identify(chi_trio, only={4})
    assert set(outcomes) == {4}
    assert_named(result, {CHEATER: {"identify_dec"}})


# --- cheating in the identification round itself ---------------------------------------------------------


def test_bad_aff_g_star_is_named(delta_trio: Handoff) -> None:
    """Signer 3 (honest in presigning) spoils its Πaff-g* about what it sent to 2; signer 1 checks it."""

    def change(m: PresignIdentifyBroadcast) -> PresignIdentifyBroadcast:
        def spoil(j: int, proof: aff_g_star.Proof) -> aff_g_star.Proof:
            if j != CHEATER:
                return proof
            rep = dataclasses.replace(proof.reps[0], z1=proof.reps[0].z1 + 1)
            return dataclasses.replace(proof, reps=(rep, *proof.reps[1:]))

        return dataclasses.replace(m, psi_aff=tuple((j, spoil(j, p)) for j, p in m.psi_aff))

    result, outcomes = identify(delta_trio, alter_identification(delta_trio, 3, change))
    assert set(outcomes) == {1}
    assert_named(result, {CHEATER: {"identify_dec"}, 3: {"identify_aff_g_star"}})


def test_wrong_opening_is_named(delta_pair: Handoff) -> None:
    n2 = delta_pair.errors[1].state.context.paillier[1].n2

    def change(m: PresignIdentifyBroadcast) -> PresignIdentifyBroadcast:
        o = m.openings[0]
        return dataclasses.replace(m, openings=(dataclasses.replace(o, D=o.D * o.D % n2),))

    result, _ = identify(delta_pair, alter_identification(delta_pair, CHEATER, change))
    assert_named(result, {CHEATER: {"identify_opening"}})


def test_honest_statement_resting_on_a_bad_opening_is_not_checked(delta_trio: Handoff) -> None:
    """2 spoils what it opens to 3: 1 cannot rebuild 3's Πdec statement, so it names 2 and not 3."""
    pk3 = delta_trio.errors[1].state.context.paillier[3]

    def change(m: PresignIdentifyBroadcast) -> PresignIdentifyBroadcast:
        spoiled = tuple(dataclasses.replace(o, D=o.D * o.D % pk3.n2) if o.recipient == 3 else o for o in m.openings)
        return dataclasses.replace(m, openings=spoiled)

    result, outcomes = identify(delta_trio, alter_identification(delta_trio, CHEATER, change))
    assert set(outcomes) == {1, 3}
    assert_named(result, {CHEATER: {"identify_opening"}})


def test_refusing_to_take_part_is_named(delta_pair: Handoff) -> None:
    def drop(msg: Outgoing, recipient: int) -> bytes | None:
        return None if msg.sender == CHEATER and msg.round == presign_identify.ROUND else msg.payload

    result, _ = identify(delta_pair, drop)
    # Refusing (or being cut off) is not proof: the party is named unreachable, not a culprit.
    honest = [a for p, a in result.aborts.items() if p not in result.corrupted]
    assert honest and result.culprits() == set() and result.unreachable() == {CHEATER}
    assert all({(b.party, b.check) for b in a.blames} == {(CHEATER, "missing_broadcast")} for a in honest)


def test_malformed_identification_message_is_named(delta_pair: Handoff) -> None:
    def change(m: PresignIdentifyBroadcast) -> PresignIdentifyBroadcast:
        return dataclasses.replace(m, openings=())

    result, _ = identify(delta_pair, alter_identification(delta_pair, CHEATER, change))
    assert_named(result, {CHEATER: {"decode"}})


def test_identification_needs_a_known_reason(delta_pair: Handoff) -> None:
    state = dataclasses.replace(delta_pair.errors[1].state, reason="nonce")
    with pytest.raises(InvalidInput):
        presign_identify.start(IdentificationRequired(state), rng=SeededRng("reason"))


# --- the round-2 commitment the openings rely on ----------------------------------------------------------


def test_round2_commitment_must_match_the_direct_values(t2n3: Setup) -> None:
    """A round-2 broadcast that commits to other MtA values than the direct message carries."""
    shares, aux = t2n3
    rng = SeededRng("commitment")
    starts: dict[int, Any] = {
        p: presign.start(b"adv-identify/commitment", shares[p], aux[p], (1, 2), rng=rng) for p in (1, 2)
    }

    def hook(msg: Outgoing, recipient: int) -> bytes | None:
        if msg.sender == CHEATER and msg.round == "presign/r2" and msg.recipient is None:
            b = PresignRound2Broadcast.decode(msg.payload)
            return dataclasses.replace(b, mta=tuple((j, bytes(32)) for j, _ in b.mta)).encode()
        return msg.payload

    result = simulation.run(starts, tamper=hook)
    assert result.culprits() == {CHEATER}
    assert {b.check for a in result.aborts.values() for b in a.blames} == {"mta_commitment"}
