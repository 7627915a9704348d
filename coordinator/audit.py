"""The coordinator's append-only audit log: hash-chained entries and signed Merkle checkpoints.

Entry `seq` (1, 2, ... with no gaps) is (seq, at, kind, subject, actor, body, json, prev_hash, hash):
`at` whole seconds from the injected clock, `body` the canonical encoding (signer/tss/encoding) of
the caller's values, `json` a canonical JSON rendering of them for humans, `prev_hash` the previous
entry's hash (32 zero bytes for seq 1) and

    hash = SHA-256(encode("audit/v1", seq, at, kind, subject, actor, body, json, prev_hash)).

The JSON rendering is hashed too (the first sketch of this format left it out): otherwise anyone with the file
could change what a human reads without `verify` noticing.

Every `checkpoint_every` entries, and on demand, the log appends a `checkpoint` entry whose body is
(first_seq, last_seq, merkle_root, signature): the RFC 6962 root (signer/policy/merkle.py) over the
hashes of every entry after the previous checkpoint, signed with the coordinator's Ed25519 audit
key over encode("audit/v1/checkpoint", first_seq, last_seq, merkle_root). Auditors get the public
key once (`AuditLog.public_key_pem`) and check the log, or an offline export of it, with `verify` /
`verify_export`, which name the first bad entry and why (the reason constants below).

Storage: the table `audit_log` in the coordinator's SQLite file. SCHEMA belongs in the store's
migrations (coordinator/store.py applies it; once shipped, change it only by a new migration);
`AuditLog` also runs it (CREATE ... IF NOT EXISTS) so the log works on a bare file. There
is no update or delete path in this API, and triggers make UPDATE, DELETE and out-of-sequence
INSERT through SQL fail. Someone with the file can drop the triggers; `verify` then catches any
change up to the last checkpoint. Not caught without more: rewriting or cutting entries after the
last checkpoint (`VerifyReport.unsigned_tail` counts them) and cutting off a whole suffix, which an
auditor catches by passing the (seq, hash) of an entry seen before as `anchor`.

Appends are serialized (a process lock plus `BEGIN IMMEDIATE`), so this is safe to share between
the threads of a gRPC server and between processes using the same file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from signer.policy.merkle import merkle_root
from signer.tss.curve import Point
from signer.tss.encoding import Decoded, Value, as_bytes, as_int, as_list, decode_value, encode, encode_value
from signer.tss.errors import TssError

GENESIS = bytes(32)
EXPORT_FORMAT = "tss-custody-audit/v1"

# --- entry kinds (any lowercase name is accepted; `checkpoint` is written by the log itself) ---------
REQUEST = "request"
APPROVAL = "approval"
POLICY = "policy"
SESSION = "session"
ABORT = "abort"
FREEZE = "freeze"
KEY = "key"
CHECKPOINT = "checkpoint"
_KIND = re.compile(r"[a-z][a-z0-9_]{0,31}")

# --- verification failure reasons -------------------------------------------------------------------
HASH_MISMATCH = "hash_mismatch"
PREV_HASH_MISMATCH = "prev_hash_mismatch"
SEQ_GAP = "seq_gap"
CHECKPOINT_ROOT = "checkpoint_root"
CHECKPOINT_SIGNATURE = "checkpoint_signature"
CHECKPOINT_RANGE = "checkpoint_range"
CHECKPOINT_MALFORMED = "checkpoint_malformed"
MALFORMED_ENTRY = "malformed_entry"
ANCHOR_MISMATCH = "anchor_mismatch"
EXPORT_MALFORMED = "export_malformed"
TRUNCATED = "truncated"

SCHEMA: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS audit_log (
        seq INTEGER PRIMARY KEY CHECK (seq > 0),
        at INTEGER NOT NULL,
        kind TEXT NOT NULL,
        subject TEXT NOT NULL,
        actor TEXT NOT NULL,
        body BLOB NOT NULL,
        json TEXT NOT NULL,
        prev_hash BLOB NOT NULL,
        hash BLOB NOT NULL) STRICT""",
    "CREATE INDEX IF NOT EXISTS audit_log_by_kind ON audit_log(kind, seq)",
    """CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END""",
    """CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END""",
    """CREATE TRIGGER IF NOT EXISTS audit_log_in_sequence BEFORE INSERT ON audit_log
        WHEN NEW.seq IS NOT (SELECT coalesce(max(seq), 0) + 1 FROM audit_log)
          OR NEW.prev_hash IS NOT coalesce((SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1), zeroblob(32))
        BEGIN SELECT RAISE(ABORT, 'audit_log entries must extend the chain'); END""",
)
"""The audit table, its index and the append-only triggers (idempotent statements)."""

