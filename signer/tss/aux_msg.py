"""Aux info / key refresh: the messages of every round and the state the rounds share.

One type per round message (`AuxRound1Broadcast`, `AuxRound2Broadcast`, `AuxRound3Broadcast`,
`AuxRound3Direct`), the session context, the secrets a party carries forward, the committed
opening and its commitment hash. Decoding checks types, lengths and points; the sizes and
structure of the moduli are the rounds' first named checks.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from .curve import Point, check_scalar
from .echo import Echo, echo_from_value
from .encoding import Decoded, RawPoint, Value, as_bytes, as_int, as_list, as_point, decode, encode
from .errors import DecodeError
from .key_share import KeyShare
from .paillier import PaillierPublicKey, PaillierSecretKey
from .params import SecurityLevel
from .ring_pedersen import RingPedersenParams
from .rng import Rng
from .transcript import Transcript
from .zk import fac, mod, prm, sch

RID_BYTES = 32
"""Length of rid_i and of the commitment nonce u_i (κ = 256 bits)."""

ROUND1 = "aux/r1"
ROUND2 = "aux/r2"
ROUND3 = "aux/r3"


@dataclass(frozen=True, slots=True)
class AuxContext:
    """What every round of one run knows: session, parties, level and (refresh) the old key share."""

    session_id: bytes
    party: int
    parties: tuple[int, ...]
    level: SecurityLevel
    rng: Rng = field(repr=False, compare=False)
    key_share: KeyShare | None = field(default=None, repr=False)

    @property
    def mode(self) -> str:
        """The protocol variant: `refresh` when a key share is refreshed too, else `aux`."""
        return "aux" if self.key_share is None else "refresh"

    @property
    def vss_len(self) -> int:
        """Length of each Feldman commitment vector: t for a refresh, none for plain aux info."""
        return 0 if self.key_share is None else self.key_share.threshold

    @property
    def sch_len(self) -> int:
        """Number of Schnorr proofs each party gives (one per share contribution in a refresh)."""
        return 0 if self.key_share is None else len(self.parties)

    @property
    def prm_rid(self) -> bytes:
        """The rid Πprm is bound to: it is proved in R1, before the joint rid exists, so a refresh
        binds it to the key's current rid and plain aux info to none (session and prover still are)."""
        return b"" if self.key_share is None else self.key_share.rid

    def transcript(self, proof: str, prover: int, rid: bytes) -> Transcript:
        """The Fiat–Shamir context of one proof: session, protocol mode, proof tag, prover, rid."""
        return Transcript.for_proof(encode("aux/proof", self.mode, self.session_id, proof), prover, rid)


@dataclass(frozen=True, slots=True)
class AuxSecrets:
    """What a party keeps secret across the rounds of one run."""

    paillier: PaillierSecretKey = field(repr=False)
    poly: tuple[int, ...] = field(default=(), repr=False)
    """Refresh: f_i with f_i(0) = 0, degree t − 1."""
    sch_nonces: tuple[sch.Nonce, ...] = field(default=(), repr=False)
    """Refresh: the Schnorr nonces behind A_i^k, in party order."""


def _as_point_or_identity(v: Decoded) -> Point:
    if isinstance(v, RawPoint) and bytes(v) == b"\x00":
        return Point.identity()
    return as_point(v)


def _as_fixed_bytes(v: Decoded, n: int, what: str) -> bytes:
    b = as_bytes(v)
    if len(b) != n:
        raise DecodeError(f"{what} must be {n} bytes")
    return b


@dataclass(frozen=True, slots=True)
class AuxOpening:
    """The public data a party commits to in R1 and reveals in R2.

    The integers are only type-checked when decoded; their sizes and structure are the round's
    first named checks (`modulus_size`, `modulus`, `rp_params`), before any proof runs.
    """

    paillier_n: int
    rp: RingPedersenParams
    prm_proof: prm.Proof
    rid: bytes
    vss: tuple[Point, ...]
    """Refresh: F_i = (F_0, …, F_{t−1}) with F_0 the identity; empty for plain aux info."""
    sch_commitments: tuple[Point, ...]
    """Refresh: A_i^k for each party k (in party order); empty for plain aux info."""
    u: bytes

    def to_value(self) -> Value:
        return [
            self.paillier_n,
            [self.rp.n, self.rp.s, self.rp.t],
            self.prm_proof.to_value(),
            self.rid,
            list(self.vss),
            list(self.sch_commitments),
            self.u,
        ]

    @classmethod
    def from_value(cls, v: Decoded, vss_len: int, sch_len: int) -> AuxOpening:
        f = as_list(v)
        if len(f) != 7:
            raise DecodeError("aux opening has 7 fields")
        rp = as_list(f[1])
        if len(rp) != 3:
            raise DecodeError("ring-Pedersen parameters have 3 fields")
        vss = as_list(f[4])
        if len(vss) != vss_len:
            raise DecodeError(f"Feldman commitment must have {vss_len} points")
        commitments = as_list(f[5])
        if len(commitments) != sch_len:
            raise DecodeError(f"expected {sch_len} Schnorr commitments")
        return cls(
            paillier_n=as_int(f[0]),
            rp=RingPedersenParams(as_int(rp[0]), as_int(rp[1]), as_int(rp[2])),
            prm_proof=prm.Proof.from_value(f[2]),
            rid=_as_fixed_bytes(f[3], RID_BYTES, "rid"),
            # The constant term may be anything on the wire so that a non-zero one is blamed
            # by name (`zero_sharing`); every other point must be a valid non-identity point.
            vss=tuple(_as_point_or_identity(p) if k == 0 else as_point(p) for k, p in enumerate(vss)),
            sch_commitments=tuple(as_point(p) for p in commitments),
            u=_as_fixed_bytes(f[6], RID_BYTES, "u"),
        )


