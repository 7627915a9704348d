"""ListRequests pages: a cursor in the store (no row lost or repeated, even with equal creation
times) and a byte budget per page, so large rows never make a listing fail."""

from __future__ import annotations

import secrets
from pathlib import Path

import coincurve
import pytest

from coordinator.request_encoding import tx_to_json
from coordinator.store import KeyRecord, PageCursor, Store
from coordinator.views import key_page, list_page
from signer.chains.ethereum import Eip1559Tx

TO = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"


@pytest.fixture
def db(tmp_path: Path) -> Store:
    s = Store(tmp_path / "coordinator.db")
    s.add_key(KeyRecord("k1", "hot", 2, (1, 2, 3), "112", b"\x02" + b"\x11" * 32, b"\x22" * 32, 0, b"aux", s.now()))
    return s


def _add(db: Store, n: int, data: bytes = b"") -> None:
    for i in range(n):
        db.create_request(
            request_id=f"r{i:03d}",
            key_id="k1",
            idempotency_key=f"i{i}",
            body_hash=f"b{i}",
            tx=tx_to_json(Eip1559Tx(1, i, 1, 2, 21000, TO, 1, data)),
            path=(),
        )


def _walk(db: Store, size: int, budget: int) -> list[list[str]]:
    pages: list[list[str]] = []
    after = None
    while True:
        page = list_page(db.list_requests(limit=size + 1, after=after), size, budget)
        pages.append([r.request_id for r in page.requests])
        if not page.next_page_token:
            return pages
        after = PageCursor.parse(page.next_page_token)


def test_pages_cover_every_request_once_newest_first(db: Store) -> None:
    _add(db, 7)
    pages = _walk(db, 3, 1 << 20)
    assert [len(p) for p in pages] == [3, 3, 1]
    flat = [r for p in pages for r in p]
    assert flat == [r.request_id for r in db.list_requests(limit=100)] and len(set(flat)) == 7


def test_a_page_ends_before_its_byte_budget(db: Store) -> None:
    _add(db, 6, data=b"\xab" * 4000)
    pages = _walk(db, 100, 10_000)  # about two 4 KB rows fit
    assert all(1 <= len(p) <= 2 for p in pages) and sum(len(p) for p in pages) == 6


def test_a_row_larger_than_the_budget_still_comes_alone(db: Store) -> None:
    _add(db, 2, data=b"\xab" * 4000)
    pages = _walk(db, 100, 100)
    assert [len(p) for p in pages] == [1, 1] and sorted(pages[0] + pages[1]) == ["r000", "r001"]


@pytest.mark.parametrize("token", ["", "x", "1.0", "nan/r1", "inf/r1", "abc/r1", "1.5/"])
def test_foreign_page_tokens_are_refused(token: str) -> None:
    with pytest.raises(ValueError):
        PageCursor.parse(token)


def test_key_pages_cover_every_key_once_oldest_first(tmp_path: Path) -> None:
    db = Store(tmp_path / "keys.db")
    point = coincurve.PrivateKey(secrets.token_bytes(32)).public_key.format()
    ids = [f"key-{i:02d}" for i in range(6)]
    for i, key_id in enumerate(reversed(ids)):  # the last five at one instant: the id orders them
        db.add_key(KeyRecord(key_id, "hot", 2, (1, 2, 3), "112", point, b"\x22" * 32, 0, b"aux", 100.0 + (i == 5)))
    expected = sorted((k.created_at, k.key_id) for k in db.list_keys())
    seen: list[list[str]] = []
    after = None
    while True:
        page = key_page(db.list_keys(limit=3, after=after), 2, lambda _key: 0)
        seen.append([k.key_id for k in page.keys])
        if not page.next_page_token:
            break
        after = PageCursor.parse(page.next_page_token)
    assert [len(p) for p in seen] == [2, 2, 2] and [k for p in seen for k in p] == [k for _, k in expected]
    assert [k for p in seen for k in p][-1] == "key-00"  # created last
    assert all(k.create_time.seconds >= 100 for k in key_page(db.list_keys(), 10, lambda _key: 0).keys)
