"""Naming the culprit after a failed presigning output check (ePrint 2021/060, 2024-10-21: Fig. 9
for δ, Section 4.3.1 for χ).

Presigning's last round (PresignRound4) continues into this round, through `start`, when
δ·G ≠ Σ_j Δ_j (reason "delta") or Σ_j S_j ≠ δ·X (reason "chi"). Every input of those checks was
echo-broadcast, so all honest signers see the same failure, yet no single message is wrong on
its face. One more round follows: each signer opens the MtA values it sent in round 2 and proves,
with setup-less proofs that every signer can check, that its δ_i (resp. S_i) is what its
ciphertexts say. Then the round aborts naming everyone whose proof fails.
A failed presigning is never retried (CVE-2023-33242).

The statements, in OUR sign convention (presign.py). In round 2 signer i sent to each j
  D_{j,i} = K_j^{γ_i}·enc_j(β_{j,i}; s_{j,i}),    F_{j,i} = enc_i(β_{j,i}; r_{j,i}),
  D̂_{j,i} = K_j^{x_i'}·enc_j(β̂_{j,i}; ŝ_{j,i}),   F̂_{j,i} = enc_i(β̂_{j,i}; r̂_{j,i}),
j's share is α_{j,i} = dec_j(D_{j,i}) = k_j·γ_i + β_{j,i} and i's own share is −β_{j,i}, so
  δ_i = k_i·γ_i + Σ_{j≠i} (α_{i,j} − β_{j,i})    (an integer; broadcast mod q)
and, homomorphically under i's own key N_i, with
  D_i = Π_{j≠i} D_{i,j} · Π_{j≠i} F_{j,i}^-1 mod N_i²:     K_i^{γ_i} · D_i = enc_i(δ_i; ρ_i)
(the plaintexts add over the integers: every term is far below N_i/2). Likewise
  D̂_i = Π_{j≠i} D̂_{i,j} · Π_{j≠i} F̂_{j,i}^-1:   K_i^{x_i'} · D̂_i = enc_i(χ_i; ρ̂_i).
ρ_i is not known to i as a product of randomness (D_{i,j} hides j's), so i extracts it with its
Paillier key (`randomness_of`).

`start` (party i) broadcasts one message:
  1. the opening: (D_{j,i}, F_{j,i}, D̂_{j,i}, F̂_{j,i}) for every other j, whose hashes i's round-2
     broadcast committed to (presign_msgs.mta_commitment; echoed, so the same everywhere);
  2. "delta": ψ*_i = Πdec(N_i; K = K_i, D = D_i, X = Γ_i, S = δ_i·G, base G, n = |S|;
                          x = γ_i, y = δ_i, ρ = ρ_i);
     "chi":   ψ*_i = Πdec(N_i; K = K_i, D = D̂_i, X = X_i' = λ_i·X_i, S = S_i, base Γ, n = |S|;
                          x = x_i', y = χ_i, ρ = ρ̂_i);
  3. for every other j (only when the set has three or more signers, see below):
     "delta": ψ*_{j,i} = Πaff-g*(N0 = N_j, N1 = N_i; C = K_j, D = D_{j,i}, Y = F_{j,i}, X = Γ_i;
                                 x = γ_i, y = β_{j,i}, ρ = s_{j,i}, μ = r_{j,i});
     "chi":   the same with D̂_{j,i}, F̂_{j,i}, X_i', x_i', β̂_{j,i}, ŝ_{j,i}, r̂_{j,i}.

`PresignIdentifyRound.receive` (party k), for every other sender i, checks in this order:
  missing_broadcast    (the framework) i sent nothing: it refuses to take part
  decode               the message decodes: one opening per other signer with every ciphertext in
                       its group, the proofs well formed, one Πaff-g* per other signer iff |S| > 2
  identify_opening     every opening hashes to i's round-2 commitment for that recipient
  identify_dec         ψ*_i verifies against k's own statement: K_i, Γ_i or X_i', δ_i or S_i, Γ
                       from the echoed broadcasts, D_{i,j} from j's opening (k's own values when
                       j = k), F_{j,i} from i's opening. If an opening it needs was rejected, ψ*_i
                       is not checked (the opener is named instead, i is not)
  identify_aff_g_star  every ψ*_{j,i} with j ≠ k verifies
Every sender is processed; a sender is named at its first failed check (its other proofs are not
verified: they could not clear it, and each costs seconds). If nobody is named the round raises
InternalError: the failure cannot come from the peers, so it must be ours.

Why a culprit is always found. Suppose every proof verifies at k. Πaff-g* (or, for D_{k,i}, the
round-2 Πaff-g that k checked under its own ring-Pedersen parameters, which states the same)
gives small integers with D_{i,j} = K_i^{a_j}·enc_i(b_{i,j}), F_{i,j} = enc_j(b_{i,j}), a_j·G = Γ_j.
Πdec gives small integers with K_i^{c_i}·D_i = enc_i(y_i), c_i·G = Γ_i, y_i·G = δ_i·G. K_i encrypts
k_i (Πenc-elg, round 1) and Δ_i = k_i·Γ (Πelog, round 3). All magnitudes are far below N_i/2,
so over the integers y_i = k_i·c_i + Σ_j (k_i·a_j + b_{i,j}) − Σ_j b_{j,i}; summing over i the b's
cancel and Σ_i δ_i ≡ (Σ k_i)(Σ γ_j) = k·γ (mod q), hence δ·G = k·Γ = Σ Δ_j: the δ check passed.
For χ: y_i·Γ = S_i gives Σ S_i = k·x·Γ = δ·X once δ = k·γ (the δ check passed before the χ
check ran). Either way a contradiction.

The message is not echoed: every verdict rests on values all honest signers already agree on
(echoed broadcasts and round-2 commitments), and no message proves a false statement, so a sender
who shows different messages to different signers can change who names it, never clear itself.

Why an honest signer is never named: its openings are the values it committed to; the D_{i,j}
it received matched j's commitment in round 2 (checked there, `mta_commitment`), and j's opening
must match the same hash, so every verifier rebuilds exactly the D_i, F_{j,i} the honest prover
used; its δ_i, S_i, Γ_i, K_i are the echoed broadcasts; and its D_{i,j} passed Πaff-g, so its
δ_i lies within ±2^(ℓ'+ε+1+⌈log2 n⌉), the range `dec.y_bits` allows.

Deviations from the paper, and why:
- The figure assumes every D_{i,j}, F_{j,i} is known to every signer, but round 2 sends them
  directly (synedrion's PAPER.md notes the gap). We keep them direct and add one 32-byte hash
  commitment per recipient to round 2's broadcast, which the recipient checks against the
  direct message (`mta_commitment`, round 2) and this round opens. Cheaper than broadcasting the
  ciphertexts, and a dispute between sender and recipient over a direct message cannot arise.
- Πdec takes y in the widened range ±2^(ℓ'+ε+1+⌈log2 n⌉) and n in its statement (dec.py; the
  paper's ±2^ℓ' does not hold for a sum of n MtA shares), and the base point Γ for χ.
- ψ*_{k,i} (about the D that i sent to k) is not checked by k: k already checked Πaff-g for the
  same values in round 2. So with two signers nobody would check any Πaff-g*, and they are not
  produced (each costs seconds).
- Sign convention: D carries +β and F encrypts +β (as Πaff-g and Πaff-g* state it), so i's
  share is −β and F_{j,i} enters D_i inverted.
- Transcripts bind the session, "identify/<reason>/<proof>", the recipient of a Πaff-g*, the aux
  epoch, the prover and rid (PresignContext.transcript).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .curve import Point
from .encoding import Decoded, Value, as_int, as_list, decode, encode
from .errors import DecodeError, InternalError, InvalidInput, InvalidProof
from .modarith import inverse
from .paillier import PaillierPublicKey
from .presign_msgs import mta_commitment
from .presign_state import IdentificationState, MtaReceived, MtaSent
from .rng import Rng
from .rounds import BlameCollector, Continue, Incoming, Round, Step, broadcast, decode_or_blame
from .transcript import Transcript
from .zk import aff_g_star, dec

ROUND = "presign/identify"
BROADCAST = "presign/identify/bcast"
REASONS = ("delta", "chi")


@dataclass(frozen=True, slots=True)
class MtaOpening:
    """What the sender sent to `recipient` in round 2: D, D̂ under the recipient's key, F, F̂ under its own."""

    recipient: int
    D: int
    F: int
    D_hat: int
    F_hat: int

    def commitment(self, session_id: bytes, sender: int) -> bytes:
        """The round-2 commitment this opening must match."""
        return mta_commitment(session_id, sender, self.recipient, self.D, self.F, self.D_hat, self.F_hat)

    def pair(self, reason: str) -> tuple[int, int]:
        """(D, F) of the MtA the reason is about: γ for "delta", x' for "chi"."""
        return (self.D, self.F) if reason == "delta" else (self.D_hat, self.F_hat)


