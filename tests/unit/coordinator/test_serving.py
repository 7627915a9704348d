"""The coordinator's readiness follows its signers: NOT_SERVING when a key has fewer than t live
signers (health used to say SERVING with signers dead); liveness stays SERVING meanwhile."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

from grpc_health.v1 import health, health_pb2

from coordinator.serving import LIVENESS, NOT_SERVING, SERVING, Readiness, readiness, short_keys


@dataclass(frozen=True)
class Key:
    key_id: str
    threshold: int
    parties: tuple[int, ...]
    retired: tuple[int, ...] = ()


class Ctx:
    def abort(self, code: object, details: str) -> None:
        raise AssertionError(f"{code}: {details}")

    def set_code(self, code: object) -> None:
        pass


def _status(servicer: health.HealthServicer, name: str) -> int:
    return int(servicer.Check(health_pb2.HealthCheckRequest(service=name), Ctx()).status)


def test_a_key_short_of_its_threshold_is_named() -> None:
    keys = [Key("k-2of3", 2, (1, 2, 3)), Key("k-3of3", 3, (1, 2, 3)), Key("k-moved", 2, (1, 2, 4), retired=(2,))]
    assert short_keys(keys, {1, 2, 3}) == ["k-moved"]
    assert short_keys(keys, {1, 2, 4}) == ["k-3of3"]
    assert readiness(keys[:1], (1, 2, 3), {1}) == (False, "fewer than t live signers for k-2of3")
    assert readiness(keys[:1], (1, 2, 3), {1, 3}) == (True, "")


def test_before_the_first_key_a_majority_of_signers_must_be_live() -> None:
    assert readiness([], (1, 2, 3), {1, 2}) == (True, "")
    assert readiness([], (1, 2, 3), {2}) == (False, "1 of 3 signers live, 2 needed (no key yet)")


def test_health_says_not_serving_while_fewer_than_t_signers_live_and_liveness_stays_serving() -> None:
    servicer = health.HealthServicer()
    live: set[int] = {1, 2, 3}

    def probe(parties: Sequence[int]) -> list[int]:
        return [p for p in parties if p in live]

    ready = Readiness(servicer, ("", "tsscustody.v1.Coordinator"), lambda: [Key("k", 2, (1, 2, 3))], (1, 2, 3), probe)
    assert ready.update() and _status(servicer, "") == SERVING
    live -= {2, 3}  # two signers die: one is left of the two a signature needs
    assert not ready.update()
    assert _status(servicer, "") == NOT_SERVING and _status(servicer, "tsscustody.v1.Coordinator") == NOT_SERVING
    assert _status(servicer, LIVENESS) == SERVING
    live.add(3)
    assert ready.update() and _status(servicer, "") == SERVING


def test_a_failing_check_is_not_ready_and_the_watch_stops() -> None:
    servicer = health.HealthServicer()

    def broken() -> list[Key]:
        raise OSError("database is locked")

    ready = Readiness(servicer, ("",), broken, (1, 2, 3), lambda ps: list(ps), interval=0.01)
    stop = threading.Event()
    stop.set()
    ready.watch(stop)  # one update, then returns
    assert ready.ready is False and _status(servicer, "") == NOT_SERVING
