"""Watch: every transition of a request, in order, until it is final.

The lifecycle notifies a request's condition variable on each move; a watcher re-reads the
request's events from the store, so transitions made by another coordinator process sharing the
database show up too (at the latest after one `poll`).
"""

from __future__ import annotations

import dataclasses
import functools
import threading
import time
from collections.abc import Iterator

from .store import RequestRecord, Store


class _Watch:
    """A condition variable and a version counter for one request."""

    __slots__ = ("cond", "version")

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.version = 0

    def changed_since(self, version: int) -> bool:
        """True once a transition was notified after `version` (call with `cond` held)."""
        return self.version != version


class Watches:
    """One condition variable per watched request; `notify` wakes its watchers."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._watches: dict[str, _Watch] = {}
        self._lock = threading.Lock()

    def _watch(self, request_id: str) -> _Watch:
        with self._lock:
            w = self._watches.get(request_id)
            if w is None:
                w = self._watches[request_id] = _Watch()
            return w

    def notify(self, request_id: str, final: bool = False) -> None:
        """A request moved: wake its watchers (and forget it once final)."""
        w = self._watch(request_id)
        with w.cond:
            w.version += 1
            w.cond.notify_all()
        if final:
            with self._lock:
                self._watches.pop(request_id, None)

    def events(self, request_id: str, timeout: float | None, poll: float) -> Iterator[RequestRecord]:
        """Yield the request once per recorded transition until it is final (see `CoordinatorService.watch`).
        Earlier transitions are replayed with their own state and without later results."""
        deadline = None if timeout is None else time.monotonic() + timeout
        seq = 0
        while True:
            w = self._watch(request_id)
            with w.cond:
                version = w.version
            events = self.store.events(request_id, after_seq=seq)
            if events:
                current = self.store.get_request(request_id)
                for ev in events:
                    seq = ev.seq
                    if ev is events[-1] and ev.state == current.state:
                        yield current
                    else:
                        yield dataclasses.replace(
                            current, state=ev.state, r=b"", s=b"", v=None, raw_tx=b"", tx_hash=b""
                        )
                if current.final and events[-1].state == current.state:
                    return
                continue
            wait = poll if deadline is None else min(poll, deadline - time.monotonic())
            if wait <= 0:
                return
            with w.cond:
                w.cond.wait_for(functools.partial(w.changed_since, version), timeout=wait)
