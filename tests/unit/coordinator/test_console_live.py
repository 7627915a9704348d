"""The officer console's live updates (coordinator/console_live.py) without a cluster: the
event-stream encoding a page parses, and the fan-out to page streams (bounded, no repeats, closed
on stop)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from coordinator.console_live import MAX_SUBSCRIBERS, QUEUE_SIZE, LiveUpdates, Subscriber, sse_comment, sse_event


def parse(raw: bytes) -> list[tuple[str, str, Any]]:
    """Events as a page's reader sees them (console.js `dispatch`): (event, id, JSON of the data)."""
    text = raw.decode()
    assert text.endswith("\n\n")
    out = []
    for block in text[:-2].split("\n\n"):
        event, event_id, data = "message", "", []
        for line in block.split("\n"):
            if line.startswith(":"):
                continue
            name, _, value = line.partition(": ")
            if name == "event":
                event = value
            elif name == "id":
                event_id = value
            elif name == "data":
                data.append(value)
            else:
                raise AssertionError(f"unexpected line {line!r}")
        if data:
            out.append((event, event_id, json.loads("\n".join(data))))
    return out


def test_an_event_is_one_block_with_its_name_id_and_json() -> None:
    raw = sse_event("request", {"request_id": "r-1", "approved_by": ["officer-1"]}, 7)
    assert raw == b'event: request\nid: 7\ndata: {"request_id":"r-1","approved_by":["officer-1"]}\n\n'
    assert parse(raw) == [("request", "7", {"request_id": "r-1", "approved_by": ["officer-1"]})]


@pytest.mark.parametrize("hostile", ["a\n\nevent: freeze\ndata: {}", "x\r\ny", "\r\r", "line\u2028sep", "</script>"])
def test_a_value_from_the_coordinator_cannot_end_the_event_or_forge_another(hostile: str) -> None:
    raw = sse_event("request", {"policy_reason": hostile})
    assert raw.count(b"\n\n") == 1 and raw.endswith(b"\n\n")
    assert parse(raw) == [("request", "", {"policy_reason": hostile})]


@pytest.mark.parametrize("bad", ["", "two\nlines", "a:b", "x\r"])
def test_an_event_name_is_one_word(bad: str) -> None:
    with pytest.raises(ValueError):
        sse_event(bad, {})


def test_a_comment_is_one_line_a_reader_ignores() -> None:
    raw = sse_comment("idle\n\nevent: request")
    assert (
        raw.startswith(b": ")
        and raw.count(b"\n") == 2
        and parse(raw + sse_event("x", {"a": 1})) == [("x", "", {"a": 1})]
    )


class Cards:
    """A console whose request cards are given by the test (request_view is all LiveUpdates reads)."""

    def __init__(self) -> None:
        self.cards: dict[str, dict[str, Any]] = {}

    def request_view(self, request_id: str) -> dict[str, Any]:
        return self.cards[request_id]


def test_cards_go_to_every_page_stream_once_each_change() -> None:
    cards = Cards()
    live = LiveUpdates(cards)  # type: ignore[arg-type]
    a, b = live.subscribe(), live.subscribe()
    assert a is not None and b is not None
    cards.cards["r-1"] = {"request_id": "r-1", "approved_by": []}
    live.push_request("r-1")
    live.push_request("r-1")  # unchanged: not pushed again
    cards.cards["r-1"] = {"request_id": "r-1", "approved_by": ["officer-2"]}
    live.push_request("r-1")
    for sub in (a, b):
        got = [parse(sub.events.get_nowait() or b"") for _ in range(sub.events.qsize())]
        assert [e[0][2]["approved_by"] for e in got] == [[], ["officer-2"]]
    live.unsubscribe(b)
    cards.cards["r-1"] = {"request_id": "r-1", "approved_by": ["officer-2", "officer-3"]}
    live.push_request("r-1")
    assert a.events.qsize() == 1 and b.events.qsize() == 0


