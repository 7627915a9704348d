"""Threshold (t-of-n) distributed key generation without a dealer.

Follows the t-of-n keygen of the dfns/LFDT CGGMP21 specification (spec/main.tex, "Threshold
(t-out-of-n) Key Generation"), which extends Fig. 5 of CGGMP with Feldman VSS, with the reliability
check done by echo (see signer/tss/echo.py) and the chain code for BIP32 derivation.

Party i, with threshold t over the parties P (indices are the Shamir evaluation points):
  Round 1 (broadcast)  sample f_i of degree t−1, F_i = (a_{i,k}·G)_{k<t}, rid_i, c_i, u_i (32 bytes
                       each) and the Schnorr nonce (A_i, τ_i); send V_i = H(sid, P, t, i, rid_i, c_i,
                       F_i, A_i, u_i).
  Round 2 (broadcast)  the opening (rid_i, c_i, F_i, A_i, u_i) and the echo of every V_j;
          (direct)     σ_{i→j} = f_i(j) to each j.
  Round 3 (broadcast)  on receipt, check for every j (each failure blames j by name):
                         echo of round 1      `equivocation` / `echo_malformed`
                         V_j opens            `commitment`
                         |F_j| = t            `vss_length`
                         σ_{j→i}·G = F_j(i)   `vss_share`
                       (bad encodings, off-curve or identity points: `decode`). Then
                       rid = ⊕ rid_j, c = ⊕ c_j, x_i = Σ_j σ_{j→i}, X = Σ_j F_j[0],
                       X_k = Σ_j F_j(k) for every k; send the echo of every round-2 broadcast and
                       the answer z_i of Πsch for X_i = x_i·G with the nonce committed in round 1,
                       over the transcript (sid‖"keygen/r3", i, rid).
  Round 4 (broadcast)  check the echo of round 2 and every Πsch against one's own X_j (`sch_proof`),
                       then send the echo of every round-3 broadcast.
  Output               check the echo of round 3 (`equivocation` / `echo_malformed`), then output
                       KeyShare(i, P, t, X, (X_k), c, rid, epoch 0, x_i). Echoing round 3 makes
                       the outcome common: no party keeps a share while another rejected a
                       round-3 message that only it was shown.

A missing message is `missing_broadcast` / `missing_direct` (see rounds.py). t = 1 is refused:
with t = 1 every share is the private key itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .curve import Point, Q, point_sum
from .echo import Echo, check_echoes, make_echo
from .errors import InternalError, InvalidInput, InvalidProof
from .key_share import KeyShare
from .keygen_msgs import (
    RID_BYTES,
    ROUND1,
    ROUND2,
    ROUND3,
    ROUND4,
    KeygenOpening,
    KeygenRound1Broadcast,
    KeygenRound2Broadcast,
    KeygenRound2Direct,
    KeygenRound3Broadcast,
    KeygenRound4Broadcast,
    commitment_hash,
)
from .rng import Rng
from .rounds import BlameCollector, Continue, Done, Incoming, Round, Step, broadcast, decode_or_blame, direct
from .transcript import Transcript
from .vss import check_indices, commit, evaluate, evaluate_commitment, random_polynomial
from .zk import sch

__all__ = ["KeygenContext", "KeygenRound1", "KeygenRound2", "KeygenRound3", "KeygenRound4", "start"]


@dataclass(frozen=True, slots=True)
class KeygenContext:
    """What every round of one keygen run knows: session, own index, parties, threshold."""

    session_id: bytes
    party: int
    parties: tuple[int, ...]
    threshold: int

    def transcript(self, prover: int, rid: bytes) -> Transcript:
        """The Fiat–Shamir context of prover's Πsch (bound to the session, the prover and rid)."""
        return Transcript.for_proof(self.session_id + ROUND3.encode(), prover, rid)

    def commitment(self, sender: int, opening: KeygenOpening) -> bytes:
        """V_sender for this session."""
        return commitment_hash(self.session_id, self.parties, self.threshold, sender, opening)


@dataclass(frozen=True, slots=True)
class _Secrets:
    """What party i keeps secret until round 3: its polynomial and its Schnorr nonce."""

    poly: tuple[int, ...] = field(repr=False)
    nonce: sch.Nonce = field(repr=False)


def _check_params(session_id: bytes, party: int, parties: tuple[int, ...], threshold: int) -> tuple[int, ...]:
    if not isinstance(session_id, bytes) or not session_id:
        raise InvalidInput("session_id must be non-empty bytes")
    if any(not isinstance(p, int) or isinstance(p, bool) for p in (party, *parties)):
        raise InvalidInput("party indices must be integers")
    if not isinstance(threshold, int) or isinstance(threshold, bool):
        raise InvalidInput("threshold must be an integer")
    ordered = check_indices(parties)
    if party not in ordered:
        raise InvalidInput(f"party {party} is not among the parties {ordered}")
    n = len(ordered)
    if threshold == 1:
        raise InvalidInput("threshold 1 is refused: with t = 1 every share is the private key itself; use t >= 2")
    if not 2 <= threshold <= n:
        raise InvalidInput(f"threshold must satisfy 2 <= t <= n, got t = {threshold}, n = {n}")
    return ordered


