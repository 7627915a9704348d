"""A presignature: what presigning outputs (the secret k̃_i, χ̃_i) and its public data.

The types sign.py consumes, the node stores and the coordinator checks partial signatures
against; produced by presigning's last round (presign_round3.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .curve import Point, Q, check_scalar, point_sum
from .encoding import Decoded, as_bytes, as_int, as_list, as_point, decode, encode
from .errors import DecodeError, InvalidInput
from .vss import check_indices

MAX_PATH_INDEX = 1 << 31
"""BIP32 non-hardened indices only: the path is derived from the public key."""


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
