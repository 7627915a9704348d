"""A small client of the public Coordinator API over mutual TLS (used by tssctl and tests)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from types import TracebackType

import grpc
from tsscustody.v1 import common_pb2, coordinator_pb2, coordinator_pb2_grpc

from signer.node import limits
from signer.node.tls import TlsFiles, channel_credentials


class CoordinatorClient:
    """Thin wrapper: one channel, one stub, sensible deadlines."""

    def __init__(self, address: str, tls: TlsFiles, timeout: float = 600.0) -> None:
        self._channel = grpc.secure_channel(
            address,
            channel_credentials(tls),
            options=limits.channel_options(limits.CLIENT_MAX_SEND, limits.CLIENT_MAX_RECEIVE),
        )
        self.stub = coordinator_pb2_grpc.CoordinatorStub(self._channel)
        self.timeout = timeout

    def __enter__(self) -> CoordinatorClient:
        return self

    def __exit__(self, *exc: tuple[type[BaseException] | None, BaseException | None, TracebackType | None]) -> None:
        self.close()

    def close(self) -> None:
        """Close the channel."""
        self._channel.close()

    def create_key(self, name: str, threshold: int, level: str = "") -> coordinator_pb2.Key:
        """Run keygen and aux info on the cluster."""
        reply: coordinator_pb2.Key = self.stub.CreateKey(
            coordinator_pb2.CreateKeyRequest(name=name, threshold=threshold, level=level), timeout=self.timeout
        )
        return reply

    def get_key(self, key_id: str) -> coordinator_pb2.Key:
        """A key's public data."""
        reply: coordinator_pb2.Key = self.stub.GetKey(coordinator_pb2.GetKeyRequest(key_id=key_id), timeout=30)
        return reply

    def refresh_key(self, key_id: str, key_order: bytes) -> coordinator_pb2.Key:
        """Refresh a key's shares (admin role) under an admin quorum's signed `KeyOrder` (wire form);
        returns the key at its new epoch, or still committing."""
        reply: coordinator_pb2.Key = self.stub.RefreshKey(
            coordinator_pb2.RefreshKeyRequest(key_id=key_id, key_order=key_order), timeout=self.timeout
        )
        return reply

    def reshare_key(
        self, key_id: str, parties: Sequence[int], threshold: int, dealers: Sequence[int] = (), *, key_order: bytes
    ) -> coordinator_pb2.Key:
        """Move a key to a new committee / threshold (admin role) under an admin quorum's signed
        reshare order; the key as it stands afterwards."""
        req = coordinator_pb2.ReshareKeyRequest(
            key_id=key_id, parties=list(parties), threshold=threshold, dealers=list(dealers), key_order=key_order
        )
        reply: coordinator_pb2.Key = self.stub.ReshareKey(req, timeout=self.timeout)
        return reply

    def sign_eth(
        self,
        key_id: str,
        tx: common_pb2.EthTransaction,
        idempotency_key: str,
        path: tuple[int, ...] = (),
        kind: str = "",
    ) -> coordinator_pb2.SigningRequest:
        """Submit an EIP-1559 signing request (kind "withdrawal", the default, or "cold_sweep") and
        return it in the state the policy put it in (signed, pending_approval, blocked, ...)."""
        reply: coordinator_pb2.SigningRequest = self.stub.SubmitSigningRequest(
            coordinator_pb2.SubmitSigningRequestRequest(
                key_id=key_id, idempotency_key=idempotency_key, path=list(path), eth=tx, kind=kind
            ),
            timeout=self.timeout,
        )
        return reply

    def sign_btc(
        self, key_id: str, psbt: bytes, idempotency_key: str, kind: str = ""
    ) -> coordinator_pb2.SigningRequest:
        """Submit a Bitcoin spend (an unsigned PSBT of the key's coins; kind "withdrawal" or
        "cold_sweep") and return it in the state the policy put it in."""
        reply: coordinator_pb2.SigningRequest = self.stub.SubmitSigningRequest(
            coordinator_pb2.SubmitSigningRequestRequest(
                key_id=key_id, idempotency_key=idempotency_key, psbt=psbt, kind=kind
            ),
            timeout=self.timeout,
        )
        return reply

    def get_request(self, request_id: str) -> coordinator_pb2.SigningRequest:
        """A request's current state."""
        reply: coordinator_pb2.SigningRequest = self.stub.GetRequest(
            coordinator_pb2.GetRequestRequest(request_id=request_id), timeout=30
        )
        return reply

    def list_page(
        self, key_id: str = "", state: str = "", page_size: int = 0, page_token: str = ""
    ) -> coordinator_pb2.ListRequestsResponse:
        """One page of requests, newest first (`next_page_token` set when more follow)."""
        reply: coordinator_pb2.ListRequestsResponse = self.stub.ListRequests(
            coordinator_pb2.ListRequestsRequest(key_id=key_id, state=state, page_size=page_size, page_token=page_token),
            timeout=30,
        )
        return reply

    def list_requests(
        self, key_id: str = "", state: str = "", limit: int = 100
    ) -> list[coordinator_pb2.SigningRequest]:
        """Up to `limit` requests (0: all), newest first, optionally of one key and in one state,
        following the server's pages."""
        out: list[coordinator_pb2.SigningRequest] = []
        token = ""
        while True:
            want = limits.MAX_PAGE_SIZE if limit <= 0 else min(limits.MAX_PAGE_SIZE, limit - len(out))
            page = self.list_page(key_id, state, want, token)
            out.extend(page.requests)
            token = page.next_page_token
            if not token or (limit > 0 and len(out) >= limit):
                return out[:limit] if limit > 0 else out

    def propose_change(self, kind: str, change_json: str) -> coordinator_pb2.GovernanceStatus:
        """Submit an admin-signed policy or registry change."""
        reply: coordinator_pb2.GovernanceStatus = self.stub.ProposeChange(
            coordinator_pb2.ProposeChangeRequest(kind=kind, change_json=change_json), timeout=60
        )
        return reply

    def governance(self) -> coordinator_pb2.GovernanceStatus:
        """The policy and registry in force, pending changes and freezes."""
        reply: coordinator_pb2.GovernanceStatus = self.stub.GetGovernance(
            coordinator_pb2.GetGovernanceRequest(), timeout=30
        )
        return reply

    def approve(self, request_id: str, approval: bytes) -> coordinator_pb2.SigningRequest:
        """Present an officer's signed approval."""
        reply: coordinator_pb2.SigningRequest = self.stub.ApproveRequest(
            coordinator_pb2.ApproveRequestRequest(request_id=request_id, approval=approval), timeout=self.timeout
        )
        return reply

    def reject(self, request_id: str, officer_id: str, signature: bytes, reason: str) -> coordinator_pb2.SigningRequest:
        """Present an officer's signed rejection (Ed25519 over `reject_message`)."""
        reply: coordinator_pb2.SigningRequest = self.stub.RejectRequest(
            coordinator_pb2.RejectRequestRequest(
                request_id=request_id, officer_id=officer_id, signature=signature, reason=reason
            ),
            timeout=60,
        )
        return reply

    def freeze(self, order: bytes) -> coordinator_pb2.GovernanceStatus:
        """Deliver an officer's signed freeze order (`FreezeOrder.to_bytes()`)."""
        reply: coordinator_pb2.GovernanceStatus = self.stub.Freeze(
            coordinator_pb2.FreezeOrderRequest(order=order), timeout=60
        )
        return reply

    def unfreeze(self, order: bytes) -> coordinator_pb2.GovernanceStatus:
        """Deliver a quorum-signed unfreeze order (`UnfreezeOrder.to_bytes()`)."""
        reply: coordinator_pb2.GovernanceStatus = self.stub.Unfreeze(
            coordinator_pb2.FreezeOrderRequest(order=order), timeout=60
        )
        return reply

    def export_audit(self, since_seq: int = 0) -> list[str]:
        """The audit log as JSON lines (auditor role), from the checkpoint before `since_seq`."""
        stream = self.stub.ExportAudit(coordinator_pb2.ExportAuditRequest(since_seq=since_seq), timeout=self.timeout)
        return [line.json for line in stream]

    def attest_report(self, digest: bytes, kind: str) -> coordinator_pb2.ReportAttestation:
        """Have the coordinator record and sign a report digest (operator or admin role)."""
        reply: coordinator_pb2.ReportAttestation = self.stub.AttestReport(
            coordinator_pb2.AttestReportRequest(report_digest=digest, kind=kind), timeout=60
        )
        return reply

    def report_balance(
        self, chain_id: int, address: str, asset: str, amount: int, next_nonce: int, reported_at: float
    ) -> coordinator_pb2.ReportBalanceResponse:
        """Report a hot wallet's balance in base units (backend role); the sweep it led to, if any."""
        request = coordinator_pb2.ReportBalanceRequest(
            chain_id=chain_id, address=address, asset=asset, amount=str(amount), next_nonce=next_nonce
        )
        request.reported_at.FromNanoseconds(int(reported_at * 1e9))
        reply: coordinator_pb2.ReportBalanceResponse = self.stub.ReportBalance(request, timeout=self.timeout)
        return reply

    def watch(self, request_id: str) -> Iterator[coordinator_pb2.SigningRequest]:
        """Every state the request passes through until it is final."""
        yield from self.stub.Watch(coordinator_pb2.GetRequestRequest(request_id=request_id), timeout=self.timeout)
