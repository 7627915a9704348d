"""The audit log's format: entry kinds, the table, hashing and canonical forms, the offline export.

Entry `seq` (1, 2, ... with no gaps) is (seq, at, kind, subject, actor, body, json, prev_hash, hash):
`at` whole seconds from the injected clock, `body` the canonical encoding (signer/tss/encoding) of
the caller's values, `json` a canonical JSON rendering of them for humans, `prev_hash` the previous
entry's hash (32 zero bytes for seq 1) and

    hash = SHA-256(encode("audit/v1", seq, at, kind, subject, actor, body, json, prev_hash)).

The JSON rendering is hashed too (the first sketch of this format left it out): otherwise anyone with the file
could change what a human reads without `verify` noticing.

A `checkpoint` entry's body is (first_seq, last_seq, merkle_root, signature): the RFC 6962 root
(signer/policy/merkle.py) over the hashes of every entry after the previous checkpoint, signed with
the coordinator's Ed25519 audit key over encode("audit/v1/checkpoint", first_seq, last_seq, merkle_root).

Storage: the table `audit_log` in the coordinator's database (SQLite or PostgreSQL). SCHEMA belongs in the store's
migrations (coordinator/store/migrations.py applies it; once shipped, change it only by a new
migration); `AuditLog` also runs it (CREATE ... IF NOT EXISTS) so the log works on a bare file.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from signer.tss.curve import Point
from signer.tss.encoding import Decoded, Value, as_list, decode_value, encode, encode_value

from ..dbapi import Connection, PerDialect

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
KIND_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,31}")

SCHEMA: tuple[str | PerDialect, ...] = (
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
    PerDialect(
        """CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END""",
        """CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$""",
    ),
    PerDialect(
        """CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END""",
        """CREATE OR REPLACE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
        FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()""",
    ),
    PerDialect(
        """CREATE TRIGGER IF NOT EXISTS audit_log_in_sequence BEFORE INSERT ON audit_log
        WHEN NEW.seq IS NOT (SELECT coalesce(max(seq), 0) + 1 FROM audit_log)
          OR NEW.prev_hash IS NOT coalesce((SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1), zeroblob(32))
        BEGIN SELECT RAISE(ABORT, 'audit_log entries must extend the chain'); END""",
        """CREATE OR REPLACE FUNCTION audit_log_in_sequence() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE head_seq BIGINT; head_hash BYTEA;
        BEGIN
          SELECT seq, hash INTO head_seq, head_hash FROM audit_log ORDER BY seq DESC LIMIT 1;
          IF NEW.seq IS DISTINCT FROM coalesce(head_seq, 0) + 1
             OR NEW.prev_hash IS DISTINCT FROM coalesce(head_hash, decode(repeat('00', 32), 'hex')) THEN
            RAISE EXCEPTION 'audit_log entries must extend the chain';
          END IF;
          RETURN NEW;
        END $$""",
    ),
    PerDialect(
        "",
        """CREATE OR REPLACE TRIGGER audit_log_in_sequence BEFORE INSERT ON audit_log
        FOR EACH ROW EXECUTE FUNCTION audit_log_in_sequence()""",
    ),
    PerDialect(
        "",
        """CREATE OR REPLACE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
        FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()""",
    ),
)
"""The audit table, its index and the append-only triggers (idempotent statements; the triggers
written once per dialect, `coordinator.dbapi.ddl` picks one)."""

INSERT_ENTRY = (
    "INSERT INTO audit_log (seq, at, kind, subject, actor, body, json, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?)"
)
SELECT_ENTRIES_FROM = (
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


def render_values(v: Value) -> Any:
    if isinstance(v, (bytes, bytearray)):
        return bytes(v).hex()
    if isinstance(v, Point):
        return "identity" if v.is_identity else v.to_bytes().hex()
    if isinstance(v, (list, tuple)):
        return [render_values(x) for x in v]
    return v


def checkpoint_body(first_seq: int, last_seq: int, root: bytes, signature: bytes) -> tuple[bytes, str]:
    """The body and JSON rendering of a checkpoint entry."""
    view = {"first_seq": first_seq, "last_seq": last_seq, "merkle_root": root.hex(), "signature": signature.hex()}
    return encode_value([first_seq, last_seq, root, signature]), canonical_json(view)


def entry_row(e: AuditEntry) -> tuple[int, int, str, str, str, bytes, str, bytes, bytes]:
    return (e.seq, e.at, e.kind, e.subject, e.actor, e.body, e.json, e.prev_hash, e.hash)


def entry_from_row(row: Sequence[Any]) -> AuditEntry:
    """An entry from a row or export line; raises ValueError if a field has the wrong type."""
    seq, at, kind, subject, actor, body, text, prev, h = row
    ints_ok = all(isinstance(x, int) and not isinstance(x, bool) for x in (seq, at))
    strs_ok = all(isinstance(x, str) for x in (kind, subject, actor, text))
    blobs_ok = isinstance(body, bytes) and all(isinstance(x, bytes) and len(x) == 32 for x in (prev, h))
    if not (ints_ok and strs_ok and blobs_ok):
        raise ValueError("a field has the wrong type or size")
    return AuditEntry(seq, at, kind, subject, actor, body, text, prev, h)


# --- export ---------------------------------------------------------------------------------------
def json_line(obj: Mapping[str, Any]) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"


def export(conn: Connection, out: TextIO, since_seq: int = 0) -> int:
    """Write the log as JSON lines (header, entries, end); returns the number of entries written.

    The export starts at the first entry after the last checkpoint before `since_seq`, so every
    checkpoint in it can be checked on its own; `verify_export` needs nothing else but the key.
    """
    row = conn.execute("SELECT max(seq) FROM audit_log WHERE kind = ? AND seq < ?", (CHECKPOINT, since_seq)).fetchone()
    first = int(row[0] or 0) + 1
    out.write(json_line({"type": "header", "format": EXPORT_FORMAT, "first_seq": first}))
    count, last_seq, head = 0, first - 1, b""
    for r in conn.execute(SELECT_ENTRIES_FROM, (first,)):
        e = AuditEntry(*r)  # written as stored, even if malformed: verify_export judges it
        out.write(entry_line(e))
        count, last_seq, head = count + 1, e.seq, e.hash if isinstance(e.hash, bytes) else b""
    out.write(json_line({"type": "end", "entries": count, "last_seq": last_seq, "head_hash": head.hex()}))
    return count


def entry_line(e: AuditEntry) -> str:
    """One entry as a JSON line of the export format."""
    return json_line(
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


def _hex(v: object) -> object:
    return v.hex() if isinstance(v, bytes) else v


def export_row(d: Mapping[str, Any]) -> tuple[Any, ...]:
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