@dataclass(frozen=True, slots=True)
class PresignIdentifyBroadcast:
    """Sender i's openings (one per other signer), ψ*_i (Πdec) and ψ*_{j,i} (Πaff-g*, per other j, or none)."""

    openings: tuple[MtaOpening, ...]
    psi_dec: dec.Proof
    psi_aff: tuple[tuple[int, aff_g_star.Proof], ...]

    def encode(self) -> bytes:
        openings: Value = [[o.recipient, o.D, o.F, o.D_hat, o.F_hat] for o in self.openings]
        affs: Value = [[j, p.to_value()] for j, p in self.psi_aff]
        return encode(BROADCAST, openings, self.psi_dec.to_value(), affs)

    @classmethod
    def decode(
        cls, data: bytes, sender: int, signers: tuple[int, ...], paillier: Mapping[int, PaillierPublicKey]
    ) -> PresignIdentifyBroadcast:
        """Recipients must be exactly the other signers, ascending; D, D̂ units mod N_j², F, F̂ mod N_i²."""
        f = decode(BROADCAST, data, 3)
        others = [j for j in signers if j != sender]
        pk_i = paillier[sender]
        openings = []
        items = as_list(f[0])
        if len(items) != len(others):
            raise DecodeError("one opening per other signer")
        for item, j in zip(items, others, strict=True):
            v = as_list(item)
            if len(v) != 5 or as_int(v[0]) != j:
                raise DecodeError("openings are (recipient, D, F, D̂, F̂), recipients ascending")
            pk_j = paillier[j]
            openings.append(
                MtaOpening(
                    j,
                    pk_j.check_ciphertext(as_int(v[1])),
                    pk_i.check_ciphertext(as_int(v[2])),
                    pk_j.check_ciphertext(as_int(v[3])),
                    pk_i.check_ciphertext(as_int(v[4])),
                )
            )
        psi_dec = dec.Proof.from_value(f[1])
        affs = as_list(f[2])
        expected = others if needs_aff_g_star(signers) else []
        if len(affs) != len(expected):
            raise DecodeError("one Πaff-g* per other signer when there are three or more signers, else none")
        psi_aff = []
        for item, j in zip(affs, expected, strict=True):
            pair: list[Decoded] = as_list(item)
            if len(pair) != 2 or as_int(pair[0]) != j:
                raise DecodeError("Πaff-g* proofs are (recipient, proof), recipients ascending")
            psi_aff.append((j, aff_g_star.Proof.from_value(pair[1])))
        return cls(tuple(openings), psi_dec, tuple(psi_aff))


