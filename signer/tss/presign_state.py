"""Presigning's round state: the context every round reads and the values rounds hand on.

`PresignContext` is fixed at the start (`make_context`); `Nonces`, `MtaSent`, `MtaReceived`
travel from round 1 to the output check, and `IdentificationState` is what the identification
round (presign_identify.py) starts from when that check fails.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from . import hd
from .curve import Point, Q
from .encoding import encode
from .errors import InvalidInput
from .key_share import AuxInfo, KeyShare
from .paillier import PaillierPublicKey, PaillierSecretKey
from .params import SecurityLevel
from .presignature import MAX_PATH_INDEX
from .ring_pedersen import RingPedersenParams
from .transcript import Transcript
from .vss import check_indices, lagrange_at_zero


@dataclass(frozen=True, slots=True)
class PresignContext:
    """What every presigning round of one party reads and never changes."""

    session_id: bytes
    key_share: KeyShare = field(repr=False)
    aux: AuxInfo = field(repr=False)
    signers: tuple[int, ...]
    path: tuple[int, ...]
    tweak: int
    derived_public_key: Point
    paillier: Mapping[int, PaillierPublicKey] = field(repr=False)
    rp: Mapping[int, RingPedersenParams] = field(repr=False)
    additive_public: Mapping[int, Point] = field(repr=False)

    @property
    def party(self) -> int:
        """This party's index."""
        return self.key_share.party

    @property
    def level(self) -> SecurityLevel:
        """The security level of the aux info."""
        return self.aux.level

    @property
    def others(self) -> tuple[int, ...]:
        """The other signers."""
        return tuple(j for j in self.signers if j != self.party)

    @property
    def paillier_secret(self) -> PaillierSecretKey:
        """This party's Paillier key."""
        return self.aux.paillier_secret

    def additive_share(self) -> int:
        """x_i' = λ_i·x_i over the signing set (secret)."""
        return self.key_share.additive_share(self.signers)

    def transcript(self, tag: str, prover: int) -> Transcript:
        """The Fiat–Shamir context of one proof: session, round and proof tag, aux epoch, prover, rid."""
        return Transcript.for_proof(
            encode("presign", self.session_id, tag, self.aux.epoch_id), prover, self.key_share.rid
        )


def make_context(
    session_id: bytes, key_share: KeyShare, aux: AuxInfo, signers: tuple[int, ...], path: tuple[int, ...]
) -> PresignContext:
    """Validate the inputs of `start` and derive the HD tweak; raises InvalidInput on misuse."""
    if not isinstance(session_id, bytes) or not session_id:
        raise InvalidInput("session_id must be non-empty bytes")
    signers = check_indices(signers)
    if key_share.party != aux.party:
        raise InvalidInput("key share and aux info belong to different parties")
    if key_share.party not in signers:
        raise InvalidInput("this party is not in the signing set")
    if len(signers) != key_share.threshold:
        raise InvalidInput(f"the signing set must have exactly t = {key_share.threshold} parties")
    if any(j not in key_share.parties for j in signers):
        raise InvalidInput("the signing set names parties outside the key's committee")
    public = dict(aux.public)
    if any(j not in public for j in signers):
        raise InvalidInput("aux info lacks a signer's public data")
    if any(not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < MAX_PATH_INDEX for i in path):
        raise InvalidInput("HD path indices must be non-hardened (0 <= i < 2^31)")
    derived = hd.derive(key_share.public_key, key_share.chain_code, tuple(path))
    return PresignContext(
        session_id=session_id,
        key_share=key_share,
        aux=aux,
        signers=signers,
        path=tuple(path),
        tweak=derived.tweak % Q,
        derived_public_key=derived.public_key,
        paillier={j: public[j].paillier for j in signers},
        rp={j: public[j].rp for j in signers},
        additive_public={j: key_share.public_share(j) * lagrange_at_zero(j, signers) for j in signers},
    )


@dataclass(frozen=True, slots=True)
class Nonces:
    """The secrets drawn in round 1: k_i, γ_i, their Paillier randomness ρ_i, ν_i and ElGamal a_i, b_i."""

    k: int = field(repr=False)
    gamma: int = field(repr=False)
    rho: int = field(repr=False)
    nu: int = field(repr=False)
    a: int = field(repr=False)
    b: int = field(repr=False)


@dataclass(frozen=True, slots=True)
class MtaSent:
    """What this party sent to j in round 2, with the secrets behind it (γ-MtA and x-MtA).

    D = K_j^{γ_i}·enc_j(β; s), F = enc_i(β; r), D̂ = K_j^{x_i'}·enc_j(β̂; ŝ), F̂ = enc_i(β̂; r̂).
    """

    D: int
    F: int
    D_hat: int
    F_hat: int
    beta: int = field(repr=False)
    s: int = field(repr=False)
    r: int = field(repr=False)
    beta_hat: int = field(repr=False)
    s_hat: int = field(repr=False)
    r_hat: int = field(repr=False)


@dataclass(frozen=True, slots=True)
class MtaReceived:
    """What j sent to this party in round 2: D_{i,j}, D̂_{i,j} under N_i; F_{i,j}, F̂_{i,j} under N_j."""

    D: int
    F: int
    D_hat: int
    F_hat: int


@dataclass(frozen=True, slots=True)
class IdentificationState:
    """Everything the identification round (Fig. 9 / Section 4.3.1) needs, from one party's view.

    `reason` is "delta" (δ·G ≠ ΣΔ_j) or "chi" (ΣS_j ≠ δ·X). Public values are per signer;
    `sent`/`received` are per other signer; the integers δ_i, χ_i are before reduction mod q.
    `mta_commitments[i][j]` is what signer i's round-2 broadcast committed to for its MtA values
    sent to j (presign_msgs.mta_commitment): identification opens them to every signer.
    """

    reason: str
    context: PresignContext
    K: Mapping[int, int]
    G: Mapping[int, int]
    Gamma: Mapping[int, Point]
    Gamma_sum: Point
    Delta: Mapping[int, Point]
    S: Mapping[int, Point]
    delta: Mapping[int, int]
    sent: Mapping[int, MtaSent] = field(repr=False)
    received: Mapping[int, MtaReceived] = field(repr=False)
    nonces: Nonces = field(repr=False)
    delta_int: int = field(repr=False)
    chi_int: int = field(repr=False)
    mta_commitments: Mapping[int, Mapping[int, bytes]]
