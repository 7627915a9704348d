"""EVM nonces per (chain id, from-address): the coordinator's allocator and its collision check.

`take_nonce` runs inside the transaction that creates the request (`Lifecycle.submit` opens one
`Store.batch` around both), so a nonce is taken if and only if its request is created: a crash
before the commit loses both, never one of them. It first locks the address's `nonce_counters` row
(created on first use, after the highest nonce any request of the address holds), the same
row-lock style as the rest of the store: on PostgreSQL `SELECT ... FOR UPDATE` (an `INSERT ... ON
CONFLICT DO NOTHING` first, so two replicas creating the row agree on one), on SQLite the write
lock the transaction already holds. Every submit for one address, allocated or not, passes that
lock, so two replicas never hand out one nonce and never both accept one backend-supplied nonce.

A nonce is held by every request carrying it that has not ended rejected, blocked or expired (those
never reached the signers). A request whose transaction is the very same body (a resubmit of a
failed request under a new idempotency key) is no second transaction and may share it. A `failed`
request still holds its nonce: its signing may have released partial signatures, and the signers
keep their own (chain, address, nonce) index.

The allocator never goes back: a gap left by a request that ended before signing stays a gap until
an operator fills it with an explicit `nonce` (allowed once no live request holds it); a live
holder's nonce is reused only by a `replacement` naming it (docs/operations.md, "Nonces").
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..dbapi import Connection
from ..request_states import BLOCKED, EXPIRED, REJECTED
from .database import Database
from .errors import NonceInUse, NotFound, StoreError

RELEASED_STATES = (REJECTED, BLOCKED, EXPIRED)
"""A request in one of these holds no nonce: it ended before any signer saw it."""


class NonceTables(Database):
    """The `nonce_counters` table and the nonce columns of `requests`."""

    def take_nonce(
        self, chain_id: int, address: str, nonce: int | None, *, replaces: str = "", tx: Mapping[str, Any] | None = None
    ) -> int:
        """The nonce a new request of `address` on `chain_id` gets: the next one (`nonce` None) or
        the one it names, if no live request holds it with another transaction than `tx` (the
        new request's body as stored; `NonceInUse`) or `replaces` names a live holder. Call inside
        the `batch` that creates the request; the counter row stays locked until it ends."""
        with self._tx() as c:
            c.execute(
                "INSERT INTO nonce_counters (chain_id, address, next_nonce) "
                "SELECT ?, ?, COALESCE(max(nonce) + 1, 0) FROM requests WHERE chain_id = ? AND from_address = ? "
                "ON CONFLICT (chain_id, address) DO NOTHING",
                (chain_id, address, chain_id, address),
            )
            row = c.execute(
                "SELECT next_nonce FROM nonce_counters WHERE chain_id = ? AND address = ? FOR UPDATE",
                (chain_id, address),
            ).fetchone()
            counter = int(row["next_nonce"])
            taken = counter if nonce is None else nonce
            live = _live_holders(c, chain_id, address, taken)
            holders = [r for r, body in live if tx is None or body != tx]
            if replaces:
                if replaces not in [r for r, _ in live]:
                    raise NotFound(f"request {replaces!r} holds no live nonce {taken} of {address} on chain {chain_id}")
            elif holders:
                if nonce is None:  # the counter passed every nonce taken, so this is our bug
                    raise StoreError(f"nonce counter of {address} on chain {chain_id} is behind request {holders[0]}")
                raise NonceInUse(
                    f"nonce {taken} of {address} on chain {chain_id} is held by request {holders[0]}; "
                    "a speed-up or cancel is kind replacement naming it"
                )
            if taken >= counter:
                c.execute(
                    "UPDATE nonce_counters SET next_nonce = ? WHERE chain_id = ? AND address = ?",
                    (taken + 1, chain_id, address),
                )
        return taken

    def next_nonce(self, chain_id: int, address: str) -> int | None:
        """The nonce the allocator hands out next for `address` (None before its first use)."""
        row = self._one("SELECT next_nonce FROM nonce_counters WHERE chain_id = ? AND address = ?", (chain_id, address))
        return None if row is None else int(row["next_nonce"])


def _live_holders(c: Connection, chain_id: int, address: str, nonce: int) -> list[tuple[str, dict[str, Any]]]:
    marks = ", ".join("?" for _ in RELEASED_STATES)
    rows = c.execute(
        "SELECT request_id, tx FROM requests WHERE chain_id = ? AND from_address = ? AND nonce = ? "  # noqa: S608 - placeholders only
        f"AND state NOT IN ({marks}) ORDER BY created_at, request_id",
        (chain_id, address, nonce, *RELEASED_STATES),
    ).fetchall()
    return [(str(r["request_id"]), json.loads(r["tx"])) for r in rows]
