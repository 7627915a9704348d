"""Prometheus metrics of the coordinator (`metrics_listen` in its config; signer/node/metrics.py
serves them): readiness, signer liveness and degradation, keys. Read at scrape time from what the
service already tracks, so nothing on the signing path counts for them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from .service import CoordinatorService
    from .serving import Readiness


class CoordinatorCollector(Collector):
    """tss_coordinator_* and tss_signer_* gauges as the coordinator sees them."""

    def __init__(self, service: CoordinatorService, readiness: Readiness) -> None:
        self.service = service
        self.readiness = readiness

    def collect(self) -> Iterator[GaugeMetricFamily]:
        ready = GaugeMetricFamily("tss_coordinator_ready", "1 while every key has t live signers (readiness)")
        ready.add_metric([], 1.0 if self.readiness.ready else 0.0)
        yield ready
        parties = sorted(self.service.signers)
        live = set(self.service.live_signers(parties))
        up = GaugeMetricFamily("tss_signer_live", "1 while the coordinator reaches the signer", labels=["party"])
        for p in parties:
            up.add_metric([str(p)], 1.0 if p in live else 0.0)
        yield up
        faults = self.service.health.faults()
        degraded = GaugeMetricFamily(
            "tss_signer_degraded_faults",
            "consecutive faults of a signer being backed off (0: not degraded)",
            labels=["party"],
        )
        for p in parties:
            degraded.add_metric([str(p)], float(faults[p].count if p in faults else 0))
        yield degraded
        keys = self.service.list_keys()
        count = GaugeMetricFamily("tss_coordinator_keys", "keys, by threshold", labels=["threshold"])
        for t in sorted({k.threshold for k in keys}):
            count.add_metric([str(t)], float(sum(1 for k in keys if k.threshold == t)))
        yield count
