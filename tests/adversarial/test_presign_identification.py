"""Identification after a failed presigning output check (Fig. 9, Section 4.3.1): the liar is named.

A cheater broadcasts a wrong δ_i (or S_i) to everyone and vouches for it in its own echo, so every
presigning check passes until the output step, where δ·G ≠ ΣΔ_j (or ΣS_j ≠ δ·X) and every signer
continues into the identification round (presign_identify), whose abort must name the cheater and
no honest signer.

The rounds run under `simulation.run`, like every other protocol test: presigning's last round
continues into identification at every honest signer. Each scenario runs presigning once per
module, pausing when every signer waits in the identification round (`stop_after`), and each test
resumes from there with its own tamper hook. The cheater's rounds are its honest code, which never
learns what was sent in its name (`TruthfulCheater`): where the others fail the output check, it
answers identification with proofs of what it really computed. A corrupted party's verdicts are
not evidence (`culprits()` leaves them out). The Πdec / Πaff-g* proofs cost seconds each, so
proofs that no honest verdict rests on are not made: Πaff-g* proofs that only the cheater would
check or that nobody checks (`_checked_aff_g_star_only`), and the proofs of a signer that only
listens (the χ trio's verifier, `_no_proofs_from`).
"""

from __future__ import annotations

import contextlib
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
from signer.tss.presign_identify import PresignIdentifyBroadcast, PresignIdentifyRound
from signer.tss.presign_msgs import PresignRound2Broadcast, PresignRound3Broadcast, PresignRound4Broadcast
from signer.tss.presign_round3 import PresignRound4
from signer.tss.presign_state import IdentificationState
from signer.tss.rng import Rng
from signer.tss.rounds import Continue, Incoming, Outgoing, Round, Step
from signer.tss.simulation import SimulationResult, Tamper
from signer.tss.transcript import Transcript
from signer.tss.zk import aff_g_star, dec
from tests.helpers import SeededRng
from tests.sessions import aux_from_fixtures, keygen_shares

CHEATER = 2
Setup = tuple[dict[int, KeyShare], dict[int, AuxInfo]]


@dataclasses.dataclass
class Handoff:
    """Every signer's step into the identification round, and who was corrupted on the way."""

    pending: dict[int, Continue]
    corrupted: set[int]

    def state(self, party: int) -> IdentificationState:
        """What `party` carried into identification."""
        rnd = self.pending[party].next_round
        assert isinstance(rnd, PresignIdentifyRound)
        return rnd.state


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


@contextmanager
def _no_proofs_from(listener_key: PaillierPublicKey) -> Iterator[None]:
    """The listener's identification proofs are empty: it sends nothing, so nobody would check them."""
    real_dec, real_aff = dec.prove, aff_g_star.prove

    def prove_dec(transcript: Transcript, stmt: dec.Statement, wit: dec.Witness, **kw: Any) -> dec.Proof:
        return dec.Proof(()) if stmt.pk0 == listener_key else real_dec(transcript, stmt, wit, **kw)

    def prove_aff(
        transcript: Transcript, stmt: aff_g_star.Statement, wit: aff_g_star.Witness, **kw: Any
    ) -> aff_g_star.Proof:
        return aff_g_star.Proof(()) if stmt.N1 == listener_key else real_aff(transcript, stmt, wit, **kw)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(dec, "prove", prove_dec)
        mp.setattr(aff_g_star, "prove", prove_aff)
        yield


# --- the cheater's rounds ------------------------------------------------------------------------------


class TruthfulCheater(Round):
    """The cheater's own presigning rounds, honest code that saw its true values.

    Where the others' output check fails, its own passes (it never learns what was sent in its
    name), so it would finish presigning; playing the cheater, it enters identification instead
    and answers truthfully, with proofs of what it really computed, which cannot match the lie
    everyone else saw.
    """

    name = "presign/cheater"

    def __init__(self, inner: Round, reason: str, rng: Rng) -> None:
        super().__init__(inner.party, inner.parties)
        self._inner, self._reason, self._rng = inner, reason, rng

    def receive(self, inbox: Mapping[int, Incoming]) -> Step:
        if isinstance(self._inner, PresignRound4):
            return presign_identify.start(self._inner._identification(self._reason), rng=self._rng)
        step = self._inner.receive(inbox)
        if isinstance(step, Continue):
            return Continue(step.outgoing, TruthfulCheater(step.next_round, self._reason, self._rng))
        return step

    def _receive(self, inbox: Mapping[int, Incoming]) -> Step:
        return self.receive(inbox)


