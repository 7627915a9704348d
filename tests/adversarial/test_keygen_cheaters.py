"""Keygen with a cheating party: every abort names exactly the cheater, with the check that caught it.

Each cheat goes through the simulation's tamper hook: decode the cheater's message, change one
thing, re-encode (the cheater's own checks are skipped), and deliver. Cheats that must be committed
to in round 1 (a Feldman vector of the wrong length) replace the commitment, the opening and the
cheater's own echo entry together, so that only the length is wrong.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from signer.tss import keygen, simulation
from signer.tss.curve import Point, Q
from signer.tss.echo import digest as echo_digest
from signer.tss.encoding import Value, encode
from signer.tss.errors import DecodeError
from signer.tss.keygen_msgs import (
    KeygenOpening,
    KeygenRound1Broadcast,
    KeygenRound2Broadcast,
    KeygenRound2Direct,
    KeygenRound3Broadcast,
    commitment_hash,
)
from signer.tss.rounds import Outgoing, Step
from signer.tss.simulation import SimulationResult, Tamper
from tests.helpers import SeededRng

CONFIGS = [(2, (1, 2, 3)), (3, (1, 2, 3, 4, 5))]
IDS = ["t2n3", "t3n5"]
CHEATER = 2
VICTIM = 3


def _starts(threshold: int, parties: tuple[int, ...], seed: str = "cheat") -> dict[int, Step]:
    rng = SeededRng(seed)
    return {p: keygen.start(b"kg-adversarial", p, parties, threshold, rng=rng) for p in parties}


def _run(threshold: int, parties: tuple[int, ...], tamper: Tamper) -> SimulationResult:
    return simulation.run(_starts(threshold, parties), tamper=tamper)


def _checks(res: SimulationResult) -> set[str]:
    """Every check named by an honest (non-cheating) party."""
    return {b.check for p, a in res.aborts.items() if p not in res.corrupted for b in a.blames}


def _max_terms(parties: tuple[int, ...]) -> int:
    return len(parties) + 1


def _from_cheater(round_name: str, kind: str, to: int | None = None) -> Callable[[Outgoing, int], bool]:
    def match(msg: Outgoing, recipient: int) -> bool:
        if msg.sender != CHEATER or msg.round != round_name:
            return False
        if (msg.recipient is None) != (kind == "broadcast"):
            return False
        return to is None or recipient == to

    return match


def _flip(b: bytes) -> bytes:
    return bytes(x ^ 1 for x in b)


def _assert_cheater_named(res: SimulationResult, check: str) -> None:
    assert res.culprits() == {CHEATER}
    assert _checks(res) == {check}
    # Nobody who aborted has an output (parties a last-round cheat did not reach may finish).
    assert not set(res.outputs) & set(res.aborts)


# --- round 2: the opening ----------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["rid", "chain_code", "F", "A", "u"])
@pytest.mark.parametrize(("threshold", "parties"), CONFIGS, ids=IDS)
def test_opening_changed_after_commitment(threshold: int, parties: tuple[int, ...], field: str) -> None:
    hit = _from_cheater("keygen/r2", "broadcast")

    def tamper(msg: Outgoing, to: int) -> bytes:
        if not hit(msg, to):
            return msg.payload
        m = KeygenRound2Broadcast.decode(msg.payload, _max_terms(parties))
        o = m.opening
        if field == "rid":
            o = dataclasses.replace(o, rid=_flip(o.rid))
        elif field == "chain_code":
            o = dataclasses.replace(o, chain_code=_flip(o.chain_code))
        elif field == "u":
            o = dataclasses.replace(o, u=_flip(o.u))
        elif field == "F":
            o = dataclasses.replace(o, F=(o.F[0] + Point.generator(), *o.F[1:]))
        else:
            o = dataclasses.replace(o, A=o.A + Point.generator())
        return dataclasses.replace(m, opening=o).encode()

    res = _run(threshold, parties, tamper)
    _assert_cheater_named(res, "commitment")
    # Every honest party saw it; the evidence is the cheater's message.
    assert set(res.aborts) - res.corrupted == set(parties) - {CHEATER}
    for p, a in res.aborts.items():
        if p != CHEATER:
            assert a.blames[0].round == "keygen/r2" and a.blames[0].evidence


@pytest.mark.parametrize("delta", [-1, +1], ids=["t-1", "t+1"])
@pytest.mark.parametrize(("threshold", "parties"), CONFIGS, ids=IDS)
def test_feldman_vector_of_wrong_length(threshold: int, parties: tuple[int, ...], delta: int) -> None:
    """The cheater commits (consistently, echo included) to a Feldman vector of length t ± 1."""
    sid = b"kg-adversarial"
    # A dry run with the same seed yields the cheater's opening; the real run swaps in a shortened
    # or lengthened vector everywhere the opening is bound: V in round 1, the opening and the
    # cheater's own echo entry in round 2.
    dry: dict[str, KeygenOpening] = {}

    def record(msg: Outgoing, to: int) -> bytes:
        if msg.sender == CHEATER and msg.round == "keygen/r2" and msg.recipient is None:
            dry["opening"] = KeygenRound2Broadcast.decode(msg.payload, _max_terms(parties)).opening
        return msg.payload

    simulation.run_ok(_starts(threshold, parties), tamper=record)
    o = dry["opening"]
    F = o.F[:-1] if delta < 0 else (*o.F, Point.base_mul(12345))
    bad = dataclasses.replace(o, F=F)
    r1 = KeygenRound1Broadcast(commitment_hash(sid, parties, threshold, CHEATER, bad)).encode()

    def tamper(msg: Outgoing, to: int) -> bytes:
        if msg.sender != CHEATER or msg.recipient is not None:
            return msg.payload
        if msg.round == "keygen/r1":
            return r1
        if msg.round == "keygen/r2":
            m = KeygenRound2Broadcast.decode(msg.payload, _max_terms(parties))
            assert m.opening == o
            mine = echo_digest(sid, "keygen/r1", CHEATER, r1)
            echo = tuple((j, mine if j == CHEATER else h) for j, h in m.echo)
            return KeygenRound2Broadcast(bad, echo).encode()
        return msg.payload

    res = _run(threshold, parties, tamper)
    _assert_cheater_named(res, "vss_length")


@pytest.mark.parametrize(("threshold", "parties"), CONFIGS, ids=IDS)
def test_bad_share_to_one_victim(threshold: int, parties: tuple[int, ...]) -> None:
    hit = _from_cheater("keygen/r2", "direct", VICTIM)

    def tamper(msg: Outgoing, to: int) -> bytes:
        if not hit(msg, to):
            return msg.payload
        sigma = KeygenRound2Direct.decode(msg.payload).sigma
        return KeygenRound2Direct((sigma + 1) % Q).encode()

    res = _run(threshold, parties, tamper)
    _assert_cheater_named(res, "vss_share")
    # Only the victim noticed; the others moved on to round 3.
    assert set(res.aborts) == {VICTIM}


@pytest.mark.parametrize(("threshold", "parties"), CONFIGS, ids=IDS)
def test_malformed_point_is_a_decode_failure(threshold: int, parties: tuple[int, ...]) -> None:
    hit = _from_cheater("keygen/r2", "broadcast")
    # A compressed encoding whose x has no point on secp256k1.
    off_curve = next(b for x in range(1, 100) if _off_curve(b := b"\x02" + x.to_bytes(32, "big")))

    def tamper(msg: Outgoing, to: int) -> bytes:
        if not hit(msg, to):
            return msg.payload
        m = KeygenRound2Broadcast.decode(msg.payload, _max_terms(parties))
        target = m.opening.F[1].to_bytes()
        assert msg.payload.count(target) == 1
        return msg.payload.replace(target, off_curve)

    res = _run(threshold, parties, tamper)
    _assert_cheater_named(res, "decode")


def _off_curve(data: bytes) -> bool:
    try:
        Point.from_bytes(data)
    except DecodeError:
        return True
    return False


@pytest.mark.parametrize(("threshold", "parties"), CONFIGS, ids=IDS)
def test_identity_point_is_a_decode_failure(threshold: int, parties: tuple[int, ...]) -> None:
    hit = _from_cheater("keygen/r2", "broadcast")

    def tamper(msg: Outgoing, to: int) -> bytes:
        if not hit(msg, to):
            return msg.payload
        m = KeygenRound2Broadcast.decode(msg.payload, _max_terms(parties))
        o = m.opening
        value: list[Value] = [o.rid, o.chain_code, [Point.identity(), *o.F[1:]], o.A, o.u]
        return encode("keygen/r2/bcast", value, [[j, h] for j, h in m.echo])

    _assert_cheater_named(_run(threshold, parties, tamper), "decode")


# --- equivocation ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("threshold", "parties"), CONFIGS, ids=IDS)
def test_equivocating_round1_commitment(threshold: int, parties: tuple[int, ...]) -> None:
    hit = _from_cheater("keygen/r1", "broadcast", VICTIM)

    def tamper(msg: Outgoing, to: int) -> bytes:
        if not hit(msg, to):
            return msg.payload
        v = KeygenRound1Broadcast.decode(msg.payload).commitment
        return KeygenRound1Broadcast(bytes(b ^ 0xFF for b in v)).encode()

    res = _run(threshold, parties, tamper)
    _assert_cheater_named(res, "equivocation")
    # Every honest party detects it through the echoes, not only the victim.
    assert set(res.aborts) - res.corrupted == set(parties) - {CHEATER}


@pytest.mark.parametrize("about", ["itself", "the_victim"])
@pytest.mark.parametrize(("threshold", "parties"), CONFIGS, ids=IDS)
def test_equivocating_round2_broadcast(threshold: int, parties: tuple[int, ...], about: str) -> None:
    """The victim gets a round-2 broadcast whose echo differs from everyone else's copy."""
    hit = _from_cheater("keygen/r2", "broadcast", VICTIM)
    subject = CHEATER if about == "itself" else VICTIM

    def tamper(msg: Outgoing, to: int) -> bytes:
        if not hit(msg, to):
            return msg.payload
        m = KeygenRound2Broadcast.decode(msg.payload, _max_terms(parties))
        echo = tuple((j, bytes(32) if j == subject else h) for j, h in m.echo)
        return dataclasses.replace(m, echo=echo).encode()

    res = _run(threshold, parties, tamper)
    _assert_cheater_named(res, "equivocation")


