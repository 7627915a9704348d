"""The `db` fixture: a fresh store holding one key, `k1`, on each backend (SQLite, PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from coordinator.store import KeyRecord, Store


def add_key(s: Store) -> Store:
    s.add_key(KeyRecord("k1", "hot", 2, (1, 2, 3), "112", b"\x02" + b"\x11" * 32, b"\x22" * 32, 0, b"aux", s.now()))
    return s


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    target = tmp_path / "coordinator.db" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    s = add_key(Store(target, home=tmp_path))
    yield s
    s.close()
