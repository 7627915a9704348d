"""Prometheus metrics of a signer, and the plain-HTTP endpoint both servers expose them on.

Off unless the config names `metrics_listen` ("host:port"); then `GET /metrics` there (plain HTTP,
the Prometheus convention: bind it to an address only the scraper reaches). The gauges are read
when scraped, from the node itself, and so are the policy refusals by reason (the governance's
`RefusalCounter`); the partial-signature latency is a histogram the servicer observes
(`SignerInstruments`, one per process).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from .startup import refuse_to_start

if TYPE_CHECKING:
    from .node import SignerNode


def serve_metrics(listen: str, collector: Collector) -> Callable[[], None]:
    """Serve `collector` on http://`listen`/metrics in a daemon thread; returns its stop function."""
    host, _, port = listen.rpartition(":")
    if not port.isdigit() or not host:
        raise ValueError(f"metrics_listen must be HOST:PORT, not {listen!r}")
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    server, thread = start_http_server(int(port), addr=host.strip("[]"), registry=registry)

    def stop() -> None:
        server.shutdown()
        thread.join(timeout=5)

    return stop


def start_metrics(who: str, listen: str, collector: Collector) -> Callable[[], None]:
    """The endpoint when `listen` is set (else nothing); a busy port refuses the start, as for gRPC."""
    if not listen:
        return lambda: None
    try:
        return serve_metrics(listen, collector)
    except (OSError, ValueError) as exc:
        refuse_to_start(who, f"metrics_listen {listen}: {exc}")


PARTIAL_SIGN_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
"""A PartialSign is a policy check, an fsync'd ledger record and one scalar product: milliseconds."""


class SignerInstruments:
    """The histograms a signer's servicer observes."""

    def __init__(self, party: int) -> None:
        self._partial_sign = Histogram(
            "tss_signer_partial_sign_seconds",
            "PartialSign calls that released a partial signature: checks, ledger record, sigma_i",
            ["party"],
            buckets=PARTIAL_SIGN_BUCKETS,
            registry=None,
        )
        self.partial_sign = self._partial_sign.labels(str(party))

    def collect(self) -> Iterator[Metric]:
        """Every family, for the scrape."""
        yield from self._partial_sign.collect()


class SignerCollector(Collector):
    """tss_signer_* gauges read from the node at scrape time, and the servicer's histograms."""

    def __init__(
        self, node: SignerNode, store_error: Callable[[], str], instruments: SignerInstruments | None = None
    ) -> None:
        self.node = node
        self.store_error = store_error
        self.instruments = instruments if instruments is not None else SignerInstruments(node.party)

    def collect(self) -> Iterator[Metric]:
        party = str(self.node.party)
        healthy = GaugeMetricFamily(
            "tss_signer_store_healthy", "1 while the encrypted store passes its probe", labels=["party"]
        )
        healthy.add_metric([party], 0.0 if self.store_error() else 1.0)
        yield healthy
        keys = self.node.key_ids()
        count = GaugeMetricFamily("tss_signer_keys", "key shares this signer holds", labels=["party"])
        count.add_metric([party], float(len(keys)))
        yield count
        pool = GaugeMetricFamily(
            "tss_signer_presignatures", "presignatures ready in memory, per key", labels=["party", "key_id"]
        )
        for key_id in keys:
            pool.add_metric([party, key_id], float(len(self.node.presignature_ids(key_id))))
        yield pool
        refused = CounterMetricFamily(
            "tss_signer_policy_refusals",
            "releases this signer's policy refused since its start, by reason",
            labels=["party", "reason"],
        )
        for reason, n in sorted(self.node.governance.refusals.by_reason().items()):
            refused.add_metric([party, reason], float(n))
        yield refused
        yield from self.instruments.collect()
