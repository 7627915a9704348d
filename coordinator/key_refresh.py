"""Key refresh through the coordinator, which owns the key's epoch (docs/protocol.md, Refresh).

`refresh(key_id, key_order=...)`:
1. the admin quorum's signed refresh order must pass the coordinator's copy of the signers' check
   (key_orders.py; refused with the signers' reason, audited `key_order_refused`); every signer of
   the key must be reachable (a refresh runs over all n) and no refresh of the key may be committing;
2. a `refresh` session over all n carrying the order (audited `key_refresh_started` with the admins
   who signed it and the order itself; the session row as usual); each signer checks the order
   itself before any work (signer/node/key_operations.py);
   each signer stages the new epoch as pending and returns its signed confirmation;
3. the common public output must keep the key (public key, threshold, parties) and advance the
   epoch by one, and every party's confirmation must be valid over its digest (the same check as
   the signers', `check_confirmations`); otherwise the refresh is abandoned (`key_refresh_aborted`)
   and every signer stays on the old epoch, which keeps signing (a pending epoch is never adopted
   without all confirmations, and the next refresh replaces it);
4. the confirmed epoch is recorded (`key_epoch_commits`) and every ready presignature of the key
   failed, in one transaction (`key_refresh_confirmed`). From here the key does not sign: no
   presign session runs for it and approved requests wait (lifecycle), because its signers may
   hold different epochs until every one adopted the new one;
5. CommitEpoch on every signer; when all adopted it, the key record moves to the new epoch and
   aux epoch and the row goes, in one transaction (`key_refresh_committed`). A signer that cannot
   be reached keeps the key committing; the scheduler's tick (`retry_commits`) delivers the
   confirmations again until every signer adopted, and a signer restored later commits then.
   Steps 3 (the confirmation check) and 5 live in epoch_commit.py, shared with reshare.

`refresh_due()` is the scheduler's: with `key_operations.refresh_every` in the policy, every key
whose epoch is that old by the coordinator's count (the later of its last commit seen by this
process, its creation, and the last attempt) is refreshed without an order, audited with actor
`scheduler`; each signer accepts that only when its own policy and its own record of the epoch's
adoption say the refresh is due.
"""

from __future__ import annotations

from collections.abc import Mapping

import structlog

from signer.node.epoch_confirmation import RefreshPublic, epoch_digest
from signer.policy import PolicyError
from signer.tss.errors import DecodeError

from . import relay
from .audit import ABORT, KEY
from .epoch_commit import EpochCommits
from .errors import Aborted, FailedPrecondition, ServiceError, Unavailable, error_from_session
from .key_orders import KeyOrders
from .sessions import Sessions
from .signer_client import SessionParams, SignerClient
from .signer_health import SignerHealth
from .store import EpochCommit, KeyRecord, Store
from .trail import AuditTrail

log = structlog.get_logger("coordinator")
SCHEDULE_RETRY = 300
"""Seconds before the scheduler tries a scheduled refresh again after one failed."""


