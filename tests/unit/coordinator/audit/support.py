"""Shared helpers for the audit tests: fixed keys and clock, verdicts, an attacker with the file."""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from coordinator import audit
from coordinator.audit import GENESIS, AuditLog, VerifyReport

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OTHER_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
USER_ENTRIES = 10
# With checkpoint_every=4 the ten user entries land at 1-4, 6-9, 11-12; checkpoints at 5 and 10.
CHECKPOINTS = (5, 10)


class Clock:
    def __init__(self) -> None:
        self.t = 1_700_000_000.75

    def __call__(self) -> float:
        self.t += 1
        return self.t


def verify_file(path: Path) -> VerifyReport:
    return audit.verify(path, KEY.public_key())


def bad(report: VerifyReport) -> tuple[int | None, str]:
    assert not report.ok
    return report.first_bad_seq, report.reason


# --- an attacker with write access to the file -------------------------------------------------------
def attacker(path: Path) -> sqlite3.Connection:
    c = sqlite3.connect(path, isolation_level=None)
    for trigger in ("audit_log_no_update", "audit_log_no_delete", "audit_log_in_sequence"):
        c.execute(f"DROP TRIGGER {trigger}")
    return c


def rechain(c: sqlite3.Connection, from_seq: int) -> None:
    """Recompute prev_hash and hash from `from_seq` on, as a careful attacker would."""
    row = c.execute("SELECT hash FROM audit_log WHERE seq = ?", (from_seq - 1,)).fetchone()
    prev = bytes(row[0]) if row else GENESIS
    rows = c.execute(
        "SELECT seq, at, kind, subject, actor, body, json FROM audit_log WHERE seq >= ? ORDER BY seq", (from_seq,)
    ).fetchall()
    for seq, at, kind, subject, actor, body, text in rows:
        h = audit.entry_hash(seq, at, kind, subject, actor, body, text, prev)
        c.execute("UPDATE audit_log SET prev_hash = ?, hash = ? WHERE seq = ?", (prev, h, seq))
        prev = h


def set_checkpoint(
    c: sqlite3.Connection, seq: int, first: int, last: int, root: bytes, signer: Ed25519PrivateKey
) -> None:
    body, text = audit.checkpoint_body(first, last, root, signer.sign(audit.checkpoint_message(first, last, root)))
    c.execute("UPDATE audit_log SET body = ?, json = ? WHERE seq = ?", (body, text, seq))
    rechain(c, seq)


def hashes(c: sqlite3.Connection, first: int, last: int) -> list[bytes]:
    rows = c.execute("SELECT hash FROM audit_log WHERE seq BETWEEN ? AND ? ORDER BY seq", (first, last))
    return [bytes(r[0]) for r in rows]


def export_lines(log: AuditLog, since_seq: int = 0) -> list[str]:
    out = io.StringIO()
    log.export(out, since_seq)
    return out.getvalue().splitlines()
