"""The signer's gRPC server: a thin servicer over `SignerNode`, mutual TLS, health, reflection.

Status codes: INVALID_ARGUMENT (malformed call: bad ids, transaction; an unknown presignature
also carries `presignature_unknown` in the `tss-policy-reason` trailer),
FAILED_PRECONDITION (the node's own governance refused: details `refused: <reason>: <detail>`
and the stable reason alone in the `tss-policy-reason` trailer; also store errors),
ABORTED (protocol abort, blames in `tss-blame-bin`), PERMISSION_DENIED (caller's role), INTERNAL.

Roles: only the coordinator runs sessions and releases partial signatures; ApplyFreezeOrder also
accepts officers and InstallChange admins, who deliver their signed orders and changes directly.

Every field is size-checked (`limits`) before the node sees it: INVALID_ARGUMENT naming the field.

Run: `python -m signer.node --config node.json`.
"""

from __future__ import annotations

import argparse
import signal
import threading
from collections.abc import Callable, Sequence
from concurrent import futures
from pathlib import Path
from typing import Any, TypeVar

import grpc
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from tsscustody.v1 import common_pb2, signer_pb2, signer_pb2_grpc

from signer.chains.ethereum import Eip1559Tx, TxError
from signer.policy import PolicyError
from signer.tss.errors import DecodeError, InternalError, InvalidInput, ProtocolAbort

from . import blame_codec, limits
from .config import NodeConfig
from .governance import GovernanceView
from .limits import FieldTooLarge, check_bytes, check_count, check_text
from .logging import configure_logging
from .node import PresignatureUnknown, SignerNode
from .sessions import Envelope, StepResult
from .store import StoreError
from .tls import require_role, server_credentials

log = structlog.get_logger("signer")
R = TypeVar("R")
POLICY_REASON_KEY = "tss-policy-reason"
PRESIGNATURE_UNKNOWN = "presignature_unknown"


def check_eth(m: common_pb2.EthTransaction, field: str = "eth") -> None:
    """Size limits of a transaction's fields (its validity is checked by `Eip1559Tx`)."""
    check_text(f"{field}.to", m.to, limits.MAX_ADDRESS)
    for name in ("value", "max_fee_per_gas", "max_priority_fee_per_gas"):
        check_text(f"{field}.{name}", getattr(m, name), limits.MAX_TX_NUMBER)
    check_bytes(f"{field}.data", bytes(m.data), limits.MAX_TX_DATA)


def _check_start(m: signer_pb2.StartSessionRequest) -> None:
    check_bytes("session_id", bytes(m.session_id), limits.MAX_SESSION_ID)
    check_text("protocol", m.protocol, limits.MAX_WORD)
    check_text("key_id", m.key_id, limits.MAX_ID)
    check_count("parties", m.parties, limits.MAX_PARTIES)
    check_text("level", m.level, limits.MAX_WORD)
    check_count("path", m.path, limits.MAX_PATH)


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
    check_eth(m.eth)
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


def tx_from_proto(m: common_pb2.EthTransaction) -> Eip1559Tx:
    """Domain transaction from its protobuf form (decimal strings for 256-bit amounts)."""
    try:
        return Eip1559Tx(
            chain_id=m.chain_id,
            nonce=m.nonce,
            max_priority_fee_per_gas=int(m.max_priority_fee_per_gas or "0"),
            max_fee_per_gas=int(m.max_fee_per_gas or "0"),
            gas_limit=m.gas_limit,
            to=m.to,
            value=int(m.value or "0"),
            data=bytes(m.data),
        )
    except ValueError as exc:
        raise TxError(str(exc)) from None


def _envelope_out(e: Envelope) -> common_pb2.Envelope:
    return common_pb2.Envelope(
        session_id=e.session_id,
        protocol=e.protocol,
        round=e.round,
        sender=e.sender,
        recipient=e.recipient,
        payload=e.payload,
        signature=e.signature,
    )


def _envelope_in(m: common_pb2.Envelope) -> Envelope:
    return Envelope(
        bytes(m.session_id), m.protocol, m.round, m.sender, m.recipient, bytes(m.payload), bytes(m.signature)
    )


def _governance(v: GovernanceView) -> signer_pb2.SignerGovernance:
    return signer_pb2.SignerGovernance(
        policy_version=v.policy_version,
        policy_hash=v.policy_hash,
        registry_version=v.registry_version,
        registry_hash=v.registry_hash,
        frozen_scopes=list(v.frozen_scopes),
    )


def _step(r: StepResult) -> signer_pb2.SessionStep:
    return signer_pb2.SessionStep(
        outgoing=[_envelope_out(e) for e in r.outgoing],
        done=r.done,
        public_output=r.public_output,
        attestation=r.attestation,
    )


