"""The client tssctl and the tests use: the backend client (`tsscustody_client`, which owns the
channel, submitting, reading, waiting and paging) plus what operators, officers, admins and
auditors call, from the TLS files of a role."""

from __future__ import annotations

from collections.abc import Sequence

from tsscustody.v1 import common_pb2, coordinator_pb2
from tsscustody_client import CustodyClient
from tsscustody_client.names import kind_enum, state_enum

from signer.node import limits
from signer.node.tls import TlsFiles


class CoordinatorClient(CustodyClient):
    """`CustodyClient` from a role's TLS files, with the other roles' calls."""

    def __init__(self, address: str, tls: TlsFiles, timeout: float = 600.0) -> None:
        super().__init__(
            address,
            ca=tls.ca.read_bytes(),
            cert=tls.cert.read_bytes(),
            key=tls.key.read_bytes(),
            timeout=timeout,
            options=limits.channel_options(limits.CLIENT_MAX_SEND, limits.CLIENT_MAX_RECEIVE),
        )

    def create_key(self, name: str, threshold: int, level: str = "") -> coordinator_pb2.Key:
        """Run keygen and aux info on the cluster."""
        reply: coordinator_pb2.Key = self.stub.CreateKey(
            coordinator_pb2.CreateKeyRequest(name=name, threshold=threshold, level=level), timeout=self.timeout
        )
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
        *,
        allocate_nonce: bool = False,
        replaces: str = "",
    ) -> coordinator_pb2.SigningRequest:
        """Submit a signing request of a kind by name ("withdrawal", the default, "cold_sweep",
        "replacement", ...); `allocate_nonce` and `replaces` as for `submit`."""
        typed = kind_enum(kind or "withdrawal")
        if not typed:
            raise ValueError(f"unknown request kind {kind!r}")
        return self.submit(key_id, tx, idempotency_key, path, typed, allocate_nonce=allocate_nonce, replaces=replaces)

    def sign_btc(
        self, key_id: str, psbt: bytes, idempotency_key: str, kind: str = ""
    ) -> coordinator_pb2.SigningRequest:
        """Submit a Bitcoin spend (an unsigned PSBT of the key's coins; kind "withdrawal", the
        default, or "cold_sweep") and return it in the state the policy put it in."""
        typed = kind_enum(kind or "withdrawal")
        if not typed:
            raise ValueError(f"unknown request kind {kind!r}")
        request = coordinator_pb2.SubmitSigningRequestRequest(
            key_id=key_id, idempotency_key=idempotency_key, psbt=psbt, request_kind=typed
        )
        reply: coordinator_pb2.SigningRequest = self.stub.SubmitSigningRequest(request, timeout=self.timeout)
        return reply

    def sign_message(
        self, key_id: str, path: Sequence[int], standard: str, body: bytes, idempotency_key: str
    ) -> coordinator_pb2.SigningRequest:
        """Submit a message for the key at `path` to sign (`standard` "eip191": the message bytes;
        "eip712": the typed data's JSON) and return it in the state the policy put it in."""
        request = coordinator_pb2.SubmitSigningRequestRequest(
            key_id=key_id,
            idempotency_key=idempotency_key,
            path=list(path),
            message_standard=standard,
            message_body=body,
            request_kind=kind_enum("message"),
        )
        reply: coordinator_pb2.SigningRequest = self.stub.SubmitSigningRequest(request, timeout=self.timeout)
        return reply

    def list_named(self, key_id: str, state: str, limit: int) -> list[coordinator_pb2.SigningRequest]:
        """`list_requests` with the state by name (tssctl's --state). A name the enum does not know
        goes as is, so the coordinator judges it (its refusal names the states it knows)."""
        typed = state_enum(state)
        if typed or not state:
            return list(self.list_requests(key_id, typed, limit))
        legacy = coordinator_pb2.ListRequestsRequest(key_id=key_id, state=state, page_size=limit)
        return list(self.stub.ListRequests(legacy, timeout=30).requests)

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

    def request_trail(self, request_id: str) -> coordinator_pb2.RequestTrail:
        """A request's audit entries and its destination's payout history (not the backend role)."""
        reply: coordinator_pb2.RequestTrail = self.stub.GetRequestTrail(
            coordinator_pb2.GetRequestRequest(request_id=request_id), timeout=self.timeout
        )
        return reply
