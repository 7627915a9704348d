"""The public state of a key at one epoch (its committee) and the public output of a reshare.

A `Committee` is everything public about a key's sharing: the public key, the chain code, the
parties, the threshold, every party's public share X_k = x_k·G and the epoch. Old parties read it
off their `KeyShare`; a party joining the key receives it from the operator (it is the public output
the old committee confirmed). `ResharePublic` is what every party of a reshare ends with, old and
new alike; its `digest` is what each party later signs to confirm the adoption of the new epoch.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from .curve import Point
from .encoding import Decoded, Value, as_bytes, as_int, as_list, as_point, decode, encode
from .errors import DecodeError, InvalidInput
from .key_share import KeyShare
from .vss import check_indices, public_key_from_shares


@dataclass(frozen=True, slots=True)
class Committee:
    """Public key, chain code, parties, threshold t, public shares X_k and epoch of one sharing."""

    public_key: Point
    chain_code: bytes
    parties: tuple[int, ...]
    threshold: int
    public_shares: tuple[tuple[int, Point], ...]
    epoch: int

    def __post_init__(self) -> None:
        if check_indices(self.parties) != self.parties:
            raise InvalidInput("committee parties must be sorted")
        if not 2 <= self.threshold <= len(self.parties):
            raise InvalidInput("committee threshold must satisfy 2 <= t <= n")
        if tuple(k for k, _ in self.public_shares) != self.parties:
            raise InvalidInput("public shares must list every party in order")
        if len(self.chain_code) != 32:
            raise InvalidInput("chain code must be 32 bytes")
        if self.public_key.is_identity or any(X.is_identity for _, X in self.public_shares):
            raise InvalidInput("the public key and public shares are non-identity points")
        if not isinstance(self.epoch, int) or self.epoch < 0:
            raise InvalidInput("epoch must be a non-negative integer")

    @classmethod
    def of(cls, share: KeyShare) -> Committee:
        """The committee a key share belongs to."""
        return cls(share.public_key, share.chain_code, share.parties, share.threshold, share.public_shares, share.epoch)

    def public_share(self, k: int) -> Point:
        """X_k."""
        return dict(self.public_shares)[k]

    def check_consistent(self) -> None:
        """Raise InvalidInput unless every X_k lies on one degree t−1 polynomial through the key.

        The first t − 1 parties together with each further party k interpolate to the public key;
        this covers every party with n − t + 1 interpolations.
        """
        shares = dict(self.public_shares)
        base = self.parties[: self.threshold - 1]
        for k in self.parties[self.threshold - 1 :]:
            if public_key_from_shares(shares, (*base, k)) != self.public_key:
                raise InvalidInput(f"public share of party {k} is not on the key's sharing polynomial")

    def to_value(self) -> Value:
        """Encodable form (the input of every digest that names this committee)."""
        return [
            self.public_key,
            self.chain_code,
            list(self.parties),
            self.threshold,
            [[k, X] for k, X in self.public_shares],
            self.epoch,
        ]

    def digest(self) -> bytes:
        """SHA-256 of the committee's encoding."""
        return hashlib.sha256(self.to_bytes()).digest()

    def to_bytes(self) -> bytes:
        """The committee's encoding (what a joining party receives, what `digest` hashes)."""
        return encode("committee/v1", self.to_value())

    @classmethod
    def from_bytes(cls, data: bytes) -> Committee:
        """Decode and validate `to_bytes` output (DecodeError when malformed or invalid)."""
        return cls.from_value(decode("committee/v1", data, 1)[0])

    @classmethod
    def from_value(cls, v: Decoded) -> Committee:
        """The inverse of `to_value` (DecodeError when malformed or invalid)."""
        f = as_list(v)
        if len(f) != 6:
            raise DecodeError("a committee has 6 fields")
        shares = []
        for item in as_list(f[4]):
            pair = as_list(item)
            if len(pair) != 2:
                raise DecodeError("a public share is [party, point]")
            shares.append((as_int(pair[0]), as_point(pair[1])))
        try:
            return cls(
                as_point(f[0]),
                as_bytes(f[1]),
                tuple(as_int(p) for p in as_list(f[2])),
                as_int(f[3]),
                tuple(shares),
                as_int(f[5]),
            )
        except InvalidInput as exc:
            raise DecodeError(f"invalid committee: {exc}") from None


@dataclass(frozen=True, slots=True)
class ResharePublic:
    """The public output of a reshare, identical at every party that finishes it.

    `previous` is the digest of the committee the key moved from, `committee` the new one (same
    public key and chain code, epoch + 1), `rid` the new joint random identifier of the key.
    """

    session_id: bytes
    previous: bytes
    committee: Committee
    rid: bytes

    def digest(self) -> bytes:
        """What each party signs to confirm it adopts the new epoch (SHA-256 of `to_bytes`)."""
        return hashlib.sha256(self.to_bytes()).digest()

    def to_bytes(self) -> bytes:
        """The encoding every party of the reshare reports as its public output."""
        return encode("reshare/public-output/v1", self.session_id, self.previous, self.committee.to_value(), self.rid)

    @classmethod
    def from_bytes(cls, data: bytes) -> ResharePublic:
        """Decode `to_bytes` output (DecodeError when malformed or invalid)."""
        f = decode("reshare/public-output/v1", data, 4)
        return cls(as_bytes(f[0]), as_bytes(f[1]), Committee.from_value(f[2]), as_bytes(f[3]))


@dataclass(frozen=True, slots=True)
class ReshareOutput:
    """What one party ends a reshare with: the public output and, for a new party, its key share.

    An old party that is not in the new committee gets no share: it must delete its old one once the
    adoption is confirmed (deletion is what voids it; see docs/protocol.md, "Reshare").
    """

    public: ResharePublic
    share: KeyShare | None