def needs_aff_g_star(signers: tuple[int, ...]) -> bool:
    """ψ*_{j,i} is checked only by signers other than i and j: with two signers, by nobody."""
    return len(signers) > 2


# --- the statements, shared by prover and verifier --------------------------------------------------


def _public_point(st: IdentificationState, i: int) -> Point:
    """X of both proofs: Γ_i for "delta", X_i' = λ_i·X_i for "chi"."""
    return st.Gamma[i] if st.reason == "delta" else st.context.additive_public[i]


def _dec_statement(st: IdentificationState, i: int, table: Mapping[tuple[int, int], MtaOpening]) -> dec.Statement:
    """Πdec for signer i: K_i^x · Π_j D_{i,j} · Π_j F_{j,i}^-1 = enc_i(y), X = x·G, S = y·base.

    `table[(sender, recipient)]` holds the round-2 MtA values sent from sender to recipient.
    """
    ctx = st.context
    pk = ctx.paillier[i]
    n2 = pk.n2
    d = 1
    for j in ctx.signers:
        if j == i:
            continue
        D_ij, _ = table[(j, i)].pair(st.reason)
        _, F_ji = table[(i, j)].pair(st.reason)
        d = d * D_ij % n2 * inverse(F_ji, n2) % n2
    if st.reason == "delta":
        S, base = Point.base_mul(st.delta[i]), Point.generator()
    else:
        S, base = st.S[i], st.Gamma_sum
    return dec.Statement(pk, st.K[i], d, _public_point(st, i), S, base, len(ctx.signers))


def _aff_statement(st: IdentificationState, i: int, j: int, opening: MtaOpening) -> aff_g_star.Statement:
    """Πaff-g* for the MtA values i sent to j: D = K_j^x·enc_j(y), Y = enc_i(y), X = x·G."""
    ctx = st.context
    D, F = opening.pair(st.reason)
    return aff_g_star.Statement(ctx.paillier[j], ctx.paillier[i], st.K[j], D, F, _public_point(st, i))


def _dec_transcript(st: IdentificationState, prover: int) -> Transcript:
    return st.context.transcript(f"identify/{st.reason}/dec", prover)


def _aff_transcript(st: IdentificationState, prover: int, recipient: int) -> Transcript:
    t = st.context.transcript(f"identify/{st.reason}/aff_g_star", prover)
    t.append("recipient", recipient)
    return t


def _opening(j: int, m: MtaSent | MtaReceived) -> MtaOpening:
    return MtaOpening(j, m.D, m.F, m.D_hat, m.F_hat)


# --- the round ------------------------------------------------------------------------------------