class KeyRefresh:
    """Runs refreshes and drives their commits to every signer."""

    def __init__(
        self,
        store: Store,
        signers: Mapping[int, SignerClient],
        sessions: Sessions,
        trail: AuditTrail,
        health: SignerHealth,
        peers: Mapping[int, bytes] | None,
        orders: KeyOrders,
    ) -> None:
        self.store = store
        self.orders = orders
        self._attempted: dict[str, float] = {}  # the scheduler's last attempt (or commit) per key
        self.signers = signers
        self.sessions = sessions
        self.trail = trail
        self.health = health
        self.peers = peers
        self.commits = EpochCommits(store, signers, sessions, trail, peers)

    def refresh(
        self, key_id: str, *, actor: str = "coordinator", key_order: bytes = b"", scheduled: bool = False
    ) -> KeyRecord:
        """Refresh every share of `key_id` and commit the new epoch on every signer (see the module).
        `key_order`: the admin quorum's signed order; only the scheduler runs one without it."""
        key = self.sessions.key(key_id)
        authority: dict[str, object] = {"authorized_by": ("schedule",)}
        if not scheduled:
            now = int(self.store.now())
            authority = self.orders.check("refresh", key, key_order, now, actor=actor).audit_fields()
        with self.commits.exclusive(key_id):
            return self._refresh(key, actor, authority, b"" if scheduled else key_order)

    def _refresh(self, key: KeyRecord, actor: str, authority: dict[str, object], key_order: bytes) -> KeyRecord:
        key_id = key.key_id
        pending = self.store.epoch_commit(key_id)
        if pending is not None:
            raise FailedPrecondition(f"key {key_id} is still committing epoch {pending.epoch}; retry when done")
        live = self.health.live(key.parties, fresh=True)
        if len(live) != len(key.parties):
            raise Unavailable(f"a refresh needs every signer; unreachable: {sorted(set(key.parties) - set(live))}")
        self.trail.record(KEY, "key_refresh_started", key_id, actor, key_id=key_id, epoch=key.epoch, **authority)
        confirmations: dict[int, bytes] = {}
        params = SessionParams(key_id, level=key.level, key_order=key_order)
        try:
            session_id, out = self.sessions.run("refresh", key_id, key.parties, params, confirmations=confirmations)
        except relay.SessionFailed as exc:
            self._aborted(key, actor, str(exc))
            raise error_from_session(exc) from None
        commit = self._confirmed(key, out, confirmations, actor)
        voided = self.store.begin_epoch_commit(
            commit,
            self.trail.note(
                KEY,
                "key_refresh_confirmed",
                key_id,
                actor,
                key_id=key_id,
                epoch=commit.epoch,
                digest=commit.digest,
                session_id=session_id,
            ),
        )
        log.info("key_refresh_confirmed", key_id=key_id, epoch=commit.epoch, presignatures_voided=voided)
        self.commit(key_id)
        return self.sessions.key(key_id)

    def _aborted(self, key: KeyRecord, actor: str, error: str) -> None:
        fields = {"key_id": key.key_id, "epoch": key.epoch, "error": error}
        self.trail.record(ABORT, "key_refresh_aborted", key.key_id, actor, **fields)
        log.warning("key_refresh_aborted", key_id=key.key_id, epoch=key.epoch, error=error)

    def _confirmed(self, key: KeyRecord, out: bytes, confirmations: dict[int, bytes], actor: str) -> EpochCommit:
        """The epoch the session produced, once it keeps the key and every party confirmed it."""
        try:
            public = RefreshPublic.from_bytes(out)
        except DecodeError as exc:
            self._aborted(key, actor, f"unreadable refresh output: {exc}")
            raise Aborted(f"the signers agreed on a refresh output we cannot read: {exc}") from None
        if (public.public_key, public.threshold, public.parties, public.epoch) != (
            key.public_key,
            key.threshold,
            key.parties,
            key.epoch + 1,
        ):
            self._aborted(key, actor, "refresh output does not keep the key or skips an epoch")
            raise Aborted("the refresh output does not keep the key, or is not its next epoch")
        digest = epoch_digest(out)
        try:
            self.commits.check(key.key_id, public.epoch, digest, confirmations, key.parties)
        except PolicyError as exc:
            self._aborted(key, actor, str(exc))
            raise Aborted(f"refresh not confirmed by every signer: {exc}") from None
        ordered = tuple(confirmations[p] for p in sorted(confirmations))
        return EpochCommit(key.key_id, public.epoch, public.aux_epoch, digest, ordered, (), self.store.now())

    def commit(self, key_id: str) -> bool:
        """Deliver the confirmed epoch to the signers missing it (`EpochCommits.commit`)."""
        return self.commits.commit(key_id)

    def retry_commits(self) -> None:
        """The scheduler's pass (`EpochCommits.retry_commits`)."""
        self.commits.retry_commits()

    def refresh_due(self, every: int) -> list[str]:
        """The scheduler's pass with the policy's `refresh_every` > 0: refresh, without an order, every
        key whose epoch is `every` seconds old by this process's count; returns the keys refreshed.
        A failure (a signer's own schedule not due yet, a signer down) is audited and retried after
        `min(every, SCHEDULE_RETRY)`."""
        now, done = self.store.now(), []
        for key in self.store.list_keys():
            since = max(key.created_at, self._attempted.get(key.key_id, 0.0))
            if now < since + every or self.store.epoch_commit(key.key_id) is not None:
                continue
            self._attempted[key.key_id] = now
            try:
                self.refresh(key.key_id, actor="scheduler", scheduled=True)
            except ServiceError as exc:
                log.warning("scheduled_refresh_failed", key_id=key.key_id, error=exc.message)
                self._attempted[key.key_id] = now - every + min(every, SCHEDULE_RETRY)
                continue
            self._attempted[key.key_id] = self.store.now()
            done.append(key.key_id)
        return done
