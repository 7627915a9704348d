"""The offline export: round trip, checkpoint-aligned partial exports, and what `verify_export` rejects."""

from __future__ import annotations

from pathlib import Path

from coordinator import audit
from coordinator.audit import AuditLog

from .support import KEY, bad, export_lines, verify_file


def test_export_round_trip(log: AuditLog, db_path: Path) -> None:
    lines = export_lines(log)
    assert len(lines) == 12 + 2
    report = audit.verify_export(lines, log.public_key_pem())
    assert report == verify_file(db_path)
    assert audit.verify_export([(x + "\n").encode() for x in lines], log.public_key_bytes()).ok


def test_partial_export_starts_at_a_checkpoint_boundary(log: AuditLog) -> None:
    for since, first in ((0, 1), (5, 1), (6, 6), (8, 6), (11, 11), (99, 11)):
        lines = export_lines(log, since)
        report = audit.verify_export(lines, KEY.public_key())
        assert report.ok and report.first_seq == first and report.last_seq == 12, since
    # An auditor who kept the head of an earlier export links the two.
    h9, h10 = (e.hash for e in log.entries(9, limit=2))
    assert audit.verify_export(export_lines(log, 8), KEY.public_key(), anchor=(10, h10)).ok
    assert audit.verify_export(export_lines(log, 11), KEY.public_key(), anchor=(10, h10)).ok
    assert bad(audit.verify_export(export_lines(log, 11), KEY.public_key(), anchor=(10, h9))) == (10, "anchor_mismatch")
    assert bad(audit.verify_export(export_lines(log, 11), KEY.public_key(), anchor=(9, h9))) == (9, "anchor_mismatch")


def test_verify_export_rejects_a_truncated_middle(log: AuditLog) -> None:
    lines = export_lines(log)
    assert bad(audit.verify_export(lines[:7] + lines[8:], KEY.public_key())) == (7, "seq_gap")


def test_verify_export_rejects_a_truncated_end(log: AuditLog) -> None:
    lines = export_lines(log)
    assert bad(audit.verify_export(lines[:-1], KEY.public_key())) == (13, "truncated")
    assert bad(audit.verify_export(lines[:-3] + lines[-1:], KEY.public_key())) == (11, "truncated")


def test_verify_export_rejects_tampered_lines(log: AuditLog) -> None:
    lines = export_lines(log)
    forged = lines[3].replace('"actor":"backend-1"', '"actor":"mallory"')
    assert forged != lines[3]
    assert bad(audit.verify_export([*lines[:3], forged, *lines[4:]], KEY.public_key())) == (3, "hash_mismatch")
    broken = lines[3].replace('"hash":"', '"hash":"zz')
    assert bad(audit.verify_export([*lines[:3], broken, *lines[4:]], KEY.public_key())) == (3, "malformed_entry")
    assert bad(audit.verify_export(lines[1:], KEY.public_key()))[1] == "export_malformed"
    assert bad(audit.verify_export([], KEY.public_key()))[1] == "export_malformed"
    assert bad(audit.verify_export([*lines, lines[-1]], KEY.public_key()))[1] == "export_malformed"
    assert bad(audit.verify_export([*lines[:5], "{}", *lines[5:]], KEY.public_key())) == (5, "export_malformed")
