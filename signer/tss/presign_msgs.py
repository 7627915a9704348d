"""Wire messages of CGGMP24 presigning (Fig. 8), one frozen dataclass per round and direction.

Every `decode` validates each field against what the receiver knows (the sender's and its own
Paillier keys): ciphertexts in Z*_{N²}, points on the curve and not the identity, scalars
canonical, proofs well-typed. A DecodeError blames the sender with check "decode". The ranges
and equations of the proofs are checked by the proofs' `verify`, not here.

Notation: the sender is j, the receiver i (the receiver's view of the paper's indices).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from .curve import Point, check_scalar
from .echo import Echo, echo_from_value, echo_value
from .encoding import Decoded, Value, as_bytes, as_int, as_list, as_point, decode, encode
from .errors import DecodeError
from .paillier import PaillierPublicKey
from .zk import aff_g, elog, enc_elg

R1_BROADCAST = "presign/r1/bcast"
R1_DIRECT = "presign/r1/direct"
R2_BROADCAST = "presign/r2/bcast"
R2_DIRECT = "presign/r2/direct"
R3_BROADCAST = "presign/r3/bcast"
R4_BROADCAST = "presign/r4/bcast"
R2_MTA_COMMITMENT = "presign/r2/mta"

MtaCommitments = tuple[tuple[int, bytes], ...]
"""(recipient, commitment) pairs, recipients ascending."""


def mta_commitment(session_id: bytes, sender: int, recipient: int, D: int, F: int, D_hat: int, F_hat: int) -> bytes:
    """SHA-256 over the MtA values (D, F, D̂, F̂) sender sent to recipient in round 2.

    Round 2's broadcast carries one per recipient, so the direct values are fixed for every
    signer and the identification round (Fig. 9, presign_identify.py) can open them to all.
    """
    return hashlib.sha256(encode(R2_MTA_COMMITMENT, session_id, sender, recipient, D, F, D_hat, F_hat)).digest()


def _commitments_value(c: MtaCommitments) -> Value:
    return [[j, h] for j, h in c]


def _commitments_from_value(v: Decoded) -> MtaCommitments:
    out: list[tuple[int, bytes]] = []
    for item in as_list(v):
        pair = as_list(item)
        if len(pair) != 2:
            raise DecodeError("MtA commitments are (recipient, hash) pairs")
        j, h = as_int(pair[0]), as_bytes(pair[1])
        if len(h) != 32 or (out and j <= out[-1][0]):
            raise DecodeError("MtA commitments: 32-byte hashes, recipients ascending")
        out.append((j, h))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class PresignRound1Broadcast:
    """(K_j, G_j, Y_j, A_j1, A_j2, B_j1, B_j2): Paillier encryptions of k_j, γ_j and their ElGamal commitments."""

    K: int
    G: int
    Y: Point
    A1: Point
    A2: Point
    B1: Point
    B2: Point

    def encode(self) -> bytes:
        return encode(R1_BROADCAST, self.K, self.G, self.Y, self.A1, self.A2, self.B1, self.B2)

    @classmethod
    def decode(cls, data: bytes, sender_pk: PaillierPublicKey) -> PresignRound1Broadcast:
        """K, G must be units mod N_j² of the sender's key."""
        f = decode(R1_BROADCAST, data, 7)
        return cls(
            sender_pk.check_ciphertext(as_int(f[0])),
            sender_pk.check_ciphertext(as_int(f[1])),
            as_point(f[2]),
            as_point(f[3]),
            as_point(f[4]),
            as_point(f[5]),
            as_point(f[6]),
        )


@dataclass(frozen=True, slots=True)
class PresignRound1Direct:
    """ψ0 (Πenc-elg for K_j) and ψ1 (Πenc-elg for G_j), under the receiver's ring-Pedersen parameters."""

    psi0: enc_elg.Proof
    psi1: enc_elg.Proof

    def encode(self) -> bytes:
        return encode(R1_DIRECT, self.psi0.to_value(), self.psi1.to_value())

    @classmethod
    def decode(cls, data: bytes) -> PresignRound1Direct:
        f = decode(R1_DIRECT, data, 2)
        return cls(enc_elg.Proof.from_value(f[0]), enc_elg.Proof.from_value(f[1]))


