"""The coordinator database's plumbing: connections, write transactions, migrations.

SQLite (the default: one connection per thread, WAL, `BEGIN IMMEDIATE` writes) or PostgreSQL (a
`postgresql://` target: a connection pool, `store/postgres.py`). The tables' code is the same on
both; where the dialects differ, `coordinator.dbapi` translates.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from ..dbapi import POSTGRESQL, SQLITE, Connection, PerDialect, ddl, serialise, translate
from .errors import StoreError
from .migrations import DATA_STEPS, MIGRATIONS, SCHEMA_VERSION
from .postgres import PgConnection, PgPool, is_postgres_url

AuditHook = Callable[[Connection], object]
"""Writes an audit entry inside the store's open write transaction (`AuditLog.append_in`), so the
entry and the change it records commit together or not at all."""


class SqliteConnection:
    """This thread's SQLite connection speaking the store's SQL (`coordinator.dbapi.translate`)."""

    dialect = SQLITE

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.raw = conn

    @property
    def in_transaction(self) -> bool:
        """Inside an open transaction."""
        return self.raw.in_transaction

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        """Run one statement (translated)."""
        return self.raw.execute(translate(sql, SQLITE), parameters)


class Database:
    """Thread-safe access to the coordinator database: a SQLite file (one connection per thread)
    or, for a `postgresql://` target, a PostgreSQL database (a pool of `pool_size` connections).

    The store's table groups (`KeyTables`, `RequestTables`, ...) extend this class and share its
    connections and transactions; `Store` combines them into the one object callers use. `home`
    is the directory of the files that go with the database (the audit key): the SQLite file's
    directory, or given for PostgreSQL (default: the working directory). `replica` names this
    coordinator among those sharing the database: it owns what it puts in flight (store/replicas.py).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        clock: Callable[[], float] = time.time,
        busy_timeout_ms: int = 30_000,
        synchronous: str = "NORMAL",
        home: str | Path | None = None,
        pool_size: int = 16,
        replica: str = "coordinator",
    ) -> None:
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError("synchronous must be NORMAL or FULL")
        self._clock = clock
        self._batch = threading.local()  # `conn`: the thread's open `batch` transaction, if any
        self._pool: PgPool | None = None
        self.target = path  # what opens this database again (another Store on it, another replica)
        self.replica = replica  # this coordinator's name among the replicas sharing the database
        if is_postgres_url(path):
            self.dialect = POSTGRESQL
            self.home = Path(home) if home is not None else Path.cwd()
            self.path = self.home  # no file of its own; the files that go with it (audit key) live in `home`
            self._pool = PgPool(str(path), max_size=pool_size, timeout=busy_timeout_ms / 1000)
            self.migrate()
            return
        self.dialect = SQLITE
        self.path = Path(path)
        self.home = Path(home) if home is not None else self.path.parent
        self._synchronous = synchronous
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
        """This thread's SQLite connection (SQLite only: PostgreSQL connections are lent by `_read`/`_tx`)."""
        if self._pool is not None:
            raise StoreError("a PostgreSQL store has no per-thread connection; use _read or _tx")
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
    def _read(self) -> Iterator[Connection]:
        """A connection to read on (inside this thread's `batch`: its transaction, so it reads its own writes)."""
        joined: Connection | None = getattr(self._batch, "conn", None)
        if joined is not None:
            yield joined
        elif self._pool is not None:
            with self._pool.read() as pg:
                yield pg
        else:
            yield SqliteConnection(self._conn())

    def _one(self, sql: str, parameters: Sequence[object] = ()) -> Any:
        """The first row of a query, or None."""
        with self._read() as c:
            return c.execute(sql, tuple(parameters)).fetchone()

    def _rows(self, sql: str, parameters: Sequence[object] = ()) -> list[Any]:
        """Every row of a query."""
        with self._read() as c:
            return c.execute(sql, tuple(parameters)).fetchall()

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Every store write this thread makes inside the block commits as one transaction, or none
        does (an exception rolls all of them back). Each write is a savepoint within it, so a write
        that raises undoes only itself if the caller goes on. Nested batches join the outer one.
        Keep the block short and free of network calls: on SQLite it holds the database's write lock."""
        if getattr(self._batch, "conn", None) is not None:
            yield
            return
        with self._tx() as c:
            self._batch.conn = c
            try:
                yield
            finally:
                self._batch.conn = None

    @contextmanager
    def _tx(self, *, durable: bool = False) -> Iterator[Connection]:
        """One write transaction (SQLite: taking the database write lock up front; `durable` fsyncs
        its commit. PostgreSQL: every commit is durable; rows are locked by the statements). Inside
        this thread's `batch`, a savepoint of the batch's transaction instead."""
        joined: Connection | None = getattr(self._batch, "conn", None)
        if joined is not None:
            joined.execute("SAVEPOINT store_write")
            try:
                yield joined
            except BaseException:
                joined.execute("ROLLBACK TO SAVEPOINT store_write")
                joined.execute("RELEASE SAVEPOINT store_write")
                raise
            joined.execute("RELEASE SAVEPOINT store_write")
            return
        if self._pool is not None:
            with self._pool.transaction() as pg:
                yield pg
            return
        conn = self._conn()
        if durable:
            conn.execute("PRAGMA synchronous=FULL")
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield SqliteConnection(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            if durable:
                conn.execute(f"PRAGMA synchronous={self._synchronous}")

    # The audit log writes through these when it shares a PostgreSQL store (coordinator/audit/writer.py).
    def transaction(self) -> AbstractContextManager[Connection]:
        """`_tx` for the audit log."""
        return self._tx()

    def reading(self) -> AbstractContextManager[Connection]:
        """`_read` for the audit log."""
        return self._read()

    def close(self) -> None:
        """Close every connection this store opened."""
        if self._pool is not None:
            self._pool.close()
            return
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
        return int(self._one("SELECT max(version) FROM schema_version")[0] or 0)

    def migrate(self) -> list[int]:
        """Apply every pending migration in order, in one transaction; returns the versions applied."""
        applied: list[int] = []
        with self._foreign_keys_held(), self._tx(durable=True) as c:
            serialise(c, "migrate")  # replicas starting together: one migrates, the others see it done
            _run_ddl(
                c,
                "CREATE TABLE IF NOT EXISTS schema_version ("
                "version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at REAL NOT NULL)",
            )
            current = int(c.execute("SELECT max(version) FROM schema_version").fetchone()[0] or 0)
            if current > SCHEMA_VERSION:
                raise StoreError(f"database schema v{current} is newer than this coordinator (v{SCHEMA_VERSION})")
            for version, description, statements in MIGRATIONS:
                if version <= current:
                    continue
                for statement in statements:
                    _run_ddl(c, statement)
                if version in DATA_STEPS:
                    DATA_STEPS[version](c)
                c.execute("INSERT INTO schema_version VALUES (?, ?, ?)", (version, description, self.now()))
                applied.append(version)
            if self._pool is None and c.execute("PRAGMA foreign_key_check").fetchone() is not None:
                raise StoreError(f"database {self.path}: a migration left a dangling reference")
        return applied

    @contextmanager
    def _foreign_keys_held(self) -> Iterator[None]:
        """SQLite: foreign keys off while migrating (a rebuilt table is dropped and made again, which
        the pragma cannot allow inside a transaction); `migrate` checks them before it commits."""
        if self._pool is not None:
            yield
            return
        conn = self._conn()
        conn.execute("PRAGMA foreign_keys=OFF")
        try:
            yield
        finally:
            conn.execute("PRAGMA foreign_keys=ON")


def _run_ddl(c: Connection, statement: str | PerDialect) -> None:
    """One schema statement in the connection's dialect."""
    if isinstance(c, PgConnection):
        text = ddl(statement, POSTGRESQL)
        if text:
            c.execute_ddl(text)
    else:
        text = ddl(statement, SQLITE)
        if text:
            c.execute(text)
