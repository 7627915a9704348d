"""Reshare: the session context, the committed opening and one frozen type per round message.

Decoding checks types, byte lengths, canonical scalars and that every point is on the curve and
not the identity (the round's `decode` check). Whether an opening has the shape the sender's role
asks for (a Feldman vector of exactly t' points from a dealer, none from anyone else; a Schnorr
first message from a new party, none from anyone else) is a named check of the round, not of the
decoder, which only bounds lengths against oversized input.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from .committee import Committee
from .curve import Point, check_scalar
from .echo import Echo, echo_from_value, echo_value
from .encoding import Decoded, Value, as_bytes, as_int, as_list, as_point, decode, encode
from .errors import DecodeError
from .transcript import Transcript
from .vss import lagrange_at_zero
from .zk import sch

RID_BYTES = 32
"""Length of rid_i and of the commitment salt u_i."""
DIGEST_BYTES = 32

ROUND1 = "reshare/r1"
ROUND2 = "reshare/r2"
ROUND3 = "reshare/r3"
ROUND4 = "reshare/r4"


def _fixed_bytes(v: Decoded, n: int, what: str) -> bytes:
    b = as_bytes(v)
    if len(b) != n:
        raise DecodeError(f"{what} must be {n} bytes")
    return b


@dataclass(frozen=True, slots=True)
class ReshareContext:
    """What every round of one reshare knows.

    `old` is the committee the key moves from, `dealers` the live old parties S (at least the old
    threshold) that re-deal their shares, `new_parties` and `new_threshold` the committee it moves
    to. The session's parties are S ∪ P'; a party in both plays both roles.
    """

    session_id: bytes
    party: int
    old: Committee
    dealers: tuple[int, ...]
    new_parties: tuple[int, ...]
    new_threshold: int

    @property
    def parties(self) -> tuple[int, ...]:
        """Everyone who takes part: the dealers and the new committee."""
        return tuple(sorted(set(self.dealers) | set(self.new_parties)))

    def is_dealer(self, i: int) -> bool:
        """True for a party of S."""
        return i in self.dealers

    def is_new(self, i: int) -> bool:
        """True for a party of the new committee."""
        return i in self.new_parties

    def lagrange(self, i: int) -> int:
        """λ_i over S: Σ_{i∈S} λ_i·x_i = x."""
        return lagrange_at_zero(i, self.dealers)

    def digest(self) -> bytes:
        """H(session, old committee, S, P', t'): the parameters every party must agree on."""
        data = encode(
            "reshare/context/v1",
            self.session_id,
            self.old.to_value(),
            list(self.dealers),
            list(self.new_parties),
            self.new_threshold,
        )
        return hashlib.sha256(data).digest()

    def transcript(self, prover: int, rid: bytes) -> Transcript:
        """The Fiat–Shamir context of a new party's Πsch (session, round, prover, new rid)."""
        return Transcript.for_proof(self.session_id + ROUND3.encode(), prover, rid)

    def commitment(self, sender: int, opening: ReshareOpening) -> bytes:
        """V_sender = H(context digest, sender, opening)."""
        data = encode("reshare/hash_com", self.digest(), sender, opening.to_value())
        return hashlib.sha256(data).digest()


@dataclass(frozen=True, slots=True)
class ReshareOpening:
    """What party i commits to in round 1 and reveals in round 2.

    rid_i (32 random bytes, from every party), the Feldman commitment F_i = (a_0·G, …, a_{t'−1}·G)
    of its re-dealing polynomial (dealers only; empty otherwise), the first message A_i of its
    Schnorr proof of x'_i in round 3 (new parties only; empty otherwise) and the salt u_i.
    """

    rid: bytes
    F: tuple[Point, ...]
    A: tuple[Point, ...]
    u: bytes

    def to_value(self) -> Value:
        return [self.rid, list(self.F), list(self.A), self.u]

    @classmethod
    def from_value(cls, v: Decoded, max_terms: int) -> ReshareOpening:
        f = as_list(v)
        if len(f) != 4:
            raise DecodeError("reshare opening has 4 fields")
        raw_F, raw_A = as_list(f[1]), as_list(f[2])
        # Bounded before any point is parsed; the exact lengths are the round's named checks.
        if len(raw_F) > max_terms or len(raw_A) > 1:
            raise DecodeError("reshare opening vectors too long")
        return cls(
            rid=_fixed_bytes(f[0], RID_BYTES, "rid"),
            F=tuple(as_point(p) for p in raw_F),
            A=tuple(as_point(p) for p in raw_A),
            u=_fixed_bytes(f[3], RID_BYTES, "u"),
        )


