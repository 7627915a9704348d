"""echo_evidence.CARRIERS against real protocol messages: every round that checks an echo can have
that echo read back out of its signed payload (the coordinator's settlement depends on it)."""

from __future__ import annotations

from typing import Any

import pytest

from signer.tss import aux, echo, keygen, presign, simulation
from signer.tss.echo_evidence import CARRIERS, carried_echo, echoed_round, settle
from signer.tss.errors import DecodeError
from signer.tss.params import LEVEL_112
from signer.tss.rounds import Outgoing
from tests.helpers import FixturePrimeSource, SeededRng
from tests.sessions import aux_from_fixtures, keygen_shares

PARTIES = (1, 2, 3)


def _broadcasts(starts: dict[int, Any]) -> dict[tuple[str, int], bytes]:
    seen: dict[tuple[str, int], bytes] = {}

    def record(msg: Outgoing, to: int) -> bytes:
        if msg.recipient is None:
            seen[(msg.round, msg.sender)] = msg.payload
        return msg.payload

    simulation.run_ok(starts, tamper=record)
    return seen


def _check(sid: bytes, seen: dict[tuple[str, int], bytes], prefix: str) -> None:
    carriers = [r for r in CARRIERS if r.startswith(prefix)]
    assert carriers
    for carrying in carriers:
        rnd = echoed_round(carrying)
        for (r, k), payload in seen.items():
            if r != carrying:
                continue
            got = dict(carried_echo(carrying, payload))
            want = {j: echo.digest(sid, rnd, j, p) for (r2, j), p in seen.items() if r2 == rnd}
            assert got == want, (carrying, k)


def test_keygen_carriers() -> None:
    sid = b"carriers-keygen"
    rng = SeededRng("carriers")
    seen = _broadcasts({p: keygen.start(sid, p, PARTIES, 2, rng=rng) for p in PARTIES})
    _check(sid, seen, "keygen/")


@pytest.mark.slow(20)
def test_presign_carriers() -> None:
    sid = b"carriers-presign"
    shares = keygen_shares(2, PARTIES)
    infos = aux_from_fixtures(LEVEL_112, PARTIES)
    rng = SeededRng("carriers-presign")
    seen = _broadcasts({p: presign.start(sid, shares[p], infos[p], (1, 2), rng=rng) for p in (1, 2)})
    _check(sid, seen, "presign/")


@pytest.mark.slow(60)
def test_aux_carriers() -> None:
    sid = b"carriers-aux-0001"
    rng = SeededRng("carriers-aux")
    starts = {
        p: aux.start_aux(sid, p, PARTIES, level=LEVEL_112, primes=FixturePrimeSource(offset=4 * i), rng=rng)
        for i, p in enumerate(PARTIES)
    }
    _check(sid, _broadcasts(starts), "aux/")


def test_settle_verdicts() -> None:
    sid, payload = b"settle", b"what 2 sent"
    honest = echo.make_echo(sid, "keygen/r1", {1: b"a", 2: payload, 3: b"c"})
    lying = tuple((j, bytes(32) if j == 2 else h) for j, h in honest)

    def r2(e: echo.Echo) -> bytes:
        from signer.tss.encoding import encode

        return encode("keygen/r2/bcast", [], echo.echo_value(e))

    liar = settle(sid, "keygen/r2", 2, [payload], {3: [r2(lying)], 1: [r2(honest)]})
    assert liar.equivocated is None and dict(liar.liars) == {3: 0}
    both = settle(sid, "keygen/r2", 2, [payload, b"other"], {3: [r2(lying)]})
    assert both.equivocated == (0, 1) and not both.liars
    with pytest.raises(DecodeError, match="carries no echo"):
        echoed_round("sign")
