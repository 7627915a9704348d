"""The coordinator's audit log: chain, checkpoints, tamper detection, concurrency, offline export."""

from __future__ import annotations

import io
import itertools
import os
import sqlite3
import stat
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from coordinator import audit
from coordinator.audit import GENESIS, AuditError, AuditLog, VerifyReport
from signer.policy.merkle import merkle_root

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OTHER_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
USER_ENTRIES = 10
# With checkpoint_every=4 the ten user entries land at 1-4, 6-9, 11-12; checkpoints at 5 and 10.
CHECKPOINTS = (5, 10)


class Clock:
    def __init__(self) -> None:
        self.t = 1_700_000_000.75

    def __call__(self) -> float:
        self.t += 1
        return self.t


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "coordinator.db"


@pytest.fixture
def log(db_path: Path) -> AuditLog:
    lg = AuditLog(db_path, KEY, clock=Clock(), checkpoint_every=4)
    for i in range(USER_ENTRIES):
        lg.append(audit.REQUEST, f"req-{i}", "backend-1", [i, f"state-{i}", bytes([i]) * 4], {"n": i})
    return lg


def _verify(path: Path) -> VerifyReport:
    return audit.verify(path, KEY.public_key())


def _bad(report: VerifyReport) -> tuple[int | None, str]:
    assert not report.ok
    return report.first_bad_seq, report.reason


# --- an attacker with write access to the file -------------------------------------------------------
def _attacker(path: Path) -> sqlite3.Connection:
    c = sqlite3.connect(path, isolation_level=None)
    for trigger in ("audit_log_no_update", "audit_log_no_delete", "audit_log_in_sequence"):
        c.execute(f"DROP TRIGGER {trigger}")
    return c


def _rechain(c: sqlite3.Connection, from_seq: int) -> None:
    """Recompute prev_hash and hash from `from_seq` on, as a careful attacker would."""
    row = c.execute("SELECT hash FROM audit_log WHERE seq = ?", (from_seq - 1,)).fetchone()
    prev = bytes(row[0]) if row else GENESIS
    rows = c.execute(
        "SELECT seq, at, kind, subject, actor, body, json FROM audit_log WHERE seq >= ? ORDER BY seq", (from_seq,)
    ).fetchall()
    for seq, at, kind, subject, actor, body, text in rows:
        h = audit.entry_hash(seq, at, kind, subject, actor, body, text, prev)
        c.execute("UPDATE audit_log SET prev_hash = ?, hash = ? WHERE seq = ?", (prev, h, seq))
        prev = h


def _set_checkpoint(
    c: sqlite3.Connection, seq: int, first: int, last: int, root: bytes, signer: Ed25519PrivateKey
) -> None:
    body, text = audit.checkpoint_body(first, last, root, signer.sign(audit.checkpoint_message(first, last, root)))
    c.execute("UPDATE audit_log SET body = ?, json = ? WHERE seq = ?", (body, text, seq))
    _rechain(c, seq)


def _hashes(c: sqlite3.Connection, first: int, last: int) -> list[bytes]:
    rows = c.execute("SELECT hash FROM audit_log WHERE seq BETWEEN ? AND ? ORDER BY seq", (first, last))
    return [bytes(r[0]) for r in rows]


# --- appending and verifying ---------------------------------------------------------------------------
def test_append_and_verify_on_a_file(log: AuditLog, db_path: Path) -> None:
    report = _verify(db_path)
    assert report == VerifyReport(
        ok=True,
        entries=12,
        checkpoints=2,
        first_bad_seq=None,
        reason="",
        last_seq=12,
        head_hash=log.head()[1],
        unsigned_tail=2,
    )
    entries = log.entries()
    assert [e.seq for e in entries] == list(range(1, 13))
    assert entries[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(entries))
    assert [e.seq for e in entries if e.kind == audit.CHECKPOINT] == list(CHECKPOINTS)
    first = entries[0]
    assert (first.kind, first.subject, first.actor, first.at) == ("request", "req-0", "backend-1", 1_700_000_001)
    assert first.values == [0, "state-0", b"\x00" * 4]
    assert first.view == {"n": 0}
    cp = entries[4]
    assert cp.view["first_seq"] == 1 and cp.view["last_seq"] == 4
    assert bytes.fromhex(cp.view["merkle_root"]) == merkle_root([e.hash for e in entries[:4]])
    # The exported public key works in its raw and PEM forms; another key does not.
    assert audit.verify(db_path, log.public_key_bytes()).ok
    assert audit.verify(db_path, log.public_key_pem()).ok
    assert _bad(audit.verify(db_path, OTHER_KEY.public_key())) == (5, "checkpoint_signature")


