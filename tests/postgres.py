"""A throwaway PostgreSQL server for the tests: `initdb` into a temporary directory, one server per
test session (listening on a unix socket only, no TCP port to collide on), one fresh database per
test, copied from a template the coordinator's migrations ran in once. As root (CI, this machine)
the server runs as the `postgres` user, which Debian's package creates: PostgreSQL refuses to run
as root. `./dev` installs the package when `initdb` is missing.

`fsync=off`: a test server's data need not survive a power cut; every other setting is the default,
READ COMMITTED isolation included, so row locks behave as in production.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

from coordinator.store import Store

USER = "tss"


def find_bin(name: str) -> str | None:
    """A PostgreSQL server binary: on PATH or in Debian's versioned directory."""
    found = shutil.which(name)
    if found:
        return found
    # Debian keeps the server binaries off PATH, one directory per major version: the newest.
    for d in sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda d: int(d.parent.name), reverse=True):
        if os.access(d / name, os.X_OK):
            return str(d / name)
    return None


@dataclass
class PgServer:
    """A running test server."""

    root: Path
    _names: Iterator[int]
    _template: bool = False

    @property
    def socket_dir(self) -> Path:
        return self.root

    def url(self, database: str = "postgres") -> str:
        """A libpq URL to `database` over the unix socket."""
        return f"postgresql://{USER}@/{database}?host={self.socket_dir}"

    def new_database(self) -> str:
        """A fresh database with the coordinator's schema; returns its URL. The schema is migrated
        once, into a template each new database copies (a copy takes a fraction of a migration)."""
        if not self._template:
            with psycopg.connect(self.url(), autocommit=True) as conn:
                conn.execute(b"CREATE DATABASE tss_template")
            Store(self.url("tss_template"), home=self.root).close()
            self._template = True
        name = f"t{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name} TEMPLATE tss_template".encode())
        return self.url(name)


def _as_server_user() -> list[str]:
    if os.geteuid() != 0:
        return []
    for user in ("postgres", "nobody"):
        try:
            pwd.getpwnam(user)
            return ["runuser", "-u", user, "--"]
        except KeyError:
            continue
    raise RuntimeError("running as root and no unprivileged user to run PostgreSQL as")


@contextmanager
def running_server() -> Iterator[PgServer]:
    """Start a server in a new temporary directory; stop it and remove the directory on exit."""
    initdb, pg_ctl = find_bin("initdb"), find_bin("pg_ctl")
    if initdb is None or pg_ctl is None:
        raise FileNotFoundError(
            "PostgreSQL server binaries (initdb, pg_ctl) not found: run ./dev or install postgresql"
        )
    root = Path(tempfile.mkdtemp(prefix="tss-pg-"))
    run_as = _as_server_user()
    if run_as:
        shutil.chown(root, user=run_as[2])
    data = root / "data"
    try:
        _run([*run_as, initdb, "-D", str(data), "-A", "trust", "-U", USER, "--no-sync", "-E", "UTF8"])
        opts = f"-k {root} -c listen_addresses='' -c fsync=off -c synchronous_commit=off -c max_connections=200"
        _run([*run_as, pg_ctl, "-D", str(data), "-o", opts, "-l", str(root / "log"), "-w", "start"])
        try:
            yield PgServer(root, itertools.count(1))
        finally:
            subprocess.run([*run_as, pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"], capture_output=True)  # noqa: S603 - our own argv
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _run(cmd: list[str]) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True)  # noqa: S603 - our own argv
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {done.stderr.strip()}")
