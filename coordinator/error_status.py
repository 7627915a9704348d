"""The one table from the coordinator's errors to what a client reads: the gRPC status code and a
`google.rpc.Status` carrying a `google.rpc.ErrorInfo` (domain "tsscustody", `reason` an
`ErrorReason` name from the proto, metadata such as request_id, field or policy_reason).

Clients read it with `grpc_status.rpc_status.from_call(call)` (or `tsscustody_client.error_reason`).
A subclass without its own row takes its nearest ancestor's reason; an unknown exception is INTERNAL.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status
from tsscustody.v1.coordinator_pb2 import ErrorReason

from signer.chains.ethereum import TxError
from signer.node import blame_codec
from signer.node.limits import FieldTooLarge
from signer.tss.errors import Blame

from . import errors as e

DOMAIN = "tsscustody"

STATUS: dict[str, grpc.StatusCode] = {
    "invalid_argument": grpc.StatusCode.INVALID_ARGUMENT,
    "not_found": grpc.StatusCode.NOT_FOUND,
    "already_exists": grpc.StatusCode.ALREADY_EXISTS,
    "unavailable": grpc.StatusCode.UNAVAILABLE,
    "aborted": grpc.StatusCode.ABORTED,
    "failed_precondition": grpc.StatusCode.FAILED_PRECONDITION,
    "internal": grpc.StatusCode.INTERNAL,
    "permission_denied": grpc.StatusCode.PERMISSION_DENIED,
}
"""A `ServiceError.code` (also stored with a failed request) -> its gRPC status code."""

REASONS: dict[type[Exception], int] = {
    e.InvalidRequest: ErrorReason.INVALID_REQUEST,
    FieldTooLarge: ErrorReason.FIELD_TOO_LARGE,
    TxError: ErrorReason.INVALID_TRANSACTION,
    e.NotFound: ErrorReason.NOT_FOUND,
    e.AlreadyExists: ErrorReason.IDEMPOTENCY_CONFLICT,
    e.DuplicateDecision: ErrorReason.DUPLICATE_APPROVAL,
    e.Unavailable: ErrorReason.UNAVAILABLE_BELOW_THRESHOLD,
    e.Aborted: ErrorReason.PROTOCOL_ABORTED,
    e.FailedPrecondition: ErrorReason.FAILED_PRECONDITION,
    e.PermissionDenied: ErrorReason.PERMISSION_DENIED,
    e.RoleNotAllowed: ErrorReason.ROLE_NOT_ALLOWED,
    e.CallerRevoked: ErrorReason.CERTIFICATE_REVOKED,
    e.Refused: ErrorReason.POLICY_REFUSED,
    e.ApprovalRefused: ErrorReason.APPROVAL_INVALID,
    e.RejectionRefused: ErrorReason.REJECTION_INVALID,
    e.Internal: ErrorReason.INTERNAL,
}
"""Every error the servicer turns into a status -> its reason (`e.ServiceError` itself: INTERNAL)."""

_INVALID = (FieldTooLarge, TxError)  # input checks outside the service: INVALID_ARGUMENT


def reason_of(exc: Exception) -> str:
    """The ErrorReason name of `exc` (its class's row or its nearest ancestor's; else INTERNAL)."""
    for cls in type(exc).__mro__:
        if cls in REASONS:
            return str(ErrorReason.Name(REASONS[cls]))
    return str(ErrorReason.Name(ErrorReason.INTERNAL))


def code_of(exc: Exception) -> grpc.StatusCode:
    """The gRPC status code of `exc`."""
    if isinstance(exc, e.ServiceError):
        return STATUS.get(exc.code, grpc.StatusCode.INTERNAL)
    if isinstance(exc, _INVALID):
        return grpc.StatusCode.INVALID_ARGUMENT
    return grpc.StatusCode.INTERNAL


def metadata_of(exc: Exception) -> dict[str, str]:
    """What the error itself says for the ErrorInfo's metadata."""
    if isinstance(exc, e.ServiceError):
        out = dict(exc.metadata)
        if exc.blames:
            out["blamed"] = ",".join(str(p) for p in sorted({b.party for b in exc.blames}))
        return out
    if isinstance(exc, FieldTooLarge):
        return {"field": exc.field, "limit": str(exc.limit)}
    return {}


def to_status(
    code: grpc.StatusCode, message: str, reason: str, metadata: Mapping[str, str], blames: Sequence[Blame] = ()
) -> grpc.Status:
    """The status to abort with: `google.rpc.Status` with the ErrorInfo in its details, and the
    blames (if any) in the `tss-blame-bin` trailer besides."""
    info = error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN, metadata=dict(metadata))
    detail = any_pb2.Any()
    detail.Pack(info)
    status = rpc_status.to_status(status_pb2.Status(code=code.value[0], message=message, details=[detail]))
    if not blames:
        return status
    trailer = (blame_codec.METADATA_KEY, blame_codec.encode_blames(tuple(blames)))
    # `to_status` gives a namedtuple; the blames join its trailer (abort_with_status sends only that one).
    with_blames: grpc.Status = status._replace(trailing_metadata=(*status.trailing_metadata, trailer))
    return with_blames


def status_of(exc: Exception, message: str, **metadata: str) -> grpc.Status:
    """The status for `exc` (shown as `message`), metadata from the error and the caller's context."""
    blames = exc.blames if isinstance(exc, e.ServiceError) else ()
    return to_status(code_of(exc), message, reason_of(exc), {**metadata, **metadata_of(exc)}, blames)
