"""The offline recovery key that verifiable backups are encrypted to (`tssctl recovery keygen`).

The public half is self-verifying: a Paillier–Blum modulus N0 (the encryption key of every
backup) with its Πmod proof, and ring-Pedersen parameters (N̂, s, t) with their Πprm proof, under
which signers prove their backups (Πlog*, signer/tss/zk/log_star.py). Anyone holding the file
checks both proofs and the moduli's sizes (`RecoveryPublic.verify`); its fingerprint (SHA-256 of
the public values) is what node configs pin and kits name. The secret half is only the factors of
N0 (the ring-Pedersen trapdoor is discarded at generation: nobody needs it afterwards, and a
signer that knew it could cheat in its range proof). It is written mode 0600 and never logged.

Files: `recovery.pub.json` {"format", "level", "n0", "rp": {"n", "s", "t"}, "mod_proof",
"prm_proof", "fingerprint"} (integers in hex, proofs in the project encoding, hex) and
`recovery.key.json` {"format", "fingerprint", "p", "q", "public"} (the public file's content).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from signer.tss.encoding import decode_value, encode, encode_value
from signer.tss.errors import DecodeError, InvalidInput, InvalidProof
from signer.tss.paillier import PaillierPublicKey, PaillierSecretKey
from signer.tss.params import SecurityLevel, level_by_name
from signer.tss.primes import PrimeSource
from signer.tss.ring_pedersen import RingPedersenParams, generate_ring_pedersen
from signer.tss.rng import Rng
from signer.tss.transcript import Transcript
from signer.tss.zk import mod, prm

PUBLIC_FORMAT = "tss-recovery-public/v1"
SECRET_FORMAT = "tss-recovery-secret/v1"  # noqa: S105 - a format tag, not a password
PUBLIC_FILE = "recovery.pub.json"
SECRET_FILE = "recovery.key.json"  # noqa: S105 - a file name


class RecoveryKeyError(Exception):
    """A recovery key file that does not load or verify; `check` names what failed."""

    def __init__(self, check: str, detail: str = "") -> None:
        super().__init__(f"{check}: {detail}" if detail else check)
        self.check = check
        self.detail = detail


def _transcript(proof: str, level: SecurityLevel, *values: int) -> Transcript:
    """Each proof's transcript binds its own statement (so a swapped value fails its own proof)."""
    t = Transcript("recovery-key")
    t.append(proof, PUBLIC_FORMAT, level.name, *values)
    return t


@dataclass(frozen=True, slots=True)
class RecoveryPublic:
    """N0 and (N̂, s, t) with the proofs that they are well formed."""

    level: SecurityLevel
    paillier: PaillierPublicKey
    rp: RingPedersenParams
    mod_proof: mod.Proof
    prm_proof: prm.Proof

    def fingerprint(self) -> bytes:
        """32 bytes naming this key: SHA-256 of its public values (not of the proofs)."""
        rp = self.rp
        return hashlib.sha256(encode(PUBLIC_FORMAT, self.level.name, self.paillier.n, rp.n, rp.s, rp.t)).digest()

    def verify(self) -> None:
        """Raise RecoveryKeyError unless both moduli have the level's size and no small factors,
        differ, and the Πmod and Πprm proofs verify."""
        bits = self.level.modulus_bits
        try:
            self.paillier.check(bits)
        except (InvalidInput, DecodeError) as exc:
            raise RecoveryKeyError("recovery_n0", str(exc)) from None
        try:
            self.rp.check(bits)
        except (InvalidInput, DecodeError) as exc:
            raise RecoveryKeyError("recovery_ring_pedersen", str(exc)) from None
        if self.paillier.n == self.rp.n:
            raise RecoveryKeyError("recovery_ring_pedersen", "N̂ must not be N0")
        lv, n0, rp = self.level, self.paillier.n, self.rp
        try:
            mod.verify(_transcript("mod", lv, n0), mod.Statement(n0), self.mod_proof, level=lv)
            prm.verify(_transcript("prm", lv, rp.n, rp.s, rp.t), prm.Statement(rp), self.prm_proof, level=lv)
        except InvalidProof as exc:
            raise RecoveryKeyError(f"recovery_{exc.proof}_proof", exc.check) from None

    def to_json(self) -> dict[str, Any]:
        """The public file's content."""
        return {
            "format": PUBLIC_FORMAT,
            "level": self.level.name,
            "n0": hex(self.paillier.n),
            "rp": {"n": hex(self.rp.n), "s": hex(self.rp.s), "t": hex(self.rp.t)},
            "mod_proof": encode_value(self.mod_proof.to_value()).hex(),
            "prm_proof": encode_value(self.prm_proof.to_value()).hex(),
            "fingerprint": self.fingerprint().hex(),
        }

    @classmethod
    def from_json(cls, raw: Any) -> RecoveryPublic:
        """Parse (not verify) a public file's content; RecoveryKeyError("recovery_format") if malformed."""
        try:
            if raw["format"] != PUBLIC_FORMAT:
                raise ValueError(f"format is not {PUBLIC_FORMAT}")
            out = cls(
                level_by_name(raw["level"]),
                PaillierPublicKey(int(raw["n0"], 16)),
                RingPedersenParams(int(raw["rp"]["n"], 16), int(raw["rp"]["s"], 16), int(raw["rp"]["t"], 16)),
                mod.Proof.from_value(decode_value(bytes.fromhex(raw["mod_proof"]))),
                prm.Proof.from_value(decode_value(bytes.fromhex(raw["prm_proof"]))),
            )
        except (KeyError, TypeError, ValueError, DecodeError, InvalidInput) as exc:
            raise RecoveryKeyError("recovery_format", f"not a recovery public key ({exc})") from None
        if "fingerprint" in raw and raw["fingerprint"] != out.fingerprint().hex():
            raise RecoveryKeyError("recovery_format", "the file's fingerprint is not its key's")
        return out