def start(st: IdentificationState, *, rng: Rng) -> Continue:
    """Broadcast this party's openings and proofs; the returned round names the culprits.

    Presigning's last round calls this when its δ or χ check fails (presign_round3.py).
    """
    if st.reason not in REASONS:
        raise InvalidInput(f"unknown identification reason {st.reason!r}")
    ctx = st.context
    me, level, key = ctx.party, ctx.level, ctx.paillier_secret
    if set(st.sent) != set(ctx.others) or set(st.received) != set(ctx.others):
        raise InvalidInput("identification state lacks a signer's MtA values")
    # The Πdec statement from our own view: D_{me,j} as received, F_{j,me} as sent.
    table = {(me, j): _opening(j, m) for j, m in st.sent.items()}
    table.update({(j, me): _opening(me, m) for j, m in st.received.items()})
    stmt = _dec_statement(st, me, table)
    if st.reason == "delta":
        x, y = st.nonces.gamma, st.delta_int
    else:
        x, y = ctx.additive_share(), st.chi_int
    full = key.public.add(key.public.mul_secret(stmt.K, x), stmt.D)
    if key.decrypt(full) != y:
        raise InternalError("our own MtA ciphertexts do not decrypt to the share we computed")
    try:
        psi_dec = dec.prove(
            _dec_transcript(st, me), stmt, dec.Witness(x, y, key.randomness_of(full, y), key), rng=rng, level=level
        )
        psi_aff = []
        if needs_aff_g_star(ctx.signers):
            for j in ctx.others:
                m = st.sent[j]
                beta, s, r = (m.beta, m.s, m.r) if st.reason == "delta" else (m.beta_hat, m.s_hat, m.r_hat)
                proof = aff_g_star.prove(
                    _aff_transcript(st, me, j),
                    _aff_statement(st, me, j, table[(me, j)]),
                    aff_g_star.Witness(x, beta, s, r, key),
                    rng=rng,
                    level=level,
                )
                psi_aff.append((j, proof))
    except InvalidInput as exc:
        # Our witnesses are in range by construction (the received D passed Πaff-g in round 2).
        raise InternalError(f"identification witness rejected: {exc}") from exc
    mine = PresignIdentifyBroadcast(tuple(table[(me, j)] for j in ctx.others), psi_dec, tuple(psi_aff))
    return Continue((broadcast(ROUND, me, mine.encode()),), PresignIdentifyRound(st))


class PresignIdentifyRound(Round):
    """Checks every other signer's openings and proofs; always ends in ProtocolAbort (or InternalError)."""

    name = ROUND
    expects_broadcast = True
    expects_direct = False

    def __init__(self, state: IdentificationState) -> None:
        super().__init__(state.context.party, state.context.signers)
        self._state = state

    @property
    def state(self) -> IdentificationState:
        """What this party knew when the output check failed (its secrets hidden from repr)."""
        return self._state

    def _receive(self, inbox: Mapping[int, Incoming]) -> Step:
        st = self._state
        ctx, me = st.context, self.party
        collector = BlameCollector(self.name)
        msgs: dict[int, tuple[PresignIdentifyBroadcast, bytes]] = {}
        for i in self.others:
            data = inbox[i].broadcast
            assert data is not None  # checked by Round.receive
            msg = decode_or_blame(collector, i, data, PresignIdentifyBroadcast.decode, i, ctx.signers, ctx.paillier)
            if msg is None:
                continue
            committed = st.mta_commitments[i]
            if any(o.commitment(ctx.session_id, i) != committed.get(o.recipient) for o in msg.openings):
                collector.add(i, "identify_opening", data)
                continue
            msgs[i] = (msg, data)

        table = {(me, j): _opening(j, m) for j, m in st.sent.items()}
        for i, (msg, _) in msgs.items():
            table.update({(i, o.recipient): o for o in msg.openings})

        for i in sorted(msgs):
            msg, data = msgs[i]
            if any((j, i) not in table for j in ctx.signers if j != i):
                continue  # a signer whose MtA values i's statement needs was named for its opening
            try:
                dec.verify(_dec_transcript(st, i), _dec_statement(st, i, table), msg.psi_dec, level=ctx.level)
            except InvalidProof:
                collector.add(i, "identify_dec", data)
                continue
            for j, proof in msg.psi_aff:
                if j == me:
                    continue  # the same values passed our own Πaff-g in round 2
                try:
                    aff_g_star.verify(
                        _aff_transcript(st, i, j), _aff_statement(st, i, j, table[(i, j)]), proof, level=ctx.level
                    )
                except InvalidProof:
                    collector.add(i, "identify_aff_g_star", data)
                    break
        collector.raise_if_any()
        raise InternalError(
            f"presigning check '{st.reason}' failed but every identification proof verifies: "
            "the inconsistency is on our side"
        )
