"""GetRequestTrail (coordinator/review.py): a request's audit entries, as export lines that match a
full export, and its destination's payout history from the coordinator's ledger."""

from __future__ import annotations

import io
import json

import pytest

from coordinator import service as svc
from coordinator.review import request_trail

from .test_lifecycle import MEDIUM, SMALL, Harness, _assert_signed, h

__all__ = ["h"]


def test_the_trail_holds_the_requests_own_entries_as_the_export_has_them(h: Harness) -> None:
    first = h.submit(SMALL, "t-1")
    _assert_signed(first)
    pending = h.submit(MEDIUM, "t-2")
    h.approve(pending, "officer-1")
    trail = request_trail(h.service, pending.request_id)
    lines = [json.loads(e.json) for e in trail.entries]
    assert lines and all(e["subject"] == pending.request_id for e in lines)
    assert [e["seq"] for e in lines] == sorted(e["seq"] for e in lines)
    events = [json.loads(e["json"]).get("event") for e in lines]
    assert any(e and "approv" in e for e in events), events
    export = io.StringIO()
    h.service.audit.export(export)
    exported = {json.loads(x)["seq"]: json.loads(x) for x in export.getvalue().splitlines() if '"entry"' in x}
    assert all(exported[e["seq"]] == e for e in lines)  # the same bytes an auditor verifies
    # The destination was paid once (the first request): the trust ramp's figure.
    assert trail.destination_payouts == 1 and trail.HasField("destination_first_paid")
    assert trail.destination_first_paid.seconds == int(h.clock())


def test_an_unknown_request_has_no_trail(h: Harness) -> None:
    with pytest.raises(svc.NotFound):
        request_trail(h.service, "nope")