PRESIGN_ROUNDS = 4
"""Rounds of presigning: after the last, every signer waits in the identification round."""


def presign_until_identification(
    setup: Setup,
    signers: tuple[int, ...],
    seed: str,
    reason: str,
    tamper: Tamper,
    *,
    listeners: frozenset[int] = frozenset(),
) -> Handoff:
    """Run presigning (the cheater's rounds `TruthfulCheater`) until every signer waits in identification.

    `listeners` enter the identification round without sending anything (their proofs would cost
    seconds and be checked by nobody): only their own verdicts can then be asserted.
    """
    shares, aux = setup
    rng = SeededRng(seed)
    sid = f"adv-identify/{seed}".encode()
    starts: dict[int, Step] = {p: presign.start(sid, shares[p], aux[p], signers, rng=rng) for p in signers}
    cheater = starts[CHEATER]
    assert isinstance(cheater, Continue)
    starts[CHEATER] = Continue(
        cheater.outgoing, TruthfulCheater(cheater.next_round, reason, SeededRng(f"{seed}/identify"))
    )
    with contextlib.ExitStack() as stack:
        stack.enter_context(_checked_aff_g_star_only(aux[CHEATER].of(CHEATER).paillier))
        for p in listeners:
            stack.enter_context(_no_proofs_from(aux[p].of(p).paillier))
        result = simulation.run(starts, tamper=tamper, stop_after=PRESIGN_ROUNDS)
    assert not result.aborts and not result.outputs, "presigning stopped before its output check"
    assert result.corrupted == {CHEATER}
    assert set(result.pending) == set(signers), "the output check must fail at every honest signer"
    assert all(isinstance(step.next_round, PresignIdentifyRound) for step in result.pending.values())
    pending = {p: Continue((), step.next_round) if p in listeners else step for p, step in result.pending.items()}
    handoff = Handoff(pending, result.corrupted)
    assert {handoff.state(p).reason for p in signers} == {reason}
    return handoff


def identify(handoff: Handoff, tamper: Tamper | None = None) -> tuple[SimulationResult, dict[int, Exception]]:
    """Run the identification round from the handoff; the result and every party's verdict."""
    result = simulation.run(handoff.pending, tamper=tamper, corrupted=handoff.corrupted)
    assert result.rounds == 1 and not result.outputs and not result.pending
    outcomes: dict[int, Exception] = {**result.aborts, **result.failures}
    return result, outcomes


def only(result: SimulationResult, parties: set[int]) -> SimulationResult:
    """The result with the verdicts of `parties` alone."""
    return dataclasses.replace(result, aborts={p: a for p, a in result.aborts.items() if p in parties})


def honest(result: SimulationResult, outcomes: Mapping[int, Exception]) -> set[int]:
    """The uncorrupted parties that reached a verdict."""
    return set(outcomes) - result.corrupted


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
    return presign_until_identification(t2n3, (1, 2), "delta-2", "delta", consistent_lie("delta-2", delta_plus_one))


@pytest.fixture(scope="module")
def chi_pair(t2n3: Setup) -> Handoff:
    """Signers (2, 3) of a 2-of-3 key; 2 broadcasts S_2 + G."""
    return presign_until_identification(t2n3, (2, 3), "chi-2", "chi", consistent_lie("chi-2", s_off))


@pytest.fixture(scope="module")
def delta_trio(t3: Setup) -> Handoff:
    """Signers (1, 2, 3) of a 3-of-5 key; 2 broadcasts δ_2 + 1."""
    return presign_until_identification(t3, (1, 2, 3), "delta-3", "delta", consistent_lie("delta-3", delta_plus_one))


@pytest.fixture(scope="module")
def chi_trio(t3: Setup) -> Handoff:
    """Signers (2, 4, 5) of a 3-of-5 key; 2 broadcasts S_2 + G; 4 only listens."""
    return presign_until_identification(
        t3, (2, 4, 5), "chi-3", "chi", consistent_lie("chi-3", s_off), listeners=frozenset({4})
    )


