"""Presigning round 2 (Fig. 8): checking Γ_j and the MtA messages; δ_i, χ_i and round 3.

`PresignRound2.receive` (party i, from every j):
  1. Decode (Γ_j valid; D_{i,j}, D̂_{i,j} ∈ Z*_{N_i²}; F_{i,j}, F̂_{i,j} ∈ Z*_{N_j²}); compare the echo of
     round 1 (`equivocation`); verify ψ_j (`elog_gamma`: L=B_j1, M=B_j2, X=Y_j, Y=Γ_j, h=G) and both
     Πaff-g under our own ring-Pedersen parameters (`aff_g_gamma` with X = Γ_j, C = K_i;
     `aff_g_x` with X = X_j' = λ_j·X_j); check that j's broadcast commits to exactly the other
     signers and that its commitment for us matches the direct values (`mta_commitment`).
  2. α_{i,j} = dec_i(D_{i,j}), α̂_{i,j} = dec_i(D̂_{i,j}) (CRT); Γ = Σ_j Γ_j; Δ_i = k_i·Γ;
     δ_i = γ_i·k_i + Σ_j (α_{i,j} − β_{j,i}),  χ_i = x_i'·k_i + Σ_j (α̂_{i,j} − β̂_{j,i})  (mod q);
     S_i = χ_i·Γ; ψ'_i = Πelog(L=A_i1, M=A_i2, X=Y_i, Y=Δ_i, h=Γ; y=k_i, λ=a_i).
  3. Broadcast (δ_i, Δ_i, S_i, ψ'_i, echo of round 2).

Since D_{i,j} = K_i^{γ_j}·enc_i(β_{i,j}), α_{i,j} = k_i·γ_j + β_{i,j} over the integers (all terms are
far below N_i/2), so Σ_i δ_i = k·γ and Σ_i χ_i = k·x.
"""

from __future__ import annotations

from collections.abc import Mapping

from .curve import Point, Q, point_sum
from .echo import Echo, check_echoes, make_echo
from .errors import InternalError, InvalidProof
from .presign_msgs import (
    PresignRound1Broadcast,
    PresignRound2Broadcast,
    PresignRound2Direct,
    PresignRound3Broadcast,
    mta_commitment,
)
from .presign_round3 import ROUND3, PresignRound3, Round3State
from .presign_state import MtaReceived, MtaSent, Nonces, PresignContext
from .rng import Rng
from .rounds import BlameCollector, Continue, Incoming, Round, Step, broadcast, decode_or_blame
from .zk import aff_g, elog

ROUND1 = "presign/r1"
ROUND2 = "presign/r2"


