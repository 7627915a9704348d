"""Recorded protocol sessions across the signers, and key creation (keygen, then aux info).

Every session is a row (started, then ended with its blame or success) and an audit entry. A
session that fails because a signer's governance state is behind gets that signer the governance
log again; an unreachable signer is marked down.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import Executor

import structlog

from signer.chains.ethereum import address_of
from signer.policy import PolicyError
from signer.policy.revocation import Revocations
from signer.tss.encoding import as_bytes, as_int, as_list, as_point, decode
from signer.tss.errors import DecodeError

from . import relay
from .audit import ABORT, KEY, SESSION
from .errors import FailedPrecondition, Internal, InvalidRequest, NotFound, Unavailable, error_from_session
from .instruments import Instruments
from .signer_client import SessionParams, SignerClient
from .signer_health import SignerHealth
from .signer_state import state_parties
from .store import KeyRecord, Store
from .store import NotFound as StoreNotFound
from .trail import AuditTrail

log = structlog.get_logger("coordinator")
LEVELS = ("128", "112")


class Sessions:
    """Runs keygen, aux and presign sessions through the relay, recorded and audited."""

    def __init__(
        self,
        store: Store,
        signers: Mapping[int, SignerClient],
        executor: Executor,
        trail: AuditTrail,
        health: SignerHealth,
        resync: Callable[[set[int]], None],
        random_bytes: Callable[[int], bytes],
        *,
        peers: Mapping[int, bytes] | None = None,
        instruments: Instruments | None = None,
    ) -> None:
        self.store = store
        self.signers = signers
        # Signers' identity keys: the relay verifies every envelope against them before forwarding.
        self.peers = peers
        self.trail = trail
        self.health = health
        self._executor = executor
        self._resync = resync
        self._random = random_bytes
        self.instruments = instruments if instruments is not None else Instruments()
        # The registry's revocations (set by the service): no session names a revoked signer.
        self.revocations: Callable[[], Revocations] = Revocations
        # (key id, request id) of an abort naming a culprit (set by the service: the aborts breakers).
        self.on_abort: Callable[[str, str], None] | None = None

    def run(
        self,
        protocol: str,
        key_id: str,
        parties: tuple[int, ...],
        params: SessionParams,
        attestations: dict[int, bytes] | None = None,
        confirmations: dict[int, bytes] | None = None,
    ) -> tuple[bytes, bytes]:
        """Run one recorded session; returns (session id, the common public output).

        No presign runs for a key whose refreshed epoch is being committed (key_refresh.py): its
        signers may hold different epochs until every one adopted the new one; nor for a reshared
        key before aux info ran for its new committee (epoch_commit.py)."""
        if protocol == "presign" and (pending := self.store.epoch_commit(key_id)) is not None:
            raise FailedPrecondition(f"key {key_id} is committing epoch {pending.epoch}; signing waits for it")
        if protocol == "presign" and not self.key(key_id).aux_epoch:
            raise FailedPrecondition(f"key {key_id} waits for aux info of its new committee (after a reshare)")
        try:
            self.revocations().check_parties(parties, self.peers)
        except PolicyError as exc:
            raise FailedPrecondition(str(exc)) from None
        session_id = self._random(16)
        self.store.start_session(session_id.hex(), protocol, key_id, parties)
        try:
            outputs = relay.run_session(
                self.signers,
                session_id,
                protocol,
                parties,
                params,
                executor=self._executor,
                peers=self.peers,
                attestations_out=attestations,
                confirmations_out=confirmations,
            )
        except relay.SessionFailed as exc:
            self.instruments.aborted(protocol, exc.blames)
            self._resync(state_parties(exc.blames))
            unreachable = exc.unreachable if isinstance(exc, relay.SessionAborted) else set()
            self.store.end_session(
                session_id.hex(), ok=False, blame=exc.blames, error=str(exc), unreachable=sorted(unreachable)
            )
            self.trail.record(
                ABORT,
                "session_failed",
                session_id.hex(),
                session_id=session_id,
                protocol=protocol,
                key_id=key_id,
                parties=parties,
                error=str(exc),
                blame=exc.blames,
            )
            if exc.blames and isinstance(exc, relay.SessionAborted | relay.SignerMisbehaved | relay.OutputMismatch):
                self.aborted(key_id)
            if isinstance(exc, relay.SignerUnreachable):
                # A signer that connects but lets its rounds run past their deadline passes its health
                # probe: only a backoff keeps every request from waiting a round deadline on it again.
                for p in exc.parties:
                    if p in exc.timed_out:
                        self.health.fault(p, f"{protocol} round past its deadline")
                    else:
                        self.health.mark(p, False)
            if isinstance(exc, relay.SignerRefused):
                for p in exc.degraded:
                    self.health.fault(p, exc.errors[p])
            raise
        self.store.end_session(session_id.hex(), ok=True)
        self.trail.record(SESSION, "session_done", session_id.hex(), protocol=protocol, key_id=key_id, parties=parties)
        return session_id, outputs[parties[0]]

    def aborted(self, key_id: str, request_id: str = "") -> None:
        """A protocol run of the key aborted naming a culprit: tell `on_abort` (the `aborts` breakers)."""
        if self.on_abort is not None:
            self.on_abort(key_id, request_id)

    def create_key(self, name: str, threshold: int, level: str) -> KeyRecord:
        """Distributed keygen over every signer, then aux info over the same parties."""
        if not name or len(name) > 128:
            raise InvalidRequest("a key needs a name of 1-128 characters")
        if level not in LEVELS:
            raise InvalidRequest(f"level must be one of {LEVELS}")
        parties = tuple(self.signers)
        if not 2 <= threshold <= len(parties):
            raise InvalidRequest(
                f"threshold must satisfy 2 <= t <= n = {len(parties)} (t = 1 would make every share the key)"
            )
        live = self.health.live(parties, fresh=True)
        if len(live) != len(parties):
            raise Unavailable(f"keygen needs every signer; unreachable: {sorted(set(parties) - set(live))}")
        key_id = self._random(8).hex()
        bound = log.bind(key_id=key_id, threshold=threshold, parties=list(parties), level=level)
        bound.info("key_create_start")
        try:
            _, kg = self.run("keygen", key_id, parties, SessionParams(key_id, threshold=threshold, level=level))
            _, ax = self.run("aux", key_id, parties, SessionParams(key_id, level=level))
        except relay.SessionFailed as exc:
            bound.warning("key_create_failed", detail=str(exc), culprits=sorted(exc.culprits))
            raise error_from_session(exc) from None
        try:
            f = decode("keygen/public", kg, 6)
            public_key, chain_code, t, ps = (
                as_point(f[0]),
                as_bytes(f[1]),
                as_int(f[2]),
                tuple(as_int(p) for p in as_list(f[3])),
            )
            epoch = as_int(f[5])
            aux_epoch = as_bytes(decode("aux/public", ax, 2)[0])
        except DecodeError as exc:
            raise Internal(f"signers agreed on an output we cannot read: {exc}") from None
        if t != threshold or ps != parties:
            raise Internal("keygen output does not match the requested threshold and parties")
        key = KeyRecord(
            key_id,
            name,
            threshold,
            parties,
            level,
            public_key.to_bytes(),
            chain_code,
            epoch,
            aux_epoch,
            self.store.now(),
        )
        self.store.add_key(key)
        self.trail.record(
            KEY,
            "key_created",
            key_id,
            key_id=key_id,
            name=name,
            threshold=threshold,
            parties=parties,
            level=level,
            public_key=key.public_key,
            address=address_of(public_key),
        )
        bound.info("key_created", address=address_of(public_key))
        return key

    def key(self, key_id: str) -> KeyRecord:
        """A key's public record (NotFound if there is none)."""
        try:
            return self.store.get_key(key_id)
        except StoreNotFound as exc:
            raise NotFound(str(exc)) from None
