"""Protocol sessions the relay drove: records, bounded blame evidence and the `SessionTables` part of the store."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from signer.tss.errors import Blame

from .columns import blames_from_json, blames_json, ints_from_json, ints_json
from .database import Database
from .errors import InvalidTransition, NotFound


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


def session_from_row(row: Any) -> SessionRecord:
    return SessionRecord(
        row["session_id"],
        row["protocol"],
        row["key_id"],
        ints_from_json(row["parties"]),
        row["state"],
        blames_from_json(row["blame"]),
        row["error"],
        row["started_at"],
        row["ended_at"],
        ints_from_json(row["unreachable"]),
    )


class SessionTables(Database):
    """The `sessions` table."""

    def start_session(self, session_id: str, protocol: str, key_id: str, parties: Sequence[int]) -> None:
        """Record a session the relay is starting."""
        with self._tx() as c:
            c.execute(
                "INSERT INTO sessions (session_id, protocol, key_id, parties, state, started_at, owner) "
                "VALUES (?, ?, ?, ?, 'running', ?, ?)",
                (session_id, protocol, key_id, ints_json(parties), self.now(), self.replica),
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
        row = self._one("SELECT * FROM sessions WHERE session_id = ?", (session_id,))
        if row is None:
            raise NotFound(f"no session {session_id!r}")
        return session_from_row(row)

    def list_sessions(self, key_id: str = "") -> list[SessionRecord]:
        """Sessions, oldest first, optionally of one key."""
        if key_id:
            rows = self._rows("SELECT * FROM sessions WHERE key_id = ? ORDER BY started_at", (key_id,))
        else:
            rows = self._rows("SELECT * FROM sessions ORDER BY started_at")
        return [session_from_row(r) for r in rows]
