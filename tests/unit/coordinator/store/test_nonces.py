"""The nonce allocator (store/nonces.py) on SQLite and PostgreSQL: two replicas on one database
never hand out one nonce, and a crash between the allocation and the commit loses nothing."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from coordinator.store import NonceInUse, NotFound, Store

from .conftest import add_key

ADDRESS = "0x00000000000000000000000000000000000A11CE"


def _submit(s: Store, request_id: str, nonce: int | None, replaces: str = "", value: int = 1) -> int:
    """What `Lifecycle.submit` does: take a nonce and create its request in one transaction."""
    body = None if nonce is None else {"chain_id": 1, "nonce": nonce, "value": value}
    with s.batch():
        taken = s.take_nonce(1, ADDRESS, nonce, replaces=replaces, tx=body)
        s.create_request(
            request_id=request_id,
            key_id="k1",
            idempotency_key=request_id,
            body_hash=request_id,
            tx={"chain_id": 1, "nonce": taken, "value": value},
            path=(),
            from_address=ADDRESS,
            nonce_allocated=nonce is None,
            replaces=replaces,
        )
    return taken


def test_two_replicas_allocate_distinct_consecutive_nonces(db: Store, tmp_path: Path) -> None:
    other = Store(db.target, home=tmp_path, replica="replica-b")  # a second coordinator on the same database
    got: list[int] = []
    lock = threading.Lock()

    def run(s: Store, name: str) -> None:
        for i in range(6):
            n = _submit(s, f"{name}-{i}", None)
            with lock:
                got.append(n)

    threads = [threading.Thread(target=run, args=(s, f"{s.replica}-{t}")) for s in (db, other) for t in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    other.close()
    assert sorted(got) == list(range(24))
    assert db.next_nonce(1, ADDRESS) == 24 and db.next_nonce(5, ADDRESS) is None


class Killed(Exception):
    """The process dies here."""


def test_a_crash_between_allocation_and_commit_loses_nothing(db: Store) -> None:
    assert _submit(db, "r0", None) == 0
    with pytest.raises(Killed), db.batch():
        assert db.take_nonce(1, ADDRESS, None) == 1
        raise Killed  # before the request row commits
    with pytest.raises(NotFound):
        db.get_request("r1")
    assert db.next_nonce(1, ADDRESS) == 1  # nothing was taken: the next request gets 1, no gap
    assert _submit(db, "r1", None) == 1
    assert db.get_request("r1").nonce_allocated


def test_supplied_nonces_collide_only_with_live_holders(db: Store) -> None:
    assert _submit(db, "r7", 7) == 7
    assert _submit(db, "next", None) == 8  # the counter starts after the highest nonce taken
    with pytest.raises(NonceInUse):
        _submit(db, "again-7", 7, value=2)  # another transaction with nonce 7
    assert _submit(db, "same-7", 7) == 7  # the very same transaction again (a resubmit) is no second one
    db.transition("same-7", "pending_approval")
    db.transition("same-7", "expired")
    db.transition("r7", "pending_approval")
    db.transition("r7", "rejected")  # never reached the signers: nonce 7 is a gap now
    assert _submit(db, "fill-7", 7) == 7
    assert _submit(db, "speed-up-7", 7, replaces="fill-7", value=3) == 7  # a replacement names the live holder
    with pytest.raises(NotFound):
        _submit(db, "speed-up-bad", 7, replaces="r7")  # r7 holds nothing
    assert db.next_nonce(1, ADDRESS) == 9


def test_a_new_address_starts_after_the_nonces_its_requests_carry(tmp_path: Path) -> None:
    s = add_key(Store(tmp_path / "c.db", home=tmp_path))
    s.create_request(
        request_id="old",
        key_id="k1",
        idempotency_key="old",
        body_hash="b",
        tx={"chain_id": 1, "nonce": 41},
        path=(),
        from_address=ADDRESS,
    )  # a request stored before the allocator's first use of the address
    assert _submit(s, "new", None) == 42
    s.close()