@pytest.mark.parametrize(("threshold", "parties"), CONFIGS, ids=IDS)
def test_equivocation_caught_by_the_round3_echo(threshold: int, parties: tuple[int, ...]) -> None:
    """The cheater's round-3 echo to the victim disowns the round-2 broadcast it sent."""
    hit = _from_cheater("keygen/r3", "broadcast", VICTIM)

    def tamper(msg: Outgoing, to: int) -> bytes:
        if not hit(msg, to):
            return msg.payload
        m = KeygenRound3Broadcast.decode(msg.payload)
        echo = tuple((j, bytes(32) if j == CHEATER else h) for j, h in m.echo)
        return dataclasses.replace(m, echo=echo).encode()

    res = _run(threshold, parties, tamper)
    _assert_cheater_named(res, "equivocation")
    assert set(res.aborts) == {VICTIM}
    assert res.aborts[VICTIM].blames[0].round == "keygen/r3"


@pytest.mark.parametrize(("threshold", "parties"), CONFIGS, ids=IDS)
def test_malformed_echo(threshold: int, parties: tuple[int, ...]) -> None:
    hit = _from_cheater("keygen/r2", "broadcast")

    def tamper(msg: Outgoing, to: int) -> bytes:
        if not hit(msg, to):
            return msg.payload
        m = KeygenRound2Broadcast.decode(msg.payload, _max_terms(parties))
        return dataclasses.replace(m, echo=m.echo[:-1]).encode()

    _assert_cheater_named(_run(threshold, parties, tamper), "echo_malformed")


