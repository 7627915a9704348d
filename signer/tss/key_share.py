"""What a signer keeps: its key share (keygen/refresh output) and its auxiliary information.

Both encode to bytes with the project encoding for the encrypted store; decoding validates.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .curve import Point, Q, check_scalar
from .encoding import Decoded, Value, as_bytes, as_int, as_list, as_point, decode, encode
from .errors import DecodeError, InvalidInput
from .paillier import PaillierPublicKey, PaillierSecretKey
from .params import SecurityLevel, level_by_name
from .ring_pedersen import RingPedersenParams
from .vss import check_indices, lagrange_at_zero


@dataclass(frozen=True, slots=True)
class KeyShare:
    """One party's Shamir share of a t-of-n secp256k1 key, with everything public about the key."""

    party: int
    parties: tuple[int, ...]
    threshold: int
    public_key: Point
    public_shares: tuple[tuple[int, Point], ...]
    chain_code: bytes
    rid: bytes
    epoch: int
    x: int = field(repr=False)

    def __post_init__(self) -> None:
        check_indices(self.parties)
        if self.party not in self.parties:
            raise InvalidInput("share owner not among the parties")
        if not 2 <= self.threshold <= len(self.parties):
            raise InvalidInput("threshold must satisfy 2 <= t <= n")
        if tuple(i for i, _ in self.public_shares) != self.parties:
            raise InvalidInput("public shares must list every party in order")
        if len(self.chain_code) != 32:
            raise InvalidInput("chain code must be 32 bytes")
        check_scalar(self.x, nonzero=True)

    def public_share(self, j: int) -> Point:
        """X_j = x_j·G."""
        return dict(self.public_shares)[j]

    def additive_share(self, signers: tuple[int, ...]) -> int:
        """λ_i·x_i over the signer set: the signers' additive shares sum to the key."""
        return lagrange_at_zero(self.party, signers) * self.x % Q

    def key_fingerprint(self) -> bytes:
        """Identifies the key (not the share): the group public key's encoding."""
        return self.public_key.to_bytes()

    def to_bytes(self) -> bytes:
        """Storage encoding (contains the secret share: encrypt it at rest)."""
        return encode(
            "key_share/v1",
            self.party,
            list(self.parties),
            self.threshold,
            self.public_key,
            [[j, p] for j, p in self.public_shares],
            self.chain_code,
            self.rid,
            self.epoch,
            self.x,
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> KeyShare:
        """Decode and validate a stored key share."""
        f = decode("key_share/v1", data, 9)
        shares = []
        for item in as_list(f[4]):
            pair = as_list(item)
            if len(pair) != 2:
                raise DecodeError("public share entries are pairs")
            shares.append((as_int(pair[0]), as_point(pair[1])))
        try:
            return cls(
                as_int(f[0]),
                tuple(as_int(v) for v in as_list(f[1])),
                as_int(f[2]),
                as_point(f[3]),
                tuple(shares),
                as_bytes(f[5]),
                as_bytes(f[6]),
                as_int(f[7]),
                as_int(f[8]),
            )
        except InvalidInput as exc:
            raise DecodeError(str(exc)) from exc


@dataclass(frozen=True, slots=True)
class AuxPublic:
    """A party's public auxiliary data: Paillier key and ring-Pedersen parameters."""

    paillier: PaillierPublicKey
    rp: RingPedersenParams

    def to_value(self) -> Value:
        return [self.paillier.n, self.rp.n, self.rp.s, self.rp.t]

    @classmethod
    def from_value(cls, v: Decoded, level: SecurityLevel) -> AuxPublic:
        f = as_list(v)
        if len(f) != 4:
            raise DecodeError("aux public has 4 fields")
        out = cls(PaillierPublicKey(as_int(f[0])), RingPedersenParams(as_int(f[1]), as_int(f[2]), as_int(f[3])))
        try:
            out.paillier.check(level.modulus_bits)
            out.rp.check(level.modulus_bits)
        except InvalidInput as exc:
            raise DecodeError(str(exc)) from exc
        return out


@dataclass(frozen=True, slots=True)
class AuxInfo:
    """One party's auxiliary information: everyone's public aux data and its own Paillier secret."""

    party: int
    level: SecurityLevel
    public: tuple[tuple[int, AuxPublic], ...]
    epoch_id: bytes
    paillier_secret: PaillierSecretKey = field(repr=False)

    def __post_init__(self) -> None:
        if dict(self.public).get(self.party, None) is None:
            raise InvalidInput("aux info lacks the owner's public data")
        if dict(self.public)[self.party].paillier != self.paillier_secret.public:
            raise InvalidInput("Paillier secret does not match the published key")

    def of(self, j: int) -> AuxPublic:
        """Party j's public aux data."""
        return dict(self.public)[j]

    def to_bytes(self) -> bytes:
        """Storage encoding (contains the Paillier secret: encrypt it at rest)."""
        return encode(
            "aux_info/v1",
            self.party,
            self.level.name,
            [[j, a.to_value()] for j, a in self.public],
            self.epoch_id,
            self.paillier_secret.p,
            self.paillier_secret.q,
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> AuxInfo:
        """Decode and validate stored aux info."""
        f = decode("aux_info/v1", data, 6)
        level = level_by_name(str(f[1]))
        public = []
        for item in as_list(f[2]):
            pair = as_list(item)
            if len(pair) != 2:
                raise DecodeError("aux entries are pairs")
            public.append((as_int(pair[0]), AuxPublic.from_value(pair[1], level)))
        try:
            return cls(
                as_int(f[0]), level, tuple(public), as_bytes(f[3]), PaillierSecretKey(as_int(f[4]), as_int(f[5]))
            )
        except InvalidInput as exc:
            raise DecodeError(str(exc)) from exc
