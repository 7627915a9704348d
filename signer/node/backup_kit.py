"""Verifiable encrypted backups of one signer's key share (docs/protocol.md, Verifiable backup).

A kit holds:
- the manifest: key id, epoch, party index i, the public share X_i, the committee (parties,
  threshold, public key, chain code, every X_k), the key's level, the signer's identity public
  keys, the recovery key's fingerprint and the time of export;
- C = enc_N0(x_i; ρ) under the recovery key's Paillier modulus N0;
- a Πlog* proof (signer/tss/zk/log_star.py) that C decrypts to the discrete log of X_i, under the
  recovery key's ring-Pedersen parameters, Fiat–Shamir bound to the manifest's digest;
- the sealed part: what the share alone cannot restore (the signer's identity secret keys, its aux
  info record, the key's rid), AES-256-GCM under k = HKDF-SHA256(x_i; manifest digest), the
  manifest digest as associated data;
- the recovery public key itself (self-verifying: its Πmod/Πprm proofs), so a kit is checked with
  nothing else at hand; an operator pins the fingerprint they expect (`--recovery-public`).

Why the sealed key is derived from x_i instead of being a second ciphertext to N0: the proof then
covers the sealed part too. Whoever can decrypt C (the recovery key holder) can derive k; nobody
else can, since k needs x_i (only its owner, the signer, holds it; X_i reveals nothing more than a
discrete-log instance). A second ciphertext of a random k would need its own proof, or a verified
kit could carry a sealed part no one can open.

`verify_kit` needs only public data and raises `KitError(check)`; `open_kit` needs the recovery
secret and returns what a restore writes into a fresh node's store.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from signer.tss.curve import Point, Q, scalar_to_bytes
from signer.tss.encoding import Decoded, Value, as_bytes, as_int, as_list, as_point, as_str, decode, encode
from signer.tss.errors import DecodeError, InvalidInput, InvalidProof
from signer.tss.key_share import AuxInfo, KeyShare
from signer.tss.rng import Rng
from signer.tss.transcript import Transcript
from signer.tss.vss import check_indices, public_key_from_shares
from signer.tss.zk import log_star

from .identity import Identity
from .recovery_key import RecoveryKeyError, RecoveryPublic, RecoverySecret

KIT_TAG = "tss-backup-kit/v1"
MANIFEST_TAG = "tss-backup-manifest/v1"
_SEALED_TAG = "tss-backup-sealed/v1"


class KitError(Exception):
    """A kit that does not verify or open; `check` names the failed check (stable, machine-readable)."""

    def __init__(self, check: str, detail: str = "") -> None:
        super().__init__(f"{check}: {detail}" if detail else check)
        self.check = check
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Manifest:
    """The public facts a kit speaks about."""

    key_id: str
    epoch: int
    party: int
    public_share: Point
    parties: tuple[int, ...]
    threshold: int
    public_key: Point
    chain_code: bytes
    public_shares: tuple[tuple[int, Point], ...]
    level: str
    sign_pub: bytes
    enc_pub: bytes
    recovery_fingerprint: bytes
    created_at: int

    def to_value(self) -> Value:
        return [
            self.key_id,
            self.epoch,
            self.party,
            self.public_share,
            list(self.parties),
            self.threshold,
            self.public_key,
            self.chain_code,
            [[j, p] for j, p in self.public_shares],
            self.level,
            self.sign_pub,
            self.enc_pub,
            self.recovery_fingerprint,
            self.created_at,
        ]

    @classmethod
    def from_value(cls, v: Decoded) -> Manifest:
        f = as_list(v)
        if len(f) != 14:
            raise DecodeError("a manifest has 14 fields")
        shares = []
        for item in as_list(f[8]):
            pair = as_list(item)
            if len(pair) != 2:
                raise DecodeError("public share entries are pairs")
            shares.append((as_int(pair[0]), as_point(pair[1])))
        return cls(
            as_str(f[0]),
            as_int(f[1]),
            as_int(f[2]),
            as_point(f[3]),
            tuple(as_int(p) for p in as_list(f[4])),
            as_int(f[5]),
            as_point(f[6]),
            as_bytes(f[7]),
            tuple(shares),
            as_str(f[9]),
            as_bytes(f[10]),
            as_bytes(f[11]),
            as_bytes(f[12]),
            as_int(f[13]),
        )

    def digest(self) -> bytes:
        """SHA-256 of the manifest's encoding: what the proof and the sealed part are bound to."""
        return hashlib.sha256(encode(MANIFEST_TAG, self.to_value())).digest()


