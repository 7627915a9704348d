"""Watching a running local cluster from a test: its database (read-only), its logs, polling.

Crash tests time a kill by what the coordinator has recorded (a running session, a request's
events), never by sleeping; and they check afterwards, from the signers' own logs, that no nonce
signed twice.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Generic, TypeVar

from coordinator import cluster

T = TypeVar("T")


def until(what: Callable[[], Any], timeout: float = 30.0, poll: float = 0.02, text: str = "") -> Any:
    """Poll `what` until it returns something truthy (returned); fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        got = what()
        if got:
            return got
        assert time.monotonic() < deadline, f"timed out after {timeout:.0f}s waiting for {text or what}"
        time.sleep(poll)


def query(root: Path, sql: str, *args: object) -> list[tuple[Any, ...]]:
    """Rows from the coordinator's database (read-only; the coordinator may be running or dead)."""
    db = root / "coordinator" / "coordinator.db"
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return [tuple(r) for r in conn.execute(sql, args)]
    finally:
        conn.close()


def running_sessions(root: Path, protocol: str, party: int, key_id: str) -> list[str]:
    """Ids of the key's sessions of `protocol` with `party` among its parties, still running."""
    rows = query(
        root,
        "SELECT session_id, parties FROM sessions WHERE state = 'running' AND protocol = ? AND key_id = ?",
        protocol,
        key_id,
    )
    return [sid for sid, parties in rows if party in json.loads(parties)]


def any_running_session(root: Path) -> bool:
    """A protocol session (the pool's refill included) is running now."""
    return bool(query(root, "SELECT 1 FROM sessions WHERE state = 'running' LIMIT 1"))


def request_state(root: Path, request_id: str) -> str:
    """The request's state as recorded ("" if no row yet)."""
    rows = query(root, "SELECT state FROM requests WHERE request_id = ?", request_id)
    return str(rows[0][0]) if rows else ""


def request_id(root: Path, idempotency_key: str) -> str:
    """The id of the request submitted under `idempotency_key` ("" if none yet)."""
    rows = query(root, "SELECT request_id FROM requests WHERE idempotency_key = ?", idempotency_key)
    return str(rows[0][0]) if rows else ""


def signers_of_attempt(detail: str) -> tuple[int, ...]:
    """The set an attempt event names: "attempt 2: signers [1, 2] (after: ...)" -> (1, 2)."""
    listed = detail.split("signers [", 1)[1].split("]", 1)[0]
    return tuple(int(x) for x in listed.split(","))


def events(root: Path, request_id: str) -> list[tuple[str, str]]:
    """The request's recorded transitions: (state, detail), in order."""
    return [
        (str(s), str(d))
        for s, d in query(
            root, "SELECT state, detail FROM request_events WHERE request_id = ? ORDER BY seq", request_id
        )
    ]


def signers_of(root: Path, request_id: str) -> tuple[int, ...]:
    """The signer set whose presignature signed (or was last reserved for) the request."""
    rows = query(
        root,
        "SELECT p.signers FROM requests r JOIN presignatures p ON p.presig_id = r.presig_id WHERE r.request_id = ?",
        request_id,
    )
    return tuple(json.loads(rows[0][0])) if rows else ()


def releases(root: Path) -> list[dict[str, Any]]:
    """Every partial signature the signers released (`release_authorized` lines of their logs)."""
    out = []
    for path in sorted((root / "logs").glob("signer-*.log")):
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("{") and '"release_authorized"' in line:
                out.append(json.loads(line))
    return out


def assert_no_nonce_reuse(root: Path, signed_rs: Iterable[bytes]) -> None:
    """No two signatures share r, and no signer ever released two partial signatures under one
    nonce (r), whether or not the coordinator combined them."""
    rs = [bytes(r) for r in signed_rs]
    assert len(set(rs)) == len(rs), "two signed requests share r: the key would follow"
    by_r: dict[str, set[tuple[int, str]]] = {}
    for rel in releases(root):
        by_r.setdefault(rel["r"], set()).add((rel["party"], rel["presignature_id"]))
    released = [rel for rel in releases(root)]
    pairs = [(rel["party"], rel["r"]) for rel in released]
    assert len(set(pairs)) == len(pairs), "a signer released two partial signatures under one nonce"
    assert all(len({pid for _, pid in v}) == 1 for v in by_r.values()), "one r under two presignatures"
    assert {r.hex() for r in rs} <= set(by_r), "a signed r that no signer's log shows released"


def pid(root: Path, name: str) -> int:
    """The pid of a cluster process as cluster.json records it."""
    return cluster.ClusterInfo.load(root).pids[name]


class InFlight(Generic[T]):
    """A call made from a thread, so the test can act while the cluster works on it."""

    def __init__(self, call: Callable[[], T]) -> None:
        self.result: T | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(call,), daemon=True)
        self._thread.start()

    def _run(self, call: Callable[[], T]) -> None:
        try:
            self.result = call()
        except BaseException as exc:  # handed to the test by `done`
            self.error = exc

    def finished(self) -> bool:
        """The call returned or raised."""
        return not self._thread.is_alive()

    def done(self, timeout: float = 120.0) -> T:
        """The call's result (its exception re-raised)."""
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the call never returned"
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result


class Throttle:
    """Processes run 20 ms in every 100 (SIGSTOP/SIGCONT): a call they serve takes long enough for
    the test to act while it is in flight, and a health probe (1 s deadline) still passes.
    `hold` leaves them stopped, `release` lets them run freely."""

    def __init__(self, pids: Iterable[int]) -> None:
        self.pids = list(pids)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _signal(self, sig: signal.Signals) -> None:
        for p in self.pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, sig)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._signal(signal.SIGSTOP)
            if self._stop.wait(0.08):
                return
            self._signal(signal.SIGCONT)
            self._stop.wait(0.02)

    def hold(self) -> None:
        """End the throttling with every process stopped."""
        self._stop.set()
        self._thread.join()
        self._signal(signal.SIGSTOP)

    def release(self) -> None:
        """End the throttling with every process running."""
        self._stop.set()
        self._thread.join()
        self._signal(signal.SIGCONT)
