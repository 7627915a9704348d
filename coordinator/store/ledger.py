"""The coordinator's rolling-limit ledger as running sums in the database (migration 5).

A policy decision asks a handful of windowed questions (released from a key, released to a
destination, requests by a client, withdrawals ever made to a destination). Each is answered
with two indexed lookups, never a scan of the history:

    ledger_spends     one row per (signed request, charged asset), with the running sums of its
                      (key, asset) and (destination, asset) groups up to and including it
    ledger_requests   one row per submitted request, with the running count of its initiator
    destination_counts  signed withdrawals ever made to each destination (the trust ramp)
    destination_first   when each destination was first paid (new-destination breakers, migration 9)

The sum within a window is the running sum of the group's newest row minus that of its newest
row at or before the window's start. Times within a group never go back: a row is stamped
`max(now, the group's newest time)`, so a clock stepping back keeps a release in the window a
little longer (fail closed), never shorter. Amounts are decimal text: wei overflow SQLite's
64-bit integers. Rows are written in the transaction that signs (or submits) the request, under
the `ledger` lock (`dbapi.serialise`) so replicas sharing a PostgreSQL database extend one sum.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from signer.policy import Intent, canonical_destination, charges
from signer.policy.btc_intent import SpendIntent, is_spend_intent
from signer.policy.message_intent import is_message_intent

from ..dbapi import Connection, serialise
from ..request_states import SIGNED

_SPEND_GROUPS = {"key": ("key_id", "key_cum"), "destination": ("destination", "dest_cum")}


def record_spends(c: Connection, request_id: str, intent_bytes: bytes, now: float, *, first_paid: bool = True) -> None:
    """Charge a signed request's intent to the running sums (once per request id; a spend: one
    row per payout and asset, each destination counted). `first_paid`
    False: for migration 5's backfill, which runs before `destination_first` exists (migration 9
    fills it from these rows)."""
    serialise(c, "ledger")  # a running sum is read then extended: one writer at a time across replicas
    if c.execute("SELECT 1 FROM ledger_spends WHERE request_id = ? LIMIT 1", (request_id,)).fetchone():
        return
    if is_message_intent(intent_bytes):
        return  # a message moves no amount the limits count
    # A Bitcoin spend is charged payout by payout (its fee shared among them), as the policy counts it.
    if is_spend_intent(intent_bytes):
        payouts = SpendIntent.from_bytes(intent_bytes).payout_intents()
    else:
        payouts = (Intent.from_bytes(intent_bytes),)
    for intent in payouts:
        _charge(c, request_id, intent, now, first_paid)


def _charge(c: Connection, request_id: str, intent: Intent, now: float, first_paid: bool) -> None:
    destination = canonical_destination(intent.chain, intent.destination)
    for asset, amount in charges(intent).items():
        key_at, key_cum = _newest(c, "key_id", "key_cum", intent.key_id, asset)
        dest_at, dest_cum = _newest(c, "destination", "dest_cum", destination, asset)
        c.execute(
            "INSERT INTO ledger_spends (request_id, key_id, asset, destination, amount, at, key_cum, dest_cum) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                request_id,
                intent.key_id,
                asset,
                destination,
                str(amount),
                max(now, key_at, dest_at),
                str(key_cum + amount),
                str(dest_cum + amount),
            ),
        )
    c.execute(
        "INSERT INTO destination_counts VALUES (?, 1) "
        "ON CONFLICT(destination) DO UPDATE SET count = destination_counts.count + 1",
        (destination,),
    )
    if first_paid:
        c.execute(
            "INSERT INTO destination_first VALUES (?, ?) ON CONFLICT(destination) DO NOTHING", (destination, now)
        )


def record_submission(c: Connection, request_id: str, initiator: str, now: float) -> None:
    """Count a submitted request against its initiator's rate."""
    serialise(c, "ledger")
    row = c.execute(
        "SELECT at, n FROM ledger_requests WHERE initiator = ? ORDER BY at DESC, seq DESC LIMIT 1", (initiator,)
    ).fetchone()
    at, n = (float(row[0]), int(row[1])) if row is not None else (now, 0)
    c.execute(
        "INSERT INTO ledger_requests (initiator, request_id, at, n) VALUES (?, ?, ?, ?)",
        (initiator, request_id, max(now, at), n + 1),
    )


