"""The audit log's writer: appends hash-chained entries and signs Merkle checkpoints.

Every `checkpoint_every` entries, and on demand, the log appends a `checkpoint` entry (see
`format`). Auditors get the public key once (`AuditLog.public_key_pem`) and check the log, or an
offline export of it, with `verifier.verify` / `verifier.verify_export`.

There is no update or delete path in this API, and triggers make UPDATE, DELETE and out-of-sequence
INSERT through SQL fail. Appends are serialized (a process lock plus `BEGIN IMMEDIATE` on SQLite;
on PostgreSQL a transaction-scoped advisory lock, `dbapi.serialise`, taken before the chain's head
is read), so this is safe to share between the threads of a gRPC server and between processes (or
coordinator replicas) using the same database: the log stays one chain.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Protocol, TextIO

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from signer.policy.merkle import merkle_root
from signer.tss.encoding import Value, encode_value
from signer.tss.errors import TssError

from ..dbapi import SQLITE, Connection, ddl, serialise
from .format import (
    CHECKPOINT,
    GENESIS,
    INSERT_ENTRY,
    KIND_PATTERN,
    SCHEMA,
    SELECT_ENTRIES_FROM,
    AuditEntry,
    AuditError,
    canonical_json,
    checkpoint_body,
    checkpoint_message,
    entry_from_row,
    entry_hash,
    entry_row,
    export,
    render_values,
)
from .verifier import VerifyReport, verify


def load_or_create_key(path: str | Path) -> Ed25519PrivateKey:
    """The audit signing key in a PEM file (PKCS8), created with mode 0600 if it does not exist."""
    p = Path(path)
    if p.exists():
        key = serialization.load_pem_private_key(p.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise AuditError(f"{p} does not hold an Ed25519 key")
        return key
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, p)
    return key


class TxSource(Protocol):
    """A database the log shares transactions with (the coordinator's `Store`, any dialect)."""

    def transaction(self) -> AbstractContextManager[Connection]: ...

    def reading(self) -> AbstractContextManager[Connection]: ...


def ensure_schema(conn: sqlite3.Connection) -> None:
    """Create the audit table, index and triggers if missing in a SQLite database (conn must not be
    inside a transaction; a store's migrations create them in either dialect)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        for statement in SCHEMA:
            text = ddl(statement, SQLITE)
            if text:
                conn.execute(text)
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


# --- the log ------------------------------------------------------------------------------------------
class AuditLog:
    """Appends entries and checkpoints to the `audit_log` table of one database.

    Give it a SQLite database path (one connection per thread, WAL), an open SQLite connection
    (made with `check_same_thread=False` and used under this object's lock) or a `TxSource` (the
    store, whose migrations made the table: how a PostgreSQL store gets its log); `key` signs the
    checkpoints.
    """

    def __init__(
        self,
        db: str | Path | sqlite3.Connection | TxSource,
        key: Ed25519PrivateKey,
        *,
        clock: Callable[[], float] = time.time,
        checkpoint_every: int = 256,
        busy_timeout_ms: int = 30_000,
        synchronous: str = "NORMAL",
    ) -> None:
        if checkpoint_every < 0:
            raise AuditError("checkpoint_every must be >= 0 (0 disables automatic checkpoints)")
        if synchronous not in ("NORMAL", "FULL"):
            raise AuditError("synchronous must be NORMAL or FULL")
        self._key = key
        self._clock = clock
        self._every = checkpoint_every
        self._busy_ms = busy_timeout_ms
        self._synchronous = synchronous
        self._lock = threading.Lock()
        self._local = threading.local()
        self._opened: list[sqlite3.Connection] = []
        self._opened_lock = threading.Lock()
        self._shared: sqlite3.Connection | None = None
        self._source: TxSource | None = None
        self.path: Path | None = None
        if isinstance(db, sqlite3.Connection):
            self._shared = db
        elif not isinstance(db, str | Path):
            self._source = db
            return
        else:
            self.path = Path(db)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            mode = self._conn().execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise AuditError(f"cannot put {self.path} in WAL mode (got {mode})")
        with self._lock:
            ensure_schema(self._conn())

    # --- plumbing ------------------------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        if self._shared is not None:
            return self._shared
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            assert self.path is not None
            conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=self._busy_ms / 1000
            )
            conn.execute(f"PRAGMA busy_timeout={int(self._busy_ms)}")
            conn.execute(f"PRAGMA synchronous={self._synchronous}")
            self._local.conn = conn
            with self._opened_lock:
                self._opened.append(conn)
        return conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        if self._source is not None:
            with self._source.reading() as conn:
                yield conn
        elif self._shared is None:
            yield self._conn()
        else:
            with self._lock:
                yield self._shared

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        if self._source is not None:
            with self._source.transaction() as conn:
                yield conn
            return
        # The process lock keeps this process's threads from spinning in SQLite's busy handler;
        # BEGIN IMMEDIATE serializes against other processes and against `append_in` callers.
        with self._lock:
            conn = self._conn()
            if conn.in_transaction:
                raise AuditError("the connection is inside a transaction; use append_in")
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def close(self) -> None:
        """Close the connections this log opened (not a connection it was given)."""
        with self._lock, self._opened_lock:
            for conn in self._opened:
                conn.close()
            self._opened.clear()
        self._local = threading.local()

    # --- keys --------------------------------------------------------------------------------------
    @property
    def public_key(self) -> Ed25519PublicKey:
        """The key auditors verify checkpoints with."""
        return self._key.public_key()

    def public_key_bytes(self) -> bytes:
        """The audit public key, 32 raw bytes."""
        return self.public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    def public_key_pem(self) -> str:
        """The audit public key as PEM (SubjectPublicKeyInfo), for auditors."""
        return self.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()

    def sign(self, message: bytes) -> bytes:
        """Sign a domain-separated message with the audit key (checkpoints and report attestations
        use distinct `encode` tags, so one can never pass for the other)."""
        return self._key.sign(message)

    # --- writing ---------------------------------------------------------------------------------
    def append(
        self,
        kind: str,
        subject: str,
        actor: str,
        body_values: Sequence[Value],
        json_view: Mapping[str, Any] | None = None,
    ) -> AuditEntry:
        """Append one entry in its own transaction (plus a checkpoint when one is due)."""
        with self._write() as conn:
            return self._append_locked(conn, kind, subject, actor, body_values, json_view)

    def append_in(
        self,
        conn: Connection,
        kind: str,
        subject: str,
        actor: str,
        body_values: Sequence[Value],
        json_view: Mapping[str, Any] | None = None,
    ) -> AuditEntry:
        """Append inside the caller's open write transaction on the same database (`BEGIN IMMEDIATE`
        already run), so the entry commits or rolls back with the caller's own change."""
        if not conn.in_transaction:
            raise AuditError("append_in needs a connection inside a write transaction (BEGIN IMMEDIATE)")
        return self._append_locked(conn, kind, subject, actor, body_values, json_view)

    def checkpoint(self) -> AuditEntry | None:
        """Sign a checkpoint over the entries since the last one now; None if there are none."""
        with self._write() as conn:
            return self._checkpoint_locked(conn)

    def _append_locked(
        self,
        conn: Connection,
        kind: str,
        subject: str,
        actor: str,
        body_values: Sequence[Value],
        json_view: Mapping[str, Any] | None,
    ) -> AuditEntry:
        if kind == CHECKPOINT or not KIND_PATTERN.fullmatch(kind):
            raise AuditError(f"invalid entry kind {kind!r}")
        serialise(conn, "audit_chain")  # before the head is read: one chain whichever replica appends
        try:
            body = encode_value(list(body_values))
        except TssError as exc:
            raise AuditError(f"body: {exc}") from exc
        text = canonical_json({"values": render_values(list(body_values))} if json_view is None else json_view)
        entry = self._insert(conn, kind, subject, actor, body, text)
        if self._every and entry.seq - _last_checkpoint(conn) >= self._every:
            self._checkpoint_locked(conn)
        return entry

    def _checkpoint_locked(self, conn: Connection) -> AuditEntry | None:
        serialise(conn, "audit_chain")
        since = _last_checkpoint(conn)
        rows = conn.execute("SELECT seq, hash FROM audit_log WHERE seq > ? ORDER BY seq", (since,)).fetchall()
        if not rows:
            return None
        first, last = since + 1, int(rows[-1][0])
        root = merkle_root([bytes(r[1]) for r in rows])
        body, text = checkpoint_body(first, last, root, self._key.sign(checkpoint_message(first, last, root)))
        return self._insert(conn, CHECKPOINT, f"{first}-{last}", "coordinator", body, text)

    def _insert(self, conn: Connection, kind: str, subject: str, actor: str, body: bytes, text: str) -> AuditEntry:
        row = conn.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
        seq, prev = (int(row[0]) + 1, bytes(row[1])) if row else (1, GENESIS)
        at = int(self._clock())
        h = entry_hash(seq, at, kind, subject, actor, body, text, prev)
        entry = AuditEntry(seq, at, kind, subject, actor, body, text, prev, h)
        conn.execute(INSERT_ENTRY, entry_row(entry))
        return entry

    # --- reading ---------------------------------------------------------------------------------
    def head(self) -> tuple[int, bytes]:
        """(seq, hash) of the last entry; (0, GENESIS) while the log is empty."""
        with self._read() as conn:
            row = conn.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
        return (int(row[0]), bytes(row[1])) if row else (0, GENESIS)

    def entries(self, since_seq: int = 1, limit: int | None = None) -> list[AuditEntry]:
        """The entries from `since_seq` on, in order (at most `limit` of them)."""
        with self._read() as conn:
            if limit is None:
                rows = conn.execute(SELECT_ENTRIES_FROM, (since_seq,)).fetchall()
            else:
                rows = conn.execute(SELECT_ENTRIES_FROM + " LIMIT ?", (since_seq, limit)).fetchall()
        return [entry_from_row(r) for r in rows]

    def about(self, subject: str, limit: int) -> list[AuditEntry]:
        """The first `limit` entries about `subject` (a request id, a key id), in order."""
        with self._read() as conn:
            rows = conn.execute(
                SELECT_ENTRIES_FROM.replace("WHERE seq >= ?", "WHERE subject = ? AND seq >= ?") + " LIMIT ?",
                (subject, 0, limit),
            ).fetchall()
        return [entry_from_row(r) for r in rows]

    def rows(self, since_seq: int, limit: int) -> list[Any]:
        """Up to `limit` raw rows from `since_seq` on, in order (what `verifier` checks)."""
        with self._read() as conn:
            return list(conn.execute(SELECT_ENTRIES_FROM + " LIMIT ?", (since_seq, limit)).fetchall())

    def export(self, out: TextIO, since_seq: int = 0) -> int:
        """`export` of this log."""
        with self._read() as conn:
            return export(conn, out, since_seq)

    def verify(self, *, anchor: tuple[int, bytes] | None = None) -> VerifyReport:
        """`verify` of this log with its own public key."""
        with self._read() as conn:
            return verify(conn, self.public_key, anchor=anchor)


def _last_checkpoint(conn: Connection) -> int:
    row = conn.execute("SELECT max(seq) FROM audit_log WHERE kind = ?", (CHECKPOINT,)).fetchone()
    return int(row[0] or 0)
