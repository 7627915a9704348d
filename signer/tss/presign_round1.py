"""Presigning round 1 (Fig. 8): nonce shares and their encryptions; checking them; the MtA of round 2.

`begin` (party i):
  1. k_i, γ_i ← Z_q; K_i = enc_i(k_i; ρ_i), G_i = enc_i(γ_i; ν_i) (owner-side CRT).
  2. y_i ← Z_q, Y_i = y_i·G; a_i, b_i ← Z_q; A_i1 = a_i·G, A_i2 = a_i·Y_i + k_i·G,
     B_i1 = b_i·G, B_i2 = b_i·Y_i + γ_i·G.
  3. Broadcast (K_i, G_i, Y_i, A_i1, A_i2, B_i1, B_i2); send to each j ψ0 = Πenc-elg(K_i; k_i, ρ_i, a_i)
     and ψ1 = Πenc-elg(G_i; γ_i, ν_i, b_i) under j's ring-Pedersen parameters.

`PresignRound1.receive` (party i, from every j):
  1. Decode (K_j, G_j ∈ Z*_{N_j²}, points valid) and verify ψ0 (`enc_elg_k`), ψ1 (`enc_elg_g`).
  2. Γ_i = γ_i·G; ψ_i = Πelog(L=B_i1, M=B_i2, X=Y_i, Y=Γ_i, h=G; y=γ_i, λ=b_i).
  3. For each j: β, β̂ ← ±2^ℓ'; D_{j,i} = K_j^{γ_i}·enc_j(β; s), F_{j,i} = enc_i(β; r),
     D̂_{j,i} = K_j^{x_i'}·enc_j(β̂; ŝ), F̂_{j,i} = enc_i(β̂; r̂), with Πaff-g for each pair under
     j's ring-Pedersen parameters (X = Γ_i, resp. X_i' = λ_i·X_i).
  4. Broadcast (Γ_i, ψ_i, echo of round 1, a commitment to the MtA values sent to each j); send
     the MtA messages to each j.
"""

from __future__ import annotations

from collections.abc import Mapping

from .curve import Point, Q
from .echo import make_echo
from .errors import InvalidProof
from .presign_msgs import (
    PresignRound1Broadcast,
    PresignRound1Direct,
    PresignRound2Broadcast,
    PresignRound2Direct,
    mta_commitment,
)
from .presign_round2 import PresignRound2
from .presign_state import MtaSent, Nonces, PresignContext
from .rng import Rng, rand_nonzero_scalar, rand_signed, rand_unit
from .rounds import BlameCollector, Continue, Incoming, Outgoing, Round, Step, broadcast, decode_or_blame, direct
from .zk import aff_g, elog, enc_elg

ROUND1 = "presign/r1"
ROUND2 = "presign/r2"


def begin(ctx: PresignContext, rng: Rng) -> Continue:
    """Round 1's messages and the round that receives everyone else's."""
    key = ctx.paillier_secret
    me = ctx.party
    k = rand_nonzero_scalar(rng, Q)
    gamma = rand_nonzero_scalar(rng, Q)
    K, rho = key.encrypt(k, rng)
    G, nu = key.encrypt(gamma, rng)
    y = rand_nonzero_scalar(rng, Q)
    Y = Point.base_mul(y)
    a = rand_nonzero_scalar(rng, Q)
    b = rand_nonzero_scalar(rng, Q)
    mine = PresignRound1Broadcast(
        K=K,
        G=G,
        Y=Y,
        A1=Point.base_mul(a),
        A2=Y * a + Point.base_mul(k),
        B1=Point.base_mul(b),
        B2=Y * b + Point.base_mul(gamma),
    )
    nonces = Nonces(k, gamma, rho, nu, a, b)
    payload = mine.encode()
    out: list[Outgoing] = [broadcast(ROUND1, me, payload)]
    pk = key.public
    for j in ctx.others:
        psi0 = enc_elg.prove(
            ctx.transcript("r1/psi0", me),
            enc_elg.Statement(pk, mine.K, mine.Y, mine.A1, mine.A2, ctx.rp[j]),
            enc_elg.Witness(k, rho, a, key),
            rng=rng,
            level=ctx.level,
        )
        psi1 = enc_elg.prove(
            ctx.transcript("r1/psi1", me),
            enc_elg.Statement(pk, mine.G, mine.Y, mine.B1, mine.B2, ctx.rp[j]),
            enc_elg.Witness(gamma, nu, b, key),
            rng=rng,
            level=ctx.level,
        )
        out.append(direct(ROUND1, me, j, PresignRound1Direct(psi0, psi1).encode()))
    return Continue(tuple(out), PresignRound1(ctx, rng, nonces, mine, payload))


