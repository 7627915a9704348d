"""Aux info / key refresh, round 3 (output): verify every modulus proof and share, then output.

Paper steps (CGGMP24 Fig. 7, Output; dfns spec §Provisioning and §Key Refresh), for each j ≠ i:
  - the echo of R2 agrees with ours (`equivocation`, `echo_malformed`): every party that
    finishes holds the same aux data, rid and Feldman commitments;
  - Πmod for N_j (`mod_proof`) and Πfac for N_j under our own ring-Pedersen parameters
    (`fac_proof`), both bound to rid;
  - refresh: dec_i(C_j^i)·G = Σ_k i^k·F_{j,k} (`vss_share`), and Πsch for every contribution
    X_j^k = f_j(k)·G with the first message A_j^k committed in R1 (`sch_proof`; the paper's
    ψ̂_{j,k}, see the typo noted for Fig. 7 Output 1(c)).
Output: AuxInfo with every party's (N_j, N̂_j, s_j, t_j) and our Paillier secret; a refresh also
outputs the key share x_i' = x_i + Σ_j f_j(i) with public shares X_k' = X_k + Σ_j f_j(k)·G, the
same public key, the new rid and epoch + 1.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from .aux_msg import ROUND3, AuxContext, AuxOpening, AuxRound3Broadcast, AuxRound3Direct, AuxSecrets
from .curve import Point, Q, point_sum
from .echo import Echo, check_echoes
from .encoding import encode
from .errors import InternalError, InvalidProof
from .key_share import AuxInfo, AuxPublic, KeyShare
from .paillier import PaillierPublicKey
from .rounds import BlameCollector, Done, Incoming, Round, Step, decode_or_blame
from .vss import evaluate, public_key_from_shares
from .zk import fac, mod, sch


def epoch_id(ctx: AuxContext, rid: bytes, openings: Mapping[int, AuxOpening]) -> bytes:
    """Identifies one aux-info epoch: hash of the session, rid and every party's public aux data."""
    entries = tuple((j, op.paillier_n, op.rp.n, op.rp.s, op.rp.t) for j, op in sorted(openings.items()))
    return hashlib.sha256(encode("aux/epoch", ctx.mode, ctx.session_id, rid, entries)).digest()