def _newest(c: Connection, column: str, cum: str, group: str, asset: str) -> tuple[float, int]:
    row = c.execute(
        f"SELECT at, {cum} FROM ledger_spends WHERE {column} = ? AND asset = ? "  # noqa: S608 - fixed column names
        "ORDER BY at DESC, seq DESC LIMIT 1",
        (group, asset),
    ).fetchone()
    return (float(row[0]), int(row[1])) if row is not None else (0.0, 0)


class StoreLedger:
    """The `LedgerView` the policy engine asks, answered from the running sums (O(log n) each)."""

    def __init__(self, query: Callable[[str, Sequence[object]], list[Any]]) -> None:
        self._query = query

    def _first(self, sql: str, parameters: Sequence[object]) -> Any:
        rows = self._query(sql, parameters)
        return rows[0] if rows else None

    def has_spent(self, request_id: str) -> bool:
        """Whether a request with this id was signed."""
        row = self._first("SELECT 1 FROM ledger_spends WHERE request_id = ? LIMIT 1", (request_id,))
        return row is not None

    def spent(self, key_id: str, asset: str, window: int, now: int, exclude: str = "") -> int:
        """Sum signed from `key_id` in `asset` within the window."""
        return self._window("key", key_id, asset, now - window, exclude)

    def spent_to(self, destination: str, asset: str, window: int, now: int, exclude: str = "") -> int:
        """Sum signed to `destination` in `asset` within the window."""
        return self._window("destination", destination, asset, now - window, exclude)

    def requests_by(self, client: str, window: int, now: int, exclude: str = "") -> int:
        """Requests submitted by `client` within the window."""
        query = "SELECT n FROM ledger_requests WHERE initiator = ?{} ORDER BY at DESC, seq DESC LIMIT 1"
        cutoff = now - window
        last = self._first(query.format(""), (client,))
        if last is None:
            return 0
        before = self._first(query.format(" AND at <= ?"), (client, cutoff))
        count = int(last[0]) - (int(before[0]) if before is not None else 0)
        # By request id alone, filtered here: the planner must not pick the initiator's range instead.
        mine = self._query("SELECT initiator, at FROM ledger_requests WHERE request_id = ?", (exclude,))
        return count - sum(1 for who, at in mine if who == client and at > cutoff)

    def withdrawals_to(self, destination: str) -> int:
        """Signed withdrawals ever made to `destination`."""
        row = self._first("SELECT count FROM destination_counts WHERE destination = ?", (destination,))
        return 0 if row is None else int(row[0])

    def first_paid(self, destination: str) -> int | None:
        """When `destination` was first paid (unix seconds), or None."""
        row = self._first("SELECT first_at FROM destination_first WHERE destination = ?", (destination,))
        return None if row is None else int(float(row[0]))

    def _window(self, group: str, value: str, asset: str, cutoff: int, exclude: str) -> int:
        column, cum = _SPEND_GROUPS[group]
        query = (
            f"SELECT {cum} FROM ledger_spends WHERE {column} = ? AND asset = ?{{}} "  # noqa: S608 - fixed column names
            "ORDER BY at DESC, seq DESC LIMIT 1"
        )
        last = self._first(query.format(""), (value, asset))
        if last is None:
            return 0
        before = self._first(query.format(" AND at <= ?"), (value, asset, cutoff))
        total = int(last[0]) - (int(before[0]) if before is not None else 0)
        # By request id alone, filtered here: the planner must not pick the group's range instead.
        own = self._query(
            f"SELECT {column}, asset, amount, at FROM ledger_spends WHERE request_id = ?",  # noqa: S608 - fixed names
            (exclude,),
        )
        return total - sum(int(amount) for g, a, amount, at in own if g == value and a == asset and at > cutoff)


def backfill(c: Connection) -> None:
    """Fill the running sums from the request rows (migration 5, in its transaction)."""
    rows = c.execute(
        "SELECT request_id, intent, updated_at FROM requests WHERE state = ? AND intent IS NOT NULL "
        "ORDER BY updated_at",
        (SIGNED,),
    ).fetchall()
    for request_id, intent, updated_at in rows:
        record_spends(c, request_id, bytes(intent), float(updated_at), first_paid=False)
    for request_id, initiator, created_at in c.execute(
        "SELECT request_id, initiator, created_at FROM requests ORDER BY created_at"
    ).fetchall():
        record_submission(c, request_id, initiator, float(created_at))
