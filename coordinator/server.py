"""The coordinator's public gRPC server: a thin servicer over `CoordinatorService`, mutual TLS,
health and reflection.
Roles (from the client certificate): operators and admins create keys, admins refresh and reshare
them (with an admin quorum's signed key order, which the coordinator and every signer verify);
backends submit signing requests (the certificate's common name is the request's initiator);
officers approve, reject, freeze and unfreeze (an approval, rejection or freeze must be signed by
the officer the certificate names); admins propose policy and registry changes; auditors export
the audit log; operators and admins have reports (drills) attested; backends, operators,
officers, auditors and admins read keys, requests, governance (a backend only its own requests
and the cold sweeps: request_scope.py).
Every error becomes a status code with a `google.rpc.Status` whose `google.rpc.ErrorInfo` names a
machine-readable reason (error_status.py, one table); a protocol abort is ABORTED with the blames
in the `tss-blame-bin` trailer (the same codec the signers use) and named in the details. A policy
refusal's stable reason starts the details (`self_approval: officer-1`).

Bounded inputs: the server takes messages up to `limits.COORDINATOR_MAX_RECEIVE` and every field
is size-checked here, before the service stores or audits anything (INVALID_ARGUMENT naming the
field and its limit). An oversize freeze, unfreeze or change is audited by SHA-256 and length
only. ListRequests is paginated (page_size capped, pages end before `limits.LIST_PAGE_BYTES`).

Run: `python -m coordinator --config coordinator.json` (see `serve`).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from tsscustody.v1 import coordinator_pb2, coordinator_pb2_grpc

from signer.node import limits
from signer.node.limits import FieldTooLarge, check_bytes, check_count, check_text
from signer.node.metrics import start_metrics
from signer.node.startup import load_config, refuse_to_start
from signer.node.tls import Peer, PortInUse, TlsFiles, bind_secure
from signer.node.wire_tx import check_eth, tx_from_proto
from signer.policy.message_intent import MESSAGE

from .api_edge import ServicerEdge
from .api_input import check_id, page_after, typed_kind, typed_state
from .audit import FREEZE, POLICY
from .btc_sweeps import Utxo
from .build import build_service
from .config import CoordinatorConfig
from .errors import ERRORS, Internal, InvalidRequest
from .funds import note_of
from .logging import configure_logging
from .metrics import CoordinatorCollector
from .request_scope import initiators_for, readable
from .request_states import STATES
from .review import request_trail
from .service import CoordinatorService
from .serving import Readiness
from .store import FAILED, RequestRecord, StoreError
from .sweeps import base_units
from .trail import audit_public_key_path
from .views import governance_to_proto, key_page, key_to_proto, list_page, page_size, request_to_proto

log = structlog.get_logger("coordinator")
SERVICE_NAME = "tsscustody.v1.Coordinator"

KEY_ADMINS = ("operator", "admin")
SUBMITTERS = ("backend",)
OFFICERS = ("officer",)
ADMINS = ("admin",)
AUDITORS = ("auditor",)
READERS = ("backend", "operator", "officer", "auditor", "admin")
REVIEWERS = ("operator", "officer", "auditor", "admin")


class CoordinatorServicer(ServicerEdge, coordinator_pb2_grpc.CoordinatorServicer):
    """Translates protobuf to `CoordinatorService` calls and service errors to status codes."""

    def __init__(self, service: CoordinatorService, *, watch_poll: float = 1.0) -> None:
        super().__init__(service.revocations)
        self.service = service
        self.watch_poll = watch_poll

    def _view(self, row: RequestRecord) -> coordinator_pb2.SigningRequest:
        return request_to_proto(row, note_of(self.service.funds, row))

    def _finished(self, context: grpc.ServicerContext, row: RequestRecord) -> coordinator_pb2.SigningRequest:
        """A failed request is an error status (same code as its cause); anything else is returned."""
        if row.state == FAILED:
            cause = ERRORS.get(row.error_code, Internal)(row.error, row.blame)
            self._abort(context, cause, f"request {row.request_id} failed: {row.error}", request_id=row.request_id)
        return self._view(row)

    def _refuse_oversize(self, kind: str, event: str, actor: str, field: str, payload: bytes | str, limit: int) -> None:
        """Refuse a governance payload above `limit`, auditing only its SHA-256 and length."""
        if len(payload) <= limit:
            return
        exc = FieldTooLarge(field, len(payload), limit, "bytes" if isinstance(payload, bytes) else "characters")
        self.service.trail.record(
            kind, event, "", actor, reason="too_large", detail=str(exc), **{field: limits.digest_of(payload)}
        )
        raise exc

    def CreateKey(self, request: coordinator_pb2.CreateKeyRequest, context: grpc.ServicerContext) -> Any:
        def run(_: Peer) -> coordinator_pb2.Key:
            check_id("name", request.name)
            check_text("level", request.level, limits.MAX_WORD)
            return key_to_proto(self.service.create_key(request.name, request.threshold, request.level))

        return self._call(context, KEY_ADMINS, run)

    def ListKeys(self, request: coordinator_pb2.ListKeysRequest, context: grpc.ServicerContext) -> Any:
        def run(_: Peer) -> coordinator_pb2.ListKeysResponse:
            after, size = page_after(request.page_token), page_size(request.page_size)
            rows = self.service.store.list_keys(limit=size + 1, after=after)
            return key_page(rows, size, self.service.committing_epoch)

        return self._call(context, READERS, run)

    def GetKey(self, request: coordinator_pb2.GetKeyRequest, context: grpc.ServicerContext) -> Any:
        def run(_: Peer) -> coordinator_pb2.Key:
            check_id("key_id", request.key_id)
            return key_to_proto(self.service.get_key(request.key_id), self.service.committing_epoch(request.key_id))

        return self._call(context, READERS, run, key_id=request.key_id)

    def RefreshKey(self, request: coordinator_pb2.RefreshKeyRequest, context: grpc.ServicerContext) -> Any:
        def run(peer: Peer) -> coordinator_pb2.Key:
            check_id("key_id", request.key_id)
            check_bytes("key_order", bytes(request.key_order), limits.MAX_ORDER)
            # The admin certificate gates the call; the order's admin signatures are the authority.
            key = self.service.refresh_key(request.key_id, bytes(request.key_order), actor=peer.name)
            return key_to_proto(key, self.service.committing_epoch(request.key_id))

        return self._call(context, ("admin",), run, key_id=request.key_id)

    def ReshareKey(self, request: coordinator_pb2.ReshareKeyRequest, context: grpc.ServicerContext) -> Any:
        def run(peer: Peer) -> coordinator_pb2.Key:
            check_id("key_id", request.key_id)
            check_count("parties", request.parties, limits.MAX_PARTIES)
            check_count("dealers", request.dealers, limits.MAX_PARTIES)
            check_bytes("key_order", bytes(request.key_order), limits.MAX_ORDER)
            key = self.service.reshare_key(
                request.key_id,
                tuple(request.parties),
                request.threshold,
                tuple(request.dealers),
                key_order=bytes(request.key_order),
                actor=peer.name,
            )
            return key_to_proto(key, self.service.committing_epoch(request.key_id))

        return self._call(context, ADMINS, run, key_id=request.key_id)

    def SubmitSigningRequest(
        self, request: coordinator_pb2.SubmitSigningRequestRequest, context: grpc.ServicerContext
    ) -> Any:
        def run(peer: Peer) -> RequestRecord:
            check_id("key_id", request.key_id)
            check_id("idempotency_key", request.idempotency_key)
            check_count("path", request.path, limits.MAX_PATH)
            check_text("kind", request.kind, limits.MAX_WORD)
            kind = typed_kind(request.kind, request.request_kind)
            check_id("replaces_request_id", request.replaces_request_id)
            if request.message_standard or request.message_body:  # a message (message_submission.py)
                if request.HasField("eth") or request.psbt or request.allocate_nonce or request.replaces_request_id:
                    raise InvalidRequest("a message request has no eth transaction, psbt, nonce or replacement")
                if kind not in ("", MESSAGE):
                    raise InvalidRequest(f"a message request's kind is {MESSAGE!r}")
                check_text("message_standard", request.message_standard, limits.MAX_WORD)
                check_bytes("message_body", bytes(request.message_body), limits.MAX_MESSAGE)
                return self.service.sign_message(
                    request.key_id,
                    request.idempotency_key,
                    tuple(request.path),
                    request.message_standard,
                    bytes(request.message_body),
                    initiator=peer.name,
                )
            if kind == MESSAGE:
                raise InvalidRequest("a message request needs message_standard and message_body")
            if request.psbt:  # a Bitcoin spend (btc_submission.py): its inputs carry their paths
                if request.HasField("eth") or request.path or request.allocate_nonce or request.replaces_request_id:
                    raise InvalidRequest("a psbt request has no eth transaction, path, nonce or replacement")
                psbt = bytes(request.psbt)
                check_bytes("psbt", psbt, limits.MAX_PSBT)
                return self.service.sign_btc(
                    request.key_id, request.idempotency_key, psbt, kind=kind, initiator=peer.name
                )
            if not request.HasField("eth"):
                raise InvalidRequest("eth transaction missing")
            check_eth(request.eth)
            tx = tx_from_proto(request.eth)
            return self.service.sign_eth(
                request.key_id,
                request.idempotency_key,
                tuple(request.path),
                tx,
                kind=kind,
                initiator=peer.name,
                allocate_nonce=request.allocate_nonce,
                replaces=request.replaces_request_id,
            )

        row = self._call(context, SUBMITTERS, run)
        return self._finished(context, row)

    def GetRequest(self, request: coordinator_pb2.GetRequestRequest, context: grpc.ServicerContext) -> Any:
        def run(peer: Peer) -> coordinator_pb2.SigningRequest:
            check_id("request_id", request.request_id)
            return self._view(readable(peer, self.service.get_request(request.request_id)))

        return self._call(context, READERS, run, request_id=request.request_id)

    def ListRequests(self, request: coordinator_pb2.ListRequestsRequest, context: grpc.ServicerContext) -> Any:
        def run(peer: Peer) -> coordinator_pb2.ListRequestsResponse:
            check_id("key_id", request.key_id)
            check_text("state", request.state, limits.MAX_WORD)
            state = typed_state(request.state, request.request_state)
            if state and state not in STATES:  # else an empty list, as if none matched
                raise InvalidRequest(f"state: unknown state {state!r}; one of {', '.join(STATES)}")
            after, size = page_after(request.page_token), page_size(request.page_size or request.limit)
            rows = self.service.store.list_requests(
                key_id=request.key_id, state=state, limit=size + 1, after=after, initiators=initiators_for(peer)
            )
            return list_page(rows, size, view=self._view)

        return self._call(context, READERS, run)

    def Watch(
        self, request: coordinator_pb2.GetRequestRequest, context: grpc.ServicerContext
    ) -> Iterator[coordinator_pb2.SigningRequest]:
        def run(peer: Peer) -> Iterator[RequestRecord]:
            check_id("request_id", request.request_id)
            readable(peer, self.service.get_request(request.request_id))
            return self.service.watch(request.request_id, poll=self.watch_poll)

        stream = self._call(context, READERS, run, request_id=request.request_id)
        yield from self._stream(context, stream, self._view, request_id=request.request_id)

    def ApproveRequest(self, request: coordinator_pb2.ApproveRequestRequest, context: grpc.ServicerContext) -> Any:
        def run(peer: Peer) -> RequestRecord:
            check_id("request_id", request.request_id)
            check_bytes("approval", bytes(request.approval), limits.MAX_APPROVAL)
            return self.service.approve(request.request_id, bytes(request.approval), officer=peer.name)

        row = self._call(context, OFFICERS, run, request_id=request.request_id)
        return self._finished(context, row)

    def RejectRequest(self, request: coordinator_pb2.RejectRequestRequest, context: grpc.ServicerContext) -> Any:
        def run(peer: Peer) -> RequestRecord:
            check_id("request_id", request.request_id)
            check_id("officer_id", request.officer_id)
            check_bytes("signature", bytes(request.signature), limits.MAX_SIGNATURE)
            check_text("reason", request.reason, limits.MAX_REASON)
            return self.service.reject(
                request.request_id, request.officer_id, bytes(request.signature), request.reason, officer=peer.name
            )

        row = self._call(context, OFFICERS, run, request_id=request.request_id)
        return self._view(row)

    def Freeze(self, request: coordinator_pb2.FreezeOrderRequest, context: grpc.ServicerContext) -> Any:
        def run(peer: Peer) -> coordinator_pb2.GovernanceStatus:
            order = bytes(request.order)
            self._refuse_oversize(FREEZE, "freeze_refused", peer.name, "order", order, limits.MAX_ORDER)
            return governance_to_proto(self.service.freeze(order, officer=peer.name))

        return self._call(context, OFFICERS, run)

    def Unfreeze(self, request: coordinator_pb2.FreezeOrderRequest, context: grpc.ServicerContext) -> Any:
        def run(peer: Peer) -> coordinator_pb2.GovernanceStatus:
            order = bytes(request.order)
            self._refuse_oversize(FREEZE, "unfreeze_refused", peer.name, "order", order, limits.MAX_ORDER)
            return governance_to_proto(self.service.unfreeze(order, officer=peer.name))

        return self._call(context, OFFICERS, run)

    def GetGovernance(self, request: coordinator_pb2.GetGovernanceRequest, context: grpc.ServicerContext) -> Any:
        return self._call(context, READERS, lambda _: governance_to_proto(self.service.get_governance()))

    def ProposeChange(self, request: coordinator_pb2.ProposeChangeRequest, context: grpc.ServicerContext) -> Any:
        def run(peer: Peer) -> coordinator_pb2.GovernanceStatus:
            check_text("kind", request.kind, limits.MAX_WORD)
            self._refuse_oversize(
                POLICY, "change_refused", peer.name, "change", request.change_json, limits.MAX_CHANGE_JSON
            )
            return governance_to_proto(self.service.propose_change(request.kind, request.change_json, admin=peer.name))

        return self._call(context, ADMINS, run)

    def ExportAudit(
        self, request: coordinator_pb2.ExportAuditRequest, context: grpc.ServicerContext
    ) -> Iterator[coordinator_pb2.AuditLine]:
        def run(_: Peer) -> list[str]:
            if request.since_seq > limits.MAX_SEQ:
                raise InvalidRequest(f"since_seq: {request.since_seq} exceeds the limit of {limits.MAX_SEQ}")
            return self.service.export_audit(request.since_seq)

        lines = self._call(context, AUDITORS, run)
        yield from self._stream(context, lines, lambda line: coordinator_pb2.AuditLine(json=line))

    def AttestReport(self, request: coordinator_pb2.AttestReportRequest, context: grpc.ServicerContext) -> Any:
        def run(peer: Peer) -> coordinator_pb2.ReportAttestation:
            check_bytes("report_digest", bytes(request.report_digest), limits.MAX_SIGNATURE)
            check_text("kind", request.kind, limits.MAX_WORD)
            a = self.service.attest_report(bytes(request.report_digest), request.kind, actor=peer.name)
            return coordinator_pb2.ReportAttestation(
                signature=a.signature, audit_seq=a.audit_seq, audit_hash=a.audit_hash, audit_public_key=a.public_key
            )

        return self._call(context, KEY_ADMINS, run)

    def ReportBalance(self, request: coordinator_pb2.ReportBalanceRequest, context: grpc.ServicerContext) -> Any:
        def run(peer: Peer) -> coordinator_pb2.ReportBalanceResponse:
            for field in ("address", "amount"):
                check_id(field, getattr(request, field))
            check_text("asset", request.asset, limits.MAX_WORD)
            if not request.HasField("reported_at"):
                raise InvalidRequest("reported_at is required")
            out = self.service.sweeps.report(
                chain_id=request.chain_id,
                address=request.address,
                asset=request.asset,
                amount=base_units("amount", request.amount),
                next_nonce=request.next_nonce,
                reported_at=request.reported_at.ToNanoseconds() / 1e9,
                reporter=peer.name,
            )
            sweep = None if out.request is None else self._view(out.request)
            return coordinator_pb2.ReportBalanceResponse(action=out.action, detail=out.detail, sweep=sweep)

        return self._call(context, SUBMITTERS, run)

    def ReportUtxos(self, request: coordinator_pb2.ReportUtxosRequest, context: grpc.ServicerContext) -> Any:
        def run(peer: Peer) -> coordinator_pb2.ReportBalanceResponse:
            check_id("network", request.network)
            check_id("address", request.address)
            if not request.HasField("reported_at"):
                raise InvalidRequest("reported_at is required")
            out = self.service.btc_sweeps.report(
                network=request.network,
                address=request.address,
                utxos=[Utxo(bytes(u.txid), u.vout, u.amount_sat, bytes(u.prev_tx)) for u in request.utxos],
                reported_at=request.reported_at.ToNanoseconds() / 1e9,
                reporter=peer.name,
            )
            sweep = None if out.request is None else self._view(out.request)
            return coordinator_pb2.ReportBalanceResponse(action=out.action, detail=out.detail, sweep=sweep)

        return self._call(context, SUBMITTERS, run)

    def GetRequestTrail(self, request: coordinator_pb2.GetRequestRequest, context: grpc.ServicerContext) -> Any:
        return self._call(context, REVIEWERS, lambda _: request_trail(self.service, request.request_id))


def create_server(
    service: CoordinatorService,
    listen: str,
    tls: TlsFiles,
    *,
    max_workers: int = 32,
    health_servicer: health.HealthServicer | None = None,
) -> tuple[grpc.Server, int]:
    """A bound, not yet started server with mTLS, health and reflection; returns it and its port."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="coordinator-rpc"),
        options=limits.server_options(limits.COORDINATOR_MAX_SEND, limits.COORDINATOR_MAX_RECEIVE),
    )
    coordinator_pb2_grpc.add_CoordinatorServicer_to_server(CoordinatorServicer(service), server)
    hs = health_servicer or health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(hs, server)
    hs.set("", health_pb2.HealthCheckResponse.SERVING)
    hs.set(SERVICE_NAME, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection((SERVICE_NAME, reflection.SERVICE_NAME, health.SERVICE_NAME), server)
    return server, bind_secure(server, listen, tls)


def serve(config_path: Path) -> None:
    """Run the coordinator until SIGTERM/SIGINT, then stop gracefully."""
    config = load_config("coordinator", CoordinatorConfig.load, config_path)
    configure_logging("coordinator")
    try:
        service, clients = build_service(config)
    except StoreError as exc:  # a corrupt database is restored by the operator, never served (exit 1)
        sys.exit(f"coordinator: refusing to start: {exc}")
    hs = health.HealthServicer()
    try:
        server, port = create_server(service, config.listen, config.tls, health_servicer=hs)
    except PortInUse as exc:
        service.close()
        service.store.close()
        refuse_to_start("coordinator", str(exc))
    server.start()
    log.info(
        "coordinator_listening",
        port=port,
        signers=sorted(config.signers),
        audit_public_key=str(audit_public_key_path(config.db)),
    )
    stop = threading.Event()
    ready = Readiness(hs, ("", SERVICE_NAME), service.list_keys, sorted(config.signers), service.live_signers)
    threading.Thread(target=ready.watch, args=(stop,), name="readiness", daemon=True).start()
    stop_metrics = start_metrics("coordinator", config.metrics_listen, CoordinatorCollector(service, ready))
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    log.info("coordinator_stopping")
    stop_metrics()
    hs.enter_graceful_shutdown()
    server.stop(grace=10).wait()
    service.close()
    service.store.close()
    for c in clients:
        c.close()


def main(argv: list[str] | None = None) -> None:
    """Entry point of `python -m coordinator`."""
    ap = argparse.ArgumentParser(prog="coordinator", description="Run the threshold-ECDSA coordinator")
    ap.add_argument("--config", type=Path, required=True)
    args = ap.parse_args(argv)
    serve(args.config)