def alter_identification(
    handoff: Handoff, sender: int, change: Callable[[PresignIdentifyBroadcast], PresignIdentifyBroadcast]
) -> Tamper:
    ctx = handoff.state(sender).context

    def hook(msg: Outgoing, recipient: int) -> bytes | None:
        if msg.sender == sender and msg.round == presign_identify.ROUND:
            decoded = PresignIdentifyBroadcast.decode(msg.payload, sender, ctx.signers, ctx.paillier)
            return change(decoded).encode()
        return msg.payload

    return hook


# --- the liar is named ---------------------------------------------------------------------------------


@pytest.mark.slow(5)  # builds delta_pair
def test_delta_liar_is_named_between_two_signers(delta_pair: Handoff) -> None:
    assert {delta_pair.state(p).reason for p in delta_pair.pending} == {"delta"}
    result, outcomes = identify(delta_pair)
    assert_named(result, {CHEATER: {"identify_dec"}})
    # The cheater's own (honest) code sees its true δ and finds every proof valid: our-side error.
    assert isinstance(outcomes[CHEATER], InternalError)


@pytest.mark.slow(4)  # builds chi_pair
def test_chi_liar_is_named_between_two_signers(chi_pair: Handoff) -> None:
    assert {chi_pair.state(p).reason for p in chi_pair.pending} == {"chi"}
    result, _ = identify(chi_pair)
    assert_named(result, {CHEATER: {"identify_dec"}})


@pytest.mark.slow(30)  # builds delta_trio
def test_delta_liar_is_named_among_three_signers(delta_trio: Handoff) -> None:
    assert {delta_trio.state(p).reason for p in delta_trio.pending} == {"delta"}
    result, outcomes = identify(delta_trio)
    assert honest(result, outcomes) == {1, 3}
    assert_named(result, {CHEATER: {"identify_dec"}})


@pytest.mark.slow(13)
def test_chi_liar_is_named_among_three_signers(chi_trio: Handoff) -> None:
    """Also the only run of the χ-mode Πaff-g* (D̂, F̂, X_i'): 5's about what it sent to 2, checked by 4.

    One honest verifier is enough (each verification costs seconds), so 4 only listens."""
    assert {chi_trio.state(p).reason for p in chi_trio.pending} == {"chi"}
    result, outcomes = identify(chi_trio)
    # 5 misses the listener's message, so it names 4 unreachable and checks no proof.
    assert honest(result, outcomes) == {4, 5}
    assert isinstance(outcomes[5], ProtocolAbort)
    assert {(b.party, b.check) for b in outcomes[5].blames} == {(4, "missing_broadcast")}
    assert_named(only(result, {4}), {CHEATER: {"identify_dec"}})


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
    assert honest(result, outcomes) == {1}
    assert_named(result, {CHEATER: {"identify_dec"}, 3: {"identify_aff_g_star"}})


def test_wrong_opening_is_named(delta_pair: Handoff) -> None:
    n2 = delta_pair.state(1).context.paillier[1].n2

    def change(m: PresignIdentifyBroadcast) -> PresignIdentifyBroadcast:
        o = m.openings[0]
        return dataclasses.replace(m, openings=(dataclasses.replace(o, D=o.D * o.D % n2),))

    result, _ = identify(delta_pair, alter_identification(delta_pair, CHEATER, change))
    assert_named(result, {CHEATER: {"identify_opening"}})


def test_honest_statement_resting_on_a_bad_opening_is_not_checked(delta_trio: Handoff) -> None:
    """2 spoils what it opens to 3: 1 cannot rebuild 3's Πdec statement, so it names 2 and not 3."""
    pk3 = delta_trio.state(1).context.paillier[3]

    def change(m: PresignIdentifyBroadcast) -> PresignIdentifyBroadcast:
        spoiled = tuple(dataclasses.replace(o, D=o.D * o.D % pk3.n2) if o.recipient == 3 else o for o in m.openings)
        return dataclasses.replace(m, openings=spoiled)

    result, outcomes = identify(delta_trio, alter_identification(delta_trio, CHEATER, change))
    assert honest(result, outcomes) == {1, 3}
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
    state = dataclasses.replace(delta_pair.state(1), reason="nonce")
    with pytest.raises(InvalidInput):
        presign_identify.start(state, rng=SeededRng("reason"))


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
