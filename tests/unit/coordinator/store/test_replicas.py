"""Two coordinator replicas on one PostgreSQL database: every exclusive claim is made once, the
audit log stays one chain, and a replica fails only what a restarted or dead replica left in flight.

Each test opens two `Store`s ("replicas" a and b, each with its own connection pool) on a fresh
database of the session's PostgreSQL server, and races threads of both against each other.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from structlog.testing import capture_logs

from coordinator import audit
from coordinator import store as st
from coordinator.audit import AuditLog
from coordinator.instruments import Instruments
from coordinator.replica_lease import ReplicaLease
from coordinator.store import Store
from coordinator.watch import Watches

from .conftest import add_key
from .support import SIGNERS, make_request, presigs

THREADS_PER_REPLICA = 4


class Clock:
    """A shared settable clock (seconds)."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def replicas(postgres_url: str, tmp_path: Path, clock: Clock) -> Iterator[tuple[Store, Store]]:
    a = add_key(Store(postgres_url, home=tmp_path, replica="a", clock=clock))
    b = Store(postgres_url, home=tmp_path, replica="b", clock=clock)
    yield a, b
    a.close()
    b.close()


def race(stores: tuple[Store, Store], work: Callable[[Store, int], None]) -> None:
    """Run `work(store, thread_index)` on THREADS_PER_REPLICA threads of each replica at once."""
    start = threading.Barrier(2 * THREADS_PER_REPLICA)
    errors: list[BaseException] = []

    def run(s: Store, i: int) -> None:
        start.wait()
        try:
            work(s, i)
        except BaseException as exc:  # surfaced below: a thread's failure must fail the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s, i)) for i in range(THREADS_PER_REPLICA) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_no_presignature_is_reserved_twice_across_replicas(replicas: tuple[Store, Store]) -> None:
    a, _ = replicas
    ids = presigs(a, 60)
    got: dict[str, list[bytes]] = {}

    def reserve(s: Store, i: int) -> None:
        rid = f"{s.replica}{i}"
        make_request(s, rid)
        got[rid] = []
        while (p := s.reserve_presignature("k1", [SIGNERS], (), 0, rid)) is not None:
            got[rid].append(p.presignature_id)

    race(replicas, reserve)
    handed = [p for ps in got.values() for p in ps]
    assert sorted(handed) == sorted(ids)  # each handed out exactly once
    assert {s for s in ("a", "b") if any(r.startswith(s) and got[r] for r in got)} == {"a", "b"}
    for rid, ps in got.items():
        assert all(a.get_presignature(p).request_id == rid and a.get_presignature(p).state == st.RESERVED for p in ps)


def test_each_request_is_claimed_for_signing_by_exactly_one_replica(replicas: tuple[Store, Store]) -> None:
    a, _ = replicas
    ids = [f"r{i:02d}" for i in range(30)]
    for rid in ids:
        make_request(a, rid)
        a.transition(rid, st.APPROVED)
    claims: list[tuple[str, str]] = []
    lost: list[str] = []

    def claim(s: Store, i: int) -> None:
        for rid in ids[i::2] + ids[1 - i % 2 :: 2]:  # overlapping orders, so the threads collide
            try:
                s.transition(rid, st.SIGNING, expect=(st.APPROVED,))
                claims.append((rid, s.replica))
            except st.InvalidTransition:
                lost.append(rid)

    race(replicas, claim)
    assert sorted(rid for rid, _ in claims) == ids  # claimed once each
    assert {replica for _, replica in claims} == {"a", "b"}
    for rid in ids:
        assert [e.state for e in a.events(rid)] == [st.SUBMITTED, st.APPROVED, st.SIGNING]
        assert a.get_request(rid).state == st.SIGNING


def test_one_idempotency_key_makes_one_request_whichever_replica(replicas: tuple[Store, Store]) -> None:
    made: list[tuple[str, bool]] = []

    def submit(s: Store, i: int) -> None:
        row, created = make_request(s, f"{s.replica}{i}", idem="same-key")
        made.append((row.request_id, created))

    race(replicas, submit)
    assert len({rid for rid, _ in made}) == 1 and sum(created for _, created in made) == 1
    with pytest.raises(st.IdempotencyConflict):
        make_request(replicas[1], "other", idem="same-key", body="another body")


def test_an_approval_is_recorded_once_across_replicas(replicas: tuple[Store, Store]) -> None:
    a, _ = replicas
    make_request(a, "r1")
    a.transition("r1", st.PENDING_APPROVAL)
    recorded: list[bool] = []

    def approve(s: Store, i: int) -> None:
        recorded.append(s.add_approval("r1", f"officer-{i % 2}", f"approval-{i % 2}".encode(), 1, 2))

    race(replicas, approve)
    assert sorted(recorded) == [False] * 6 + [True] * 2  # one record per officer, the rest no-ops
    assert sorted(x.officer_id for x in a.approvals("r1")) == ["officer-0", "officer-1"]


