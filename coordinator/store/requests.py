"""Signing requests, their transitions and approvals: the `RequestTables` part of the store.

Every read-then-write (creating a request under an idempotency key, a guarded transition,
recording an approval) runs in one transaction that holds what it read: SQLite's `BEGIN IMMEDIATE`
write lock, or on PostgreSQL the request's row lock (`SELECT ... FOR UPDATE`) and the idempotency
key's unique index (per initiator). So it is atomic across threads, processes and coordinator
replicas: of two racing moves from one state exactly one happens, the other sees `InvalidTransition`.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from typing import Any

from signer.policy import WITHDRAWAL

from ..dbapi import Connection
from ..request_states import OPEN_STATES, PENDING_APPROVAL, SIGNED, SUBMITTED, TRANSITIONS
from .columns import PageCursor, blames_json, ints_json
from .database import AuditHook, Database
from .errors import DuplicateApproval, IdempotencyConflict, InvalidTransition, NotFound, StoreError
from .ledger import StoreLedger, record_spends, record_submission
from .request_records import (
    REQUEST_RESULT_FIELDS,
    SELECT_REQUEST,
    RequestEvent,
    RequestRecord,
    StoredApproval,
    request_from_row,
)


def record_event(c: Connection, request_id: str, state: str, detail: str, now: float) -> None:
    """Append the next `request_events` row of a request, inside the caller's write transaction."""
    seq = c.execute("SELECT max(seq) FROM request_events WHERE request_id = ?", (request_id,)).fetchone()[0]
    c.execute("INSERT INTO request_events VALUES (?, ?, ?, ?, ?)", (request_id, int(seq or 0) + 1, state, detail, now))


# An idempotency key is the backend's own: unique per initiator (migration 11), so one backend
# can neither find nor block another's request by reusing its key.
_BOUND_TO = SELECT_REQUEST + " WHERE r.initiator = ? AND r.idempotency_key = ?"


def _bound(row: Any, idempotency_key: str, body_hash: str) -> RequestRecord:
    """The request already bound to an idempotency key, if its body is the same."""
    if row["body_hash"] != body_hash:
        raise IdempotencyConflict(
            f"idempotency key {idempotency_key!r} is bound to request {row['request_id']} with another body",
            row["request_id"],
        )
    return request_from_row(row)


