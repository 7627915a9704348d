"""The coordinator's business logic, without gRPC: keys, the presignature pool, the request lifecycle.

    create_key            keygen over all n signers, then aux info over the same parties.
    ensure_presignatures  presign sessions for one (key, signer set, path); public data stored.
    sign_eth              submit a request (idempotent: one request per idempotency key; another
                          body is ALREADY_EXISTS). The coordinator's copy of the policy decides:
                          automatic tiers sign at once; others wait in `pending_approval`; a
                          blocked request ends `blocked` with the engine's reason. Refused with
                          FAILED_PRECONDITION while no registry and policy are installed.
    approve / reject      an officer's signed approval of the intent digest (checked against the
                          registry: not the initiator, not twice, not expired) or signed veto. When
                          the quorum is met the request is `approved`, then `time_locked` if the
                          rule says so, then signed (within the call, or by the scheduler).
    freeze / unfreeze     signed orders, applied here and forwarded to every signer; nothing is
                          signed while frozen (a submission is blocked, an approved request held).
    propose_change        an admin-quorum-signed policy or registry change: validated here, then
                          installed on every signer, then stored (tightening now, loosening after
                          the time lock). Signers that were down get it, in order, when back.
    tick                  the scheduler's pass: pending changes that take effect, signer catch-up,
                          expiry, time-lock releases, requests held by a freeze.
    watch                 every transition of a request until it is final.

Signing: picks the first live set of t signers with (or given) a ready presignature, reserves it,
collects partial signatures (each signer checks the release itself against its own registry,
policy, freeze state and ledger), combines them (each σ_j checked, low-S, recovery id, final
verification) and builds the raw EIP-1559 transaction. A reserved presignature is never used
again; an unreachable signer means another set and another presignature. A signer that no
longer holds the presignature (it restarted: presignatures live only in signer memory) means
another presignature: every ready one made before its restart is dropped (signer_state.py). A
signer whose governance state is behind or was restored (`state_behind`, `state_rolled_back`,
`ledger_saturated`) gets the governance log again and the request tries another set. A bad
partial signature is terminal: the request fails naming the signer.

Every transition is a durable row (store) and an audit entry; so are approvals, refusals,
governance changes, freeze orders, protocol sessions and aborts, and keys.

Failures raise a `ServiceError` subclass whose `code` the gRPC layer maps to a status code; a
signing request that fails is returned in state `failed` with the same code in `error_code`.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import itertools
import queue
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import structlog

from signer.chains.ethereum import Eip1559Tx, TxError, address_of, keccak256, parse_address
from signer.node.server import PRESIGNATURE_UNKNOWN
from signer.policy import (
    COLD_SWEEP,
    NOT_COLD,
    REQUEST_KINDS,
    WITHDRAWAL,
    FreezeOrder,
    Intent,
    PolicyError,
    UnfreezeOrder,
    intent_from_eip1559,
)
from signer.tss import hd
from signer.tss.curve import Point, scalar_from_bytes
from signer.tss.encoding import as_bytes, as_int, as_list, as_point, decode, encode
from signer.tss.errors import Blame, DecodeError, InternalError, InvalidInput, ProtocolAbort
from signer.tss.presign import PresignaturePublic
from signer.tss.sign import PartialSignature, combine

from . import relay
from .audit import ABORT, FREEZE, KEY, POLICY, REQUEST, SESSION, AuditLog
from .errors import (
    ERRORS,
    Aborted,
    AlreadyExists,
    FailedPrecondition,
    Internal,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    Refused,
    ServiceError,
    Unavailable,
    error_from_session,
    refused,
)
from .governance import Delivery, Governance, GovernanceView, NoPolicy, PreparedChange, SignersRefused
from .lifecycle import (
    DEFAULT_REQUEST_TTL,
    MAX_REQUEST_TTL,
    Lifecycle,
    in_flight,
    reject_message,
)
from .signer_client import (
    PartialSignResult,
    Release,
    SessionParams,
    SignerAborted,
    SignerClient,
    SignerError,
    SignerRejected,
    SignerUnavailable,
)
from .signer_state import SATURATED, SignerStates, state_parties, state_refusals
from .store import (
    CONSUMED,
    FAILED,
    PRESIG_FAILED,
    RESERVED,
    SIGNED,
    SIGNING,
    SUBMITTED,
    AuditHook,
    IdempotencyConflict,
    InvalidTransition,
    KeyRecord,
    PresignatureRecord,
    RequestRecord,
    Store,
)
from .store import NotFound as StoreNotFound
from .trail import AuditTrail, audit_key_path, audit_public_key_path, open_audit_log

__all__ = [  # the errors live in errors.py; callers may keep importing them from here
    "COLD_SWEEP",
    "ERRORS",
    "NOT_COLD",
    "REQUEST_KINDS",
    "WITHDRAWAL",
    "Aborted",
    "AlreadyExists",
    "CoordinatorService",
    "FailedPrecondition",
    "GovernanceView",
    "Internal",
    "InvalidRequest",
    "NotFound",
    "PermissionDenied",
    "Refused",
    "ServiceError",
    "Unavailable",
    "audit_key_path",
    "audit_public_key_path",
    "body_hash",
    "error_from_session",
    "reject_message",
    "tx_from_json",
    "tx_to_json",
]

log = structlog.get_logger("coordinator")
LEVELS = ("128", "112")
SIGN_ROUND = "sign"


# --- transactions as stored ----------------------------------------------------------------------------
def tx_to_json(tx: Eip1559Tx) -> dict[str, Any]:
    """JSON form (256-bit amounts as decimal strings, data as hex)."""
    return {
        "chain_id": tx.chain_id,
        "nonce": tx.nonce,
        "max_priority_fee_per_gas": str(tx.max_priority_fee_per_gas),
        "max_fee_per_gas": str(tx.max_fee_per_gas),
        "gas_limit": tx.gas_limit,
        "to": tx.to,
        "value": str(tx.value),
        "data": tx.data.hex(),
    }


def tx_from_json(d: Mapping[str, Any]) -> Eip1559Tx:
    """Inverse of `tx_to_json`."""
    return Eip1559Tx(
        chain_id=int(d["chain_id"]),
        nonce=int(d["nonce"]),
        max_priority_fee_per_gas=int(d["max_priority_fee_per_gas"]),
        max_fee_per_gas=int(d["max_fee_per_gas"]),
        gas_limit=int(d["gas_limit"]),
        to=str(d["to"]),
        value=int(d["value"]),
        data=bytes.fromhex(d["data"]),
    )


def body_hash(key_id: str, path: Sequence[int], tx: Eip1559Tx, kind: str = WITHDRAWAL, initiator: str = "") -> str:
    """What an idempotency key is bound to: key, path, kind, initiator and every transaction field
    (address bytes, not spelling)."""
    body = encode(
        "sign_eth/body/v2",
        key_id,
        list(path),
        kind,
        initiator,
        tx.chain_id,
        tx.nonce,
        tx.max_priority_fee_per_gas,
        tx.max_fee_per_gas,
        tx.gas_limit,
        parse_address(tx.to),
        tx.value,
        tx.data,
    )
    return hashlib.sha256(body).hexdigest()


def _check_path(path: Sequence[int]) -> tuple[int, ...]:
    out = tuple(path)
    if len(out) > 255 or any(not isinstance(i, int) or not 0 <= i < hd.HARDENED for i in out):
        raise InvalidRequest("path indices must be non-hardened (0 <= index < 2^31), at most 255 of them")
    return out


class _Watch:
    """A condition variable and a version counter for one request."""

    __slots__ = ("cond", "version")

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.version = 0

    def changed_since(self, version: int) -> bool:
        """True once a transition was notified after `version` (call with `cond` held)."""
        return self.version != version


@dataclasses.dataclass(frozen=True, slots=True)
class _Retry:
    """A signing attempt that failed in a way another set or presignature can fix."""

    reason: str
    free: bool  # a restart or a state refusal, not an availability failure: does not use up an attempt


class CoordinatorService:
    """Keys, presignatures and the signing-request lifecycle over a `Store` and signer clients.

    `scheduler_interval` > 0 runs `tick` in a background thread that often (0: call `tick` yourself,
    as tests with an injected clock do). Times come from the store's clock.
    """

    def __init__(
        self,
        store: Store,
        signers: Mapping[int, SignerClient],
        *,
        level: str = "128",
        presign_pool: int = 0,
        health_ttl: float = 5.0,
        down_ttl: float = 1.0,
        max_sign_attempts: int = 3,
        recover: bool = True,
        random_bytes: Callable[[int], bytes] = secrets.token_bytes,
        audit: AuditLog | None = None,
        request_ttl: int = DEFAULT_REQUEST_TTL,
        scheduler_interval: float = 1.0,
        peers: Mapping[int, bytes] | None = None,
    ) -> None:
        if level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}")
        if len(signers) < 2:
            raise ValueError("a cluster needs at least two signers")
        self.store = store
        self.signers = dict(sorted(signers.items()))
        # Signers' identity keys: the relay verifies every envelope against them before forwarding.
        self.peers = dict(peers) if peers is not None else None
        self.level = level
        self.presign_pool = presign_pool
        self.health_ttl = health_ttl
        self.down_ttl = down_ttl
        self.max_sign_attempts = max_sign_attempts
        self._random = random_bytes
        # Round robin over signing sets: each signer is in t/n of them, which is exactly the fair
        # share of every windowed limit it enforces, so an honest coordinator can reach the limit.
        self._set_rotation = itertools.count()
        self._pool = ThreadPoolExecutor(max_workers=max(8, 4 * len(self.signers)), thread_name_prefix="signer-rpc")
        self._health: dict[int, tuple[bool, float]] = {}
        self._health_lock = threading.Lock()
        self._watches: dict[str, _Watch] = {}
        self._watches_lock = threading.Lock()
        self._refill_queue: queue.Queue[tuple[str, tuple[int, ...], tuple[int, ...]] | None] = queue.Queue()
        self._refill_pending: set[tuple[str, tuple[int, ...], tuple[int, ...]]] = set()
        self._refill_lock = threading.Lock()
        self._refill_thread: threading.Thread | None = None
        self._closed = False
        self.audit = audit if audit is not None else open_audit_log(store)
        self.trail = AuditTrail(self.audit)
        self.governance = Governance(store, self.signers, self._pool)
        self.lifecycle = Lifecycle(store, self.governance, self.trail, self._notify, self._sign_request)
        if not 60 <= request_ttl <= MAX_REQUEST_TTL:
            raise ValueError(f"request_ttl must be within [60, {MAX_REQUEST_TTL}] seconds")
        self.request_ttl = request_ttl
        self.scheduler_interval = scheduler_interval
        self._wake = threading.Event()
        self._scheduler_thread: threading.Thread | None = None
        self._sync_refusals: set[tuple[int, int]] = set()
        self.signer_states = SignerStates()
        if recover:
            failed_requests, failed_presigs = store.recover(
                lambda rid: self.trail.note(
                    REQUEST,
                    FAILED,
                    rid,
                    detail="recovered after restart",
                    error="coordinator restarted while the request was in flight",
                    error_code="internal",
                )
            )
            if failed_requests or failed_presigs:
                log.warning(
                    "recovered_after_restart", requests_failed=failed_requests, presignatures_failed=failed_presigs
                )
        if presign_pool > 0:
            self._refill_thread = threading.Thread(target=self._refill_loop, name="presign-refill", daemon=True)
            self._refill_thread.start()
        if scheduler_interval > 0:
            self._scheduler_thread = threading.Thread(target=self._scheduler_loop, name="scheduler", daemon=True)
            self._scheduler_thread.start()

    def close(self) -> None:
        """Stop background work and wait for it."""
        self._closed = True
        self._wake.set()
        if self._refill_thread is not None:
            self._refill_queue.put(None)
            self._refill_thread.join(timeout=60)
        if self._scheduler_thread is not None:
            self._scheduler_thread.join(timeout=60)
        self._pool.shutdown(wait=True)

    def _now(self) -> int:
        """The policy's time: whole seconds of the store's clock."""
        return int(self.store.now())

    # --- signer health ---------------------------------------------------------------------------------
    def _mark(self, party: int, up: bool) -> None:
        with self._health_lock:
            self._health[party] = (up, time.monotonic())

    def live_signers(self, parties: Sequence[int], *, fresh: bool = False) -> list[int]:
        """Signers of `parties` believed reachable; stale entries are re-probed in parallel."""
        now = time.monotonic()
        with self._health_lock:
            known = dict(self._health)
        stale = [
            p
            for p in parties
            if fresh or p not in known or now - known[p][1] > (self.health_ttl if known[p][0] else self.down_ttl)
        ]
        if stale:
            probes = {p: self._pool.submit(self.signers[p].healthy) for p in stale if p in self.signers}
            for p, fut in probes.items():
                self._mark(p, bool(fut.result()))
        with self._health_lock:
            return [p for p in parties if p in self.signers and self._health.get(p, (False, 0.0))[0]]

    # --- sessions ------------------------------------------------------------------------------------------
    def _session(
        self,
        protocol: str,
        key_id: str,
        parties: tuple[int, ...],
        params: SessionParams,
        attestations: dict[int, bytes] | None = None,
    ) -> tuple[bytes, bytes]:
        """Run one recorded session; returns (session id, the common public output)."""
        session_id = self._random(16)
        self.store.start_session(session_id.hex(), protocol, key_id, parties)
        try:
            outputs = relay.run_session(
                self.signers,
                session_id,
                protocol,
                parties,
                params,
                executor=self._pool,
                peers=self.peers,
                attestations_out=attestations,
            )
        except relay.SessionFailed as exc:
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
            if isinstance(exc, relay.SignerUnreachable):
                for p in exc.parties:
                    self._mark(p, False)
            raise
        self.store.end_session(session_id.hex(), ok=True)
        self.trail.record(SESSION, "session_done", session_id.hex(), protocol=protocol, key_id=key_id, parties=parties)
        return session_id, outputs[parties[0]]

    # --- keys ------------------------------------------------------------------------------------------------
    def create_key(self, name: str, threshold: int, level: str = "") -> KeyRecord:
        """Distributed keygen over every signer, then aux info over the same parties."""
        level = level or self.level
        if not name or len(name) > 128:
            raise InvalidRequest("a key needs a name of 1-128 characters")
        if level not in LEVELS:
            raise InvalidRequest(f"level must be one of {LEVELS}")
        parties = tuple(self.signers)
        if not 2 <= threshold <= len(parties):
            raise InvalidRequest(
                f"threshold must satisfy 2 <= t <= n = {len(parties)} (t = 1 would make every share the key)"
            )
        live = self.live_signers(parties, fresh=True)
        if len(live) != len(parties):
            raise Unavailable(f"keygen needs every signer; unreachable: {sorted(set(parties) - set(live))}")
        key_id = self._random(8).hex()
        bound = log.bind(key_id=key_id, threshold=threshold, parties=list(parties), level=level)
        bound.info("key_create_start")
        try:
            _, kg = self._session("keygen", key_id, parties, SessionParams(key_id, threshold=threshold, level=level))
            _, ax = self._session("aux", key_id, parties, SessionParams(key_id, level=level))
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
        if self.presign_pool > 0:
            live_set = tuple(self.live_signers(parties)[:threshold])
            if len(live_set) == threshold:
                self._schedule_refill(key_id, live_set, ())
        return key

    def get_key(self, key_id: str) -> KeyRecord:
        """A key's public record."""
        try:
            return self.store.get_key(key_id)
        except StoreNotFound as exc:
            raise NotFound(str(exc)) from None

    def list_keys(self) -> list[KeyRecord]:
        """Every key."""
        return self.store.list_keys()

    # --- presignatures -----------------------------------------------------------------------------------
    def _check_signers(self, key: KeyRecord, signers: Sequence[int]) -> tuple[int, ...]:
        s = tuple(sorted(set(signers)))
        if len(s) != key.threshold or len(s) != len(signers) or not set(s) <= set(key.parties):
            raise InvalidRequest(f"a signing set is exactly {key.threshold} distinct parties of {list(key.parties)}")
        return s

    def _presign(self, key: KeyRecord, signers: tuple[int, ...], path: tuple[int, ...]) -> str:
        """One presign session; stores its public data as ready and returns its id."""
        attestations: dict[int, bytes] = {}
        session_id, out = self._session(
            "presign", key.key_id, signers, SessionParams(key.key_id, path=path), attestations
        )
        try:
            public = PresignaturePublic.from_bytes(out)
        except DecodeError as exc:
            raise Internal(f"presignature public data unreadable: {exc}") from None
        derived = hd.derive(Point.from_bytes(key.public_key), key.chain_code, path)
        expected = (
            session_id,
            signers,
            key.public_key,
            key.epoch,
            key.aux_epoch,
            path,
            derived.tweak,
            derived.public_key,
        )
        got = (
            public.session_id,
            public.signers,
            public.key_fingerprint,
            public.epoch,
            public.aux_epoch,
            public.path,
            public.tweak,
            public.public_key,
        )
        if got != expected:
            raise FailedPrecondition("the presignature is not bound to this key, epoch, signer set and path")
        presig_id = session_id.hex()
        self.signer_states.note(attestations, presig_id)
        self.store.add_presignature(presig_id, key.key_id, signers, path, out, key.epoch)
        return presig_id

    def ensure_presignatures(
        self, key_id: str, signers: Sequence[int], path: Sequence[int] = (), count: int = 1
    ) -> int:
        """Presign until `count` are ready for (key, signers, path); returns how many were made."""
        key = self.get_key(key_id)
        s, p = self._check_signers(key, signers), _check_path(path)
        made = 0
        while self.store.count_ready(key_id, s, p, key.epoch) < count:
            try:
                self._presign(key, s, p)
            except relay.SessionFailed as exc:
                raise error_from_session(exc) from None
            made += 1
        return made

    def _schedule_refill(self, key_id: str, signers: tuple[int, ...], path: tuple[int, ...]) -> None:
        item = (key_id, signers, path)
        with self._refill_lock:
            if self._closed or item in self._refill_pending:
                return
            self._refill_pending.add(item)
        self._refill_queue.put(item)

    def _refill_loop(self) -> None:
        while True:
            item = self._refill_queue.get()
            if item is None or self._closed:
                return
            with self._refill_lock:
                self._refill_pending.discard(item)
            if len(self.live_signers(item[1])) != len(item[1]):
                continue  # a signer of the set is down: the next request picks a live set
            try:
                made = self.ensure_presignatures(*item, count=self.presign_pool)
                if made:
                    log.info(
                        "presignatures_refilled", key_id=item[0], signers=list(item[1]), path=list(item[2]), made=made
                    )
            except Exception as exc:  # background work: log and carry on
                log.warning("presign_refill_failed", key_id=item[0], signers=list(item[1]), error=str(exc))

    # --- signing requests ------------------------------------------------------------------------------
    def _watch(self, request_id: str) -> _Watch:
        with self._watches_lock:
            w = self._watches.get(request_id)
            if w is None:
                w = self._watches[request_id] = _Watch()
            return w

    def _notify(self, request_id: str, final: bool = False) -> None:
        w = self._watch(request_id)
        with w.cond:
            w.version += 1
            w.cond.notify_all()
        if final:
            with self._watches_lock:
                self._watches.pop(request_id, None)

    def sign_eth(
        self,
        key_id: str,
        idempotency_key: str,
        path: Sequence[int],
        tx: Eip1559Tx,
        *,
        kind: str = WITHDRAWAL,
        initiator: str = "",
        ttl: int | None = None,
        wait: float = 600.0,
    ) -> RequestRecord:
        """Submit (or find again) a signing request; returns it in the state the policy puts it in.

        `signed` (or `failed`) for an automatic tier, `pending_approval`, `approved` (held by a
        freeze) or `time_locked`, or `blocked` with the reason in `policy_reason`. The intent
        officers approve names `initiator` (the backend's certificate name) and expires after
        `ttl` seconds (default `request_ttl`). A retry with the same idempotency key and body
        returns the same request (waiting up to `wait` seconds while it is being signed).
        """
        if not idempotency_key or len(idempotency_key) > 128:
            raise InvalidRequest("idempotency_key must be 1-128 characters")
        if not isinstance(tx, Eip1559Tx):
            raise InvalidRequest("tx must be an Eip1559Tx")
        kind = kind or WITHDRAWAL
        if kind not in REQUEST_KINDS:
            raise InvalidRequest(f"kind must be one of {REQUEST_KINDS}")
        life = self.request_ttl if ttl is None else ttl
        if not 60 <= life <= MAX_REQUEST_TTL:
            raise InvalidRequest(f"ttl must be within [60, {MAX_REQUEST_TTL}] seconds")
        p = _check_path(path)
        key = self.get_key(key_id)
        try:
            hd.derive(Point.from_bytes(key.public_key), key.chain_code, p)
        except InvalidInput as exc:
            raise InvalidRequest(str(exc)) from None
        bh = body_hash(key_id, p, tx, kind, initiator)
        now = self._now()
        try:
            _, policy = self.governance.require(now)
        except NoPolicy as exc:
            self.trail.record(REQUEST, "refused", idempotency_key, initiator, key_id=key_id, reason="no_policy")
            raise FailedPrecondition(str(exc)) from None
        request_id = self._random(16).hex()
        intent: Intent | None = None
        undecodable = ""
        try:
            intent = intent_from_eip1559(
                tx,
                key_id=key_id,
                path=p,
                request_id=request_id,
                policy_hash=policy.hash(),
                expires_at=now + life,
                initiator=initiator,
            )
        except PolicyError as exc:
            undecodable = exc.reason  # fail closed: recorded, then blocked
        try:
            row, created = self.store.create_request(
                request_id=request_id,
                key_id=key_id,
                idempotency_key=idempotency_key,
                body_hash=bh,
                tx=tx_to_json(tx),
                path=p,
                kind=kind,
                initiator=initiator,
                intent=b"" if intent is None else intent.to_bytes(),
                intent_digest=b"" if intent is None else intent.digest(),
                policy_hash=policy.hash(),
                expires_at=now + life,
                audit=self.trail.note(
                    REQUEST,
                    SUBMITTED,
                    request_id,
                    initiator or "coordinator",
                    key_id=key_id,
                    kind=kind,
                    initiator=initiator,
                    idempotency_key=idempotency_key,
                    path=p,
                    tx=tx_to_json(tx),
                    intent=b"" if intent is None else intent.to_bytes(),
                    intent_digest=b"" if intent is None else intent.digest(),
                    policy_hash=policy.hash(),
                    expires_at=now + life,
                ),
            )
        except IdempotencyConflict as exc:
            raise AlreadyExists(str(exc)) from None
        except StoreNotFound as exc:
            raise NotFound(str(exc)) from None
        if not created:
            return self._settled(row, wait)
        self._notify(request_id)
        if intent is None:
            return self.lifecycle.block(row, undecodable, detail=f"fail closed: {undecodable}")
        return self.lifecycle.advance(request_id)

    def _settled(self, row: RequestRecord, wait: float) -> RequestRecord:
        """A found-again request, once it is not being evaluated or signed (or `wait` ran out)."""
        if not in_flight(row):
            return row
        for _ in self.watch(row.request_id, timeout=wait):
            current = self.get_request(row.request_id)
            if not in_flight(current):
                return current
        return self.get_request(row.request_id)

    def approve(self, request_id: str, approval: bytes, *, officer: str) -> RequestRecord:
        """An officer's approval (`Approval.to_bytes()`), presented by that officer; see `Lifecycle.approve`."""
        return self.lifecycle.approve(request_id, approval, officer=officer)

    def reject(self, request_id: str, officer_id: str, signature: bytes, reason: str, *, officer: str) -> RequestRecord:
        """An officer's signed veto (`reject_message`); see `Lifecycle.reject`."""
        return self.lifecycle.reject(request_id, officer_id, signature, reason, officer=officer)

    # --- signing -----------------------------------------------------------------------------------------
    def _sign_request(self, row: RequestRecord, release: Release, reason: str) -> RequestRecord:
        """Claim an approved (or released time-locked) request for signing and sign it."""
        key = self.get_key(row.key_id)
        tx = tx_from_json(row.tx)
        derived = hd.derive(Point.from_bytes(key.public_key), key.chain_code, row.path)
        try:
            self.lifecycle.transition(
                row.request_id,
                SIGNING,
                "",
                expect=(row.state,),
                policy_reason=reason,
                digest=tx.signing_digest(),
                from_address=address_of(derived.public_key),
            )
        except InvalidTransition:
            return self.store.get_request(row.request_id)  # another thread is signing it
        return self._drive(key, row.request_id, row.path, tx, release)

    def _drive(
        self, key: KeyRecord, request_id: str, path: tuple[int, ...], tx: Eip1559Tx, release: Release
    ) -> RequestRecord:
        """Sign, converting any unexpected error into a failed request (never left in flight)."""
        try:
            return self._attempts(key, request_id, path, tx, release)
        except Exception as exc:
            log.exception("sign_internal_error", request_id=request_id, key_id=key.key_id)
            row = self.store.get_request(request_id)
            if row.final:
                return row
            return self.lifecycle.fail(request_id, Internal(f"internal error: {type(exc).__name__}: {exc}"))

    def _attempts(
        self, key: KeyRecord, request_id: str, path: tuple[int, ...], tx: Eip1559Tx, release: Release
    ) -> RequestRecord:
        digest = tx.signing_digest()
        last = ""
        excluded: set[int] = set()  # signers whose state refused this request: another set if there is one
        # A signer that restarted (lost its presignatures) or whose state was restored costs an attempt
        # that says nothing about availability: it earns one more, at most once per signer.
        attempt, budget, cap = 0, self.max_sign_attempts, self.max_sign_attempts + len(key.parties)
        while attempt < budget:
            attempt += 1
            live = self.live_signers(key.parties)
            if len(live) < key.threshold:
                # The cache may be stale (a signer just came back): probe everyone before giving up.
                live = self.live_signers(key.parties, fresh=True)
            usable = [p for p in live if p not in excluded]
            live = usable if len(usable) >= key.threshold else live
            if len(live) < key.threshold:
                down = sorted(set(key.parties) - set(live))
                return self.lifecycle.fail(
                    request_id,
                    Unavailable(
                        f"only {len(live)} of {len(key.parties)} signers reachable (down: {down}); need {key.threshold}"
                    ),
                )
            try:
                presig = self._reserve(key, live, path, request_id)
            except relay.SignerUnreachable as exc:
                last = str(exc)
                continue
            except relay.SessionAborted as exc:
                behind = state_parties(exc.blames)
                if not behind:
                    return self.lifecycle.fail(request_id, error_from_session(exc))
                excluded |= behind  # caught up by now (see _resync); another set meanwhile
                last, budget = str(exc), min(budget + 1, cap)
                continue
            except relay.SessionFailed as exc:
                return self.lifecycle.fail(request_id, error_from_session(exc))
            except ServiceError as exc:
                return self.lifecycle.fail(request_id, exc)
            try:
                outcome = self._sign_with(key, presig, tx, digest, release, attempt, excluded)
            except BaseException:
                self._drop_presignature(presig.presig_id)
                raise
            if isinstance(outcome, RequestRecord):
                return outcome
            last = outcome.reason
            if outcome.free:
                budget = min(budget + 1, cap)
        return self.lifecycle.fail(request_id, Unavailable(f"no signer set answered after {attempt} attempts: {last}"))

    def _drop_stale_presignatures(self, key: KeyRecord, restarted: Sequence[int]) -> None:
        """Signers that lost their presignatures (a restart): fail every ready one of theirs made
        under an earlier boot, so the next attempt presigns afresh instead of failing again."""
        for party in restarted:
            try:
                boot = self.signers[party].status().boot_id
            except SignerError:
                boot = b""  # unknown: drop all of this signer's (fail closed, costs only presigning)
            stale = self.signer_states.stale(self.store.ready_presignatures(key.key_id), party, boot)
            dropped = self.store.fail_ready_presignatures(stale)
            for pid in stale:
                self.signer_states.forget(pid)
            log.warning("presignatures_dropped_signer_restarted", key_id=key.key_id, party=party, dropped=dropped)

    def _resync(self, parties: set[int]) -> None:
        """Signers whose governance state is behind (a restore): send them the whole log again now."""
        if not parties:
            return
        for p in sorted(parties):
            n = self.store.unack_governance(p)
            log.warning("signer_state_behind_resync", party=p, entries=n)
        self._sync_signers(lambda ps: [p for p in self.live_signers(ps) if p in parties])

    def _drop_presignature(self, presig_id: str) -> None:
        """A reserved presignature whose attempt broke off: failed, never ready again."""
        if self.store.get_presignature(presig_id).state == RESERVED:
            self.store.finish_presignature(presig_id, PRESIG_FAILED)

    def _reserve(
        self, key: KeyRecord, live: Sequence[int], path: tuple[int, ...], request_id: str
    ) -> PresignatureRecord:
        """The first live set (in round-robin order) with a ready presignature, reserved; else presign
        for the first one."""
        sets = list(itertools.combinations(sorted(live), key.threshold))
        k = next(self._set_rotation) % len(sets)
        sets = sets[k:] + sets[:k]
        for _ in range(3):
            got = self.store.reserve_presignature(key.key_id, sets, path, key.epoch, request_id)
            if got is not None:
                if tuple(got.signers) != sets[0]:
                    self._schedule_refill(key.key_id, sets[0], path)  # so the next turn of this set finds one
                return got
            self._presign(key, sets[0], path)  # another request may take it first: then go again
        raise Unavailable("could not reserve a presignature (taken by concurrent requests)")

    def _sign_with(
        self,
        key: KeyRecord,
        presig: PresignatureRecord,
        tx: Eip1559Tx,
        digest: bytes,
        release: Release,
        attempt: int,
        excluded: set[int],
    ) -> RequestRecord | _Retry:
        """One signing attempt with a reserved presignature: the final row, or why to try another set
        (signers whose state refused are added to `excluded`)."""
        request_id = release.request_id
        self.lifecycle.transition(
            request_id, SIGNING, f"attempt {attempt}: signers {list(presig.signers)}", presig_id=presig.presig_id
        )
        public = PresignaturePublic.from_bytes(presig.public)
        pid = bytes.fromhex(presig.presig_id)
        states = self.signer_states
        calls: dict[int, Callable[[], PartialSignResult]] = {
            p: functools.partial(self.signers[p].partial_sign, key.key_id, pid, tx, release, states.for_party(p))
            for p in presig.signers
        }
        ok, failed = relay.parallel(self._pool, calls)
        for p in ok:
            self._mark(p, True)
        states.note({p: r.attestation for p, r in ok.items()})
        states.forget(presig.presig_id)
        if failed:
            self.store.finish_presignature(presig.presig_id, PRESIG_FAILED)
            down = [p for p, e in failed.items() if isinstance(e, SignerUnavailable)]
            for p in down:
                self._mark(p, False)
            restarted = [
                p for p, e in failed.items() if isinstance(e, SignerRejected) and e.reason == PRESIGNATURE_UNKNOWN
            ]
            self._drop_stale_presignatures(key, restarted)
            refusals = state_refusals(failed)
            self._resync({p for p, r in refusals.items() if r != SATURATED})
            excluded.update(refusals)
            if len(down) == len(failed):
                return _Retry(f"signers {down} unreachable during partial signing", free=False)
            if len(down) + len(restarted) + len(refusals) == len(failed):
                why = f"signers {down} unreachable, {restarted} restarted, state refusals {refusals}"
                return _Retry(why, free=not down)
            return self.lifecycle.fail(request_id, _partial_sign_error(failed))
        blames = [Blame(p, SIGN_ROUND, "digest_mismatch") for p, r in ok.items() if r.digest != digest or r.party != p]
        partials: dict[int, PartialSignature] = {}
        for p, r in ok.items():
            try:
                partials[p] = PartialSignature(p, scalar_from_bytes(r.sigma))
            except DecodeError:
                blames.append(Blame(p, SIGN_ROUND, "partial_signature", r.sigma[:64]))
        try:
            if blames:
                raise ProtocolAbort(blames)
            sig = combine(public, digest, partials)
            if sig.v > 1:
                raise InternalError("recovery id >= 2 (R.x >= q) cannot be expressed as an Ethereum y-parity")
            raw = tx.raw_signed(sig.r, sig.s, sig.v)
        except ProtocolAbort as abort:
            self.store.finish_presignature(presig.presig_id, PRESIG_FAILED)
            return self.lifecycle.fail(request_id, Aborted(f"partial signature rejected: {abort}", abort.blames))
        except (InternalError, InvalidInput, TxError) as exc:
            self.store.finish_presignature(presig.presig_id, PRESIG_FAILED)
            return self.lifecycle.fail(request_id, Internal(f"combining failed: {exc}"))
        self.store.finish_presignature(presig.presig_id, CONSUMED)
        row = self.lifecycle.transition(
            request_id,
            SIGNED,
            f"signers {list(presig.signers)}",
            r=sig.r.to_bytes(32, "big"),
            s=sig.s.to_bytes(32, "big"),
            v=sig.v,
            raw_tx=raw,
            tx_hash=keccak256(raw),
        )
        log.info(
            "request_signed",
            request_id=request_id,
            key_id=key.key_id,
            signers=list(presig.signers),
            tx_hash=row.tx_hash.hex(),
        )
        low_water = max(1, self.presign_pool // 2)  # refill in batches, not after every signature
        if (
            self.presign_pool > 0
            and self.store.count_ready(key.key_id, presig.signers, presig.path, key.epoch) < low_water
        ):
            self._schedule_refill(key.key_id, presig.signers, presig.path)
        return row

    # --- governance: changes, freeze orders --------------------------------------------------------------
    def get_governance(self) -> GovernanceView:
        """The registry and policy in force, pending loosenings, frozen scopes."""
        return self.governance.view(self._now())

    def propose_change(self, kind: str, change_json: str, *, admin: str = "") -> GovernanceView:
        """Apply an admin-quorum-signed change (`PolicyChange.to_json()`, kind `registry` or
        `policy`): validated here, installed on every signer, then stored. Tightening takes effect
        at once, loosening after the old document's `change_delay` (see GetGovernance's pending).
        The first registry / policy is a genesis change (the signers pin its admins)."""
        now = self._now()
        actor = admin or "coordinator"

        def note(prepared: PreparedChange, delivery: Delivery) -> AuditHook:
            return self.trail.note(
                POLICY,
                "change_applied" if prepared.tightening else "change_pending",
                kind,
                actor,
                version=prepared.version,
                hash=prepared.document_hash,
                tightening=prepared.tightening,
                effective_at=prepared.effective_at,
                change=change_json,
                **_delivered(delivery),
            )

        try:
            prepared, delivery = self.governance.propose(kind, change_json, now, note)
        except PolicyError as exc:
            self.trail.record(
                POLICY, "change_refused", kind, actor, reason=exc.reason, detail=exc.detail, change=change_json
            )
            raise refused(exc) from None
        except NoPolicy as exc:
            raise FailedPrecondition(str(exc)) from None
        except SignersRefused as exc:
            self.trail.record(
                POLICY,
                "change_refused",
                kind,
                actor,
                signers=exc.refusals,
                installed_on=exc.accepted,
                change=change_json,
            )
            log.error("governance_refused_by_signers", kind=kind, refusals=exc.refusals, installed_on=exc.accepted)
            raise FailedPrecondition(f"signers refused the {kind} change: {exc}") from None
        log.info(
            "governance_change",
            kind=kind,
            version=prepared.version,
            tightening=prepared.tightening,
            effective_at=prepared.effective_at,
            pending_signers=list(delivery.pending),
        )
        self._wake.set()  # open requests under another policy version get blocked by the scheduler
        return self.governance.view(now)

    def freeze(self, order: bytes, *, officer: str) -> GovernanceView:
        """Apply a freeze order (`FreezeOrder.to_bytes()`, signed by `officer` itself) here at
        once and on every signer. Nothing of the scope is signed until an unfreeze."""
        now = self._now()
        try:
            parsed = FreezeOrder.from_bytes(order)
            if parsed.officer_id != officer:
                raise PolicyError("officer_mismatch", f"order by {parsed.officer_id} presented by {officer}")
            delivery = self.governance.freeze(
                parsed,
                now,
                lambda d: self.trail.note(
                    FREEZE,
                    "freeze",
                    parsed.scope,
                    officer,
                    officer_id=parsed.officer_id,
                    issued_at=parsed.issued_at,
                    order=order,
                    **_delivered(d),
                ),
            )
        except PolicyError as exc:
            self.trail.record(FREEZE, "freeze_refused", "", officer, reason=exc.reason, detail=exc.detail, order=order)
            raise refused(exc) from None
        except NoPolicy as exc:
            raise FailedPrecondition(str(exc)) from None
        log.warning("frozen", scope=parsed.scope, officer_id=parsed.officer_id, refusals=delivery.refusals)
        return self.governance.view(now)

    def unfreeze(self, order: bytes, *, officer: str = "") -> GovernanceView:
        """Lift a freeze with an `UnfreezeOrder` signed by the policy's `unfreeze_quorum` of
        officers (any officer may deliver it); held requests are released by the scheduler."""
        now = self._now()
        actor = officer or "coordinator"
        try:
            parsed = UnfreezeOrder.from_bytes(order)
            signed_by = sorted(e.signer_id for e in parsed.signatures)
            self.governance.unfreeze(
                parsed,
                now,
                lambda d: self.trail.note(
                    FREEZE,
                    "unfreeze",
                    parsed.scope,
                    actor,
                    lifts=parsed.lifts,
                    issued_at=parsed.issued_at,
                    signed_by=signed_by,
                    order=order,
                    **_delivered(d),
                ),
            )
        except PolicyError as exc:
            self.trail.record(FREEZE, "unfreeze_refused", "", actor, reason=exc.reason, detail=exc.detail, order=order)
            raise refused(exc) from None
        except NoPolicy as exc:
            raise FailedPrecondition(str(exc)) from None
        except SignersRefused as exc:
            self.trail.record(
                FREEZE, "unfreeze_refused", parsed.scope, actor, signers=exc.refusals, installed_on=exc.accepted
            )
            raise FailedPrecondition(f"signers refused the unfreeze: {exc}") from None
        log.warning("unfrozen", scope=parsed.scope, signed_by=signed_by)
        self._wake.set()
        return self.governance.view(now)

    # --- the scheduler -------------------------------------------------------------------------------------
    def tick(self) -> None:
        """One pass: promote governance changes whose time lock ran out, bring lagging signers up to
        date, expire stale requests, block those under a replaced policy, sign what a time lock or a
        lifted freeze releases."""
        now = self._now()
        for kind, version, _ in self.governance.advance(
            now, lambda k, v, h: self.trail.note(POLICY, "change_effective", k, version=v, hash=h)
        ):
            log.info("governance_effective", kind=kind, version=version)
        self._sync_signers(self.live_signers)
        self.lifecycle.release_due(now, stop=lambda: self._closed)

    def _sync_signers(self, reachable: Callable[[Sequence[int]], list[int]]) -> None:
        """Bring lagging signers up to date from the governance log, audited."""
        for sync in self.governance.sync(reachable):
            if sync.outcome in ("ok", "held"):
                log.info("governance_synced", party=sync.party, seq=sync.seq, kind=sync.kind, outcome=sync.outcome)
                event = "freeze_synced" if sync.kind in ("freeze", "unfreeze") else "change_synced"
                self.trail.record(
                    FREEZE if sync.kind in ("freeze", "unfreeze") else POLICY,
                    event,
                    f"signer-{sync.party}",
                    party=sync.party,
                    log_seq=sync.seq,
                    outcome=sync.outcome,
                )
            elif (sync.party, sync.seq) not in self._sync_refusals:
                self._sync_refusals.add((sync.party, sync.seq))
                log.error("governance_sync_refused", party=sync.party, seq=sync.seq, error=sync.outcome)
                self.trail.record(
                    FREEZE if sync.kind in ("freeze", "unfreeze") else POLICY,
                    "sync_refused",
                    f"signer-{sync.party}",
                    party=sync.party,
                    log_seq=sync.seq,
                    error=sync.outcome,
                )

    def _scheduler_loop(self) -> None:
        while not self._closed:
            self._wake.wait(self.scheduler_interval)
            self._wake.clear()
            if self._closed:
                return
            try:
                self.tick()
            except Exception:  # background work: log and carry on
                log.exception("scheduler_tick_failed")

    # --- audit -----------------------------------------------------------------------------------------
    def export_audit(self, since_seq: int = 0) -> list[str]:
        """The audit log as JSON lines (see `AuditTrail.export_lines`)."""
        return self.trail.export_lines(since_seq)

    def get_request(self, request_id: str) -> RequestRecord:
        """A request's current record."""
        try:
            return self.store.get_request(request_id)
        except StoreNotFound as exc:
            raise NotFound(str(exc)) from None

    def list_requests(self, key_id: str = "", state: str = "", limit: int = 100) -> list[RequestRecord]:
        """Newest first."""
        return self.store.list_requests(key_id=key_id, state=state, limit=limit or 100)

    def wait_final(self, request_id: str, timeout: float) -> RequestRecord:
        """Block until the request is final (or `timeout` passes); returns its record then."""
        for _ in self.watch(request_id, timeout=timeout):
            pass
        return self.get_request(request_id)

    def watch(self, request_id: str, *, timeout: float | None = None, poll: float = 1.0) -> Iterator[RequestRecord]:
        """Yield the request once per recorded transition, in order, until it is final.

        Waits on the request's condition variable and re-reads the database at least every
        `poll` seconds (so transitions made by another coordinator process show up too).
        Earlier transitions are replayed with their own state and without later results.
        """
        self.get_request(request_id)  # NotFound now, not at the first iteration
        return self._watch_events(request_id, timeout, poll)

    def _watch_events(self, request_id: str, timeout: float | None, poll: float) -> Iterator[RequestRecord]:
        deadline = None if timeout is None else time.monotonic() + timeout
        seq = 0
        while True:
            w = self._watch(request_id)
            with w.cond:
                version = w.version
            events = self.store.events(request_id, after_seq=seq)
            if events:
                current = self.store.get_request(request_id)
                for ev in events:
                    seq = ev.seq
                    if ev is events[-1] and ev.state == current.state:
                        yield current
                    else:
                        yield dataclasses.replace(
                            current, state=ev.state, r=b"", s=b"", v=None, raw_tx=b"", tx_hash=b""
                        )
                if current.final and events[-1].state == current.state:
                    return
                continue
            wait = poll if deadline is None else min(poll, deadline - time.monotonic())
            if wait <= 0:
                return
            with w.cond:
                w.cond.wait_for(functools.partial(w.changed_since, version), timeout=wait)


def _delivered(d: Delivery) -> dict[str, Any]:
    out: dict[str, Any] = {"log_seq": d.seq, "signers": d.installed}
    if d.pending:
        out["signers_pending"] = d.pending
    if d.refusals:
        out["signers_refused"] = d.refusals
    return out


def _partial_sign_error(failed: Mapping[int, SignerError]) -> ServiceError:
    blames = [b for e in failed.values() if isinstance(e, SignerAborted) for b in e.blames]
    text = "; ".join(str(e) for e in failed.values())
    if blames:
        return Aborted(f"partial signing aborted: {text}", blames)
    return FailedPrecondition(f"partial signing refused: {text}")