def start(session_id: bytes, party: int, parties: tuple[int, ...], threshold: int, *, rng: Rng) -> Continue:
    """Begin keygen as `party`: returns the round-1 broadcast and the round waiting for everyone's."""
    ordered = _check_params(session_id, party, tuple(parties), threshold)
    ctx = KeygenContext(session_id, party, ordered, threshold)
    poly = tuple(random_polynomial(rng, threshold - 1))
    commitment, nonce = sch.commit(rng)
    opening = KeygenOpening(
        rid=rng.token_bytes(RID_BYTES),
        chain_code=rng.token_bytes(RID_BYTES),
        F=commit(poly),
        A=commitment.A,
        u=rng.token_bytes(RID_BYTES),
    )
    r1 = KeygenRound1Broadcast(ctx.commitment(party, opening)).encode()
    first = KeygenRound1(ctx, _Secrets(poly, nonce), opening, r1)
    return Continue((broadcast(ROUND1, party, r1),), first)


def _payload(m: bytes | None) -> bytes:
    # Round.receive has already blamed every absent message, so this never fires.
    if m is None:
        raise InternalError("a message the round expects is absent")
    return m


def _xor(chunks: list[bytes]) -> bytes:
    acc = bytes(RID_BYTES)
    for c in chunks:
        acc = bytes(a ^ b for a, b in zip(acc, c, strict=True))
    return acc


class KeygenRound1(Round):
    """Waits for every V_j; sends the opening with the echo of round 1, and the shares σ_{i→j}."""

    name = ROUND1

    def __init__(self, ctx: KeygenContext, secrets: _Secrets, opening: KeygenOpening, own_r1: bytes) -> None:
        super().__init__(ctx.party, ctx.parties)
        self._ctx = ctx
        self._secrets = secrets
        self._opening = opening
        self._own_r1 = own_r1

    def _receive(self, inbox: Mapping[int, Incoming]) -> Step:
        ctx, bc = self._ctx, BlameCollector(self.name)
        payloads = {ctx.party: self._own_r1}
        commitments: dict[int, bytes] = {}
        for j in self.others:
            payload = _payload(inbox[j].broadcast)
            msg = decode_or_blame(bc, j, payload, KeygenRound1Broadcast.decode)
            if msg is not None:
                commitments[j] = msg.commitment
                payloads[j] = payload
        bc.raise_if_any()
        echo = make_echo(ctx.session_id, ROUND1, payloads)
        r2 = KeygenRound2Broadcast(self._opening, echo).encode()
        out = [broadcast(ROUND2, ctx.party, r2)]
        for j in self.others:
            out.append(direct(ROUND2, ctx.party, j, KeygenRound2Direct(evaluate(self._secrets.poly, j)).encode()))
        nxt = KeygenRound2(ctx, self._secrets, self._opening, commitments, echo, r2)
        return Continue(tuple(out), nxt)


