"""The presignature pool: reservation order, single use, concurrency, voiding old epochs."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from coordinator import store as st
from coordinator.store import Store

from .support import SIGNERS, make_request, presigs


def test_reserve_takes_oldest_matching_and_records_request(db: Store) -> None:
    presigs(db, 1, signers=(1, 3))
    presigs(db, 1, path=(7,))
    presigs(db, 1, epoch=1)
    ids = presigs(db, 2)
    make_request(db, "r1")
    got = db.reserve_presignature("k1", [SIGNERS], (), 0, "r1")
    assert got is not None and got.presignature_id == ids[0]
    assert got.state == st.RESERVED and got.request_id == "r1" and got.signers == SIGNERS
    assert db.count_ready("k1", SIGNERS, (), 0) == 1


def test_reserve_prefers_earlier_signer_sets(db: Store) -> None:
    (later,) = presigs(db, 1, signers=(2, 3))
    (first,) = presigs(db, 1, signers=(1, 3))
    make_request(db, "r1")
    got = db.reserve_presignature("k1", [(1, 2), (1, 3), (2, 3)], (), 0, "r1")
    assert got is not None and got.presignature_id == first
    assert db.get_presignature(later).state == st.READY


def test_reserve_returns_none_when_empty(db: Store) -> None:
    make_request(db, "r1")
    assert db.reserve_presignature("k1", [SIGNERS], (), 0, "r1") is None


def test_reserved_presignature_is_never_handed_out_again(db: Store) -> None:
    (pid,) = presigs(db, 1)
    make_request(db, "r1")
    make_request(db, "r2")
    assert db.reserve_presignature("k1", [SIGNERS], (), 0, "r1") is not None
    db.finish_presignature(pid, st.PRESIG_FAILED)
    assert db.reserve_presignature("k1", [SIGNERS], (), 0, "r2") is None
    with pytest.raises(st.InvalidTransition):
        db.finish_presignature(pid, st.CONSUMED)
    with pytest.raises(st.InvalidTransition):
        db.finish_presignature(pid, st.READY)


def test_concurrent_reservations_never_share_a_presignature(tmp_path: Path, db: Store) -> None:
    ids = presigs(db, 40)
    requests = [f"r{i}" for i in range(8)]
    for r in requests:
        make_request(db, r)
    got: dict[str, list[bytes]] = {r: [] for r in requests}
    start = threading.Barrier(len(requests))

    def worker(request_id: str, own: bool) -> None:
        s = Store(db.target) if own else db  # half share the Store (thread-local connections), half open their own
        start.wait()
        while (p := s.reserve_presignature("k1", [SIGNERS], (), 0, request_id)) is not None:
            got[request_id].append(p.presignature_id)

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
    old = presigs(db, 2, epoch=0)
    new = presigs(db, 1, epoch=1)
    assert db.void_presignatures("k1", keep_epoch=1) == 2
    assert {db.get_presignature(p).state for p in old} == {st.PRESIG_FAILED}
    assert db.get_presignature(new[0]).state == st.READY
