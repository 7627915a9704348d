"""The signer's gRPC server: a thin servicer over `SignerNode`, mutual TLS, health, reflection.

Protobuf <-> domain conversions and the status code of every domain error are in `wire` (one
table, shared with the signer's clients): INVALID_ARGUMENT (malformed call; an unknown
presignature also carries `presignature_unknown` in the `tss-policy-reason` trailer),
FAILED_PRECONDITION (the node's own governance refused, the stable reason in that trailer; also
store errors), ABORTED (protocol abort, blames in `tss-blame-bin`), INTERNAL; PERMISSION_DENIED
(caller's role) comes from `tls.require_role`.

Roles: only the coordinator runs sessions and releases partial signatures; ApplyFreezeOrder also
accepts officers and InstallChange and CommitEpoch admins, who deliver their signed orders,
changes and the parties' epoch confirmations directly (the signatures are the authority).
ExportBackup only admins (backup_export.py: the kit goes to the node's pinned recovery key).

Every field is size-checked (`limits`) before the node sees it: INVALID_ARGUMENT naming the field.

Run: `python -m signer.node --config node.json`.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent import futures
from pathlib import Path
from typing import Any, TypeVar

import grpc
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from tsscustody.v1 import signer_pb2, signer_pb2_grpc

from signer.tss.errors import InternalError, InvalidInput, ProtocolAbort

from . import limits, wire, wire_tx
from .backup_export import export_backup
from .btc_release import partial_sign_body
from .config import NodeConfig
from .key_reshare import ReshareStart
from .limits import check_bytes, check_count, check_text
from .logging import configure_logging
from .metrics import SignerCollector, SignerInstruments, start_metrics
from .node import SignerNode
from .protocol_work import ProtocolWork, WorkerLost
from .revocation import refuse_revoked_caller
from .startup import load_config, refuse_to_start
from .store import StoreError
from .tls import PortInUse, bind_secure, peer_of, require_role

log = structlog.get_logger("signer")
R = TypeVar("R")


def _check_start(m: signer_pb2.StartSessionRequest) -> None:
    check_bytes("session_id", bytes(m.session_id), limits.MAX_SESSION_ID)
    check_text("protocol", m.protocol, limits.MAX_WORD)
    check_text("key_id", m.key_id, limits.MAX_ID)
    check_count("parties", m.parties, limits.MAX_PARTIES)
    check_text("level", m.level, limits.MAX_WORD)
    check_count("path", m.path, limits.MAX_PATH)
    check_count("dealers", m.dealers, limits.MAX_PARTIES)
    check_count("new_parties", m.new_parties, limits.MAX_PARTIES)
    check_bytes("committee", bytes(m.committee), limits.MAX_ORDER)  # 33 bytes and an index a party
    check_bytes("key_order", bytes(m.key_order), limits.MAX_ORDER)


def _reshare_start(m: signer_pb2.StartSessionRequest) -> ReshareStart | None:
    if m.protocol != "reshare":
        return None
    return ReshareStart(tuple(m.dealers), tuple(m.new_parties), m.threshold, bytes(m.committee))


def _check_deliver(m: signer_pb2.DeliverRequest) -> None:
    check_bytes("session_id", bytes(m.session_id), limits.MAX_SESSION_ID)
    check_count("envelopes", m.envelopes, limits.MAX_ENVELOPES)
    for e in m.envelopes:
        check_bytes("envelopes.session_id", bytes(e.session_id), limits.MAX_SESSION_ID)
        check_text("envelopes.protocol", e.protocol, limits.MAX_WORD)
        check_text("envelopes.round", e.round, limits.MAX_WORD)
        check_bytes("envelopes.payload", bytes(e.payload), limits.MAX_ENVELOPE_PAYLOAD)
        check_bytes("envelopes.signature", bytes(e.signature), limits.MAX_SIGNATURE)
    _check_attestations(m.attestations)


def _check_attestations(attestations: Sequence[bytes]) -> None:
    check_count("attestations", attestations, limits.MAX_PARTIES)
    for a in attestations:
        check_bytes("attestations[]", bytes(a), limits.MAX_ATTESTATION)


def _check_partial_sign(m: signer_pb2.PartialSignRequest) -> None:
    check_text("key_id", m.key_id, limits.MAX_ID)
    check_bytes("presignature_id", bytes(m.presignature_id), limits.MAX_HASH)
    if [m.HasField("eth"), bool(m.psbt), bool(m.message_standard)].count(True) != 1:
        raise InvalidInput("a partial signature is of an eth transaction, a psbt or a message: exactly one of them")
    if m.message_body and not m.message_standard:
        raise InvalidInput("message_body without a message_standard")
    wire_tx.check_eth(m.eth)
    check_bytes("psbt", bytes(m.psbt), limits.MAX_PSBT)
    check_text("message_standard", m.message_standard, limits.MAX_WORD)
    check_bytes("message_body", bytes(m.message_body), limits.MAX_MESSAGE)
    check_text("request_id", m.request_id, limits.MAX_ID)
    check_count("approvals", m.approvals, limits.MAX_APPROVALS)
    for a in m.approvals:
        check_bytes("approvals[]", bytes(a), limits.MAX_APPROVAL)
    check_text("initiator", m.initiator, limits.MAX_ID)
    check_count("path", m.path, limits.MAX_PATH)
    check_bytes("policy_hash", bytes(m.policy_hash), limits.MAX_HASH)
    check_text("kind", m.kind, limits.MAX_WORD)
    _check_attestations(m.attestations)


# The TLS role only gates who may call; the signatures on the order or change are the authority,
# checked by the node itself. Officers and admins may call directly so that a coordinator cannot
# withhold a freeze, an officer removal or a tightening.
COORDINATOR = ("coordinator",)
FREEZE_CALLERS = ("coordinator", "officer")
CHANGE_CALLERS = ("coordinator", "admin")
EPOCH_CALLERS = ("coordinator", "admin")
# Backups: admins only, never the coordinator (the kit goes to the pinned recovery key regardless).
BACKUP_CALLERS = ("admin",)


def _log_failure(exc: Exception) -> None:
    """Log what the caller is not told (a refusal is logged with its reason where it was decided)."""
    if isinstance(exc, ProtocolAbort):
        log.warning("protocol_abort", blames=[str(b) for b in exc.blames])
    elif isinstance(exc, StoreError):
        log.error("store_error", error=str(exc))
    elif isinstance(exc, InternalError):
        log.error("internal_error", error=str(exc))
    elif isinstance(exc, WorkerLost):
        log.error("protocol_worker_lost", error=str(exc))


class StoreHealth:
    """The gRPC health status follows the store: NOT_SERVING while `node.check_store()` fails (a
    read-only or full disk, a corrupt record), so the coordinator routes around this signer."""

    SERVICES = ("", "tsscustody.v1.Signer")

    def __init__(self, node: SignerNode, servicer: health.HealthServicer) -> None:
        self.node = node
        self.servicer = servicer
        self.error = ""
        self._lock = threading.Lock()

    def check(self) -> bool:
        """Probe the store now and publish the result; True if it works."""
        try:
            self.node.check_store()
        except StoreError as exc:
            self.failed(str(exc))
            return False
        with self._lock:
            was, self.error = self.error, ""
        if was:
            log.warning("store_recovered", party=self.node.party)
            self._set(health_pb2.HealthCheckResponse.SERVING)
        return True

    def failed(self, error: str) -> None:
        """A call or a probe found the store broken: NOT_SERVING until a probe passes."""
        with self._lock:
            was, self.error = self.error, error
        if not was:
            log.error("store_unhealthy", party=self.node.party, error=error)
            self._set(health_pb2.HealthCheckResponse.NOT_SERVING)

    def watch(self, stop: threading.Event, interval: float = 2.0) -> None:
        """Probe every `interval` seconds until `stop` is set (run it in a daemon thread)."""
        while not stop.wait(interval):
            self.check()

    def _set(self, status: Any) -> None:
        for name in self.SERVICES:
            self.servicer.set(name, status)


class SignerServicer(signer_pb2_grpc.SignerServicer):
    """Translates protobuf to `SignerNode` calls and domain errors to status codes."""

    def __init__(
        self, node: SignerNode, store_health: StoreHealth | None = None, instruments: SignerInstruments | None = None
    ) -> None:
        self.node = node
        self.store_health = store_health
        self.instruments = instruments if instruments is not None else SignerInstruments(node.party)

    def _call(self, context: grpc.ServicerContext, fn: Callable[[], R], roles: tuple[str, ...] = COORDINATOR) -> R:
        refuse_revoked_caller(context, self.node.revocations(), f"signer-{self.node.party}")
        require_role(context, *roles)
        try:
            return fn()
        except Exception as exc:
            status = wire.status_of(exc)
            if status is None:
                raise
            _log_failure(exc)
            if isinstance(exc, StoreError) and self.store_health is not None:
                self.store_health.failed(str(exc))
            if status.trailers():
                context.set_trailing_metadata(status.trailers())
            context.abort(status.code, status.details)
        raise AssertionError("unreachable")

    def StartSession(self, request: signer_pb2.StartSessionRequest, context: grpc.ServicerContext) -> Any:
        def run() -> signer_pb2.SessionStep:
            _check_start(request)
            log.info(
                "session_start", protocol=request.protocol, key_id=request.key_id, session=request.session_id.hex()
            )
            return wire.step_to_proto(
                self.node.start_session(
                    bytes(request.session_id),
                    request.protocol,
                    request.key_id,
                    tuple(request.parties),
                    threshold=request.threshold,
                    level=request.level,
                    path=tuple(request.path),
                    reshare=_reshare_start(request),
                    key_order=bytes(request.key_order),
                )
            )

        return self._call(context, run)

    def Deliver(self, request: signer_pb2.DeliverRequest, context: grpc.ServicerContext) -> Any:
        def run() -> signer_pb2.SessionStep:
            _check_deliver(request)
            return wire.step_to_proto(
                self.node.deliver(
                    bytes(request.session_id),
                    wire.envelopes_from_proto(request.envelopes),
                    [bytes(a) for a in request.attestations],
                )
            )

        return self._call(context, run)

    def SessionEvidence(self, request: signer_pb2.SessionEvidenceRequest, context: grpc.ServicerContext) -> Any:
        def run() -> signer_pb2.SessionEvidenceResponse:
            held = self.node.session_evidence(bytes(request.session_id), request.sender, request.round)
            return signer_pb2.SessionEvidenceResponse(envelopes=[wire.envelope_to_proto(e) for e in held])

        return self._call(context, run)

    def PartialSign(self, request: signer_pb2.PartialSignRequest, context: grpc.ServicerContext) -> Any:
        def run() -> signer_pb2.PartialSignResponse:
            _check_partial_sign(request)
            started = time.perf_counter()
            p = partial_sign_body(
                self.node,
                request.key_id,
                bytes(request.presignature_id),
                wire.partial_sign_body(request),
                wire.release_from_proto(request),
                [bytes(a) for a in request.attestations],
            )
            self.instruments.partial_sign.observe(time.perf_counter() - started)
            log.info("partial_signature", key_id=request.key_id, digest=p.digest.hex())
            return wire.partial_sig_to_proto(p)

        return self._call(context, run)

    def InstallChange(self, request: signer_pb2.InstallChangeRequest, context: grpc.ServicerContext) -> Any:
        def run() -> signer_pb2.SignerGovernance:
            check_text("kind", request.kind, limits.MAX_WORD)
            check_text("change_json", request.change_json, limits.MAX_CHANGE_JSON)
            return wire.governance_to_proto(self.node.install_change(request.kind, request.change_json))

        return self._call(context, run, CHANGE_CALLERS)

    def ApplyFreezeOrder(self, request: signer_pb2.ApplyFreezeOrderRequest, context: grpc.ServicerContext) -> Any:
        def run() -> signer_pb2.SignerGovernance:
            check_bytes("order", bytes(request.order), limits.MAX_ORDER)
            return wire.governance_to_proto(self.node.apply_freeze_order(bytes(request.order), request.unfreeze))

        return self._call(context, run, FREEZE_CALLERS)

    def CommitEpoch(self, request: signer_pb2.CommitEpochRequest, context: grpc.ServicerContext) -> Any:
        def run() -> signer_pb2.CommitEpochResponse:
            check_text("key_id", request.key_id, limits.MAX_ID)
            _check_attestations(request.confirmations)  # same bound: one short signed record per party
            confirmations = [bytes(c) for c in request.confirmations]
            epoch, adopted = self.node.commit_epoch(request.key_id, request.epoch, confirmations)
            log.info("commit_epoch", key_id=request.key_id, epoch=epoch, adopted=adopted)
            return signer_pb2.CommitEpochResponse(epoch=epoch, adopted=adopted)

        return self._call(context, run, EPOCH_CALLERS)

    def ExportBackup(self, request: signer_pb2.ExportBackupRequest, context: grpc.ServicerContext) -> Any:
        def run() -> signer_pb2.ExportBackupResponse:
            check_text("key_id", request.key_id, limits.MAX_ID)
            check_bytes("recovery_fingerprint", bytes(request.recovery_fingerprint), limits.MAX_HASH)
            out = export_backup(self.node, request.key_id, bytes(request.recovery_fingerprint))
            return signer_pb2.ExportBackupResponse(
                kit=out.kit, recovery_fingerprint=out.recovery_fingerprint, epoch=out.epoch, party=out.party
            )

        peer = peer_of(context)
        log.info("backup_export_requested", key_id=request.key_id[:64], caller=peer.name if peer else "")
        return self._call(context, run, BACKUP_CALLERS)

    def KeyCommittee(self, request: signer_pb2.KeyCommitteeRequest, context: grpc.ServicerContext) -> Any:
        def run() -> signer_pb2.KeyCommitteeResponse:
            check_text("key_id", request.key_id, limits.MAX_ID)
            return signer_pb2.KeyCommitteeResponse(committee=self.node.key_committee(request.key_id))

        return self._call(context, run)

    def NodeStatus(self, request: signer_pb2.NodeStatusRequest, context: grpc.ServicerContext) -> Any:
        def run() -> signer_pb2.NodeStatusResponse:
            keys = self.node.key_ids()
            return signer_pb2.NodeStatusResponse(
                party=self.node.party,
                key_ids=keys,
                presignatures={k: len(self.node.presignature_ids(k)) for k in keys},
                boot_id=self.node.boot_id,
                ledger_saturated_until=self.node.versions.saturated_until,
                attestation=self.node.attest("", b"status").to_bytes(),
            )

        return self._call(context, run)


def create_server(
    node: SignerNode,
    listen: str,
    max_workers: int = 16,
    store_health: StoreHealth | None = None,
    instruments: SignerInstruments | None = None,
) -> tuple[grpc.Server, int]:
    """A bound, not yet started server on `listen` with mTLS; returns it and its port. Its health
    service is `store_health`'s servicer when given (serve() keeps it probing the store); its
    servicer observes into `instruments` (serve() exports them)."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers),
        options=limits.server_options(limits.SIGNER_MAX_MESSAGE, limits.SIGNER_MAX_MESSAGE),
    )
    signer_pb2_grpc.add_SignerServicer_to_server(SignerServicer(node, store_health, instruments), server)
    health_servicer = store_health.servicer if store_health is not None else health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in StoreHealth.SERVICES:
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection(
        (signer_pb2.DESCRIPTOR.services_by_name["Signer"].full_name, reflection.SERVICE_NAME, health.SERVICE_NAME),
        server,
    )
    return server, bind_secure(server, listen, node.config.tls)


