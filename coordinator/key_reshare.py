"""Key reshare through the coordinator, which owns the key's committee and epoch (docs/protocol.md,
Reshare: node-level driving and adoption).

`reshare(key_id, parties, threshold, dealers, key_order=...)` moves the key to the new committee
P' with threshold t', keeping its public key (and so every address):
1. refusals before anything runs, each with a one-line reason: a commit of the key still running;
   a malformed committee or threshold (2 <= t' <= n'); an index the key left at an earlier
   reshare (`retired`: a new signer always gets a new index, so a revoked identity can never come
   back under its old one); an index with no configured signer (add it first:
   `tssctl cluster add-signer`); fewer than t live dealers; an unreachable new party; then the
   admin quorum's signed reshare order must pass the coordinator's copy of the signers' check
   (key_orders.py: the key, its epoch, the committee, threshold and, if it names them, the
   dealers chosen; refused with the signers' reason, audited `key_order_refused`);
2. the old committee's public data from every dealer (KeyCommittee); they must agree, else the
   reshare is refused before a share is dealt;
3. the governance log delivered to every party of S ∪ P' lacking some of it (a new signer checks
   the order against its own registry and policy); a `reshare` session over S ∪ P' carrying the
   order (audited `key_reshare_started` with the admins who signed it and the order itself);
   every party checks the order itself before any work
   (signer/node/key_operations.py), then stages the new epoch as pending and returns its signed
   confirmation of the output digest;
4. the output must keep the public key and chain code and carry exactly P', t' and the next epoch,
   and every party of S ∪ P' must have confirmed its digest (`EpochCommits.check`), else the
   reshare is abandoned (`key_reshare_aborted`) and every signer stays on the old epoch;
5. the confirmed epoch is recorded with P', t' and S ∪ P' and every ready presignature failed
   (`key_reshare_confirmed`); then CommitEpoch on every party of S ∪ P', retried by the scheduler
   (epoch_commit.py). Only when all adopted does the key record move to P', t' and the new epoch
   (old parties outside P' recorded as `retired`; they deleted their shares on commit); aux info
   then runs for P' before the key presigns again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import structlog

from signer.node.epoch_confirmation import epoch_digest
from signer.node.key_reshare import ReshareStart
from signer.policy import PolicyError
from signer.tss.committee import Committee, ResharePublic
from signer.tss.errors import DecodeError

from . import relay
from .audit import ABORT, KEY
from .epoch_commit import EpochCommits
from .errors import Aborted, FailedPrecondition, InvalidRequest, Unavailable, error_from_session
from .key_orders import KeyOrders
from .sessions import Sessions
from .signer_client import SessionParams, SignerClient, SignerError
from .signer_health import SignerHealth
from .store import EpochCommit, KeyRecord, Store
from .trail import AuditTrail

log = structlog.get_logger("coordinator")


class KeyReshare:
    """Runs reshares; their commits go through the shared `EpochCommits`."""

    def __init__(
        self,
        store: Store,
        signers: Mapping[int, SignerClient],
        sessions: Sessions,
        trail: AuditTrail,
        health: SignerHealth,
        commits: EpochCommits,
        orders: KeyOrders,
        sync_governance: Callable[[Sequence[int]], None] = lambda parties: None,
    ) -> None:
        self.store = store
        self.orders = orders
        # A joining signer checks the order against its own registry and policy: it gets them first.
        self.sync_governance = sync_governance
        self.signers = signers
        self.sessions = sessions
        self.trail = trail
        self.health = health
        self.commits = commits

    def _plan(
        self, key: KeyRecord, parties: Sequence[int], threshold: int, dealers: Sequence[int]
    ) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(S, P') after every refusal of step 1."""
        pending = self.store.epoch_commit(key.key_id)
        if pending is not None:
            raise FailedPrecondition(f"key {key.key_id} is still committing epoch {pending.epoch}; retry when done")
        new = tuple(sorted(set(parties)))
        if len(new) != len(parties) or any(p < 1 for p in new):
            raise InvalidRequest("the new committee lists distinct party indices >= 1")
        if not 2 <= threshold <= len(new):
            raise InvalidRequest(f"new threshold must satisfy 2 <= t <= n = {len(new)}, got {threshold}")
        reused = sorted(set(new) & set(key.retired))
        if reused:
            raise InvalidRequest(
                f"party {reused[0]} left key {key.key_id} at an earlier reshare; an index is never reused: "
                "give the new signer a new index"
            )
        unknown = [p for p in new if p not in self.signers]
        if unknown:
            raise InvalidRequest(
                f"no signer configured for parties {unknown}: add it first (tssctl cluster add-signer)"
            )
        if dealers:
            S = tuple(sorted(set(dealers)))
            if not set(S) <= set(key.parties):
                raise InvalidRequest(f"dealers {list(S)} must be parties of the key {list(key.parties)}")
            down = sorted(set(S) - set(self.health.live(S, fresh=True)))
            if down:
                raise Unavailable(f"dealers {down} unreachable")
        else:
            S = tuple(sorted(self.health.live(key.parties, fresh=True)))
        if len(S) < key.threshold:
            raise Unavailable(f"a reshare needs {key.threshold} live signers of the key; live: {list(S)}")
        joining = sorted(set(new) - set(S))
        down = sorted(set(joining) - set(self.health.live(joining, fresh=True)))
        if down:
            raise Unavailable(f"new committee parties {down} unreachable")
        return S, new

    def _old_committee(self, key: KeyRecord, dealers: tuple[int, ...]) -> bytes:
        """The old committee every dealer reports (they must all agree and keep the key)."""
        seen: dict[bytes, list[int]] = {}
        for p in dealers:
            try:
                seen.setdefault(self.signers[p].key_committee(key.key_id), []).append(p)
            except SignerError as exc:
                raise Unavailable(f"dealer {p} cannot report its committee: {exc}") from None
        if len(seen) != 1:
            raise Aborted(f"the dealers disagree on the key's committee: {sorted(seen.values())}")
        (raw,) = seen
        try:
            committee = Committee.from_bytes(raw)
        except DecodeError as exc:
            raise Aborted(f"unreadable committee from the dealers: {exc}") from None
        if (committee.public_key.to_bytes(), committee.epoch, committee.parties) != (
            key.public_key,
            key.epoch,
            key.parties,
        ):
            raise Aborted("the dealers' committee is not the key's current one (epoch or parties differ)")
        return raw

    def reshare(
        self,
        key_id: str,
        parties: Sequence[int],
        threshold: int,
        dealers: Sequence[int] = (),
        *,
        actor: str = "coordinator",
        key_order: bytes = b"",
    ) -> KeyRecord:
        """Move `key_id` to committee `parties` with `threshold` under the admins' `key_order` (see
        the module); returns the key record, which shows the new committee once every signer adopted it."""
        with self.commits.exclusive(key_id):
            return self._reshare(self.sessions.key(key_id), parties, threshold, dealers, actor, key_order)

    def _reshare(
        self,
        key: KeyRecord,
        parties: Sequence[int],
        threshold: int,
        dealers: Sequence[int],
        actor: str,
        key_order: bytes,
    ) -> KeyRecord:
        key_id = key.key_id
        S, new = self._plan(key, parties, threshold, dealers)
        now = int(self.store.now())
        checked = self.orders.check(
            "reshare", key, key_order, now, actor=actor, parties=new, threshold=threshold, dealers=S
        )
        params = ReshareStart(S, new, threshold, self._old_committee(key, S))
        self.sync_governance(params.session_parties)
        fields = {"key_id": key_id, "epoch": key.epoch, "dealers": S, "parties": new, "threshold": threshold}
        self.trail.record(KEY, "key_reshare_started", key_id, actor, **fields, **checked.audit_fields())
        confirmations: dict[int, bytes] = {}
        try:
            session_id, out = self.sessions.run(
                "reshare",
                key_id,
                params.session_parties,
                SessionParams(key_id, threshold=threshold, level=key.level, reshare=params, key_order=key_order),
                confirmations=confirmations,
            )
        except relay.SessionFailed as exc:
            self._aborted(key, actor, str(exc))
            raise error_from_session(exc) from None
        commit = self._confirmed(key, params, out, confirmations, actor)
        voided = self.store.begin_epoch_commit(
            commit,
            self.trail.note(
                KEY,
                "key_reshare_confirmed",
                key_id,
                actor,
                key_id=key_id,
                epoch=commit.epoch,
                digest=commit.digest,
                session_id=session_id,
                parties=new,
                threshold=threshold,
            ),
        )
        log.info("key_reshare_confirmed", key_id=key_id, epoch=commit.epoch, presignatures_voided=voided)
        self.commits.commit(key_id)
        return self.sessions.key(key_id)

    def _aborted(self, key: KeyRecord, actor: str, error: str) -> None:
        fields = {"key_id": key.key_id, "epoch": key.epoch, "error": error}
        self.trail.record(ABORT, "key_reshare_aborted", key.key_id, actor, **fields)
        log.warning("key_reshare_aborted", key_id=key.key_id, epoch=key.epoch, error=error)

    def _confirmed(
        self, key: KeyRecord, params: ReshareStart, out: bytes, confirmations: dict[int, bytes], actor: str
    ) -> EpochCommit:
        """The epoch the session produced, once it keeps the key and every party of S ∪ P' confirmed it."""
        try:
            public = ResharePublic.from_bytes(out)
        except DecodeError as exc:
            self._aborted(key, actor, f"unreadable reshare output: {exc}")
            raise Aborted(f"the signers agreed on a reshare output we cannot read: {exc}") from None
        c = public.committee
        if (c.public_key.to_bytes(), c.chain_code, c.parties, c.threshold, c.epoch) != (
            key.public_key,
            key.chain_code,
            params.new_parties,
            params.new_threshold,
            key.epoch + 1,
        ):
            self._aborted(key, actor, "reshare output does not keep the key or is not the committee asked for")
            raise Aborted("the reshare output does not keep the key, or is not the committee asked for")
        digest, everyone = epoch_digest(out), params.session_parties
        try:
            self.commits.check(key.key_id, c.epoch, digest, confirmations, everyone)
        except PolicyError as exc:
            self._aborted(key, actor, str(exc))
            raise Aborted(f"reshare not confirmed by every party: {exc}") from None
        ordered = tuple(confirmations[p] for p in sorted(confirmations))
        return EpochCommit(
            key.key_id, c.epoch, b"", digest, ordered, (), self.store.now(), c.parties, c.threshold, everyone
        )