@dataclass(frozen=True, slots=True)
class Kit:
    """A backup kit (see the module docstring)."""

    manifest: Manifest
    recovery: RecoveryPublic
    C: int
    proof: log_star.Proof
    sealed: bytes

    def to_bytes(self) -> bytes:
        """The kit file's content."""
        rp = self.recovery.to_json()
        recovery = [
            rp["level"],
            rp["n0"],
            rp["rp"]["n"],
            rp["rp"]["s"],
            rp["rp"]["t"],
            rp["mod_proof"],
            rp["prm_proof"],
        ]
        return encode(KIT_TAG, self.manifest.to_value(), recovery, self.C, self.proof.to_value(), self.sealed)

    @classmethod
    def from_bytes(cls, data: bytes) -> Kit:
        """Decode a kit; KitError("kit_format") if it is not one."""
        try:
            f = decode(KIT_TAG, data, 5)
            r = [as_str(x) for x in as_list(f[1])]
            if len(r) != 7:
                raise DecodeError("the recovery key has 7 fields")
            recovery = RecoveryPublic.from_json(
                {
                    "format": "tss-recovery-public/v1",
                    "level": r[0],
                    "n0": r[1],
                    "rp": {"n": r[2], "s": r[3], "t": r[4]},
                    "mod_proof": r[5],
                    "prm_proof": r[6],
                }
            )
            return cls(
                Manifest.from_value(f[0]), recovery, as_int(f[2]), log_star.Proof.from_value(f[3]), as_bytes(f[4])
            )
        except (DecodeError, InvalidInput, RecoveryKeyError) as exc:
            raise KitError("kit_format", f"not a backup kit ({exc})") from None


@dataclass(frozen=True, slots=True)
class Restored:
    """What a restore writes into a node's store: identity, share and aux info records."""

    manifest: Manifest
    identity: bytes = field(repr=False)
    share: KeyShare = field(repr=False)
    aux: bytes = field(repr=False)


def _transcript(manifest: Manifest) -> Transcript:
    t = Transcript("backup-kit")
    t.append("manifest", KIT_TAG, manifest.digest())
    return t


def _statement(kit_manifest: Manifest, recovery: RecoveryPublic, C: int) -> log_star.Statement:
    return log_star.Statement(recovery.paillier, C, kit_manifest.public_share, recovery.rp)


def _seal_key(x: int, manifest: Manifest) -> bytes:
    info = encode(_SEALED_TAG, manifest.digest())
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(scalar_to_bytes(x))


def make_kit(
    key_id: str,
    share: KeyShare,
    aux: bytes,
    identity: Identity,
    level: str,
    recovery: RecoveryPublic,
    *,
    rng: Rng,
    now: int,
) -> Kit:
    """Encrypt `share` to the recovery key with its Πlog* proof and seal identity, aux info and rid."""
    pub = identity.public()
    manifest = Manifest(
        key_id,
        share.epoch,
        share.party,
        share.public_share(share.party),
        share.parties,
        share.threshold,
        share.public_key,
        share.chain_code,
        share.public_shares,
        level,
        pub.sign_pub,
        pub.enc_pub,
        recovery.fingerprint(),
        now,
    )
    C, rho = recovery.paillier.encrypt(share.x, rng)
    stmt = _statement(manifest, recovery, C)
    proof = log_star.prove(_transcript(manifest), stmt, log_star.Witness(share.x, rho), rng=rng, level=recovery.level)
    payload = encode(_SEALED_TAG, identity.to_bytes(), aux, share.rid)
    nonce = rng.token_bytes(12)
    sealed = nonce + AESGCM(_seal_key(share.x, manifest)).encrypt(nonce, payload, manifest.digest())
    return Kit(manifest, recovery, C, proof, sealed)


