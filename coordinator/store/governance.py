"""Governance storage: the installed registry, policy and freeze state and the ordered delivery log
of accepted changes with the signers that hold each (the `GovernanceTables` part of the store)."""

from __future__ import annotations

from dataclasses import dataclass

from .columns import ints_from_json, ints_json
from .database import AuditHook, Database
from .errors import NotFound, StoreError

GOVERNANCE_STATE = ("registry", "policy", "freeze")
GOVERNANCE_LOG_KINDS = ("registry", "policy", "freeze", "unfreeze")


@dataclass(frozen=True, slots=True)
class GovernanceEntry:
    """One accepted governance change or order, in the order the signers must receive them."""

    seq: int
    kind: str
    payload: bytes
    at: float
    acked: frozenset[int]


class GovernanceTables(Database):
    """The `governance` and `governance_log` tables."""

    def get_governance(self, name: str) -> bytes | None:
        """The stored state `name` (registry, policy, freeze), or None before the first install."""
        row = self._one("SELECT value FROM governance WHERE name = ?", (name,))
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
                cur = c.execute(
                    "INSERT INTO governance_log (kind, payload, at) VALUES (?, ?, ?) RETURNING seq", (*log, now)
                )
                seq = int(cur.fetchone()[0])
            if audit is not None:
                audit(c)
            return seq

    def governance_log(self, after_seq: int = 0) -> list[GovernanceEntry]:
        """Accepted changes and orders after `after_seq`, in order."""
        rows = self._rows("SELECT * FROM governance_log WHERE seq > ? ORDER BY seq", (after_seq,))
        return [
            GovernanceEntry(r["seq"], r["kind"], bytes(r["payload"]), r["at"], frozenset(ints_from_json(r["acked"])))
            for r in rows
        ]

    def ack_governance(self, seq: int, party: int) -> None:
        """Record that signer `party` holds log entry `seq`."""
        with self._tx() as c:
            row = c.execute("SELECT acked FROM governance_log WHERE seq = ? FOR UPDATE", (seq,)).fetchone()
            if row is None:
                raise NotFound(f"no governance log entry {seq}")
            acked = set(ints_from_json(row["acked"])) | {party}
            c.execute("UPDATE governance_log SET acked = ? WHERE seq = ?", (ints_json(sorted(acked)), seq))

    def unack_governance(self, party: int) -> int:
        """Forget that signer `party` holds any log entry (it reported its state behind: a restore),
        so `sync` delivers the whole log to it again; returns how many entries it had acknowledged."""
        with self._tx() as c:
            rows = c.execute("SELECT seq, acked FROM governance_log ORDER BY seq FOR UPDATE").fetchall()
            n = 0
            for r in rows:
                acked = set(ints_from_json(r["acked"]))
                if party in acked:
                    n += 1
                    c.execute(
                        "UPDATE governance_log SET acked = ? WHERE seq = ?",
                        (ints_json(sorted(acked - {party})), r["seq"]),
                    )
            return n
