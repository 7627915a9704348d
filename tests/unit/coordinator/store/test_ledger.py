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


def _history(db: Store, clock: list[float], n: int) -> tuple[Ledger, list[Intent]]:
    """`n` signed requests an hour apart to two destinations; the same history in a policy `Ledger`."""
    ledger, intents = Ledger(), []
    for k in range(n):
        clock[0] += 3600
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
    assert view.has_spent(intents[0].request_id) and not view.has_spent("never")


def test_running_sums_answer_as_the_policy_ledger(tmp_path: Path) -> None:
    db, clock = _store(tmp_path)
    ledger, intents = _history(db, clock, 200)
    _same_answers(db.ledger_view(), ledger, intents, int(clock[0]))


def test_a_decision_uses_indexes_only(tmp_path: Path) -> None:
    db, clock = _store(tmp_path)
    _history(db, clock, 5)
    seen: list[str] = []
    conn = db._conn()
    conn.set_trace_callback(seen.append)
    view = db.ledger_view()
    view.spent("k1", "ETH", DAY, int(clock[0]), "r00001")
    view.spent_to(ALLOWED, "ETH", DAY, int(clock[0]), "r00001")
    view.requests_by("backend-1", DAY, int(clock[0]), "r00001")
    view.withdrawals_to(ALLOWED)
    view.has_spent("r00001")
    conn.set_trace_callback(None)
    assert len(seen) >= 9
    for sql in seen:
        plan = " | ".join(str(r[-1]) for r in conn.execute("EXPLAIN QUERY PLAN " + sql))
        assert "SCAN" not in plan.replace("SCAN CONSTANT", ""), (sql, plan)  # every lookup is an index search


def test_migration_5_fills_the_running_sums_from_the_request_rows(tmp_path: Path) -> None:
    db, clock = _store(tmp_path)
    ledger, intents = _history(db, clock, 40)
    conn = sqlite3.connect(db.path)
    with conn:  # back to schema 4, as a coordinator of the previous release left it
        for table in ("ledger_spends", "ledger_requests", "destination_counts"):
            conn.execute(f"DROP TABLE {table}")
        conn.execute("DELETE FROM schema_version WHERE version = 5")
    conn.close()
    again = Store(db.path, clock=lambda: clock[0])
    assert again.schema_version() == st.SCHEMA_VERSION and 5 in [m[0] for m in MIGRATIONS]
    _same_answers(again.ledger_view(), ledger, intents, int(clock[0]))
