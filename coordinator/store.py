"""The coordinator's persistence: one SQLite file in WAL mode, schema migrated on open.

Tables: `keys`, `presignatures`, `requests` (with the intent officers approve and the policy's
outcome), `request_events` (one row per transition), `approvals` (the officers' signed approvals,
as received), `sessions`, `governance` (the installed registry and policy as `Governed` JSON, the
freeze state), `governance_log` (every accepted change and freeze order, in order, with the signers
that hold it), `audit_log` (coordinator/audit.py; writers pass an `AuditHook` so an entry commits
with the change it records) and `schema_version` (one row per applied migration). Every write runs in its own
`BEGIN IMMEDIATE` transaction, so a read-then-write (reserving a presignature, creating a request
under an idempotency key, recording an approval) is atomic across threads and across processes
sharing the file.

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

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from signer.tss.errors import Blame

from .audit import SCHEMA as AUDIT_SCHEMA

# --- request states (the lifecycle of DESIGN.md §5) ---------------------------------------------
SUBMITTED = "submitted"
PENDING_APPROVAL = "pending_approval"
APPROVED = "approved"
TIME_LOCKED = "time_locked"
SIGNING = "signing"
SIGNED = "signed"
REJECTED = "rejected"
BLOCKED = "blocked"
EXPIRED = "expired"
FAILED = "failed"
FINAL_STATES = frozenset({SIGNED, REJECTED, BLOCKED, EXPIRED, FAILED})
OPEN_STATES = (PENDING_APPROVAL, APPROVED, TIME_LOCKED)
"""Waiting for approvals, a release or a signing slot: these expire, can be rejected or blocked."""
TRANSITIONS: dict[str, frozenset[str]] = {
    SUBMITTED: frozenset({PENDING_APPROVAL, APPROVED, SIGNING, BLOCKED, REJECTED, FAILED}),
    PENDING_APPROVAL: frozenset({PENDING_APPROVAL, APPROVED, REJECTED, BLOCKED, EXPIRED, FAILED}),
    APPROVED: frozenset({TIME_LOCKED, SIGNING, REJECTED, BLOCKED, EXPIRED, FAILED}),
    TIME_LOCKED: frozenset({SIGNING, REJECTED, BLOCKED, EXPIRED, FAILED}),
    SIGNING: frozenset({SIGNING, SIGNED, FAILED}),
}
"""Allowed moves. PENDING_APPROVAL -> PENDING_APPROVAL records an approval that does not yet meet
the quorum; SIGNING -> SIGNING records a retry with another signer set."""

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
    (
        2,
        "policy: request intents and policy outcome, approvals, governance state and its delivery log",
        (
            "ALTER TABLE requests ADD COLUMN kind TEXT NOT NULL DEFAULT 'withdrawal'",
            "ALTER TABLE requests ADD COLUMN initiator TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE requests ADD COLUMN intent BLOB",
            "ALTER TABLE requests ADD COLUMN intent_digest BLOB",
            "ALTER TABLE requests ADD COLUMN policy_hash BLOB",
            "ALTER TABLE requests ADD COLUMN expires_at INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE requests ADD COLUMN time_lock_until INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE requests ADD COLUMN policy_reason TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE requests ADD COLUMN rule_id TEXT NOT NULL DEFAULT ''",
            "CREATE INDEX requests_by_state ON requests(state, expires_at)",
            """CREATE TABLE approvals (
                request_id TEXT NOT NULL REFERENCES requests(request_id),
                officer_id TEXT NOT NULL,
                approval BLOB NOT NULL,
                signed_at INTEGER NOT NULL,
                expires_at INTEGER NOT NULL,
                recorded_at REAL NOT NULL,
                PRIMARY KEY (request_id, officer_id))""",
            """CREATE TABLE governance (
                name TEXT PRIMARY KEY CHECK (name IN ('registry', 'policy', 'freeze')),
                value BLOB NOT NULL,
                updated_at REAL NOT NULL)""",
            """CREATE TABLE governance_log (
                seq INTEGER PRIMARY KEY,
                kind TEXT NOT NULL CHECK (kind IN ('registry', 'policy', 'freeze', 'unfreeze')),
                payload BLOB NOT NULL,
                at REAL NOT NULL,
                acked TEXT NOT NULL DEFAULT '[]')""",
        ),
    ),
    (3, "audit log: hash-chained entries, append-only triggers (coordinator/audit.py)", AUDIT_SCHEMA),
    (
        4,
        "sessions: parties a missing message named (unreachable or withheld, never blamed)",
        ("ALTER TABLE sessions ADD COLUMN unreachable TEXT NOT NULL DEFAULT '[]'",),
    ),
)
"""Ordered migrations: (version, description, statements). Append only; never edit a shipped one."""

SCHEMA_VERSION = MIGRATIONS[-1][0]


AuditHook = Callable[[sqlite3.Connection], object]
"""Writes an audit entry inside the store's open write transaction (`AuditLog.append_in`), so the
entry and the change it records commit together or not at all."""


class StoreError(Exception):
    """The database cannot do what was asked."""


class NotFound(StoreError):
    """No such key, request or presignature."""


class IdempotencyConflict(StoreError):
    """The idempotency key is already bound to a request with a different body."""


class InvalidTransition(StoreError):
    """A request or presignature state change the lifecycle does not allow."""


class DuplicateApproval(StoreError):
    """This officer already approved this request (with a different approval)."""


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
    kind: str = "withdrawal"
    initiator: str = ""
    intent: bytes = b""
    intent_digest: bytes = b""
    policy_hash: bytes = b""
    expires_at: int = 0
    time_lock_until: int = 0
    policy_reason: str = ""
    rule_id: str = ""
    approved_by: tuple[str, ...] = ()

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
    unreachable: tuple[int, ...] = ()


MAX_SESSION_EVIDENCE = 1024 * 1024
"""Bytes of blame evidence (signed envelopes) kept whole in one session row; past it, a digest."""


def bounded_evidence(blames: Sequence[Blame]) -> list[Blame]:
    """Blames whose evidence fits `MAX_SESSION_EVIDENCE` in total; the rest keep the SHA-256 of theirs."""
    out, used = [], 0
    for b in blames:
        if used + len(b.evidence) > MAX_SESSION_EVIDENCE:
            b = Blame(b.party, b.round, b.check, b"sha256:" + hashlib.sha256(b.evidence).digest())
        used += len(b.evidence)
        out.append(b)
    return out


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
        kind=row["kind"],
        initiator=row["initiator"],
        intent=bytes(row["intent"] or b""),
        intent_digest=bytes(row["intent_digest"] or b""),
        policy_hash=bytes(row["policy_hash"] or b""),
        expires_at=row["expires_at"],
        time_lock_until=row["time_lock_until"],
        policy_reason=row["policy_reason"],
        rule_id=row["rule_id"],
        approved_by=tuple(sorted(row["approved_by"].split(","))) if row["approved_by"] else (),
    )


@dataclass(frozen=True, slots=True)
class PageCursor:
    """Where a page of `list_requests` ended: the last row's (created_at, request_id)."""

    created_at: float
    request_id: str

    def token(self) -> str:
        """The opaque page token handed to clients (float repr round-trips exactly)."""
        return f"{self.created_at!r}/{self.request_id}"

    @classmethod
    def parse(cls, token: str) -> PageCursor:
        """Inverse of `token`; raises ValueError for anything else."""
        at, sep, request_id = token.partition("/")
        if not sep or not request_id:
            raise ValueError("malformed page token")
        created_at = float(at)
        if created_at != created_at or created_at in (float("inf"), float("-inf")):
            raise ValueError("malformed page token")
        return cls(created_at, request_id)


