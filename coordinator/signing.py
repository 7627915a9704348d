"""Signing attempts and combining: reserve a presignature, fan out PartialSign, combine, verify.

Picks the first live set of t signers with (or given) a ready presignature, reserves it, collects
partial signatures (each signer checks the release itself against its own registry, policy, freeze
state and ledger), combines them (each σ_j checked, low-S, recovery id, final verification) and
builds the raw EIP-1559 transaction. A reserved presignature is never used again; an unreachable
signer means another set and another presignature. A signer that no longer holds the presignature
(it restarted: presignatures live only in signer memory) means another presignature: every ready
one made before its restart is dropped (signer_state.py). A signer whose governance state is behind
or was restored (`state_behind`, `state_rolled_back`, `ledger_saturated`) gets the governance log
again and the request tries another set. A bad partial signature is terminal: the request fails
naming the signer.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from concurrent.futures import Executor

import structlog

from signer.chains.ethereum import Eip1559Tx, TxError, address_of, keccak256
from signer.node.server import PRESIGNATURE_UNKNOWN
from signer.tss import hd
from signer.tss.curve import Point, scalar_from_bytes
from signer.tss.errors import Blame, DecodeError, InternalError, InvalidInput, ProtocolAbort
from signer.tss.presign import PresignaturePublic
from signer.tss.sign import PartialSignature, combine

from . import relay
from .errors import Aborted, FailedPrecondition, Internal, ServiceError, Unavailable, error_from_session
from .lifecycle import Lifecycle
from .presign_pool import PresignPool
from .request_encoding import tx_from_json
from .sessions import Sessions
from .signer_client import (
    PartialSignResult,
    Release,
    SignerAborted,
    SignerClient,
    SignerError,
    SignerRejected,
    SignerUnavailable,
)
from .signer_health import SignerHealth
from .signer_state import SATURATED, SignerStates, state_parties, state_refusals
from .store import (
    CONSUMED,
    PRESIG_FAILED,
    SIGNED,
    SIGNING,
    InvalidTransition,
    KeyRecord,
    PresignatureRecord,
    RequestRecord,
    Store,
)

log = structlog.get_logger("coordinator")
SIGN_ROUND = "sign"


@dataclasses.dataclass(frozen=True, slots=True)
class _Retry:
    """A signing attempt that failed in a way another set or presignature can fix."""

    reason: str
    free: bool  # a restart or a state refusal, not an availability failure: does not use up an attempt


class Signing:
    """Signs released requests; `lifecycle` records every move (set once the lifecycle exists)."""

    lifecycle: Lifecycle

    def __init__(
        self,
        store: Store,
        signers: Mapping[int, SignerClient],
        executor: Executor,
        sessions: Sessions,
        pool: PresignPool,
        health: SignerHealth,
        signer_states: SignerStates,
        resync: Callable[[set[int]], None],
        *,
        max_sign_attempts: int = 3,
    ) -> None:
        self.store = store
        self.signers = signers
        self.sessions = sessions
        self.pool = pool
        self.health = health
        self.signer_states = signer_states
        self.max_sign_attempts = max_sign_attempts
        self._executor = executor
        self._resync = resync

    def sign_request(self, row: RequestRecord, release: Release, reason: str) -> RequestRecord:
        """Claim an approved (or released time-locked) request for signing and sign it."""
        key = self.sessions.key(row.key_id)
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
            live = self.health.live(key.parties)
            if len(live) < key.threshold:
                # The cache may be stale (a signer just came back): probe everyone before giving up.
                live = self.health.live(key.parties, fresh=True)
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
                presig = self.pool.reserve(key, live, path, request_id)
            except relay.SignerUnreachable as exc:
                last = str(exc)
                continue
            except relay.SessionAborted as exc:
                behind = state_parties(exc.blames)
                if not behind:
                    return self.lifecycle.fail(request_id, error_from_session(exc))
                excluded |= behind  # caught up by now (see resync); another set meanwhile
                last, budget = str(exc), min(budget + 1, cap)
                continue
            except relay.SessionFailed as exc:
                return self.lifecycle.fail(request_id, error_from_session(exc))
            except ServiceError as exc:
                return self.lifecycle.fail(request_id, exc)
            try:
                outcome = self._sign_with(key, presig, tx, digest, release, attempt, excluded)
            except BaseException:
                self.pool.drop(presig.presig_id)
                raise
            if isinstance(outcome, RequestRecord):
                return outcome
            last = outcome.reason
            if outcome.free:
                budget = min(budget + 1, cap)
        return self.lifecycle.fail(request_id, Unavailable(f"no signer set answered after {attempt} attempts: {last}"))

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
        ok, failed = relay.parallel(self._executor, calls)
        for p in ok:
            self.health.mark(p, True)
        states.note({p: r.attestation for p, r in ok.items()})
        states.forget(presig.presig_id)
        if failed:
            self.store.finish_presignature(presig.presig_id, PRESIG_FAILED)
            down = [p for p, e in failed.items() if isinstance(e, SignerUnavailable)]
            for p in down:
                self.health.mark(p, False)
            restarted = [
                p for p, e in failed.items() if isinstance(e, SignerRejected) and e.reason == PRESIGNATURE_UNKNOWN
            ]
            self.pool.drop_stale(key, restarted)
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
        self.pool.after_signing(key, presig)
        return row


def _partial_sign_error(failed: Mapping[int, SignerError]) -> ServiceError:
    blames = [b for e in failed.values() if isinstance(e, SignerAborted) for b in e.blames]
    text = "; ".join(str(e) for e in failed.values())
    if blames:
        return Aborted(f"partial signing aborted: {text}", blames)
    return FailedPrecondition(f"partial signing refused: {text}")