@dataclass(frozen=True, slots=True)
class PresignRound2Broadcast:
    """Γ_j = γ_j·G, ψ_j (Πelog tying Γ_j to (B_j1, B_j2)), the echo of round 1's broadcasts, and
    `mta`: the `mta_commitment` of the direct MtA values sent to each other signer."""

    Gamma: Point
    psi_elog: elog.Proof
    echo: Echo
    mta: MtaCommitments

    def encode(self) -> bytes:
        return encode(
            R2_BROADCAST, self.Gamma, self.psi_elog.to_value(), echo_value(self.echo), _commitments_value(self.mta)
        )

    @classmethod
    def decode(cls, data: bytes) -> PresignRound2Broadcast:
        f = decode(R2_BROADCAST, data, 4)
        return cls(as_point(f[0]), elog.Proof.from_value(f[1]), echo_from_value(f[2]), _commitments_from_value(f[3]))


@dataclass(frozen=True, slots=True)
class PresignRound2Direct:
    """The MtA messages from j to i: D_{i,j}, F_{i,j} (for γ_j) and D̂_{i,j}, F̂_{i,j} (for x_j'), with their Πaff-g.

    D, D̂ are under the receiver's key N_i; F, F̂ under the sender's key N_j.
    """

    D: int
    F: int
    D_hat: int
    F_hat: int
    psi: aff_g.Proof
    psi_hat: aff_g.Proof

    def encode(self) -> bytes:
        return encode(R2_DIRECT, self.D, self.F, self.D_hat, self.F_hat, self.psi.to_value(), self.psi_hat.to_value())

    @classmethod
    def decode(cls, data: bytes, receiver_pk: PaillierPublicKey, sender_pk: PaillierPublicKey) -> PresignRound2Direct:
        f = decode(R2_DIRECT, data, 6)
        return cls(
            receiver_pk.check_ciphertext(as_int(f[0])),
            sender_pk.check_ciphertext(as_int(f[1])),
            receiver_pk.check_ciphertext(as_int(f[2])),
            sender_pk.check_ciphertext(as_int(f[3])),
            aff_g.Proof.from_value(f[4]),
            aff_g.Proof.from_value(f[5]),
        )


@dataclass(frozen=True, slots=True)
class PresignRound3Broadcast:
    """δ_j, Δ_j = k_j·Γ, S_j = χ_j·Γ, ψ'_j (Πelog tying Δ_j to (A_j1, A_j2)), and the echo of round 2."""

    delta: int
    Delta: Point
    S: Point
    psi_prime: elog.Proof
    echo: Echo

    def encode(self) -> bytes:
        return encode(R3_BROADCAST, self.delta, self.Delta, self.S, self.psi_prime.to_value(), echo_value(self.echo))

    @classmethod
    def decode(cls, data: bytes) -> PresignRound3Broadcast:
        f = decode(R3_BROADCAST, data, 5)
        return cls(
            check_scalar(as_int(f[0])),
            as_point(f[1]),
            as_point(f[2]),
            elog.Proof.from_value(f[3]),
            echo_from_value(f[4]),
        )


@dataclass(frozen=True, slots=True)
class PresignRound4Broadcast:
    """The echo of round 3's broadcasts (δ_j feeds the output, so it must be the same everywhere)."""

    echo: Echo

    def encode(self) -> bytes:
        return encode(R4_BROADCAST, echo_value(self.echo))

    @classmethod
    def decode(cls, data: bytes) -> PresignRound4Broadcast:
        f = decode(R4_BROADCAST, data, 1)
        return cls(echo_from_value(f[0]))
