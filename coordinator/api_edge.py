"""The public servicer's edge: who may call (revoked signers and other roles refused) and how every
error, in a call or in the middle of a stream, ends it: its status code and `google.rpc.ErrorInfo`
(error_status.py), the blames named in the details and sent in their trailer."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import NoReturn, TypeVar

import grpc
import structlog

from signer.chains.ethereum import TxError
from signer.node import limits
from signer.node.limits import FieldTooLarge
from signer.node.revocation import revoked_caller_reason
from signer.node.tls import Peer, peer_of
from signer.policy.revocation import Revocations

from .api_input import describe_blames
from .error_status import status_of
from .errors import CallerRevoked, Internal, RoleNotAllowed, ServiceError

log = structlog.get_logger("coordinator")
R = TypeVar("R")
T = TypeVar("T")
M = TypeVar("M")


class ServicerEdge:
    """What every RPC of the coordinator's servicer goes through (`_call`, `_stream`, `_abort`)."""

    def __init__(self, revocations: Callable[[], Revocations]) -> None:
        self._revocations = revocations

    @staticmethod
    def _abort(context: grpc.ServicerContext, exc: Exception, message: str, **metadata: str) -> NoReturn:
        """End the call with `exc`'s status and ErrorInfo (error_status.py); `metadata` adds context."""
        if isinstance(exc, ServiceError) and exc.blames:
            message = f"{message} [blamed: {describe_blames(exc.blames)}]"
        known = {k: v for k, v in metadata.items() if v and len(v) <= limits.MAX_ID}  # never echo an oversize id
        context.abort_with_status(status_of(exc, message, **known))
        raise AssertionError("unreachable")

    def _caller(self, context: grpc.ServicerContext, roles: tuple[str, ...]) -> Peer:
        """The caller, unless it is a revoked signer or its certificate's role may not call this."""
        revoked = revoked_caller_reason(context, self._revocations())
        if revoked is not None:
            log.warning("revoked_caller_refused", component="coordinator", reason=revoked)
            raise CallerRevoked(revoked)
        peer = peer_of(context)
        if peer is None or peer.role not in roles:
            raise RoleNotAllowed(f"role {peer.role if peer else 'none'} may not call this")
        return peer

    def _call(
        self, context: grpc.ServicerContext, roles: tuple[str, ...], fn: Callable[[Peer], R], **metadata: str
    ) -> R:
        """Run `fn` for an allowed caller; every error ends the call with its status and reason."""
        try:
            return fn(self._caller(context, roles))
        except Exception as exc:
            self._fail(context, exc, **metadata)

    def _fail(self, context: grpc.ServicerContext, exc: Exception, **metadata: str) -> NoReturn:
        """End the call for `exc`: ours and bad input with their own status, anything else INTERNAL."""
        if isinstance(exc, (FieldTooLarge, ServiceError, TxError)):
            self._abort(context, exc, exc.message if isinstance(exc, ServiceError) else str(exc), **metadata)
        log.exception("unexpected_error")
        self._abort(context, Internal(str(exc)), "internal error", **metadata)

    def _stream(
        self, context: grpc.ServicerContext, items: Iterable[T], to_proto: Callable[[T], M], **metadata: str
    ) -> Iterator[M]:
        """Each item as a message while the caller listens; an error mid-stream ends it like `_call`."""
        try:
            for item in items:
                if not context.is_active():
                    return
                yield to_proto(item)
        except Exception as exc:
            self._fail(context, exc, **metadata)
