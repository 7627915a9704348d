"""The coordinator's persistence: one SQLite file in WAL mode, schema migrated on open.

Tables: `keys`, `presignatures`, `requests`, `request_events`, `sessions`, and `schema_version`
(one row per applied migration). Every write runs in its own `BEGIN IMMEDIATE` transaction, so
a read-then-write (reserving a presignature, creating a request under an idempotency key) is
atomic across threads and across processes sharing the file.

Presignature states: ready -> reserved -> consumed | failed (and ready -> failed when voided).
A reserved presignature never goes back to ready, whatever happens to its request: the signers
may already have released partial signatures from it.

Durability: WAL with `synchronous=NORMAL` by default, so a commit survives a crash of the
coordinator process but the last commits may be lost if the machine itself goes down. That costs
availability, never safety: single use of a presignature is enforced by each signer, which deletes
it durably before releasing σ_i, so a presignature this database "forgets" it reserved is refused
by the signers, and a lost request row only means a retried submit signs the same transaction
again. Key creation is written with `synchronous=FULL` (a lost key row would orphan the shares).
Pass `synchronous="FULL"` to make every commit durable (one fsync each).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from signer.tss.errors import Blame

# --- request states (the lifecycle of DESIGN.md §5; policy and approvals come later) -------------
SUBMITTED = "submitted"
PENDING_APPROVAL = "pending_approval"
APPROVED = "approved"
SIGNING = "signing"
SIGNED = "signed"
REJECTED = "rejected"
EXPIRED = "expired"
FAILED = "failed"
FINAL_STATES = frozenset({SIGNED, REJECTED, EXPIRED, FAILED})
TRANSITIONS: dict[str, frozenset[str]] = {
    SUBMITTED: frozenset({PENDING_APPROVAL, APPROVED, SIGNING, REJECTED, FAILED}),
    PENDING_APPROVAL: frozenset({APPROVED, REJECTED, EXPIRED, FAILED}),
    APPROVED: frozenset({SIGNING, EXPIRED, FAILED}),
    SIGNING: frozenset({SIGNING, SIGNED, FAILED}),
}
"""Allowed moves; SIGNING -> SIGNING records a retry with another signer set."""

# --- presignature states ----------------------------------------------------------------------------
READY = "ready"
RESERVED = "reserved"
CONSUMED = "consumed"
PRESIG_FAILED = "failed"

MIGRATIONS: tuple[tuple[int, str, tuple[str, ...]], ...] = (
    (
        1,
        "initial schema",
        (
            """CREATE TABLE keys (
                key_id TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                threshold INTEGER NOT NULL,
                parties TEXT NOT NULL,
                level TEXT NOT NULL,
                public_key BLOB NOT NULL,
                chain_code BLOB NOT NULL,
                epoch INTEGER NOT NULL,
                aux_epoch BLOB NOT NULL,
                created_at REAL NOT NULL)""",
            """CREATE TABLE presignatures (
                presig_id TEXT PRIMARY KEY,
                key_id TEXT NOT NULL REFERENCES keys(key_id),
                signers TEXT NOT NULL,
                path TEXT NOT NULL,
                public BLOB NOT NULL,
                state TEXT NOT NULL CHECK (state IN ('ready', 'reserved', 'consumed', 'failed')),
                epoch INTEGER NOT NULL,
                request_id TEXT REFERENCES requests(request_id),
                created_at REAL NOT NULL,
                updated_at REAL NOT NULL)""",
            "CREATE INDEX presignatures_pick ON presignatures(key_id, state, epoch, signers, path, created_at)",
            """CREATE TABLE requests (
                request_id TEXT PRIMARY KEY,
                key_id TEXT NOT NULL REFERENCES keys(key_id),
                idempotency_key TEXT NOT NULL UNIQUE,
                body_hash TEXT NOT NULL,
                state TEXT NOT NULL,
                tx TEXT NOT NULL,
                path TEXT NOT NULL,
                digest BLOB,
                r BLOB,
                s BLOB,
                v INTEGER,
                raw_tx BLOB,
                tx_hash BLOB,
                from_address TEXT NOT NULL DEFAULT '',
                presig_id TEXT,
                blame TEXT NOT NULL DEFAULT '[]',
                error TEXT NOT NULL DEFAULT '',
                error_code TEXT NOT NULL DEFAULT '',
                created_at REAL NOT NULL,
                updated_at REAL NOT NULL)""",
            "CREATE INDEX requests_by_key ON requests(key_id, state, created_at)",
            """CREATE TABLE request_events (
                request_id TEXT NOT NULL REFERENCES requests(request_id),
                seq INTEGER NOT NULL,
                state TEXT NOT NULL,
                detail TEXT NOT NULL,
                at REAL NOT NULL,
                PRIMARY KEY (request_id, seq))""",
            """CREATE TABLE sessions (
                session_id TEXT PRIMARY KEY,
                protocol TEXT NOT NULL,
                key_id TEXT NOT NULL,
                parties TEXT NOT NULL,
                state TEXT NOT NULL CHECK (state IN ('running', 'done', 'failed')),
                blame TEXT NOT NULL DEFAULT '[]',
                error TEXT NOT NULL DEFAULT '',
                started_at REAL NOT NULL,
                ended_at REAL)""",
        ),
    ),
)
"""Ordered migrations: (version, description, statements). Append only; never edit a shipped one."""

SCHEMA_VERSION = MIGRATIONS[-1][0]


class StoreError(Exception):
    """The database cannot do what was asked."""


class NotFound(StoreError):  # noqa: N818 - named like the library's errors
    """No such key, request or presignature."""


class IdempotencyConflict(StoreError):  # noqa: N818 - named like the library's errors
    """The idempotency key is already bound to a request with a different body."""


class InvalidTransition(StoreError):  # noqa: N818 - named like the library's errors
    """A request or presignature state change the lifecycle does not allow."""


# --- records -----------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A key's public data, as created by keygen + aux info."""

    key_id: str
    name: str
    threshold: int
    parties: tuple[int, ...]
    level: str
    public_key: bytes
    chain_code: bytes
    epoch: int
    aux_epoch: bytes
    created_at: float


