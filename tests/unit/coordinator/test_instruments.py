"""The coordinator's histograms and counters (instruments.py) as a scrape of a running service shows
them: real signatures by in-process signer nodes, real policy blocks, approvals on an injected clock.
(The same metrics from real processes, with a signer's and a blamed abort: tests/integration/test_metrics.py.)"""

from __future__ import annotations

import urllib.request
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from coordinator.cluster import free_port
from coordinator.metrics import CoordinatorCollector
from coordinator.store import RequestRecord
from signer.chains.ethereum import Eip1559Tx
from signer.node.metrics import serve_metrics

from .test_lifecycle import KEY_ID, MEDIUM, SMALL, TO, Harness, _assert_signed, h

__all__ = ["h"]


@dataclass
class Ready:
    ready: bool | None = True


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(h: Harness) -> Samples:
    """Every tss_coordinator_* sample of one HTTP scrape of the service's endpoint."""
    port = free_port()
    stop = serve_metrics(f"127.0.0.1:{port}", CoordinatorCollector(h.service, Ready()))
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
            text = reply.read().decode()
    finally:
        stop()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name.startswith("tss_coordinator_")
    }


def sample(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def _approved(h: Harness, row: RequestRecord, wait: float) -> RequestRecord:
    h.clock.advance(wait / 2)
    h.approve(row, "officer-1")
    h.clock.advance(wait / 2)
    return h.approve(row, "officer-3")


def test_a_signature_and_an_approval_are_timed(h: Harness) -> None:
    before = scrape(h)
    assert sample(before, "tss_coordinator_signing_seconds_count") == 0.0
    _assert_signed(h.submit(SMALL, "timed-small"))
    medium = h.submit(MEDIUM, "timed-medium")
    _assert_signed(_approved(h, medium, 600))
    got = scrape(h)
    # The online step of both signatures: real PartialSign calls and a combine, well under a second here.
    assert sample(got, "tss_coordinator_signing_seconds_count") == 2.0
    assert 0 < sample(got, "tss_coordinator_signing_seconds_sum") < 20
    assert sample(got, "tss_coordinator_signing_seconds_bucket", le="+Inf") == 2.0
    # Submission to signed on the store's clock: 0 s for the automatic one, 600 s for the approved one.
    signed = {"kind": "withdrawal", "state": "signed"}
    assert sample(got, "tss_coordinator_request_seconds_count", **signed) == 2.0
    assert sample(got, "tss_coordinator_request_seconds_sum", **signed) == 600.0
    assert sample(got, "tss_coordinator_request_seconds_bucket", le="0.05", **signed) == 1.0
    assert sample(got, "tss_coordinator_request_seconds_bucket", le="900.0", **signed) == 2.0
    # Only the approved one waited in pending_approval.
    assert sample(got, "tss_coordinator_approval_wait_seconds_count", kind="withdrawal") == 1.0
    assert sample(got, "tss_coordinator_approval_wait_seconds_sum", kind="withdrawal") == 600.0
    assert sample(got, "tss_coordinator_approval_wait_seconds_bucket", le="300.0", kind="withdrawal") == 0.0
    assert sample(got, "tss_coordinator_approval_wait_seconds_bucket", le="600.0", kind="withdrawal") == 1.0


def test_a_blocked_request_is_timed_by_its_final_state_and_an_idempotent_retry_is_not(h: Harness) -> None:
    tip = Eip1559Tx(1, 0, 10**18, 10**18, 21000, TO, SMALL)  # a 21000 ETH tip: over the fee rule
    blocked = h.service.sign_eth(KEY_ID, "timed-fee", (0, 1), tip, initiator="backend-1")
    assert blocked.policy_reason == "fee_exceeded"
    again = h.service.sign_eth(KEY_ID, "timed-fee", (0, 1), tip, initiator="backend-1")
    assert again.request_id == blocked.request_id
    got = scrape(h)
    assert sample(got, "tss_coordinator_request_seconds_count", kind="withdrawal", state="blocked") == 1.0
    assert sample(got, "tss_coordinator_request_seconds_count", kind="withdrawal", state="signed") == 0.0
    assert sample(got, "tss_coordinator_signing_seconds_count") == 0.0  # nothing reached the signers