_INSERT = (
    "INSERT INTO audit_log (seq, at, kind, subject, actor, body, json, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?)"
)
_SELECT_FROM = (
    "SELECT seq, at, kind, subject, actor, body, json, prev_hash, hash FROM audit_log WHERE seq >= ? ORDER BY seq"
)


class AuditError(Exception):
    """The audit log was misused or cannot be read (verification failures are a `VerifyReport`)."""


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One entry of the log."""

    seq: int
    at: int
    kind: str
    subject: str
    actor: str
    body: bytes
    json: str
    prev_hash: bytes
    hash: bytes

    @property
    def values(self) -> list[Decoded]:
        """The body's values, decoded."""
        return as_list(decode_value(self.body))

    @property
    def view(self) -> Any:
        """The JSON rendering, parsed."""
        return json.loads(self.json)


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """The outcome of `verify`: counts of good entries, and the first bad entry with the reason."""

    ok: bool
    entries: int
    checkpoints: int
    first_bad_seq: int | None
    reason: str
    detail: str = ""
    first_seq: int = 1
    last_seq: int = 0
    head_hash: bytes = b""
    unsigned_tail: int = 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready rendering (hashes in hex)."""
        d = asdict(self)
        d["head_hash"] = self.head_hash.hex()
        return d


# --- hashing and canonical forms ---------------------------------------------------------------------
def entry_hash(
    seq: int, at: int, kind: str, subject: str, actor: str, body: bytes, json_text: str, prev_hash: bytes
) -> bytes:
    """The hash an entry commits to."""
    return hashlib.sha256(encode("audit/v1", seq, at, kind, subject, actor, body, json_text, prev_hash)).digest()


def checkpoint_message(first_seq: int, last_seq: int, root: bytes) -> bytes:
    """The bytes the audit key signs for a checkpoint."""
    return encode("audit/v1/checkpoint", first_seq, last_seq, root)


def canonical_json(view: Any) -> str:
    """Canonical JSON text (sorted keys, no spaces, bytes as hex); a fixed point of parse + render."""

    def default(o: object) -> object:
        if isinstance(o, (bytes, bytearray)):
            return bytes(o).hex()
        raise TypeError(f"{type(o).__name__} is not JSON-renderable")

    def dump(v: Any) -> str:
        return json.dumps(
            v, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=default
        )

    try:
        return dump(json.loads(dump(view)))  # once more so non-string keys sort as the strings they become
    except (TypeError, ValueError) as exc:
        raise AuditError(f"JSON view: {exc}") from exc


def _render(v: Value) -> Any:
    if isinstance(v, (bytes, bytearray)):
        return bytes(v).hex()
    if isinstance(v, Point):
        return "identity" if v.is_identity else v.to_bytes().hex()
    if isinstance(v, (list, tuple)):
        return [_render(x) for x in v]
    return v


def checkpoint_body(first_seq: int, last_seq: int, root: bytes, signature: bytes) -> tuple[bytes, str]:
    """The body and JSON rendering of a checkpoint entry."""
    view = {"first_seq": first_seq, "last_seq": last_seq, "merkle_root": root.hex(), "signature": signature.hex()}
    return encode_value([first_seq, last_seq, root, signature]), canonical_json(view)


def load_public_key(key: Ed25519PublicKey | bytes | str) -> Ed25519PublicKey:
    """An audit public key from the object, its 32 raw bytes, or its PEM text."""
    if isinstance(key, Ed25519PublicKey):
        return key
    data = key.encode() if isinstance(key, str) else key
    try:
        if len(data) == 32:
            return Ed25519PublicKey.from_public_bytes(data)
        loaded = serialization.load_pem_public_key(data)
    except ValueError as exc:
        raise AuditError(f"not an Ed25519 public key: {exc}") from exc
    if not isinstance(loaded, Ed25519PublicKey):
        raise AuditError("not an Ed25519 public key")
    return loaded


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


def ensure_schema(conn: sqlite3.Connection) -> None:
    """Create the audit table, index and triggers if missing (conn must not be inside a transaction)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        for statement in SCHEMA:
            conn.execute(statement)
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