def commitment_hash(ctx: AuxContext, sender: int, opening: AuxOpening) -> bytes:
    """V_j = H(mode, session id, n, j, opening): the R1 commitment to party j's opening."""
    data = encode("aux/commitment", ctx.mode, ctx.session_id, list(ctx.parties), sender, opening.to_value())
    return hashlib.sha256(data).digest()


@dataclass(frozen=True, slots=True)
class AuxRound1Broadcast:
    """R1: the hash commitment V_i."""

    commitment: bytes

    def encode(self) -> bytes:
        return encode("aux/r1/bcast", self.commitment)

    @classmethod
    def decode(cls, data: bytes) -> AuxRound1Broadcast:
        (v,) = decode("aux/r1/bcast", data, 1)
        return cls(_as_fixed_bytes(v, 32, "commitment"))


@dataclass(frozen=True, slots=True)
class AuxRound2Broadcast:
    """R2: the opening of V_i and the echo of every R1 broadcast."""

    opening: AuxOpening
    echo: Echo

    def encode(self) -> bytes:
        return encode("aux/r2/bcast", self.opening.to_value(), self.echo)

    @classmethod
    def decode(cls, data: bytes, vss_len: int, sch_len: int) -> AuxRound2Broadcast:
        opening, echo = decode("aux/r2/bcast", data, 2)
        return cls(AuxOpening.from_value(opening, vss_len, sch_len), echo_from_value(echo))




@dataclass(frozen=True, slots=True)
class AuxRound3Broadcast:
    """R3: the echo of every R2 broadcast, Πmod for N_i and (refresh) the Schnorr answers z_i^k.

    Πmod is the same proof for every receiver, so it travels once in the broadcast; each receiver
    verifies it for itself. The Schnorr first messages A_i^k were committed in R1, so only the
    answers travel here.
    """

    echo: Echo
    mod_proof: mod.Proof
    sch_z: tuple[int, ...]

    def encode(self) -> bytes:
        return encode("aux/r3/bcast", self.echo, self.mod_proof.to_value(), self.sch_z)

    @classmethod
    def decode(cls, data: bytes, sch_len: int) -> AuxRound3Broadcast:
        echo, proof, zs = decode("aux/r3/bcast", data, 3)
        z_list = as_list(zs)
        if len(z_list) != sch_len:
            raise DecodeError(f"expected {sch_len} Schnorr answers")
        return cls(echo_from_value(echo), mod.Proof.from_value(proof), tuple(check_scalar(as_int(z)) for z in z_list))


@dataclass(frozen=True, slots=True)
class AuxRound3Direct:
    """R3 to P_j: Πfac for N_i under P_j's ring-Pedersen parameters; refresh: C = enc_j(f_i(j))."""

    fac_proof: fac.Proof
    share_ciphertext: int | None

    def encode(self) -> bytes:
        c: tuple[int, ...] = () if self.share_ciphertext is None else (self.share_ciphertext,)
        return encode("aux/r3/direct", self.fac_proof.to_value(), c)

    @classmethod
    def decode(cls, data: bytes, receiver_key: PaillierPublicKey, refresh: bool) -> AuxRound3Direct:
        proof, cs = decode("aux/r3/direct", data, 2)
        c_list = as_list(cs)
        if len(c_list) != (1 if refresh else 0):
            raise DecodeError("a refresh carries exactly one share ciphertext, plain aux info none")
        c = receiver_key.check_ciphertext(as_int(c_list[0])) if refresh else None
        return cls(fac.Proof.from_value(proof), c)