def test_reopen_continues_the_chain(log: AuditLog, db_path: Path) -> None:
    head = log.head()
    log.close()
    again = AuditLog(db_path, KEY, checkpoint_every=4)
    entry = again.append(audit.FREEZE, "all", "officer-1", ["freeze"])
    assert (entry.seq, entry.prev_hash) == (13, head[1])
    assert entry.view == {"values": ["freeze"]}
    assert _verify(db_path).ok


def test_default_view_renders_values(db_path: Path) -> None:
    entry = AuditLog(db_path, KEY).append(audit.APPROVAL, "req-1", "officer-2", [b"\xab\xcd", [1, -2], "x"])
    assert entry.view == {"values": ["abcd", [1, -2], "x"]}


def test_on_demand_checkpoint(db_path: Path) -> None:
    lg = AuditLog(db_path, KEY, checkpoint_every=0)
    assert lg.checkpoint() is None
    for i in range(3):
        lg.append(audit.SESSION, f"s{i}", "coordinator", [i])
    cp = lg.checkpoint()
    assert cp is not None and cp.seq == 4 and cp.view["first_seq"] == 1 and cp.view["last_seq"] == 3
    assert lg.checkpoint() is None
    report = lg.verify()
    assert report.ok and report.checkpoints == 1 and report.unsigned_tail == 0


def test_rejects_reserved_or_malformed_kinds(db_path: Path) -> None:
    lg = AuditLog(db_path, KEY)
    for kind in ("checkpoint", "Request", "", "a b"):
        with pytest.raises(AuditError):
            lg.append(kind, "s", "a", [])
    with pytest.raises(AuditError):
        lg.append(audit.POLICY, "s", "a", [True])  # booleans are not encodable
    assert lg.head() == (0, GENESIS)


def test_sql_cannot_update_delete_or_insert_out_of_sequence(log: AuditLog, db_path: Path) -> None:
    c = sqlite3.connect(db_path, isolation_level=None)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        c.execute("UPDATE audit_log SET subject = 'x' WHERE seq = 3")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        c.execute("DELETE FROM audit_log WHERE seq = 12")
    row = c.execute(
        "SELECT at, kind, subject, actor, body, json, prev_hash, hash FROM audit_log WHERE seq = 12"
    ).fetchone()
    for seq, prev in ((14, row[7]), (13, GENESIS), (3, row[6])):
        with pytest.raises(sqlite3.IntegrityError, match="extend the chain"):
            c.execute(
                "INSERT OR REPLACE INTO audit_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", (seq, *row[:6], prev, row[7])
            )
    assert _verify(db_path).ok


# --- tampering: each names the first bad entry and why ----------------------------------------------------
def test_tampered_body(log: AuditLog, db_path: Path) -> None:
    _attacker(db_path).execute("UPDATE audit_log SET body = ? WHERE seq = 7", (b"forged",))
    assert _bad(_verify(db_path)) == (7, "hash_mismatch")


def test_tampered_json_view(log: AuditLog, db_path: Path) -> None:
    _attacker(db_path).execute("UPDATE audit_log SET json = '{\"n\":99}' WHERE seq = 3")
    assert _bad(_verify(db_path)) == (3, "hash_mismatch")


def test_tampered_hash(log: AuditLog, db_path: Path) -> None:
    _attacker(db_path).execute("UPDATE audit_log SET hash = ? WHERE seq = 8", (bytes(32),))
    assert _bad(_verify(db_path)) == (8, "hash_mismatch")


def test_tampered_entry_rehashed_breaks_the_next_link(log: AuditLog, db_path: Path) -> None:
    c = _attacker(db_path)
    c.execute("UPDATE audit_log SET actor = 'someone-else' WHERE seq = 7")
    row = c.execute("SELECT at, kind, subject, actor, body, json, prev_hash FROM audit_log WHERE seq = 7").fetchone()
    c.execute("UPDATE audit_log SET hash = ? WHERE seq = 7", (audit.entry_hash(7, *row),))
    assert _bad(_verify(db_path)) == (8, "prev_hash_mismatch")


def test_tampered_entry_rechained_fails_its_checkpoint_root(log: AuditLog, db_path: Path) -> None:
    c = _attacker(db_path)
    c.execute("UPDATE audit_log SET body = ? WHERE seq = 7", (b"forged",))
    _rechain(c, 7)
    assert _bad(_verify(db_path)) == (10, "checkpoint_root")


def test_deleted_entry(log: AuditLog, db_path: Path) -> None:
    c = _attacker(db_path)
    c.execute("DELETE FROM audit_log WHERE seq = 7")
    _rechain(c, 8)
    report = _verify(db_path)
    assert _bad(report) == (7, "seq_gap")
    assert report.entries == 6 and report.last_seq == 6