@pytest.mark.parametrize(("threshold", "parties"), CONFIGS, ids=IDS)
def test_round3_equivocation_caught_by_the_round4_echo(threshold: int, parties: tuple[int, ...]) -> None:
    """Two different valid round-3 broadcasts (the same echo, listed in another order) to different
    parties: each passes round 3 alone, the round-4 echo names the cheater and nobody keeps a share."""
    hit = _from_cheater("keygen/r3", "broadcast", VICTIM)

    def tamper(msg: Outgoing, to: int) -> bytes:
        if not hit(msg, to):
            return msg.payload
        m = KeygenRound3Broadcast.decode(msg.payload)
        return dataclasses.replace(m, echo=tuple(reversed(m.echo))).encode()

    res = _run(threshold, parties, tamper)
    _assert_cheater_named(res, "equivocation")
    assert set(res.aborts) - {CHEATER} == set(parties) - {CHEATER}
    assert all({b.round for b in a.blames} == {"keygen/r4"} for p, a in res.aborts.items() if p != CHEATER)
    assert res.outputs == {}


@pytest.mark.parametrize(("threshold", "parties"), CONFIGS, ids=IDS)
def test_round3_cheat_on_one_party_leaves_nobody_with_a_share(threshold: int, parties: tuple[int, ...]) -> None:
    """A bad Πsch answer shown to one victim only: before round 3 was echoed the others kept a share
    of a key the victim had rejected."""
    hit = _from_cheater("keygen/r3", "broadcast", VICTIM)

    def tamper(msg: Outgoing, to: int) -> bytes:
        if not hit(msg, to):
            return msg.payload
        m = KeygenRound3Broadcast.decode(msg.payload)
        return dataclasses.replace(m, z=(m.z + 1) % Q).encode()

    res = _run(threshold, parties, tamper)
    _assert_cheater_named(res, "sch_proof")
    assert set(res.aborts) == {VICTIM}
    assert res.outputs == {}


