"""CGGMP24 signing (Fig. 10): one round of partial signatures, and the combiner.

Each signer i of the presignature's set S sends σ_i = k̃_i·(m + r·τ) + r·χ̃_i (mod q), with
m = the 32-byte digest as an integer mod q, r = R.x mod q, τ the HD tweak of the path fixed at
presigning. As Σ k̃_i = 1/γ and Σ χ̃_i = x/γ, σ = Σ σ_i = γ^-1·(m + r·(x + τ)): an ECDSA signature
with nonce γ (R = γ·G) under the derived key X + τ·G.

Anyone holding the PresignaturePublic checks each σ_j on its own:
σ_j·R = (m + r·τ)·Δ̃_j + r·S̃_j, since Δ̃_j = k̃_j·R and S̃_j = χ̃_j·R.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass

from coincurve import PublicKey

from .curve import Point, Q, check_scalar
from .errors import Blame, DecodeError, InternalError, InvalidInput, ProtocolAbort
from .key_share import AuxInfo, KeyShare
from .presignature import Presignature, PresignaturePublic

ROUND = "sign"
DIGEST_BYTES = 32


@dataclass(frozen=True, slots=True)
class PartialSignature:
    """σ_j of signer j."""

    party: int
    sigma: int


@dataclass(frozen=True, slots=True)
class Signature:
    """A standard secp256k1 ECDSA signature (r, s) with low s, and its recovery id v ∈ {0, 1, 2, 3}."""

    r: int
    s: int
    v: int

    def __post_init__(self) -> None:
        if not (0 < self.r < Q and 0 < self.s <= Q // 2 and self.v in (0, 1, 2, 3)):
            raise InvalidInput("signature values out of range (s must be low)")

    def to_der(self) -> bytes:
        """DER SEQUENCE { INTEGER r, INTEGER s } (what Bitcoin and `cryptography` verify)."""
        body = _der_int(self.r) + _der_int(self.s)
        return b"\x30" + bytes([len(body)]) + body

    def to_bytes(self) -> bytes:
        """65 bytes r ‖ s ‖ v (v the raw recovery id 0..3; chains map it to their own v)."""
        return self.r.to_bytes(32, "big") + self.s.to_bytes(32, "big") + bytes([self.v])


def _der_int(x: int) -> bytes:
    body = x.to_bytes((x.bit_length() + 7) // 8 or 1, "big")
    if body[0] & 0x80:
        body = b"\x00" + body
    return b"\x02" + bytes([len(body)]) + body


class PresignatureHandle:
    """A presignature that can produce exactly one partial signature; a second use is refused.

    A presignature is a one-time nonce: two partial signatures from it on different digests
    reveal the signer's share. The handle enforces that in memory; the node must also delete
    the stored presignature durably before σ_i leaves (a crash may lose one, never reuse it).

    The service may only ever pass digests it computed itself from a transaction it checked.
    With presignatures, a signer that signs a raw caller-chosen digest, or whose HD path is
    chosen after presigning, lets an attacker extract the key (Groth–Shoup, CVE-2025-66017):
    the path is fixed at presigning start, and the digest must never come from the caller.
    """

    __slots__ = ("_lock", "_presignature", "_used")

    def __init__(self, presignature: Presignature) -> None:
        self._presignature = presignature
        self._used = False
        self._lock = threading.Lock()

    @classmethod
    def open(cls, presignature: Presignature, key_share: KeyShare, aux: AuxInfo) -> PresignatureHandle:
        """A handle after checking the presignature belongs to this party's current key share and aux info.

        A refresh voids every presignature of the old epoch; a presignature of another signing
        set or key is never usable.
        """
        if key_share.party != aux.party or presignature.party != key_share.party:
            raise InvalidInput("presignature, key share and aux info belong to different parties")
        if key_share.party not in presignature.signers:
            raise InvalidInput("this party is outside the presignature's signing set")
        if presignature.key_fingerprint != key_share.key_fingerprint():
            raise InvalidInput("presignature belongs to another key")
        if presignature.epoch != key_share.epoch or presignature.aux_epoch != aux.epoch_id:
            raise InvalidInput("presignature belongs to another epoch")
        return cls(presignature)

    @property
    def public(self) -> PresignaturePublic:
        """The presignature's public data."""
        return self._presignature.public

    def take(self) -> Presignature:
        """The presignature, once; InvalidInput afterwards."""
        with self._lock:
            if self._used:
                raise InvalidInput("presignature already used")
            self._used = True
            return self._presignature