# --- the log ------------------------------------------------------------------------------------------
class AuditLog:
    """Appends entries and checkpoints to the `audit_log` table of one SQLite database.

    Give it the database path (one connection per thread, WAL) or an open connection (made with
    `check_same_thread=False` and used under this object's lock); `key` signs the checkpoints.
    """

    def __init__(
        self,
        db: str | Path | sqlite3.Connection,
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
        self.path: Path | None = None
        if isinstance(db, sqlite3.Connection):
            self._shared = db
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
    def _read(self) -> Iterator[sqlite3.Connection]:
        if self._shared is None:
            yield self._conn()
        else:
            with self._lock:
                yield self._shared

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
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
        conn: sqlite3.Connection,
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
        conn: sqlite3.Connection,
        kind: str,
        subject: str,
        actor: str,
        body_values: Sequence[Value],
        json_view: Mapping[str, Any] | None,
    ) -> AuditEntry:
        if kind == CHECKPOINT or not _KIND.fullmatch(kind):
            raise AuditError(f"invalid entry kind {kind!r}")
        try:
            body = encode_value(list(body_values))
        except TssError as exc:
            raise AuditError(f"body: {exc}") from exc
        text = canonical_json({"values": _render(list(body_values))} if json_view is None else json_view)
        entry = self._insert(conn, kind, subject, actor, body, text)
        if self._every and entry.seq - _last_checkpoint(conn) >= self._every:
            self._checkpoint_locked(conn)
        return entry

    def _checkpoint_locked(self, conn: sqlite3.Connection) -> AuditEntry | None:
        since = _last_checkpoint(conn)
        rows = conn.execute("SELECT seq, hash FROM audit_log WHERE seq > ? ORDER BY seq", (since,)).fetchall()
        if not rows:
            return None
        first, last = since + 1, int(rows[-1][0])
        root = merkle_root([bytes(r[1]) for r in rows])
        body, text = checkpoint_body(first, last, root, self._key.sign(checkpoint_message(first, last, root)))
        return self._insert(conn, CHECKPOINT, f"{first}-{last}", "coordinator", body, text)

    def _insert(
        self, conn: sqlite3.Connection, kind: str, subject: str, actor: str, body: bytes, text: str
    ) -> AuditEntry:
        row = conn.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
        seq, prev = (int(row[0]) + 1, bytes(row[1])) if row else (1, GENESIS)
        at = int(self._clock())
        h = entry_hash(seq, at, kind, subject, actor, body, text, prev)
        entry = AuditEntry(seq, at, kind, subject, actor, body, text, prev, h)
        conn.execute(_INSERT, _astuple(entry))
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
            rows = conn.execute(_SELECT_FROM + " LIMIT ?", (since_seq, -1 if limit is None else limit)).fetchall()
        return [_entry(r) for r in rows]

    def export(self, out: TextIO, since_seq: int = 0) -> int:
        """`export` of this log."""
        with self._read() as conn:
            return export(conn, out, since_seq)

    def verify(self, *, anchor: tuple[int, bytes] | None = None) -> VerifyReport:
        """`verify` of this log with its own public key."""
        with self._read() as conn:
            return verify(conn, self.public_key, anchor=anchor)


