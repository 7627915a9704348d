"""The coordinator's gRPC health: ready only while it can sign, alive while it answers.

Readiness (the health service "" and `tsscustody.v1.Coordinator`, what a load balancer or a
Kubernetes readiness probe asks) is SERVING only while every key has at least its threshold t of
live signers in its committee; before the first key exists, while a majority of the configured
signers is live. A coordinator whose signers are down therefore says NOT_SERVING instead of
accepting requests it cannot sign. Liveness (the service "liveness", what a restart policy asks) is
SERVING while the process answers at all: restarting a coordinator does not bring its signers back.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

import structlog
from grpc_health.v1 import health, health_pb2

log = structlog.get_logger("coordinator")

LIVENESS = "liveness"
"""The health service name that is SERVING while the process answers (restart probes use it)."""

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class Committee(Protocol):
    """What readiness needs of a key (a `coordinator.store.KeyRecord`)."""

    @property
    def key_id(self) -> str: ...
    @property
    def threshold(self) -> int: ...
    @property
    def parties(self) -> tuple[int, ...]: ...
    @property
    def retired(self) -> tuple[int, ...]: ...


def short_keys(keys: Iterable[Committee], live: set[int]) -> list[str]:
    """The keys with fewer than their threshold of live signers in their committee."""
    return [k.key_id for k in keys if len(live & (set(k.parties) - set(k.retired))) < k.threshold]


def readiness(keys: Sequence[Committee], signers: Sequence[int], live: set[int]) -> tuple[bool, str]:
    """Whether the coordinator can sign, and why not (a reason for the log)."""
    if keys:
        short = short_keys(keys, live)
        return not short, f"fewer than t live signers for {', '.join(short)}" if short else ""
    need = len(signers) // 2 + 1
    ok = len(live & set(signers)) >= need
    return ok, "" if ok else f"{len(live)} of {len(signers)} signers live, {need} needed (no key yet)"


class Readiness:
    """Keeps the readiness services of `servicer` in step with the signers' liveness."""

    def __init__(
        self,
        servicer: health.HealthServicer,
        names: Sequence[str],
        keys: Callable[[], Sequence[Committee]],
        signers: Sequence[int],
        live: Callable[[Sequence[int]], Sequence[int]],
        *,
        interval: float = 5.0,
    ) -> None:
        self.servicer = servicer
        self.names = tuple(names)
        self.keys = keys
        self.signers = tuple(signers)
        self.live = live
        self.interval = interval
        self.ready: bool | None = None
        servicer.set(LIVENESS, SERVING)

    def update(self) -> bool:
        """Check now, set the services' status; returns whether the coordinator is ready."""
        try:
            ready, why = readiness(self.keys(), self.signers, set(self.live(self.signers)))
        except Exception as exc:  # a broken store or probe: not ready, and say why
            ready, why = False, f"readiness check failed: {exc}"
        for name in self.names:
            self.servicer.set(name, SERVING if ready else NOT_SERVING)
        if ready != self.ready:
            (log.info if ready else log.warning)("coordinator_readiness", ready=ready, reason=why)
        self.ready = ready
        return ready

    def watch(self, stop: threading.Event) -> None:
        """Update every `interval` seconds until `stop` is set."""
        while True:
            self.update()
            if stop.wait(self.interval):
                return
