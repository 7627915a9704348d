"""The auditor's checks on a database: each tampering names the first bad entry and why."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from coordinator import audit
from coordinator.audit import AuditError, AuditLog
from signer.policy.merkle import merkle_root

from .support import KEY, OTHER_KEY, attacker, bad, hashes, rechain, set_checkpoint, verify_file


def test_tampered_body(log: AuditLog, db_path: Path) -> None:
    attacker(db_path).execute("UPDATE audit_log SET body = ? WHERE seq = 7", (b"forged",))
    assert bad(verify_file(db_path)) == (7, "hash_mismatch")


def test_tampered_json_view(log: AuditLog, db_path: Path) -> None:
    attacker(db_path).execute("UPDATE audit_log SET json = '{\"n\":99}' WHERE seq = 3")
    assert bad(verify_file(db_path)) == (3, "hash_mismatch")


def test_tampered_hash(log: AuditLog, db_path: Path) -> None:
    attacker(db_path).execute("UPDATE audit_log SET hash = ? WHERE seq = 8", (bytes(32),))
    assert bad(verify_file(db_path)) == (8, "hash_mismatch")


def test_tampered_entry_rehashed_breaks_the_next_link(log: AuditLog, db_path: Path) -> None:
    c = attacker(db_path)
    c.execute("UPDATE audit_log SET actor = 'someone-else' WHERE seq = 7")
    row = c.execute("SELECT at, kind, subject, actor, body, json, prev_hash FROM audit_log WHERE seq = 7").fetchone()
    c.execute("UPDATE audit_log SET hash = ? WHERE seq = 7", (audit.entry_hash(7, *row),))
    assert bad(verify_file(db_path)) == (8, "prev_hash_mismatch")


def test_tampered_entry_rechained_fails_its_checkpoint_root(log: AuditLog, db_path: Path) -> None:
    c = attacker(db_path)
    c.execute("UPDATE audit_log SET body = ? WHERE seq = 7", (b"forged",))
    rechain(c, 7)
    assert bad(verify_file(db_path)) == (10, "checkpoint_root")


def test_deleted_entry(log: AuditLog, db_path: Path) -> None:
    c = attacker(db_path)
    c.execute("DELETE FROM audit_log WHERE seq = 7")
    rechain(c, 8)
    report = verify_file(db_path)
    assert bad(report) == (7, "seq_gap")
    assert report.entries == 6 and report.last_seq == 6


def test_reordered_entries(log: AuditLog, db_path: Path) -> None:
    c = attacker(db_path)
    c.execute("UPDATE audit_log SET seq = 1000 WHERE seq = 7")
    c.execute("UPDATE audit_log SET seq = 7 WHERE seq = 8")
    c.execute("UPDATE audit_log SET seq = 8 WHERE seq = 1000")
    assert bad(verify_file(db_path)) == (7, "prev_hash_mismatch")


def test_forged_checkpoint_signature(log: AuditLog, db_path: Path) -> None:
    c = attacker(db_path)
    set_checkpoint(c, 5, 1, 4, merkle_root(hashes(c, 1, 4)), OTHER_KEY)
    assert bad(verify_file(db_path)) == (5, "checkpoint_signature")


def test_rewritten_entries_with_a_matching_root_need_the_key(log: AuditLog, db_path: Path) -> None:
    c = attacker(db_path)
    c.execute("UPDATE audit_log SET subject = 'req-other' WHERE seq = 2")
    rechain(c, 2)
    set_checkpoint(c, 5, 1, 4, merkle_root(hashes(c, 1, 4)), OTHER_KEY)
    assert bad(verify_file(db_path)) == (5, "checkpoint_signature")


def test_checkpoint_with_the_wrong_root(log: AuditLog, db_path: Path) -> None:
    c = attacker(db_path)
    set_checkpoint(c, 10, 6, 9, merkle_root(hashes(c, 1, 4)), KEY)  # signed, but over the wrong entries
    assert bad(verify_file(db_path)) == (10, "checkpoint_root")


def test_checkpoint_with_the_wrong_range(log: AuditLog, db_path: Path) -> None:
    c = attacker(db_path)
    set_checkpoint(c, 5, 2, 4, merkle_root(hashes(c, 2, 4)), KEY)
    assert bad(verify_file(db_path)) == (5, "checkpoint_range")


def test_malformed_checkpoint_body(log: AuditLog, db_path: Path) -> None:
    c = attacker(db_path)
    c.execute("UPDATE audit_log SET body = ? WHERE seq = 5", (b"not an encoding",))
    rechain(c, 5)
    assert bad(verify_file(db_path)) == (5, "checkpoint_malformed")


def test_unsigned_tail_needs_an_anchor(log: AuditLog, db_path: Path) -> None:
    """Entries after the last checkpoint can be rewritten unnoticed, unless the auditor kept a head."""
    head = log.head()
    c = attacker(db_path)
    c.execute("UPDATE audit_log SET subject = 'rewritten' WHERE seq = 12")
    rechain(c, 12)
    report = verify_file(db_path)
    assert report.ok and report.unsigned_tail == 2
    assert bad(audit.verify(db_path, KEY.public_key(), anchor=head)) == (12, "anchor_mismatch")


def test_cut_off_suffix_needs_an_anchor(log: AuditLog, db_path: Path) -> None:
    head = log.head()
    attacker(db_path).execute("DELETE FROM audit_log WHERE seq > 10")
    assert verify_file(db_path).ok
    assert bad(audit.verify(db_path, KEY.public_key(), anchor=head)) == (12, "anchor_mismatch")


def test_verify_needs_an_existing_log(tmp_path: Path) -> None:
    with pytest.raises(AuditError):
        audit.verify(tmp_path / "missing.db", KEY.public_key())
    sqlite3.connect(tmp_path / "other.db").execute("CREATE TABLE t (x)").connection.commit()
    with pytest.raises(AuditError, match="no audit_log"):
        audit.verify(tmp_path / "other.db", KEY.public_key())
