"""CGGMP24 presigning (Fig. 8 of ePrint 2021/060, 2024-10-21 revision): entry point and output types.

A signing set S of exactly t parties turns its Shamir shares into additive ones (x_i' = λ_i·x_i)
and produces, without knowing the message, a presignature per party:
R = Γ = γ·G, k̃_i = k_i/δ, χ̃_i = χ_i/δ with δ = k·γ and χ = k·x, so that the one-round signature
σ = Σ_i k̃_i·m' + r·χ̃_i = γ^-1·(m' + r·x') is an ECDSA signature with nonce γ (sign.py), where
m' = m + r·τ folds in the HD tweak τ fixed here, at the start.

Rounds (each in its own module; messages in presign_msgs.py):
  start          R1: K_i = enc_i(k_i), G_i = enc_i(γ_i), ElGamal commitments (Y_i, A_i, B_i) broadcast;
                 ψ0, ψ1 (Πenc-elg) sent to each j under j's ring-Pedersen parameters.
  PresignRound1  verifies ψ0, ψ1 (enc_elg_k, enc_elg_g); R2: Γ_i and ψ (Πelog) broadcast with the
                 echo of R1; D_{j,i}, F_{j,i}, D̂_{j,i}, F̂_{j,i} and two Πaff-g sent to each j.
  PresignRound2  verifies the echo, ψ (elog_gamma), the Πaff-g (aff_g_gamma, aff_g_x); decrypts;
                 R3: δ_i, Δ_i, S_i and ψ' (Πelog) broadcast with the echo of R2.
  PresignRound3  verifies the echo and ψ' (elog_delta); R4: the echo of R3.
  PresignRound4  verifies the echo; checks δ·G = ΣΔ_j and ΣS_j = δ·X; outputs the Presignature.

Deviations from the figure, and why:
- Sign convention of the MtA: D_{j,i} = K_j^{γ_i}·enc_j(β_{j,i}), F_{j,i} = enc_i(β_{j,i}) exactly as
  Πaff-g states it (+y), so party i's own additive contribution is −β_{j,i}.
- Echo broadcast of R1, R2 and R3 (reliable broadcast), with a last echo-only round because δ_j,
  broadcast in R3, feeds the output.
- D, F go to their recipient only (the figure's "send"); each party keeps every D/F it sent and
  received in its state for the identification round of Fig. 9, which `IdentificationRequired`
  carries when a check of the output step fails without naming a culprit. Fig. 9 needs every
  D_{i,j} and F_{j,i} at every signer, so round 2's broadcast also carries a hash commitment to
  the direct MtA values for each recipient (checked by the recipient, echoed to all), which the
  identification round (presign_identify.py) opens.
- Πelog statements take the points in the order of Fig. 23, not the order printed in Fig. 8
  (synedrion's errata).
- Every proof transcript is bound to the session id, the round and proof, the aux epoch, the
  prover index and the key's rid.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import hd
from .curve import Point, Q, check_scalar, point_sum
from .encoding import Decoded, as_bytes, as_int, as_list, as_point, decode, encode
from .errors import DecodeError, InvalidInput, TssError
from .key_share import AuxInfo, KeyShare
from .paillier import PaillierPublicKey, PaillierSecretKey
from .params import SecurityLevel
from .ring_pedersen import RingPedersenParams
from .rng import Rng
from .rounds import Continue
from .transcript import Transcript
from .vss import check_indices, lagrange_at_zero

MAX_PATH_INDEX = 1 << 31
"""BIP32 non-hardened indices only: the path is derived from the public key."""


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


def start(
    session_id: bytes,
    key_share: KeyShare,
    aux: AuxInfo,
    signers: tuple[int, ...],
    *,
    path: tuple[int, ...] = (),
    rng: Rng,
) -> Continue:
    """Begin presigning for `signers` (exactly t parties of the key, including this one).

    The HD `path` is fixed here, before any nonce exists: a presignature can only ever sign
    for the key derived along it (CVE-2025-66017).
    """
    # Imported here because the round modules import this module's types.
    from .presign_round1 import begin

    return begin(make_context(session_id, key_share, aux, signers, path), rng)


# --- output ---------------------------------------------------------------------------------------


def _pairs_value(pairs: tuple[tuple[int, Point], ...]) -> list[list[int | Point]]:
    return [[j, p] for j, p in pairs]


def _pairs_from_value(v: Decoded) -> tuple[tuple[int, Point], ...]:
    out = []
    for item in as_list(v):
        pair = as_list(item)
        if len(pair) != 2:
            raise DecodeError("expected (party, point) pairs")
        out.append((as_int(pair[0]), as_point(pair[1])))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class PresignaturePublic:
    """What anyone needs to check each partial signature and combine them (no secrets).

    Σ_j Δ̃_j = G and Σ_j S̃_j = X (the key before the HD tweak) hold for an honest presignature and
    are checked on construction.
    """

    session_id: bytes
    signers: tuple[int, ...]
    key_fingerprint: bytes
    epoch: int
    aux_epoch: bytes
    path: tuple[int, ...]
    tweak: int
    public_key: Point
    R: Point
    delta_tilde: tuple[tuple[int, Point], ...]
    s_tilde: tuple[tuple[int, Point], ...]

    def __post_init__(self) -> None:
        if check_indices(self.signers) != self.signers or len(self.signers) < 2:
            raise InvalidInput("signers must be at least two sorted distinct indices")
        if tuple(j for j, _ in self.delta_tilde) != self.signers or tuple(j for j, _ in self.s_tilde) != self.signers:
            raise InvalidInput("Δ̃ and S̃ must list every signer in order")
        if not 0 <= self.tweak < Q:
            raise InvalidInput("tweak out of range")
        if any(not 0 <= i < MAX_PATH_INDEX for i in self.path):
            raise InvalidInput("HD path indices must be non-hardened")
        if self.R.is_identity or self.public_key.is_identity:
            raise InvalidInput("R and the public key must not be the identity")
        if point_sum([p for _, p in self.delta_tilde]) != Point.generator():
            raise InvalidInput("Σ Δ̃_j must equal G")
        if point_sum([p for _, p in self.s_tilde]) + Point.base_mul(self.tweak) != self.public_key:
            raise InvalidInput("Σ S̃_j + τ·G must equal the derived public key")

    def delta_tilde_of(self, j: int) -> Point:
        """Δ̃_j = δ^-1·Δ_j."""
        return dict(self.delta_tilde)[j]

    def s_tilde_of(self, j: int) -> Point:
        """S̃_j = δ^-1·S_j."""
        return dict(self.s_tilde)[j]

    def to_value(self) -> list[Any]:
        return [
            self.session_id,
            list(self.signers),
            self.key_fingerprint,
            self.epoch,
            self.aux_epoch,
            list(self.path),
            self.tweak,
            self.public_key,
            self.R,
            _pairs_value(self.delta_tilde),
            _pairs_value(self.s_tilde),
        ]

    @classmethod
    def from_value(cls, v: Decoded) -> PresignaturePublic:
        f = as_list(v)
        if len(f) != 11:
            raise DecodeError("presignature public data has 11 fields")
        try:
            return cls(
                as_bytes(f[0]),
                tuple(as_int(j) for j in as_list(f[1])),
                as_bytes(f[2]),
                as_int(f[3]),
                as_bytes(f[4]),
                tuple(as_int(i) for i in as_list(f[5])),
                as_int(f[6]),
                as_point(f[7]),
                as_point(f[8]),
                _pairs_from_value(f[9]),
                _pairs_from_value(f[10]),
            )
        except InvalidInput as exc:
            raise DecodeError(str(exc)) from exc

    def to_bytes(self) -> bytes:
        """Wire encoding (identical at every honest signer of the set)."""
        return encode("presignature_public/v1", self.to_value())

    @classmethod
    def from_bytes(cls, data: bytes) -> PresignaturePublic:
        """Decode and validate."""
        return cls.from_value(decode("presignature_public/v1", data, 1)[0])


@dataclass(frozen=True, slots=True)
class Presignature:
    """One signer's presignature: k̃_i = k_i/δ and χ̃_i = χ_i/δ, bound to its public data. Use once."""

    party: int
    k_tilde: int = field(repr=False)
    chi_tilde: int = field(repr=False)
    public: PresignaturePublic

    def __post_init__(self) -> None:
        if self.party not in self.public.signers:
            raise InvalidInput("presignature owner not among the signers")
        check_scalar(self.k_tilde, nonzero=True)
        check_scalar(self.chi_tilde)

    @property
    def signers(self) -> tuple[int, ...]:
        """The signing set S."""
        return self.public.signers

    @property
    def session_id(self) -> bytes:
        """The presigning session."""
        return self.public.session_id

    @property
    def key_fingerprint(self) -> bytes:
        """The key (group public key before any HD tweak) the presignature belongs to."""
        return self.public.key_fingerprint

    @property
    def epoch(self) -> int:
        """The key share's epoch (refresh count)."""
        return self.public.epoch

    @property
    def aux_epoch(self) -> bytes:
        """The aux info's epoch id."""
        return self.public.aux_epoch

    @property
    def path(self) -> tuple[int, ...]:
        """The HD path fixed at presigning start."""
        return self.public.path

    @property
    def tweak(self) -> int:
        """The HD tweak τ of that path."""
        return self.public.tweak

    @property
    def R(self) -> Point:
        """The signature's nonce point Γ."""
        return self.public.R

    def to_bytes(self) -> bytes:
        """Storage encoding (contains secrets: encrypt at rest)."""
        return encode("presignature/v1", self.party, self.k_tilde, self.chi_tilde, self.public.to_value())

    @classmethod
    def from_bytes(cls, data: bytes) -> Presignature:
        """Decode and validate a stored presignature."""
        f = decode("presignature/v1", data, 4)
        public = PresignaturePublic.from_value(f[3])
        try:
            return cls(as_int(f[0]), as_int(f[1]), as_int(f[2]), public)
        except InvalidInput as exc:
            raise DecodeError(str(exc)) from exc


# --- round state shared by several rounds and the identification hand-off ------------------------


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


class IdentificationRequired(TssError):
    """The output check failed and no single message names a culprit: run the identification round.

    The session must not simply be retried (CVE-2023-33242): identify, then stop.
    """

    def __init__(self, state: IdentificationState) -> None:
        super().__init__(f"presigning check '{state.reason}' failed: identification required")
        self.state = state
