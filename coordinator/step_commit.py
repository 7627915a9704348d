"""One commit per step of a request's life: the moves a step makes, and their watchers' wake-ups.

`StepCommit()` opens a `Store.batch` for the calling thread: every move (and store write) inside
commits as one transaction or none does. Watchers of the requests moved are woken after the
transaction ends (a wake-up before the commit could be lost: the watcher would re-read the old
state and wait again); after a rollback too, where a spurious wake-up only makes it re-read.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from .store import Store


class StepCommit:
    """Groups a step's moves into one store transaction; `wake` defers watcher wake-ups to its end."""

    def __init__(self, store: Store, notify: Callable[[str, bool], None]) -> None:
        self._store = store
        self._notify = notify
        self._local = threading.local()  # `wake`: the open step's (request id, final) wake-ups

    @contextmanager
    def __call__(self) -> Iterator[None]:
        """One transaction for the block (nested steps join the enclosing one)."""
        if getattr(self._local, "wake", None) is not None:
            yield
            return
        self._local.wake, self._local.committed = [], []
        try:
            with self._store.batch():
                yield
            committed = self._local.committed
        except BaseException:
            committed = []  # rolled back: nothing it would describe happened
            raise
        finally:
            wake, self._local.wake, self._local.committed = self._local.wake, None, None
            for request_id, final in wake:
                self._notify(request_id, final)
        for run in committed:
            run()

    def wake(self, request_id: str, final: bool) -> None:
        """Wake a request's watchers: now, or when the open step ends."""
        pending: list[tuple[str, bool]] | None = getattr(self._local, "wake", None)
        if pending is None:
            self._notify(request_id, final)
        else:
            pending.append((request_id, final))

    def after_commit(self, run: Callable[[], None]) -> None:
        """Run `run` now, or when the open step commits (never if it rolls back)."""
        pending: list[Callable[[], None]] | None = getattr(self._local, "committed", None)
        if pending is None:
            run()
        else:
            pending.append(run)
