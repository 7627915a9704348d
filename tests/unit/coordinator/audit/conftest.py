"""Fixtures: a database path and a log of ten user entries with checkpoints every four."""

from __future__ import annotations

from pathlib import Path

import pytest

from coordinator import audit
from coordinator.audit import AuditLog

from .support import KEY, USER_ENTRIES, Clock


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "coordinator.db"


@pytest.fixture
def log(db_path: Path) -> AuditLog:
    lg = AuditLog(db_path, KEY, clock=Clock(), checkpoint_every=4)
    for i in range(USER_ENTRIES):
        lg.append(audit.REQUEST, f"req-{i}", "backend-1", [i, f"state-{i}", bytes([i]) * 4], {"n": i})
    return lg
