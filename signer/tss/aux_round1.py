"""Aux info / key refresh, round 1: collect every party's hash commitment V_j.

Paper steps (CGGMP24 Fig. 7, Round 2): having received V_j from everyone, send the opening
(N_i, N̂_i, s_i, t_i, Πprm, rid_i, [refresh: F_i, A_i^k], u_i) to all, together with the echo of
every V_j (including our own), so the next round can tell an equivocating R1 broadcast.
"""

from __future__ import annotations

from collections.abc import Mapping

from .aux_msg import ROUND1, ROUND2, AuxContext, AuxOpening, AuxRound1Broadcast, AuxRound2Broadcast, AuxSecrets
from .aux_round2 import AuxRound2
from .echo import make_echo
from .rounds import BlameCollector, Continue, Incoming, Round, Step, broadcast, decode_or_blame


class AuxRound1(Round):
    """Waits for every V_j; answers with the opening and the echo of R1."""

    name = ROUND1

    def __init__(self, ctx: AuxContext, secrets: AuxSecrets, opening: AuxOpening, own_payload: bytes) -> None:
        super().__init__(ctx.party, ctx.parties)
        self.ctx = ctx
        self._secrets = secrets
        self.opening = opening
        """Our own opening (public data; adversarial tests read it to forge consistent commitments)."""
        self._own_payload = own_payload

    def _receive(self, inbox: Mapping[int, Incoming]) -> Step:
        blame = BlameCollector(self.name)
        commitments: dict[int, bytes] = {}
        payloads = {self.party: self._own_payload}
        for j in self.others:
            data = inbox[j].broadcast
            assert data is not None  # Round.receive checked presence
            payloads[j] = data
            msg = decode_or_blame(blame, j, data, AuxRound1Broadcast.decode)
            if msg is not None:
                commitments[j] = msg.commitment
        blame.raise_if_any()
        echo = make_echo(self.ctx.session_id, ROUND1, payloads)
        out = AuxRound2Broadcast(self.opening, echo).encode()
        nxt = AuxRound2(self.ctx, self._secrets, self.opening, commitments, echo, out)
        return Continue((broadcast(ROUND2, self.party, out),), nxt)