class RequestTables(Database):
    """The `requests`, `request_events` and `approvals` tables."""

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
        from_address: str = "",
        kind: str = WITHDRAWAL,
        initiator: str = "",
        intent: bytes = b"",
        intent_digest: bytes = b"",
        policy_hash: bytes = b"",
        expires_at: int = 0,
        nonce_allocated: bool = False,
        replaces: str = "",
        audit: AuditHook | None = None,
    ) -> tuple[RequestRecord, bool]:
        """Insert a submitted request, or return the one `initiator` already bound to `idempotency_key`.

        Returns (request, created). The same key with a different body raises IdempotencyConflict.
        Keys are scoped per initiator: another backend's key never finds, nor conflicts with, its requests.
        The transaction's chain id and nonce are indexed for the nonce allocator (nonces.py).
        """
        now = self.now()
        with self._tx() as c:
            row = c.execute(_BOUND_TO, (initiator, idempotency_key)).fetchone()
            if row is not None:
                return _bound(row, idempotency_key, body_hash), False
            if c.execute("SELECT 1 FROM keys WHERE key_id = ?", (key_id,)).fetchone() is None:
                raise NotFound(f"no key {key_id!r}")
            # Two replicas may race past the SELECT with one key (PostgreSQL): the loser's insert
            # waits for the winner's commit, does nothing, and the loser answers with the winner's row.
            cur = c.execute(
                "INSERT INTO requests (request_id, key_id, idempotency_key, body_hash, state, tx, path, created_at, "
                "updated_at, kind, initiator, intent, intent_digest, policy_hash, expires_at, from_address, owner, "
                "chain_id, nonce, nonce_allocated, replaces) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (initiator, idempotency_key) DO NOTHING",
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
                    from_address,
                    self.replica,
                    tx.get("chain_id"),
                    tx.get("nonce"),
                    int(nonce_allocated),
                    replaces,
                ),
            )
            if cur.rowcount == 0:
                row = c.execute(_BOUND_TO, (initiator, idempotency_key)).fetchone()
                return _bound(row, idempotency_key, body_hash), False
            c.execute("INSERT INTO request_events VALUES (?, 1, ?, ?, ?)", (request_id, SUBMITTED, "", now))
            record_submission(c, request_id, initiator, now)
            if audit is not None:
                audit(c)
            created = c.execute(SELECT_REQUEST + " WHERE r.request_id = ?", (request_id,)).fetchone()
        return request_from_row(created), True

    def find_request(self, initiator: str, idempotency_key: str, body_hash: str) -> RequestRecord | None:
        """The request `initiator` bound to `idempotency_key` (IdempotencyConflict if its body
        differs), or None."""
        row = self._one(_BOUND_TO, (initiator, idempotency_key))
        return None if row is None else _bound(row, idempotency_key, body_hash)

    def bound_request(self, initiator: str, idempotency_key: str) -> RequestRecord | None:
        """The request `initiator` submitted under `idempotency_key`, or None."""
        row = self._one(_BOUND_TO, (initiator, idempotency_key))
        return None if row is None else request_from_row(row)

    def get_request(self, request_id: str) -> RequestRecord:
        """A request, or NotFound."""
        row = self._one(SELECT_REQUEST + " WHERE r.request_id = ?", (request_id,))
        if row is None:
            raise NotFound(f"no request {request_id!r}")
        return request_from_row(row)

    def list_requests(
        self,
        *,
        key_id: str = "",
        state: str = "",
        limit: int = 100,
        after: PageCursor | None = None,
        initiators: Sequence[str] = (),
    ) -> list[RequestRecord]:
        """Newest first, optionally filtered by key, state and initiators, starting after the cursor `after`."""
        sql, args = SELECT_REQUEST + " WHERE 1=1", list[Any]()
        if initiators:
            sql, args = sql + f" AND r.initiator IN ({', '.join('?' for _ in initiators)})", [*args, *initiators]
        if key_id:
            sql, args = sql + " AND r.key_id = ?", [*args, key_id]
        if state:
            sql, args = sql + " AND r.state = ?", [*args, state]
        if after is not None:
            sql += " AND (r.created_at < ? OR (r.created_at = ? AND r.request_id > ?))"
            args = [*args, after.created_at, after.created_at, after.row_id]
        rows = self._rows(sql + " ORDER BY r.created_at DESC, r.request_id LIMIT ?", (*args, max(1, min(limit, 1000))))
        return [request_from_row(r) for r in rows]

    def open_requests(self) -> list[RequestRecord]:
        """Requests waiting for approvals, a release or a signing slot (see OPEN_STATES), oldest first."""
        marks = ", ".join("?" for _ in OPEN_STATES)
        rows = self._rows(
            SELECT_REQUEST + f" WHERE r.state IN ({marks}) ORDER BY r.created_at, r.request_id",
            OPEN_STATES,
        )
        return [request_from_row(r) for r in rows]

    def open_request_stats(self) -> dict[str, tuple[int, float]]:
        """Per open state: how many requests wait in it and the oldest one's created_at (the
        `requests_by_state` index: cost follows the open requests, not the history)."""
        marks = ", ".join("?" for _ in OPEN_STATES)
        rows = self._rows(
            f"SELECT state, COUNT(*), MIN(created_at) FROM requests WHERE state IN ({marks}) GROUP BY state",  # noqa: S608 - placeholders only
            OPEN_STATES,
        )
        return {str(r[0]): (int(r[1]), float(r[2])) for r in rows}

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
        unknown = set(fields) - REQUEST_RESULT_FIELDS
        if unknown:
            raise StoreError(f"not request result fields: {sorted(unknown)}")
        if "blame" in fields:
            fields["blame"] = blames_json(fields["blame"])
        if "presignature_id" in fields:
            fields["presig_id"] = fields.pop("presignature_id").hex()
        now = self.now()
        with self._tx() as c:
            row = c.execute(
                "SELECT state, intent FROM requests WHERE request_id = ? FOR UPDATE", (request_id,)
            ).fetchone()
            if row is None:
                raise NotFound(f"no request {request_id!r}")
            if expect and row["state"] not in expect:
                raise InvalidTransition(f"request {request_id} is {row['state']}, not {'/'.join(sorted(expect))}")
            if state not in TRANSITIONS.get(row["state"], frozenset()):
                raise InvalidTransition(f"request {request_id}: {row['state']} -> {state} is not allowed")
            sets = ", ".join(f"{k} = ?" for k in fields)
            c.execute(
                # The replica making the move drives the request now (store/replicas.py).
                f"UPDATE requests SET state = ?, updated_at = ?, owner = ?{', ' + sets if sets else ''} "  # noqa: S608 - names from a fixed allow-list
                "WHERE request_id = ?",
                (state, now, self.replica, *fields.values(), request_id),
            )
            record_event(c, request_id, state, detail, now)
            if state == SIGNED and row["intent"] is not None:
                record_spends(c, request_id, bytes(row["intent"]), now)
            if audit is not None:
                audit(c)
            out = c.execute(SELECT_REQUEST + " WHERE r.request_id = ?", (request_id,)).fetchone()
        return request_from_row(out)

    def events(self, request_id: str, after_seq: int = 0) -> list[RequestEvent]:
        """A request's transitions after `after_seq`, in order."""
        rows = self._rows(
            "SELECT * FROM request_events WHERE request_id = ? AND seq > ? ORDER BY seq", (request_id, after_seq)
        )
        return [RequestEvent(r["request_id"], r["seq"], r["state"], r["detail"], r["at"]) for r in rows]

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
            row = c.execute("SELECT state FROM requests WHERE request_id = ? FOR UPDATE", (request_id,)).fetchone()
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
            record_event(c, request_id, PENDING_APPROVAL, detail or f"approved by {officer_id}", now)
            if audit is not None:
                audit(c)
        return True

    def approvals(self, request_id: str) -> list[StoredApproval]:
        """A request's recorded approvals, in the order they were recorded."""
        rows = self._rows(
            "SELECT * FROM approvals WHERE request_id = ? ORDER BY recorded_at, officer_id", (request_id,)
        )
        return [
            StoredApproval(
                r["request_id"], r["officer_id"], bytes(r["approval"]), r["signed_at"], r["expires_at"], r[5]
            )
            for r in rows
        ]

    # --- the coordinator's own ledger (running sums, ledger.py) ---------------------------------------------
    def ledger_view(self) -> StoreLedger:
        """The rolling-limit ledger as the policy engine reads it (indexed lookups, no history scan)."""
        return StoreLedger(self._rows)
