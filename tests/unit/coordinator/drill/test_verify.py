"""`drill verify`: an attested report passes; each kind of tampering is refused with its reason."""

from __future__ import annotations

import copy
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from coordinator.attestation import ATTESTATION, AttestationError, attest, attestation_message, verify_attestation
from coordinator.audit import AuditLog, checkpoint_message
from coordinator.drill.report import ATTESTATION_KIND, body_of, digest_of
from coordinator.drill.verify import DrillVerifyError, verify_report
from coordinator.errors import InvalidRequest

from .conftest import KEY, Attested, attest_report, sample_report

PUB = KEY.public_key()


def _refused(report: object, lines: list[str], reason: str) -> None:
    with pytest.raises(DrillVerifyError) as exc:
        verify_report(report, PUB, lines)
    assert str(exc.value) == reason


def test_an_attested_report_verifies(attested: Attested) -> None:
    v = verify_report(attested.report, PUB, attested.lines())
    assert (v.scenario, v.outcome, v.rto_ms) == ("lose-one", "passed", 1000)
    assert v.entries_checked == len(attested.report["audit"]["entries"]) > 0
    entry = next(json.loads(x) for x in attested.lines() if f'"seq":{v.audit_seq},' in x)
    assert entry["kind"] == ATTESTATION and entry["subject"] == attested.report["attestation"]["digest"]


def test_a_changed_field_is_refused(attested: Attested) -> None:
    for name, value in [("rto_ms", 10), ("outcome", "passed "), ("address_after", "0x" + "00" * 20)]:
        _refused(
            {**attested.report, name: value},
            attested.lines(),
            "the report was changed after it was attested (its digest differs)",
        )


def test_a_report_signed_by_another_key_is_refused(attested: Attested) -> None:
    forged = copy.deepcopy(attested.report)
    forged["rto_ms"] = 10
    digest = digest_of(body_of(forged))
    other = Ed25519PrivateKey.generate()
    seq = forged["attestation"]["audit_seq"]
    forged["attestation"]["digest"] = digest.hex()
    forged["attestation"]["signature"] = other.sign(attestation_message(ATTESTATION_KIND, digest, seq)).hex()
    _refused(forged, attested.lines(), "the coordinator's signature over the report does not verify")
    wrong_seq = copy.deepcopy(attested.report)
    wrong_seq["attestation"]["audit_seq"] = seq - 1
    _refused(wrong_seq, attested.lines(), "the coordinator's signature over the report does not verify")


def test_unattested_and_foreign_documents_are_refused(attested: Attested) -> None:
    _refused(
        {**attested.report, "attestation": None}, attested.lines(), "the report is not attested by the coordinator"
    )
    _refused({"format": "x"}, attested.lines(), "not a drill report (format is not tss-custody-drill/v1)")
    _refused([], attested.lines(), "not a drill report (format is not tss-custody-drill/v1)")


def test_a_cited_entry_missing_from_the_log_is_refused(log: AuditLog) -> None:
    r = sample_report()
    r.audit = {"first_seq": 1, "last_seq": 999, "entries": [{"seq": 999, "hash": "00" * 32}]}
    report = attest_report(log, r)
    lines = Attested(log, report).lines()
    _refused(report, lines, "audit entry 999 cited by the report is not in the verified audit log")


def test_a_cited_entry_that_differs_from_the_log_is_refused(log: AuditLog) -> None:
    r = sample_report()
    r.audit = {"first_seq": 2, "last_seq": 2, "entries": [{"seq": 2, "hash": "ff" * 32}]}
    report = attest_report(log, r)
    _refused(
        report, Attested(log, report).lines(), "audit entry 2 cited by the report differs from the verified audit log"
    )


def test_an_export_without_the_attestation_entry_is_refused(attested: Attested) -> None:
    seq = attested.report["attestation"]["audit_seq"]
    lines = attested.lines()
    cut = [x for x in lines if '"type":"entry"' not in x or json.loads(x)["seq"] < seq]
    head = [json.loads(x) for x in cut if '"type":"entry"' in x][-1]
    cut[-1] = json.dumps({"type": "end", "entries": len(cut) - 2, "last_seq": head["seq"], "head_hash": head["hash"]})
    _refused(attested.report, cut, f"the attestation's audit entry {seq} is not in the verified audit log")


def test_a_tampered_audit_export_is_refused(attested: Attested) -> None:
    lines = attested.lines()
    i = next(i for i, x in enumerate(lines) if '"seq":3,' in x)
    entry = json.loads(lines[i])
    entry["actor"] = "someone-else"
    lines[i] = json.dumps(entry)
    _refused(attested.report, lines, "the audit log does not verify: hash_mismatch at entry 3")


def test_the_attestation_entry_must_name_this_digest(log: AuditLog) -> None:
    r = sample_report()
    report = attest_report(log, r)
    other = attest(log, bytes(32), ATTESTATION_KIND, "operator")  # a different report's entry
    report["attestation"]["audit_seq"] = other.audit_seq
    digest = bytes.fromhex(report["attestation"]["digest"])
    report["attestation"]["signature"] = KEY.sign(attestation_message(ATTESTATION_KIND, digest, other.audit_seq)).hex()
    _refused(
        report, Attested(log, report).lines(), f"audit entry {other.audit_seq} does not record this report's digest"
    )


def test_attest_checks_its_input_and_checkpoints(log: AuditLog) -> None:
    with pytest.raises(InvalidRequest, match="32"):
        attest(log, b"short", ATTESTATION_KIND, "operator")
    with pytest.raises(InvalidRequest, match="lowercase"):
        attest(log, bytes(32), "Drill!", "operator")
    a = attest(log, bytes(32), ATTESTATION_KIND, "operator")
    assert log.head()[0] == a.audit_seq + 1 and log.verify().unsigned_tail == 0  # covered by a checkpoint
    verify_attestation(PUB, ATTESTATION_KIND, bytes(32), a.audit_seq, a.signature)
    with pytest.raises(AttestationError):
        verify_attestation(PUB, "other", bytes(32), a.audit_seq, a.signature)


def test_a_checkpoint_signature_never_passes_as_an_attestation() -> None:
    root = bytes(32)
    sig = KEY.sign(checkpoint_message(1, 4, root))
    assert checkpoint_message(1, 4, root) != attestation_message(ATTESTATION_KIND, root, 4)
    with pytest.raises(AttestationError):
        verify_attestation(PUB, ATTESTATION_KIND, root, 4, sig)
