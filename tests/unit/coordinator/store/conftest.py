"""The `db` fixture: a fresh store holding one key, `k1`."""

from __future__ import annotations

from pathlib import Path

import pytest

from coordinator.store import KeyRecord, Store


@pytest.fixture
def db(tmp_path: Path) -> Store:
    s = Store(tmp_path / "coordinator.db")
    s.add_key(KeyRecord("k1", "hot", 2, (1, 2, 3), "112", b"\x02" + b"\x11" * 32, b"\x22" * 32, 0, b"aux", s.now()))
    return s
