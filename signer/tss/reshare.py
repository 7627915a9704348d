"""Reshare: move a key to a new committee or threshold, keeping the public key and chain code.

Verifiable secret redistribution in the manner of Desmedt–Jajodia and Wong–Wang–Wing (REDIST),
with the commit-then-reveal, echo and Schnorr confirmation of our keygen; see docs/protocol.md,
"Reshare". Old committee (parties P, threshold t, public shares X_k), live dealers S ⊆ P with
|S| ≥ t, new committee P' with threshold t'. The session runs over S ∪ P'.

  start     dealer i: w_i = λ_i^S·x_i, f_i of degree t'−1 with f_i(0) = w_i, F_i = (a_{i,k}·G);
            new party j: Schnorr nonce (A_j, τ_j). Everyone: rid_i, u_i. R1 broadcast: the context
            digest and V_i = H(context, i, rid_i, F_i, A_i, u_i).
  Round 1   check every context digest (`reshare_context`); R2 broadcast the opening and the echo
            of R1; R2 direct σ_{i→j} = f_i(j) from each dealer to each new party.
  Round 2   check, blaming the sender by name: echo of R1 (`equivocation` / `echo_malformed`),
            V_j opens (`commitment`), |F_j| = t' (`vss_length`), the opening's shape fits the
            role (`reshare_opening`), F_j[0] = λ_j·X_j (`reshare_constant`), σ_{j→i}·G = F_j(i)
            (`reshare_share`, the share is the evidence). Then rid = ⊕ rid_j, x'_i = Σ σ_{j→i},
            X'_k = Σ_j F_j(k); Σ_j F_j[0] = X (`reshare_public_key`) follows from the constants.
            R3 broadcast: the echo of R2 and, from a new party, Πsch's z_i for X'_i.
  Round 3   echo of R2; every new party's Πsch (`sch_proof`); R4 broadcast: the echo of R3 and the
            digest of the public output.
  Round 4   echo of R3; every output digest equals one's own (`reshare_output`). Output
            `ReshareOutput(ResharePublic, KeyShare(epoch + 1) for a new party, else None)`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .committee import Committee
from .curve import Point, Q, point_sum
from .echo import Echo, check_echoes, make_echo
from .errors import InternalError, InvalidInput
from .key_share import KeyShare
from .reshare_finish import ReshareRound3, payload
from .reshare_msgs import (
    RID_BYTES,
    ROUND1,
    ROUND2,
    ROUND3,
    ReshareContext,
    ReshareOpening,
    ReshareRound1Broadcast,
    ReshareRound2Broadcast,
    ReshareRound2Direct,
    ReshareRound3Broadcast,
)
from .rng import Rng
from .rounds import BlameCollector, Continue, Incoming, Outgoing, Round, Step, broadcast, decode_or_blame, direct
from .vss import check_indices, commit, evaluate, evaluate_commitment, random_polynomial
from .zk import sch

__all__ = ["ReshareRound1", "ReshareRound2", "start_reshare"]


@dataclass(frozen=True, slots=True)
class _Secrets:
    """A dealer's polynomial f_i (empty otherwise) and a new party's Schnorr nonce (None otherwise)."""

    poly: tuple[int, ...] = field(repr=False)
    nonce: sch.Nonce | None = field(repr=False)


def _check_share(ctx: ReshareContext, share: KeyShare | None) -> int:
    """A dealer's x_i, after checking its share belongs to the old committee; 0 for anyone else."""
    if not ctx.is_dealer(ctx.party):
        if share is not None:
            raise InvalidInput("only a dealer (a live old party in S) passes its key share")
        return 0
    if share is None:
        raise InvalidInput(f"party {ctx.party} is a dealer and must pass its key share")
    if share.party != ctx.party or Committee.of(share) != ctx.old:
        raise InvalidInput("the key share does not belong to this party of the old committee")
    if Point.base_mul(share.x) != share.public_share(share.party):
        raise InvalidInput("key share does not match its public share")
    return share.x


