"""The signer API on the wire: protobuf <-> domain conversions and the one table from domain errors
to gRPC status codes, shared by the signer's servicer (server.py) and its clients (the gRPC and the
in-process client in coordinator/signer_client.py), so both sides of a call agree by construction.

Errors (`status_of`, first match wins):

    ProtocolAbort                          ABORTED, blames in the `tss-blame-bin` trailer (blame_codec)
    PolicyError                            FAILED_PRECONDITION `refused: <reason>: <detail>`,
                                           the stable reason in the `tss-policy-reason` trailer
    PresignatureUnknown                    INVALID_ARGUMENT, `presignature_unknown` in that trailer
    FieldTooLarge, InvalidInput,
    DecodeError, TxError                   INVALID_ARGUMENT
    StoreError                             FAILED_PRECONDITION, `store_failed` in that trailer (the
                                           signer is degraded, not refusing: route around it)
    InternalError                          INTERNAL `internal error` (the detail stays in the signer's log)
    WorkerLost                             UNAVAILABLE (the worker process computing a round died: the
                                           session is lost, the next one runs on a new worker)

Anything else is a bug the API does not map (gRPC reports UNKNOWN). A client reads a failed call back
as a `Status` (`status_from_rpc`) and sorts its code into aborted, `UNAVAILABLE_CODES`,
`REJECTED_CODES` or internal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from tsscustody.v1 import common_pb2, signer_pb2

from signer.chains.ethereum import EvmTx, TxError
from signer.policy import WITHDRAWAL, PolicyError, Release
from signer.tss.errors import Blame, DecodeError, InternalError, InvalidInput, ProtocolAbort

from . import blame_codec
from .btc_release import PsbtInput
from .governance import GovernanceView
from .limits import FieldTooLarge
from .message_release import MessageBody
from .node import PartialSig, PresignatureUnknown
from .protocol_work import WorkerLost
from .sessions import Envelope, StepResult
from .store import StoreError
from .wire_tx import tx_from_proto, tx_to_proto

POLICY_REASON_KEY = "tss-policy-reason"
"""Trailer carrying a refusal's stable reason (`PolicyError.reason`, `PRESIGNATURE_UNKNOWN`, `STORE_FAILED`)."""
SignBody = EvmTx | PsbtInput | MessageBody
"""What one PartialSign signs: a transaction, one input of a PSBT, or a message."""
PRESIGNATURE_UNKNOWN = "presignature_unknown"
"""The reason of a PartialSign naming a presignature the signer's process does not hold."""
STORE_FAILED = "store_failed"
"""The reason of a call the signer could not serve because its own store failed (corrupt record,
read-only or full disk): a fault of that signer, not a refusal of the request."""

UNAVAILABLE_CODES = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED)
"""The signer is down, unreachable or too slow."""
REJECTED_CODES = (
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.UNIMPLEMENTED,
)
"""The signer refused the call."""


# --- errors -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Status:
    """A failed call as it crosses the wire: code, details, the refusal's reason and the blames."""

    code: grpc.StatusCode
    details: str
    reason: str = ""
    blames: tuple[Blame, ...] = ()

    def trailers(self) -> tuple[tuple[str, str | bytes], ...]:
        """The trailing metadata that carries `blames` (ABORTED) and `reason`."""
        out: list[tuple[str, str | bytes]] = []
        if self.code == grpc.StatusCode.ABORTED:
            out.append((blame_codec.METADATA_KEY, blame_codec.encode_blames(self.blames)))
        if self.reason:
            out.append((POLICY_REASON_KEY, self.reason))
        return tuple(out)


