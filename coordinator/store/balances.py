"""Hot-wallet balances as backends report them (the `BalanceTables` part of the store, migration 10).

One row per (network, address, asset): the newest report (an older one never replaces it) and
the sweep proposed from it. `sweep_seq` counts the sweeps that ended; the sweeper names its
proposal's idempotency key after it, so replicas that race on one full wallet propose one sweep.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .database import AuditHook, Database


@dataclass(frozen=True, slots=True)
class BalanceRecord:
    """The newest balance report of one hot wallet, and its sweep."""

    network: str
    address: str
    asset: str
    amount: int
    next_nonce: int
    reported_at: float
    reporter: str
    sweep_request_id: str
    """The open sweep proposed from a report ("" when none is open)."""
    sweep_seq: int
    swept_at: float
    """When the last sweep was signed (0: never): a report from before it proposes nothing."""
    last_refill_at: float = 0.0
    """The report that last showed the balance rising (a refill or a deposit; 0: none seen)."""
    refill_every: float = 0.0
    """The smoothed interval between refills (0: fewer than two seen)."""

    def expected_refill(self) -> float | None:
        """When the next refill may be expected, from the refills seen (None: no estimate yet)."""
        return self.last_refill_at + self.refill_every if self.refill_every > 0 else None


def _record(r: Any) -> BalanceRecord:
    return BalanceRecord(
        r["network"],
        r["address"],
        r["asset"],
        int(r["amount"]),
        int(r["next_nonce"]),
        float(r["reported_at"]),
        r["reporter"],
        r["sweep_request_id"],
        int(r["sweep_seq"]),
        float(r["swept_at"]),
        float(r["last_refill_at"]),
        float(r["refill_every"]),
    )


class BalanceTables(Database):
    """The `hot_balances` table."""

    def record_balance(
        self,
        network: str,
        address: str,
        asset: str,
        amount: int,
        next_nonce: int,
        reported_at: float,
        reporter: str,
        audit: AuditHook | None = None,
    ) -> tuple[BalanceRecord, bool]:
        """Keep a report unless a newer one is held; returns the row and whether this report is it."""
        with self._tx() as c:
            row = c.execute(
                "SELECT * FROM hot_balances WHERE network = ? AND address = ? AND asset = ? FOR UPDATE",
                (network, address, asset),
            ).fetchone()
            if row is not None and float(row["reported_at"]) >= reported_at:
                return _record(row), False
            refill_at, every = _refills(row, amount, reported_at)
            c.execute(
                "INSERT INTO hot_balances (network, address, asset, amount, next_nonce, reported_at, reporter) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(network, address, asset) DO UPDATE SET "
                "amount = excluded.amount, next_nonce = excluded.next_nonce, reported_at = excluded.reported_at, "
                "reporter = excluded.reporter",
                (network, address, asset, str(amount), next_nonce, reported_at, reporter),
            )
            c.execute(
                "UPDATE hot_balances SET last_refill_at = ?, refill_every = ? "
                "WHERE network = ? AND address = ? AND asset = ?",
                (refill_at, every, network, address, asset),
            )
            if audit is not None:
                audit(c)
            new = c.execute(
                "SELECT * FROM hot_balances WHERE network = ? AND address = ? AND asset = ?", (network, address, asset)
            ).fetchone()
            return _record(new), True

    def balance(self, network: str, address: str, asset: str) -> BalanceRecord | None:
        """The newest report of a hot wallet, or None."""
        row = self._one(
            "SELECT * FROM hot_balances WHERE network = ? AND address = ? AND asset = ?", (network, address, asset)
        )
        return None if row is None else _record(row)

    def balances(self) -> list[BalanceRecord]:
        """Every hot wallet's newest report (one row per configured wallet that reported)."""
        return [_record(r) for r in self._rows("SELECT * FROM hot_balances ORDER BY network, address, asset")]

    def source_intents(self, from_address: str, state: str, since: float = 0.0) -> list[tuple[str, float, bytes]]:
        """(request id, created_at, intent) of the requests from `from_address` in `state` updated at
        or after `since` (the `requests_by_source` index: what the wallet did since its last report;
        a request of the report's own second counts as not yet in it: fail closed)."""
        rows = self._rows(
            "SELECT request_id, created_at, intent FROM requests "
            "WHERE from_address = ? AND state = ? AND updated_at >= ? AND intent IS NOT NULL",
            (from_address, state, since),
        )
        return [(r["request_id"], float(r["created_at"]), bytes(r["intent"])) for r in rows]

    def set_sweep(self, network: str, address: str, asset: str, request_id: str) -> None:
        """Note the sweep proposed for a wallet."""
        with self._tx() as c:
            c.execute(
                "UPDATE hot_balances SET sweep_request_id = ? WHERE network = ? AND address = ? AND asset = ?",
                (request_id, network, address, asset),
            )

    def end_sweep(self, network: str, address: str, asset: str, request_id: str, swept_at: float) -> bool:
        """Close the wallet's sweep `request_id` (ended; `swept_at` > 0 if it was signed); False if
        another replica closed it first."""
        with self._tx() as c:
            cur = c.execute(
                "UPDATE hot_balances SET sweep_request_id = '', sweep_seq = sweep_seq + 1, "
                "swept_at = CASE WHEN ? > swept_at THEN ? ELSE swept_at END "
                "WHERE network = ? AND address = ? AND asset = ? AND sweep_request_id = ?",
                (swept_at, swept_at, network, address, asset, request_id),
            )
            return bool(cur.rowcount)


def _refills(row: Any, amount: int, reported_at: float) -> tuple[float, float]:
    """(last_refill_at, refill_every) after a report of `amount`: a rise over the held report is a
    refill; the interval between refills is smoothed (weight 0.3 to the newest)."""
    if row is None:
        return 0.0, 0.0
    last, every = float(row["last_refill_at"]), float(row["refill_every"])
    if amount <= int(row["amount"]):
        return last, every
    if last <= 0:
        return reported_at, every
    interval = reported_at - last
    return reported_at, interval if every <= 0 else 0.7 * every + 0.3 * interval