@dataclass(frozen=True, slots=True)
class RecoverySecret:
    """The factors of N0 (what decrypts backups) with the public key they belong to. Keep it offline."""

    public: RecoveryPublic
    key: PaillierSecretKey = field(repr=False)

    def __post_init__(self) -> None:
        if self.key.n != self.public.paillier.n:
            raise RecoveryKeyError("recovery_key_mismatch", "the secret key does not belong to its public key")

    def fingerprint(self) -> bytes:
        """The public key's fingerprint."""
        return self.public.fingerprint()

    def to_json(self) -> dict[str, Any]:
        """The secret file's content (the public key included, so a restore needs only this file)."""
        return {
            "format": SECRET_FORMAT,
            "fingerprint": self.fingerprint().hex(),
            "p": hex(self.key.p),
            "q": hex(self.key.q),
            "public": self.public.to_json(),
        }

    @classmethod
    def from_json(cls, raw: Any) -> RecoverySecret:
        """Parse a secret file's content and verify its public key; RecoveryKeyError naming the check."""
        try:
            if raw["format"] != SECRET_FORMAT:
                raise ValueError(f"format is not {SECRET_FORMAT}")
            key = PaillierSecretKey(int(raw["p"], 16), int(raw["q"], 16))
            public_raw = raw["public"]
        except (KeyError, TypeError, ValueError, InvalidInput) as exc:
            raise RecoveryKeyError("recovery_secret_format", f"not a recovery secret key ({exc})") from None
        public = RecoveryPublic.from_json(public_raw)
        public.verify()
        return cls(public, key)


def generate(level: SecurityLevel, primes: PrimeSource, rng: Rng) -> tuple[RecoverySecret, RecoveryPublic]:
    """A fresh recovery key: N0 and N̂ from four safe primes of the level's size, with proofs."""
    p0, q0, p1, q1 = (primes(level.prime_bits) for _ in range(4))
    if len({p0, q0, p1, q1}) != 4:
        raise InvalidInput("the prime source returned a repeated prime")
    key = PaillierSecretKey(p0, q0)
    rp_secret = generate_ring_pedersen(p1, q1, rng)
    rp = rp_secret.params
    t_mod, t_prm = _transcript("mod", level, key.n), _transcript("prm", level, rp.n, rp.s, rp.t)
    mod_proof = mod.prove(t_mod, mod.Statement(key.n), mod.Witness(p0, q0), rng=rng, level=level)
    prm_proof = prm.prove(t_prm, prm.Statement(rp), prm.Witness(rp_secret), rng=rng, level=level)
    public = RecoveryPublic(level, key.public, rp_secret.params, mod_proof, prm_proof)
    return RecoverySecret(public, key), public


def write_files(out_dir: Path, secret: RecoverySecret, public: RecoveryPublic) -> tuple[Path, Path]:
    """Write `recovery.pub.json` and `recovery.key.json` (mode 0600, never over an existing file)."""
    out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    secret_path, public_path = out_dir / SECRET_FILE, out_dir / PUBLIC_FILE
    fd = os.open(secret_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(secret.to_json(), f)
        f.write("\n")
    public_path.write_text(json.dumps(public.to_json(), indent=2) + "\n")
    return secret_path, public_path


def load_public(path: Path) -> RecoveryPublic:
    """Read and VERIFY a recovery public key file (RecoveryKeyError naming the check)."""
    try:
        raw = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise RecoveryKeyError("recovery_format", f"cannot read {path}: {exc}") from None
    public = RecoveryPublic.from_json(raw)
    public.verify()
    return public


def load_secret(path: Path) -> RecoverySecret:
    """Read a recovery secret key file (its embedded public key verified); RecoveryKeyError naming the check."""
    try:
        raw = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise RecoveryKeyError("recovery_secret_format", f"cannot read {path}: {exc}") from None
    return RecoverySecret.from_json(raw)
