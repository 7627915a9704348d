"""Prometheus metrics of the coordinator (`metrics_listen` in its config; signer/node/metrics.py
serves them): readiness, signer liveness and degradation, keys, open requests and the oldest one's
age by state, frozen scopes and tripped breakers, hot-wallet balances against their caps, the audit
log's re-verification, the presignature pool's targets with the signing rates and presign times
they come from. Read at scrape time from what the service already tracks (open requests
through an index), so nothing on the signing path counts for them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from signer.policy import BREAKER
from signer.tss.hd import format_path

from .request_states import OPEN_STATES

if TYPE_CHECKING:
    from .service import CoordinatorService
    from .serving import Readiness


class CoordinatorCollector(Collector):
    """tss_coordinator_* and tss_signer_* gauges as the coordinator sees them."""

    def __init__(self, service: CoordinatorService, readiness: Readiness) -> None:
        self.service = service
        self.readiness = readiness

    def collect(self) -> Iterator[Metric]:
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
        yield from self._requests()
        yield from self._freezes()
        yield from self._balances()
        yield from self._audit()
        yield from self._pool()
        yield from self.service.instruments.collect()

    def _requests(self) -> Iterator[GaugeMetricFamily]:
        stats = self.service.store.open_request_stats()
        now = self.service.store.now()
        waiting = GaugeMetricFamily("tss_coordinator_requests_open", "open requests, by state", labels=["state"])
        oldest = GaugeMetricFamily(
            "tss_coordinator_oldest_open_request_seconds", "age of the oldest open request, by state", labels=["state"]
        )
        for state in OPEN_STATES:
            n, created = stats.get(state, (0, now))
            waiting.add_metric([state], float(n))
            oldest.add_metric([state], max(0.0, now - created) if n else 0.0)
        yield waiting
        yield oldest

    def _freezes(self) -> Iterator[GaugeMetricFamily]:
        frozen = GaugeMetricFamily(
            "tss_coordinator_frozen", "1 per frozen scope (a key id or *), by who froze it", labels=["scope", "by"]
        )
        tripped = GaugeMetricFamily(
            "tss_coordinator_breaker_tripped", "1 per scope a circuit breaker froze, by rule", labels=["scope", "rule"]
        )
        for scope, state in self.service.governance.freeze_state().scopes:
            if state.frozen:
                frozen.add_metric([scope, state.by], 1.0)
                if state.by.startswith(BREAKER):
                    tripped.add_metric([scope, state.by.removeprefix(BREAKER)], 1.0)
        yield frozen
        yield tripped

    def _balances(self) -> Iterator[GaugeMetricFamily]:
        labels = ["network", "address", "asset"]
        balance = GaugeMetricFamily(
            "tss_coordinator_hot_balance", "a hot wallet's last reported balance, base units", labels=labels
        )
        cap = GaugeMetricFamily(
            "tss_coordinator_hot_balance_cap", "the balance above which the wallet is swept, base units", labels=labels
        )
        age = GaugeMetricFamily(
            "tss_coordinator_hot_balance_report_age_seconds", "age of a hot wallet's last balance report", labels=labels
        )
        caps = {**self.service.sweeps.caps(), **self.service.btc_sweeps.caps()}
        now = self.service.store.now()
        for row in self.service.store.balances():
            where = [row.network, row.address, row.asset]
            balance.add_metric(where, float(row.amount))
            age.add_metric(where, max(0.0, now - row.reported_at))
            if (row.network, row.address, row.asset) in caps:
                cap.add_metric(where, float(caps[(row.network, row.address, row.asset)]))
        yield balance
        yield cap
        yield age

    def _audit(self) -> Iterator[GaugeMetricFamily]:
        state = self.service.audit_scrub.state
        ok = GaugeMetricFamily(
            "tss_coordinator_audit_chain_ok", "0 once the background re-verification found a bad audit entry"
        )
        ok.add_metric([], 1.0 if state.ok else 0.0)
        yield ok
        verified = GaugeMetricFamily(
            "tss_coordinator_audit_verified_seq", "the audit entry the current verification pass has reached"
        )
        verified.add_metric([], float(state.verified_seq))
        yield verified

    def _pool(self) -> Iterator[GaugeMetricFamily]:
        labels = ["key_id", "signers", "path"]
        target = GaugeMetricFamily(
            "tss_coordinator_presign_pool_target",
            "presignatures the refill keeps ready for a (key, signer set, path) that signed recently",
            labels=labels,
        )
        rate = GaugeMetricFamily(
            "tss_coordinator_presign_pool_signing_rate",
            "signatures per second from a (key, signer set, path), exponentially weighted (presign_rate_window)",
            labels=labels,
        )
        sizing = self.service.pool.sizing
        for item in sizing.snapshot():
            key_id, signers, path = item.item
            where = [key_id, ",".join(map(str, signers)), format_path(path)]
            target.add_metric(where, float(item.target))
            rate.add_metric(where, item.rate)
        yield target
        yield rate
        seconds = GaugeMetricFamily(
            "tss_coordinator_presign_seconds",
            "a presign session's time on a (key, signer set), running average of the observed ones",
            labels=["key_id", "signers"],
        )
        for (key_id, signers), value in sorted(sizing.presign_times().items()):
            seconds.add_metric([key_id, ",".join(map(str, signers))], value)
        yield seconds
