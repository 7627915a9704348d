"""The coordinator's histograms and counters (instruments.py) as a scrape of a running service shows
them: real signatures by in-process signer nodes, real policy blocks, approvals on an injected clock.
(The same metrics from real processes, with a signer's and a blamed abort: tests/integration/test_metrics.py.)"""

from __future__ import annotations

import dataclasses
import urllib.request
from dataclasses import dataclass

import pytest
from prometheus_client.parser import text_string_to_metric_families

from coordinator import request_states as st
from coordinator.cluster import free_port
from coordinator.metrics import CoordinatorCollector
from coordinator.store import RequestRecord
from signer.chains.ethereum import Eip1559Tx
from signer.node.metrics import serve_metrics
from signer.node.node import PartialSig
from signer.tss.curve import Q

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


def test_submissions_and_refusals_are_counted_once(h: Harness) -> None:
    _assert_signed(h.submit(SMALL, "count-small"))
    h.submit(SMALL, "count-small")  # the same request again: found, not created
    tip = Eip1559Tx(1, 1, 10**18, 10**18, 21000, TO, SMALL)
    assert h.service.sign_eth(KEY_ID, "count-fee", (0, 1), tip, initiator="backend-1").policy_reason == "fee_exceeded"
    assert h.submit(SMALL, "count-sweep", kind="cold_sweep").policy_reason == "sweep_destination_not_cold"
    assert h.submit(MEDIUM, "count-medium").state == st.PENDING_APPROVAL
    h.service.tick()  # the scheduler's pass re-evaluates what is open: it creates and refuses nothing
    got = scrape(h)
    assert sample(got, "tss_coordinator_requests_submitted_total", kind="withdrawal") == 3.0
    assert sample(got, "tss_coordinator_requests_submitted_total", kind="cold_sweep") == 1.0
    assert sample(got, "tss_coordinator_policy_refusals_total", reason="fee_exceeded") == 1.0
    assert sample(got, "tss_coordinator_policy_refusals_total", reason="sweep_destination_not_cold") == 1.0
    assert sum(v for (name, _), v in got.items() if name == "tss_coordinator_policy_refusals_total") == 2.0


def test_a_bad_partial_signature_counts_one_abort_blaming_its_signer(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Signer 2 returns a well-formed σ_2 that is not its share of the signature: the combine
    identifies it, the request fails with its blame, and the abort is counted against party 2."""
    honest = h.clients[2].partial_sign

    def cheat(*args: object, **kwargs: object) -> PartialSig:
        real = honest(*args, **kwargs)  # type: ignore[arg-type]
        wrong = (int.from_bytes(real.sigma, "big") + 1) % Q
        return dataclasses.replace(real, sigma=wrong.to_bytes(32, "big"))

    monkeypatch.setattr(h.clients[2], "partial_sign", cheat)
    failed = h.submit(SMALL, "abort-1")
    assert failed.state == st.FAILED and {b.party for b in failed.blame} == {2}, (failed.state, failed.error)
    got = scrape(h)
    aborts = {k: v for k, v in got.items() if k[0] == "tss_coordinator_protocol_aborts_total" and v}
    # Every (party, phase) is exported from the start, at 0 (so `rate` sees a first abort).
    assert sample(got, "tss_coordinator_protocol_aborts_total", party="3", phase="presign") == 0.0
    assert ("tss_coordinator_protocol_aborts_total", frozenset({("party", "0"), ("phase", "sign")})) in got
    assert aborts == {("tss_coordinator_protocol_aborts_total", frozenset({("party", "2"), ("phase", "sign")})): 1.0}
    assert sample(got, "tss_coordinator_request_seconds_count", kind="withdrawal", state="failed") == 1.0
