"""Aux info / key refresh, round 2: check every opening, fix rid, prove N_i and deal the shares.

Paper steps (CGGMP24 Fig. 7, Round 3; dfns spec §Provisioning and §Key Refresh), for each j:
  - the echo of R1 agrees with ours (`equivocation`, `echo_malformed`);
  - V_j = H(opening_j) (`commitment`);
  - cheap checks before any proof (BitForge): N_j and N̂_j are positive with exactly
    `level.modulus_bits` bits (`modulus_size`); both are odd, without a factor below 2^16,
    neither prime nor a square, and distinct (`modulus`); s_j, t_j are distinct units of Z*_N̂
    other than 1 (`rp_params`);
  - refresh: the constant term of F_j is the identity, so the dealt polynomial shares zero
    (`zero_sharing`);
  - Πprm for (N̂_j, s_j, t_j) (`prm_proof`).
Then rid = ⊕_j rid_j, and P_i sends: to all, the echo of R2, Πmod for N_i and (refresh) the
Schnorr answers for every X_i^k = f_i(k)·G; to each P_j, Πfac for N_i under P_j's ring-Pedersen
parameters and (refresh) C_i^j = enc_j(f_i(j)) under P_j's NEW Paillier key. Every proof is
bound to (session, mode, proof tag, prover, rid).
"""

from __future__ import annotations

from collections.abc import Mapping

import gmpy2

from .aux_msg import (
    ROUND2,
    ROUND3,
    AuxContext,
    AuxOpening,
    AuxRound2Broadcast,
    AuxRound3Broadcast,
    AuxRound3Direct,
    AuxSecrets,
    commitment_hash,
)
from .aux_round3 import AuxRound3
from .curve import Point
from .echo import Echo, check_echoes, make_echo
from .errors import InvalidInput, InvalidProof
from .paillier import PaillierPublicKey
from .primes import check_modulus
from .ring_pedersen import RingPedersenParams
from .rounds import BlameCollector, Continue, Incoming, Outgoing, Round, Step, broadcast, decode_or_blame, direct
from .vss import evaluate, evaluate_commitment
from .zk import fac, mod, prm, sch


def _rp_bases_ok(rp: RingPedersenParams) -> bool:
    return rp.s != rp.t and all(1 < v < rp.n and gmpy2.gcd(v, rp.n) == 1 for v in (rp.s, rp.t))


def check_opening(ctx: AuxContext, sender: int, opening: AuxOpening, commitment: bytes) -> str | None:
    """The name of the first check party `sender`'s opening fails, or None when it passes them all."""
    if commitment_hash(ctx, sender, opening) != commitment:
        return "commitment"
    bits = ctx.level.modulus_bits
    n, n_hat = opening.paillier_n, opening.rp.n
    if n <= 0 or n_hat <= 0 or n.bit_length() != bits or n_hat.bit_length() != bits:
        return "modulus_size"
    try:
        check_modulus(n, bits)
        check_modulus(n_hat, bits)
    except InvalidInput:
        return "modulus"
    if n == n_hat:
        return "modulus"
    if not _rp_bases_ok(opening.rp):
        return "rp_params"
    if ctx.key_share is not None and not opening.vss[0].is_identity:
        return "zero_sharing"
    try:
        prm.verify(
            ctx.transcript("prm", sender, ctx.prm_rid), prm.Statement(opening.rp), opening.prm_proof, level=ctx.level
        )
    except InvalidProof:
        return "prm_proof"
    return None


class AuxRound2(Round):
    """Checks every opening, then proves its own modulus and deals the refresh shares."""

    name = ROUND2

    def __init__(
        self,
        ctx: AuxContext,
        secrets: AuxSecrets,
        opening: AuxOpening,
        commitments: Mapping[int, bytes],
        r1_echo: Echo,
        own_payload: bytes,
    ) -> None:
        super().__init__(ctx.party, ctx.parties)
        self.ctx = ctx
        self._secrets = secrets
        self._opening = opening
        self._commitments = dict(commitments)
        self._r1_echo = r1_echo
        self._own_payload = own_payload

    def _receive(self, inbox: Mapping[int, Incoming]) -> Step:
        ctx = self.ctx
        blame = BlameCollector(self.name)
        payloads = {self.party: self._own_payload}
        msgs: dict[int, AuxRound2Broadcast] = {}
        for j in self.others:
            data = inbox[j].broadcast
            assert data is not None  # Round.receive checked presence
            payloads[j] = data
            msg = decode_or_blame(blame, j, data, AuxRound2Broadcast.decode, ctx.vss_len, ctx.sch_len)
            if msg is not None:
                msgs[j] = msg
        check_echoes(blame, self.party, self._r1_echo, {j: m.echo for j, m in msgs.items()})
        for j, msg in msgs.items():
            if blame.has(j):
                continue
            failed = check_opening(ctx, j, msg.opening, self._commitments[j])
            if failed is not None:
                blame.add(j, failed, payloads[j])
        blame.raise_if_any()

        openings = {j: m.opening for j, m in msgs.items()}
        openings[self.party] = self._opening
        rid = bytes(len(self._opening.rid))
        for op in openings.values():
            rid = bytes(a ^ b for a, b in zip(rid, op.rid, strict=True))
        keys = {j: PaillierPublicKey(op.paillier_n) for j, op in openings.items()}
        keys[self.party] = self._secrets.paillier.public
        # contributions[j][k] = f_j(k)·G, computed once and used by both the proofs and the output.
        contributions = {
            j: {k: evaluate_commitment(op.vss, k) for k in self.parties} for j, op in openings.items() if op.vss
        }

        echo = make_echo(ctx.session_id, ROUND2, payloads)
        out = self._messages(rid, keys, openings, contributions, echo)
        nxt = AuxRound3(ctx, self._secrets, openings, keys, contributions, rid, echo)
        return Continue(out, nxt)

    def _messages(
        self,
        rid: bytes,
        keys: Mapping[int, PaillierPublicKey],
        openings: Mapping[int, AuxOpening],
        contributions: Mapping[int, Mapping[int, Point]],
        echo: Echo,
    ) -> tuple[Outgoing, ...]:
        ctx, me, sec = self.ctx, self.party, self._secrets
        level, rng = ctx.level, ctx.rng
        witness_p, witness_q = sec.paillier.p, sec.paillier.q
        mod_proof = mod.prove(
            ctx.transcript("mod", me, rid),
            mod.Statement(sec.paillier.n),
            mod.Witness(witness_p, witness_q),
            rng=rng,
            level=level,
        )
        sch_z: list[int] = []
        dealt = zip(self.parties, self._opening.sch_commitments, sec.sch_nonces, strict=True) if sec.poly else ()
        for k, A, nonce in dealt:
            t = ctx.transcript("sch", me, rid)
            t.append("share_for", k)
            stmt = sch.Statement(contributions[me][k])
            proof = sch.prove_with_commitment(t, stmt, sch.Witness(evaluate(sec.poly, k)), sch.Commitment(A), nonce)
            sch_z.append(proof.z)
        out = [broadcast(ROUND3, me, AuxRound3Broadcast(echo, mod_proof, tuple(sch_z)).encode())]
        for j in self.others:
            fac_proof = fac.prove(
                ctx.transcript("fac", me, rid),
                fac.Statement(sec.paillier.public, openings[j].rp),
                fac.Witness(witness_p, witness_q),
                rng=rng,
                level=level,
            )
            c = keys[j].encrypt(evaluate(sec.poly, j), rng)[0] if sec.poly else None
            out.append(direct(ROUND3, me, j, AuxRound3Direct(fac_proof, c).encode()))
        return tuple(out)
