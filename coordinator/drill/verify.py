"""`tssctl drill verify`: is a drill report the one the coordinator attested, and are the audit
entries it cites in the verified audit log?

Checks, in order, each failing with a one-line reason (`DrillVerifyError`): the report's format;
that it carries an attestation; that its digest is the one attested (nothing changed after
signing); the coordinator's signature with the audit public key the verifier holds (never the one
in the report); that the audit export verifies (chain and signed checkpoints); that the attestation
entry is in it and names the digest; and that every entry the report cites is in it, unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ..attestation import ATTESTATION, AttestationError, verify_attestation
from ..audit import verify_export
from .report import ATTESTATION_KIND, FORMAT, body_of, digest_of


class DrillVerifyError(Exception):
    """The report does not verify; the message is the one-line reason."""


@dataclass(frozen=True, slots=True)
class VerifiedDrill:
    """What a verified report proves."""

    scenario: str
    outcome: str
    rto_ms: int | None
    audit_seq: int
    entries_checked: int


def audit_entries(lines: Iterable[str]) -> dict[int, dict[str, Any]]:
    """The entries of an audit export by seq: seq, kind, subject, actor, event and hash (hex)."""
    out: dict[int, dict[str, Any]] = {}
    for line in lines:
        if not line.strip():
            continue
        d = json.loads(line)
        if not isinstance(d, dict) or d.get("type") != "entry":
            continue
        try:
            event = str(json.loads(d.get("json") or "{}").get("event", ""))
        except (ValueError, AttributeError):
            event = ""
        seq = int(d["seq"])
        out[seq] = {
            "seq": seq,
            "kind": d.get("kind"),
            "subject": d.get("subject"),
            "actor": d.get("actor"),
            "event": event,
            "hash": d.get("hash"),
        }
    return out


def _field(d: Any, name: str, kind: type) -> Any:
    if not isinstance(d, dict) or not isinstance(d.get(name), kind):
        raise DrillVerifyError(f"malformed report: {name} missing or not a {kind.__name__}")
    return d[name]


def verify_report(report: Any, public_key: Ed25519PublicKey, audit_lines: list[str]) -> VerifiedDrill:
    """Check a loaded report against the audit public key and an audit export (from seq 1)."""
    if not isinstance(report, dict) or report.get("format") != FORMAT:
        raise DrillVerifyError(f"not a drill report (format is not {FORMAT})")
    a = report.get("attestation")
    if not a:
        raise DrillVerifyError("the report is not attested by the coordinator")
    digest_hex, sig_hex = _field(a, "digest", str), _field(a, "signature", str)
    seq, entry_hash = _field(a, "audit_seq", int), _field(a, "audit_hash", str)
    try:
        digest, signature = bytes.fromhex(digest_hex), bytes.fromhex(sig_hex)
    except ValueError:
        raise DrillVerifyError("malformed report: attestation digest or signature is not hex") from None
    if digest_of(body_of(report)) != digest:
        raise DrillVerifyError("the report was changed after it was attested (its digest differs)")
    try:
        verify_attestation(public_key, ATTESTATION_KIND, digest, seq, signature)
    except AttestationError as exc:
        raise DrillVerifyError(str(exc)) from None

    log = verify_export(audit_lines, public_key)
    if not log.ok:
        raise DrillVerifyError(f"the audit log does not verify: {log.reason} at entry {log.first_bad_seq}")
    entries = audit_entries(audit_lines)
    att = entries.get(seq)
    if att is None:
        raise DrillVerifyError(f"the attestation's audit entry {seq} is not in the verified audit log")
    if att["hash"] != entry_hash or att["kind"] != ATTESTATION or att["subject"] != digest_hex:
        raise DrillVerifyError(f"audit entry {seq} does not record this report's digest")
    if log.unsigned_tail and seq > log.last_seq - log.unsigned_tail:
        raise DrillVerifyError(f"audit entry {seq} is not covered by a signed checkpoint")
    cited = _field(report.get("audit"), "entries", list)
    for ref in cited:
        ref_seq = _field(ref, "seq", int)
        found = entries.get(ref_seq)
        if found is None:
            raise DrillVerifyError(f"audit entry {ref_seq} cited by the report is not in the verified audit log")
        if found["hash"] != ref.get("hash"):
            raise DrillVerifyError(f"audit entry {ref_seq} cited by the report differs from the verified audit log")
    rto = report.get("rto_ms")
    return VerifiedDrill(
        str(report.get("scenario")),
        str(report.get("outcome")),
        rto if isinstance(rto, int) else None,
        seq,
        len(cited),
    )
