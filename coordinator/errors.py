"""The coordinator's errors: each `ServiceError` names the gRPC status code the server maps it to;
`error_status.py` maps each class to its machine-readable reason (one table).

`refused` maps a policy library refusal (`PolicyError(reason)`) to one of them, keeping the stable
reason first in the message so clients can show it; `error_from_session` maps a failed protocol
session.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from signer.policy import PolicyError
from signer.tss.errors import Blame

from . import relay


class ServiceError(Exception):
    """A request the service cannot fulfil; `code` names the gRPC status it maps to."""

    code = "internal"

    def __init__(self, message: str, blames: Sequence[Blame] = (), metadata: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.blames: tuple[Blame, ...] = tuple(blames)
        self.metadata: dict[str, str] = dict(metadata or {})  # for the client's ErrorInfo


class InvalidRequest(ServiceError):
    """Bad input (INVALID_ARGUMENT)."""

    code = "invalid_argument"


class NotFound(ServiceError):
    """No such key or request (NOT_FOUND)."""

    code = "not_found"


class AlreadyExists(ServiceError):
    """The idempotency key is bound to a different request body (ALREADY_EXISTS)."""

    code = "already_exists"


class DuplicateDecision(AlreadyExists):
    """This officer already approved this request with another approval (ALREADY_EXISTS)."""


class Unavailable(ServiceError):
    """Too few signers reachable (UNAVAILABLE)."""

    code = "unavailable"


class Aborted(ServiceError):
    """A protocol aborted; `blames` names the culprits, 0 being the relay (ABORTED)."""

    code = "aborted"


class FailedPrecondition(ServiceError):
    """A signer refused, or state disagrees with the signers (FAILED_PRECONDITION)."""

    code = "failed_precondition"


class Internal(ServiceError):
    """Our own failure (INTERNAL)."""

    code = "internal"


class PermissionDenied(ServiceError):
    """The caller may not do this: a bad or foreign signature, a self-approval, ... (PERMISSION_DENIED)."""

    code = "permission_denied"


class RoleNotAllowed(PermissionDenied):
    """The certificate's role may not call this RPC (PERMISSION_DENIED)."""


class CallerRevoked(PermissionDenied):
    """The caller is a revoked signer (PERMISSION_DENIED)."""


class Refused(ServiceError):
    """The policy library refused an order or change; `reason` is its stable reason and
    starts the message. The code depends on the reason (see `refused`)."""

    def __init__(self, reason: str, message: str, code: str) -> None:
        super().__init__(message, metadata={"policy_reason": reason})
        self.reason = reason
        self.code = code


class ApprovalRefused(Refused):
    """The policy library refused an officer's approval."""


class RejectionRefused(Refused):
    """The policy library refused an officer's signed rejection."""


ERRORS: dict[str, type[ServiceError]] = {
    c.code: c
    for c in (
        InvalidRequest,
        NotFound,
        AlreadyExists,
        Unavailable,
        Aborted,
        FailedPrecondition,
        Internal,
        PermissionDenied,
    )
}
_MALFORMED = frozenset(
    {
        "approval_malformed",
        "intent_malformed",
        "intent_mismatch",
        "inclusion_proof_invalid",
        "order_malformed",
        "key_order_malformed",
        "change_malformed",
        "policy_malformed",
        "registry_malformed",
        "undecodable_transaction",
        "undecodable_destination",
        "unknown_network",
        "unknown_asset",
        "kind_mismatch",
    }
)
_OUT_OF_ORDER = frozenset(
    {
        "approval_expired",
        "approval_not_yet_valid",
        "order_not_yet_valid",
        "key_order_not_yet_valid",
        "key_order_expired",
        "key_order_mismatch",
        "refresh_not_due",
        "change_not_yet_valid",
        "stale_order",
        "not_frozen",
        "policy_downgrade",
        "registry_downgrade",
        "policy_not_chained",
        "registry_not_chained",
        "backdated_allow_entry",
    }
)


def refused(exc: PolicyError, kind: type[Refused] = Refused) -> Refused:
    """The service error (of `kind`) for a policy refusal: malformed input is INVALID_ARGUMENT, a
    stale or out-of-order one FAILED_PRECONDITION, anything about who signed (bad signature,
    unknown or removed officer, self-approval, quorum not met, ...) PERMISSION_DENIED."""
    if exc.reason in _MALFORMED:
        code = InvalidRequest.code
    elif exc.reason in _OUT_OF_ORDER:
        code = FailedPrecondition.code
    else:
        code = PermissionDenied.code
    return kind(exc.reason, str(exc), code)


def error_from_session(exc: relay.SessionFailed) -> ServiceError:
    """The service error for a failed protocol session."""
    if isinstance(exc, relay.SessionAborted):
        return Aborted(str(exc), exc.blames)
    if isinstance(exc, relay.SignerUnreachable):
        return Unavailable(str(exc))
    if isinstance(exc, relay.OutputMismatch):
        return Aborted(str(exc), [Blame(p, exc.protocol, "output_mismatch") for p in exc.parties])
    if isinstance(exc, relay.SignerMisbehaved):
        return Aborted(str(exc), exc.blames)
    if isinstance(exc, relay.SignerRefused):
        return FailedPrecondition(str(exc))
    return Internal(str(exc))
