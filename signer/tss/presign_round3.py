"""Presigning round 3 and the closing echo round (Fig. 8, Output; Section 4.3.1): the presignature.

`PresignRound3.receive` (party i, from every j):
  1. Decode (δ_j canonical, Δ_j and S_j valid points); compare the echo of round 2
     (`equivocation`); verify ψ'_j (`elog_delta`: L=A_j1, M=A_j2, X=Y_j, Y=Δ_j, h=Γ).
  2. Broadcast the echo of round 3 (δ_j feeds the output, so all must have seen the same).

`PresignRound4.receive`:
  1. Compare the echo of round 3 (`equivocation`).
  2. δ = Σ_j δ_j; require δ·G = Σ_j Δ_j (else the nonce identification of Fig. 9) and
     Σ_j S_j = δ·X (else the χ identification of Section 4.3.1): since no single message names
     the cheater, either failure continues into the identification round (presign_identify.py),
     which every driver runs like any other round and which ends in an abort naming the culprits.
  3. Output R = Γ, k̃_i = k_i/δ, χ̃_i = χ_i/δ, Δ̃_j = δ^-1·Δ_j, S̃_j = δ^-1·S_j.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from . import presign_identify
from .curve import Point, Q, point_sum, scalar_inv
from .echo import Echo, check_echoes, make_echo
from .errors import InternalError, InvalidInput, InvalidProof
from .presign_msgs import PresignRound1Broadcast, PresignRound3Broadcast, PresignRound4Broadcast
from .presign_state import (
    IdentificationState,
    MtaReceived,
    MtaSent,
    Nonces,
    PresignContext,
)
from .presignature import Presignature, PresignaturePublic
from .rng import Rng
from .rounds import BlameCollector, Continue, Done, Incoming, Round, Step, broadcast, decode_or_blame
from .zk import elog

ROUND3 = "presign/r3"
ROUND4 = "presign/r4"


@dataclass(frozen=True, slots=True)
class Round3State:
    """What the last two rounds carry from round 2 (secrets hidden from repr)."""

    ctx: PresignContext
    nonces: Nonces = field(repr=False)
    r1: Mapping[int, PresignRound1Broadcast]
    gammas: Mapping[int, Point]
    Gamma_sum: Point
    sent: Mapping[int, MtaSent] = field(repr=False)
    received: Mapping[int, MtaReceived] = field(repr=False)
    chi: int = field(repr=False)
    delta_int: int = field(repr=False)
    chi_int: int = field(repr=False)
    mta_commitments: Mapping[int, Mapping[int, bytes]]


class PresignRound3(Round):
    """Receives every other signer's δ_j, Δ_j, S_j and Πelog; emits the echo of round 3."""

    name = ROUND3
    expects_broadcast = True
    expects_direct = False

    def __init__(self, state: Round3State, rng: Rng, mine: PresignRound3Broadcast, my_payload: bytes) -> None:
        super().__init__(state.ctx.party, state.ctx.signers)
        self._state = state
        self._rng = rng
        self._mine = mine
        self._my_payload = my_payload

    def _receive(self, inbox: Mapping[int, Incoming]) -> Step:
        st = self._state
        ctx, me = st.ctx, self.party
        collector = BlameCollector(self.name)
        r3: dict[int, PresignRound3Broadcast] = {me: self._mine}
        payloads: dict[int, bytes] = {me: self._my_payload}
        for j in self.others:
            data = inbox[j].broadcast
            assert data is not None  # checked by Round.receive
            bc = decode_or_blame(collector, j, data, PresignRound3Broadcast.decode)
            if bc is not None:
                r3[j], payloads[j] = bc, data
        check_echoes(collector, me, self._mine.echo, {j: bc.echo for j, bc in r3.items() if j != me})
        for j in self.others:
            if j not in r3:
                continue
            r1j, bc = st.r1[j], r3[j]
            try:
                elog.verify(
                    ctx.transcript("r3/psi_prime", j),
                    elog.Statement(L=r1j.A1, M=r1j.A2, X=r1j.Y, Y=bc.Delta, h=st.Gamma_sum),
                    bc.psi_prime,
                    level=ctx.level,
                )
            except InvalidProof:
                collector.add(j, "elog_delta", payloads[j])
        collector.raise_if_any()
        echo3 = make_echo(ctx.session_id, ROUND3, payloads)
        out = broadcast(ROUND4, me, PresignRound4Broadcast(echo3).encode())
        return Continue((out,), PresignRound4(st, self._rng, r3, echo3))


