"""Clients of the signer nodes: one interface, a gRPC implementation with mTLS and deadlines,
and an in-process one over a `SignerNode` (tests, benchmarks). Both speak through
`signer.node.wire`: its conversions and its one error table (`status_of`), so an in-process
signer fails exactly as a remote one does.

Every failure a signer reports becomes one of four exceptions naming the party:
`SignerAborted` (ABORTED, with the blames from the `tss-blame-bin` trailer),
`SignerUnavailable` (UNAVAILABLE or DEADLINE_EXCEEDED: down, unreachable or too slow),
`SignerRejected` (INVALID_ARGUMENT, FAILED_PRECONDITION, PERMISSION_DENIED, ...: it refused, e.g.
its own policy check did not authorize a release; the message carries its reason),
`SignerInternal` (INTERNAL or anything unexpected).
`degraded` tells a fault of the signer (down, slow, internal error, its store failed) from a
refusal of the request: the coordinator routes around the first and fails the request on the second.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tsscustody.v1 import signer_pb2, signer_pb2_grpc

from signer.node import limits, wire
from signer.node.btc_release import partial_sign_body
from signer.node.governance import GovernanceView
from signer.node.key_reshare import ReshareStart
from signer.node.node import PartialSig
from signer.node.sessions import Envelope, StepResult
from signer.node.store import StoreError
from signer.node.tls import TlsFiles, channel_credentials
from signer.node.wire import SignBody
from signer.policy import Release
from signer.tss.errors import Blame

R = TypeVar("R")


class SignerError(Exception):
    """A signer call failed; `party` names the signer."""

    def __init__(self, party: int, message: str) -> None:
        super().__init__(f"signer {party}: {message}")
        self.party = party
        self.message = message


class SignerAborted(SignerError):
    """The signer's protocol session aborted; `blames` is what it proved."""

    def __init__(self, party: int, message: str, blames: Sequence[Blame]) -> None:
        super().__init__(party, message)
        self.blames: tuple[Blame, ...] = tuple(blames)


class SignerUnavailable(SignerError):
    """The signer did not answer in time (down, unreachable, deadline exceeded)."""


class SignerRejected(SignerError):
    """The signer refused the call (bad argument, precondition, permission); `reason` is the policy
    refusal's stable reason when the signer's own check refused (else empty)."""

    def __init__(self, party: int, message: str, reason: str = "") -> None:
        super().__init__(party, message)
        self.reason = reason


class SignerInternal(SignerError):
    """The signer failed on its own side."""


@dataclass(frozen=True, slots=True)
class SessionParams:
    """What StartSession needs besides the session id, protocol and parties."""

    key_id: str
    threshold: int = 0
    level: str = ""
    path: tuple[int, ...] = ()
    reshare: ReshareStart | None = None  # a reshare's S, P', t' and old committee
    key_order: bytes = b""  # refresh / reshare: the admin quorum's signed KeyOrder (empty: scheduled refresh)


@dataclass(frozen=True, slots=True)
class NodeStatus:
    """What a signer reports about itself."""

    party: int
    key_ids: tuple[str, ...]
    presignatures: dict[str, int]
    boot_id: bytes = b""
    ledger_saturated_until: int = 0


class SignerClient(Protocol):
    """The calls the coordinator makes on one signer."""

    @property
    def party(self) -> int:
        """The signer's party index."""
        ...

    def start_session(
        self, session_id: bytes, protocol: str, parties: tuple[int, ...], params: SessionParams
    ) -> StepResult:
        """StartSession: the first outgoing envelopes."""
        ...

    def deliver(
        self, session_id: bytes, envelopes: Sequence[Envelope], attestations: Sequence[bytes] = ()
    ) -> StepResult:
        """Deliver one round's envelopes (the first of a presign with every party's attestation)."""
        ...

    def session_evidence(self, session_id: bytes, sender: int, round_name: str) -> list[Envelope]:
        """SessionEvidence: the signed broadcasts the signer holds from `sender` (every round if empty)."""
        ...

    def partial_sign(
        self, key_id: str, presignature_id: bytes, tx: SignBody, release: Release, attestations: Sequence[bytes] = ()
    ) -> PartialSig:
        """Consume a presignature and return σ_i over the digest the signer computes from `tx` (or
        one input of a PSBT), once it authorized the release itself (`attestations`: the others' latest)."""
        ...

    def install_change(self, kind: str, change_json: str) -> GovernanceView:
        """InstallChange: an admin-quorum-signed policy or registry change (`PolicyChange` JSON)."""
        ...

    def apply_freeze_order(self, order: bytes, unfreeze: bool) -> GovernanceView:
        """ApplyFreezeOrder: a signed freeze order, or a quorum-signed unfreeze order."""
        ...

    def commit_epoch(self, key_id: str, epoch: int, confirmations: Sequence[bytes]) -> tuple[int, bool]:
        """CommitEpoch: adopt a refreshed epoch given every party's confirmation; (active epoch, adopted)."""
        ...

    def key_committee(self, key_id: str) -> bytes:
        """KeyCommittee: the public data of the signer's active share of a key (Committee encoding)."""
        ...

    def status(self) -> NodeStatus:
        """NodeStatus."""
        ...

    def healthy(self) -> bool:
        """True if the signer answers its health check now."""
        ...