def start_reshare(
    session_id: bytes,
    party: int,
    *,
    old: Committee,
    dealers: tuple[int, ...],
    new_parties: tuple[int, ...],
    new_threshold: int,
    share: KeyShare | None,
    rng: Rng,
) -> Continue:
    """Begin a reshare as `party` (a dealer of S, a new party of P', or both).

    A dealer passes its key share; a party that only joins passes `share=None` and the old
    committee's public data as `old` (the public output the old committee confirmed).
    """
    if not isinstance(session_id, bytes) or not session_id:
        raise InvalidInput("session_id must be non-empty bytes")
    if any(not isinstance(p, int) or isinstance(p, bool) for p in (party, *dealers, *new_parties)):
        raise InvalidInput("party indices must be integers")
    if not isinstance(new_threshold, int) or isinstance(new_threshold, bool):
        raise InvalidInput("threshold must be an integer")
    old.check_consistent()
    S, P_new = check_indices(dealers), check_indices(new_parties)
    if not set(S) <= set(old.parties):
        raise InvalidInput(f"dealers {S} must be parties of the old committee {old.parties}")
    if len(S) < old.threshold:
        raise InvalidInput(f"{len(S)} live old parties cannot reshare a {old.threshold}-of-{len(old.parties)} key")
    if not 2 <= new_threshold <= len(P_new):
        raise InvalidInput(f"new threshold must satisfy 2 <= t' <= n', got t' = {new_threshold}, n' = {len(P_new)}")
    ctx = ReshareContext(session_id, party, old, S, P_new, new_threshold)
    if party not in ctx.parties:
        raise InvalidInput(f"party {party} is neither a dealer nor a new party")
    x = _check_share(ctx, share)

    poly: tuple[int, ...] = ()
    if ctx.is_dealer(party):
        poly = tuple(random_polynomial(rng, new_threshold - 1, constant=ctx.lagrange(party) * x % Q))
    nonce: sch.Nonce | None = None
    A: tuple[Point, ...] = ()
    if ctx.is_new(party):
        commitment, nonce = sch.commit(rng)
        A = (commitment.A,)
    opening = ReshareOpening(rid=rng.token_bytes(RID_BYTES), F=commit(poly), A=A, u=rng.token_bytes(RID_BYTES))
    r1 = ReshareRound1Broadcast(ctx.digest(), ctx.commitment(party, opening)).encode()
    return Continue((broadcast(ROUND1, party, r1),), ReshareRound1(ctx, _Secrets(poly, nonce), opening, r1))


class ReshareRound1(Round):
    """Waits for every V_j; sends the opening with the echo of round 1, and the dealt shares."""

    name = ROUND1

    def __init__(self, ctx: ReshareContext, secrets: _Secrets, opening: ReshareOpening, own_r1: bytes) -> None:
        super().__init__(ctx.party, ctx.parties)
        self._ctx = ctx
        self._secrets = secrets
        self._opening = opening
        self._own_r1 = own_r1

    def _receive(self, inbox: Mapping[int, Incoming]) -> Step:
        ctx, bc = self._ctx, BlameCollector(self.name)
        me, mine = ctx.party, ctx.digest()
        payloads = {me: self._own_r1}
        commitments: dict[int, bytes] = {}
        for j in self.others:
            data = payload(inbox[j].broadcast)
            msg = decode_or_blame(bc, j, data, ReshareRound1Broadcast.decode)
            if msg is None:
                continue
            if msg.context != mine:
                # Parties disagree on the old committee, S, P' or t': nothing secret has left yet.
                bc.add(j, "reshare_context", data)
                continue
            commitments[j] = msg.commitment
            payloads[j] = data
        bc.raise_if_any()
        echo = make_echo(ctx.session_id, ROUND1, payloads)
        r2 = ReshareRound2Broadcast(self._opening, echo).encode()
        out: list[Outgoing] = [broadcast(ROUND2, me, r2)]
        if ctx.is_dealer(me):
            for j in ctx.new_parties:
                if j != me:
                    sigma = ReshareRound2Direct(evaluate(self._secrets.poly, j)).encode()
                    out.append(direct(ROUND2, me, j, sigma))
        nxt = ReshareRound2(ctx, self._secrets, self._opening, commitments, echo, r2)
        return Continue(tuple(out), nxt)


