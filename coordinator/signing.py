"""Signing attempts and combining: reserve a presignature, fan out PartialSign, combine, verify.

Picks the first live set of t signers with (or given) a ready presignature, reserves it, collects
partial signatures (each signer checks the release itself against its own registry, policy, freeze
state and ledger), combines them (each σ_j checked, low-S, recovery id, final verification) and
builds the raw EIP-1559 transaction. A reserved presignature is never used again; an unreachable
signer means another set and another presignature. A signer that no longer holds the presignature
(it restarted: presignatures live only in signer memory) means another presignature: every ready
one made before its restart is dropped (signer_state.py). A signer whose governance state is behind
or was restored (`state_behind`, `state_rolled_back`, `ledger_saturated`), or that lacks its
governance (`no_policy`, `no_registry`: restored without `governance/*`), gets the governance log
again and the request tries another set. A signer that fails on its own side (unreachable, a
deadline, an internal error, its store failed: `signer_client.degraded`) is backed off from
(signer_health.py) and the request tries another set. A policy refusal, or a bad partial
signature, is terminal: the request fails (naming the signer for a bad σ).

The lifecycle drives it: `job` once per request, then per attempt `reserve` and `sign` ("sign this
release with a reserved presignature" -> `Signed`, `Retry` or `SignFailure` with blame); every
state move in between is the lifecycle's.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor

from signer.chains.ethereum import TxError, address_of, keccak256
from signer.node.node import PartialSig
from signer.node.wire import PRESIGNATURE_UNKNOWN, SignBody
from signer.policy import Release
from signer.tss import hd
from signer.tss.curve import Point, scalar_from_bytes
from signer.tss.errors import Blame, DecodeError, InternalError, InvalidInput, ProtocolAbort
from signer.tss.presign import PresignaturePublic
from signer.tss.sign import PartialSignature, Signature, combine

from . import relay
from .btc_request import SpendBody
from .errors import Aborted, FailedPrecondition, Internal, ServiceError, Unavailable, error_from_session
from .instruments import SIGN_PHASE, Instruments
from .message_request import MessageJob
from .presign_pool import PresignPool
from .request_encoding import Body
from .sessions import Sessions
from .signer_client import (
    SignerAborted,
    SignerClient,
    SignerError,
    SignerRejected,
    SignerUnavailable,
    degraded,
)
from .signer_health import SignerHealth
from .signer_state import SATURATED, SignerStates, state_parties, state_refusals
from .store import CONSUMED, PRESIG_FAILED, KeyRecord, PresignatureRecord, RequestRecord, Store

SIGN_ROUND = "sign"


@dataclasses.dataclass(frozen=True, slots=True)
class SignJob:
    """One released request to sign: its key, body (tx, intent, digest) and the release the signers check."""

    key: KeyRecord
    body: Body | SpendBody | MessageJob
    release: Release
    from_address: str  # the derived key's address: the transaction's sender


@dataclasses.dataclass(frozen=True, slots=True)
class Signed:
    """A combined, verified signature and the broadcastable transaction (its presignature still reserved:
    the lifecycle records it consumed in the transaction that records the signature)."""

    presig: PresignatureRecord
    r: bytes
    s: bytes
    v: int
    raw_tx: bytes
    tx_hash: bytes


@dataclasses.dataclass(frozen=True, slots=True)
class Retry:
    """An attempt that failed in a way another set or presignature can fix."""

    reason: str
    free: bool  # a restart or a state refusal, not an availability failure: does not use up an attempt


@dataclasses.dataclass(frozen=True, slots=True)
class SignFailure:
    """The request cannot be signed: the error (with blame) it fails with."""

    error: ServiceError


@dataclasses.dataclass(slots=True)
class Attempts:
    """The attempt budget of one request. A signer that restarted (lost its presignatures) or whose
    state was restored costs an attempt that says nothing about availability: it earns one more, at
    most once per signer (`cap`)."""

    budget: int
    cap: int
    number: int = 0
    last: str = ""
    excluded: set[int] = dataclasses.field(default_factory=set)  # state refused: another set if there is one

    def next(self) -> bool:
        """Start the next attempt, if the budget allows one."""
        if self.number >= self.budget:
            return False
        self.number += 1
        return True

    def retry(self, why: Retry) -> None:
        """The attempt failed in a way another attempt may fix."""
        self.last = why.reason
        if why.free:
            self.budget = min(self.budget + 1, self.cap)


class Signing:
    """Signs released requests, one attempt at a time; the lifecycle records every move."""

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
        instruments: Instruments,
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
        self.instruments = instruments

    def job(self, row: RequestRecord, release: Release, body: Body | SpendBody | MessageJob) -> SignJob:
        """What signing `row` needs (the key, and the address the derived key signs as: derived at
        submission and recorded; derived here only for a request recorded before that)."""
        key = self.sessions.key(row.key_id)
        address = row.from_address
        if not address:
            address = address_of(hd.derive(Point.from_bytes(key.public_key), key.chain_code, row.path).public_key)
        return SignJob(key, body, release, address)

    def attempts(self, job: SignJob) -> Attempts:
        """A fresh attempt budget for `job`."""
        return Attempts(self.max_sign_attempts, self.max_sign_attempts + len(job.key.parties))

    def reserve(self, job: SignJob, attempts: Attempts) -> PresignatureRecord | Retry | SignFailure:
        """A reserved presignature for a live signer set (presigning if none is ready)."""
        key = job.key
        live = self.health.live(key.parties)
        if len(live) < key.threshold:
            # The cache may be stale (a signer just came back): probe everyone before giving up.
            live = self.health.live(key.parties, fresh=True)
        usable = [p for p in live if p not in attempts.excluded]
        live = usable if len(usable) >= key.threshold else live
        if len(live) < key.threshold:
            down = sorted(set(key.parties) - set(live))
            return SignFailure(
                Unavailable(
                    f"only {len(live)} of {len(key.parties)} signers reachable (down: {down}); need {key.threshold}"
                )
            )
        try:
            return self.reserve_set(job, live)
        except relay.SignerUnreachable as exc:
            return Retry(str(exc), free=False)
        except relay.SessionAborted as exc:
            behind = state_parties(exc.blames)
            if not behind:
                return SignFailure(error_from_session(exc))
            attempts.excluded |= behind  # caught up by now (see resync); another set meanwhile
            return Retry(str(exc), free=True)
        except relay.SignerRefused as exc:
            if not exc.degraded:
                return SignFailure(error_from_session(exc))
            attempts.excluded |= set(exc.degraded)  # backed off by now (Sessions.run): another set
            return Retry(str(exc), free=False)
        except relay.SessionFailed as exc:
            return SignFailure(error_from_session(exc))
        except ServiceError as exc:
            return SignFailure(exc)

    def reserve_set(self, job: SignJob, live: list[int]) -> PresignatureRecord:
        """The first live set's presignature for the release's path, reserved (presigning if none is ready)."""
        return self.pool.reserve(job.key, live, job.release.path, job.release.request_id)

    def ready_set(self, job: SignJob, attempts: Attempts) -> list[int]:
        """The live signers a first attempt may reserve a ready presignature for ([] if fewer than t):
        asked before `reserve_ready`, so no health probe runs inside the caller's store transaction."""
        live = [p for p in self.health.live(job.key.parties) if p not in attempts.excluded]
        return live if len(live) >= job.key.threshold else []

    def reserve_ready(self, job: SignJob, live: list[int]) -> PresignatureRecord | None:
        """A ready presignature for a set of `live` (from `ready_set`), reserved; None if there is none
        (the attempts then presign). Store work only: the lifecycle runs it in the claim's transaction."""
        if not live:
            return None
        return self.pool.reserve_ready(job.key, live, job.release.path, job.release.request_id)

    def consumed(self, presig: PresignatureRecord) -> None:
        """The signature is made: its presignature is consumed (in the transaction recording the signature)."""
        self.store.finish_presignature(presig.presignature_id, CONSUMED)

    def abandon(self, presig: PresignatureRecord) -> None:
        """An attempt broke off: its reserved presignature is failed, never ready again."""
        self.pool.drop(presig.presignature_id)

    def sign(self, job: SignJob, presig: PresignatureRecord, attempts: Attempts) -> Signed | Retry | SignFailure:
        """Sign the release with a reserved presignature: PartialSign to its signers (in parallel),
        combine, verify. Signers whose state refused are added to `attempts.excluded`. A failed
        attempt fails the presignature; a `Signed` one leaves it reserved for the caller to record
        as `consumed` together with the signature."""
        started = time.perf_counter()  # the online step: PartialSign fan-out to the combined signature
        body = job.body
        if not isinstance(body, Body):
            raise InternalError("a Bitcoin spend is signed by btc_signing.SpendSigning")
        tx, digest = body.tx, body.digest
        ok = self._partials(job, presig, attempts, tx, job.release)
        if isinstance(ok, Retry | SignFailure):
            return ok
        try:
            sig = combined(presig, digest, ok)
            raw = tx.raw_signed(sig.r, sig.s, sig.v)
        except ProtocolAbort as abort:
            return self.aborted(job, abort, [presig])
        except (InternalError, InvalidInput, TxError) as exc:
            self.store.finish_presignature(presig.presignature_id, PRESIG_FAILED)
            return SignFailure(Internal(f"combining failed: {exc}"))
        # Consumed in the transaction that records the signature (`consumed`, lifecycle._signed).
        self.instruments.signing.observe(time.perf_counter() - started)
        return Signed(presig, sig.r.to_bytes(32, "big"), sig.s.to_bytes(32, "big"), sig.v, raw, keccak256(raw))

    def aborted(self, job: SignJob, abort: ProtocolAbort, presigs: Sequence[PresignatureRecord]) -> SignFailure:
        """Combining found bad partial signatures: the presignatures failed, the abort counted."""
        self.instruments.aborted(SIGN_PHASE, abort.blames)
        for presig in presigs:
            self.store.finish_presignature(presig.presignature_id, PRESIG_FAILED)
        self.sessions.aborted(job.key.key_id, job.release.request_id)
        return SignFailure(Aborted(f"partial signature rejected: {abort}", abort.blames))

    def _partials(
        self, job: SignJob, presig: PresignatureRecord, attempts: Attempts, body: SignBody, release: Release
    ) -> dict[int, PartialSig] | Retry | SignFailure:
        """PartialSign of `body` under `release` to the presignature's signers, in parallel: every
        answer, or why not (the presignature failed then; state refusals added to `attempts.excluded`)."""
        key, states = job.key, self.signer_states
        calls: dict[int, Callable[[], PartialSig]] = {
            p: functools.partial(
                self.signers[p].partial_sign, key.key_id, presig.presignature_id, body, release, states.for_party(p)
            )
            for p in presig.signers
        }
        ok, failed = relay.parallel(self._executor, calls)
        for p in ok:
            self.health.mark(p, True)
        states.note({p: r.attestation for p, r in ok.items()})
        states.forget(presig.presignature_id)
        if failed:
            self.store.finish_presignature(presig.presignature_id, PRESIG_FAILED)
            down = [p for p, e in failed.items() if isinstance(e, SignerUnavailable)]
            for p in down:
                self.health.mark(p, False)
            faulty = {p: e for p, e in failed.items() if degraded(e)}
            for p, e in faulty.items():
                self.health.fault(p, e.message)
            attempts.excluded.update(faulty)
            restarted = [
                p for p, e in failed.items() if isinstance(e, SignerRejected) and e.reason == PRESIGNATURE_UNKNOWN
            ]
            self.pool.drop_stale(key, restarted)
            refusals = state_refusals(failed)
            self._resync({p for p, r in refusals.items() if r != SATURATED})
            attempts.excluded.update(refusals)
            if len(down) == len(failed):
                return Retry(f"signers {down} unreachable during partial signing", free=False)
            if len(faulty) + len(restarted) + len(refusals) == len(failed):
                why = f"signers {sorted(faulty)} degraded, {restarted} restarted, state refusals {refusals}"
                if faulty:
                    why += ": " + "; ".join(str(e) for e in faulty.values())
                return Retry(why, free=not faulty)
            error = _partial_sign_error(failed)
            self.instruments.aborted(SIGN_PHASE, error.blames)
            return SignFailure(error)
        return dict(ok)

    def signed(self, job: SignJob, presig: PresignatureRecord) -> None:
        """The request is signed: top up the set's pool if it runs low."""
        self.pool.after_signing(job.key, presig)


