"""The coordinator's public records as protobuf messages: keys, requests (with the decoded intent
officers read), governance status and the pages of every list RPC (one paging mechanism).

A value with a deprecated field and its typed replacement (state / request_state, created_at /
create_time, ...) is written to both by one function (`_state`, `_kind`, `_instant`), so the two
never disagree; the deprecated ones go in v2 (docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from google.protobuf import message, timestamp_pb2
from tsscustody.v1 import common_pb2, coordinator_pb2
from tsscustody_client.names import kind_enum, state_enum

from signer.chains.ethereum import address_of
from signer.node import limits
from signer.node.wire_tx import tx_to_proto
from signer.policy import PolicyError
from signer.tss.curve import Point
from signer.tss.errors import Blame

from .btc_request import intent_of_row, spend_result
from .governance import GovernanceView
from .message_request import message_result
from .request_encoding import tx_from_json
from .store import KeyRecord, PageCursor, RequestRecord

T = TypeVar("T")


def _instant(seconds: float) -> tuple[int, timestamp_pb2.Timestamp | None]:
    """One instant as the deprecated unix seconds and the Timestamp (unset for 0: never)."""
    if not seconds:
        return 0, None
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(round(seconds * 1e9))
    return int(seconds), stamp


def _state(state: str) -> dict[str, Any]:
    return {"state": state, "request_state": state_enum(state)}


def _kind(kind: str) -> dict[str, Any]:
    return {"kind": kind, "request_kind": kind_enum(kind)}


def _times(**pairs: tuple[str, float]) -> dict[str, Any]:
    """`old=(new, seconds)` -> both fields from the same seconds (an unset Timestamp left out)."""
    out: dict[str, Any] = {}
    for old, (new, seconds) in pairs.items():
        out[old], stamp = _instant(seconds)
        if stamp is not None:
            out[new] = stamp
    return out


def key_to_proto(k: KeyRecord, committing_epoch: int = 0) -> coordinator_pb2.Key:
    """A key's public record (and the refreshed epoch being committed, if any)."""
    created = _instant(k.created_at)[1]
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
        **({"create_time": created} if created is not None else {}),
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


def request_to_proto(r: RequestRecord, hold_note: str = "") -> coordinator_pb2.SigningRequest:
    """A signing request with its intent, its policy outcome, why it waits (`hold_note`), and its
    result or its failure (a Bitcoin spend: its PSBT, and once signed the finalized PSBT,
    transaction and txid, no `eth`; a message: its standard, body, digest and signature)."""
    spend, message = spend_result(r), message_result(r)
    body: dict[str, Any]
    if message is not None:
        body = {"message_standard": message.standard, "message_body": message.body}
        body |= {"message_digest": message.digest, "message_signature": message.signature}
    elif spend is not None:
        body = {"psbt": spend.psbt, "signed_psbt": spend.signed_psbt, "btc_tx": spend.btc_tx, "txid": spend.txid}
    else:
        body = {"eth": tx_to_proto(tx_from_json(r.tx))}
    return coordinator_pb2.SigningRequest(
        request_id=r.request_id,
        key_id=r.key_id,
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
        intent=r.intent,
        intent_digest=r.intent_digest,
        intent_text=intent_text(r),
        approved_by=list(r.approved_by),
        policy_reason=r.policy_reason,
        initiator=r.initiator,
        **_state(r.state),
        **_kind(r.kind),
        **_times(
            created_at=("create_time", r.created_at),
            expires_at=("expire_time", r.expires_at),
            time_lock_until=("time_lock_end_time", r.time_lock_until),
        ),
        nonce_allocated=r.nonce_allocated,
        replaces_request_id=r.replaces,
        hold_note=hold_note,
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


def page_size(asked: int) -> int:
    """The page size served for `asked` (0: the default; capped)."""
    return min(asked or limits.DEFAULT_PAGE_SIZE, limits.MAX_PAGE_SIZE)


def page_of(
    rows: Sequence[T],
    size: int,
    to_proto: Callable[[T], message.Message],
    cursor: Callable[[T], PageCursor],
    budget: int = limits.LIST_PAGE_BYTES,
) -> tuple[list[Any], str]:
    """Up to `size` of `rows` (fetched one beyond it) as messages, ending before the encoded page
    passes `budget` bytes, and the next page token (naming the last row sent) when more follow."""
    out: list[Any] = []
    total = 0
    for i, row in enumerate(rows[:size]):
        m = to_proto(row)
        total += m.ByteSize() + 8
        if i > 0 and total > budget:
            break
        out.append(m)
    return out, cursor(rows[len(out) - 1]).token() if len(out) < len(rows) else ""


def list_page(
    rows: list[RequestRecord],
    size: int,
    budget: int = limits.LIST_PAGE_BYTES,
    view: Callable[[RequestRecord], coordinator_pb2.SigningRequest] = request_to_proto,
) -> coordinator_pb2.ListRequestsResponse:
    """A page of ListRequests (see `page_of`); `view` renders a request (the servicer's adds its hold note)."""
    requests, token = page_of(rows, size, view, lambda r: PageCursor(r.created_at, r.request_id), budget)
    return coordinator_pb2.ListRequestsResponse(requests=requests, next_page_token=token)


def key_page(
    rows: list[KeyRecord], size: int, committing: Callable[[str], int], budget: int = limits.LIST_PAGE_BYTES
) -> coordinator_pb2.ListKeysResponse:
    """A page of ListKeys (see `page_of`); `committing` gives a key's epoch being committed."""

    def to_proto(k: KeyRecord) -> coordinator_pb2.Key:
        return key_to_proto(k, committing(k.key_id))

    keys, token = page_of(rows, size, to_proto, lambda k: PageCursor(k.created_at, k.key_id), budget)
    return coordinator_pb2.ListKeysResponse(keys=keys, next_page_token=token)
