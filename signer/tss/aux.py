"""Auxiliary information and key refresh: CGGMP24 Fig. 7 (dfns spec §Provisioning, §Key Refresh).

Every party generates a Paillier–Blum modulus N_i = p_i·q_i and separate ring-Pedersen parameters
(N̂_i, s_i, t_i) from four fresh safe primes, and proves them with Πprm (R1), Πmod and Πfac (R3).
A refresh runs the same rounds and adds a zero-sharing: each party deals a random polynomial f_i
of degree t − 1 with f_i(0) = 0 under Feldman commitments F_i, so the new shares
x_k' = x_k + Σ_j f_j(k) share the same key while old and new shares no longer combine.

Rounds (each in its own module; messages in `aux_msg`):
  start      R1 broadcast V_i = H(opening_i) (`AuxRound1Broadcast`).
  AuxRound1  collects V_j; R2 broadcast the opening and the echo of R1 (`AuxRound2Broadcast`).
  AuxRound2  checks openings, rid = ⊕ rid_j; R3 broadcast the echo of R2, Πmod and the Schnorr
             answers (`AuxRound3Broadcast`); R3 to each P_j Πfac under P_j's parameters and
             C = enc_j(f_i(j)) under P_j's new key (`AuxRound3Direct`).
  AuxRound3  checks Πmod, Πfac, the shares and the Schnorr proofs; outputs.
Outputs: `start_aux` → AuxInfo; `start_refresh` → (KeyShare, AuxInfo). A refreshed KeyShare has
`epoch` = old epoch + 1 and the new joint `rid`; the AuxInfo carries a fresh `epoch_id`.
Presignatures made under an older epoch must be discarded by the presign/sign layer.

Deviations from the figure (all additive): the R1 commitment also binds the mode, the session
id and the party set; Πprm, proved in R1 before rid exists, is bound to the key's current rid in
a refresh (to none for plain aux info); a refresh deals a degree t − 1 Feldman zero-sharing (the
figure's n-of-n additive one is the case t = n) and checks its constant term (`zero_sharing`);
the echo of each broadcast travels in the next round's message; Πmod is broadcast once rather
than sent to each party (the same proof either way).
"""

from __future__ import annotations

from .aux_msg import (
    RID_BYTES,
    ROUND1,
    AuxContext,
    AuxOpening,
    AuxRound1Broadcast,
    AuxRound2Broadcast,
    AuxRound3Broadcast,
    AuxRound3Direct,
    AuxSecrets,
    commitment_hash,
)
from .aux_round1 import AuxRound1
from .aux_round2 import AuxRound2, check_opening
from .aux_round3 import AuxRound3, epoch_id
from .curve import Point
from .errors import InvalidInput
from .key_share import KeyShare
from .paillier import keypair_from_primes
from .params import SecurityLevel
from .primes import AUX_PRIMES, PrimeSource
from .ring_pedersen import generate_ring_pedersen
from .rng import Rng
from .rounds import Continue, broadcast
from .vss import check_indices, commit, public_key_from_shares, random_polynomial
from .zk import prm, sch

__all__ = [
    "AuxRound1",
    "AuxRound1Broadcast",
    "AuxRound2",
    "AuxRound2Broadcast",
    "AuxRound3",
    "AuxRound3Broadcast",
    "AuxRound3Direct",
    "check_opening",
    "commitment_hash",
    "epoch_id",
    "start_aux",
    "start_refresh",
]


def start_aux(
    session_id: bytes, party: int, parties: tuple[int, ...], *, level: SecurityLevel, primes: PrimeSource, rng: Rng
) -> Continue:
    """Begin aux-info generation for `party` among `parties`; the output is an AuxInfo."""
    parties = check_indices(parties)
    if len(parties) < 2:
        raise InvalidInput("aux info needs at least two parties")
    return _start(AuxContext(session_id, party, parties, level, rng), primes)


def start_refresh(
    session_id: bytes, key_share: KeyShare, *, level: SecurityLevel, primes: PrimeSource, rng: Rng
) -> Continue:
    """Begin a key refresh run by all n parties of the key; the output is (KeyShare, AuxInfo)."""
    if Point.base_mul(key_share.x) != key_share.public_share(key_share.party):
        raise InvalidInput("key share does not match its public share")
    if public_key_from_shares(dict(key_share.public_shares), key_share.parties[: key_share.threshold]) != (
        key_share.public_key
    ):
        raise InvalidInput("public shares do not interpolate to the public key")
    ctx = AuxContext(session_id, key_share.party, key_share.parties, level, rng, key_share)
    return _start(ctx, primes)


def _start(ctx: AuxContext, primes: PrimeSource) -> Continue:
    level, rng, me = ctx.level, ctx.rng, ctx.party
    if me not in ctx.parties:
        raise InvalidInput("party is not in the session")
    p, q, p_hat, q_hat = (primes(level.prime_bits) for _ in range(AUX_PRIMES))
    if len({p, q, p_hat, q_hat}) != 4 or any(x % 4 != 3 for x in (p, q, p_hat, q_hat)):
        raise InvalidInput("the prime source must return four distinct safe primes")
    paillier = keypair_from_primes(p, q)
    rp_secret = generate_ring_pedersen(p_hat, q_hat, rng)
    if paillier.n.bit_length() != level.modulus_bits or rp_secret.params.n.bit_length() != level.modulus_bits:
        raise InvalidInput(f"the prime source must give moduli of exactly {level.modulus_bits} bits")
    prm_proof = prm.prove(
        ctx.transcript("prm", me, ctx.prm_rid),
        prm.Statement(rp_secret.params),
        prm.Witness(rp_secret),
        rng=rng,
        level=level,
    )
    poly: tuple[int, ...] = ()
    nonces: tuple[sch.Nonce, ...] = ()
    sch_commitments: tuple[Point, ...] = ()
    if ctx.key_share is not None:
        poly = tuple(random_polynomial(rng, ctx.key_share.threshold - 1, constant=0))
        drawn = [sch.commit(rng) for _ in ctx.parties]
        sch_commitments = tuple(c.A for c, _ in drawn)
        nonces = tuple(n for _, n in drawn)
    opening = AuxOpening(
        paillier_n=paillier.n,
        rp=rp_secret.params,
        prm_proof=prm_proof,
        rid=rng.token_bytes(RID_BYTES),
        vss=commit(poly),
        sch_commitments=sch_commitments,
        u=rng.token_bytes(RID_BYTES),
    )
    payload = AuxRound1Broadcast(commitment_hash(ctx, me, opening)).encode()
    secrets = AuxSecrets(paillier, poly, nonces)
    return Continue((broadcast(ROUND1, me, payload),), AuxRound1(ctx, secrets, opening, payload))
