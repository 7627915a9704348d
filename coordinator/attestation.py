"""Report attestations: the coordinator vouches for a report (a disaster-recovery drill's) by
recording an audit entry that names the report's digest and signing (kind, digest, entry seq) with
its audit key.

Whoever holds the audit public key (`trail.audit_public_key_path`) checks the signature with
`verify_attestation` and finds the entry in the verified audit log (`audit.verify_export`); the
entry is covered by a signed checkpoint taken right after it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from signer.tss.encoding import encode

from .audit import AuditLog
from .errors import InvalidRequest
from .trail import audit_body

ATTESTATION = "attestation"
"""The audit entry kind of an attestation (its subject is the report's digest in hex)."""
REPORT_ATTESTED = "report_attested"
KIND_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,31}")
DIGEST_SIZE = 32


class AttestationError(Exception):
    """An attestation does not verify."""


@dataclass(frozen=True, slots=True)
class Attestation:
    """The coordinator's signature over a report digest and the audit entry that records it."""

    kind: str
    digest: bytes
    audit_seq: int
    audit_hash: bytes
    signature: bytes
    public_key: bytes


def attestation_message(kind: str, digest: bytes, audit_seq: int) -> bytes:
    """The bytes the audit key signs for an attestation (a different tag from checkpoints)."""
    return encode("report-attestation/v1", kind, digest, audit_seq)


def attest(log: AuditLog, digest: bytes, kind: str, actor: str) -> Attestation:
    """Record an entry naming `digest`, checkpoint the log so the entry is signed, then sign."""
    if len(digest) != DIGEST_SIZE:
        raise InvalidRequest(f"report_digest: {len(digest)} bytes, expected {DIGEST_SIZE} (SHA-256)")
    if not KIND_PATTERN.fullmatch(kind):
        raise InvalidRequest("kind: a lowercase word ([a-z][a-z0-9_]*, at most 32 characters)")
    values, view = audit_body(REPORT_ATTESTED, {"report_kind": kind, "digest": digest})
    entry = log.append(ATTESTATION, digest.hex(), actor, values, view)
    log.checkpoint()
    signature = log.sign(attestation_message(kind, digest, entry.seq))
    return Attestation(kind, digest, entry.seq, entry.hash, signature, log.public_key_bytes())


def verify_attestation(
    public_key: Ed25519PublicKey, kind: str, digest: bytes, audit_seq: int, signature: bytes
) -> None:
    """Raise `AttestationError` unless the audit key signed (kind, digest, audit_seq)."""
    try:
        public_key.verify(signature, attestation_message(kind, digest, audit_seq))
    except InvalidSignature:
        raise AttestationError("the coordinator's signature over the report does not verify") from None
