"""The store's database: WAL, foreign keys, migrations applied once and in order."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from coordinator import store as st
from coordinator.dbapi import SQLITE, ddl
from coordinator.store import Store

from .conftest import add_key
from .support import SIGNERS, presigs


@pytest.fixture
def db(tmp_path: Path) -> Store:
    """This file checks the SQLite file itself (WAL, pragmas, integrity): SQLite only."""
    return add_key(Store(tmp_path / "coordinator.db"))


def test_wal_foreign_keys_and_schema_version(tmp_path: Path) -> None:
    s = Store(tmp_path / "a.db")
    assert s.schema_version() == st.SCHEMA_VERSION
    conn = sqlite3.connect(tmp_path / "a.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert s._conn().execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL; see the module docstring
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"schema_version", "keys", "presignatures", "requests", "request_events", "sessions"} <= tables
    with pytest.raises(sqlite3.IntegrityError):  # foreign keys are enforced on the store's connections
        s.add_presignature(b"p", "no-such-key", SIGNERS, (), b"", 0)


def test_migrations_are_idempotent(tmp_path: Path, db: Store) -> None:
    presigs(db, 2)
    assert db.migrate() == []
    again = Store(db.path)
    assert again.migrate() == []
    assert again.schema_version() == st.SCHEMA_VERSION
    versions = sqlite3.connect(db.path).execute("SELECT version FROM schema_version").fetchall()
    assert [v for (v,) in versions] == [m[0] for m in st.MIGRATIONS]
    assert again.get_key("k1").name == "hot"
    assert again.count_ready("k1", SIGNERS, (), 0) == 2


def test_concurrent_opens_migrate_once(tmp_path: Path) -> None:
    path = tmp_path / "race.db"
    errors: list[BaseException] = []

    def open_store() -> None:
        try:
            Store(path)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sqlite3.connect(path).execute("SELECT count(*) FROM schema_version").fetchone()[0] == len(st.MIGRATIONS)


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    s = Store(tmp_path / "new.db")
    conn = sqlite3.connect(s.path)
    conn.execute("INSERT INTO schema_version VALUES (999, 'from the future', 0)")
    conn.commit()
    with pytest.raises(st.StoreError, match="newer"):
        Store(s.path)


def test_a_v1_database_migrates_and_keeps_its_requests(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(
        "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at REAL NOT NULL)"
    )
    for statement in st.MIGRATIONS[0][2]:
        if sql := ddl(statement, SQLITE):  # the SQLite side of a statement written per dialect
            conn.execute(sql)
    conn.execute("INSERT INTO schema_version VALUES (1, 'initial schema', 0)")
    conn.execute("INSERT INTO keys VALUES ('k1', 'hot', 2, '[1,2,3]', '112', x'02', x'22', 0, x'00', 0)")
    conn.execute(
        "INSERT INTO requests (request_id, key_id, idempotency_key, body_hash, state, tx, path, created_at, "
        "updated_at) VALUES ('old', 'k1', 'i-old', 'b', 'signed', '{}', '[]', 0, 0)"
    )
    conn.close()
    s = Store(path)
    assert s.schema_version() == st.SCHEMA_VERSION
    old = s.get_request("old")
    assert (old.kind, old.initiator, old.intent, old.expires_at, old.approved_by) == ("withdrawal", "", b"", 0, ())
    # Migration 11 rebuilt the table: the key is scoped per initiator, foreign keys still hold.
    other, created = s.create_request(
        request_id="new", key_id="k1", idempotency_key="i-old", body_hash="b", tx={}, path=(), initiator="backend-b"
    )
    assert created and other.request_id == "new"
    with pytest.raises(st.IdempotencyConflict):
        s.create_request(request_id="x", key_id="k1", idempotency_key="i-old", body_hash="c", tx={}, path=())
    with pytest.raises(sqlite3.IntegrityError):
        s._conn().execute("INSERT INTO request_events VALUES ('no-such-request', 1, 'x', '', 0)")
    indexes = {r[0] for r in s._conn().execute("SELECT name FROM sqlite_master WHERE tbl_name = 'requests'")}
    assert {"requests_by_key", "requests_by_state", "requests_by_idempotency_key"} <= indexes


def _corrupt_the_index_page(path: Path) -> None:
    """Overwrite the header of the requests' index pages (the file is checkpointed: no WAL left)."""
    conn = sqlite3.connect(path)
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    pages = [r[0] for r in conn.execute("SELECT pageno FROM dbstat WHERE name LIKE 'sqlite_autoindex_requests%'")]
    conn.close()
    with open(path, "r+b") as f:
        f.seek((pages[0] - 1) * page_size)  # its b-tree page header
        f.write(b"\xff" * 200)


def test_a_corrupt_database_refuses_to_open_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "coordinator.db"
    Store(path).close()
    if not sqlite3.connect(path).execute("SELECT count(*) FROM pragma_module_list WHERE name='dbstat'").fetchone()[0]:
        pytest.skip("this SQLite has no dbstat table to find an index page")
    _corrupt_the_index_page(path)
    with pytest.raises(st.StoreError, match=rf"^database {path} is corrupt: ") as err:
        Store(path)
    assert "Page " in str(err.value) or "malformed" in str(err.value)  # what quick_check found


def test_a_file_that_is_not_a_database_refuses_to_open_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "coordinator.db"
    path.write_bytes(b"not a database" * 500)
    with pytest.raises(st.StoreError, match=rf"^database {path} is corrupt: file is not a database$"):
        Store(path)
