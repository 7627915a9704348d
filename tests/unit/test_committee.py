"""Committee (a key's public state at one epoch) and the reshare message encodings."""

from __future__ import annotations

import dataclasses

import pytest

from signer.tss.committee import Committee
from signer.tss.curve import Point
from signer.tss.errors import DecodeError, InvalidInput
from signer.tss.reshare_msgs import (
    ReshareOpening,
    ReshareRound1Broadcast,
    ReshareRound2Broadcast,
    ReshareRound2Direct,
    ReshareRound3Broadcast,
    ReshareRound4Broadcast,
)
from tests.sessions import keygen_shares


def _committee() -> Committee:
    return Committee.of(keygen_shares(2, (1, 2, 3))[1])


def test_committee_of_a_key_share_is_consistent() -> None:
    c = _committee()
    c.check_consistent()
    assert c.epoch == 0 and c.parties == (1, 2, 3) and len(c.digest()) == 32
    assert dataclasses.replace(c, epoch=1).digest() != c.digest()


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"parties": (2, 1, 3)}, "sorted"),
        ({"threshold": 1}, "threshold"),
        ({"threshold": 4}, "threshold"),
        ({"chain_code": b"x"}, "chain code"),
        ({"epoch": -1}, "epoch"),
    ],
)
def test_committee_refuses_malformed_fields(changes: dict[str, object], match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        dataclasses.replace(_committee(), **changes)  # type: ignore[arg-type]


def test_committee_refuses_a_public_share_off_the_polynomial() -> None:
    c = _committee()
    shares = dict(c.public_shares)
    shares[1] = shares[1] + Point.generator()
    with pytest.raises(InvalidInput, match="party"):
        dataclasses.replace(c, public_shares=tuple(sorted(shares.items()))).check_consistent()


def test_reshare_messages_round_trip() -> None:
    G = Point.generator()
    opening = ReshareOpening(rid=bytes(32), F=(G, G * 2), A=(G * 3,), u=bytes(range(32)))
    echo = ((1, bytes(32)), (2, bytes([1]) * 32))
    r1 = ReshareRound1Broadcast(bytes(32), bytes([7]) * 32)
    assert ReshareRound1Broadcast.decode(r1.encode()) == r1
    r2 = ReshareRound2Broadcast(opening, echo)
    assert ReshareRound2Broadcast.decode(r2.encode(), 3) == r2
    assert ReshareRound2Direct.decode(ReshareRound2Direct(5).encode()) == ReshareRound2Direct(5)
    assert "5" not in repr(ReshareRound2Direct(5))
    for z in (None, 9):
        r3 = ReshareRound3Broadcast(echo, z)
        assert ReshareRound3Broadcast.decode(r3.encode()) == r3
    r4 = ReshareRound4Broadcast(echo, bytes(32))
    assert ReshareRound4Broadcast.decode(r4.encode()) == r4


def test_oversized_feldman_vector_does_not_decode() -> None:
    G = Point.generator()
    r2 = ReshareRound2Broadcast(ReshareOpening(bytes(32), (G,) * 4, (), bytes(32)), ())
    with pytest.raises(DecodeError):
        ReshareRound2Broadcast.decode(r2.encode(), 3)
    with pytest.raises(DecodeError):
        ReshareRound1Broadcast.decode(ReshareRound1Broadcast(bytes(31), bytes(32)).encode())