def test_the_audit_chain_from_two_replicas_is_one_chain(replicas: tuple[Store, Store], clock: Clock) -> None:
    a, b = replicas
    key = Ed25519PrivateKey.generate()
    logs = {s.replica: AuditLog(s, key, clock=clock, checkpoint_every=16) for s in replicas}
    for i in range(16):
        make_request(a, f"r{i:02d}")

    def append(s: Store, i: int) -> None:
        log = logs[s.replica]
        for n in range(10):
            log.append(audit.SESSION, f"{s.replica}-{i}-{n}", s.replica, [n])
            rid = f"r{(i * 4 + n) % 16:02d}"
            note = lambda c, s=s, rid=rid: log.append_in(c, audit.REQUEST, rid, s.replica, [rid])  # noqa: E731
            try:  # an entry written in the store transaction of the move it records
                s.transition(rid, st.APPROVED, expect=(st.SUBMITTED,), audit=note)
            except st.InvalidTransition:
                pass

    race(replicas, append)
    logs["a"].checkpoint()
    with b._read() as conn:
        report = audit.verify(conn, key.public_key())
    assert report.ok, report
    entries = logs["b"].entries()
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
    user = [e for e in entries if e.kind != audit.CHECKPOINT]
    assert len([e for e in user if e.kind == audit.SESSION]) == 2 * THREADS_PER_REPLICA * 10
    assert sorted(e.subject for e in user if e.kind == audit.REQUEST) == [f"r{i:02d}" for i in range(16)]


def test_the_append_only_triggers_hold_on_postgresql(replicas: tuple[Store, Store]) -> None:
    a, _ = replicas
    log = AuditLog(a, Ed25519PrivateKey.generate())
    first = log.append(audit.KEY, "k1", "coordinator", [1])
    for sql, args, reason in (
        ("UPDATE audit_log SET actor = 'mallory'", (), "audit_log is append-only"),
        ("DELETE FROM audit_log", (), "audit_log is append-only"),
        (
            "INSERT INTO audit_log VALUES (5, 0, 'key', 's', 'a', ?, '{}', ?, ?)",
            (b"", first.hash, bytes(32)),
            "audit_log entries must extend the chain",
        ),
    ):
        with pytest.raises(psycopg.errors.RaiseException, match=re.escape(reason)), a._tx() as c:
            c.execute(sql, args)
    assert [e.seq for e in log.entries()] == [1]


def test_a_replica_fails_only_what_a_dead_or_restarted_replica_left_in_flight(
    replicas: tuple[Store, Store], clock: Clock
) -> None:
    a, b = replicas
    (pa, pb) = presigs(a, 2)
    for s, rid in ((a, "ra"), (b, "rb")):
        make_request(s, rid)
        s.transition(rid, st.APPROVED)
        s.transition(rid, st.SIGNING)
        s.reserve_presignature("k1", [SIGNERS], (), 0, rid)
        s.start_session(f"s-{rid}", "sign", "k1", SIGNERS)
        s.heartbeat()
    assert b.recover(restart=False).counts() == (0, 0)  # a is alive: its work is its own
    assert a.live_replicas() == ["a", "b"]
    clock.now += 10
    b.heartbeat()
    clock.now += 10  # a has been silent for 20 s > the 15 s lease
    assert b.live_replicas() == ["b"]
    assert b.recover(restart=False).counts() == (1, 1)
    assert b.get_request("ra").state == st.FAILED and b.get_request("rb").state == st.SIGNING
    assert b.get_presignature(pa).state == st.PRESIG_FAILED and b.get_presignature(pb).state == st.RESERVED
    assert b.get_session("s-ra").state == "failed" and b.get_session("s-rb").state == "running"
    # b restarts: it fails its own, and a restarted replica never fails a live one's work.
    assert b.recover().counts() == (1, 1)
    assert b.get_request("rb").state == st.FAILED and b.get_presignature(pb).state == st.PRESIG_FAILED


def test_a_watch_on_one_replica_sees_moves_made_through_the_other(replicas: tuple[Store, Store]) -> None:
    a, b = replicas
    make_request(a, "r1")
    seen: list[str] = []
    watcher = threading.Thread(target=lambda: seen.extend(r.state for r in Watches(b).events("r1", 20.0, 0.05)))
    watcher.start()
    for state in (st.APPROVED, st.SIGNING, st.FAILED):
        a.transition("r1", state)
    watcher.join()
    assert seen == [st.SUBMITTED, st.APPROVED, st.SIGNING, st.FAILED]


def test_the_lease_thread_fails_a_dead_replicas_work_with_its_audit_entry(
    replicas: tuple[Store, Store], clock: Clock
) -> None:
    a, b = replicas
    presigs(a, 1)
    make_request(a, "ra")
    a.transition("ra", st.APPROVED)
    a.transition("ra", st.SIGNING)
    a.reserve_presignature("k1", [SIGNERS], (), 0, "ra")
    a.heartbeat()
    log = AuditLog(b, Ed25519PrivateKey.generate(), clock=clock)
    audited = lambda rid: lambda c: log.append_in(c, audit.REQUEST, rid, "coordinator", ["failed"])  # noqa: E731
    instruments = Instruments()
    lease = ReplicaLease(b, audited, instruments, interval=1.0, lease=15.0)
    assert lease.tick() == (0, 0)
    clock.now += 16
    with capture_logs() as logs:
        assert lease.tick() == (1, 1)
    (moved,) = [e for e in logs if e["event"] == "request_state_changed"]
    assert (moved["request_id"], moved["from_state"], moved["to_state"], moved["move"]) == (
        "ra",
        st.SIGNING,
        st.FAILED,
        "recover",
    )
    (failed,) = [s for s in instruments.request.collect()[0].samples if s.name.endswith("_count")]
    assert (failed.labels, failed.value) == ({"kind": "withdrawal", "state": "failed"}, 1.0)
    assert b.get_request("ra").state == st.FAILED
    assert [e.subject for e in log.entries()] == ["ra"]
    with pytest.raises(ValueError, match="the heartbeat interval must be positive and shorter than the lease"):
        ReplicaLease(b, audited, interval=15.0, lease=15.0)
