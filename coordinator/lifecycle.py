"""The one home of a request's life: every move a request makes, checked against the table.

The table of states and named moves is request_states.py; this module is the only code that moves
a request (the store writes what it is told, guarded by the state each move starts from):

    submit -> submitted -> pending_approval -> approved -> time_locked -> signing -> signed
    exits: rejected (an officer's signed veto), blocked (the policy, a freeze at submission, an
    undecodable body: final, with the engine's reason), expired, failed (with blame).

`advance` asks the policy (request_policy.py) what it allows now and moves the request as far as
it may go: to `pending_approval` (quorum not met), `approved`, `time_locked` (until the officers'
quorum time plus the rule's lock), or on to signing. A request approved while signing is frozen
stays `approved` (policy_reason `frozen`) until an unfreeze; the scheduler (`release_due`)
expires requests, blocks those made under a replaced policy version and signs what a time lock or
an unfreeze releases. Signing is a collaborator (signing.py) called per attempt with the whole
release and a reserved presignature; it answers signed, retry or failed, and the lifecycle makes
the move. Every move names the state it starts from, so threads racing on one request agree on
who moves it (the loser sees the store's `InvalidTransition`); a move the table does not allow is
`IllegalTransition` (our bug). Each move is a durable row, an event and an audit entry committed
together, and logged once committed (request_log.py); one step's moves are one store transaction
(`_one_commit`: submitted -> approved -> signing with its presignature reserved and attempt
recorded; then signing -> signed with it consumed), so a crash leaves a request before or after a
step, never inside (docs/performance.md).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Mapping
from typing import Any

import structlog

from signer.policy import Approval, Release, describe_expr

from . import request_log
from .audit import APPROVAL, REQUEST
from .btc_request import SpendBody, body_of_row
from .errors import Internal, NotFound, ServiceError, Unavailable
from .governance import Governance
from .message_request import MessageJob
from .request_encoding import Body, NewRequest, NonceClaim
from .request_policy import Assessment, RequestPolicy
from .request_states import (
    APPROVE,
    APPROVED,
    ATTEMPT,
    AWAIT_APPROVALS,
    BLOCK,
    CLAIM,
    EXPIRE,
    FAIL,
    PENDING_APPROVAL,
    RECORD_APPROVAL,
    REJECT,
    SIGN,
    SIGNING,
    SUBMIT,
    SUBMITTED,
    TIME_LOCK,
    TIME_LOCKED,
    Move,
    check_move,
)
from .signing import Attempts, Retry, Signed, SignFailure, Signing, SignJob
from .step_commit import StepCommit
from .store import InvalidTransition, PresignatureRecord, RequestRecord, Store
from .store import NotFound as StoreNotFound
from .trail import AuditTrail

log = structlog.get_logger("coordinator")


class _Raced(Exception):
    """Rolls back a submit whose idempotency key another replica bound first (nonce included)."""

    def __init__(self, row: RequestRecord) -> None:
        super().__init__(row.request_id)
        self.row = row


_AUDITED_FIELDS = frozenset(
    {"policy_reason", "rule_id", "time_lock_until", "error", "error_code", "blame", "tx_hash", "digest"}
)


class Lifecycle:
    """Moves requests; asks `RequestPolicy` what is allowed and `Signing` for signatures."""

    def __init__(
        self,
        store: Store,
        governance: Governance,
        trail: AuditTrail,
        notify: Callable[[str, bool], None],
        signing: Signing,
    ) -> None:
        self.store = store
        self.governance = governance
        self.trail = trail
        self.policy = RequestPolicy(store, governance, trail)
        self.signing = signing
        self._notify = notify
        self._one_commit = StepCommit(store, notify)  # a step's moves: one transaction (step_commit.py)
        self._log_move = functools.partial(request_log.state_changed, self._one_commit, signing.instruments)

    def get(self, request_id: str) -> RequestRecord:
        """A request's current record (NotFound if there is none)."""
        try:
            return self.store.get_request(request_id)
        except StoreNotFound as exc:
            raise NotFound(str(exc)) from None

    # --- the moves -----------------------------------------------------------------------------------
    def _move(
        self,
        move: Move,
        request_id: str,
        sources: Collection[str],
        detail: str = "",
        *,
        actor: str = "coordinator",
        evidence: Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> RequestRecord:
        """Make `move` from one of `sources` (durable row + event + audit entry, in one transaction);
        wake the request's watchers. `evidence` is audited only (e.g. an officer's signature)."""
        expect = tuple(sources)
        check_move(move, expect)
        if len(expect) > 1:
            # pin the state the log event names (the store still refuses a move raced since this read)
            current = self.get(request_id).state
            expect = (current,) if current in expect else expect
        audited = {k: v for k, v in fields.items() if k in _AUDITED_FIELDS and v not in ("", (), None)}
        note = self.trail.note(REQUEST, move.target, request_id, actor, detail=detail, **audited, **(evidence or {}))
        row = self.store.transition(request_id, move.target, detail, expect=expect, audit=note, **fields)
        self._one_commit.wake(request_id, row.final)
        self._log_move(move, row, expect[0], detail or str(fields.get("policy_reason") or ""))
        return row

    def submit(
        self, key: tuple[str, str], body_hash: str, nonce: NonceClaim | None, build: Callable[[int], NewRequest]
    ) -> tuple[RequestRecord, NewRequest | None]:
        """Create the request in `submitted` with its nonce taken (`build(nonce)` makes it), both in
        one transaction; or find the one under `key`, (initiator, idempotency key) (then no nonce is
        taken and the second value is None). Raises the store's IdempotencyConflict (another body), NotFound (no
        such key, or `nonce.replaces` holds no such nonce) or NonceInUse."""
        try:
            with self._one_commit():
                found = self.store.find_request(*key, body_hash)
                if found is not None:
                    return found, None
                n = nonce  # None: no account nonce (a Bitcoin spend)
                taken = n and self.store.take_nonce(n.chain_id, n.address, n.nonce, replaces=n.replaces, tx=n.tx)
                new = build(taken or 0)
                actor = new.initiator or "coordinator"
                note = self.trail.note(REQUEST, SUBMIT.target, new.request_id, actor, **new.audited())
                row, created = self.store.create_request(**new.columns(), audit=note)
                if not created:
                    raise _Raced(row)  # another replica won the idempotency key: give the nonce back
                self._one_commit.wake(new.request_id, False)
                self._log_move(SUBMIT, row, "", "submitted by " + actor)
        except _Raced as raced:
            return raced.row, None
        return row, new

    def record_approval(self, row: RequestRecord, parsed: Approval, approval: bytes, officer: str) -> None:
        """Record a verified approval (the request stays pending until `advance` finds the quorum met).
        Raises the store's DuplicateApproval or InvalidTransition."""
        check_move(RECORD_APPROVAL, (row.state,))
        recorded = self.store.add_approval(
            row.request_id,
            parsed.officer_id,
            approval,
            parsed.signed_at,
            parsed.expires_at,
            f"approved by {parsed.officer_id}",
            audit=self.trail.note(
                APPROVAL,
                "approval",
                row.request_id,
                officer,
                officer_id=parsed.officer_id,
                intent_digest=parsed.intent_digest,
                signed_at=parsed.signed_at,
                expires_at=parsed.expires_at,
                batch_root=b"" if parsed.batch is None else parsed.batch.root,
                approval=approval,
            ),
        )
        if recorded:
            self._notify(row.request_id, False)
            self._log_move(RECORD_APPROVAL, row, PENDING_APPROVAL, f"approved by {parsed.officer_id}")

    def reject(self, request_id: str, officer_id: str, signature: bytes, text: str, *, actor: str) -> RequestRecord:
        """An officer's verified veto ends an open request."""
        why = f"rejected by {officer_id}" + (f": {text}" if text else "")
        return self._move(
            REJECT,
            request_id,
            REJECT.sources,
            why,
            actor=actor,
            policy_reason="rejected",
            error=why,
            evidence={"officer_id": officer_id, "signature": signature},
        )

    def block(self, row: RequestRecord, reason: str, rule_id: str = "", detail: str = "") -> RequestRecord:
        """End a request the policy refuses, with the engine's reason."""
        return self._move(
            BLOCK,
            row.request_id,
            (row.state,),
            detail or f"blocked: {reason}" + (f" (rule {rule_id})" if rule_id else ""),
            policy_reason=reason,
            rule_id=rule_id,
            error=f"blocked by policy: {reason}",
        )

    def fail(self, request_id: str, error: ServiceError) -> RequestRecord:
        """End a request being signed with `error` (its code and blame recorded)."""
        log.warning(
            "request_failed",
            request_id=request_id,
            code=error.code,
            error=error.message,
            culprits=sorted({b.party for b in error.blames}),
        )
        return self._move(
            FAIL, request_id, (SIGNING,), error.message, error=error.message, error_code=error.code, blame=error.blames
        )

    # --- evaluation -------------------------------------------------------------------------------------
    def advance(self, request_id: str, *, body: Body | SpendBody | MessageJob | None = None) -> RequestRecord:
        """Evaluate a request that is not final and move it as far as the policy allows now
        (`body`: the request's transaction and intent, when the caller already holds them).

        Safe to call from several threads: every move names the state it starts from, and a
        thread that loses the race returns the request as the winner left it.
        """
        try:
            return self._advance_once(request_id, body)
        except InvalidTransition:
            return self.store.get_request(request_id)

    def _advance_once(self, request_id: str, body: Body | SpendBody | MessageJob | None) -> RequestRecord:
        row = self.store.get_request(request_id)
        if row.final or row.state == SIGNING:
            return row
        now = int(self.store.now())
        if now >= row.expires_at:
            if row.state not in EXPIRE.sources:
                return row  # still being submitted: its submitter evaluates it
            return self._move(EXPIRE, request_id, (row.state,), "not signed before it expired", policy_reason="expired")
        verdict = self.policy.assess(row, now, None if body is None else body.intent)
        if not isinstance(verdict, Assessment):
            return self.block(row, verdict.reason, verdict.rule_id, verdict.detail)
        decision = verdict.decision
        if not decision.satisfied:
            if row.state == SUBMITTED:
                need = describe_expr(decision.required) if decision.required is not None else "approvals"
                return self._move(
                    AWAIT_APPROVALS,
                    request_id,
                    (SUBMITTED,),
                    f"needs {need} (rule {decision.rule_id})",
                    policy_reason=decision.reason,
                    rule_id=decision.rule_id,
                )
            if row.state == PENDING_APPROVAL:
                return row
            # Approved before, but the approvals no longer meet the policy (expired, officer removed).
            return self.block(row, decision.reason, decision.rule_id)
        approve: Callable[[], RequestRecord] | None = None
        if row.state in (SUBMITTED, PENDING_APPROVAL):
            who = ", ".join(sorted(a.officer_id for a, _ in verdict.approvals))
            rule = f"rule {decision.rule_id}"
            why = f"allowed by {rule}" if decision.action == "allow" else f"approved by {who} ({rule})"
            approve = functools.partial(
                self._move,
                APPROVE,
                request_id,
                (row.state,),
                why + (f"; held: {verdict.awaiting}" if verdict.awaiting else ""),
                policy_reason=verdict.hold_reason or decision.reason,
                rule_id=decision.rule_id,
                time_lock_until=decision.time_lock_until,
            )
        if now < decision.time_lock_until:
            with self._one_commit():
                if approve is not None:
                    row = approve()
                if row.state == APPROVED:
                    row = self._move(
                        TIME_LOCK,
                        request_id,
                        (APPROVED,),
                        f"time lock until {decision.time_lock_until}",
                        policy_reason="time_locked",
                        time_lock_until=decision.time_lock_until,
                    )
            return row
        # Held: frozen or short of funds (released by the scheduler), the key between epochs (epoch_commit.py).
        if verdict.hold_reason or self.store.key_waits(row.key_id):
            return approve() if approve is not None else row
        release = Release(
            request_id=request_id,
            approvals=tuple(raw for _, raw in verdict.approvals),
            initiator=row.initiator,
            expires_at=row.expires_at,
            path=row.path,
            policy_hash=row.policy_hash,
            kind=row.kind,
        )
        job = self.signing.job(row, release, body if body is not None else body_of_row(row, verdict.intent))
        return self._sign(row, job, decision.reason, approve)

    # --- signing ---------------------------------------------------------------------------------------
    def _sign(
        self, row: RequestRecord, job: SignJob, reason: str, approve: Callable[[], RequestRecord] | None = None
    ) -> RequestRecord:
        """Claim an approved (or released time-locked) request for signing and sign it; any
        unexpected error fails the request (never left in flight). `approve` (the request is not yet
        approved), the claim and the first attempt with a ready presignature commit as one transaction."""
        attempts = self.signing.attempts(job)
        live = self.signing.ready_set(job, attempts) if attempts.next() else []
        first: PresignatureRecord | None = None
        try:
            with self._one_commit():
                if approve is not None:
                    row = approve()
                self._move(
                    CLAIM,
                    row.request_id,
                    (row.state,),
                    policy_reason=reason,
                    digest=job.body.digest,
                    from_address=job.from_address,
                )
                first = self.signing.reserve_ready(job, live)
                if first is not None:
                    self._record_attempt(job, attempts, first)
        except InvalidTransition:
            return self.store.get_request(row.request_id)  # another thread moved it first (it signs it)
        try:
            return self._attempts(job, attempts, first)
        except Exception as exc:
            log.exception("sign_internal_error", request_id=row.request_id, key_id=job.key.key_id)
            current = self.store.get_request(row.request_id)
            if current.final:
                return current
            return self.fail(row.request_id, Internal(f"internal error: {type(exc).__name__}: {exc}"))

    def _record_attempt(self, job: SignJob, attempts: Attempts, presig: PresignatureRecord) -> None:
        self._move(
            ATTEMPT,
            job.release.request_id,
            (SIGNING,),
            f"attempt {attempts.number}: signers {list(presig.signers)}"
            + (f" (after: {attempts.last})" if attempts.last else ""),  # the request's events say why
            presignature_id=presig.presignature_id,
            # The audit format predates the rename: the entry names it `presig_id`, in hex.
            evidence={"presig_id": presig.presignature_id.hex()},
        )

    def _attempts(self, job: SignJob, attempts: Attempts, first: PresignatureRecord | None) -> RequestRecord:
        """Sign with `first` (reserved and recorded in the claim's transaction), else attempt by
        attempt: reserve (presigning if need be), record the attempt, sign."""
        request_id = job.release.request_id
        presig, started = first, attempts.number > 0  # `_sign` began attempt 1 (unless the budget is 0)
        while started or attempts.next():
            started, fresh = False, presig is None
            if presig is None:
                got = self.signing.reserve(job, attempts)
                if isinstance(got, SignFailure):
                    return self.fail(request_id, got.error)
                if isinstance(got, Retry):
                    attempts.retry(got)
                    continue
                presig = got
            try:
                if fresh:
                    self._record_attempt(job, attempts, presig)
                outcome = self.signing.sign(job, presig, attempts)
                if isinstance(outcome, Signed):
                    return self._signed(job, outcome)
            except BaseException:
                self.signing.abandon(presig)
                raise
            if isinstance(outcome, SignFailure):
                return self.fail(request_id, outcome.error)
            attempts.retry(outcome)
            presig = None
        return self.fail(
            request_id, Unavailable(f"no signer set answered after {attempts.number} attempts: {attempts.last}")
        )

    def _signed(self, job: SignJob, signed: Signed) -> RequestRecord:
        with self._one_commit():  # the presignature consumed and the signature recorded: one commit
            self.signing.consumed(signed.presig)
            row = self._move(
                SIGN,
                job.release.request_id,
                (SIGNING,),
                f"signers {list(signed.presig.signers)}",
                r=signed.r,
                s=signed.s,
                v=signed.v,
                raw_tx=signed.raw_tx,
                tx_hash=signed.tx_hash,
            )
        log.info(
            "request_signed",
            request_id=row.request_id,
            key_id=job.key.key_id,
            signers=list(signed.presig.signers),
            tx_hash=row.tx_hash.hex(),
        )
        self.signing.signed(job, signed.presig)
        return row

    # --- the scheduler's pass ----------------------------------------------------------------------------
    def release_due(self, now: int, stop: Callable[[], bool] = lambda: False, *, all_open: bool = False) -> None:
        """The scheduler's pass over open requests: expire the stale, block those under a replaced
        policy, sign what a time lock or a lifted freeze releases. `all_open` re-evaluates every
        open request (the first pass after a start: a crash between recording the approval that
        met the quorum and the move it allows left the request pending with its quorum met)."""
        policy = self.governance.policy(now)
        policy_hash = None if policy is None else policy.hash()
        frozen = self.governance.freeze_state()
        for row in self.store.open_requests():
            if stop():
                return
            due = (
                all_open
                or now >= row.expires_at
                or policy_hash is None
                or row.policy_hash != policy_hash
                or (row.state == APPROVED and not frozen.is_frozen(row.key_id))
                or (row.state == TIME_LOCKED and now >= row.time_lock_until and not frozen.is_frozen(row.key_id))
            )
            if due:
                try:
                    self.advance(row.request_id)
                except Exception:  # background work: one bad request must not stop the others
                    log.exception("scheduler_request_failed", request_id=row.request_id)