class AuxRound3(Round):
    """Verifies Πmod, Πfac and (refresh) the dealt shares and their Schnorr proofs; outputs."""

    name = ROUND3
    expects_direct = True

    def __init__(
        self,
        ctx: AuxContext,
        secrets: AuxSecrets,
        openings: Mapping[int, AuxOpening],
        keys: Mapping[int, PaillierPublicKey],
        contributions: Mapping[int, Mapping[int, Point]],
        rid: bytes,
        r2_echo: Echo,
    ) -> None:
        super().__init__(ctx.party, ctx.parties)
        self.ctx = ctx
        self._secrets = secrets
        self._openings = dict(openings)
        self._keys = dict(keys)
        self._contributions = {j: dict(c) for j, c in contributions.items()}
        self._rid = rid
        self._r2_echo = r2_echo

    def _receive(self, inbox: Mapping[int, Incoming]) -> Step:
        ctx, me = self.ctx, self.party
        refresh = ctx.key_share is not None
        blame = BlameCollector(self.name)
        bcasts: dict[int, AuxRound3Broadcast] = {}
        directs: dict[int, AuxRound3Direct] = {}
        for j in self.others:
            b, d = inbox[j].broadcast, inbox[j].direct
            assert b is not None and d is not None  # Round.receive checked presence
            mb = decode_or_blame(blame, j, b, AuxRound3Broadcast.decode, ctx.sch_len)
            md = decode_or_blame(blame, j, d, AuxRound3Direct.decode, self._keys[me], refresh)
            if mb is not None and md is not None:
                bcasts[j], directs[j] = mb, md
        check_echoes(blame, me, self._r2_echo, {j: m.echo for j, m in bcasts.items()})

        shares = {me: evaluate(self._secrets.poly, me)} if refresh else {}
        for j in bcasts:
            if blame.has(j):
                continue
            b, d = inbox[j].broadcast, inbox[j].direct
            assert b is not None and d is not None
            if not self._verify_mod(j, bcasts[j].mod_proof):
                blame.add(j, "mod_proof", b)
            elif not self._verify_fac(j, directs[j].fac_proof):
                blame.add(j, "fac_proof", d)
            elif refresh:
                share = self._open_share(j, directs[j].share_ciphertext)
                if share is None:
                    blame.add(j, "vss_share", d)
                elif not self._verify_sch(j, bcasts[j].sch_z):
                    blame.add(j, "sch_proof", b)
                else:
                    shares[j] = share
        blame.raise_if_any()

        aux = AuxInfo(
            me,
            ctx.level,
            tuple((j, AuxPublic(self._keys[j], self._openings[j].rp)) for j in self.parties),
            epoch_id(ctx, self._rid, self._openings),
            self._secrets.paillier,
        )
        if not refresh:
            return Done((), aux)
        return Done((), (self._refreshed_share(shares), aux))

    # --- checks -----------------------------------------------------------------------------
    def _verify_mod(self, j: int, proof: mod.Proof) -> bool:
        ctx = self.ctx
        try:
            mod.verify(ctx.transcript("mod", j, self._rid), mod.Statement(self._keys[j].n), proof, level=ctx.level)
        except InvalidProof:
            return False
        return True

    def _verify_fac(self, j: int, proof: fac.Proof) -> bool:
        ctx = self.ctx
        stmt = fac.Statement(self._keys[j], self._openings[self.party].rp)
        try:
            fac.verify(ctx.transcript("fac", j, self._rid), stmt, proof, level=ctx.level)
        except InvalidProof:
            return False
        return True

    def _open_share(self, j: int, c: int | None) -> int | None:
        """f_j(i) from C_j^i if it matches j's Feldman commitment, else None."""
        if c is None:
            raise InternalError("refresh direct message decoded without a ciphertext")
        share = self._secrets.paillier.decrypt(c) % Q
        return share if Point.base_mul(share) == self._contributions[j][self.party] else None

    def _verify_sch(self, j: int, answers: tuple[int, ...]) -> bool:
        ctx = self.ctx
        commitments = self._openings[j].sch_commitments
        for k, A, z in zip(self.parties, commitments, answers, strict=True):  # n of each (decode checked)
            t = ctx.transcript("sch", j, self._rid)
            t.append("share_for", k)
            try:
                sch.verify(t, sch.Statement(self._contributions[j][k]), sch.Proof(A, z))
            except InvalidProof:
                return False
        return True

    # --- output -----------------------------------------------------------------------------
    def _refreshed_share(self, shares: Mapping[int, int]) -> KeyShare:
        old = self.ctx.key_share
        if old is None:
            raise InternalError("refresh output without a key share")
        x = (old.x + sum(shares.values())) % Q
        public_shares = tuple(
            (k, old.public_share(k) + point_sum([c[k] for c in self._contributions.values()])) for k in self.parties
        )
        new = dict(public_shares)
        t = old.threshold
        # Every F_j has exactly t terms and F_j,0 = 0 (checked in R2), so the new public shares lie
        # on a degree t−1 polynomial through the same public key; check it on two t-subsets.
        for subset in (self.parties[:t], self.parties[-t:]):
            if public_key_from_shares(new, subset) != old.public_key:
                raise InternalError("refreshed public shares do not interpolate to the public key")
        if Point.base_mul(x) != new[self.party]:
            raise InternalError("refreshed secret share does not match its public share")
        return KeyShare(
            party=old.party,
            parties=old.parties,
            threshold=t,
            public_key=old.public_key,
            public_shares=public_shares,
            chain_code=old.chain_code,
            rid=self._rid,
            epoch=old.epoch + 1,
            x=x,
        )
