"""The machine-readable reason of a coordinator error: the `google.rpc.ErrorInfo` (domain
"tsscustody") inside the `google.rpc.Status` every coordinator error carries."""

from __future__ import annotations

from dataclasses import dataclass, field

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

DOMAIN = "tsscustody"


@dataclass(frozen=True)
class ErrorInfo:
    """Why a call failed: `reason` is a name of the proto's `ErrorReason` (NOT_FOUND,
    IDEMPOTENCY_CONFLICT, POLICY_REFUSED, ...); `metadata` e.g. request_id, field, policy_reason."""

    code: grpc.StatusCode
    reason: str
    message: str
    metadata: dict[str, str] = field(default_factory=dict)


def error_info(exc: grpc.RpcError) -> ErrorInfo | None:
    """The coordinator's ErrorInfo of a failed call (None for an error without one: a deadline,
    a transport failure, or a server that is not the coordinator)."""
    if not isinstance(exc, grpc.Call):
        return None
    status = rpc_status.from_call(exc)
    if status is None:
        return None
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Is(info.DESCRIPTOR) and detail.Unpack(info) and info.domain == DOMAIN:
            return ErrorInfo(exc.code(), info.reason, status.message, dict(info.metadata))
    return None
