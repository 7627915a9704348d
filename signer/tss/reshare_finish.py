"""Reshare rounds 3 and 4: the new parties' Schnorr confirmations and the agreed public output.

See signer/tss/reshare.py for the whole protocol and docs/protocol.md, "Reshare", for its checks.
  Round 3   check the echo of round 2 (`equivocation` / `echo_malformed`) and, for every new party
            j, Πsch of x'_j against the X'_j this party computed itself (`sch_proof`; an old-only
            party that sends an answer fails `decode`); send the echo of round 3 and the digest of
            the public output.
  Round 4   check the echo of round 3 and that every party's output digest equals one's own
            (`reshare_output`); output.
"""

from __future__ import annotations

from collections.abc import Mapping

from .committee import Committee, ReshareOutput, ResharePublic
from .curve import Point
from .echo import Echo, check_echoes, make_echo
from .errors import InternalError, InvalidProof
from .key_share import KeyShare
from .reshare_msgs import ROUND3, ROUND4, ReshareContext, ReshareRound3Broadcast, ReshareRound4Broadcast
from .rounds import BlameCollector, Continue, Done, Incoming, Round, Step, broadcast, decode_or_blame
from .zk import sch

__all__ = ["ReshareRound3", "ReshareRound4", "payload"]


def payload(m: bytes | None) -> bytes:
    """The broadcast a round expects (Round.receive has already blamed every absent one)."""
    if m is None:
        raise InternalError("a message the round expects is absent")
    return m


class ReshareRound3(Round):
    """Checks the echo of round 2 and every new party's Πsch; sends the echo of round 3."""

    name = ROUND3

    def __init__(
        self,
        ctx: ReshareContext,
        *,
        own_r3: bytes,
        echo: Echo,
        A: dict[int, Point],
        committee: Committee,
        rid: bytes,
        share: KeyShare | None,
    ) -> None:
        super().__init__(ctx.party, ctx.parties)
        self._ctx = ctx
        self._own_r3 = own_r3
        self._echo = echo
        self._A = A
        self._committee = committee
        self._rid = rid
        self._share = share

    def _receive(self, inbox: Mapping[int, Incoming]) -> Step:
        ctx, bc = self._ctx, BlameCollector(self.name)
        msgs: dict[int, ReshareRound3Broadcast] = {}
        for j in self.others:
            msg = decode_or_blame(bc, j, payload(inbox[j].broadcast), ReshareRound3Broadcast.decode)
            if msg is not None:
                msgs[j] = msg
        check_echoes(bc, ctx.party, self._echo, {j: m.echo for j, m in msgs.items()})
        for j, m in msgs.items():
            if bc.has(j):
                continue
            if not ctx.is_new(j):
                if m.z is not None:
                    bc.add(j, "decode", payload(inbox[j].broadcast))
                continue
            proof = m.proof(self._A[j])
            try:
                if proof is None:
                    raise InvalidProof(sch.NAME, "missing")
                stmt = sch.Statement(self._committee.public_share(j))
                sch.verify(ctx.transcript(j, self._rid), stmt, proof)
            except InvalidProof:
                bc.add(j, "sch_proof", payload(inbox[j].broadcast))
        bc.raise_if_any()
        public = ResharePublic(ctx.session_id, ctx.old.digest(), self._committee, self._rid)
        payloads = {j: payload(inbox[j].broadcast) for j in self.others}
        payloads[ctx.party] = self._own_r3
        echo = make_echo(ctx.session_id, ROUND3, payloads)
        r4 = ReshareRound4Broadcast(echo, public.digest()).encode()
        nxt = ReshareRound4(ctx, echo, ReshareOutput(public, self._share))
        return Continue((broadcast(ROUND4, ctx.party, r4),), nxt)


class ReshareRound4(Round):
    """Checks the echo of round 3 and every party's output digest; outputs."""

    name = ROUND4

    def __init__(self, ctx: ReshareContext, echo: Echo, output: ReshareOutput) -> None:
        super().__init__(ctx.party, ctx.parties)
        self._ctx = ctx
        self._echo = echo
        self._output = output

    def _receive(self, inbox: Mapping[int, Incoming]) -> Step:
        bc = BlameCollector(self.name)
        msgs: dict[int, ReshareRound4Broadcast] = {}
        for j in self.others:
            msg = decode_or_blame(bc, j, payload(inbox[j].broadcast), ReshareRound4Broadcast.decode)
            if msg is not None:
                msgs[j] = msg
        check_echoes(bc, self.party, self._echo, {j: m.echo for j, m in msgs.items()})
        mine = self._output.public.digest()
        for j, m in msgs.items():
            if not bc.has(j) and m.output != mine:
                # Everything the output depends on was echoed, so a differing digest is j's own doing.
                bc.add(j, "reshare_output", payload(inbox[j].broadcast))
        bc.raise_if_any()
        return Done((), self._output)