def degraded(error: SignerError) -> bool:
    """The signer failed on its own side (unreachable, too slow, internal error, broken store),
    not because it refused this request: another signer set may succeed."""
    if isinstance(error, SignerRejected):
        return error.reason == wire.STORE_FAILED
    return isinstance(error, SignerUnavailable | SignerInternal)


def error_from_status(party: int, status: wire.Status) -> SignerError:
    """The client-side error for a failed call's status (the signer's table is `wire.status_of`)."""
    code = status.code
    if code == grpc.StatusCode.ABORTED:
        return SignerAborted(party, status.details, status.blames)
    if code in wire.UNAVAILABLE_CODES:
        return SignerUnavailable(party, f"{code.name}: {status.details}")
    if code in wire.REJECTED_CODES:
        return SignerRejected(party, f"{code.name}: {status.details}", status.reason)
    return SignerInternal(party, f"{code.name}: {status.details}")


def error_from_rpc(party: int, exc: grpc.RpcError) -> SignerError:
    """The domain error for a failed gRPC call (blames and reason read from its trailers)."""
    return error_from_status(party, wire.status_from_rpc(exc))


ROUND_TIMEOUTS = {"keygen": 30.0, "presign": 30.0, "reshare": 30.0}
"""Deadline of one StartSession/Deliver round by protocol (seconds): a round of these takes seconds,
so a stalled signer (SIGSTOP, a hung disk) is given up on early and the request tries another
set. Aux info and refresh may generate safe primes in a round: they get the full session timeout."""


