"""A signer's identity: an Ed25519 key that signs every outgoing envelope and an X25519 key that
receives point-to-point payloads. Peers' public keys come from the cluster configuration.

Direct payloads are sealed with X25519 + HKDF-SHA256 + ChaCha20-Poly1305, the key bound to the
session, round, sender and recipient, so the relaying coordinator can neither read nor move them.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from signer.tss.encoding import encode

_RAW = serialization.Encoding.Raw
_RAW_PUB = serialization.PublicFormat.Raw
_RAW_PRIV = serialization.PrivateFormat.Raw
_NOENC = serialization.NoEncryption()


class EnvelopeError(Exception):
    """An envelope failed authentication or decryption; `check` names what failed."""

    def __init__(self, check: str) -> None:
        super().__init__(check)
        self.check = check


@dataclass(frozen=True, slots=True)
class PeerKeys:
    """A party's public identity: Ed25519 verification key and X25519 encryption key (raw bytes)."""

    party: int
    sign_pub: bytes
    enc_pub: bytes


@dataclass(frozen=True, slots=True)
class Identity:
    """A party's private identity keys."""

    party: int
    sign_key: Ed25519PrivateKey = field(repr=False)
    enc_key: X25519PrivateKey = field(repr=False)

    @classmethod
    def generate(cls, party: int) -> Identity:
        """Fresh keys."""
        return cls(party, Ed25519PrivateKey.generate(), X25519PrivateKey.generate())

    @classmethod
    def from_bytes(cls, party: int, data: bytes) -> Identity:
        """From the 64-byte private encoding (Ed25519 seed || X25519 scalar)."""
        if len(data) != 64:
            raise ValueError("identity must be 64 bytes")
        return cls(
            party, Ed25519PrivateKey.from_private_bytes(data[:32]), X25519PrivateKey.from_private_bytes(data[32:])
        )

    def to_bytes(self) -> bytes:
        """Private encoding (store it encrypted)."""
        return self.sign_key.private_bytes(_RAW, _RAW_PRIV, _NOENC) + self.enc_key.private_bytes(
            _RAW, _RAW_PRIV, _NOENC
        )

    def public(self) -> PeerKeys:
        """The public half, for the cluster configuration."""
        return PeerKeys(
            self.party,
            self.sign_key.public_key().public_bytes(_RAW, _RAW_PUB),
            self.enc_key.public_key().public_bytes(_RAW, _RAW_PUB),
        )


def signed_bytes(
    session_id: bytes, protocol: str, round_name: str, sender: int, recipient: int, payload: bytes
) -> bytes:
    """What the sender's Ed25519 signature covers."""
    return encode("envelope/v1", session_id, protocol, round_name, sender, recipient, payload)


def sign(
    identity: Identity, session_id: bytes, protocol: str, round_name: str, recipient: int, payload: bytes
) -> bytes:
    """Ed25519 signature of the envelope fields."""
    return identity.sign_key.sign(signed_bytes(session_id, protocol, round_name, identity.party, recipient, payload))


def verify(
    peer: PeerKeys, session_id: bytes, protocol: str, round_name: str, recipient: int, payload: bytes, signature: bytes
) -> None:
    """Raise EnvelopeError("signature") unless the peer signed exactly these fields."""
    try:
        Ed25519PublicKey.from_public_bytes(peer.sign_pub).verify(
            signature, signed_bytes(session_id, protocol, round_name, peer.party, recipient, payload)
        )
    except (InvalidSignature, ValueError):
        raise EnvelopeError("signature") from None


def _direct_key(me: Identity, peer: PeerKeys, session_id: bytes, round_name: str, sender: int, recipient: int) -> bytes:
    shared = me.enc_key.exchange(X25519PublicKey.from_public_bytes(peer.enc_pub))
    info = encode("direct/v1", session_id, round_name, sender, recipient)
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(shared)


def seal(me: Identity, peer: PeerKeys, session_id: bytes, round_name: str, payload: bytes) -> bytes:
    """Encrypt a direct payload from `me` to `peer`."""
    key = _direct_key(me, peer, session_id, round_name, me.party, peer.party)
    nonce = secrets.token_bytes(12)
    return nonce + ChaCha20Poly1305(key).encrypt(nonce, payload, None)


def open_sealed(me: Identity, peer: PeerKeys, session_id: bytes, round_name: str, sealed: bytes) -> bytes:
    """Decrypt a direct payload sent by `peer` to `me`; EnvelopeError("decrypt") on failure."""
    if len(sealed) < 12 + 16:
        raise EnvelopeError("decrypt")
    key = _direct_key(me, peer, session_id, round_name, peer.party, me.party)
    try:
        return ChaCha20Poly1305(key).decrypt(sealed[:12], sealed[12:], None)
    except InvalidTag:
        raise EnvelopeError("decrypt") from None