@dataclass(frozen=True, slots=True)
class ReshareRound1Broadcast:
    """Round 1: the context digest the sender runs under, and its hash commitment V_i."""

    context: bytes
    commitment: bytes

    def encode(self) -> bytes:
        return encode("reshare/r1/bcast", self.context, self.commitment)

    @classmethod
    def decode(cls, data: bytes) -> ReshareRound1Broadcast:
        context, commitment = decode("reshare/r1/bcast", data, 2)
        return cls(_fixed_bytes(context, DIGEST_BYTES, "context"), _fixed_bytes(commitment, DIGEST_BYTES, "commitment"))


@dataclass(frozen=True, slots=True)
class ReshareRound2Broadcast:
    """Round 2 (broadcast): the opening of V_i and the echo of every round-1 broadcast."""

    opening: ReshareOpening
    echo: Echo

    def encode(self) -> bytes:
        return encode("reshare/r2/bcast", self.opening.to_value(), echo_value(self.echo))

    @classmethod
    def decode(cls, data: bytes, max_terms: int) -> ReshareRound2Broadcast:
        opening, echo = decode("reshare/r2/bcast", data, 2)
        return cls(ReshareOpening.from_value(opening, max_terms), echo_from_value(echo))


@dataclass(frozen=True, slots=True)
class ReshareRound2Direct:
    """Round 2 (dealer i to new party j only, encrypted by the transport): σ_{i→j} = f_i(j)."""

    sigma: int

    def __repr__(self) -> str:
        return "ReshareRound2Direct(sigma=<secret>)"

    def encode(self) -> bytes:
        return encode("reshare/r2/direct", self.sigma)

    @classmethod
    def decode(cls, data: bytes) -> ReshareRound2Direct:
        (v,) = decode("reshare/r2/direct", data, 1)
        return cls(check_scalar(as_int(v)))


@dataclass(frozen=True, slots=True)
class ReshareRound3Broadcast:
    """Round 3: the echo of every round-2 broadcast and, from a new party, the Πsch answer z_j.

    The proof's first message A_j was committed in round 1 and revealed in round 2, so only z_j
    travels; an old-only party sends no answer (`z` is None).
    """

    echo: Echo
    z: int | None

    def proof(self, A: Point) -> sch.Proof | None:
        """The Schnorr proof (A, z) with the committed first message, or None without an answer."""
        return None if self.z is None else sch.Proof(A, self.z)

    def encode(self) -> bytes:
        return encode("reshare/r3/bcast", echo_value(self.echo), [] if self.z is None else [self.z])

    @classmethod
    def decode(cls, data: bytes) -> ReshareRound3Broadcast:
        echo, raw_z = decode("reshare/r3/bcast", data, 2)
        z = as_list(raw_z)
        if len(z) > 1:
            raise DecodeError("at most one Schnorr answer")
        return cls(echo_from_value(echo), check_scalar(as_int(z[0])) if z else None)


@dataclass(frozen=True, slots=True)
class ReshareRound4Broadcast:
    """Round 4: the echo of every round-3 broadcast and the digest of the sender's public output.

    Nobody outputs until every party confirmed it saw the same Schnorr answers and computed the
    same public output (a round-3 message shown to one party only cannot split the outcome).
    """

    echo: Echo
    output: bytes

    def encode(self) -> bytes:
        return encode("reshare/r4/bcast", echo_value(self.echo), self.output)

    @classmethod
    def decode(cls, data: bytes) -> ReshareRound4Broadcast:
        echo, output = decode("reshare/r4/bcast", data, 2)
        return cls(echo_from_value(echo), _fixed_bytes(output, DIGEST_BYTES, "output digest"))