def test_page_streams_are_bounded_and_closed_on_stop() -> None:
    live = LiveUpdates(Cards())  # type: ignore[arg-type]
    subs = [live.subscribe() for _ in range(MAX_SUBSCRIBERS)]
    assert all(subs) and live.subscribe() is None
    live.stop()
    for sub in subs:
        assert sub is not None and sub.events.get_nowait() is None  # the stream's loop ends on None
    assert live.stopping and live.subscribe() is None
    live.follow_ids(["r-1"])  # no watch starts once stopping
    assert live.watching == []


def test_a_stream_that_falls_behind_is_closed_not_grown() -> None:
    sub = Subscriber()
    for _ in range(QUEUE_SIZE + 1):
        sub.put(b"x")
    assert sub.closed and sub.events.qsize() == QUEUE_SIZE


class Unavailable(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE) -> None:
        self._code = code

    def code(self) -> grpc.StatusCode:
        return self._code


class Call:
    """A Watch call: yields `updates` transitions, then blocks until cancelled (or fails with `error`)."""

    def __init__(self, updates: int, error: grpc.RpcError | None = None) -> None:
        self.updates, self.error = updates, error
        self.cancelled = threading.Event()

    def __iter__(self) -> Iterator[object]:
        for _ in range(self.updates):
            yield object()
        if self.error is not None:
            raise self.error
        self.cancelled.wait(30)
        raise Unavailable(grpc.StatusCode.CANCELLED)

    def cancel(self) -> None:
        self.cancelled.set()


class Stub:
    def __init__(self, calls: dict[str, Call]) -> None:
        self.calls = calls

    def Watch(self, request: Any, timeout: float) -> Call:
        return self.calls[request.request_id]


class Watched(Cards):
    """Cards plus a client whose Watch stream is scripted per request."""

    def __init__(self, calls: dict[str, Call]) -> None:
        super().__init__()
        self.client = type("Client", (), {"stub": Stub(calls)})()
        self.versions: dict[str, int] = {}

    def request_view(self, request_id: str) -> dict[str, Any]:
        self.versions[request_id] = self.versions.get(request_id, 0) + 1  # each read is a new card
        return {"request_id": request_id, "version": self.versions[request_id]}


def events(sub: Subscriber, n: int) -> list[tuple[str, Any]]:
    out = []
    for _ in range(n):
        raw = sub.events.get(timeout=10)
        assert raw is not None
        out += [(event, data) for event, _, data in parse(raw)]
    return out


def test_each_transition_pushes_a_fresh_card_and_stop_cancels_and_joins_the_watches() -> None:
    calls = {"r-1": Call(2), "r-2": Call(0), "r-3": Call(0)}
    live = LiveUpdates(Watched(calls), max_watches=2)  # type: ignore[arg-type]
    sub = live.subscribe()
    assert sub is not None
    live.follow(
        {
            "requests": [{"request_id": r, "state": "pending_approval"} for r in calls]
            + [{"request_id": "r-final", "state": "signed"}]
        }
    )
    assert live.watching == ["r-1", "r-2"]  # bounded: r-3 is left to the poll; a final one never watched
    assert [d["version"] for _, d in events(sub, 2)] == [1, 2]
    threads = [t for t in threading.enumerate() if t.name.startswith("console-watch-")]
    live.stop()
    assert all(c.cancelled.is_set() for c in (calls["r-1"], calls["r-2"])) and not any(t.is_alive() for t in threads)
    assert live.watching == []


def test_a_failed_watch_leaves_the_request_to_the_poll_for_a_while() -> None:
    calls = {"r-1": Call(1, Unavailable())}
    live = LiveUpdates(Watched(calls))  # type: ignore[arg-type]
    sub = live.subscribe()
    assert sub is not None
    live.follow_ids(["r-1"])
    got = events(sub, 2)
    assert got[0][0] == "request" and got[1] == ("watch_ended", {"request_id": "r-1", "failed": True})
    live.follow_ids(["r-1"])  # the next poll, within RETRY_AFTER: not restarted
    assert live.watching == []
    live.stop()
