"""Which signing requests a caller may read.

A backend reads the requests it submitted (its certificate's name is their initiator) and the
coordinator's cold sweeps (initiator `sweeper`: a backend broadcasts them). Another backend's
request answers NOT_FOUND with the very message an unknown id gets, so a backend that learns or
guesses a request id learns neither the withdrawal nor that it exists. Officers, operators,
auditors and admins read every request (they approve, run and audit them all).
"""

from __future__ import annotations

from signer.node.tls import Peer

from .errors import NotFound
from .store import RequestRecord
from .sweeps import SWEEPER

BACKEND = "backend"


def initiators_for(peer: Peer) -> tuple[str, ...]:
    """The initiators whose requests `peer` may read; empty means every request."""
    return (peer.name, SWEEPER) if peer.role == BACKEND else ()


def readable(peer: Peer, row: RequestRecord) -> RequestRecord:
    """`row` if `peer` may read it, else NotFound exactly as for an id nobody used."""
    scope = initiators_for(peer)
    if scope and row.initiator not in scope:
        raise NotFound(f"no request {row.request_id!r}")
    return row