class GrpcSignerClient:
    """A signer over gRPC with mutual TLS; every call carries a deadline (per round: ROUND_TIMEOUTS)."""

    def __init__(
        self,
        party: int,
        address: str,
        tls: TlsFiles,
        *,
        session_timeout: float = 120.0,
        sign_timeout: float = 10.0,
        health_timeout: float = 1.0,
    ) -> None:
        self._party = party
        self.address = address
        self._channel = grpc.secure_channel(
            address,
            channel_credentials(tls),
            options=[
                *limits.channel_options(limits.SIGNER_MAX_MESSAGE, limits.SIGNER_MAX_MESSAGE),
                ("grpc.initial_reconnect_backoff_ms", 200),
                ("grpc.max_reconnect_backoff_ms", 2000),
                ("grpc.client_idle_timeout_ms", 2**31 - 1),  # never idle: no handshake after a quiet 30 min
            ],
        )
        self._stub = signer_pb2_grpc.SignerStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)
        self._protocols: OrderedDict[bytes, str] = OrderedDict()  # session id -> protocol, for Deliver's deadline
        self._protocols_lock = threading.Lock()
        self.session_timeout = session_timeout
        self.sign_timeout = sign_timeout
        self.health_timeout = health_timeout

    @property
    def party(self) -> int:
        """The signer's party index."""
        return self._party

    def close(self) -> None:
        """Close the channel."""
        self._channel.close()

    def _call(self, fn: Callable[[], R]) -> R:
        try:
            return fn()
        except grpc.RpcError as exc:
            raise error_from_rpc(self._party, exc) from None

    def round_timeout(self, session_id: bytes, protocol: str = "") -> float:
        """The deadline of one round of a session (its protocol remembered from StartSession)."""
        with self._protocols_lock:
            self._protocols[session_id] = protocol = protocol or self._protocols.get(session_id, "")
            while len(self._protocols) > 4096:  # sessions the relay abandoned
                self._protocols.popitem(last=False)
        return min(ROUND_TIMEOUTS.get(protocol, self.session_timeout), self.session_timeout)

    def _session_step(self, session_id: bytes, fn: Callable[[], signer_pb2.SessionStep]) -> StepResult:
        step = None
        try:
            step = self._call(lambda: wire.step_from_proto(fn()))
            return step
        finally:
            if step is None or step.done:  # the session is over here: forget its protocol
                with self._protocols_lock:
                    self._protocols.pop(session_id, None)

    def start_session(
        self, session_id: bytes, protocol: str, parties: tuple[int, ...], params: SessionParams
    ) -> StepResult:
        """StartSession."""
        req = signer_pb2.StartSessionRequest(
            session_id=session_id,
            protocol=protocol,
            key_id=params.key_id,
            parties=list(parties),
            threshold=params.threshold,
            level=params.level,
            path=list(params.path),
            key_order=params.key_order,
        )
        if (r := params.reshare) is not None:
            req.dealers[:], req.new_parties[:], req.committee = r.dealers, r.new_parties, r.committee
        timeout = self.round_timeout(session_id, protocol)
        return self._session_step(session_id, lambda: self._stub.StartSession(req, timeout=timeout))

    def deliver(
        self, session_id: bytes, envelopes: Sequence[Envelope], attestations: Sequence[bytes] = ()
    ) -> StepResult:
        """Deliver."""
        req = signer_pb2.DeliverRequest(
            session_id=session_id,
            envelopes=[wire.envelope_to_proto(e) for e in envelopes],
            attestations=list(attestations),
        )
        timeout = self.round_timeout(session_id)
        return self._session_step(session_id, lambda: self._stub.Deliver(req, timeout=timeout))

    def session_evidence(self, session_id: bytes, sender: int, round_name: str) -> list[Envelope]:
        """SessionEvidence."""
        req = signer_pb2.SessionEvidenceRequest(session_id=session_id, sender=sender, round=round_name)
        resp = self._call(lambda: self._stub.SessionEvidence(req, timeout=self.session_timeout))
        return wire.envelopes_from_proto(resp.envelopes)

    def partial_sign(
        self, key_id: str, presignature_id: bytes, tx: SignBody, release: Release, attestations: Sequence[bytes] = ()
    ) -> PartialSig:
        """PartialSign (short deadline: one scalar multiplication and the signer's own policy check)."""
        req = wire.partial_sign_request(key_id, presignature_id, tx, release, attestations)
        resp = self._call(lambda: self._stub.PartialSign(req, timeout=self.sign_timeout))
        return wire.partial_sig_from_proto(resp)

    def install_change(self, kind: str, change_json: str) -> GovernanceView:
        """InstallChange."""
        req = signer_pb2.InstallChangeRequest(kind=kind, change_json=change_json)
        m = self._call(lambda: self._stub.InstallChange(req, timeout=self.sign_timeout))
        return wire.governance_from_proto(m)

    def apply_freeze_order(self, order: bytes, unfreeze: bool) -> GovernanceView:
        """ApplyFreezeOrder."""
        req = signer_pb2.ApplyFreezeOrderRequest(order=order, unfreeze=unfreeze)
        m = self._call(lambda: self._stub.ApplyFreezeOrder(req, timeout=self.sign_timeout))
        return wire.governance_from_proto(m)

    def commit_epoch(self, key_id: str, epoch: int, confirmations: Sequence[bytes]) -> tuple[int, bool]:
        """CommitEpoch."""
        req = signer_pb2.CommitEpochRequest(key_id=key_id, epoch=epoch, confirmations=list(confirmations))
        resp = self._call(lambda: self._stub.CommitEpoch(req, timeout=self.sign_timeout))
        return resp.epoch, resp.adopted

    def key_committee(self, key_id: str) -> bytes:
        """KeyCommittee."""
        req = signer_pb2.KeyCommitteeRequest(key_id=key_id)
        return bytes(self._call(lambda: self._stub.KeyCommittee(req, timeout=self.sign_timeout)).committee)

    def status(self) -> NodeStatus:
        """NodeStatus."""
        req = signer_pb2.NodeStatusRequest()
        r = self._call(lambda: self._stub.NodeStatus(req, timeout=self.health_timeout * 5))
        return NodeStatus(r.party, tuple(r.key_ids), dict(r.presignatures), bytes(r.boot_id), r.ledger_saturated_until)

    def healthy(self) -> bool:
        """The gRPC health service reports SERVING within the health deadline."""
        try:
            # wait_for_ready: a channel still backing off from a restarted signer reconnects now.
            r = self._health.Check(
                health_pb2.HealthCheckRequest(service=""), timeout=self.health_timeout, wait_for_ready=True
            )
        except grpc.RpcError:
            return False
        return bool(r.status == health_pb2.HealthCheckResponse.SERVING)


