"""Reshare with a cheating party: every abort names exactly the cheater, with the check that caught it.

Cheats go through the simulation's tamper hook. A wrong constant term must be committed to in
round 1, so that test first runs the same (seeded) session honestly to learn the cheater's
opening, then replays it with the round-1 commitment, the opening, the cheater's own echo entry
and its shares rewritten for f_i + 1: everything is consistent except F_i[0] ≠ λ_i·X_i.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from signer.tss import simulation
from signer.tss.committee import Committee
from signer.tss.curve import Point, Q
from signer.tss.echo import digest as echo_digest
from signer.tss.key_share import KeyShare
from signer.tss.reshare_msgs import (
    ROUND1,
    ROUND2,
    ROUND3,
    ROUND4,
    ReshareContext,
    ReshareRound1Broadcast,
    ReshareRound2Broadcast,
    ReshareRound2Direct,
    ReshareRound3Broadcast,
    ReshareRound4Broadcast,
)
from signer.tss.rounds import Outgoing
from signer.tss.simulation import SimulationResult, Tamper
from tests.reshare_sessions import reshare_starts, run_reshare
from tests.sessions import keygen_shares

Config = tuple[tuple[int, ...], tuple[int, ...], int]
CONFIGS: list[Config] = [((1, 2), (1, 2, 4), 2), ((2, 3), (1, 2, 3, 4, 5), 3), ((1, 2), (1, 3, 4), 2)]
IDS = ["replace-t2", "grow-t3", "dealer-retires"]
DEALER = 2
"""A dealer in every config: new party in the first two, retiring in the third."""
JOINER = 4
"""A party that only joins (new to the key) in every config."""
SEED = "cheat"


def _old() -> dict[int, KeyShare]:
    return keygen_shares(2, (1, 2, 3))


def _run(cfg: Config, tamper: Tamper) -> SimulationResult:
    return run_reshare(_old(), *cfg, SEED, tamper=tamper)


def _checks(res: SimulationResult) -> set[str]:
    """Every check named by an honest (non-cheating) party."""
    return {b.check for p, a in res.aborts.items() if p not in res.corrupted for b in a.blames}


def _assert_named(res: SimulationResult, cheater: int, check: str) -> None:
    assert res.culprits() == {cheater}
    assert _checks(res) == {check}
    # No honest party finishes (the cheater's own honest code may: it never saw what was sent in its name).
    assert not set(res.outputs) - res.corrupted, "no honest party outputs when any party aborts"


def _rewrite(
    cheater: int, round_name: str, kind: str, change: Callable[[bytes], bytes], to: int | None = None
) -> Tamper:
    def tamper(msg: Outgoing, recipient: int) -> bytes | None:
        if msg.sender != cheater or msg.round != round_name or (msg.recipient is None) != (kind == "broadcast"):
            return msg.payload
        if to is not None and recipient != to:
            return msg.payload
        return change(msg.payload)

    return tamper


def _max_terms(cfg: Config) -> int:
    return len(cfg[1]) + 1


@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
def test_wrong_constant_term(cfg: Config) -> None:
    dealers, parties, t = cfg
    sent: dict[int | None, bytes] = {}

    def record(msg: Outgoing, recipient: int) -> bytes | None:
        if msg.sender == DEALER and msg.round == ROUND2:
            sent[msg.recipient] = msg.payload
        return msg.payload

    assert _run(cfg, record).outputs  # the honest run, to learn the cheater's opening
    honest = ReshareRound2Broadcast.decode(sent[None], _max_terms(cfg))
    opening = dataclasses.replace(honest.opening, F=(honest.opening.F[0] + Point.generator(), *honest.opening.F[1:]))
    committee = Committee.of(_old()[1])
    ctx = ReshareContext(f"test-reshare/{SEED}".encode(), DEALER, committee, dealers, parties, t)
    r1 = ReshareRound1Broadcast(ctx.digest(), ctx.commitment(DEALER, opening)).encode()
    own = echo_digest(ctx.session_id, ROUND1, DEALER, r1)
    r2 = ReshareRound2Broadcast(opening, tuple((j, own if j == DEALER else h) for j, h in honest.echo)).encode()

    def cheat(msg: Outgoing, recipient: int) -> bytes | None:
        if msg.sender != DEALER or msg.round not in (ROUND1, ROUND2):
            return msg.payload
        if msg.round == ROUND1:
            return r1
        if msg.recipient is None:
            return r2
        sigma = ReshareRound2Direct.decode(msg.payload).sigma
        return ReshareRound2Direct((sigma + 1) % Q).encode()  # consistent with f_i + 1

    _assert_named(_run(cfg, cheat), DEALER, "reshare_constant")


@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
def test_bad_share_to_one_new_party(cfg: Config) -> None:
    def bump(p: bytes) -> bytes:
        return ReshareRound2Direct((ReshareRound2Direct.decode(p).sigma + 1) % Q).encode()

    res = _run(cfg, _rewrite(DEALER, ROUND2, "direct", bump, to=JOINER))
    _assert_named(res, DEALER, "reshare_share")
    assert set(res.aborts) == {JOINER}
    (blame,) = res.aborts[JOINER].blames
    assert ReshareRound2Direct.decode(blame.evidence).sigma  # the disclosed share is the evidence


@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
def test_equivocated_commitment(cfg: Config) -> None:
    """V_i shown differently to one party: the echo of round 1 exposes the dealer."""

    def other(p: bytes) -> bytes:
        msg = ReshareRound1Broadcast.decode(p)
        return ReshareRound1Broadcast(msg.context, bytes(b ^ 1 for b in msg.commitment)).encode()

    _assert_named(_run(cfg, _rewrite(DEALER, ROUND1, "broadcast", other, to=JOINER)), DEALER, "equivocation")


@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
def test_different_reveal_to_one_party(cfg: Config) -> None:
    """An opening shown to one party that does not open V_i: that party names the dealer."""

    def other(p: bytes) -> bytes:
        msg = ReshareRound2Broadcast.decode(p, _max_terms(cfg))
        opening = dataclasses.replace(msg.opening, u=bytes(b ^ 1 for b in msg.opening.u))
        return ReshareRound2Broadcast(opening, msg.echo).encode()

    res = _run(cfg, _rewrite(DEALER, ROUND2, "broadcast", other, to=JOINER))
    _assert_named(res, DEALER, "commitment")
    assert set(res.aborts) == {JOINER}


def _bad_z(p: bytes) -> bytes:
    msg = ReshareRound3Broadcast.decode(p)
    assert msg.z is not None
    return ReshareRound3Broadcast(msg.echo, (msg.z + 1) % Q).encode()


@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
def test_bad_schnorr_proof(cfg: Config) -> None:
    _assert_named(_run(cfg, _rewrite(JOINER, ROUND3, "broadcast", _bad_z)), JOINER, "sch_proof")


@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
def test_bad_schnorr_proof_to_one_party_stops_everyone(cfg: Config) -> None:
    """Shown to one party only: that party aborts, and round 4's echo keeps the others from finishing."""
    res = _run(cfg, _rewrite(JOINER, ROUND3, "broadcast", _bad_z, to=1))
    _assert_named(res, JOINER, "sch_proof")
    assert set(res.aborts) == {1}


