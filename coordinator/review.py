"""What an officer reviews besides the request itself: its audit trail and its destination's
payout history (GetRequestTrail). The trail is the audit log's entries about the request (indexed
by subject, migration 12), as export-format lines an auditor can match against a full export; the
history is the coordinator's ledger (how often the destination was paid, since when): the
figures the trust ramp and the new-destination breaker judge.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tsscustody.v1 import coordinator_pb2

from signer.node import limits
from signer.node.limits import check_text
from signer.policy import PolicyError, canonical_destination
from signer.policy.btc_intent import SpendIntent
from signer.policy.message_intent import MessageIntent

from .audit.format import entry_line
from .btc_request import intent_of_row

if TYPE_CHECKING:
    from .service import CoordinatorService

MAX_TRAIL = 200
"""Entries returned at most (a request has tens; the rest is in `tssctl audit export`)."""


def request_trail(service: CoordinatorService, request_id: str) -> coordinator_pb2.RequestTrail:
    """The trail of `request_id` (`NotFound` if there is no such request; `FieldTooLarge` for an
    id past the limit, which the servicer answers INVALID_ARGUMENT)."""
    check_text("request_id", request_id, limits.MAX_ID)
    row = service.get_request(request_id)
    out = coordinator_pb2.RequestTrail()
    for e in service.audit.about(request_id, MAX_TRAIL):
        out.entries.add(json=entry_line(e).rstrip("\n"))
    if row.intent:
        stored = intent_of_row(row)
        if isinstance(stored, MessageIntent):  # a message pays no destination
            return out
        if isinstance(stored, SpendIntent):  # the history names one destination: a spend's first payout
            payouts = stored.payout_intents()
            if not payouts:
                return out
            stored = payouts[0]
        intent = stored
        try:
            destination = canonical_destination(intent.chain, intent.destination)
        except PolicyError:
            return out
        ledger = service.store.ledger_view()
        out.destination_payouts = ledger.withdrawals_to(destination)
        first = ledger.first_paid(destination)
        if first is not None:
            out.destination_first_paid.FromSeconds(first)
    return out
