"""The coordinator's running-sum ledger: the same answers as the policy `Ledger`, from indexed
lookups only (no scan of the history), and filled from the request rows when migration 5 lands."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

from coordinator import store as st
from coordinator.store import Store
from coordinator.store.ledger import StoreLedger
from coordinator.store.migrations import MIGRATIONS
from signer.policy import Intent, Ledger, canonical_destination
from tests.unit.policy.support import ALLOWED, COLD, ETH, intent

DAY = 86400
BASE = intent()


def _signed(db: Store, n: int, i: Intent, initiator: str = "backend-1") -> None:
    rid = i.request_id
    db.create_request(
        request_id=rid,
        key_id="k1",
        idempotency_key=rid,
        body_hash="b",
        tx={"n": n},
        path=(0, 1),
        initiator=initiator,
        intent=i.to_bytes(),
    )
    db.transition(rid, st.APPROVED)
    db.transition(rid, st.SIGNING)
    db.transition(rid, st.SIGNED)


def _history(
    db: Store, clock: list[float], n: int, *, first: int = 0, step: int = 3600
) -> tuple[Ledger, list[Intent]]:
    """`n` signed requests `step` seconds apart to two destinations; the same history in a policy `Ledger`."""
    ledger, intents = Ledger(), []
    for k in range(first, first + n):
        clock[0] += step
        i = dataclasses.replace(
            BASE, request_id=f"r{k:05d}", key_id="k1", amount=ETH + k, destination=(ALLOWED, COLD)[k % 3 == 0]
        )
        ledger.record_request("backend-1", i.request_id, int(clock[0]))
        _signed(db, k, i)
        ledger.record_spend(i, int(clock[0]))
        intents.append(i)
    return ledger, intents


def _store(tmp_path: Path) -> tuple[Store, list[float]]:
    clock = [1_700_000_000.0]
    db = Store(tmp_path / "c.db", clock=lambda: clock[0])
    db.add_key(st.KeyRecord("k1", "hot", 2, (1, 2, 3), "112", b"\x02" + b"\x11" * 32, b"\x22" * 32, 0, b"", clock[0]))
    return db, clock


def _same_answers(view: StoreLedger, ledger: Ledger, intents: list[Intent], now: int) -> None:
    for window in (3600, DAY, 7 * DAY, 365 * DAY):
        for exclude in ("", intents[-1].request_id, intents[-30].request_id):
            assert view.spent("k1", "ETH", window, now, exclude) == ledger.spent("k1", "ETH", window, now, exclude)
            for d in (ALLOWED, COLD):
                dest = canonical_destination("eip155:1", d)
                got = view.spent_to(dest, "ETH", window, now, exclude)
                assert got == ledger.spent_to(dest, "ETH", window, now, exclude)
            assert view.requests_by("backend-1", window, now, exclude) == ledger.requests_by(
                "backend-1", window, now, exclude
            )
    for d in (ALLOWED, COLD):
        dest = canonical_destination("eip155:1", d)
        assert view.withdrawals_to(dest) == ledger.withdrawals_to(dest)
        assert view.first_paid(dest) == ledger.first_paid(dest) is not None
    assert view.first_paid("0xnever") is None
    assert view.has_spent(intents[0].request_id) and not view.has_spent("never")


def test_running_sums_answer_as_the_policy_ledger(tmp_path: Path) -> None:
    db, clock = _store(tmp_path)
    ledger, intents = _history(db, clock, 200)
    _same_answers(db.ledger_view(), ledger, intents, int(clock[0]))


def _steps(db: Store, clock: list[float]) -> int:
    """SQLite virtual-machine steps of one decision's ledger questions (excluding a recent request)."""
    steps = [0]
    conn = db._conn()

    def count() -> int:
        steps[0] += 1
        return 0

    conn.set_progress_handler(count, 1)
    view, now = db.ledger_view(), int(clock[0])
    for rid in ("r00001", "never"):
        view.spent("k1", "ETH", DAY, now, rid)
        view.spent_to(canonical_destination("eip155:1", ALLOWED), "ETH", DAY, now, rid)
        view.requests_by("backend-1", DAY, now, rid)
    view.withdrawals_to(canonical_destination("eip155:1", ALLOWED))
    view.first_paid(canonical_destination("eip155:1", ALLOWED))
    view.has_spent("r00001")
    conn.set_progress_handler(None, 1)
    return steps[0]


def test_a_decision_does_the_same_work_whatever_the_history(tmp_path: Path) -> None:
    db, clock = _store(tmp_path)
    _history(db, clock, 30, step=60)  # every release inside the day's window
    small = _steps(db, clock)
    _history(db, clock, 600, first=30, step=60)
    big = _steps(db, clock)
    # Twenty times the history: a B-tree a level deeper at most, never a pass over the rows.
    assert big <= small * 1.25, (small, big)


def test_migration_5_fills_the_running_sums_from_the_request_rows(tmp_path: Path) -> None:
    db, clock = _store(tmp_path)
    ledger, intents = _history(db, clock, 40)
    conn = sqlite3.connect(db.path)
    with conn:  # back to schema 4, as a coordinator of the previous release left it
        for table in ("key_epoch_commits", "ledger_spends", "ledger_requests", "destination_counts"):
            conn.execute(f"DROP TABLE {table}")
        conn.execute("ALTER TABLE keys DROP COLUMN retired")  # migration 7's
        conn.execute("DROP TABLE replicas")  # migration 8's
        conn.execute("DROP TABLE destination_first")  # migration 9's
        conn.execute("DROP TABLE hot_balances")  # migration 10's
        conn.execute("DROP INDEX requests_by_source")  # migration 11's
        conn.execute("DROP INDEX audit_log_by_subject")  # migration 12's (13 rebuilds the requests table)
        for table in ("requests", "presignatures", "sessions"):
            conn.execute(f"ALTER TABLE {table} DROP COLUMN owner")
        conn.execute("DELETE FROM schema_version WHERE version >= 5")
    conn.close()
    again = Store(db.path, clock=lambda: clock[0])
    assert again.schema_version() == st.SCHEMA_VERSION and 5 in [m[0] for m in MIGRATIONS]
    _same_answers(again.ledger_view(), ledger, intents, int(clock[0]))  # migration 9: first paid from the spends
