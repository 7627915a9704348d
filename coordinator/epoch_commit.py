"""Phase 2 of a key's two-phase epoch change: every confirmed epoch delivered to every signer.

Moved out of key_refresh.py unchanged (see that module for the whole refresh).
"""

from __future__ import annotations

from collections.abc import Mapping

import structlog

from .audit import KEY
from .sessions import Sessions
from .signer_client import SignerClient, SignerError
from .store import Store
from .trail import AuditTrail

log = structlog.get_logger("coordinator")


class EpochCommits:
    """Drives confirmed epochs to every signer."""

    def __init__(
        self, store: Store, signers: Mapping[int, SignerClient], sessions: Sessions, trail: AuditTrail
    ) -> None:
        self.store = store
        self.signers = signers
        self.sessions = sessions
        self.trail = trail

    def commit(self, key_id: str) -> bool:
        """Deliver the confirmations to every signer that has not adopted the epoch yet; True once all
        have and the key record moved to the new epoch."""
        pending = self.store.epoch_commit(key_id)
        if pending is None:
            return True
        key = self.sessions.key(key_id)
        adopted: list[int] = []
        for party in key.parties:
            if party in pending.committed:
                continue
            try:
                self.signers[party].commit_epoch(key_id, pending.epoch, pending.confirmations)
            except SignerError as exc:
                log.warning("epoch_commit_pending", key_id=key_id, party=party, epoch=pending.epoch, error=str(exc))
                continue
            adopted.append(party)
        if adopted:
            self.store.note_epoch_committed(key_id, adopted)
        if set(pending.committed) | set(adopted) != set(key.parties):
            return False
        self.store.finish_epoch_commit(
            key_id, self.trail.note(KEY, "key_refresh_committed", key_id, key_id=key_id, epoch=pending.epoch)
        )
        log.info("key_refresh_committed", key_id=key_id, epoch=pending.epoch)
        return True

    def retry_commits(self) -> None:
        """The scheduler's pass: push every committing key on to the signers still missing it."""
        for key_id in self.store.epoch_commits():
            try:
                self.commit(key_id)
            except Exception:  # background work: one key must not stop the others
                log.exception("epoch_commit_retry_failed", key_id=key_id)
