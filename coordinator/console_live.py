"""Live updates for the officer console: the coordinator's Watch streams, fanned out as events.

For each open request the page shows, the console follows the coordinator's `Watch` stream (at
most `max_watches` at once). Watch is only the trigger: on each transition the console reads the
request again and builds its card exactly as the list does (`Console.request_view`: intent rebuilt
from the body, checked), so a streamed card is never less checked than a polled one. Cards are
pushed to every open page stream as server-sent events; console_http.py serves them. A watch that
ends (the request is final, the deadline passed) or fails leaves the request to the page's poll
of the list, which starts a new watch for it if it is still open (failed ones after a pause).
"""

from __future__ import annotations

import json
import queue
import sys
import threading
import time
from collections.abc import Iterable
from typing import Any

import grpc
from tsscustody.v1 import coordinator_pb2

from .console import OPEN, Console

MAX_WATCHES = 16
"""Watch streams held open at once; further open requests are only polled."""
MAX_SUBSCRIBERS = 8
"""Page streams at once (a page holds one; a reload opens a new one)."""
WATCH_DEADLINE = 3600.0
"""A watch ends after this long; the next list poll starts a new one if the request is still open."""
RETRY_AFTER = 10.0
"""A failed watch of a request is not restarted sooner (the poll covers it meanwhile)."""
QUEUE_SIZE = 256
"""Events a page stream may fall behind by before it is closed (the page reconnects and reloads)."""


def sse_event(event: str, data: dict[str, Any], event_id: int | None = None) -> bytes:
    """One `text/event-stream` event: `event:`, an optional `id:`, and the JSON on `data:` lines.

    The event name and id must be one line each (they come from this module, never from the
    coordinator); the JSON is split at its line breaks, each part on its own `data:` line, which
    a reader joins back with newlines, so no value can end the event early or forge another."""
    if not event or any(c in event for c in "\r\n:"):
        raise ValueError("an event name is one word")
    lines = [f"event: {event}"]
    if event_id is not None:
        lines.append(f"id: {int(event_id)}")
    text = json.dumps(data, separators=(",", ":"))
    lines += [f"data: {part}" for part in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    return ("\n".join(lines) + "\n\n").encode()


def sse_comment(text: str) -> bytes:
    """A comment line (readers ignore it): keeps an idle stream open through proxies and timeouts."""
    return f": {' '.join(text.splitlines())}\n\n".encode()


class Subscriber:
    """One page stream's queue of encoded events; `None` in it means "close"."""

    def __init__(self) -> None:
        self.events: queue.Queue[bytes | None] = queue.Queue(QUEUE_SIZE)
        self.closed = False

    def put(self, item: bytes | None) -> None:
        """Queue an event; a stream too far behind is closed instead (its page reloads)."""
        try:
            self.events.put_nowait(item)
        except queue.Full:
            self.closed = True


class LiveUpdates:
    """The console's Watch threads and the page streams they feed; `stop` ends them all."""

    def __init__(self, console: Console, max_watches: int = MAX_WATCHES) -> None:
        self.console = console
        self.max_watches = max_watches
        self._lock = threading.Lock()
        self._calls: dict[str, Any] = {}  # request id -> its Watch call (cancel() ends it)
        self._threads: dict[str, threading.Thread] = {}
        self._failed: dict[str, float] = {}  # request id -> when its watch failed
        self._last: dict[str, str] = {}  # request id -> the last card pushed (no repeats)
        self._subscribers: list[Subscriber] = []
        self._seq = 0
        self._stopping = threading.Event()

    # --- watches ----------------------------------------------------------------------------------
    def follow(self, state: dict[str, Any]) -> None:
        """Watch the open requests of a list the page was just sent (up to the bound)."""
        self.follow_ids(v["request_id"] for v in state.get("requests", []) if v.get("state") in OPEN)

    def follow_ids(self, request_ids: Iterable[str]) -> None:
        """Start a Watch thread for each request not yet watched, while fewer than `max_watches` run."""
        now = time.monotonic()
        with self._lock:
            for rid in request_ids:
                if self._stopping.is_set() or len(self._threads) >= self.max_watches:
                    return
                if rid in self._threads or now - self._failed.get(rid, -RETRY_AFTER) < RETRY_AFTER:
                    continue
                t = threading.Thread(target=self._watch, args=(rid,), name=f"console-watch-{rid[:16]}", daemon=True)
                self._threads[rid] = t
                t.start()

    @property
    def watching(self) -> list[str]:
        """The request ids watched now."""
        with self._lock:
            return sorted(self._threads)

    def _watch(self, request_id: str) -> None:
        failed = False
        try:
            call = self.console.client.stub.Watch(
                coordinator_pb2.GetRequestRequest(request_id=request_id), timeout=WATCH_DEADLINE
            )
            with self._lock:
                self._calls[request_id] = call
            if self._stopping.is_set():
                call.cancel()
            for _ in call:  # each transition: read the request again and push its checked card
                if self._stopping.is_set():
                    break
                self.push_request(request_id)
        except grpc.RpcError as exc:
            failed = exc.code() not in (grpc.StatusCode.CANCELLED, grpc.StatusCode.DEADLINE_EXCEEDED)
        except Exception as exc:  # our bug or a card that fails to build: the poll covers it
            failed = True
            self._report(request_id, exc)
        finally:
            with self._lock:
                self._calls.pop(request_id, None)
                self._threads.pop(request_id, None)
                if failed:
                    self._failed[request_id] = time.monotonic()
            self._publish("watch_ended", {"request_id": request_id, "failed": failed})

    def push_request(self, request_id: str) -> None:
        """Build the request's card now and push it to every page stream unless unchanged."""
        view = self.console.request_view(request_id)
        text = json.dumps(view, sort_keys=True)
        with self._lock:
            if self._last.get(request_id) == text:
                return
            self._last[request_id] = text
        self._publish("request", view)

    @staticmethod
    def _report(request_id: str, exc: Exception) -> None:
        print(f"tssctl: console: watch of {request_id} ended: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)

    # --- page streams -----------------------------------------------------------------------------
    def subscribe(self) -> Subscriber | None:
        """A new page stream, or None when `MAX_SUBSCRIBERS` are open or the console is stopping."""
        with self._lock:
            if self._stopping.is_set() or len(self._subscribers) >= MAX_SUBSCRIBERS:
                return None
            sub = Subscriber()
            self._subscribers.append(sub)
            return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        """Forget a page stream (its connection ended)."""
        with self._lock:
            if sub in self._subscribers:
                self._subscribers.remove(sub)

    def _publish(self, event: str, data: dict[str, Any]) -> None:
        with self._lock:
            self._seq += 1
            encoded = sse_event(event, data, self._seq)
            subscribers = list(self._subscribers)
        for sub in subscribers:
            sub.put(encoded)

    @property
    def stopping(self) -> bool:
        """True once `stop` was called."""
        return self._stopping.is_set()

    def stop(self, timeout: float = 10.0) -> None:
        """Cancel every watch, close every page stream, and join the watch threads."""
        self._stopping.set()
        with self._lock:
            calls = list(self._calls.values())
            threads = list(self._threads.values())
            subscribers = list(self._subscribers)
        for call in calls:
            call.cancel()
        for sub in subscribers:
            sub.put(None)
        deadline = time.monotonic() + timeout
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
