"""The coordinator refuses a revoked signer: its certificate at the gRPC edge (PERMISSION_DENIED
with the reason, before the role check), any session naming it, and it is never a live signer
(so never in a signing set)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from google.rpc import error_details_pb2, status_pb2

from coordinator import certs
from coordinator.errors import FailedPrecondition
from coordinator.server import CoordinatorServicer
from coordinator.sessions import Sessions
from coordinator.signer_client import SessionParams
from coordinator.signer_health import SignerHealth
from signer.policy.revocation import Revocations, RevokedSigner, cert_fingerprint


class _Aborted(Exception):
    pass


class _Context:
    """A servicer context presenting one client certificate; `abort` records and raises."""

    def __init__(self, pem: bytes) -> None:
        self.pem = pem
        self.aborted: tuple[grpc.StatusCode, str] | None = None

    def auth_context(self) -> dict[str, list[bytes]]:
        return {"x509_pem_cert": [self.pem]}

    def abort(self, code: grpc.StatusCode, details: str) -> None:
        self.aborted = (code, details)
        raise _Aborted

    def abort_with_status(self, status: grpc.Status) -> None:
        self.trailers = status.trailing_metadata
        self.abort(status.code, status.details)


class _Service:
    def __init__(self, revocations: Revocations) -> None:
        self._revocations = revocations

    def revocations(self) -> Revocations:
        return self._revocations


def _revoking(cdir: Path, party: int, version: int = 4) -> Revocations:
    der = x509.load_pem_x509_certificate((cdir / f"signer-{party}.pem").read_bytes()).public_bytes(Encoding.DER)
    return Revocations((RevokedSigner(party, cert_fingerprint(der), bytes(32)),), version)


def test_a_revoked_signer_certificate_is_refused_before_its_role(tmp_path: Path) -> None:
    certs.create_ca(tmp_path)
    certs.issue(tmp_path, "signer-3", "signer")
    certs.issue(tmp_path, "operator", "operator")
    revocations = _revoking(tmp_path, 3)
    servicer = CoordinatorServicer(cast(Any, _Service(revocations)))
    ctx = _Context((tmp_path / "signer-3.pem").read_bytes())
    with pytest.raises(_Aborted):
        servicer._call(cast(Any, ctx), ("signer", "operator"), lambda peer: peer)
    fp = cert_fingerprint(x509.load_pem_x509_certificate(ctx.pem).public_bytes(Encoding.DER))
    assert ctx.aborted == (
        grpc.StatusCode.PERMISSION_DENIED,
        f"signer 3 is revoked (officer registry v4): its certificate {fp.hex()[:16]}… is refused",
    )
    (detail,) = status_pb2.Status.FromString(dict(ctx.trailers)["grpc-status-details-bin"]).details
    info = error_details_pb2.ErrorInfo()
    assert detail.Unpack(info) and info.reason == "CERTIFICATE_REVOKED"
    ok = _Context((tmp_path / "operator.pem").read_bytes())
    assert servicer._call(cast(Any, ok), ("operator",), lambda peer: peer.name) == "operator"


def test_no_session_names_a_revoked_signer() -> None:
    sessions = Sessions(
        cast(Any, None), {}, cast(Any, None), cast(Any, None), cast(Any, None), lambda _p: None, lambda n: bytes(n)
    )
    sessions.revocations = lambda: Revocations((RevokedSigner(3, bytes(32), bytes(32)),), 2)
    with pytest.raises(FailedPrecondition) as e:
        sessions.run("aux", "k1", (1, 2, 3), SessionParams("k1"))
    assert str(e.value) == "signer_revoked: signer 3 is revoked (officer registry v2): no session includes it"


class _Up:
    def healthy(self) -> bool:
        return True


def test_a_revoked_signer_is_never_live() -> None:
    with ThreadPoolExecutor(2) as pool:
        health = SignerHealth(cast(Any, {p: _Up() for p in (1, 2, 3)}), pool, health_ttl=5.0, down_ttl=1.0)
        assert health.live((1, 2, 3)) == [1, 2, 3]
        health.revoked = lambda: frozenset({2})
        assert health.live((1, 2, 3)) == [1, 3]
        assert health.live((1, 2, 3), fresh=True) == [1, 3]
