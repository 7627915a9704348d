"""Threshold keygen: the message of each round, the committed opening and its hash commitment.

One frozen type per round message (`KeygenRound1Broadcast`, `KeygenRound2Broadcast`,
`KeygenRound2Direct`, `KeygenRound3Broadcast`). Decoding checks types, byte lengths, canonical
scalars and that every point is on the curve and not the identity (a failure there is the round's
`decode` check). The length of the Feldman vector is only bounded here (against oversized input);
whether it is exactly t is the round's named check `vss_length`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from .curve import Point, check_scalar
from .echo import Echo, echo_from_value, echo_value
from .encoding import Decoded, Value, as_bytes, as_int, as_list, as_point, decode, encode
from .errors import DecodeError
from .zk import sch

RID_BYTES = 32
"""Length of rid_i, of the chain-code contribution c_i and of the commitment salt u_i."""
COMMITMENT_BYTES = 32

ROUND1 = "keygen/r1"
ROUND2 = "keygen/r2"
ROUND3 = "keygen/r3"
ROUND4 = "keygen/r4"


def _fixed_bytes(v: Decoded, n: int, what: str) -> bytes:
    b = as_bytes(v)
    if len(b) != n:
        raise DecodeError(f"{what} must be {n} bytes")
    return b


@dataclass(frozen=True, slots=True)
class KeygenOpening:
    """What party i commits to in round 1 and reveals in round 2.

    rid_i and the chain-code contribution c_i (32 random bytes each), the Feldman commitment
    F_i = (a_0·G, …, a_{t−1}·G) of its polynomial f_i, the Schnorr first message A_i for the proof
    of x_i in round 3, and the salt u_i that hides the rest.
    """

    rid: bytes
    chain_code: bytes
    F: tuple[Point, ...]
    A: Point
    u: bytes

    def to_value(self) -> Value:
        return [self.rid, self.chain_code, list(self.F), self.A, self.u]

    @classmethod
    def from_value(cls, v: Decoded, max_terms: int) -> KeygenOpening:
        f = as_list(v)
        if len(f) != 5:
            raise DecodeError("keygen opening has 5 fields")
        raw_F = as_list(f[2])
        # Bounded before any point is parsed; the exact length t is the round's `vss_length` check.
        if not 1 <= len(raw_F) <= max_terms:
            raise DecodeError(f"Feldman commitment must have 1..{max_terms} points")
        return cls(
            rid=_fixed_bytes(f[0], RID_BYTES, "rid"),
            chain_code=_fixed_bytes(f[1], RID_BYTES, "chain code"),
            F=tuple(as_point(p) for p in raw_F),
            A=as_point(f[3]),
            u=_fixed_bytes(f[4], RID_BYTES, "u"),
        )


def commitment_hash(
    session_id: bytes, parties: tuple[int, ...], threshold: int, sender: int, opening: KeygenOpening
) -> bytes:
    """V_j = H(session id, parties, t, j, opening): party j's round-1 commitment."""
    data = encode("keygen/hash_com", session_id, list(parties), threshold, sender, opening.to_value())
    return hashlib.sha256(data).digest()


@dataclass(frozen=True, slots=True)
class KeygenRound1Broadcast:
    """Round 1: the hash commitment V_i."""

    commitment: bytes

    def encode(self) -> bytes:
        return encode("keygen/r1/bcast", self.commitment)

    @classmethod
    def decode(cls, data: bytes) -> KeygenRound1Broadcast:
        (v,) = decode("keygen/r1/bcast", data, 1)
        return cls(_fixed_bytes(v, COMMITMENT_BYTES, "commitment"))


@dataclass(frozen=True, slots=True)
class KeygenRound2Broadcast:
    """Round 2 (broadcast): the opening of V_i and the echo of every round-1 broadcast."""

    opening: KeygenOpening
    echo: Echo

    def encode(self) -> bytes:
        return encode("keygen/r2/bcast", self.opening.to_value(), echo_value(self.echo))

    @classmethod
    def decode(cls, data: bytes, max_terms: int) -> KeygenRound2Broadcast:
        opening, echo = decode("keygen/r2/bcast", data, 2)
        return cls(KeygenOpening.from_value(opening, max_terms), echo_from_value(echo))


@dataclass(frozen=True, slots=True)
class KeygenRound2Direct:
    """Round 2 (to party j only, encrypted by the transport): the share σ_{i→j} = f_i(j).

    No `repr`: the share is secret.
    """

    sigma: int

    def __repr__(self) -> str:
        return "KeygenRound2Direct(sigma=<secret>)"

    def encode(self) -> bytes:
        return encode("keygen/r2/direct", self.sigma)

    @classmethod
    def decode(cls, data: bytes) -> KeygenRound2Direct:
        (v,) = decode("keygen/r2/direct", data, 1)
        return cls(check_scalar(as_int(v)))


@dataclass(frozen=True, slots=True)
class KeygenRound3Broadcast:
    """Round 3: the echo of every round-2 broadcast and the Πsch answer z_i for X_i.

    The proof's first message A_i was committed in round 1 and revealed in round 2, so only z_i
    travels; the verifier rebuilds the proof from the A_i it holds (the prover cannot swap it).
    """

    echo: Echo
    z: int

    def proof(self, A: Point) -> sch.Proof:
        """The Schnorr proof (A, z) with the committed first message A."""
        return sch.Proof(A, self.z)

    def encode(self) -> bytes:
        return encode("keygen/r3/bcast", echo_value(self.echo), self.z)

    @classmethod
    def decode(cls, data: bytes) -> KeygenRound3Broadcast:
        echo, z = decode("keygen/r3/bcast", data, 2)
        return cls(echo_from_value(echo), check_scalar(as_int(z)))


@dataclass(frozen=True, slots=True)
class KeygenRound4Broadcast:
    """Round 4: the echo of every round-3 broadcast, so a party outputs its share only once every
    party confirms it saw the same Schnorr answers (nobody finishes while another aborts on a
    round-3 message shown only to it)."""

    echo: Echo

    def encode(self) -> bytes:
        return encode("keygen/r4/bcast", echo_value(self.echo))

    @classmethod
    def decode(cls, data: bytes) -> KeygenRound4Broadcast:
        (echo,) = decode("keygen/r4/bcast", data, 1)
        return cls(echo_from_value(echo))