class PresignRound4(Round):
    """Receives the echoes of round 3; checks δ and χ; outputs the Presignature or continues into identification."""

    name = ROUND4
    expects_broadcast = True
    expects_direct = False

    def __init__(self, state: Round3State, rng: Rng, r3: Mapping[int, PresignRound3Broadcast], echo3: Echo) -> None:
        super().__init__(state.ctx.party, state.ctx.signers)
        self._state = state
        self._rng = rng
        self._r3 = dict(r3)
        self._echo3 = echo3

    def _receive(self, inbox: Mapping[int, Incoming]) -> Step:
        st = self._state
        ctx, me = st.ctx, self.party
        collector = BlameCollector(self.name)
        echoes: dict[int, Echo] = {}
        for j in self.others:
            data = inbox[j].broadcast
            assert data is not None  # checked by Round.receive
            bc = decode_or_blame(collector, j, data, PresignRound4Broadcast.decode)
            if bc is not None:
                echoes[j] = bc.echo
        check_echoes(collector, me, self._echo3, echoes)
        collector.raise_if_any()

        signers, r3 = ctx.signers, self._r3
        delta = sum(r3[j].delta for j in signers) % Q
        if Point.base_mul(delta) != point_sum([r3[j].Delta for j in signers]):
            return presign_identify.start(self._identification("delta"), rng=self._rng)
        if point_sum([r3[j].S for j in signers]) != ctx.key_share.public_key * delta:
            return presign_identify.start(self._identification("chi"), rng=self._rng)
        if delta == 0:
            # δ·G = ΣΔ_j = k·Γ passed, so k = 0: each k_j was committed (ElGamal) before any other
            # was known, which makes this negligible; nobody can be named.
            raise InternalError("δ = 0; start a new presigning session")
        return Done((), self._output(delta))

    def _output(self, delta: int) -> Presignature:
        st = self._state
        ctx, r3 = st.ctx, self._r3
        inv = scalar_inv(delta)
        try:
            public = PresignaturePublic(
                session_id=ctx.session_id,
                signers=ctx.signers,
                key_fingerprint=ctx.key_share.key_fingerprint(),
                epoch=ctx.key_share.epoch,
                aux_epoch=ctx.aux.epoch_id,
                path=ctx.path,
                tweak=ctx.tweak,
                public_key=ctx.derived_public_key,
                R=st.Gamma_sum,
                delta_tilde=tuple((j, r3[j].Delta * inv) for j in ctx.signers),
                s_tilde=tuple((j, r3[j].S * inv) for j in ctx.signers),
            )
            return Presignature(ctx.party, st.nonces.k * inv % Q, st.chi * inv % Q, public)
        except InvalidInput as exc:
            # The checks above imply every invariant the output types verify.
            raise InternalError(f"presignature output inconsistent: {exc}") from exc

    def _identification(self, reason: str) -> IdentificationState:
        st = self._state
        signers, r3 = st.ctx.signers, self._r3
        return IdentificationState(
            reason=reason,
            context=st.ctx,
            K={j: st.r1[j].K for j in signers},
            G={j: st.r1[j].G for j in signers},
            Gamma=dict(st.gammas),
            Gamma_sum=st.Gamma_sum,
            Delta={j: r3[j].Delta for j in signers},
            S={j: r3[j].S for j in signers},
            delta={j: r3[j].delta for j in signers},
            sent=st.sent,
            received=st.received,
            nonces=st.nonces,
            delta_int=st.delta_int,
            chi_int=st.chi_int,
            mta_commitments=st.mta_commitments,
        )
