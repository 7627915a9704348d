"""`Store.batch`: a step's writes commit as one transaction or not at all, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading

import pytest

from coordinator import store as st
from coordinator.store import Store

from .support import make_request, presigs


class Crash(BaseException):
    """The process died inside the batch."""


def _claim(db: Store, request_id: str, presig: bytes) -> None:
    """What the lifecycle's claim step writes: approve, claim, reserve, record the attempt."""
    db.transition(request_id, st.APPROVED, expect=(st.SUBMITTED,))
    db.transition(request_id, st.SIGNING, expect=(st.APPROVED,))
    got = db.reserve_presignature("k1", [(1, 2)], (), 0, request_id)
    assert got is not None and got.presignature_id == presig
    db.transition(request_id, st.SIGNING, expect=(st.SIGNING,), presignature_id=presig)


def test_the_writes_of_a_batch_commit_together(db: Store) -> None:
    make_request(db, "r1")
    (pid,) = presigs(db, 1)
    with db.batch():
        _claim(db, "r1", pid)
        assert db.get_request("r1").state == st.SIGNING  # reads inside see the batch's own writes
    row = db.get_request("r1")
    assert row.state == st.SIGNING and row.presignature_id == pid
    assert [e.state for e in db.events("r1")] == [st.SUBMITTED, st.APPROVED, st.SIGNING, st.SIGNING]
    assert db.get_presignature(pid).state == st.RESERVED


def test_a_crash_inside_a_batch_undoes_every_write_of_it(db: Store) -> None:
    make_request(db, "r1")
    (pid,) = presigs(db, 1)
    with pytest.raises(Crash), db.batch():
        _claim(db, "r1", pid)
        raise Crash
    assert db.get_request("r1").state == st.SUBMITTED
    assert [e.state for e in db.events("r1")] == [st.SUBMITTED]
    assert db.get_presignature(pid).state == st.READY


def test_a_write_that_fails_inside_a_batch_undoes_only_itself(db: Store) -> None:
    make_request(db, "r1")
    with db.batch():
        db.transition("r1", st.APPROVED, expect=(st.SUBMITTED,))
        with pytest.raises(st.InvalidTransition):
            db.transition("r1", st.SIGNED, expect=(st.SUBMITTED,))
        db.transition("r1", st.SIGNING, expect=(st.APPROVED,))
    assert [e.state for e in db.events("r1")] == [st.SUBMITTED, st.APPROVED, st.SIGNING]


def test_another_thread_does_not_see_a_batch_before_its_commit(db: Store) -> None:
    make_request(db, "r1")
    seen: list[str] = []
    inside, read = threading.Event(), threading.Event()

    def reader() -> None:
        inside.wait(10)
        seen.append(db.get_request("r1").state)
        read.set()

    t = threading.Thread(target=reader)
    t.start()
    with db.batch():
        db.transition("r1", st.APPROVED, expect=(st.SUBMITTED,))
        inside.set()
        assert read.wait(10)
    t.join()
    assert seen == [st.SUBMITTED]
    assert db.get_request("r1").state == st.APPROVED
