"""The round framework (rounds.py), echo broadcast (echo.py) and the in-process driver (simulation.py)."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from signer.tss import echo
from signer.tss.echo_evidence import mismatch_evidence
from signer.tss.encoding import as_int, decode, decode_value, encode, encode_value
from signer.tss.errors import Blame, DecodeError, InternalError, InvalidInput, ProtocolAbort
from signer.tss.rounds import (
    BlameCollector,
    Continue,
    Done,
    Incoming,
    Outgoing,
    Round,
    Step,
    broadcast,
    decode_or_blame,
    direct,
)
from signer.tss.simulation import run, run_ok

SID = b"session"

# --- a toy two-round protocol: broadcast a value, then each party sends everyone a direct value ----


def _decode_value(data: bytes) -> int:
    (v,) = decode("toy/value", data, 1)
    return as_int(v)


class _ToyRound1(Round):
    name = "toy/r1"

    def __init__(self, party: int, parties: tuple[int, ...]) -> None:
        super().__init__(party, parties)

    def _receive(self, inbox: Mapping[int, Incoming]) -> Step:
        bc = BlameCollector(self.name)
        total = self.party
        for j in self.others:
            v = decode_or_blame(bc, j, inbox[j].broadcast or b"", _decode_value)
            if v is not None and v != j:
                bc.add(j, "wrong_value")
            total += 0 if v is None else v
        bc.raise_if_any()
        out = tuple(direct("toy/r2", self.party, j, encode("toy/value", 10 * self.party)) for j in self.others)
        return Continue(out, _ToyRound2(self.party, self.parties, total))


class _ToyRound2(Round):
    name = "toy/r2"
    expects_broadcast = False
    expects_direct = True

    def __init__(self, party: int, parties: tuple[int, ...], total: int) -> None:
        super().__init__(party, parties)
        self.total = total

    def _receive(self, inbox: Mapping[int, Incoming]) -> Step:
        bc = BlameCollector(self.name)
        extra = 0
        for j in self.others:
            v = decode_or_blame(bc, j, inbox[j].direct or b"", _decode_value)
            extra += 0 if v is None else v
        bc.raise_if_any()
        return Done((), (self.total, extra))


def _toy_starts(parties: tuple[int, ...]) -> dict[int, Step]:
    return {p: Continue((broadcast("toy/r1", p, encode("toy/value", p)),), _ToyRound1(p, parties)) for p in parties}


# --- rounds.py ------------------------------------------------------------------------------------


def test_round_requires_membership() -> None:
    with pytest.raises(InvalidInput):
        _ToyRound1(4, (1, 2, 3))


def test_direct_to_self_is_our_bug() -> None:
    with pytest.raises(InternalError):
        direct("toy/r1", 1, 1, b"")


def test_broadcast_and_direct_shapes() -> None:
    assert broadcast("r", 1, b"x") == Outgoing("r", 1, None, b"x")
    assert direct("r", 1, 2, b"x") == Outgoing("r", 1, 2, b"x")


def test_receive_rejects_inbox_outside_contract() -> None:
    r = _ToyRound1(1, (1, 2, 3))
    msg = Incoming(broadcast=encode("toy/value", 2))
    with pytest.raises(InvalidInput, match="outside"):
        r.receive({2: msg, 3: msg, 4: msg})
    with pytest.raises(InvalidInput, match="missing"):
        r.receive({2: msg})


def test_receive_blames_every_missing_message() -> None:
    r = _ToyRound2(1, (1, 2, 3), 0)
    with pytest.raises(ProtocolAbort) as exc:
        r.receive({2: Incoming(), 3: Incoming(broadcast=b"unexpected but harmless")})
    assert exc.value.blames == (Blame(2, "toy/r2", "missing_direct"), Blame(3, "toy/r2", "missing_direct"))
    r1 = _ToyRound1(1, (1, 2))
    with pytest.raises(ProtocolAbort) as exc:
        r1.receive({2: Incoming()})
    # A missing message names its sender unreachable, not a culprit (the relay may have withheld it).
    assert exc.value.culprits == set() and exc.value.unreachable == {2}
    assert exc.value.blames[0].check == "missing_broadcast"


def test_round_collects_all_culprits_not_just_the_first() -> None:
    r = _ToyRound1(1, (1, 2, 3, 4))
    inbox = {
        2: Incoming(broadcast=encode("toy/value", 2)),
        3: Incoming(broadcast=b"garbage"),
        4: Incoming(broadcast=encode("toy/value", 5)),
    }
    with pytest.raises(ProtocolAbort) as exc:
        r.receive(inbox)
    assert exc.value.culprits == {3, 4}
    assert {(b.party, b.check) for b in exc.value.blames} == {(3, "decode"), (4, "wrong_value")}


def test_decode_or_blame() -> None:
    bc = BlameCollector("toy/r1")
    assert decode_or_blame(bc, 2, encode("toy/value", 7), _decode_value) == 7
    assert not bc.blames
    bc.raise_if_any()
    assert decode_or_blame(bc, 3, b"\x00junk", _decode_value) is None
    assert bc.blames == [Blame(3, "toy/r1", "decode", b"\x00junk")]
    assert bc.has(3) and not bc.has(2)
    with pytest.raises(ProtocolAbort) as exc:
        bc.raise_if_any()
    assert exc.value.culprits == {3}


def test_decode_or_blame_lets_other_errors_through() -> None:
    def boom(_: bytes) -> int:
        raise InternalError("our bug")

    with pytest.raises(InternalError):
        decode_or_blame(BlameCollector("r"), 2, b"", boom)


def test_protocol_abort_needs_a_blame() -> None:
    with pytest.raises(InternalError):
        ProtocolAbort([])


# --- echo.py --------------------------------------------------------------------------------------

BCASTS = {1: b"one", 2: b"two", 3: b"three"}


def test_make_echo_is_sorted_and_bound_to_session_round_and_sender() -> None:
    e = echo.make_echo(SID, "r1", {3: b"three", 1: b"one", 2: b"two"})
    assert [j for j, _ in e] == [1, 2, 3]
    assert e == echo.make_echo(SID, "r1", BCASTS)
    h = dict(e)[1]
    assert h != echo.digest(b"other", "r1", 1, b"one")
    assert h != echo.digest(SID, "r2", 1, b"one")
    assert h != echo.digest(SID, "r1", 2, b"one")


def test_echo_wire_round_trip() -> None:
    e = echo.make_echo(SID, "r1", BCASTS)
    assert echo.echo_from_value(decode_value(encode_value(echo.echo_value(e)))) == e


@pytest.mark.parametrize("bad", [[[1]], [[1, b"x" * 31]], [[b"1", b"x" * 32]], [1], b"not a list"])
def test_echo_decoding_rejects_malformed(bad: object) -> None:
    with pytest.raises(DecodeError):
        echo.echo_from_value(decode_value(encode_value(bad)))  # type: ignore[arg-type]


def _check(me: int, mine: echo.Echo, theirs: dict[int, echo.Echo]) -> list[Blame]:
    bc = BlameCollector("r2")
    echo.check_echoes(bc, me, mine, theirs)
    return bc.blames


def _mismatch(party: int, *, sender: int, reporters: list[int]) -> Blame:
    return Blame(party, "r2", "equivocation", mismatch_evidence(sender, reporters))


def test_consistent_echoes_blame_nobody() -> None:
    e = echo.make_echo(SID, "r1", BCASTS)
    assert _check(1, e, {2: e, 3: e}) == []


def test_sender_equivocation_is_blamed_on_the_sender() -> None:
    # Party 3 showed party 2 another broadcast; both 1 and 2 name 3, whatever 3 itself echoes.
    seen_by_1 = echo.make_echo(SID, "r1", BCASTS)
    seen_by_2 = echo.make_echo(SID, "r1", {**BCASTS, 3: b"THREE"})
    # The evidence says whose broadcast and which reporters differ (the coordinator settles it).
    assert _check(1, seen_by_1, {2: seen_by_2, 3: seen_by_1}) == [_mismatch(3, sender=3, reporters=[2])]
    assert _check(2, seen_by_2, {1: seen_by_1, 3: seen_by_1}) == [_mismatch(3, sender=3, reporters=[1, 3])]


def test_false_echo_of_my_own_broadcast_blames_the_reporter() -> None:
    mine = echo.make_echo(SID, "r1", BCASTS)
    lie = echo.make_echo(SID, "r1", {**BCASTS, 1: b"not what 1 sent"})
    assert _check(1, mine, {2: mine, 3: lie}) == [_mismatch(3, sender=1, reporters=[3])]


def test_third_party_conflict_names_the_sender() -> None:
    """Known limit: a conflict about a third party's broadcast is attributed to that sender.

    Without signatures the library cannot tell "3 equivocated" from "2 lied about 3"; the service
    resolves it with the signed envelopes (3's two signed versions, or none). See the report.
    """
    mine = echo.make_echo(SID, "r1", BCASTS)
    lie = echo.make_echo(SID, "r1", {**BCASTS, 3: b"claimed"})
    assert _check(1, mine, {2: lie, 3: mine}) == [_mismatch(3, sender=3, reporters=[2])]


@pytest.mark.parametrize(
    "bad",
    [
        lambda e: e[:2],  # a sender left out
        lambda e: (*e, (4, bytes(32))),  # a sender that does not exist
        lambda e: (*e[:2], e[1]),  # a sender twice, one missing
        lambda e: (*e, e[0]),  # a sender twice
    ],
)
def test_malformed_echo_blames_the_reporter(bad: object) -> None:
    mine = echo.make_echo(SID, "r1", BCASTS)
    theirs = bad(mine)  # type: ignore[operator]
    blames = _check(1, mine, {2: mine, 3: theirs})
    assert [(b.party, b.check) for b in blames] == [(3, "echo_malformed")]


def test_every_equivocator_is_named_once() -> None:
    mine = echo.make_echo(SID, "r1", {**BCASTS, 4: b"four"})
    other = echo.make_echo(SID, "r1", {1: b"one", 2: b"TWO", 3: b"THREE", 4: b"four"})
    blames = _check(1, mine, {2: other, 3: other, 4: other})
    assert [(b.party, b.check) for b in blames] == [(2, "equivocation"), (3, "equivocation")]


# --- simulation.py --------------------------------------------------------------------------------


def test_simulation_runs_to_completion() -> None:
    parties = (1, 2, 3)
    res = run(_toy_starts(parties))
    assert res.aborts == {} and res.rounds == 2
    assert res.outputs == {1: (6, 50), 2: (6, 40), 3: (6, 30)}
    assert run_ok(_toy_starts(parties)) == res.outputs


def test_tamper_sees_each_delivery_per_recipient() -> None:
    seen: list[tuple[str, int, int | None, int]] = []

    def spy(msg: Outgoing, to: int) -> bytes:
        seen.append((msg.round, msg.sender, msg.recipient, to))
        return msg.payload

    run_ok(_toy_starts((1, 2, 3)), tamper=spy)
    r1 = sorted((s, to) for r, s, rec, to in seen if r == "toy/r1")
    assert r1 == [(1, 2), (1, 3), (2, 1), (2, 3), (3, 1), (3, 2)]
    assert all(rec == to for r, _, rec, to in seen if r == "toy/r2")


def test_dropped_message_names_its_sender_unreachable() -> None:
    def drop(msg: Outgoing, to: int) -> bytes | None:
        return None if msg.sender == 2 and to == 3 and msg.round == "toy/r2" else msg.payload

    res = run(_toy_starts((1, 2, 3)), tamper=drop)
    assert res.culprits() == set() and res.unreachable() == {2}
    assert list(res.aborts) == [3]
    assert res.aborts[3].blames[0].check == "missing_direct"
    with pytest.raises(ProtocolAbort):
        run_ok(_toy_starts((1, 2, 3)), tamper=drop)


def test_altered_message_blames_its_sender_at_that_recipient_only() -> None:
    def alter(msg: Outgoing, to: int) -> bytes:
        return encode("toy/value", 99) if msg.sender == 1 and to == 2 else msg.payload

    res = run(_toy_starts((1, 2, 3)), tamper=alter)
    assert res.culprits() == {1} and set(res.aborts) == {2}
    assert res.aborts[2].blames[0].check == "wrong_value"
    assert res.outputs == {}


def test_simulation_never_leaves_parties_waiting_silently() -> None:
    with pytest.raises(InternalError):
        run(_toy_starts((1, 2)), max_rounds=1)