def test_reordered_entries(log: AuditLog, db_path: Path) -> None:
    c = _attacker(db_path)
    c.execute("UPDATE audit_log SET seq = 1000 WHERE seq = 7")
    c.execute("UPDATE audit_log SET seq = 7 WHERE seq = 8")
    c.execute("UPDATE audit_log SET seq = 8 WHERE seq = 1000")
    assert _bad(_verify(db_path)) == (7, "prev_hash_mismatch")


def test_forged_checkpoint_signature(log: AuditLog, db_path: Path) -> None:
    c = _attacker(db_path)
    _set_checkpoint(c, 5, 1, 4, merkle_root(_hashes(c, 1, 4)), OTHER_KEY)
    assert _bad(_verify(db_path)) == (5, "checkpoint_signature")


def test_rewritten_entries_with_a_matching_root_need_the_key(log: AuditLog, db_path: Path) -> None:
    c = _attacker(db_path)
    c.execute("UPDATE audit_log SET subject = 'req-other' WHERE seq = 2")
    _rechain(c, 2)
    _set_checkpoint(c, 5, 1, 4, merkle_root(_hashes(c, 1, 4)), OTHER_KEY)
    assert _bad(_verify(db_path)) == (5, "checkpoint_signature")


def test_checkpoint_with_the_wrong_root(log: AuditLog, db_path: Path) -> None:
    c = _attacker(db_path)
    _set_checkpoint(c, 10, 6, 9, merkle_root(_hashes(c, 1, 4)), KEY)  # signed, but over the wrong entries
    assert _bad(_verify(db_path)) == (10, "checkpoint_root")


def test_checkpoint_with_the_wrong_range(log: AuditLog, db_path: Path) -> None:
    c = _attacker(db_path)
    _set_checkpoint(c, 5, 2, 4, merkle_root(_hashes(c, 2, 4)), KEY)
    assert _bad(_verify(db_path)) == (5, "checkpoint_range")


def test_malformed_checkpoint_body(log: AuditLog, db_path: Path) -> None:
    c = _attacker(db_path)
    c.execute("UPDATE audit_log SET body = ? WHERE seq = 5", (b"not an encoding",))
    _rechain(c, 5)
    assert _bad(_verify(db_path)) == (5, "checkpoint_malformed")


def test_unsigned_tail_needs_an_anchor(log: AuditLog, db_path: Path) -> None:
    """Entries after the last checkpoint can be rewritten unnoticed, unless the auditor kept a head."""
    head = log.head()
    c = _attacker(db_path)
    c.execute("UPDATE audit_log SET subject = 'rewritten' WHERE seq = 12")
    _rechain(c, 12)
    report = _verify(db_path)
    assert report.ok and report.unsigned_tail == 2
    assert _bad(audit.verify(db_path, KEY.public_key(), anchor=head)) == (12, "anchor_mismatch")


def test_cut_off_suffix_needs_an_anchor(log: AuditLog, db_path: Path) -> None:
    head = log.head()
    _attacker(db_path).execute("DELETE FROM audit_log WHERE seq > 10")
    assert _verify(db_path).ok
    assert _bad(audit.verify(db_path, KEY.public_key(), anchor=head)) == (12, "anchor_mismatch")


def test_verify_needs_an_existing_log(tmp_path: Path) -> None:
    with pytest.raises(AuditError):
        audit.verify(tmp_path / "missing.db", KEY.public_key())
    sqlite3.connect(tmp_path / "other.db").execute("CREATE TABLE t (x)").connection.commit()
    with pytest.raises(AuditError, match="no audit_log"):
        audit.verify(tmp_path / "other.db", KEY.public_key())


# --- concurrency and transactions -------------------------------------------------------------------------
def _hammer(lg: AuditLog, threads: int, per_thread: int) -> None:
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for i in range(per_thread):
                lg.append(audit.REQUEST, f"t{t}-{i}", f"thread-{t}", [t, i])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert not errors


def test_concurrent_appends_keep_the_chain(db_path: Path) -> None:
    lg = AuditLog(db_path, KEY, checkpoint_every=16)
    _hammer(lg, 8, 25)
    report = _verify(db_path)
    assert report.ok and report.entries - report.checkpoints == 200 and report.checkpoints == 200 // 16
    assert sorted(e.subject for e in lg.entries() if e.kind == "request") == sorted(
        f"t{t}-{i}" for t in range(8) for i in range(25)
    )
    lg.close()