# --- round 3: the Schnorr proof ----------------------------------------------------------------------


@pytest.mark.parametrize("victims", ["all", "one"])
@pytest.mark.parametrize(("threshold", "parties"), CONFIGS, ids=IDS)
def test_bad_schnorr_proof(threshold: int, parties: tuple[int, ...], victims: str) -> None:
    hit = _from_cheater("keygen/r3", "broadcast", None if victims == "all" else VICTIM)

    def tamper(msg: Outgoing, to: int) -> bytes:
        if not hit(msg, to):
            return msg.payload
        m = KeygenRound3Broadcast.decode(msg.payload)
        return dataclasses.replace(m, z=(m.z + 1) % Q).encode()

    res = _run(threshold, parties, tamper)
    _assert_cheater_named(res, "sch_proof")
    expected = set(parties) - {CHEATER} if victims == "all" else {VICTIM}
    assert set(res.aborts) == expected


# --- missing and garbled messages --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("round_name", "kind", "check"),
    [
        ("keygen/r1", "broadcast", "missing_broadcast"),
        ("keygen/r2", "broadcast", "missing_broadcast"),
        ("keygen/r2", "direct", "missing_direct"),
        ("keygen/r3", "broadcast", "missing_broadcast"),
    ],
)
@pytest.mark.parametrize(("threshold", "parties"), CONFIGS, ids=IDS)
def test_missing_message(threshold: int, parties: tuple[int, ...], round_name: str, kind: str, check: str) -> None:
    hit = _from_cheater(round_name, kind, VICTIM)

    def tamper(msg: Outgoing, to: int) -> bytes | None:
        return None if hit(msg, to) else msg.payload

    res = _run(threshold, parties, tamper)
    # A missing message is "unreachable or withheld", never proof of cheating.
    assert res.culprits() == set() and res.unreachable() == {CHEATER}
    assert _checks(res) == {check}
    assert set(res.aborts) == {VICTIM}


@pytest.mark.parametrize(
    ("round_name", "kind"),
    [("keygen/r1", "broadcast"), ("keygen/r2", "broadcast"), ("keygen/r2", "direct"), ("keygen/r3", "broadcast")],
)
@pytest.mark.parametrize(("threshold", "parties"), CONFIGS, ids=IDS)
def test_garbage_message_is_a_decode_failure(
    threshold: int, parties: tuple[int, ...], round_name: str, kind: str
) -> None:
    hit = _from_cheater(round_name, kind)

    def tamper(msg: Outgoing, to: int) -> bytes:
        return msg.payload[:-1] if hit(msg, to) else msg.payload

    _assert_cheater_named(_run(threshold, parties, tamper), "decode")


def test_out_of_range_share_is_a_decode_failure() -> None:
    hit = _from_cheater("keygen/r2", "direct", VICTIM)

    def tamper(msg: Outgoing, to: int) -> bytes:
        return encode("keygen/r2/direct", Q) if hit(msg, to) else msg.payload

    _assert_cheater_named(_run(2, (1, 2, 3), tamper), "decode")


# --- several cheaters at once -------------------------------------------------------------------------


def test_every_cheater_is_named() -> None:
    parties = (1, 2, 3, 4, 5)

    def tamper(msg: Outgoing, to: int) -> bytes:
        if msg.round == "keygen/r2" and msg.sender == 2 and msg.recipient == 5:
            return KeygenRound2Direct((KeygenRound2Direct.decode(msg.payload).sigma + 1) % Q).encode()
        if msg.round == "keygen/r2" and msg.sender == 4 and msg.recipient is None:
            m = KeygenRound2Broadcast.decode(msg.payload, 6)
            return dataclasses.replace(m, opening=dataclasses.replace(m.opening, u=bytes(32))).encode()
        return msg.payload

    res = _run(3, parties, tamper)
    assert res.corrupted == {2, 4}
    assert res.culprits() == {2, 4}
    blames = {(b.party, b.check) for p, a in res.aborts.items() if p not in res.corrupted for b in a.blames}
    assert blames == {(2, "vss_share"), (4, "commitment")}
    # The victim of both names both in one abort.
    assert res.aborts[5].culprits == {2, 4}