@dataclass(frozen=True, slots=True)
class PresignatureRecord:
    """A presignature's public data and where it is in its single life."""

    presig_id: str
    key_id: str
    signers: tuple[int, ...]
    path: tuple[int, ...]
    public: bytes
    state: str
    epoch: int
    request_id: str | None
    created_at: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """A signing request: its body, its state and, once signed, its result."""

    request_id: str
    key_id: str
    idempotency_key: str
    body_hash: str
    state: str
    tx: dict[str, Any]
    path: tuple[int, ...]
    digest: bytes
    r: bytes
    s: bytes
    v: int | None
    raw_tx: bytes
    tx_hash: bytes
    from_address: str
    presig_id: str | None
    blame: tuple[Blame, ...]
    error: str
    error_code: str
    created_at: float
    updated_at: float

    @property
    def final(self) -> bool:
        """True once the request can change no more."""
        return self.state in FINAL_STATES


@dataclass(frozen=True, slots=True)
class RequestEvent:
    """One recorded state transition."""

    request_id: str
    seq: int
    state: str
    detail: str
    at: float


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """One protocol session the relay drove."""

    session_id: str
    protocol: str
    key_id: str
    parties: tuple[int, ...]
    state: str
    blame: tuple[Blame, ...]
    error: str
    started_at: float
    ended_at: float | None


# --- column codecs ------------------------------------------------------------------------------------
def ints_json(values: Sequence[int]) -> str:
    """Canonical JSON of an index list (so equal lists compare equal in SQL)."""
    return json.dumps([int(v) for v in values], separators=(",", ":"))


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in json.loads(text))


