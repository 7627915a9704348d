"""A refreshed epoch's public data, the signers' signed confirmations of it, and the check that
every party of the key confirmed the same data (docs/protocol.md, Refresh: two-phase adoption).

A refresh session's public output is `refresh_public(new share, new aux info)`: the public key,
chain code, threshold, parties, every new public share, the new epoch and the new aux info's
public data. Every honest party computes the same bytes; their SHA-256 is the epoch's `digest`.
Each party signs (Ed25519, identity key) an `EpochConfirmation` over (party, key id, new epoch,
digest). A signer adopts the epoch only holding one valid confirmation from every party of the
key over the digest it computed itself; the coordinator runs the same check before it commits.
Shared by the signer node and the coordinator (which imports it; the direction is coordinator →
signer).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from signer.policy import PolicyError
from signer.tss.encoding import as_bytes, as_int, as_list, as_point, as_str, decode, encode
from signer.tss.errors import DecodeError
from signer.tss.key_share import AuxInfo, KeyShare

from .identity import Identity

EPOCH_CONFIRMATION = "epoch_confirmation"
"""Refusal reason: a confirmation is missing, forged, of another party set, key, epoch or digest."""
_PUBLIC_TAG = "refresh/public/v1"
_CONFIRMATION_TAG = "epoch-confirmation/v1"


def refresh_public(share: KeyShare, info: AuxInfo) -> bytes:
    """The public output of a refresh, identical at every honest party."""
    return encode(
        _PUBLIC_TAG,
        share.public_key,
        share.chain_code,
        share.threshold,
        list(share.parties),
        [[j, p] for j, p in share.public_shares],
        share.epoch,
        info.epoch_id,
        [[j, a.to_value()] for j, a in info.public],
    )


def epoch_digest(public_output: bytes) -> bytes:
    """What the confirmations sign: SHA-256 of the refresh's public output."""
    return hashlib.sha256(public_output).digest()


@dataclass(frozen=True, slots=True)
class RefreshPublic:
    """The parts of a refresh's public output the coordinator records."""

    public_key: bytes
    threshold: int
    parties: tuple[int, ...]
    epoch: int
    aux_epoch: bytes

    @classmethod
    def from_bytes(cls, data: bytes) -> RefreshPublic:
        """Decode `refresh_public` output (DecodeError when malformed)."""
        f = decode(_PUBLIC_TAG, data, 8)
        return cls(
            as_point(f[0]).to_bytes(),
            as_int(f[2]),
            tuple(as_int(p) for p in as_list(f[3])),
            as_int(f[5]),
            as_bytes(f[6]),
        )


@dataclass(frozen=True, slots=True)
class EpochConfirmation:
    """Party `party` holds the pending epoch `epoch` of `key_id` whose public data hashes to `digest`."""

    party: int
    key_id: str
    epoch: int
    digest: bytes
    signature: bytes = field(default=b"", repr=False)

    def body(self) -> bytes:
        """The injective encoding the signature covers."""
        return encode(_CONFIRMATION_TAG, self.party, self.key_id, self.epoch, self.digest)

    @classmethod
    def signed(cls, identity: Identity, key_id: str, epoch: int, digest: bytes) -> EpochConfirmation:
        """This node's confirmation."""
        unsigned = cls(identity.party, key_id, epoch, digest)
        return cls(identity.party, key_id, epoch, digest, identity.sign_key.sign(unsigned.body()))

    def to_bytes(self) -> bytes:
        """Wire form (SessionStep.confirmation, CommitEpochRequest.confirmations)."""
        return encode(_CONFIRMATION_TAG, self.body(), self.signature)

    @classmethod
    def from_bytes(cls, data: bytes) -> EpochConfirmation:
        """Decode (DecodeError when malformed); the signature is not checked here."""
        body, sig = decode(_CONFIRMATION_TAG, data, 2)
        party, key_id, epoch, digest = decode(_CONFIRMATION_TAG, as_bytes(body), 4)
        return cls(as_int(party), as_str(key_id), as_int(epoch), as_bytes(digest), as_bytes(sig))

    def verify(self, sign_pub: bytes) -> None:
        """Raise `PolicyError(epoch_confirmation)` unless the holder of `sign_pub` signed this body."""
        try:
            Ed25519PublicKey.from_public_bytes(sign_pub).verify(self.signature, self.body())
        except (InvalidSignature, ValueError):
            raise PolicyError(EPOCH_CONFIRMATION, f"party {self.party}'s confirmation is not signed by it") from None


def check_confirmations(
    confirmations: Sequence[bytes],
    *,
    key_id: str,
    epoch: int,
    digest: bytes,
    parties: Sequence[int],
    sign_keys: Mapping[int, bytes],
) -> None:
    """Every party of the key confirmed exactly (key_id, epoch, digest) under its identity key.

    Raises `PolicyError(epoch_confirmation)` naming the first problem: an unreadable confirmation,
    a party outside the key, a second one from the same party, another key, epoch or digest, a bad
    signature, or a party missing.
    """
    seen: set[int] = set()
    for raw in confirmations:
        try:
            c = EpochConfirmation.from_bytes(raw)
        except DecodeError as exc:
            raise PolicyError(EPOCH_CONFIRMATION, f"unreadable confirmation: {exc}") from None
        if c.party not in parties or c.party not in sign_keys:
            raise PolicyError(EPOCH_CONFIRMATION, f"confirmation from party {c.party}, not of the key")
        if c.party in seen:
            raise PolicyError(EPOCH_CONFIRMATION, f"two confirmations from party {c.party}")
        if (c.key_id, c.epoch) != (key_id, epoch):
            raise PolicyError(EPOCH_CONFIRMATION, f"party {c.party} confirmed {c.key_id!r} epoch {c.epoch}")
        if c.digest != digest:
            raise PolicyError(EPOCH_CONFIRMATION, f"party {c.party} confirmed other public data")
        c.verify(sign_keys[c.party])
        seen.add(c.party)
    missing = sorted(set(parties) - seen)
    if missing:
        raise PolicyError(EPOCH_CONFIRMATION, f"no confirmation from parties {missing}")