def status_of(exc: Exception) -> Status | None:
    """The status a domain error crosses the wire as (the table in the module docstring); None if unmapped."""
    if isinstance(exc, ProtocolAbort):
        return Status(grpc.StatusCode.ABORTED, f"protocol aborted: {exc}", blames=tuple(exc.blames))
    if isinstance(exc, PolicyError):
        return Status(grpc.StatusCode.FAILED_PRECONDITION, f"refused: {exc}", exc.reason)
    if isinstance(exc, PresignatureUnknown):
        # A restart (or a restore) emptied the in-memory pool: the coordinator presigns afresh.
        return Status(grpc.StatusCode.INVALID_ARGUMENT, str(exc), PRESIGNATURE_UNKNOWN)
    if isinstance(exc, FieldTooLarge | InvalidInput | DecodeError | TxError):
        return Status(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
    if isinstance(exc, StoreError):
        return Status(grpc.StatusCode.FAILED_PRECONDITION, str(exc), STORE_FAILED)
    if isinstance(exc, InternalError):
        return Status(grpc.StatusCode.INTERNAL, "internal error")
    if isinstance(exc, WorkerLost):  # this step's session is lost; the next one gets a new worker
        return Status(grpc.StatusCode.UNAVAILABLE, str(exc))
    return None


def status_from_rpc(exc: grpc.RpcError) -> Status:
    """The status of a failed call as a client sees it (trailers read; an unreadable blame trailer
    is our peer's bug, not evidence: INTERNAL)."""
    call: Any = exc
    code = call.code() if hasattr(call, "code") else grpc.StatusCode.UNKNOWN
    details = (call.details() if hasattr(call, "details") else None) or code.name
    reason = ""
    blames: tuple[Blame, ...] = ()
    for key, value in (call.trailing_metadata() if hasattr(call, "trailing_metadata") else None) or ():
        if key == blame_codec.METADATA_KEY and code == grpc.StatusCode.ABORTED:
            try:
                blames = tuple(blame_codec.decode_blames(bytes(value)))
            except DecodeError:
                return Status(grpc.StatusCode.INTERNAL, f"unreadable blame trailer ({details})")
        elif key == POLICY_REASON_KEY:
            reason = value.decode() if isinstance(value, bytes) else str(value)
    return Status(code, details, reason, blames)


# --- partial signatures ---------------------------------------------------------------------------
def partial_sign_request(
    key_id: str, presignature_id: bytes, tx: SignBody, release: Release, attestations: Sequence[bytes] = ()
) -> signer_pb2.PartialSignRequest:
    """The PartialSign call for a release of a transaction, of one input of a PSBT or of a message."""
    body: dict[str, Any]
    if isinstance(tx, MessageBody):
        body = {"message_standard": tx.standard, "message_body": tx.body}
    elif isinstance(tx, PsbtInput):
        body = {"psbt": tx.psbt, "input_index": tx.input_index}
    else:
        body = {"eth": tx_to_proto(tx)}
    return signer_pb2.PartialSignRequest(
        key_id=key_id,
        presignature_id=presignature_id,
        **body,
        request_id=release.request_id,
        approvals=list(release.approvals),
        initiator=release.initiator,
        expires_at=release.expires_at,
        path=list(release.path),
        policy_hash=release.policy_hash,
        kind=release.kind,
        attestations=list(attestations),
    )


def partial_sig_to_proto(p: PartialSig) -> signer_pb2.PartialSignResponse:
    """Protobuf form of a partial signature."""
    return signer_pb2.PartialSignResponse(party=p.party, sigma=p.sigma, digest=p.digest, attestation=p.attestation)


def partial_sig_from_proto(m: signer_pb2.PartialSignResponse) -> PartialSig:
    """Domain form of a partial signature."""
    return PartialSig(m.party, bytes(m.sigma), bytes(m.digest), bytes(m.attestation))


def partial_sign_body(m: signer_pb2.PartialSignRequest) -> SignBody:
    """What a PartialSign call asks to sign (the servicer checked that it names exactly one)."""
    if m.message_standard:
        return MessageBody(m.message_standard, bytes(m.message_body))
    return PsbtInput(bytes(m.psbt), m.input_index) if m.psbt else tx_from_proto(m.eth)


def release_from_proto(m: signer_pb2.PartialSignRequest) -> Release:
    """The release a PartialSign call carries (an empty kind is a withdrawal)."""
    return Release(
        request_id=m.request_id,
        approvals=tuple(bytes(a) for a in m.approvals),
        initiator=m.initiator,
        expires_at=m.expires_at,
        path=tuple(m.path),
        policy_hash=bytes(m.policy_hash),
        kind=m.kind or WITHDRAWAL,
    )


# --- sessions -----------------------------------------------------------------------------------
def envelope_to_proto(e: Envelope) -> common_pb2.Envelope:
    """Protobuf envelope."""
    return common_pb2.Envelope(
        session_id=e.session_id,
        protocol=e.protocol,
        round=e.round,
        sender=e.sender,
        recipient=e.recipient,
        payload=e.payload,
        signature=e.signature,
    )


def envelope_from_proto(m: common_pb2.Envelope) -> Envelope:
    """Domain envelope."""
    return Envelope(
        bytes(m.session_id), m.protocol, m.round, m.sender, m.recipient, bytes(m.payload), bytes(m.signature)
    )


def envelopes_from_proto(ms: Sequence[common_pb2.Envelope]) -> list[Envelope]:
    """Domain envelopes, in order."""
    return [envelope_from_proto(m) for m in ms]


def step_to_proto(r: StepResult) -> signer_pb2.SessionStep:
    """Protobuf session step."""
    return signer_pb2.SessionStep(
        outgoing=[envelope_to_proto(e) for e in r.outgoing],
        done=r.done,
        public_output=r.public_output,
        attestation=r.attestation,
        confirmation=r.confirmation,
    )


def step_from_proto(m: signer_pb2.SessionStep) -> StepResult:
    """Domain session step."""
    return StepResult(
        tuple(envelopes_from_proto(m.outgoing)),
        m.done,
        bytes(m.public_output),
        bytes(m.attestation),
        bytes(m.confirmation),
    )


# --- governance ---------------------------------------------------------------------------------
def governance_to_proto(v: GovernanceView) -> signer_pb2.SignerGovernance:
    """Protobuf form of the governance a signer holds."""
    return signer_pb2.SignerGovernance(
        policy_version=v.policy_version,
        policy_hash=v.policy_hash,
        registry_version=v.registry_version,
        registry_hash=v.registry_hash,
        frozen_scopes=list(v.frozen_scopes),
    )


def governance_from_proto(m: signer_pb2.SignerGovernance) -> GovernanceView:
    """Domain form of the governance a signer reports."""
    return GovernanceView(
        m.policy_version, bytes(m.policy_hash), m.registry_version, bytes(m.registry_hash), tuple(m.frozen_scopes)
    )