def _check_committee(m: Manifest) -> None:
    """X_i is the committee's entry for party i, and every X_k lies on one degree t-1 polynomial
    whose value at 0 is the public key (Feldman consistency, checked by Lagrange interpolation)."""
    try:
        check_indices(m.parties)
    except InvalidInput as exc:
        raise KitError("committee_inconsistent", str(exc)) from None
    shares = dict(m.public_shares)
    if tuple(j for j, _ in m.public_shares) != m.parties or not 2 <= m.threshold <= len(m.parties):
        raise KitError("committee_inconsistent", "public shares must list every party; 2 <= t <= n")
    if m.party not in shares or shares[m.party] != m.public_share:
        raise KitError("public_share_not_in_committee", f"X_{m.party} is not the committee's share of party {m.party}")
    if len(m.chain_code) != 32:
        raise KitError("committee_inconsistent", "chain code must be 32 bytes")
    base = m.parties[: m.threshold]
    if public_key_from_shares(shares, base) != m.public_key:
        raise KitError("committee_inconsistent", "the public shares do not interpolate to the public key")
    for k in m.parties[m.threshold :]:
        # X_k = Σ_{j∈base} λ_j(k)·X_j with Lagrange weights at k (λ at 0 of the shifted indices).
        expected = Point.identity()
        for j in base:
            num, den = 1, 1
            for o in base:
                if o != j:
                    num, den = num * (k - o) % Q, den * (j - o) % Q
            expected = expected + shares[j] * (num * pow(den, -1, Q) % Q)
        if expected != shares[k]:
            raise KitError("committee_inconsistent", f"X_{k} is not on the committee's polynomial")


def verify_kit(kit: Kit, recovery: RecoveryPublic | None = None) -> Manifest:
    """Check a kit with public data only; KitError naming the first failed check.

    `recovery`: the recovery public key the operator expects (already verified, e.g. by
    `recovery_key.load_public`); None checks the kit's own copy of it. Then: the recovery key's
    proofs, the committee, the sealed part's shape, and the Πlog* proof that C decrypts to log X_i.
    """
    m = kit.manifest
    if recovery is not None and recovery.fingerprint() != kit.recovery.fingerprint():
        raise KitError("recovery_key_mismatch", "the kit is encrypted to another recovery key")
    if m.recovery_fingerprint != kit.recovery.fingerprint():
        raise KitError("recovery_key_mismatch", "the manifest names another recovery key than the kit carries")
    if recovery is None:
        try:
            kit.recovery.verify()
        except RecoveryKeyError as exc:
            raise KitError(exc.check, exc.detail) from None
    _check_committee(m)
    if len(kit.sealed) < 12 + 16 or len(m.sign_pub) != 32 or len(m.enc_pub) != 32:
        raise KitError("sealed_format", "the sealed part or the identity keys are malformed")
    try:
        log_star.verify(_transcript(m), _statement(m, kit.recovery, kit.C), kit.proof, level=kit.recovery.level)
    except InvalidProof as exc:
        raise KitError(f"proof_{exc.check}", "the Πlog* proof does not verify") from None
    return m


def open_kit(kit: Kit, secret: RecoverySecret) -> Restored:
    """Verify the kit against the secret's public key, decrypt x_i and open the sealed part."""
    m = verify_kit(kit, secret.public)
    x = secret.key.decrypt(kit.C) % Q
    if x == 0 or Point.base_mul(x) != m.public_share:
        raise KitError("share_mismatch", "the decrypted share is not the discrete log of X_i")
    try:
        payload = AESGCM(_seal_key(x, m)).decrypt(kit.sealed[:12], kit.sealed[12:], m.digest())
        f = decode(_SEALED_TAG, payload, 3)
        identity, aux, rid = as_bytes(f[0]), as_bytes(f[1]), as_bytes(f[2])
    except (InvalidTag, DecodeError) as exc:
        raise KitError("sealed_part", f"the sealed part does not open ({type(exc).__name__})") from None
    try:
        pub = Identity.from_bytes(m.party, identity).public()
        info = AuxInfo.from_bytes(aux)
    except (ValueError, DecodeError, InvalidInput) as exc:
        raise KitError("sealed_part", f"the sealed records are malformed ({exc})") from None
    if (pub.sign_pub, pub.enc_pub) != (m.sign_pub, m.enc_pub):
        raise KitError("identity_mismatch", "the sealed identity is not the manifest's")
    if info.party != m.party or info.level.name != m.level:
        raise KitError("aux_mismatch", "the sealed aux info is not this party's at this level")
    share = KeyShare(m.party, m.parties, m.threshold, m.public_key, m.public_shares, m.chain_code, rid, m.epoch, x)
    return Restored(m, identity, share, aux)


def kit_digest(data: bytes) -> str:
    """Hex SHA-256 of a kit file (what logs and reports name a kit by)."""
    return hashlib.sha256(data).hexdigest()
