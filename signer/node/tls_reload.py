"""Server credentials that take up rotated certificate files without a restart.

gRPC asks `CertificateReloader` at every new TLS handshake (a cheap `stat` of the three files);
when they changed, the new CA bundle, certificate and key are checked before they are used: the
key must be the certificate's, and the certificate must be signed by a CA of the bundle. A
rotation caught half-written (the new key beside the old certificate) or a broken file keeps the
previous credentials and is looked at again at the next handshake, so a rotation never takes a
server down. Connections already open keep their session; new ones get the new certificate
(`tssctl certs rotate`, docs/operations.md).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import grpc
import structlog

if TYPE_CHECKING:
    from .tls import TlsFiles

log = structlog.get_logger("tls")

Stamp = tuple[tuple[int, int, int], ...]


class CertificateReloader:
    """The certificate-configuration fetcher of one server."""

    def __init__(self, files: TlsFiles) -> None:
        self.files = files
        self._stamp = self._stat()
        self.current = self._load()
        self.reloads = 0

    def _stat(self) -> Stamp:
        return tuple(
            (st.st_ino, st.st_mtime_ns, st.st_size)
            for st in (os.stat(p) for p in (self.files.ca, self.files.cert, self.files.key))
        )

    def _load(self) -> grpc.ServerCertificateConfiguration:
        ca, cert, key = (p.read_bytes() for p in (self.files.ca, self.files.cert, self.files.key))
        check_credentials(ca, cert, key)
        return grpc.ssl_server_certificate_configuration([(key, cert)], root_certificates=ca)

    def __call__(self) -> grpc.ServerCertificateConfiguration | None:
        """None (keep what is in use) unless the files changed into a valid set."""
        try:
            stamp = self._stat()
            if stamp == self._stamp:
                return None
            config = self._load()
        except (OSError, ValueError) as exc:  # mid-rotation or broken: keep serving the old set
            log.warning("tls_reload_deferred", cert=str(self.files.cert), reason=str(exc))
            return None
        self._stamp, self.current = stamp, config
        self.reloads += 1
        log.info("tls_reloaded", cert=str(self.files.cert))
        return config


def check_credentials(ca_pem: bytes, cert_pem: bytes, key_pem: bytes) -> None:
    """ValueError unless the key is the certificate's and a CA of the bundle signed the certificate."""
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization

    cas = x509.load_pem_x509_certificates(ca_pem)
    cert = x509.load_pem_x509_certificate(cert_pem)
    key = serialization.load_pem_private_key(key_pem, password=None)
    spki = serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(*spki) != cert.public_key().public_bytes(*spki):
        raise ValueError("the private key is not the certificate's")
    for ca in cas:
        try:
            cert.verify_directly_issued_by(ca)
            return
        except (InvalidSignature, ValueError, TypeError):  # not this CA (or another key type)
            continue
    raise ValueError("no CA of the bundle signed the certificate")


def reloading_server_credentials(files: TlsFiles) -> tuple[grpc.ServerCredentials, CertificateReloader]:
    """Mutual-TLS server credentials (client certificates required) that follow file rotations."""
    reloader = CertificateReloader(files)
    creds = grpc.dynamic_ssl_server_credentials(reloader.current, reloader, require_client_authentication=True)
    return creds, reloader
