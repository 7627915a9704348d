"""The presignature pool: presign sessions, reservations and the background refill.

A presignature is made for one (key, signer set, path); its public data is stored `ready`, and a
signing attempt reserves one for the first live set in round-robin order (each signer is in t/n
of the sets: exactly the fair share of every windowed limit it enforces, so an honest coordinator
can reach the limit). A reserved presignature is consumed or failed, never ready again. With a
floor > 0 a background thread tops up, in batches, the sets that sign, to a target sized from
their observed signing rate and at a pace set by policy (pool_sizing.py).
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence

import structlog

from signer.tss import hd
from signer.tss.curve import Point
from signer.tss.errors import DecodeError
from signer.tss.presign import PresignaturePublic

from . import relay
from .errors import FailedPrecondition, Internal, InvalidRequest, Unavailable, error_from_session
from .pool_sizing import NO_POOL, Clock, Item, PoolPolicy, PoolSizing, RefillPacer
from .request_encoding import check_path
from .sessions import Sessions
from .signer_client import SessionParams, SignerClient, SignerError
from .signer_health import SignerHealth
from .signer_state import SignerStates
from .store import PRESIG_FAILED, RESERVED, KeyRecord, PresignatureRecord, Store

log = structlog.get_logger("coordinator")


class PresignPool:
    """Presignatures per (key, set, path); a `policy` floor > 0 keeps some ready with a refill thread.

    `clock` times presign sessions, signatures and the refill's pace; `sleep(seconds)` waits for
    the pace and returns True if the pool closed meanwhile (default: the close event's wait).
    """

    def __init__(
        self,
        store: Store,
        signers: Mapping[int, SignerClient],
        sessions: Sessions,
        health: SignerHealth,
        signer_states: SignerStates,
        *,
        policy: PoolPolicy = NO_POOL,
        clock: Clock = time.monotonic,
        sleep: Callable[[float], bool] | None = None,
    ) -> None:
        self.store = store
        self.signers = signers
        self.sessions = sessions
        self.health = health
        self.signer_states = signer_states
        self.policy = policy
        self.clock = clock
        self.sizing = PoolSizing(policy, clock)
        self.pacer = RefillPacer(policy.refill_per_minute, clock)
        self._stopped = threading.Event()
        self._sleep = sleep or self._stopped.wait
        self._turn = 0  # round-robin position over the signer sets
        self._queue: queue.Queue[Item | None] = queue.Queue()
        self._pending: set[Item] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the refill thread (if the floor > 0; after recovery, which fails reserved presignatures)."""
        if self.policy.floor > 0:
            self._thread = threading.Thread(target=self._refill_loop, name="presign-refill", daemon=True)
            self._thread.start()

    def close(self) -> None:
        """Stop the refill thread and wait for it."""
        self._stopped.set()
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=60)

    def check_signers(self, key: KeyRecord, signers: Sequence[int]) -> tuple[int, ...]:
        """A signing set of `key` as a sorted tuple; InvalidRequest unless exactly t distinct parties."""
        s = tuple(sorted(set(signers)))
        if len(s) != key.threshold or len(s) != len(signers) or not set(s) <= set(key.parties):
            raise InvalidRequest(f"a signing set is exactly {key.threshold} distinct parties of {list(key.parties)}")
        return s

    def presign(self, key: KeyRecord, signers: tuple[int, ...], path: tuple[int, ...]) -> bytes:
        """One presign session; stores its public data as ready and returns its id (the session's id)."""
        attestations: dict[int, bytes] = {}
        started = self.clock()
        session_id, out = self.sessions.run(
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
        self.sizing.presigned(key.key_id, signers, self.clock() - started)
        self.signer_states.note(attestations, session_id)
        self.store.add_presignature(session_id, key.key_id, signers, path, out, key.epoch)
        return session_id

    def ensure(self, key_id: str, signers: Sequence[int], path: Sequence[int] = (), count: int = 1) -> int:
        """Presign until `count` are ready for (key, signers, path); returns how many were made."""
        key = self.sessions.key(key_id)
        s, p = self.check_signers(key, signers), check_path(path)
        made = 0
        while self.store.count_ready(key_id, s, p, key.epoch) < count:
            try:
                self.presign(key, s, p)
            except relay.SessionFailed as exc:
                raise error_from_session(exc) from None
            made += 1
        return made

    def key_created(self, key: KeyRecord) -> None:
        """Start the pool of a new key on its first live set."""
        if self.policy.floor > 0:
            live_set = tuple(self.health.live(key.parties)[: key.threshold])
            if len(live_set) == key.threshold:
                self.schedule_refill(key.key_id, live_set, ())

    def schedule_refill(self, key_id: str, signers: tuple[int, ...], path: tuple[int, ...]) -> None:
        """Queue a top-up of (key, set, path) for the refill thread (once while queued)."""
        item = (key_id, signers, path)
        with self._lock:
            if self._stopped.is_set() or item in self._pending:
                return
            self._pending.add(item)
        self._queue.put(item)

    def after_signing(self, key: KeyRecord, presig: PresignatureRecord) -> None:
        """A presignature was consumed: counted in its item's rate; the item is refilled once it runs
        below half its target (in batches, not after every signature)."""
        item = (key.key_id, tuple(presig.signers), tuple(presig.path))
        self.sizing.signed(item)
        low_water = max(1, self.sizing.target(item) // 2)
        if self.policy.floor > 0 and self.store.count_ready(key.key_id, item[1], item[2], key.epoch) < low_water:
            self.schedule_refill(*item)

    def _refill_loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None or self._stopped.is_set():
                return
            with self._lock:
                self._pending.discard(item)
            if len(self.health.live(item[1])) != len(item[1]):
                continue  # a signer of the set is down: the next request picks a live set
            try:
                made = self._top_up(item)
                if made:
                    log.info(
                        "presignatures_refilled", key_id=item[0], signers=list(item[1]), path=list(item[2]), made=made
                    )
            except Exception as exc:  # background work: log and carry on
                log.warning("presign_refill_failed", key_id=item[0], signers=list(item[1]), error=str(exc))

    def _top_up(self, item: Item) -> int:
        """Presign for `item` until its target (read again after each session: it moves with the
        rate) is ready, each session started at the refill's pace; how many were made."""
        key = self.sessions.key(item[0])
        signers, path = self.check_signers(key, item[1]), check_path(item[2])
        made = 0
        while self.store.count_ready(key.key_id, signers, path, key.epoch) < self.sizing.target(item):
            if not self.pacer.wait(self._sleep):
                break  # closing
            self.presign(key, signers, path)
            made += 1
        return made

    def _rotation(self, key: KeyRecord, live: Sequence[int], *, advance: bool = True) -> list[tuple[int, ...]]:
        """The live signer sets in round-robin order from the current turn (moved on if `advance`)."""
        sets = list(itertools.combinations(sorted(live), key.threshold))
        with self._lock:
            k = self._turn % len(sets)
            self._turn += int(advance)
        return sets[k:] + sets[:k]

    def _take(
        self, key: KeyRecord, sets: list[tuple[int, ...]], path: tuple[int, ...], request_id: str
    ) -> PresignatureRecord | None:
        got = self.store.reserve_presignature(key.key_id, sets, path, key.epoch, request_id)
        if got is not None and tuple(got.signers) != sets[0]:
            self.schedule_refill(key.key_id, sets[0], path)  # so the next turn of this set finds one
        return got

    def reserve_ready(
        self, key: KeyRecord, live: Sequence[int], path: tuple[int, ...], request_id: str
    ) -> PresignatureRecord | None:
        """A ready presignature of the first live set (round-robin) that has one, reserved; None if
        none is ready. Store work only (no session), so it may run inside the caller's `Store.batch`."""
        got = self._take(key, self._rotation(key, live, advance=False), path, request_id)
        if got is not None:  # the turn is used; with none ready, `reserve` takes this same turn
            self._rotation(key, live)
        return got

    def reserve(
        self, key: KeyRecord, live: Sequence[int], path: tuple[int, ...], request_id: str
    ) -> PresignatureRecord:
        """The first live set (in round-robin order) with a ready presignature, reserved; else presign
        for the first one."""
        sets = self._rotation(key, live)
        for _ in range(3):
            got = self._take(key, sets, path, request_id)
            if got is not None:
                return got
            self.presign(key, sets[0], path)  # another request may take it first: then go again
        raise Unavailable("could not reserve a presignature (taken by concurrent requests)")

    def drop(self, presignature_id: bytes) -> None:
        """A reserved presignature whose attempt broke off: failed, never ready again."""
        if self.store.get_presignature(presignature_id).state == RESERVED:
            self.store.finish_presignature(presignature_id, PRESIG_FAILED)

    def drop_stale(self, key: KeyRecord, restarted: Sequence[int]) -> None:
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