class SignerServicer(signer_pb2_grpc.SignerServicer):
    """Translates protobuf to `SignerNode` calls and domain errors to status codes."""

    def __init__(self, node: SignerNode) -> None:
        self.node = node

    def _call(self, context: grpc.ServicerContext, fn: Callable[[], R], roles: tuple[str, ...] = COORDINATOR) -> R:
        require_role(context, *roles)
        try:
            return fn()
        except FieldTooLarge as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except ProtocolAbort as abort:
            log.warning("protocol_abort", blames=[str(b) for b in abort.blames])
            context.set_trailing_metadata(((blame_codec.METADATA_KEY, blame_codec.encode_blames(abort.blames)),))
            context.abort(grpc.StatusCode.ABORTED, f"protocol aborted: {abort}")
        except PolicyError as exc:
            # Logged with its reason where it was decided (node / governance); never secrets.
            context.set_trailing_metadata(((POLICY_REASON_KEY, exc.reason),))
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"refused: {exc}")
        except PresignatureUnknown as exc:
            # A restart (or a restore) emptied the in-memory pool: the coordinator presigns afresh.
            context.set_trailing_metadata(((POLICY_REASON_KEY, PRESIGNATURE_UNKNOWN),))
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except (InvalidInput, DecodeError, TxError) as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except StoreError as exc:
            log.error("store_error", error=str(exc))
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
        except InternalError as exc:
            log.error("internal_error", error=str(exc))
            context.abort(grpc.StatusCode.INTERNAL, "internal error")
        raise AssertionError("unreachable")

    def StartSession(self, request: signer_pb2.StartSessionRequest, context: grpc.ServicerContext) -> Any:
        def run() -> signer_pb2.SessionStep:
            _check_start(request)
            log.info(
                "session_start", protocol=request.protocol, key_id=request.key_id, session=request.session_id.hex()
            )
            return _step(
                self.node.start_session(
                    bytes(request.session_id),
                    request.protocol,
                    request.key_id,
                    tuple(request.parties),
                    threshold=request.threshold,
                    level=request.level,
                    path=tuple(request.path),
                )
            )

        return self._call(context, run)

    def Deliver(self, request: signer_pb2.DeliverRequest, context: grpc.ServicerContext) -> Any:
        def run() -> signer_pb2.SessionStep:
            _check_deliver(request)
            return _step(
                self.node.deliver(
                    bytes(request.session_id),
                    [_envelope_in(e) for e in request.envelopes],
                    [bytes(a) for a in request.attestations],
                )
            )

        return self._call(context, run)

    def SessionEvidence(self, request: signer_pb2.SessionEvidenceRequest, context: grpc.ServicerContext) -> Any:
        def run() -> signer_pb2.SessionEvidenceResponse:
            held = self.node.session_evidence(bytes(request.session_id), request.sender, request.round)
            return signer_pb2.SessionEvidenceResponse(envelopes=[_envelope_out(e) for e in held])

        return self._call(context, run)

    def PartialSign(self, request: signer_pb2.PartialSignRequest, context: grpc.ServicerContext) -> Any:
        def run() -> signer_pb2.PartialSignResponse:
            _check_partial_sign(request)
            p = self.node.partial_sign(
                request.key_id,
                bytes(request.presignature_id).hex(),
                tx_from_proto(request.eth),
                request_id=request.request_id,
                approvals=[bytes(a) for a in request.approvals],
                initiator=request.initiator,
                expires_at=request.expires_at,
                path=tuple(request.path),
                policy_hash=bytes(request.policy_hash),
                kind=request.kind or "withdrawal",
                attestations=[bytes(a) for a in request.attestations],
            )
            log.info("partial_signature", key_id=request.key_id, digest=p.digest.hex())
            return signer_pb2.PartialSignResponse(
                party=p.party, sigma=p.sigma, digest=p.digest, attestation=p.attestation
            )

        return self._call(context, run)

    def InstallChange(self, request: signer_pb2.InstallChangeRequest, context: grpc.ServicerContext) -> Any:
        def run() -> signer_pb2.SignerGovernance:
            check_text("kind", request.kind, limits.MAX_WORD)
            check_text("change_json", request.change_json, limits.MAX_CHANGE_JSON)
            return _governance(self.node.install_change(request.kind, request.change_json))

        return self._call(context, run, CHANGE_CALLERS)

    def ApplyFreezeOrder(self, request: signer_pb2.ApplyFreezeOrderRequest, context: grpc.ServicerContext) -> Any:
        def run() -> signer_pb2.SignerGovernance:
            check_bytes("order", bytes(request.order), limits.MAX_ORDER)
            return _governance(self.node.apply_freeze_order(bytes(request.order), request.unfreeze))

        return self._call(context, run, FREEZE_CALLERS)

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


def create_server(node: SignerNode, listen: str, max_workers: int = 16) -> tuple[grpc.Server, int]:
    """A started-ready (not yet started) server bound to `listen` with mTLS; returns it and its port."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers),
        options=limits.channel_options(limits.SIGNER_MAX_MESSAGE, limits.SIGNER_MAX_MESSAGE),
    )
    signer_pb2_grpc.add_SignerServicer_to_server(SignerServicer(node), server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    health_servicer.set("tsscustody.v1.Signer", health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection(
        (signer_pb2.DESCRIPTOR.services_by_name["Signer"].full_name, reflection.SERVICE_NAME, health.SERVICE_NAME),
        server,
    )
    port = server.add_secure_port(listen, server_credentials(node.config.tls))
    if port == 0:
        raise RuntimeError(f"cannot bind {listen}")
    return server, port


def serve(config_path: Path) -> None:
    """Run a signer until SIGTERM/SIGINT, then stop gracefully."""
    config = NodeConfig.load(config_path)
    configure_logging(f"signer-{config.party}")
    node = SignerNode(config)
    server, port = create_server(node, config.listen)
    server.start()
    log.info("signer_listening", party=config.party, port=port)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    log.info("signer_stopping")
    server.stop(grace=5).wait()
    node.close()


def main(argv: list[str] | None = None) -> None:
    """Entry point of `python -m signer.node`."""
    ap = argparse.ArgumentParser(prog="signer-node", description="Run a threshold-ECDSA signer node")
    ap.add_argument("--config", type=Path, required=True)
    args = ap.parse_args(argv)
    serve(args.config)


if __name__ == "__main__":
    main()
