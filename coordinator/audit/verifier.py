"""The auditor's checks: recompute the chain and every checkpoint of a database or an offline export.

`verify` and `verify_export` name the first bad entry and why (the reason constants below). Someone
with the file can drop the append-only triggers; `verify` then catches any change up to the last
checkpoint. Not caught without more: rewriting or cutting entries after the last checkpoint
(`VerifyReport.unsigned_tail` counts them) and cutting off a whole suffix, which an auditor catches
by passing the (seq, hash) of an entry seen before as `anchor`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from signer.policy.merkle import merkle_root
from signer.tss.encoding import as_bytes, as_int, as_list, decode_value
from signer.tss.errors import TssError

from ..dbapi import POSTGRESQL, Connection, dialect_of
from .format import (
    CHECKPOINT,
    EXPORT_FORMAT,
    GENESIS,
    SELECT_ENTRIES_FROM,
    AuditEntry,
    AuditError,
    checkpoint_body,
    checkpoint_message,
    entry_from_row,
    entry_hash,
    export_row,
)

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
            e = entry_from_row(row)
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
    source: Connection | str | Path,
    public_key: Ed25519PublicKey | bytes | str,
    *,
    anchor: tuple[int, bytes] | None = None,
) -> VerifyReport:
    """Recompute the chain and every checkpoint of a database (a SQLite path is opened read-only;
    a connection may be SQLite's or PostgreSQL's)."""
    key = load_public_key(public_key)
    conn: Connection
    if isinstance(source, str | Path):
        try:
            conn, own = sqlite3.connect(Path(source).resolve().as_uri() + "?mode=ro", uri=True), True
        except sqlite3.Error as exc:
            raise AuditError(f"cannot open {source}: {exc}") from exc
    else:
        conn, own = source, False
    try:
        if dialect_of(conn) == POSTGRESQL:
            found = conn.execute("SELECT to_regclass('audit_log')").fetchone()[0] is not None
        else:
            found = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audit_log'").fetchone()
        if not found:
            raise AuditError("the database has no audit_log table")
        checker = _Checker(key, 1, anchor)
        for row in conn.execute(SELECT_ENTRIES_FROM, (-(1 << 63),)):
            if not checker.feed(row):
                break
        return checker.report()
    finally:
        if own and isinstance(conn, sqlite3.Connection):
            conn.close()


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
                row = export_row(d)
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
