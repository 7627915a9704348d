"""The audit log writer: chain, checkpoints, kinds, append-only table, concurrency, transactions, key file."""

from __future__ import annotations

import itertools
import os
import sqlite3
import stat
import threading
from pathlib import Path

import pytest

from coordinator import audit
from coordinator.audit import GENESIS, AuditError, AuditLog, VerifyReport
from signer.policy.merkle import merkle_root

from .support import CHECKPOINTS, KEY, OTHER_KEY, bad, verify_file


def test_append_and_verify_on_a_file(log: AuditLog, db_path: Path) -> None:
    report = verify_file(db_path)
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
    assert bad(audit.verify(db_path, OTHER_KEY.public_key())) == (5, "checkpoint_signature")


def test_reopen_continues_the_chain(log: AuditLog, db_path: Path) -> None:
    head = log.head()
    log.close()
    again = AuditLog(db_path, KEY, checkpoint_every=4)
    entry = again.append(audit.FREEZE, "all", "officer-1", ["freeze"])
    assert (entry.seq, entry.prev_hash) == (13, head[1])
    assert entry.view == {"values": ["freeze"]}
    assert verify_file(db_path).ok


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
    assert verify_file(db_path).ok


# --- concurrency and transactions -------------------------------------------------------------------------
def hammer(lg: AuditLog, threads: int, per_thread: int) -> None:
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
    hammer(lg, 8, 25)
    report = verify_file(db_path)
    assert report.ok and report.entries - report.checkpoints == 200 and report.checkpoints == 200 // 16
    assert sorted(e.subject for e in lg.entries() if e.kind == "request") == sorted(
        f"t{t}-{i}" for t in range(8) for i in range(25)
    )
    lg.close()


def test_concurrent_appends_on_a_shared_connection(db_path: Path) -> None:
    conn = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    lg = AuditLog(conn, KEY, checkpoint_every=5)
    hammer(lg, 4, 15)
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
    assert lg.head() == (1, entry.hash) and verify_file(db_path).ok


# --- the audit key ----------------------------------------------------------------------------------------
def test_load_or_create_key(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "audit.key"
    key = audit.load_or_create_key(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    again = audit.load_or_create_key(path)
    assert again.public_key() == key.public_key()
    with pytest.raises(AuditError):
        audit.load_public_key(b"\x00" * 31)