@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
def test_missing_schnorr_answer(cfg: Config) -> None:
    def drop_z(p: bytes) -> bytes:
        return ReshareRound3Broadcast(ReshareRound3Broadcast.decode(p).echo, None).encode()

    _assert_named(_run(cfg, _rewrite(JOINER, ROUND3, "broadcast", drop_z)), JOINER, "sch_proof")


@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
def test_wrong_output_digest(cfg: Config) -> None:
    def other(p: bytes) -> bytes:
        msg = ReshareRound4Broadcast.decode(p)
        return ReshareRound4Broadcast(msg.echo, bytes(b ^ 1 for b in msg.output)).encode()

    _assert_named(_run(cfg, _rewrite(DEALER, ROUND4, "broadcast", other)), DEALER, "reshare_output")


def test_wrong_output_digest_to_one_party_is_the_last_round_limit() -> None:
    """The last message can reach some parties and not others: here the victim aborts naming the
    cheater while the others finish. No round can close this gap, which is why a node adopts the
    new epoch only once every party has signed the public output's digest (two-phase adoption)."""
    cfg = CONFIGS[0]

    def other(p: bytes) -> bytes:
        msg = ReshareRound4Broadcast.decode(p)
        return ReshareRound4Broadcast(msg.echo, bytes(b ^ 1 for b in msg.output)).encode()

    res = _run(cfg, _rewrite(DEALER, ROUND4, "broadcast", other, to=JOINER))
    assert res.culprits() == {DEALER} and _checks(res) == {"reshare_output"}
    assert set(res.aborts) == {JOINER} and set(res.outputs) == {1, DEALER}


def test_joiner_with_other_parameters_is_named_before_any_share_is_sent() -> None:
    """A party started with another t' is named by every other party in round 1 (`reshare_context`)."""
    cfg = CONFIGS[0]
    starts = reshare_starts(_old(), *cfg, SEED)
    starts[JOINER] = reshare_starts(_old(), cfg[0], cfg[1], 3, SEED)[JOINER]
    res = simulation.run(starts)
    assert res.rounds == 1 and not res.outputs
    for p in set(cfg[0]) | set(cfg[1]) - {JOINER}:
        assert res.aborts[p].culprits == {JOINER}
        assert {b.check for b in res.aborts[p].blames} == {"reshare_context"}
