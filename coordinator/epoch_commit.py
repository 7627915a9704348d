"""Phase 2 of a key's two-phase epoch change (refresh and reshare): the confirmation check, then
the confirmed epoch delivered to every signer that must adopt it.

`check` is the coordinator's copy of the signers' own check: every party that must adopt the
epoch (the key's parties for a refresh; dealers ∪ new committee for a reshare) confirmed the
same digest under its identity key. `commit(key_id)` sends CommitEpoch with every confirmation
to each of those signers that has not adopted yet; once all have, the key record moves to the
new epoch (for a reshare: to the new committee and threshold, the parties that left recorded
as retired) and the row goes, in one transaction (`key_refresh_committed` /
`key_reshare_committed`). A signer that cannot be reached keeps the key committing; the
scheduler's tick (`retry_commits`) delivers the confirmations again until every signer adopted.

After a reshare the key has no aux info for its new committee (`aux_epoch` empty): `ensure_aux`
runs an aux session over the new committee and records its epoch (`key_aux_ready`); until then
no presign runs for the key (sessions.py). The scheduler's tick retries it too.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import structlog

from signer.node.epoch_confirmation import check_confirmations
from signer.policy import PolicyError
from signer.tss.encoding import as_bytes, decode
from signer.tss.errors import DecodeError

from . import relay
from .audit import KEY
from .errors import FailedPrecondition
from .sessions import Sessions
from .signer_client import SessionParams, SignerClient, SignerError
from .store import Store
from .trail import AuditTrail

log = structlog.get_logger("coordinator")


class EpochCommits:
    """Checks confirmations, drives confirmed epochs to every signer, and runs a reshared key's aux."""

    def __init__(
        self,
        store: Store,
        signers: Mapping[int, SignerClient],
        sessions: Sessions,
        trail: AuditTrail,
        peers: Mapping[int, bytes] | None = None,
    ) -> None:
        self.store = store
        self.signers = signers
        self.sessions = sessions
        self.trail = trail
        self.peers = peers
        # The RPC that ran the session and the scheduler's tick both drive a key's commit: one at a
        # time per key, or the slower of the two finds the row already finished (NotFound).
        self._locks: dict[str, threading.RLock] = {}
        self._locks_guard = threading.Lock()
        self._running: set[str] = set()  # keys with a refresh or reshare session under way

    @contextmanager
    def exclusive(self, key_id: str) -> Iterator[None]:
        """One refresh or reshare of a key at a time (an RPC and the scheduler's refresh could both
        start one from the same epoch; each signer would then keep whichever finished last there, and
        neither could gather matching confirmations). The second is refused at once."""
        with self._locks_guard:
            if key_id in self._running:
                raise FailedPrecondition(f"a refresh or reshare of key {key_id} is running; retry when done")
            self._running.add(key_id)
        try:
            yield
        finally:
            with self._locks_guard:
                self._running.discard(key_id)

    def _lock(self, key_id: str) -> threading.RLock:
        with self._locks_guard:
            return self._locks.setdefault(key_id, threading.RLock())

    def check(
        self, key_id: str, epoch: int, digest: bytes, confirmations: Mapping[int, bytes], parties: Sequence[int]
    ) -> None:
        """Raise `PolicyError(epoch_confirmation)` unless every one of `parties` confirmed (key_id,
        epoch, digest) under its identity key."""
        if self.peers is None:
            # No identity keys configured (in-process tests): the signers' own check still binds.
            if set(confirmations) != set(parties):
                raise PolicyError("epoch_confirmation", f"confirmations from {sorted(confirmations)} only")
            return
        check_confirmations(
            list(confirmations.values()),
            key_id=key_id,
            epoch=epoch,
            digest=digest,
            parties=parties,
            sign_keys=dict(self.peers),
        )

    def commit(self, key_id: str) -> bool:
        """Deliver the confirmations to every signer that has not adopted the epoch yet; True once all
        have and the key record moved to the new epoch."""
        with self._lock(key_id):
            return self._commit(key_id)

    def _commit(self, key_id: str) -> bool:
        pending = self.store.epoch_commit(key_id)
        if pending is None:
            return True
        key = self.sessions.key(key_id)
        targets = pending.confirmers or key.parties
        adopted: list[int] = []
        for party in targets:
            if party in pending.committed:
                continue
            try:
                self.signers[party].commit_epoch(key_id, pending.epoch, pending.confirmations)
            except (SignerError, KeyError) as exc:
                log.warning("epoch_commit_pending", key_id=key_id, party=party, epoch=pending.epoch, error=str(exc))
                continue
            adopted.append(party)
        if adopted:
            self.store.note_epoch_committed(key_id, adopted)
        if set(pending.committed) | set(adopted) != set(targets):
            return False
        event = "key_reshare_committed" if pending.is_reshare else "key_refresh_committed"
        fields = {"parties": pending.parties, "threshold": pending.threshold} if pending.is_reshare else {}
        self.store.finish_epoch_commit(
            key_id, self.trail.note(KEY, event, key_id, key_id=key_id, epoch=pending.epoch, **fields)
        )
        log.info(event, key_id=key_id, epoch=pending.epoch)
        if pending.is_reshare:
            self.ensure_aux(key_id)
        return True

    def ensure_aux(self, key_id: str) -> bool:
        """Run aux info over the key's committee if it has none (after a reshare); True once it has."""
        with self._lock(key_id):
            return self._ensure_aux(key_id)

    def _ensure_aux(self, key_id: str) -> bool:
        key = self.sessions.key(key_id)
        if key.aux_epoch:
            return True
        if self.store.epoch_commit(key_id) is not None:
            return False
        try:
            _, out = self.sessions.run("aux", key_id, key.parties, SessionParams(key_id, level=key.level))
            aux_epoch = as_bytes(decode("aux/public", out, 2)[0])
        except (relay.SessionFailed, DecodeError) as exc:
            log.warning("key_aux_pending", key_id=key_id, parties=list(key.parties), error=str(exc))
            return False
        self.store.set_aux_epoch(
            key_id, aux_epoch, self.trail.note(KEY, "key_aux_ready", key_id, key_id=key_id, parties=key.parties)
        )
        log.info("key_aux_ready", key_id=key_id, parties=list(key.parties))
        return True

    def retry_commits(self) -> None:
        """The scheduler's pass: push every committing key on to the signers still missing it, and
        run aux info for every reshared key still without it."""
        for key_id in self.store.epoch_commits():
            try:
                self.commit(key_id)
            except Exception:  # background work: one key must not stop the others
                log.exception("epoch_commit_retry_failed", key_id=key_id)
        for key in self.store.list_keys():
            if not key.aux_epoch:
                try:
                    self.ensure_aux(key.key_id)
                except Exception:
                    log.exception("key_aux_retry_failed", key_id=key.key_id)