def blames_json(blames: Sequence[Blame]) -> str:
    """Blames as JSON (evidence hex-encoded)."""
    return json.dumps(
        [{"party": b.party, "round": b.round, "check": b.check, "evidence": b.evidence.hex()} for b in blames],
        separators=(",", ":"),
    )


def _blames(text: str) -> tuple[Blame, ...]:
    return tuple(
        Blame(int(d["party"]), str(d["round"]), str(d["check"]), bytes.fromhex(d["evidence"])) for d in json.loads(text)
    )


def _key(row: sqlite3.Row) -> KeyRecord:
    return KeyRecord(
        row["key_id"],
        row["name"],
        row["threshold"],
        _ints(row["parties"]),
        row["level"],
        bytes(row["public_key"]),
        bytes(row["chain_code"]),
        row["epoch"],
        bytes(row["aux_epoch"]),
        row["created_at"],
    )


def _presig(row: sqlite3.Row) -> PresignatureRecord:
    return PresignatureRecord(
        row["presig_id"],
        row["key_id"],
        _ints(row["signers"]),
        _ints(row["path"]),
        bytes(row["public"]),
        row["state"],
        row["epoch"],
        row["request_id"],
        row["created_at"],
        row["updated_at"],
    )


def _request(row: sqlite3.Row) -> RequestRecord:
    return RequestRecord(
        request_id=row["request_id"],
        key_id=row["key_id"],
        idempotency_key=row["idempotency_key"],
        body_hash=row["body_hash"],
        state=row["state"],
        tx=json.loads(row["tx"]),
        path=_ints(row["path"]),
        digest=bytes(row["digest"] or b""),
        r=bytes(row["r"] or b""),
        s=bytes(row["s"] or b""),
        v=row["v"],
        raw_tx=bytes(row["raw_tx"] or b""),
        tx_hash=bytes(row["tx_hash"] or b""),
        from_address=row["from_address"],
        presig_id=row["presig_id"],
        blame=_blames(row["blame"]),
        error=row["error"],
        error_code=row["error_code"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _session(row: sqlite3.Row) -> SessionRecord:
    return SessionRecord(
        row["session_id"],
        row["protocol"],
        row["key_id"],
        _ints(row["parties"]),
        row["state"],
        _blames(row["blame"]),
        row["error"],
        row["started_at"],
        row["ended_at"],
    )


_REQUEST_RESULT_FIELDS = frozenset(
    {"digest", "r", "s", "v", "raw_tx", "tx_hash", "from_address", "presig_id", "blame", "error", "error_code"}
)


class Store:
    """Thread-safe access to the coordinator database (one SQLite connection per thread)."""

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
        conn = self._conn()
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(f"cannot put {self.path} in WAL mode (got {mode})")
        self.migrate()

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
                c.execute("INSERT INTO schema_version VALUES (?, ?, ?)", (version, description, self.now()))
                applied.append(version)
        return applied

    # --- keys --------------------------------------------------------------------------------------------
    def add_key(self, key: KeyRecord) -> None:
        """Record a newly created key (durably)."""
        with self._tx(durable=True) as c:
            c.execute(
                "INSERT INTO keys VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    key.key_id,
                    key.name,
                    key.threshold,
                    ints_json(key.parties),
                    key.level,
                    key.public_key,
                    key.chain_code,
                    key.epoch,
                    key.aux_epoch,
                    key.created_at,
                ),
            )

    def get_key(self, key_id: str) -> KeyRecord:
        """A key, or NotFound."""
        row = self._conn().execute("SELECT * FROM keys WHERE key_id = ?", (key_id,)).fetchone()
        if row is None:
            raise NotFound(f"no key {key_id!r}")
        return _key(row)

    def list_keys(self) -> list[KeyRecord]:
        """Every key, oldest first."""
        return [_key(r) for r in self._conn().execute("SELECT * FROM keys ORDER BY created_at, key_id")]

    # --- presignatures -----------------------------------------------------------------------------------
    def add_presignature(
        self, presig_id: str, key_id: str, signers: Sequence[int], path: Sequence[int], public: bytes, epoch: int
    ) -> None:
        """Record a fresh presignature as ready."""
        now = self.now()
        with self._tx() as c:
            c.execute(
                "INSERT INTO presignatures VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?, ?)",
                (presig_id, key_id, ints_json(sorted(signers)), ints_json(path), public, READY, epoch, now, now),
            )

    def get_presignature(self, presig_id: str) -> PresignatureRecord:
        """A presignature, or NotFound."""
        row = self._conn().execute("SELECT * FROM presignatures WHERE presig_id = ?", (presig_id,)).fetchone()
        if row is None:
            raise NotFound(f"no presignature {presig_id!r}")
        return _presig(row)

    def count_ready(self, key_id: str, signers: Sequence[int], path: Sequence[int], epoch: int) -> int:
        """Ready presignatures for one (key, signer set, path, epoch)."""
        row = (
            self._conn()
            .execute(
                "SELECT count(*) FROM presignatures "
                "WHERE key_id = ? AND state = ? AND epoch = ? AND signers = ? AND path = ?",
                (key_id, READY, epoch, ints_json(sorted(signers)), ints_json(path)),
            )
            .fetchone()
        )
        return int(row[0])

    def reserve_presignature(
        self, key_id: str, signer_sets: Sequence[Sequence[int]], path: Sequence[int], epoch: int, request_id: str
    ) -> PresignatureRecord | None:
        """In one transaction: move the oldest ready presignature of the first signer set that has one
        (sets in preference order) to reserved for `request_id`; None if no set has one."""
        now = self.now()
        with self._tx() as c:
            for signers in signer_sets:
                row = c.execute(
                    "SELECT presig_id FROM presignatures WHERE key_id = ? AND state = ? AND epoch = ? AND signers = ? "
                    "AND path = ? ORDER BY created_at, presig_id LIMIT 1",
                    (key_id, READY, epoch, ints_json(sorted(signers)), ints_json(path)),
                ).fetchone()
                if row is None:
                    continue
                cur = c.execute(
                    "UPDATE presignatures SET state = ?, request_id = ?, updated_at = ? "
                    "WHERE presig_id = ? AND state = ?",
                    (RESERVED, request_id, now, row["presig_id"], READY),
                )
                if cur.rowcount != 1:  # cannot happen under the write lock; never hand out twice regardless
                    raise StoreError("presignature reservation raced")
                got = c.execute("SELECT * FROM presignatures WHERE presig_id = ?", (row["presig_id"],)).fetchone()
                return _presig(got)
        return None

    def finish_presignature(self, presig_id: str, state: str) -> None:
        """reserved -> consumed (signature made) or failed (anything else); never back to ready."""
        if state not in (CONSUMED, PRESIG_FAILED):
            raise InvalidTransition(f"a reserved presignature ends consumed or failed, not {state!r}")
        with self._tx() as c:
            cur = c.execute(
                "UPDATE presignatures SET state = ?, updated_at = ? WHERE presig_id = ? AND state = ?",
                (state, self.now(), presig_id, RESERVED),
            )
            if cur.rowcount != 1:
                raise InvalidTransition(f"presignature {presig_id} is not reserved")

    def void_presignatures(self, key_id: str, *, keep_epoch: int | None = None) -> int:
        """Mark ready presignatures of a key failed (all, or those not of `keep_epoch`); returns how many."""
        with self._tx() as c:
            if keep_epoch is None:
                cur = c.execute(
                    "UPDATE presignatures SET state = ?, updated_at = ? WHERE key_id = ? AND state = ?",
                    (PRESIG_FAILED, self.now(), key_id, READY),
                )
            else:
                cur = c.execute(
                    "UPDATE presignatures SET state = ?, updated_at = ? WHERE key_id = ? AND state = ? AND epoch != ?",
                    (PRESIG_FAILED, self.now(), key_id, READY, keep_epoch),
                )
            return int(cur.rowcount)

    # --- requests ----------------------------------------------------------------------------------------
    def create_request(
        self,
        *,
        request_id: str,
        key_id: str,
        idempotency_key: str,
        body_hash: str,
        tx: dict[str, Any],
        path: Sequence[int],
    ) -> tuple[RequestRecord, bool]:
        """Insert a submitted request, or return the one already bound to `idempotency_key`.

        Returns (request, created). The same key with a different body raises IdempotencyConflict.
        """
        now = self.now()
        with self._tx() as c:
            row = c.execute("SELECT * FROM requests WHERE idempotency_key = ?", (idempotency_key,)).fetchone()
            if row is not None:
                if row["body_hash"] != body_hash:
                    raise IdempotencyConflict(
                        f"idempotency key {idempotency_key!r} is bound to request {row['request_id']} with another body"
                    )
                return _request(row), False
            if c.execute("SELECT 1 FROM keys WHERE key_id = ?", (key_id,)).fetchone() is None:
                raise NotFound(f"no key {key_id!r}")
            c.execute(
                "INSERT INTO requests (request_id, key_id, idempotency_key, body_hash, state, tx, path, created_at, "
                "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    request_id,
                    key_id,
                    idempotency_key,
                    body_hash,
                    SUBMITTED,
                    json.dumps(tx, sort_keys=True),
                    ints_json(path),
                    now,
                    now,
                ),
            )
            c.execute("INSERT INTO request_events VALUES (?, 1, ?, ?, ?)", (request_id, SUBMITTED, "", now))
            created = c.execute("SELECT * FROM requests WHERE request_id = ?", (request_id,)).fetchone()
        return _request(created), True

    def get_request(self, request_id: str) -> RequestRecord:
        """A request, or NotFound."""
        row = self._conn().execute("SELECT * FROM requests WHERE request_id = ?", (request_id,)).fetchone()
        if row is None:
            raise NotFound(f"no request {request_id!r}")
        return _request(row)

    def list_requests(self, *, key_id: str = "", state: str = "", limit: int = 100) -> list[RequestRecord]:
        """Newest first, optionally filtered by key and state."""
        sql, args = "SELECT * FROM requests WHERE 1=1", list[Any]()
        if key_id:
            sql, args = sql + " AND key_id = ?", [*args, key_id]
        if state:
            sql, args = sql + " AND state = ?", [*args, state]
        rows = self._conn().execute(
            sql + " ORDER BY created_at DESC, request_id LIMIT ?", (*args, max(1, min(limit, 1000)))
        )
        return [_request(r) for r in rows]

    def transition(self, request_id: str, state: str, detail: str = "", **fields: Any) -> RequestRecord:
        """Move a request to `state` (checked against TRANSITIONS), set result fields, record the event."""
        unknown = set(fields) - _REQUEST_RESULT_FIELDS
        if unknown:
            raise StoreError(f"not request result fields: {sorted(unknown)}")
        if "blame" in fields:
            fields["blame"] = blames_json(fields["blame"])
        now = self.now()
        with self._tx() as c:
            row = c.execute("SELECT state FROM requests WHERE request_id = ?", (request_id,)).fetchone()
            if row is None:
                raise NotFound(f"no request {request_id!r}")
            if state not in TRANSITIONS.get(row["state"], frozenset()):
                raise InvalidTransition(f"request {request_id}: {row['state']} -> {state} is not allowed")
            sets = ", ".join(f"{k} = ?" for k in fields)
            c.execute(
                f"UPDATE requests SET state = ?, updated_at = ?{', ' + sets if sets else ''} WHERE request_id = ?",  # noqa: S608 - names from a fixed allow-list
                (state, now, *fields.values(), request_id),
            )
            seq = c.execute("SELECT max(seq) FROM request_events WHERE request_id = ?", (request_id,)).fetchone()[0]
            c.execute(
                "INSERT INTO request_events VALUES (?, ?, ?, ?, ?)", (request_id, int(seq or 0) + 1, state, detail, now)
            )
            out = c.execute("SELECT * FROM requests WHERE request_id = ?", (request_id,)).fetchone()
        return _request(out)

    def events(self, request_id: str, after_seq: int = 0) -> list[RequestEvent]:
        """A request's transitions after `after_seq`, in order."""
        rows = self._conn().execute(
            "SELECT * FROM request_events WHERE request_id = ? AND seq > ? ORDER BY seq", (request_id, after_seq)
        )
        return [RequestEvent(r["request_id"], r["seq"], r["state"], r["detail"], r["at"]) for r in rows]

    def recover(self) -> tuple[int, int]:
        """After a restart: fail requests caught mid-flight and every reserved presignature.

        A reserved presignature may have produced partial signatures before the crash, so it is
        failed, never made ready again. Returns (requests failed, presignatures failed).
        """
        now = self.now()
        with self._tx() as c:
            stuck = [
                r["request_id"]
                for r in c.execute("SELECT request_id FROM requests WHERE state IN (?, ?)", (SUBMITTED, SIGNING))
            ]
            for rid in stuck:
                c.execute(
                    "UPDATE requests SET state = ?, error = ?, error_code = ?, updated_at = ? WHERE request_id = ?",
                    (FAILED, "coordinator restarted while the request was in flight", "internal", now, rid),
                )
                seq = c.execute("SELECT max(seq) FROM request_events WHERE request_id = ?", (rid,)).fetchone()[0]
                c.execute(
                    "INSERT INTO request_events VALUES (?, ?, ?, ?, ?)",
                    (rid, int(seq or 0) + 1, FAILED, "recovered after restart", now),
                )
            cur = c.execute(
                "UPDATE presignatures SET state = ?, updated_at = ? WHERE state = ?", (PRESIG_FAILED, now, RESERVED)
            )
            c.execute(
                "UPDATE sessions SET state = 'failed', error = 'coordinator restarted', ended_at = ? "
                "WHERE state = 'running'",
                (now,),
            )
            return len(stuck), int(cur.rowcount)

    # --- sessions ------------------------------------------------------------------------------------
    def start_session(self, session_id: str, protocol: str, key_id: str, parties: Sequence[int]) -> None:
        """Record a session the relay is starting."""
        with self._tx() as c:
            c.execute(
                "INSERT INTO sessions (session_id, protocol, key_id, parties, state, started_at) "
                "VALUES (?, ?, ?, ?, 'running', ?)",
                (session_id, protocol, key_id, ints_json(parties), self.now()),
            )

    def end_session(self, session_id: str, *, ok: bool, blame: Sequence[Blame] = (), error: str = "") -> None:
        """Record how a session ended."""
        with self._tx() as c:
            cur = c.execute(
                "UPDATE sessions SET state = ?, blame = ?, error = ?, ended_at = ? "
                "WHERE session_id = ? AND state = 'running'",
                ("done" if ok else "failed", blames_json(blame), error, self.now(), session_id),
            )
            if cur.rowcount != 1:
                raise InvalidTransition(f"session {session_id} is not running")

    def get_session(self, session_id: str) -> SessionRecord:
        """A session, or NotFound."""
        row = self._conn().execute("SELECT * FROM sessions WHERE session_id = ?", (session_id,)).fetchone()
        if row is None:
            raise NotFound(f"no session {session_id!r}")
        return _session(row)

    def list_sessions(self, key_id: str = "") -> list[SessionRecord]:
        """Sessions, oldest first, optionally of one key."""
        if key_id:
            rows = self._conn().execute("SELECT * FROM sessions WHERE key_id = ? ORDER BY started_at", (key_id,))
        else:
            rows = self._conn().execute("SELECT * FROM sessions ORDER BY started_at")
        return [_session(r) for r in rows]