def _reload_peers(node: SignerNode, config_path: Path) -> None:
    """SIGHUP: take the peers (and retired parties) of the config file as it is now; a signer added
    or retired by the operator joins or leaves without a restart (coordinator/reshare_ops.py)."""
    try:
        config = NodeConfig.load(config_path)
        if config.party != node.party:
            raise ValueError(f"the config now names party {config.party}, not {node.party}")
    except ValueError as exc:  # a ConfigError, or another party named
        log.error("peers_reload_refused", party=node.party, error=str(exc))
        return
    node.update_peers(config.peers)
    log.info("peers_reloaded", party=node.party, peers=sorted(config.peers), retired=list(config.retired))


def serve(config_path: Path) -> None:
    """Run a signer until SIGTERM/SIGINT, then stop gracefully; SIGHUP reloads its peers."""
    config = load_config("signer", NodeConfig.load, config_path)  # e.g. a retired party: one line
    configure_logging(f"signer-{config.party}")
    try:
        # Rounds in low-priority worker processes (protocol_work.py), started in the background.
        work = ProtocolWork(config.protocol_workers, mode=config.protocol_work)
        node = SignerNode(config, work=work)
    except StoreError as exc:
        # Never serve with a reset or partial state: the operator restores the named file.
        log.error("refusing_to_start", party=config.party, error=str(exc))
        sys.stderr.write(f"signer-{config.party}: refusing to start: {exc}\n")
        raise SystemExit(2) from None
    store_health = StoreHealth(node, health.HealthServicer())
    instruments = SignerInstruments(node.party)
    try:
        server, port = create_server(node, config.listen, store_health=store_health, instruments=instruments)
    except PortInUse as exc:
        node.close()
        refuse_to_start(f"signer-{config.party}", str(exc))
    server.start()
    log.info("signer_listening", party=config.party, port=port)
    work.warm()
    stop_metrics = start_metrics(
        f"signer-{config.party}",
        config.metrics_listen,
        SignerCollector(node, lambda: store_health.error, instruments),
    )
    stop = threading.Event()
    threading.Thread(target=store_health.watch, args=(stop,), name="store-health", daemon=True).start()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    signal.signal(signal.SIGHUP, lambda *_: _reload_peers(node, config_path))
    stop.wait()
    log.info("signer_stopping")
    stop_metrics()
    server.stop(grace=5).wait()
    node.close()


def main(argv: list[str] | None = None) -> None:
    """Entry point of `python -m signer.node`."""
    if getattr(sys.modules.get("__main__"), "__name__", "") == "__mp_main__":
        # A script that calls main() without a __main__ guard, re-imported by multiprocessing's fork
        # server (protocol_work.py): that process is no signer and must not start one.
        return
    ap = argparse.ArgumentParser(prog="signer-node", description="Run a threshold-ECDSA signer node")
    ap.add_argument("--config", type=Path, required=True)
    args = ap.parse_args(argv)
    serve(args.config)


if __name__ == "__main__":
    main()
