"""PostgreSQL for the coordinator's store: a psycopg 3 connection pool and the connection wrapper.

The store's tables run unchanged on it: `PgConnection.execute` translates each statement
(`coordinator.dbapi.translate`) and rows read by column name or index, as `sqlite3.Row`s do.
Connections are in autocommit mode; a write is one explicit transaction (`Database._tx`), a read
one statement. The isolation level is PostgreSQL's default, READ COMMITTED: every read-then-write
the store makes locks what it read (`SELECT ... FOR UPDATE`, `FOR UPDATE SKIP LOCKED` to reserve
a presignature, `dbapi.serialise` for the audit chain and the ledger), which is what makes several
coordinator replicas on one database safe (docs/architecture.md, "Replicas").
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import pq
from psycopg_pool import ConnectionPool

from ..dbapi import POSTGRESQL, Cursor, translate
from .errors import StoreError

SCHEMES = ("postgresql://", "postgres://")


def is_postgres_url(target: object) -> bool:
    """Whether a database target names a PostgreSQL server rather than a SQLite file."""
    return isinstance(target, str) and target.startswith(SCHEMES)


class Row(Sequence[Any]):
    """One result row, read by column name or by index (like `sqlite3.Row`)."""

    __slots__ = ("_names", "_values")

    def __init__(self, names: dict[str, int], values: Sequence[Any]) -> None:
        self._names = names
        self._values = values

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return self._values[self._names[key]]
        return self._values[key]

    def __len__(self) -> int:
        return len(self._values)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def keys(self) -> list[str]:
        """The column names, in order."""
        return list(self._names)


def _row_maker(cursor: Any) -> Callable[[Sequence[Any]], Row]:
    names = {c.name: i for i, c in enumerate(cursor.description or ())}
    return lambda values: Row(names, values)


class PgConnection:
    """A pooled psycopg connection speaking the store's SQL (see `coordinator.dbapi`)."""

    dialect = POSTGRESQL

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    @property
    def in_transaction(self) -> bool:
        """Inside an open transaction."""
        return self._conn.info.transaction_status != pq.TransactionStatus.IDLE

    def execute(self, sql: str, parameters: Any = (), /) -> Cursor:
        """Run one statement (translated), with `?` parameters."""
        return self._conn.execute(translate(sql, POSTGRESQL), tuple(parameters))

    def execute_ddl(self, statement: str) -> None:
        """Run a schema statement as written (no parameters: `%` and `$$` pass through)."""
        self._conn.execute(statement.encode())


class PgPool:
    """The coordinator's pool of PostgreSQL connections (`max_size` at most open at once)."""

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 16, timeout: float = 30.0) -> None:
        self.url = url
        try:  # one attempt first: a wrong URL or a server down is refused at once, with libpq's reason
            psycopg.connect(url, connect_timeout=int(max(1, timeout))).close()
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to PostgreSQL ({redact(url)}): {exc}") from None
        self._pool = ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout,
            kwargs={"autocommit": True, "row_factory": _row_maker},
            open=False,
            name="coordinator-store",
        )
        try:
            self._pool.open(wait=True, timeout=timeout)
        except Exception as exc:  # PoolTimeout, OperationalError: the message names the cause
            self._pool.close()
            raise StoreError(f"cannot connect to PostgreSQL ({redact(url)}): {exc}") from None

    @contextmanager
    def read(self) -> Iterator[PgConnection]:
        """A connection for reads (each statement its own snapshot)."""
        with self._pool.connection() as conn:
            yield PgConnection(conn)

    @contextmanager
    def transaction(self) -> Iterator[PgConnection]:
        """One transaction on one connection: committed on exit, rolled back on an exception."""
        with self._pool.connection() as conn, conn.transaction():
            yield PgConnection(conn)

    def close(self) -> None:
        """Close every connection."""
        self._pool.close()


def redact(url: str) -> str:
    """The URL without its password (for messages and logs)."""
    scheme, sep, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if not at or ":" not in creds:
        return url
    return f"{scheme}{sep}{creds.split(':', 1)[0]}:***@{host}"
