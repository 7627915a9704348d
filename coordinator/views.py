"""The coordinator's public records as protobuf messages: keys, requests (with the decoded intent
officers read), governance status and pages of ListRequests."""

from __future__ import annotations

from tsscustody.v1 import common_pb2, coordinator_pb2

from signer.chains.ethereum import address_of
from signer.node import limits
from signer.node.wire_tx import tx_to_proto
from signer.policy import PolicyError
from signer.tss.curve import Point
from signer.tss.errors import Blame

from .btc_request import intent_of_row, spend_result
from .governance import GovernanceView
from .request_encoding import tx_from_json
from .store import KeyRecord, PageCursor, RequestRecord


def key_to_proto(k: KeyRecord, committing_epoch: int = 0) -> coordinator_pb2.Key:
    """A key's public record (and the refreshed epoch being committed, if any)."""
    return coordinator_pb2.Key(
        key_id=k.key_id,
        name=k.name,
        public_key=k.public_key,
        chain_code=k.chain_code,
        threshold=k.threshold,
        parties=list(k.parties),
        eth_address=address_of(Point.from_bytes(k.public_key)),
        epoch=k.epoch,
        committing_epoch=committing_epoch,
        retired=list(k.retired),
    )


def _blame_to_proto(b: Blame) -> common_pb2.Blame:
    return common_pb2.Blame(party=b.party, round=b.round, check=b.check, evidence=b.evidence)


def intent_text(r: RequestRecord) -> str:
    """The decoded intent officers read before approving ("" when the body could not be decoded)."""
    if not r.intent:
        return ""
    try:
        return intent_of_row(r).describe()
    except PolicyError:
        return ""


def request_to_proto(r: RequestRecord) -> coordinator_pb2.SigningRequest:
    """A signing request with its intent, its policy outcome, and its result or its failure (a
    Bitcoin spend: its PSBT, and once signed the finalized PSBT, transaction and txid, no `eth`)."""
    spend = spend_result(r)
    body = (
        {"eth": tx_to_proto(tx_from_json(r.tx))}
        if spend is None
        else {"psbt": spend.psbt, "signed_psbt": spend.signed_psbt, "btc_tx": spend.btc_tx, "txid": spend.txid}
    )
    return coordinator_pb2.SigningRequest(
        request_id=r.request_id,
        key_id=r.key_id,
        state=r.state,
        **body,
        path=list(r.path),
        digest=r.digest,
        r=r.r,
        s=r.s,
        v=r.v or 0,
        raw_tx=r.raw_tx,
        tx_hash=r.tx_hash,
        blame=[_blame_to_proto(b) for b in r.blame],
        error=r.error,
        from_address=r.from_address,
        kind=r.kind,
        intent=r.intent,
        intent_digest=r.intent_digest,
        intent_text=intent_text(r),
        approved_by=list(r.approved_by),
        time_lock_until=r.time_lock_until,
        policy_reason=r.policy_reason,
        initiator=r.initiator,
        expires_at=r.expires_at,
        created_at=int(r.created_at),
    )


def governance_to_proto(g: GovernanceView) -> coordinator_pb2.GovernanceStatus:
    """The registry and policy in force, pending loosenings and frozen scopes."""
    return coordinator_pb2.GovernanceStatus(
        policy_version=g.policy_version,
        policy_hash=g.policy_hash,
        registry_version=g.registry_version,
        registry_hash=g.registry_hash,
        frozen_scopes=list(g.frozen_scopes),
        policy_json=g.policy_json,
        registry_json=g.registry_json,
        pending_json=g.pending_json,
        frozen=[coordinator_pb2.FrozenScope(scope=scope, since=since, by=by) for scope, since, by in g.frozen],
    )


def page_size(request: coordinator_pb2.ListRequestsRequest) -> int:
    asked = request.page_size or request.limit or limits.DEFAULT_PAGE_SIZE
    return min(asked, limits.MAX_PAGE_SIZE)


def list_page(
    rows: list[RequestRecord], page_size: int, budget: int = limits.LIST_PAGE_BYTES
) -> coordinator_pb2.ListRequestsResponse:
    """Up to `page_size` of `rows` (fetched one beyond it), ending before the encoded page passes
    `budget` bytes; `next_page_token` names the last row sent when more follow."""
    out = coordinator_pb2.ListRequestsResponse()
    size = 0
    for i, row in enumerate(rows[:page_size]):
        m = request_to_proto(row)
        size += m.ByteSize() + 8
        if i > 0 and size > budget:
            break
        out.requests.append(m)
    if len(out.requests) < len(rows):
        last = rows[len(out.requests) - 1]
        out.next_page_token = PageCursor(last.created_at, last.request_id).token()
    return out