class PresignRound2(Round):
    """Receives every other signer's Γ_j, Πelog and MtA messages; emits round 3."""

    name = ROUND2
    expects_broadcast = True
    expects_direct = True

    def __init__(
        self,
        ctx: PresignContext,
        rng: Rng,
        nonces: Nonces,
        r1: Mapping[int, PresignRound1Broadcast],
        echo1: Echo,
        Gamma: Point,
        my_payload: bytes,
        sent: Mapping[int, MtaSent],
    ) -> None:
        super().__init__(ctx.party, ctx.signers)
        self._ctx = ctx
        self._rng = rng
        self._nonces = nonces
        self._r1 = dict(r1)
        self._echo1 = echo1
        self._Gamma = Gamma
        self._my_payload = my_payload
        self._sent = dict(sent)

    def _receive(self, inbox: Mapping[int, Incoming]) -> Step:
        ctx = self._ctx
        me = self.party
        collector = BlameCollector(self.name)
        pk_me = ctx.paillier[me]
        bcasts: dict[int, PresignRound2Broadcast] = {}
        directs: dict[int, bytes] = {}
        dms: dict[int, PresignRound2Direct] = {}
        payloads: dict[int, bytes] = {me: self._my_payload}
        for j in self.others:
            msg = inbox[j]
            assert msg.broadcast is not None and msg.direct is not None  # checked by Round.receive
            bc = decode_or_blame(collector, j, msg.broadcast, PresignRound2Broadcast.decode)
            dm = decode_or_blame(collector, j, msg.direct, PresignRound2Direct.decode, pk_me, ctx.paillier[j])
            if bc is None or dm is None:
                continue
            bcasts[j], dms[j], payloads[j], directs[j] = bc, dm, msg.broadcast, msg.direct
        check_echoes(collector, me, self._echo1, {j: bc.echo for j, bc in bcasts.items()})
        for j in bcasts:
            self._verify(collector, j, bcasts[j], dms[j], payloads[j], directs[j])
        collector.raise_if_any()
        return self._round3(bcasts, dms, payloads)

    def _verify(
        self,
        collector: BlameCollector,
        j: int,
        bc: PresignRound2Broadcast,
        dm: PresignRound2Direct,
        bc_bytes: bytes,
        dm_bytes: bytes,
    ) -> None:
        """Πelog (broadcast) and both Πaff-g (direct) of sender j; a failure carries the message as evidence."""
        ctx, me = self._ctx, self.party
        r1j = self._r1[j]
        try:
            elog.verify(
                ctx.transcript("r2/psi_elog", j),
                elog.Statement(L=r1j.B1, M=r1j.B2, X=r1j.Y, Y=bc.Gamma, h=Point.generator()),
                bc.psi_elog,
                level=ctx.level,
            )
        except InvalidProof:
            collector.add(j, "elog_gamma", bc_bytes)
        commitments = dict(bc.mta)
        if set(commitments) != set(ctx.signers) - {j}:
            collector.add(j, "mta_commitment", bc_bytes)
        elif commitments[me] != mta_commitment(ctx.session_id, j, me, dm.D, dm.F, dm.D_hat, dm.F_hat):
            collector.add(j, "mta_commitment", dm_bytes)
        pk_me, pk_j, rp_me, K_me = ctx.paillier[me], ctx.paillier[j], ctx.rp[me], self._r1[me].K
        affs = (
            ("aff_g_gamma", "r2/aff_g_gamma", aff_g.Statement(pk_me, pk_j, K_me, dm.D, dm.F, bc.Gamma, rp_me), dm.psi),
            (
                "aff_g_x",
                "r2/aff_g_x",
                aff_g.Statement(pk_me, pk_j, K_me, dm.D_hat, dm.F_hat, ctx.additive_public[j], rp_me),
                dm.psi_hat,
            ),
        )
        for check, tag, stmt, proof in affs:
            try:
                aff_g.verify(ctx.transcript(tag, j), stmt, proof, level=ctx.level)
            except InvalidProof:
                collector.add(j, check, dm_bytes)

    def _round3(
        self,
        bcasts: Mapping[int, PresignRound2Broadcast],
        dms: Mapping[int, PresignRound2Direct],
        payloads: Mapping[int, bytes],
    ) -> Step:
        ctx, n, me = self._ctx, self._nonces, self.party
        key = ctx.paillier_secret
        gammas = {me: self._Gamma, **{j: bc.Gamma for j, bc in bcasts.items()}}
        Gamma_sum = point_sum([gammas[j] for j in ctx.signers])
        if Gamma_sum.is_identity:
            # Every Γ_j is bound by its Πelog to an ElGamal commitment made before any Γ was
            # known, so this has negligible probability; no single message shows who caused it.
            raise InternalError("the joint Γ is the identity; start a new presigning session")
        x_add = ctx.additive_share()
        delta_int = n.gamma * n.k
        chi_int = x_add * n.k
        received: dict[int, MtaReceived] = {}
        for j in self.others:
            dm, sent = dms[j], self._sent[j]
            delta_int += key.decrypt(dm.D) - sent.beta
            chi_int += key.decrypt(dm.D_hat) - sent.beta_hat
            received[j] = MtaReceived(dm.D, dm.F, dm.D_hat, dm.F_hat)
        delta, chi = delta_int % Q, chi_int % Q
        Delta = Gamma_sum * n.k
        S = Gamma_sum * chi
        mine1 = self._r1[me]
        psi_prime = elog.prove(
            ctx.transcript("r3/psi_prime", me),
            elog.Statement(L=mine1.A1, M=mine1.A2, X=mine1.Y, Y=Delta, h=Gamma_sum),
            elog.Witness(y=n.k, lam=n.a),
            rng=self._rng,
            level=ctx.level,
        )
        mine3 = PresignRound3Broadcast(delta, Delta, S, psi_prime, make_echo(ctx.session_id, ROUND2, payloads))
        payload3 = mine3.encode()
        state = Round3State(
            ctx=ctx,
            nonces=n,
            r1=self._r1,
            gammas=gammas,
            Gamma_sum=Gamma_sum,
            sent=self._sent,
            received=received,
            chi=chi,
            delta_int=delta_int,
            chi_int=chi_int,
            mta_commitments={
                me: {
                    j: mta_commitment(ctx.session_id, me, j, m.D, m.F, m.D_hat, m.F_hat) for j, m in self._sent.items()
                },
                **{j: dict(bc.mta) for j, bc in bcasts.items()},
            },
        )
        return Continue((broadcast(ROUND3, me, payload3),), PresignRound3(state, self._rng, mine3, payload3))