class ReshareRound2(Round):
    """Checks every opening, constant term and share; derives rid, x'_i and every X'_k; proves x'_i."""

    name = ROUND2
    # Only dealers send shares, and only to new parties: `_receive` checks presence itself.
    expects_direct = False

    def __init__(
        self,
        ctx: ReshareContext,
        secrets: _Secrets,
        opening: ReshareOpening,
        commitments: dict[int, bytes],
        echo: Echo,
        own_r2: bytes,
    ) -> None:
        super().__init__(ctx.party, ctx.parties)
        self._ctx = ctx
        self._secrets = secrets
        self._opening = opening
        self._commitments = commitments
        self._echo = echo
        self._own_r2 = own_r2

    def _shares(self, bc: BlameCollector, inbox: Mapping[int, Incoming]) -> dict[int, int]:
        """σ_{j→i} from every other dealer when this party is new (blaming absent or bad ones)."""
        ctx, sigmas = self._ctx, {}
        if not ctx.is_new(ctx.party):
            return {}
        for j in ctx.dealers:
            if j == ctx.party:
                continue
            data = inbox[j].direct
            if data is None:
                bc.add(j, "missing_direct")
                continue
            msg = decode_or_blame(bc, j, data, ReshareRound2Direct.decode)
            if msg is not None:
                sigmas[j] = msg.sigma
        return sigmas

    def _check_opening(self, j: int, o: ReshareOpening) -> str | None:
        """The first check party j's (opened) opening fails, or None."""
        ctx = self._ctx
        if ctx.is_dealer(j) and len(o.F) != ctx.new_threshold:
            return "vss_length"
        if (not ctx.is_dealer(j) and o.F) or len(o.A) != (1 if ctx.is_new(j) else 0):
            return "reshare_opening"
        if ctx.is_dealer(j) and o.F[0] != ctx.old.public_share(j) * ctx.lagrange(j):
            return "reshare_constant"
        return None

    def _receive(self, inbox: Mapping[int, Incoming]) -> Step:
        ctx, bc = self._ctx, BlameCollector(self.name)
        me = ctx.party
        payloads = {me: self._own_r2}
        msgs: dict[int, ReshareRound2Broadcast] = {}
        for j in self.others:
            data = payload(inbox[j].broadcast)
            msg = decode_or_blame(bc, j, data, ReshareRound2Broadcast.decode, len(ctx.new_parties) + 1)
            if msg is not None:
                msgs[j] = msg
                payloads[j] = data
        sigmas = self._shares(bc, inbox)
        check_echoes(bc, me, self._echo, {j: m.echo for j, m in msgs.items()})
        for j, m in msgs.items():
            if bc.has(j):
                continue
            if ctx.commitment(j, m.opening) != self._commitments[j]:
                bc.add(j, "commitment", payloads[j])
            elif (check := self._check_opening(j, m.opening)) is not None:
                bc.add(j, check, payloads[j])
            elif j in sigmas and Point.base_mul(sigmas[j]) != evaluate_commitment(m.opening.F, me):
                # The evidence is the share itself: the run aborts, so the share is worthless.
                bc.add(j, "reshare_share", payload(inbox[j].direct))
        bc.raise_if_any()
        return self._finish({me: self._opening} | {j: m.opening for j, m in msgs.items()}, sigmas, payloads)

    def _finish(self, openings: dict[int, ReshareOpening], sigmas: dict[int, int], payloads: dict[int, bytes]) -> Step:
        ctx, me = self._ctx, self._ctx.party
        rid = bytes(RID_BYTES)
        for j in ctx.parties:
            rid = bytes(a ^ b for a, b in zip(rid, openings[j].rid, strict=True))
        joint_F = [point_sum([openings[i].F[k] for i in ctx.dealers]) for k in range(ctx.new_threshold)]
        if joint_F[0] != ctx.old.public_key:
            # `reshare_public_key`: implied by every `reshare_constant` and by the consistency of the
            # old public shares that start_reshare checked, so a failure here is ours.
            raise InternalError("reshare_public_key: the dealt constants do not add up to the public key")
        public_shares = tuple((k, evaluate_commitment(joint_F, k)) for k in ctx.new_parties)
        # Every contribution was committed before any was seen; an identity share is negligible.
        if any(X.is_identity for _, X in public_shares):
            raise InternalError("reshare produced an identity public share; rerun with a fresh session id")
        committee = Committee(
            ctx.old.public_key, ctx.old.chain_code, ctx.new_parties, ctx.new_threshold, public_shares, ctx.old.epoch + 1
        )
        share: KeyShare | None = None
        z: int | None = None
        if ctx.is_new(me):
            x = sum(sigmas.values()) % Q
            if ctx.is_dealer(me):
                x = (x + evaluate(self._secrets.poly, me)) % Q
            X_me = committee.public_share(me)
            if x == 0 or Point.base_mul(x) != X_me:
                raise InternalError("own new share does not match its public share after the checks")
            if self._secrets.nonce is None:
                raise InternalError("a new party has no Schnorr nonce")
            proof = sch.prove_with_commitment(
                ctx.transcript(me, rid),
                sch.Statement(X_me),
                sch.Witness(x),
                sch.Commitment(self._opening.A[0]),
                self._secrets.nonce,
            )
            z = proof.z
            share = KeyShare(
                party=me,
                parties=committee.parties,
                threshold=committee.threshold,
                public_key=committee.public_key,
                public_shares=committee.public_shares,
                chain_code=committee.chain_code,
                rid=rid,
                epoch=committee.epoch,
                x=x,
            )
        echo = make_echo(ctx.session_id, ROUND2, payloads)
        r3 = ReshareRound3Broadcast(echo, z).encode()
        A = {j: o.A[0] for j, o in openings.items() if ctx.is_new(j)}
        nxt = ReshareRound3(ctx, own_r3=r3, echo=echo, A=A, committee=committee, rid=rid, share=share)
        return Continue((broadcast(ROUND3, me, r3),), nxt)
