"""The coordinator database's plumbing: one SQLite connection per thread, write transactions, migrations."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import StoreError
from .migrations import DATA_STEPS, MIGRATIONS, SCHEMA_VERSION

AuditHook = Callable[[sqlite3.Connection], object]
"""Writes an audit entry inside the store's open write transaction (`AuditLog.append_in`), so the
entry and the change it records commit together or not at all."""


class Database:
    """Thread-safe access to the coordinator database (one SQLite connection per thread).

    The store's table groups (`KeyTables`, `RequestTables`, ...) extend this class and share its
    connections and transactions; `Store` combines them into the one object callers use.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        clock: Callable[[], float] = time.time,
        busy_timeout_ms: int = 30_000,
        synchronous: str = "NORMAL",
    ) -> None:
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError("synchronous must be NORMAL or FULL")
        self.path = Path(path)
        self._synchronous = synchronous
        self._clock = clock
        self._busy_ms = busy_timeout_ms
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = self._conn()
            self.check_integrity()
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"database {self.path} is corrupt: {exc}") from None
        if str(mode).lower() != "wal":
            raise StoreError(f"cannot put {self.path} in WAL mode (got {mode})")
        self.migrate()

    def check_integrity(self) -> None:
        """`PRAGMA quick_check` over the whole file (every page, index and constraint but the
        index-content cross-check): a corrupt database is refused at start, never served as
        INTERNAL errors while health says SERVING."""
        rows = [str(r[0]) for r in self._conn().execute("PRAGMA quick_check").fetchall()]
        if rows != ["ok"]:
            found = "; ".join(" ".join(r.split()) for r in rows[:3])  # one line: SQLite's text has newlines
            raise StoreError(f"database {self.path} is corrupt: {found}")

    # --- plumbing --------------------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=self._busy_ms / 1000
            )
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute(f"PRAGMA busy_timeout={int(self._busy_ms)}")
            conn.execute(f"PRAGMA synchronous={self._synchronous}")
            self._local.conn = conn
            with self._all_lock:
                self._all.append(conn)
        return conn

    @contextmanager
    def _tx(self, *, durable: bool = False) -> Iterator[sqlite3.Connection]:
        """One write transaction, taking the database write lock up front; `durable` fsyncs its commit."""
        conn = self._conn()
        if durable:
            conn.execute("PRAGMA synchronous=FULL")
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            if durable:
                conn.execute(f"PRAGMA synchronous={self._synchronous}")

    def close(self) -> None:
        """Close every connection this store opened."""
        with self._all_lock:
            conns, self._all = self._all, []
        for c in conns:
            c.close()
        self._local = threading.local()

    def now(self) -> float:
        """The store's clock (seconds since the epoch)."""
        return self._clock()

    # --- schema --------------------------------------------------------------------------------------
    def schema_version(self) -> int:
        """The highest applied migration (0 for an empty database)."""
        row = self._conn().execute("SELECT max(version) FROM schema_version").fetchone()
        return int(row[0] or 0)

    def migrate(self) -> list[int]:
        """Apply every pending migration in order, in one transaction; returns the versions applied."""
        applied: list[int] = []
        with self._tx(durable=True) as c:
            c.execute(
                "CREATE TABLE IF NOT EXISTS schema_version ("
                "version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at REAL NOT NULL)"
            )
            current = int(c.execute("SELECT max(version) FROM schema_version").fetchone()[0] or 0)
            if current > SCHEMA_VERSION:
                raise StoreError(f"database schema v{current} is newer than this coordinator (v{SCHEMA_VERSION})")
            for version, description, statements in MIGRATIONS:
                if version <= current:
                    continue
                for sql in statements:
                    c.execute(sql)
                if version in DATA_STEPS:
                    DATA_STEPS[version](c)
                c.execute("INSERT INTO schema_version VALUES (?, ?, ?)", (version, description, self.now()))
                applied.append(version)
        return applied