class KeygenRound2(Round):
    """Checks every opening and share; derives rid, chain code, x_i and all X_k; proves x_i."""

    name = ROUND2
    expects_direct = True

    def __init__(
        self,
        ctx: KeygenContext,
        secrets: _Secrets,
        opening: KeygenOpening,
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

    def _receive(self, inbox: Mapping[int, Incoming]) -> Step:
        ctx, bc = self._ctx, BlameCollector(self.name)
        me, t = ctx.party, ctx.threshold
        payloads = {me: self._own_r2}
        msgs: dict[int, KeygenRound2Broadcast] = {}
        sigmas: dict[int, int] = {}
        for j in self.others:
            payload = _payload(inbox[j].broadcast)
            msg = decode_or_blame(bc, j, payload, KeygenRound2Broadcast.decode, len(ctx.parties) + 1)
            share = decode_or_blame(bc, j, _payload(inbox[j].direct), KeygenRound2Direct.decode)
            if msg is not None:
                msgs[j] = msg
                payloads[j] = payload
            if share is not None:
                sigmas[j] = share.sigma
        check_echoes(bc, me, self._echo, {j: m.echo for j, m in msgs.items()})
        for j, m in msgs.items():
            if bc.has(j):
                continue
            if ctx.commitment(j, m.opening) != self._commitments[j]:
                bc.add(j, "commitment", payloads[j])
            elif len(m.opening.F) != t:
                bc.add(j, "vss_length", payloads[j])
            elif Point.base_mul(sigmas[j]) != evaluate_commitment(m.opening.F, me):
                # The evidence is the share itself: the run aborts, so the share is worthless.
                bc.add(j, "vss_share", _payload(inbox[j].direct))
        bc.raise_if_any()

        openings = {me: self._opening} | {j: m.opening for j, m in msgs.items()}
        rid = _xor([openings[j].rid for j in ctx.parties])
        chain_code = _xor([openings[j].chain_code for j in ctx.parties])
        joint_F = [point_sum([openings[j].F[k] for j in ctx.parties]) for k in range(t)]
        public_key = joint_F[0]
        public_shares = tuple((k, evaluate_commitment(joint_F, k)) for k in ctx.parties)
        x = (evaluate(self._secrets.poly, me) + sum(sigmas.values())) % Q
        # Every contribution was committed before any was seen, so a zero or identity value here
        # is a negligible-probability event rather than anyone's provable fault.
        if public_key.is_identity or any(X.is_identity for _, X in public_shares) or x == 0:
            raise InternalError("keygen produced a zero key or share; rerun with a fresh session id")
        X_me = dict(public_shares)[me]
        if Point.base_mul(x) != X_me:
            raise InternalError("own share does not match its public share after the VSS checks")

        commitment = sch.Commitment(self._opening.A)
        proof = sch.prove_with_commitment(
            ctx.transcript(me, rid), sch.Statement(X_me), sch.Witness(x), commitment, self._secrets.nonce
        )
        echo = make_echo(ctx.session_id, ROUND2, payloads)
        r3 = KeygenRound3Broadcast(echo, proof.z).encode()
        nxt = KeygenRound3(
            ctx,
            own_r3=r3,
            echo=echo,
            commitments_A={j: o.A for j, o in openings.items()},
            public_key=public_key,
            public_shares=public_shares,
            chain_code=chain_code,
            rid=rid,
            x=x,
        )
        return Continue((broadcast(ROUND3, me, r3),), nxt)


class KeygenRound3(Round):
    """Checks the echo of round 2 and every Πsch; sends the echo of round 3."""

    name = ROUND3

    def __init__(
        self,
        ctx: KeygenContext,
        *,
        own_r3: bytes,
        echo: Echo,
        commitments_A: dict[int, Point],
        public_key: Point,
        public_shares: tuple[tuple[int, Point], ...],
        chain_code: bytes,
        rid: bytes,
        x: int,
    ) -> None:
        super().__init__(ctx.party, ctx.parties)
        self._ctx = ctx
        self._own_r3 = own_r3
        self._echo = echo
        self._A = commitments_A
        self._public_key = public_key
        self._public_shares = public_shares
        self._chain_code = chain_code
        self._rid = rid
        self._x = x

    def _receive(self, inbox: Mapping[int, Incoming]) -> Step:
        ctx, bc = self._ctx, BlameCollector(self.name)
        msgs: dict[int, KeygenRound3Broadcast] = {}
        for j in self.others:
            msg = decode_or_blame(bc, j, _payload(inbox[j].broadcast), KeygenRound3Broadcast.decode)
            if msg is not None:
                msgs[j] = msg
        check_echoes(bc, ctx.party, self._echo, {j: m.echo for j, m in msgs.items()})
        shares = dict(self._public_shares)
        for j, m in msgs.items():
            if bc.has(j):
                continue
            try:
                sch.verify(ctx.transcript(j, self._rid), sch.Statement(shares[j]), m.proof(self._A[j]))
            except InvalidProof:
                bc.add(j, "sch_proof", _payload(inbox[j].broadcast))
        bc.raise_if_any()
        share = KeyShare(
            party=ctx.party,
            parties=ctx.parties,
            threshold=ctx.threshold,
            public_key=self._public_key,
            public_shares=self._public_shares,
            chain_code=self._chain_code,
            rid=self._rid,
            epoch=0,
            x=self._x,
        )
        payloads = {j: _payload(inbox[j].broadcast) for j in self.others}
        payloads[ctx.party] = self._own_r3
        echo = make_echo(ctx.session_id, ROUND3, payloads)
        r4 = KeygenRound4Broadcast(echo).encode()
        return Continue((broadcast(ROUND4, ctx.party, r4),), KeygenRound4(ctx, echo, share))


class KeygenRound4(Round):
    """Checks the echo of round 3; outputs the key share."""

    name = ROUND4

    def __init__(self, ctx: KeygenContext, echo: Echo, share: KeyShare) -> None:
        super().__init__(ctx.party, ctx.parties)
        self._ctx = ctx
        self._echo = echo
        self._share = share

    def _receive(self, inbox: Mapping[int, Incoming]) -> Step:
        bc = BlameCollector(self.name)
        msgs: dict[int, KeygenRound4Broadcast] = {}
        for j in self.others:
            msg = decode_or_blame(bc, j, _payload(inbox[j].broadcast), KeygenRound4Broadcast.decode)
            if msg is not None:
                msgs[j] = msg
        check_echoes(bc, self.party, self._echo, {j: m.echo for j, m in msgs.items()})
        bc.raise_if_any()
        return Done((), self._share)