def _last_checkpoint(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT max(seq) FROM audit_log WHERE kind = ?", (CHECKPOINT,)).fetchone()
    return int(row[0] or 0)


def _astuple(e: AuditEntry) -> tuple[int, int, str, str, str, bytes, str, bytes, bytes]:
    return (e.seq, e.at, e.kind, e.subject, e.actor, e.body, e.json, e.prev_hash, e.hash)


def _entry(row: Sequence[Any]) -> AuditEntry:
    """An entry from a row or export line; raises ValueError if a field has the wrong type."""
    seq, at, kind, subject, actor, body, text, prev, h = row
    ints_ok = all(isinstance(x, int) and not isinstance(x, bool) for x in (seq, at))
    strs_ok = all(isinstance(x, str) for x in (kind, subject, actor, text))
    blobs_ok = isinstance(body, bytes) and all(isinstance(x, bytes) and len(x) == 32 for x in (prev, h))
    if not (ints_ok and strs_ok and blobs_ok):
        raise ValueError("a field has the wrong type or size")
    return AuditEntry(seq, at, kind, subject, actor, body, text, prev, h)


# --- verification -----------------------------------------------------------------------------------
class _Bad(Exception):
    def __init__(self, seq: int, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.seq, self.reason, self.detail = seq, reason, detail


class _Checker:
    """Checks a run of entries fed in order; stops at the first bad one."""

    def __init__(self, key: Ed25519PublicKey, first_seq: int, anchor: tuple[int, bytes] | None) -> None:
        self.key = key
        self.first_seq = first_seq
        self.expected = first_seq
        self.prev: bytes | None = GENESIS if first_seq == 1 else None  # an export's start is taken as given
        self.pending: list[bytes] = []
        self.anchor = anchor
        self.entries = 0
        self.checkpoints = 0
        self.bad: _Bad | None = None
        if anchor is not None and anchor[0] < first_seq - 1:
            self.fail(anchor[0], ANCHOR_MISMATCH, f"the entries start at {first_seq}, after the anchor")

    def feed(self, row: Sequence[Any]) -> bool:
        """Check the next entry; False once something is bad."""
        if self.bad is not None:
            return False
        try:
            self._check(row)
        except _Bad as bad:
            self.bad = bad
            return False
        return True

    def fail(self, seq: int | None, reason: str, detail: str) -> None:
        """Record a failure found outside the entries (export framing, a missing anchor)."""
        if self.bad is None:
            self.bad = _Bad(self.expected if seq is None else seq, reason, detail)

    def _check(self, row: Sequence[Any]) -> None:
        n = self.expected
        try:
            e = _entry(row)
        except ValueError as exc:
            raise _Bad(n, MALFORMED_ENTRY, str(exc)) from exc
        if e.seq != n:
            raise _Bad(n, SEQ_GAP, f"expected seq {n}, found {e.seq}")
        if self.anchor is not None and self.anchor[0] == n - 1 and self.anchor[1] != e.prev_hash:
            raise _Bad(n - 1, ANCHOR_MISMATCH, "the entries do not extend the anchor")
        if self.prev is not None and e.prev_hash != self.prev:
            raise _Bad(n, PREV_HASH_MISMATCH, "prev_hash is not the previous entry's hash")
        if entry_hash(e.seq, e.at, e.kind, e.subject, e.actor, e.body, e.json, e.prev_hash) != e.hash:
            raise _Bad(n, HASH_MISMATCH, "the entry does not hash to its stored hash")
        if self.anchor is not None and self.anchor[0] == n and self.anchor[1] != e.hash:
            raise _Bad(n, ANCHOR_MISMATCH, "the entry differs from the anchor")
        if e.kind == CHECKPOINT:
            self._check_checkpoint(e)
            self.checkpoints += 1
        else:
            self.pending.append(e.hash)
        self.prev, self.expected = e.hash, n + 1
        self.entries += 1

    def _check_checkpoint(self, e: AuditEntry) -> None:
        try:
            first, last, root, sig = as_list(decode_value(e.body))
            first, last, root, sig = as_int(first), as_int(last), as_bytes(root), as_bytes(sig)
            if len(root) != 32 or len(sig) != 64 or checkpoint_body(first, last, root, sig)[1] != e.json:
                raise ValueError("bad sizes or JSON rendering")
        except (TssError, ValueError) as exc:
            raise _Bad(e.seq, CHECKPOINT_MALFORMED, f"checkpoint body: {exc}") from exc
        start = e.seq - len(self.pending)
        if (first, last) != (start, e.seq - 1) or not self.pending:
            raise _Bad(e.seq, CHECKPOINT_RANGE, f"covers {first}..{last}, expected {start}..{e.seq - 1}")
        if merkle_root(self.pending) != root:
            raise _Bad(e.seq, CHECKPOINT_ROOT, f"the Merkle root over {first}..{last} differs")
        try:
            self.key.verify(sig, checkpoint_message(first, last, root))
        except InvalidSignature as exc:
            raise _Bad(e.seq, CHECKPOINT_SIGNATURE, "the audit key did not sign this checkpoint") from exc
        self.pending = []

    def report(self) -> VerifyReport:
        """The report; also fails if an anchor was given but never reached."""
        if self.anchor is not None and self.bad is None and self.expected <= self.anchor[0]:
            self.fail(self.anchor[0], ANCHOR_MISMATCH, "the log ends before the anchor")
        b = self.bad
        return VerifyReport(
            ok=b is None,
            entries=self.entries,
            checkpoints=self.checkpoints,
            first_bad_seq=None if b is None else b.seq,
            reason="" if b is None else b.reason,
            detail="" if b is None else b.detail,
            first_seq=self.first_seq,
            last_seq=self.expected - 1,
            head_hash=self.prev or b"",
            unsigned_tail=len(self.pending),
        )


def verify(
    source: sqlite3.Connection | str | Path,
    public_key: Ed25519PublicKey | bytes | str,
    *,
    anchor: tuple[int, bytes] | None = None,
) -> VerifyReport:
    """Recompute the chain and every checkpoint of a database (a path is opened read-only)."""
    key = load_public_key(public_key)
    if isinstance(source, sqlite3.Connection):
        conn, own = source, False
    else:
        try:
            conn, own = sqlite3.connect(Path(source).resolve().as_uri() + "?mode=ro", uri=True), True
        except sqlite3.Error as exc:
            raise AuditError(f"cannot open {source}: {exc}") from exc
    try:
        if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audit_log'").fetchone() is None:
            raise AuditError("the database has no audit_log table")
        checker = _Checker(key, 1, anchor)
        for row in conn.execute(_SELECT_FROM, (-(1 << 63),)):
            if not checker.feed(row):
                break
        return checker.report()
    finally:
        if own:
            conn.close()


# --- export ---------------------------------------------------------------------------------------
def _line(obj: Mapping[str, Any]) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"


def export(conn: sqlite3.Connection, out: TextIO, since_seq: int = 0) -> int:
    """Write the log as JSON lines (header, entries, end); returns the number of entries written.

    The export starts at the first entry after the last checkpoint before `since_seq`, so every
    checkpoint in it can be checked on its own; `verify_export` needs nothing else but the key.
    """
    row = conn.execute("SELECT max(seq) FROM audit_log WHERE kind = ? AND seq < ?", (CHECKPOINT, since_seq)).fetchone()
    first = int(row[0] or 0) + 1
    out.write(_line({"type": "header", "format": EXPORT_FORMAT, "first_seq": first}))
    count, last_seq, head = 0, first - 1, b""
    for r in conn.execute(_SELECT_FROM, (first,)):
        e = AuditEntry(*r)  # written as stored, even if malformed: verify_export judges it
        out.write(
            _line(
                {
                    "type": "entry",
                    "seq": e.seq,
                    "at": e.at,
                    "kind": e.kind,
                    "subject": e.subject,
                    "actor": e.actor,
                    "body": _hex(e.body),
                    "json": e.json,
                    "prev_hash": _hex(e.prev_hash),
                    "hash": _hex(e.hash),
                }
            )
        )
        count, last_seq, head = count + 1, e.seq, e.hash if isinstance(e.hash, bytes) else b""
    out.write(_line({"type": "end", "entries": count, "last_seq": last_seq, "head_hash": head.hex()}))
    return count


def _hex(v: object) -> object:
    return v.hex() if isinstance(v, bytes) else v


def _export_row(d: Mapping[str, Any]) -> tuple[Any, ...]:
    def unhex(v: Any) -> Any:
        return bytes.fromhex(v) if isinstance(v, str) else v  # a wrong type is caught by _entry

    return (
        d.get("seq"),
        d.get("at"),
        d.get("kind"),
        d.get("subject"),
        d.get("actor"),
        unhex(d.get("body")),
        d.get("json"),
        unhex(d.get("prev_hash")),
        unhex(d.get("hash")),
    )


def verify_export(
    lines: Iterable[str | bytes],
    public_key: Ed25519PublicKey | bytes | str,
    *,
    anchor: tuple[int, bytes] | None = None,
) -> VerifyReport:
    """Check an `export` offline: framing, the chain, every checkpoint's root and signature."""
    key = load_public_key(public_key)
    checker: _Checker | None = None
    ended = False
    for raw in lines:
        text = raw.decode() if isinstance(raw, bytes) else raw
        if not text.strip():
            continue
        try:
            d = json.loads(text)
            kind = d.get("type") if isinstance(d, dict) else None
        except ValueError:
            d, kind = None, None
        if checker is None:
            first = d.get("first_seq") if kind == "header" and isinstance(d, dict) else None
            if d is None or d.get("format") != EXPORT_FORMAT or not isinstance(first, int) or first < 1:
                return _framing_failure(key, anchor, "the export does not start with a valid header")
            checker = _Checker(key, first, anchor)
        elif ended:
            checker.fail(None, EXPORT_MALFORMED, "lines after the end marker")
            break
        elif kind == "entry" and isinstance(d, dict):
            try:
                row = _export_row(d)
            except ValueError:
                row = ()
            if not checker.feed(row):
                break
        elif kind == "end" and isinstance(d, dict):
            ended = True
            head = checker.prev.hex() if checker.prev is not None else ""
            if (d.get("entries"), d.get("last_seq"), d.get("head_hash")) != (
                checker.entries,
                checker.expected - 1,
                head,
            ):
                checker.fail(None, TRUNCATED, "the end marker does not match the entries before it")
        else:
            checker.fail(None, EXPORT_MALFORMED, "a line is neither an entry nor the end marker")
            break
    if checker is None:
        return _framing_failure(key, anchor, "empty export")
    if not ended:
        checker.fail(None, TRUNCATED, "the export has no end marker")
    return checker.report()


def _framing_failure(key: Ed25519PublicKey, anchor: tuple[int, bytes] | None, detail: str) -> VerifyReport:
    checker = _Checker(key, 1, anchor)
    checker.fail(None, EXPORT_MALFORMED, detail)
    return checker.report()
