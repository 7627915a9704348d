"""Refusing revoked signers at the RPC layer (signer and coordinator servers alike).

The officer registry in force lists the revoked signers (signer/policy/revocation.py). A caller
presenting a revoked certificate, or any `signer-<index>` certificate of a revoked index, is
refused with PERMISSION_DENIED and the one-line reason before its role is even looked at, so a
retired signer that kept its old certificate and share learns exactly why it is shut out.
"""

from __future__ import annotations

import grpc
import structlog
from cryptography.hazmat.primitives.serialization import Encoding

from signer.policy.revocation import Revocations, cert_fingerprint

from .tls import caller_certificate, peer_of_certificate

log = structlog.get_logger("signer")


def revoked_caller_reason(context: grpc.ServicerContext, revocations: Revocations) -> str | None:
    """Why the caller's certificate is refused, or None (no revocations, or not a revoked caller)."""
    if not revocations.entries:
        return None
    cert = caller_certificate(context)
    if cert is None:
        return None
    peer = peer_of_certificate(cert)
    role, name = (peer.role, peer.name) if peer is not None else ("", "")
    return revocations.certificate_reason(role, name, cert_fingerprint(cert.public_bytes(Encoding.DER)))


def refuse_revoked_caller(context: grpc.ServicerContext, revocations: Revocations, component: str) -> None:
    """Abort the call with PERMISSION_DENIED if the caller is a revoked signer."""
    reason = revoked_caller_reason(context, revocations)
    if reason is None:
        return
    log.warning("revoked_caller_refused", component=component, reason=reason)
    context.abort(grpc.StatusCode.PERMISSION_DENIED, reason)
    raise AssertionError("unreachable")