def combined(presig: PresignatureRecord, digest: bytes, ok: Mapping[int, PartialSig]) -> Signature:
    """The signature over `digest` from every answer of `presig`'s signers; raises `ProtocolAbort`
    naming each signer whose σ is malformed or over another digest (or fails the combined check),
    `InternalError` for a recovery id Ethereum cannot express."""
    blames = [Blame(p, SIGN_ROUND, "digest_mismatch") for p, r in ok.items() if r.digest != digest or r.party != p]
    partials: dict[int, PartialSignature] = {}
    for p, r in ok.items():
        try:
            partials[p] = PartialSignature(p, scalar_from_bytes(r.sigma))
        except DecodeError:
            blames.append(Blame(p, SIGN_ROUND, "partial_signature", r.sigma[:64]))
    if blames:
        raise ProtocolAbort(blames)
    sig = combine(PresignaturePublic.from_bytes(presig.public), digest, partials)
    if sig.v > 1:
        raise InternalError("recovery id >= 2 (R.x >= q) cannot be expressed as an Ethereum y-parity")
    return sig


def _partial_sign_error(failed: Mapping[int, SignerError]) -> ServiceError:
    blames = [b for e in failed.values() if isinstance(e, SignerAborted) for b in e.blames]
    text = "; ".join(str(e) for e in failed.values())
    if blames:
        return Aborted(f"partial signing aborted: {text}", blames)
    return FailedPrecondition(f"partial signing refused: {text}")