_SELECT_REQUEST = (
    "SELECT r.*, (SELECT group_concat(a.officer_id, ',') FROM approvals a WHERE a.request_id = r.request_id) "
    "AS approved_by FROM requests r"
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
        _ints(row["unreachable"]),
    )


_REQUEST_RESULT_FIELDS = frozenset(
    {
        "digest",
        "r",
        "s",
        "v",
        "raw_tx",
        "tx_hash",
        "from_address",
        "presig_id",
        "blame",
        "error",
        "error_code",
        "time_lock_until",
        "policy_reason",
        "rule_id",
    }
)
GOVERNANCE_STATE = ("registry", "policy", "freeze")
GOVERNANCE_LOG_KINDS = ("registry", "policy", "freeze", "unfreeze")


@dataclass(frozen=True, slots=True)
class StoredApproval:
    """An officer's approval as recorded (the wire bytes the signers get, unchanged)."""

    request_id: str
    officer_id: str
    approval: bytes
    signed_at: int
    expires_at: int
    recorded_at: float


@dataclass(frozen=True, slots=True)
class GovernanceEntry:
    """One accepted governance change or order, in the order the signers must receive them."""

    seq: int
    kind: str
    payload: bytes
    at: float
    acked: frozenset[int]


def _event(c: sqlite3.Connection, request_id: str, state: str, detail: str, now: float) -> None:
    seq = c.execute("SELECT max(seq) FROM request_events WHERE request_id = ?", (request_id,)).fetchone()[0]
    c.execute("INSERT INTO request_events VALUES (?, ?, ?, ?, ?)", (request_id, int(seq or 0) + 1, state, detail, now))


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

    def fail_ready_presignatures(self, presig_ids: Sequence[str]) -> int:
        """Mark these presignatures failed if still ready (a signer of theirs restarted); returns how many."""
        with self._tx() as c:
            n = 0
            for pid in presig_ids:
                n += c.execute(
                    "UPDATE presignatures SET state = ?, updated_at = ? WHERE presig_id = ? AND state = ?",
                    (PRESIG_FAILED, self.now(), pid, READY),
                ).rowcount
            return n

    def ready_presignatures(self, key_id: str) -> list[PresignatureRecord]:
        """Every ready presignature of a key, oldest first."""
        rows = self._conn().execute(
            "SELECT * FROM presignatures WHERE key_id = ? AND state = ? ORDER BY created_at, presig_id", (key_id, READY)
        )
        return [_presig(r) for r in rows]

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
        kind: str = "withdrawal",
        initiator: str = "",
        intent: bytes = b"",
        intent_digest: bytes = b"",
        policy_hash: bytes = b"",
        expires_at: int = 0,
        audit: AuditHook | None = None,
    ) -> tuple[RequestRecord, bool]:
        """Insert a submitted request, or return the one already bound to `idempotency_key`.

        Returns (request, created). The same key with a different body raises IdempotencyConflict.
        """
        now = self.now()
        with self._tx() as c:
            row = c.execute(_SELECT_REQUEST + " WHERE r.idempotency_key = ?", (idempotency_key,)).fetchone()
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
                "updated_at, kind, initiator, intent, intent_digest, policy_hash, expires_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                    kind,
                    initiator,
                    intent or None,
                    intent_digest or None,
                    policy_hash or None,
                    expires_at,
                ),
            )
            c.execute("INSERT INTO request_events VALUES (?, 1, ?, ?, ?)", (request_id, SUBMITTED, "", now))
            if audit is not None:
                audit(c)
            created = c.execute(_SELECT_REQUEST + " WHERE r.request_id = ?", (request_id,)).fetchone()
        return _request(created), True

    def get_request(self, request_id: str) -> RequestRecord:
        """A request, or NotFound."""
        row = self._conn().execute(_SELECT_REQUEST + " WHERE r.request_id = ?", (request_id,)).fetchone()
        if row is None:
            raise NotFound(f"no request {request_id!r}")
        return _request(row)

    def list_requests(
        self, *, key_id: str = "", state: str = "", limit: int = 100, after: PageCursor | None = None
    ) -> list[RequestRecord]:
        """Newest first, optionally filtered by key and state, starting after the cursor `after`."""
        sql, args = _SELECT_REQUEST + " WHERE 1=1", list[Any]()
        if key_id:
            sql, args = sql + " AND r.key_id = ?", [*args, key_id]
        if state:
            sql, args = sql + " AND r.state = ?", [*args, state]
        if after is not None:
            sql += " AND (r.created_at < ? OR (r.created_at = ? AND r.request_id > ?))"
            args = [*args, after.created_at, after.created_at, after.request_id]
        rows = self._conn().execute(
            sql + " ORDER BY r.created_at DESC, r.request_id LIMIT ?", (*args, max(1, min(limit, 1000)))
        )
        return [_request(r) for r in rows]

    def open_requests(self) -> list[RequestRecord]:
        """Requests waiting for approvals, a release or a signing slot (see OPEN_STATES), oldest first."""
        marks = ", ".join("?" for _ in OPEN_STATES)
        rows = self._conn().execute(
            _SELECT_REQUEST + f" WHERE r.state IN ({marks}) ORDER BY r.created_at, r.request_id",
            OPEN_STATES,
        )
        return [_request(r) for r in rows]

    def transition(
        self,
        request_id: str,
        state: str,
        detail: str = "",
        *,
        expect: Collection[str] = (),
        audit: AuditHook | None = None,
        **fields: Any,
    ) -> RequestRecord:
        """Move a request to `state` (checked against TRANSITIONS), set result fields, record the event.

        With `expect`, the move happens only from one of those states (InvalidTransition otherwise):
        the way two threads racing to drive one request agree on which of them does.
        """
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
            if expect and row["state"] not in expect:
                raise InvalidTransition(f"request {request_id} is {row['state']}, not {'/'.join(sorted(expect))}")
            if state not in TRANSITIONS.get(row["state"], frozenset()):
                raise InvalidTransition(f"request {request_id}: {row['state']} -> {state} is not allowed")
            sets = ", ".join(f"{k} = ?" for k in fields)
            c.execute(
                f"UPDATE requests SET state = ?, updated_at = ?{', ' + sets if sets else ''} WHERE request_id = ?",  # noqa: S608 - names from a fixed allow-list
                (state, now, *fields.values(), request_id),
            )
            _event(c, request_id, state, detail, now)
            if audit is not None:
                audit(c)
            out = c.execute(_SELECT_REQUEST + " WHERE r.request_id = ?", (request_id,)).fetchone()
        return _request(out)

    # --- approvals -------------------------------------------------------------------------------------
    def add_approval(
        self,
        request_id: str,
        officer_id: str,
        approval: bytes,
        signed_at: int,
        expires_at: int,
        detail: str = "",
        audit: AuditHook | None = None,
    ) -> bool:
        """Record a verified approval of a request pending approval, with a pending_approval event.

        Returns False (and records nothing) if this exact approval is already recorded; another
        approval by the same officer raises DuplicateApproval; a request in another state raises
        InvalidTransition.
        """
        now = self.now()
        with self._tx() as c:
            row = c.execute("SELECT state FROM requests WHERE request_id = ?", (request_id,)).fetchone()
            if row is None:
                raise NotFound(f"no request {request_id!r}")
            have = c.execute(
                "SELECT approval FROM approvals WHERE request_id = ? AND officer_id = ?", (request_id, officer_id)
            ).fetchone()
            if have is not None:
                if bytes(have["approval"]) == approval:
                    return False
                raise DuplicateApproval(f"{officer_id} already approved request {request_id}")
            if row["state"] != PENDING_APPROVAL:
                raise InvalidTransition(f"request {request_id} is {row['state']}, not {PENDING_APPROVAL}")
            c.execute(
                "INSERT INTO approvals VALUES (?, ?, ?, ?, ?, ?)",
                (request_id, officer_id, approval, signed_at, expires_at, now),
            )
            c.execute("UPDATE requests SET updated_at = ? WHERE request_id = ?", (now, request_id))
            _event(c, request_id, PENDING_APPROVAL, detail or f"approved by {officer_id}", now)
            if audit is not None:
                audit(c)
        return True

    def approvals(self, request_id: str) -> list[StoredApproval]:
        """A request's recorded approvals, in the order they were recorded."""
        rows = self._conn().execute(
            "SELECT * FROM approvals WHERE request_id = ? ORDER BY recorded_at, officer_id", (request_id,)
        )
        return [
            StoredApproval(
                r["request_id"], r["officer_id"], bytes(r["approval"]), r["signed_at"], r["expires_at"], r[5]
            )
            for r in rows
        ]

    # --- the coordinator's own ledger inputs ----------------------------------------------------------------
    def signed_intents(self) -> list[tuple[bytes, float]]:
        """(intent bytes, signed time) of every signed request that carries an intent, oldest first."""
        rows = self._conn().execute(
            "SELECT intent, updated_at FROM requests WHERE state = ? AND intent IS NOT NULL ORDER BY updated_at",
            (SIGNED,),
        )
        return [(bytes(r["intent"]), float(r["updated_at"])) for r in rows]

    def submissions_since(self, since: float) -> list[tuple[str, str, float]]:
        """(request id, initiator, created time) of every request created after `since`."""
        rows = self._conn().execute(
            "SELECT request_id, initiator, created_at FROM requests WHERE created_at > ? ORDER BY created_at", (since,)
        )
        return [(r["request_id"], r["initiator"], float(r["created_at"])) for r in rows]

    # --- governance -------------------------------------------------------------------------------------
    def get_governance(self, name: str) -> bytes | None:
        """The stored state `name` (registry, policy, freeze), or None before the first install."""
        row = self._conn().execute("SELECT value FROM governance WHERE name = ?", (name,)).fetchone()
        return None if row is None else bytes(row["value"])

    def put_governance(
        self, name: str, value: bytes, log: tuple[str, bytes] | None = None, audit: AuditHook | None = None
    ) -> int | None:
        """Replace state `name` (durably) and, in the same transaction, append `log` = (kind, payload)
        to the delivery log; returns the log entry's seq (None without one)."""
        if name not in GOVERNANCE_STATE or (log is not None and log[0] not in GOVERNANCE_LOG_KINDS):
            raise StoreError(f"unknown governance state {name!r} or log kind")
        now = self.now()
        with self._tx(durable=True) as c:
            c.execute(
                "INSERT INTO governance VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET value = ?, updated_at = ?",
                (name, value, now, value, now),
            )
            seq = None
            if log is not None:
                cur = c.execute("INSERT INTO governance_log (kind, payload, at) VALUES (?, ?, ?)", (*log, now))
                seq = int(cur.lastrowid or 0)
            if audit is not None:
                audit(c)
            return seq

    def governance_log(self, after_seq: int = 0) -> list[GovernanceEntry]:
        """Accepted changes and orders after `after_seq`, in order."""
        rows = self._conn().execute("SELECT * FROM governance_log WHERE seq > ? ORDER BY seq", (after_seq,))
        return [
            GovernanceEntry(r["seq"], r["kind"], bytes(r["payload"]), r["at"], frozenset(_ints(r["acked"])))
            for r in rows
        ]

    def ack_governance(self, seq: int, party: int) -> None:
        """Record that signer `party` holds log entry `seq`."""
        with self._tx() as c:
            row = c.execute("SELECT acked FROM governance_log WHERE seq = ?", (seq,)).fetchone()
            if row is None:
                raise NotFound(f"no governance log entry {seq}")
            acked = set(_ints(row["acked"])) | {party}
            c.execute("UPDATE governance_log SET acked = ? WHERE seq = ?", (ints_json(sorted(acked)), seq))

    def unack_governance(self, party: int) -> int:
        """Forget that signer `party` holds any log entry (it reported its state behind: a restore),
        so `sync` delivers the whole log to it again; returns how many entries it had acknowledged."""
        with self._tx() as c:
            rows = c.execute("SELECT seq, acked FROM governance_log").fetchall()
            n = 0
            for r in rows:
                acked = set(_ints(r["acked"]))
                if party in acked:
                    n += 1
                    c.execute(
                        "UPDATE governance_log SET acked = ? WHERE seq = ?",
                        (ints_json(sorted(acked - {party})), r["seq"]),
                    )
            return n

    def events(self, request_id: str, after_seq: int = 0) -> list[RequestEvent]:
        """A request's transitions after `after_seq`, in order."""
        rows = self._conn().execute(
            "SELECT * FROM request_events WHERE request_id = ? AND seq > ? ORDER BY seq", (request_id, after_seq)
        )
        return [RequestEvent(r["request_id"], r["seq"], r["state"], r["detail"], r["at"]) for r in rows]

    def recover(self, audit: Callable[[str], AuditHook] | None = None) -> tuple[int, int]:
        """After a restart: fail requests caught mid-flight and every reserved presignature.

        A reserved presignature may have produced partial signatures before the crash, so it is
        failed, never made ready again. `audit(request_id)` gives the audit entry of each failed
        request. Returns (requests failed, presignatures failed).
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
                _event(c, rid, FAILED, "recovered after restart", now)
                if audit is not None:
                    audit(rid)(c)
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

    def end_session(
        self,
        session_id: str,
        *,
        ok: bool,
        blame: Sequence[Blame] = (),
        error: str = "",
        unreachable: Sequence[int] = (),
    ) -> None:
        """Record how a session ended: proven blames with their evidence (bounded), unreachable parties apart."""
        with self._tx() as c:
            cur = c.execute(
                "UPDATE sessions SET state = ?, blame = ?, error = ?, ended_at = ?, unreachable = ? "
                "WHERE session_id = ? AND state = 'running'",
                (
                    "done" if ok else "failed",
                    blames_json(bounded_evidence(blame)),
                    error,
                    self.now(),
                    ints_json(sorted(unreachable)),
                    session_id,
                ),
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