class LocalSignerClient:
    """A signer in this process: calls a `SignerNode` (or anything with its methods) directly.

    The node's exceptions go through the servicer's table (`wire.status_of`), so business logic
    and tests see the same errors as over the network. `down` simulates an unreachable signer.
    """

    def __init__(self, node: Any) -> None:
        self.node = node
        self.down = False

    @property
    def party(self) -> int:
        """The signer's party index."""
        return int(self.node.party)

    def _call(self, fn: Callable[[], R]) -> R:
        if self.down:
            raise SignerUnavailable(self.party, "UNAVAILABLE: signer is down")
        try:
            return fn()
        except Exception as exc:
            status = wire.status_of(exc)
            if status is None:
                raise
            raise error_from_status(self.party, status) from None

    def start_session(
        self, session_id: bytes, protocol: str, parties: tuple[int, ...], params: SessionParams
    ) -> StepResult:
        """StartSession (a reshare's parameters only to a reshare: test doubles need not know them)."""
        extra: dict[str, object] = {} if params.reshare is None else {"reshare": params.reshare}
        if params.key_order:
            extra["key_order"] = params.key_order
        step: StepResult = self._call(
            lambda: self.node.start_session(
                session_id,
                protocol,
                params.key_id,
                parties,
                threshold=params.threshold,
                level=params.level,
                path=params.path,
                **extra,
            )
        )
        return step

    def deliver(
        self, session_id: bytes, envelopes: Sequence[Envelope], attestations: Sequence[bytes] = ()
    ) -> StepResult:
        """Deliver."""
        if attestations:
            return self._call(lambda: self.node.deliver(session_id, list(envelopes), list(attestations)))  # type: ignore[no-any-return]
        step: StepResult = self._call(lambda: self.node.deliver(session_id, list(envelopes)))
        return step

    def session_evidence(self, session_id: bytes, sender: int, round_name: str) -> list[Envelope]:
        """SessionEvidence."""
        held: list[Envelope] = self._call(lambda: self.node.session_evidence(session_id, sender, round_name))
        return held

    def partial_sign(
        self, key_id: str, presignature_id: bytes, tx: SignBody, release: Release, attestations: Sequence[bytes] = ()
    ) -> PartialSig:
        """PartialSign."""
        return self._call(lambda: partial_sign_body(self.node, key_id, presignature_id, tx, release, attestations))

    def install_change(self, kind: str, change_json: str) -> GovernanceView:
        """InstallChange."""
        view: GovernanceView = self._call(lambda: self.node.install_change(kind, change_json))
        return view

    def apply_freeze_order(self, order: bytes, unfreeze: bool) -> GovernanceView:
        """ApplyFreezeOrder."""
        view: GovernanceView = self._call(lambda: self.node.apply_freeze_order(order, unfreeze))
        return view

    def commit_epoch(self, key_id: str, epoch: int, confirmations: Sequence[bytes]) -> tuple[int, bool]:
        """CommitEpoch."""
        out: tuple[int, bool] = self._call(lambda: self.node.commit_epoch(key_id, epoch, list(confirmations)))
        return out

    def key_committee(self, key_id: str) -> bytes:
        """KeyCommittee."""
        return bytes(self._call(lambda: self.node.key_committee(key_id)))

    def status(self) -> NodeStatus:
        """NodeStatus."""
        keys = self._call(lambda: tuple(self.node.key_ids()))
        return NodeStatus(
            self.party,
            keys,
            {k: len(self.node.presignature_ids(k)) for k in keys},
            bytes(getattr(self.node, "boot_id", b"")),
            int(getattr(getattr(self.node, "versions", None), "saturated_until", 0)),
        )

    def healthy(self) -> bool:
        """Up unless marked down or its store fails the node's probe (as the gRPC health says)."""
        if self.down:
            return False
        try:
            check = getattr(self.node, "check_store", None)
            if check is not None:
                check()
        except StoreError:
            return False
        return True
