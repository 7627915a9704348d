"""The coordinator's SQLite store: migrations, presignature reservation, idempotency, lifecycle."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from coordinator import store as st
from coordinator.store import KeyRecord, Store
from signer.tss.errors import Blame

SIGNERS = (1, 2)


@pytest.fixture
def db(tmp_path: Path) -> Store:
    s = Store(tmp_path / "coordinator.db")
    s.add_key(KeyRecord("k1", "hot", 2, (1, 2, 3), "112", b"\x02" + b"\x11" * 32, b"\x22" * 32, 0, b"aux", s.now()))
    return s


def _presigs(
    db: Store, n: int, signers: tuple[int, ...] = SIGNERS, path: tuple[int, ...] = (), epoch: int = 0
) -> list[str]:
    ids = [f"{signers}-{path}-{epoch}-{i:04d}" for i in range(n)]
    for i in ids:
        db.add_presignature(i, "k1", signers, path, b"public", epoch)
    return ids


def _request(db: Store, request_id: str, idem: str | None = None, body: str = "body") -> tuple[st.RequestRecord, bool]:
    return db.create_request(
        request_id=request_id,
        key_id="k1",
        idempotency_key=idem or request_id,
        body_hash=body,
        tx={"to": "x"},
        path=(0, 1),
    )


# --- schema -------------------------------------------------------------------------------------------
def test_wal_foreign_keys_and_schema_version(tmp_path: Path) -> None:
    s = Store(tmp_path / "a.db")
    assert s.schema_version() == st.SCHEMA_VERSION
    conn = sqlite3.connect(tmp_path / "a.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert s._conn().execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL; see the module docstring
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"schema_version", "keys", "presignatures", "requests", "request_events", "sessions"} <= tables
    with pytest.raises(sqlite3.IntegrityError):  # foreign keys are enforced on the store's connections
        s.add_presignature("p", "no-such-key", SIGNERS, (), b"", 0)


def test_migrations_are_idempotent(tmp_path: Path, db: Store) -> None:
    _presigs(db, 2)
    assert db.migrate() == []
    again = Store(db.path)
    assert again.migrate() == []
    assert again.schema_version() == st.SCHEMA_VERSION
    versions = sqlite3.connect(db.path).execute("SELECT version FROM schema_version").fetchall()
    assert [v for (v,) in versions] == [m[0] for m in st.MIGRATIONS]
    assert again.get_key("k1").name == "hot"
    assert again.count_ready("k1", SIGNERS, (), 0) == 2


def test_concurrent_opens_migrate_once(tmp_path: Path) -> None:
    path = tmp_path / "race.db"
    errors: list[BaseException] = []

    def open_store() -> None:
        try:
            Store(path)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sqlite3.connect(path).execute("SELECT count(*) FROM schema_version").fetchone()[0] == len(st.MIGRATIONS)


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    s = Store(tmp_path / "new.db")
    conn = sqlite3.connect(s.path)
    conn.execute("INSERT INTO schema_version VALUES (999, 'from the future', 0)")
    conn.commit()
    with pytest.raises(st.StoreError, match="newer"):
        Store(s.path)


# --- presignatures ------------------------------------------------------------------------------------
def test_reserve_takes_oldest_matching_and_records_request(db: Store) -> None:
    _presigs(db, 1, signers=(1, 3))
    _presigs(db, 1, path=(7,))
    _presigs(db, 1, epoch=1)
    ids = _presigs(db, 2)
    _request(db, "r1")
    got = db.reserve_presignature("k1", [SIGNERS], (), 0, "r1")
    assert got is not None and got.presig_id == ids[0]
    assert got.state == st.RESERVED and got.request_id == "r1" and got.signers == SIGNERS
    assert db.count_ready("k1", SIGNERS, (), 0) == 1


def test_reserve_prefers_earlier_signer_sets(db: Store) -> None:
    (later,) = _presigs(db, 1, signers=(2, 3))
    (first,) = _presigs(db, 1, signers=(1, 3))
    _request(db, "r1")
    got = db.reserve_presignature("k1", [(1, 2), (1, 3), (2, 3)], (), 0, "r1")
    assert got is not None and got.presig_id == first
    assert db.get_presignature(later).state == st.READY


def test_reserve_returns_none_when_empty(db: Store) -> None:
    _request(db, "r1")
    assert db.reserve_presignature("k1", [SIGNERS], (), 0, "r1") is None


def test_reserved_presignature_is_never_handed_out_again(db: Store) -> None:
    (pid,) = _presigs(db, 1)
    _request(db, "r1")
    _request(db, "r2")
    assert db.reserve_presignature("k1", [SIGNERS], (), 0, "r1") is not None
    db.finish_presignature(pid, st.PRESIG_FAILED)
    assert db.reserve_presignature("k1", [SIGNERS], (), 0, "r2") is None
    with pytest.raises(st.InvalidTransition):
        db.finish_presignature(pid, st.CONSUMED)
    with pytest.raises(st.InvalidTransition):
        db.finish_presignature(pid, st.READY)


def test_concurrent_reservations_never_share_a_presignature(tmp_path: Path, db: Store) -> None:
    ids = _presigs(db, 40)
    requests = [f"r{i}" for i in range(8)]
    for r in requests:
        _request(db, r)
    got: dict[str, list[str]] = {r: [] for r in requests}
    start = threading.Barrier(len(requests))

    def worker(request_id: str, own: bool) -> None:
        s = Store(db.path) if own else db  # half share the Store (thread-local connections), half open their own
        start.wait()
        while (p := s.reserve_presignature("k1", [SIGNERS], (), 0, request_id)) is not None:
            got[request_id].append(p.presig_id)

    threads = [threading.Thread(target=worker, args=(r, i % 2 == 0)) for i, r in enumerate(requests)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    handed = [p for ps in got.values() for p in ps]
    assert sorted(handed) == sorted(ids)  # every one handed out exactly once
    for r, ps in got.items():
        assert all(db.get_presignature(p).request_id == r for p in ps)


def test_void_presignatures_of_old_epochs(db: Store) -> None:
    old = _presigs(db, 2, epoch=0)
    new = _presigs(db, 1, epoch=1)
    assert db.void_presignatures("k1", keep_epoch=1) == 2
    assert {db.get_presignature(p).state for p in old} == {st.PRESIG_FAILED}
    assert db.get_presignature(new[0]).state == st.READY


# --- requests and idempotency ---------------------------------------------------------------------------
def test_same_idempotency_key_same_body_returns_the_same_request(db: Store) -> None:
    first, created = _request(db, "r1", idem="idem-1")
    again, created_again = _request(db, "r2", idem="idem-1")
    assert created and not created_again
    assert again.request_id == first.request_id == "r1"
    with pytest.raises(st.NotFound):
        db.get_request("r2")


def test_same_idempotency_key_other_body_conflicts(db: Store) -> None:
    _request(db, "r1", idem="idem-1", body="A")
    with pytest.raises(st.IdempotencyConflict):
        _request(db, "r2", idem="idem-1", body="B")


def test_concurrent_submits_create_one_request(db: Store) -> None:
    results: list[tuple[str, bool]] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def submit(i: int) -> None:
        start.wait()
        row, created = _request(db, f"r{i}", idem="same")
        with lock:
            results.append((row.request_id, created))

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({rid for rid, _ in results}) == 1
    assert sum(created for _, created in results) == 1


def test_request_for_unknown_key_is_not_found(db: Store) -> None:
    with pytest.raises(st.NotFound):
        db.create_request(request_id="r", key_id="nope", idempotency_key="i", body_hash="b", tx={}, path=())


def test_transitions_record_events_and_results(db: Store) -> None:
    _request(db, "r1")
    db.transition("r1", st.SIGNING, "start", digest=b"\x01" * 32, from_address="0xabc")
    db.transition("r1", st.SIGNING, "attempt 2")
    row = db.transition("r1", st.SIGNED, "done", r=b"\x02" * 32, s=b"\x03" * 32, v=1, raw_tx=b"\x02raw", tx_hash=b"h")
    assert row.final and row.v == 1 and row.digest == b"\x01" * 32 and row.from_address == "0xabc"
    events = db.events("r1")
    assert [(e.seq, e.state) for e in events] == [(1, "submitted"), (2, "signing"), (3, "signing"), (4, "signed")]
    assert [e.state for e in db.events("r1", after_seq=2)] == ["signing", "signed"]
    with pytest.raises(st.InvalidTransition):
        db.transition("r1", st.FAILED)


def test_blame_round_trips(db: Store) -> None:
    _request(db, "r1")
    blames = (Blame(0, "presign/r2", "envelope_signature", b"\x00\xff"), Blame(3, "sign", "partial_signature"))
    db.transition("r1", st.FAILED, "aborted", blame=blames, error="aborted", error_code="aborted")
    row = db.get_request("r1")
    assert row.blame == blames and row.error_code == "aborted"


def test_unknown_result_field_is_refused(db: Store) -> None:
    _request(db, "r1")
    with pytest.raises(st.StoreError):
        db.transition("r1", st.SIGNING, key_id="k2")


def test_list_requests_filters(db: Store) -> None:
    for i in range(3):
        _request(db, f"r{i}")
    db.transition("r1", st.FAILED, "x")
    assert [r.request_id for r in db.list_requests(state=st.FAILED)] == ["r1"]
    assert len(db.list_requests(key_id="k1", limit=2)) == 2
    assert db.list_requests(key_id="other") == []


def test_recover_fails_in_flight_requests_and_reserved_presignatures(db: Store) -> None:
    (pid,) = _presigs(db, 1)
    _request(db, "r1")
    _request(db, "r2")
    db.transition("r1", st.SIGNING)
    db.reserve_presignature("k1", [SIGNERS], (), 0, "r1")
    db.start_session("s1", "presign", "k1", SIGNERS)
    assert db.recover() == (2, 1)
    assert db.get_request("r1").state == st.FAILED and db.get_request("r2").state == st.FAILED
    assert db.get_presignature(pid).state == st.PRESIG_FAILED
    assert db.get_session("s1").state == "failed"


def test_sessions_record_outcome(db: Store) -> None:
    db.start_session("s1", "keygen", "k9", (1, 2, 3))
    db.end_session("s1", ok=False, blame=[Blame(0, "keygen/r2", "envelope_signature")], error="aborted")
    s = db.get_session("s1")
    assert s.state == "failed" and s.blame[0].party == 0 and s.parties == (1, 2, 3) and s.ended_at is not None
    with pytest.raises(st.InvalidTransition):
        db.end_session("s1", ok=True)
    assert [x.session_id for x in db.list_sessions("k9")] == ["s1"]


# --- policy lifecycle: migration, approvals, guarded transitions, governance, audit hooks ---------------
def test_a_v1_database_migrates_and_keeps_its_requests(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(
        "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at REAL NOT NULL)"
    )
    for sql in st.MIGRATIONS[0][2]:
        conn.execute(sql)
    conn.execute("INSERT INTO schema_version VALUES (1, 'initial schema', 0)")
    conn.execute("INSERT INTO keys VALUES ('k1', 'hot', 2, '[1,2,3]', '112', x'02', x'22', 0, x'00', 0)")
    conn.execute(
        "INSERT INTO requests (request_id, key_id, idempotency_key, body_hash, state, tx, path, created_at, "
        "updated_at) VALUES ('old', 'k1', 'i-old', 'b', 'signed', '{}', '[]', 0, 0)"
    )
    conn.close()
    s = Store(path)
    assert s.schema_version() == st.SCHEMA_VERSION
    old = s.get_request("old")
    assert (old.kind, old.initiator, old.intent, old.expires_at, old.approved_by) == ("withdrawal", "", b"", 0, ())


def test_guarded_transition_names_the_state_it_starts_from(db: Store) -> None:
    _request(db, "r1")
    db.transition("r1", st.PENDING_APPROVAL, expect=(st.SUBMITTED,), policy_reason="approvals_pending")
    with pytest.raises(st.InvalidTransition, match="not submitted"):
        db.transition("r1", st.APPROVED, expect=(st.SUBMITTED,))  # another thread moved it first
    row = db.transition("r1", st.APPROVED, expect=(st.PENDING_APPROVAL,), time_lock_until=99, rule_id="r")
    assert (row.state, row.time_lock_until, row.rule_id, row.policy_reason) == (
        "approved",
        99,
        "r",
        "approvals_pending",
    )


def test_approvals_are_recorded_once_per_officer(db: Store) -> None:
    _request(db, "r1")
    with pytest.raises(st.InvalidTransition):
        db.add_approval("r1", "officer-1", b"a1", 1, 2)  # not pending approval yet
    db.transition("r1", st.PENDING_APPROVAL)
    assert db.add_approval("r1", "officer-1", b"a1", 1, 2)
    assert not db.add_approval("r1", "officer-1", b"a1", 1, 2)  # the same approval again: nothing new
    with pytest.raises(st.DuplicateApproval):
        db.add_approval("r1", "officer-1", b"a1-other", 3, 4)
    db.add_approval("r1", "officer-2", b"a2", 1, 2)
    assert db.get_request("r1").approved_by == ("officer-1", "officer-2")
    assert [a.approval for a in db.approvals("r1")] == [b"a1", b"a2"]
    assert [e.state for e in db.events("r1")] == [
        "submitted",
        "pending_approval",
        "pending_approval",
        "pending_approval",
    ]


def test_governance_state_and_delivery_log(db: Store) -> None:
    assert db.get_governance("policy") is None
    seq = db.put_governance("policy", b"v1", ("policy", b"change-1"))
    assert db.get_governance("policy") == b"v1" and seq == 1
    assert db.put_governance("freeze", b"state") is None
    db.ack_governance(1, 2)
    db.ack_governance(1, 1)
    (entry,) = db.governance_log()
    assert (entry.kind, entry.payload, entry.acked) == ("policy", b"change-1", {1, 2})
    with pytest.raises(st.StoreError):
        db.put_governance("other", b"x")


def test_a_failing_audit_hook_rolls_the_change_back(db: Store) -> None:
    _request(db, "r1")

    def broken(conn: sqlite3.Connection) -> object:
        raise RuntimeError("audit log unavailable")

    with pytest.raises(RuntimeError):
        db.transition("r1", st.SIGNING, audit=broken)
    assert db.get_request("r1").state == st.SUBMITTED and len(db.events("r1")) == 1
    with pytest.raises(RuntimeError):
        db.put_governance("policy", b"v1", ("policy", b"c"), audit=broken)
    assert db.get_governance("policy") is None and db.governance_log() == []
