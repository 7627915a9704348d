"""Mutual TLS for every component: credential loading and the caller's role from its certificate.

Each certificate names its role in the subject's organizational unit (backend, officer, operator,
signer, coordinator) and its identity in the common name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import grpc

if TYPE_CHECKING:
    from cryptography import x509

ROLES = ("backend", "officer", "operator", "signer", "coordinator", "auditor", "admin")


@dataclass(frozen=True, slots=True)
class Peer:
    """Who is calling: role and name from the verified client certificate."""

    role: str
    name: str


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """Paths of a component's CA certificate, own certificate and own private key."""

    ca: Path
    cert: Path
    key: Path

    @classmethod
    def in_dir(cls, certs_dir: Path, name: str) -> TlsFiles:
        """The conventional layout: <dir>/ca.pem, <dir>/<name>.pem, <dir>/<name>.key."""
        return cls(certs_dir / "ca.pem", certs_dir / f"{name}.pem", certs_dir / f"{name}.key")


def server_credentials(files: TlsFiles) -> grpc.ServerCredentials:
    """Server credentials that require a client certificate signed by our CA and take up rotated
    files at the next handshake, without a restart (tls_reload.py)."""
    from .tls_reload import reloading_server_credentials

    return reloading_server_credentials(files)[0]


class PortInUse(RuntimeError):
    """A server could not bind its listen address (another process holds it, or it is not ours)."""


def bind_secure(server: grpc.Server, listen: str, files: TlsFiles) -> int:
    """Bind `server` to `listen` with mutual TLS; returns the port, or raises `PortInUse`."""
    try:
        port = int(server.add_secure_port(listen, server_credentials(files)))
    except RuntimeError:  # grpcio >= 1.50 raises where older versions returned 0
        port = 0
    if port == 0:
        raise PortInUse(f"cannot listen on {listen}: the address is in use or not local")
    return port


def channel_credentials(files: TlsFiles) -> grpc.ChannelCredentials:
    """Client credentials presenting our certificate and trusting only our CA."""
    return grpc.ssl_channel_credentials(
        root_certificates=files.ca.read_bytes(),
        private_key=files.key.read_bytes(),
        certificate_chain=files.cert.read_bytes(),
    )


def caller_certificate(context: grpc.ServicerContext) -> x509.Certificate | None:
    """The caller's verified client certificate (None without one)."""
    # Imported here: only servers read certificates, and every tssctl command loads this module.
    from cryptography import x509

    pems = context.auth_context().get("x509_pem_cert")
    return x509.load_pem_x509_certificate(pems[0]) if pems else None


def peer_of(context: grpc.ServicerContext) -> Peer | None:
    """Role and name from the caller's verified certificate (None without one)."""
    cert = caller_certificate(context)
    if cert is None:
        return None
    return peer_of_certificate(cert)


def peer_of_certificate(cert: x509.Certificate) -> Peer | None:
    """Role (subject OU) and name (subject CN) of a certificate, if it names both."""
    from cryptography.x509.oid import NameOID

    ou = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not ou or not cn:
        return None
    return Peer(str(ou[0].value), str(cn[0].value))


def require_role(context: grpc.ServicerContext, *roles: str) -> Peer:
    """Abort the call with PERMISSION_DENIED unless the caller holds one of `roles`."""
    peer = peer_of(context)
    if peer is None or peer.role not in roles:
        context.abort(grpc.StatusCode.PERMISSION_DENIED, f"role {peer.role if peer else 'none'} may not call this")
        raise AssertionError("unreachable")
    return peer