def test_concurrent_appends_on_a_shared_connection(db_path: Path) -> None:
    conn = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    lg = AuditLog(conn, KEY, checkpoint_every=5)
    _hammer(lg, 4, 15)
    report = lg.verify()
    assert report.ok and report.entries == 60 + 12


def test_append_in_commits_and_rolls_back_with_the_caller(db_path: Path) -> None:
    lg = AuditLog(db_path, KEY)
    c = sqlite3.connect(db_path, isolation_level=None)
    c.execute("CREATE TABLE requests (id TEXT)")
    with pytest.raises(AuditError):
        lg.append_in(c, audit.REQUEST, "r1", "backend", [])  # not inside a transaction
    c.execute("BEGIN IMMEDIATE")
    c.execute("INSERT INTO requests VALUES ('r1')")
    lg.append_in(c, audit.REQUEST, "r1", "backend", ["submitted"])
    c.execute("ROLLBACK")
    assert lg.head() == (0, GENESIS)
    c.execute("BEGIN IMMEDIATE")
    entry = lg.append_in(c, audit.REQUEST, "r1", "backend", ["submitted"])
    c.execute("COMMIT")
    assert lg.head() == (1, entry.hash) and _verify(db_path).ok


# --- export ---------------------------------------------------------------------------------------------
def _export(log: AuditLog, since_seq: int = 0) -> list[str]:
    out = io.StringIO()
    log.export(out, since_seq)
    return out.getvalue().splitlines()


def test_export_round_trip(log: AuditLog, db_path: Path) -> None:
    lines = _export(log)
    assert len(lines) == 12 + 2
    report = audit.verify_export(lines, log.public_key_pem())
    assert report == _verify(db_path)
    assert audit.verify_export([(x + "\n").encode() for x in lines], log.public_key_bytes()).ok


def test_partial_export_starts_at_a_checkpoint_boundary(log: AuditLog) -> None:
    for since, first in ((0, 1), (5, 1), (6, 6), (8, 6), (11, 11), (99, 11)):
        lines = _export(log, since)
        report = audit.verify_export(lines, KEY.public_key())
        assert report.ok and report.first_seq == first and report.last_seq == 12, since
    # An auditor who kept the head of an earlier export links the two.
    h9, h10 = (e.hash for e in log.entries(9, limit=2))
    assert audit.verify_export(_export(log, 8), KEY.public_key(), anchor=(10, h10)).ok
    assert audit.verify_export(_export(log, 11), KEY.public_key(), anchor=(10, h10)).ok
    assert _bad(audit.verify_export(_export(log, 11), KEY.public_key(), anchor=(10, h9))) == (10, "anchor_mismatch")
    assert _bad(audit.verify_export(_export(log, 11), KEY.public_key(), anchor=(9, h9))) == (9, "anchor_mismatch")


def test_verify_export_rejects_a_truncated_middle(log: AuditLog) -> None:
    lines = _export(log)
    assert _bad(audit.verify_export(lines[:7] + lines[8:], KEY.public_key())) == (7, "seq_gap")


def test_verify_export_rejects_a_truncated_end(log: AuditLog) -> None:
    lines = _export(log)
    assert _bad(audit.verify_export(lines[:-1], KEY.public_key())) == (13, "truncated")
    assert _bad(audit.verify_export(lines[:-3] + lines[-1:], KEY.public_key())) == (11, "truncated")


def test_verify_export_rejects_tampered_lines(log: AuditLog) -> None:
    lines = _export(log)
    forged = lines[3].replace('"actor":"backend-1"', '"actor":"mallory"')
    assert forged != lines[3]
    assert _bad(audit.verify_export([*lines[:3], forged, *lines[4:]], KEY.public_key())) == (3, "hash_mismatch")
    broken = lines[3].replace('"hash":"', '"hash":"zz')
    assert _bad(audit.verify_export([*lines[:3], broken, *lines[4:]], KEY.public_key())) == (3, "malformed_entry")
    assert _bad(audit.verify_export(lines[1:], KEY.public_key()))[1] == "export_malformed"
    assert _bad(audit.verify_export([], KEY.public_key()))[1] == "export_malformed"
    assert _bad(audit.verify_export([*lines, lines[-1]], KEY.public_key()))[1] == "export_malformed"
    assert _bad(audit.verify_export([*lines[:5], "{}", *lines[5:]], KEY.public_key())) == (5, "export_malformed")


# --- the audit key ----------------------------------------------------------------------------------------
def test_load_or_create_key(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "audit.key"
    key = audit.load_or_create_key(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    again = audit.load_or_create_key(path)
    assert again.public_key() == key.public_key()
    with pytest.raises(AuditError):
        audit.load_public_key(b"\x00" * 31)
