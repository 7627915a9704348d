"""The coordinator's business logic, without gRPC: `CoordinatorService` wires the parts together.

    create_key            keygen over all n signers, then aux info over the same parties (sessions.py).
    refresh_key           under an admin quorum's signed key order (key_orders.py; every signer
                          checks it too): a refresh over all n, adopted by every signer only with
                          every party's confirmation; the key record moves to the new epoch
                          (key_refresh.py). The scheduler refreshes on the policy's refresh_every.
    reshare_key           under a signed reshare order: the key moved to a new committee /
                          threshold, same public key, adopted two-phase by dealers ∪ new
                          committee, then aux info (key_reshare.py).
    ensure_presignatures  presign sessions for one (key, signer set, path); public data stored
                          (presign_pool.py, which also runs the background refill).
    sign_eth              submit a request (submission.py; idempotent: one request per idempotency
                          key; another body is ALREADY_EXISTS). The coordinator's copy of the policy
                          decides: automatic tiers sign at once; others wait in `pending_approval`;
                          a blocked request ends `blocked` with the engine's reason. Refused with
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
    tick                  the scheduler's pass (scheduler.py): pending changes that take effect,
                          signer catch-up, expiry, time-lock releases, requests held by a freeze.
    watch                 every transition of a request until it is final (watch.py).
    sweeps.report         a backend's hot-wallet balance (btc_sweeps: UTXOs); over the cap, a cold sweep.

The request's life is lifecycle.py; signing attempts and combining are signing.py; which signers
are live is signer_health.py; governance changes and freeze orders are governance_admin.py.

Every transition is a durable row (store) and an audit entry; so are approvals, refusals,
governance changes, freeze orders, protocol sessions and aborts, and keys.

Failures raise a `ServiceError` subclass whose `code` the gRPC layer maps to a status code; a
signing request that fails is returned in state `failed` with the same code in `error_code`.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

import structlog

from signer.chains.ethereum import EvmTx
from signer.policy import COLD_SWEEP, NOT_COLD, REQUEST_KINDS, WITHDRAWAL
from signer.policy.revocation import Revocations

from .attestation import Attestation, attest
from .audit import REQUEST, AuditLog
from .audit.scrub import AuditScrub
from .btc_sweeps import BtcHotWallet, BtcSweeps
from .dbapi import POSTGRESQL
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
)
from .funds import FundsGate
from .governance import Governance, GovernanceView
from .governance_admin import GovernanceAdmin
from .instruments import Instruments
from .key_orders import KeyOrders
from .key_refresh import KeyRefresh
from .key_reshare import KeyReshare
from .lifecycle import Lifecycle
from .message_signing import MessageSigning
from .message_submission import MessageSubmission
from .officer_decisions import OfficerDecisions
from .pool_sizing import NO_POOL, PoolPolicy
from .presign_pool import PresignPool
from .replica_lease import ReplicaLease, recover_in_flight
from .request_encoding import body_hash, tx_from_json, tx_to_json
from .request_states import DEFAULT_REQUEST_TTL, MAX_REQUEST_TTL, reject_message
from .scheduler import Scheduler
from .sessions import LEVELS, Sessions
from .signer_client import SignerClient
from .signer_health import SignerHealth
from .signer_state import SignerStates
from .store import FAILED, RECOVERED_ERROR, AuditHook, KeyRecord, RequestRecord, Store
from .store.replicas import DEFAULT_LEASE
from .sweeps import HotWallet, Sweeps
from .trail import AuditTrail, audit_key_path, audit_public_key_path, open_audit_log
from .watch import Watches

__all__ = [  # the errors live in errors.py, the encodings in request_encoding.py; callers may import them here
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


class CoordinatorService:
    """Keys, presignatures and the signing-request lifecycle over a `Store` and signer clients.

    `scheduler_interval` > 0 runs `tick` in a background thread that often (0: call `tick` yourself,
    as tests with an injected clock do). Times come from the store's clock. `heartbeat` seconds
    between this replica's heartbeats (default: 3 on PostgreSQL, 0 = none on SQLite) and `lease`
    after which a silent replica's in-flight work is failed (replica_lease.py).
    """

    def __init__(
        self,
        store: Store,
        signers: Mapping[int, SignerClient],
        *,
        level: str = "128",
        pool_policy: PoolPolicy = NO_POOL,
        health_ttl: float = 5.0,
        down_ttl: float = 1.0,
        max_sign_attempts: int = 3,
        recover: bool = True,
        random_bytes: Callable[[int], bytes] = secrets.token_bytes,
        audit: AuditLog | None = None,
        request_ttl: int = DEFAULT_REQUEST_TTL,
        scheduler_interval: float = 1.0,
        peers: Mapping[int, bytes] | None = None,
        heartbeat: float | None = None,
        lease: float = DEFAULT_LEASE,
        hot_wallets: Sequence[HotWallet | BtcHotWallet] = (),
    ) -> None:
        if level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}")
        if len(signers) < 2:
            raise ValueError("a cluster needs at least two signers")
        if not 60 <= request_ttl <= MAX_REQUEST_TTL:
            raise ValueError(f"request_ttl must be within [60, {MAX_REQUEST_TTL}] seconds")
        self.store = store
        # One dict shared by every part: replacing a client here (tests do) replaces it everywhere.
        self.signers = dict(sorted(signers.items()))
        self.peers = dict(peers) if peers is not None else None
        self.level = level
        self.max_sign_attempts = max_sign_attempts
        self.request_ttl = request_ttl
        self.scheduler_interval = scheduler_interval
        self._executor = ThreadPoolExecutor(max_workers=max(8, 4 * len(self.signers)), thread_name_prefix="signer-rpc")
        self.audit = audit if audit is not None else open_audit_log(store)
        self.trail = AuditTrail(self.audit)
        self.signer_states = SignerStates()
        self.instruments = Instruments(self.signers)  # histograms and counters (metrics.py exports them)
        self.health = SignerHealth(self.signers, self._executor, health_ttl=health_ttl, down_ttl=down_ttl)
        self.governance = Governance(store, self.signers, self._executor)
        self.watches = Watches(store)
        self.admin = GovernanceAdmin(store, self.governance, self.trail, self.health, lambda: self.scheduler.wake())
        self.health.revoked = self.revoked_parties
        self.sessions = Sessions(
            store,
            self.signers,
            self._executor,
            self.trail,
            self.health,
            self.admin.resync,
            random_bytes,
            peers=self.peers,
            instruments=self.instruments,
        )
        self.sessions.revocations = self.revocations
        self.pool = PresignPool(store, self.signers, self.sessions, self.health, self.signer_states, policy=pool_policy)
        self.signing = MessageSigning(
            store,
            self.signers,
            self._executor,
            self.sessions,
            self.pool,
            self.health,
            self.signer_states,
            self.admin.resync,
            max_sign_attempts=max_sign_attempts,
            instruments=self.instruments,
        )
        self.lifecycle = Lifecycle(store, self.governance, self.trail, self.watches.notify, self.signing)
        self.sessions.on_abort = self.lifecycle.policy.note_abort  # the `aborts` breakers
        self.officers = OfficerDecisions(self.lifecycle)
        self.submission = MessageSubmission(
            store,
            self.sessions,
            self.lifecycle,
            self.watches,
            random_bytes,
            request_ttl=request_ttl,
            instruments=self.instruments,
        )
        self.sign_message = self.submission.sign_message  # a message to sign (message_submission.py)
        orders = KeyOrders(self.governance, self.trail)
        self.key_refresh = KeyRefresh(store, self.signers, self.sessions, self.trail, self.health, self.peers, orders)
        self.key_reshare = KeyReshare(
            store,
            self.signers,
            self.sessions,
            self.trail,
            self.health,
            self.key_refresh.commits,
            orders,
            lambda ps: self.admin.sync_signers(lambda behind: [p for p in self.health.live(behind) if p in ps]),
        )
        self.sweeps = Sweeps(self, [w for w in hot_wallets if isinstance(w, HotWallet)])
        self.btc_sweeps = BtcSweeps(self, [w for w in hot_wallets if isinstance(w, BtcHotWallet)])
        self.funds = FundsGate(self)
        self.lifecycle.policy.funds = self.funds.hold  # withdrawals wait for a hot wallet's funds
        self.audit_scrub = AuditScrub(self.audit)
        self.scheduler = Scheduler(
            store,
            self.admin,
            self.lifecycle,
            self.health,
            interval=scheduler_interval,
            key_refresh=self.key_refresh,
            audit_scrub=self.audit_scrub,
        )

        def recovered(rid: str) -> AuditHook:
            return self.trail.note(
                REQUEST,
                FAILED,
                rid,
                detail="recovered after restart",
                error=RECOVERED_ERROR,
                error_code="internal",
            )

        # Replicas on one PostgreSQL database heartbeat; a lone SQLite coordinator recovers at start only.
        if heartbeat is None:
            heartbeat = 3.0 if store.dialect == POSTGRESQL else 0.0
        self.lease = (
            ReplicaLease(store, recovered, self.instruments, interval=heartbeat, lease=lease) if heartbeat else None
        )
        if self.lease is not None:
            store.heartbeat()
        if recover:
            failed_requests, failed_presigs = recover_in_flight(
                store, recovered, self.instruments, restart=True, lease=lease
            )
            if failed_requests or failed_presigs:
                log.warning(
                    "recovered_after_restart", requests_failed=failed_requests, presignatures_failed=failed_presigs
                )
        self.pool.start()
        self.scheduler.start()
        if self.lease is not None:
            self.lease.start()

    def close(self) -> None:
        """Stop background work and wait for it."""
        if self.lease is not None:
            self.lease.stop()
        self.scheduler.stop()
        self.pool.close()
        self.scheduler.join()
        self._executor.shutdown(wait=True)

    def revocations(self) -> Revocations:
        """The signers the officer registry in force revokes."""
        return self.governance.revocations(int(self.store.now()))

    def revoked_parties(self) -> frozenset[int]:
        """Revoked party indices, and any signer whose configured identity key was revoked."""
        return self.revocations().revoked_among(self.peers or {})

    # --- signers and keys --------------------------------------------------------------------------------
    def live_signers(self, parties: Sequence[int], *, fresh: bool = False) -> list[int]:
        """Signers of `parties` believed reachable; stale entries are re-probed in parallel."""
        return self.health.live(parties, fresh=fresh)

    def create_key(self, name: str, threshold: int, level: str = "") -> KeyRecord:
        """Distributed keygen over every signer, then aux info over the same parties."""
        key = self.sessions.create_key(name, threshold, level or self.level)
        self.pool.key_created(key)
        return key

    def get_key(self, key_id: str) -> KeyRecord:
        """A key's public record."""
        return self.sessions.key(key_id)

    def refresh_key(self, key_id: str, key_order: bytes, *, actor: str = "coordinator") -> KeyRecord:
        """New shares and aux info for the same key under an admin quorum's signed order (`KeyOrder`
        wire form), committed on every signer (key_refresh.py)."""
        return self.key_refresh.refresh(key_id, actor=actor, key_order=key_order)

    def reshare_key(
        self,
        key_id: str,
        parties: Sequence[int],
        threshold: int,
        dealers: Sequence[int] = (),
        *,
        key_order: bytes,
        actor: str = "coordinator",
    ) -> KeyRecord:
        """The key moved to committee `parties` with `threshold`, same public key, under an admin
        quorum's signed order (key_reshare.py)."""
        return self.key_reshare.reshare(key_id, parties, threshold, dealers, actor=actor, key_order=key_order)

    def committing_epoch(self, key_id: str) -> int:
        """The refreshed epoch being committed for the key, 0 if none (the key does not sign meanwhile)."""
        pending = self.store.epoch_commit(key_id)
        return 0 if pending is None else pending.epoch

    def list_keys(self) -> list[KeyRecord]:
        """Every key."""
        return self.store.list_keys()

    def ensure_presignatures(
        self, key_id: str, signers: Sequence[int], path: Sequence[int] = (), count: int = 1
    ) -> int:
        """Presign until `count` are ready for (key, signers, path); returns how many were made."""
        return self.pool.ensure(key_id, signers, path, count)

    # --- signing requests ------------------------------------------------------------------------------
    def sign_eth(
        self,
        key_id: str,
        idempotency_key: str,
        path: Sequence[int],
        tx: EvmTx,
        *,
        kind: str = "",
        initiator: str = "",
        ttl: int | None = None,
        wait: float = 600.0,
        allocate_nonce: bool = False,
        replaces: str = "",
    ) -> RequestRecord:
        """Submit (or find again) a signing request; returns it in the state the policy puts it in.

        `signed` (or `failed`) for an automatic tier, `pending_approval`, `approved` (held by a
        freeze) or `time_locked`, or `blocked` with the reason in `policy_reason`. The intent
        officers approve names `initiator` (the backend's certificate name) and expires after
        `ttl` seconds (default `request_ttl`). A retry with the same idempotency key and body
        returns the same request (waiting up to `wait` seconds while it is being signed).
        With `allocate_nonce` the coordinator picks the body's nonce; `replaces` names the request
        a `replacement` reuses the nonce of (submission.py). `kind` "" is a withdrawal, or a
        replacement when `replaces` is given.
        """
        return self.submission.sign_eth(
            key_id,
            idempotency_key,
            path,
            tx,
            kind=kind,
            initiator=initiator,
            ttl=ttl,
            wait=wait,
            allocate_nonce=allocate_nonce,
            replaces=replaces,
        )

    def sign_btc(
        self, key_id: str, idempotency_key: str, psbt: bytes, *, kind: str = WITHDRAWAL, initiator: str = ""
    ) -> RequestRecord:
        """Submit (or find again) a Bitcoin spend of the key's coins (an unsigned PSBT); as `sign_eth`."""
        return self.submission.sign_btc(key_id, idempotency_key, psbt, kind=kind, initiator=initiator)

    def approve(self, request_id: str, approval: bytes, *, officer: str) -> RequestRecord:
        """An officer's approval (`Approval.to_bytes()`), presented by that officer; see `OfficerDecisions.approve`."""
        return self.officers.approve(request_id, approval, officer=officer)

    def reject(self, request_id: str, officer_id: str, signature: bytes, reason: str, *, officer: str) -> RequestRecord:
        """An officer's signed veto (`reject_message`); see `OfficerDecisions.reject`."""
        return self.officers.reject(request_id, officer_id, signature, reason, officer=officer)

    # --- governance: changes, freeze orders --------------------------------------------------------------
    def get_governance(self) -> GovernanceView:
        """The registry and policy in force, pending loosenings, frozen scopes."""
        return self.admin.view()

    def propose_change(self, kind: str, change_json: str, *, admin: str = "") -> GovernanceView:
        """Apply an admin-quorum-signed change; see `GovernanceAdmin.propose_change`."""
        return self.admin.propose_change(kind, change_json, admin=admin)

    def freeze(self, order: bytes, *, officer: str) -> GovernanceView:
        """Apply a freeze order signed by `officer`; see `GovernanceAdmin.freeze`."""
        return self.admin.freeze(order, officer=officer)

    def unfreeze(self, order: bytes, *, officer: str = "") -> GovernanceView:
        """Lift a freeze with a quorum-signed `UnfreezeOrder`; see `GovernanceAdmin.unfreeze`."""
        return self.admin.unfreeze(order, officer=officer)

    def tick(self) -> None:
        """The scheduler's pass; see `Scheduler.tick`."""
        self.scheduler.tick()

    # --- reading ---------------------------------------------------------------------------------------
    def attest_report(self, digest: bytes, kind: str, *, actor: str) -> Attestation:
        """Record an audit entry naming a report's digest and sign it (see `attestation.attest`)."""
        return attest(self.audit, digest, kind, actor)

    def export_audit(self, since_seq: int = 0) -> list[str]:
        """The audit log as JSON lines (see `AuditTrail.export_lines`)."""
        return self.trail.export_lines(since_seq)

    def get_request(self, request_id: str) -> RequestRecord:
        """A request's current record."""
        return self.lifecycle.get(request_id)

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
        return self.watches.events(request_id, timeout, poll)