def _message_scalar(digest: bytes) -> int:
    if not isinstance(digest, bytes) or len(digest) != DIGEST_BYTES:
        raise InvalidInput("digest must be exactly 32 bytes")
    return int.from_bytes(digest, "big") % Q


def _nonce_x(R: Point) -> int:
    r = R.x() % Q
    if r == 0:
        raise InternalError("R.x ≡ 0 mod q")
    return r


def partial_sign(handle: PresignatureHandle, digest: bytes) -> PartialSignature:
    """σ_i = k̃_i·(m + r·τ) + r·χ̃_i mod q over a 32-byte digest the service computed itself."""
    m = _message_scalar(digest)
    presig = handle.take()
    r = _nonce_x(presig.R)
    sigma = (presig.k_tilde * ((m + r * presig.tweak) % Q) + r * presig.chi_tilde) % Q
    public = presig.public
    if not _partial_ok(public, presig.party, sigma, m, r):
        raise InternalError("own partial signature does not match the presignature's public data")
    return PartialSignature(presig.party, sigma)


def _partial_ok(public: PresignaturePublic, j: int, sigma: int, m: int, r: int) -> bool:
    lhs = public.R * sigma
    rhs = public.delta_tilde_of(j) * ((m + r * public.tweak) % Q) + public.s_tilde_of(j) * r
    return lhs == rhs


def combine(public: PresignaturePublic, digest: bytes, partials: Mapping[int, PartialSignature]) -> Signature:
    """Check every σ_j, sum them, normalize to low s and return (r, s, v), verified under the derived key.

    Raises ProtocolAbort naming every signer whose σ_j fails (`partial_signature`); InvalidInput
    when the partials do not cover exactly the signing set; InternalError if the result does not
    verify although every partial did.
    """
    m = _message_scalar(digest)
    if set(partials) != set(public.signers):
        raise InvalidInput("partial signatures must come from exactly the presignature's signers")
    if any(p.party != j for j, p in partials.items()):
        raise InvalidInput("partial signature filed under the wrong party")
    r = _nonce_x(public.R)
    blames: list[Blame] = []
    for j in public.signers:
        sigma = partials[j].sigma
        try:
            check_scalar(sigma)
        except DecodeError:
            blames.append(Blame(j, ROUND, "partial_signature"))
            continue
        if not _partial_ok(public, j, sigma, m, r):
            blames.append(Blame(j, ROUND, "partial_signature", sigma.to_bytes(32, "big")))
    if blames:
        raise ProtocolAbort(blames)
    s = sum(partials[j].sigma for j in public.signers) % Q
    if s == 0:
        raise InternalError("s = 0 although every partial signature verified")
    R = public.R
    v = (1 if R.y_is_odd() else 0) | (2 if R.x() >= Q else 0)
    if s > Q // 2:
        s, v = Q - s, v ^ 1
    sig = Signature(r, s, v)
    _verify(public.public_key, digest, sig)
    return sig


def _verify(public_key: Point, digest: bytes, sig: Signature) -> None:
    """Independent check with libsecp256k1: the signature verifies and recovers the derived key."""
    key = public_key.to_bytes()
    try:
        ok = PublicKey(key).verify(sig.to_der(), digest, hasher=None)
        recovered = PublicKey.from_signature_and_message(sig.to_bytes(), digest, hasher=None).format(compressed=True)
    except Exception as exc:  # coincurve raises ValueError variants on malformed input
        raise InternalError(f"combined signature rejected by libsecp256k1: {exc}") from exc
    if not ok or recovered != key:
        raise InternalError("combined signature does not verify under the derived public key")