def verify_round1(
    ctx: PresignContext,
    collector: BlameCollector,
    j: int,
    bcast: PresignRound1Broadcast,
    dm: PresignRound1Direct,
    evidence: bytes,
) -> None:
    """Check ψ0 and ψ1 of sender j against our own view of its broadcast and our own setup."""
    pk = ctx.paillier[j]
    rp = ctx.rp[ctx.party]
    checks = (
        ("enc_elg_k", "r1/psi0", enc_elg.Statement(pk, bcast.K, bcast.Y, bcast.A1, bcast.A2, rp), dm.psi0),
        ("enc_elg_g", "r1/psi1", enc_elg.Statement(pk, bcast.G, bcast.Y, bcast.B1, bcast.B2, rp), dm.psi1),
    )
    for check, tag, stmt, proof in checks:
        try:
            enc_elg.verify(ctx.transcript(tag, j), stmt, proof, level=ctx.level)
        except InvalidProof:
            collector.add(j, check, evidence)


class PresignRound1(Round):
    """Receives every other signer's round-1 broadcast and proofs; emits round 2."""

    name = ROUND1
    expects_broadcast = True
    expects_direct = True

    def __init__(
        self, ctx: PresignContext, rng: Rng, nonces: Nonces, mine: PresignRound1Broadcast, my_payload: bytes
    ) -> None:
        super().__init__(ctx.party, ctx.signers)
        self._ctx = ctx
        self._rng = rng
        self._nonces = nonces
        self._mine = mine
        self._my_payload = my_payload

    def _receive(self, inbox: Mapping[int, Incoming]) -> Step:
        ctx = self._ctx
        collector = BlameCollector(self.name)
        r1: dict[int, PresignRound1Broadcast] = {self.party: self._mine}
        payloads: dict[int, bytes] = {self.party: self._my_payload}
        for j in self.others:
            msg = inbox[j]
            assert msg.broadcast is not None and msg.direct is not None  # checked by Round.receive
            bcast = decode_or_blame(collector, j, msg.broadcast, PresignRound1Broadcast.decode, ctx.paillier[j])
            dm = decode_or_blame(collector, j, msg.direct, PresignRound1Direct.decode)
            if bcast is None or dm is None:
                continue
            verify_round1(ctx, collector, j, bcast, dm, msg.direct)
            r1[j] = bcast
            payloads[j] = msg.broadcast
        collector.raise_if_any()
        return self._round2(r1, payloads)

    def _round2(self, r1: dict[int, PresignRound1Broadcast], payloads: dict[int, bytes]) -> Step:
        ctx, rng, n = self._ctx, self._rng, self._nonces
        me, level = self.party, ctx.level
        key = ctx.paillier_secret
        pk_me = key.public
        x_add = ctx.additive_share()
        Gamma = Point.base_mul(n.gamma)
        psi_elog = elog.prove(
            ctx.transcript("r2/psi_elog", me),
            elog.Statement(L=self._mine.B1, M=self._mine.B2, X=self._mine.Y, Y=Gamma, h=Point.generator()),
            elog.Witness(y=n.gamma, lam=n.b),
            rng=rng,
            level=level,
        )
        directs: list[Outgoing] = []
        sent: dict[int, MtaSent] = {}
        for j in self.others:
            pk_j, K_j = ctx.paillier[j], r1[j].K
            beta, beta_hat = rand_signed(rng, level.ell_prime), rand_signed(rng, level.ell_prime)
            s, s_hat = rand_unit(rng, pk_j.n), rand_unit(rng, pk_j.n)
            r, r_hat = rand_unit(rng, pk_me.n), rand_unit(rng, pk_me.n)
            D = pk_j.add(pk_j.mul_secret(K_j, n.gamma), pk_j.encrypt_with(beta, s))
            F = key.encrypt_with(beta, r)
            D_hat = pk_j.add(pk_j.mul_secret(K_j, x_add), pk_j.encrypt_with(beta_hat, s_hat))
            F_hat = key.encrypt_with(beta_hat, r_hat)
            psi = aff_g.prove(
                ctx.transcript("r2/aff_g_gamma", me),
                aff_g.Statement(pk_j, pk_me, K_j, D, F, Gamma, ctx.rp[j]),
                aff_g.Witness(n.gamma, beta, s, r, key),
                rng=rng,
                level=level,
            )
            psi_hat = aff_g.prove(
                ctx.transcript("r2/aff_g_x", me),
                aff_g.Statement(pk_j, pk_me, K_j, D_hat, F_hat, ctx.additive_public[me], ctx.rp[j]),
                aff_g.Witness(x_add, beta_hat, s_hat, r_hat, key),
                rng=rng,
                level=level,
            )
            directs.append(direct(ROUND2, me, j, PresignRound2Direct(D, F, D_hat, F_hat, psi, psi_hat).encode()))
            sent[j] = MtaSent(D, F, D_hat, F_hat, beta, s, r, beta_hat, s_hat, r_hat)
        commitments = tuple(
            (j, mta_commitment(ctx.session_id, me, j, m.D, m.F, m.D_hat, m.F_hat)) for j, m in sorted(sent.items())
        )
        bcast = PresignRound2Broadcast(Gamma, psi_elog, make_echo(ctx.session_id, ROUND1, payloads), commitments)
        out: list[Outgoing] = [broadcast(ROUND2, me, bcast.encode()), *directs]
        nxt = PresignRound2(ctx, rng, self._nonces, r1, bcast.echo, Gamma, bcast.encode(), sent)
        return Continue(tuple(out), nxt)
