"""The coordinator config's database (coordinator/config.py, server.open_store): a SQLite file by
default or by `sqlite:PATH`, a PostgreSQL URL for replicas, anything else refused."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest

from coordinator.build import open_store
from coordinator.config import CoordinatorConfig

TLS = {"ca": "ca.pem", "cert": "c.pem", "key": "c.key"}


def _load(tmp_path: Path, **extra: Any) -> CoordinatorConfig:
    path = tmp_path / "coordinator.json"
    path.write_text(json.dumps({"listen": "127.0.0.1:1", "tls": TLS, "signers": {"1": "a:1"}, **extra}))
    return CoordinatorConfig.load(path)


def test_sqlite_is_the_default_and_sqlite_path_names_the_file(tmp_path: Path) -> None:
    assert _load(tmp_path, db="c.db").db == tmp_path / "c.db" and _load(tmp_path, db="c.db").database == ""
    cfg = _load(tmp_path, database="sqlite:data/x.db")
    assert (cfg.db, cfg.database, cfg.replica) == (tmp_path / "data" / "x.db", "", "coordinator")
    store = open_store(cfg)
    assert store.dialect == "sqlite" and store.path == tmp_path / "data" / "x.db"
    store.close()


def test_a_postgresql_url_makes_a_replica_named_by_its_host_unless_named(tmp_path: Path) -> None:
    url = "postgresql://tss@db.internal:5432/custody"
    cfg = _load(tmp_path, database=url, pool_size=4, lease=6)
    assert (cfg.database, cfg.replica, cfg.pool_size, cfg.lease) == (url, socket.gethostname(), 4, 6.0)
    assert cfg.db == tmp_path / "coordinator.db"  # where the audit key lives
    assert _load(tmp_path, database=url, replica="a").replica == "a"


def test_any_other_database_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"coordinator\.json: database: must be sqlite:PATH or a postgresql:// URL"):
        _load(tmp_path, database="mysql://x/y")


def test_an_unreachable_postgresql_refuses_to_start_naming_it_without_the_password(tmp_path: Path) -> None:
    cfg = _load(tmp_path, database=f"postgresql://tss:secret@/custody?host={tmp_path}&connect_timeout=1")
    with pytest.raises(Exception, match=r"cannot connect to PostgreSQL \(postgresql://tss:\*\*\*@/custody") as exc:
        open_store(cfg)
    assert "secret" not in str(exc.value)
