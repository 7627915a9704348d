"""Two-phase adoption of a refreshed key epoch on one signer (docs/protocol.md, Refresh).

A refresh session never touches the active share. Its output is staged as the key's pending
epoch (`keys/<key_id>/pending_epoch`: new epoch, digest, new share, new aux info, encrypted like
every record), this node's signed confirmation goes back with the session's last step, and the
active epoch (`keys/<key_id>/share`, `keys/<key_id>/aux`) keeps signing. Presigning and signing
only ever read the active records, so a pending share never signs.

`commit` (CommitEpoch) adopts the pending epoch only with a valid confirmation from every party of
the key over the digest this node computed itself (`epoch_confirmation.check_confirmations`). The
adoption is crash-safe: first the confirmations are written into the pending record (the
decision, one atomic write), then the new share and aux replace the active ones, the key's
in-memory presignatures are dropped, and the pending record is deleted. A node that crashes in
between finishes the adoption at its next start (`recover`). A repeated commit of the epoch the
node already holds is a no-op.

There is no abort that deletes a pending epoch: a coordinator could otherwise commit the epoch at
some signers and discard it at the others, leaving no epoch that t parties share. A pending
epoch is replaced only by the next refresh completing on this node, and a refresh completes only
when every party runs it from the same active epoch (its Πprm proofs are bound to the key's
current rid, which every adoption changes), which proves no party adopted the replaced one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

import structlog

from signer.policy import PolicyError
from signer.tss.encoding import as_bytes, as_int, as_list, decode, encode
from signer.tss.errors import InternalError
from signer.tss.key_share import AuxInfo, KeyShare

from .epoch_confirmation import EpochConfirmation, check_confirmations, epoch_digest, refresh_public
from .identity import Identity, PeerKeys
from .store import EncryptedStore

log = structlog.get_logger("signer")
EPOCH_UNKNOWN = "epoch_unknown"
"""Refusal reason: CommitEpoch names an epoch this node holds neither pending nor active."""
_PENDING_TAG = "pending-epoch/v1"


def pending_name(key_id: str) -> str:
    """The store record of a key's pending epoch."""
    return f"keys/{key_id}/pending_epoch"


@dataclass(frozen=True, slots=True)
class PendingEpoch:
    """A refreshed share and aux info awaiting adoption; `confirmations` set once adoption is decided."""

    epoch: int
    digest: bytes
    share: bytes = field(repr=False)
    aux: bytes = field(repr=False)
    confirmations: tuple[bytes, ...] = ()

    def to_bytes(self) -> bytes:
        """Record form."""
        return encode(_PENDING_TAG, self.epoch, self.digest, self.share, self.aux, list(self.confirmations))

    @classmethod
    def from_bytes(cls, data: bytes) -> PendingEpoch:
        """Decode a record (DecodeError when malformed)."""
        f = decode(_PENDING_TAG, data, 5)
        confirmations = tuple(as_bytes(c) for c in as_list(f[4]))
        return cls(as_int(f[0]), as_bytes(f[1]), as_bytes(f[2]), as_bytes(f[3]), confirmations)


class KeyEpochs:
    """Pending epochs of this node's keys: staging, confirmation, commit and crash recovery.

    `on_adopted(key_id, info)` runs after the new records are in place (the node drops the key's
    presignatures and its aux cache); `lock_of(key_id)` is the key's lock, held by partial signing
    too, so no signature reads a half-switched key.
    """

    def __init__(
        self,
        store: EncryptedStore,
        identity: Identity,
        peers: Mapping[int, PeerKeys],
        *,
        on_adopted: Callable[[str, AuxInfo], None],
        lock_of: Callable[[str], threading.Lock],
    ) -> None:
        self.store = store
        self.identity = identity
        self.sign_keys = {j: p.sign_pub for j, p in peers.items()} | {identity.party: identity.public().sign_pub}
        self._on_adopted = on_adopted
        self._lock_of = lock_of
        self._confirmations: dict[bytes, bytes] = {}  # by session id, until the last step is returned
        self._lock = threading.Lock()

    def pending(self, key_id: str) -> PendingEpoch | None:
        """The key's pending epoch, if any."""
        name = pending_name(key_id)
        return PendingEpoch.from_bytes(self.store.get(name)) if self.store.exists(name) else None

    def _active(self, key_id: str) -> KeyShare:
        return KeyShare.from_bytes(self.store.get(f"keys/{key_id}/share"))

    # --- phase 1: a refresh session completed -------------------------------------------------------
    def stage(self, session_id: bytes, key_id: str, share: KeyShare, info: AuxInfo) -> bytes:
        """Store a refresh's output as the pending epoch (replacing an older pending one) and sign
        this node's confirmation; returns the session's public output."""
        with self._lock_of(key_id):
            active = self._active(key_id)
            if share.epoch != active.epoch + 1 or share.public_key != active.public_key:
                raise InternalError("a refresh produced a share that is not the next epoch of this key")
            public = refresh_public(share, info)
            digest = epoch_digest(public)
            replaced = self.pending(key_id)
            staged = PendingEpoch(share.epoch, digest, share.to_bytes(), info.to_bytes())
            self.store.put(pending_name(key_id), staged.to_bytes())
        confirmation = EpochConfirmation.signed(self.identity, key_id, share.epoch, digest)
        with self._lock:
            self._confirmations[session_id] = confirmation.to_bytes()
        log.info(
            "epoch_pending",
            party=self.identity.party,
            key_id=key_id,
            epoch=share.epoch,
            digest=digest.hex(),
            replaced=replaced is not None,
        )
        return public

    def take_confirmation(self, session_id: bytes) -> bytes:
        """The confirmation a finished refresh session produced (once), or b""."""
        with self._lock:
            return self._confirmations.pop(session_id, b"")

    # --- phase 2: every party confirmed -------------------------------------------------------------
    def commit(self, key_id: str, epoch: int, confirmations: tuple[bytes, ...]) -> tuple[int, bool]:
        """Adopt the pending `epoch` given every party's confirmation; returns (active epoch, adopted).

        Refusals (`PolicyError`): `epoch_unknown` when the node holds no such pending epoch and is
        not already at it; `epoch_confirmation` when the confirmations do not all match (see
        `check_confirmations`). Nothing changes on a refusal.
        """
        with self._lock_of(key_id):
            active = self._active(key_id)
            pending = self.pending(key_id)
            if pending is None or pending.epoch != epoch:
                if active.epoch == epoch:
                    return active.epoch, False
                raise PolicyError(
                    EPOCH_UNKNOWN,
                    f"key {key_id!r}: active epoch {active.epoch}, pending "
                    f"{'none' if pending is None else pending.epoch}, asked to commit {epoch}",
                )
            check_confirmations(
                confirmations,
                key_id=key_id,
                epoch=epoch,
                digest=pending.digest,
                parties=active.parties,
                sign_keys=self.sign_keys,
            )
            decided = replace(pending, confirmations=confirmations)
            self.store.put(pending_name(key_id), decided.to_bytes())  # the decision: durable before any switch
            self._adopt(key_id, decided)
        return epoch, True

    def _adopt(self, key_id: str, decided: PendingEpoch) -> None:
        # Each put atomically replaces the old-epoch record; a crash between them is finished by `recover`.
        self.store.put(f"keys/{key_id}/share", decided.share)
        self.store.put(f"keys/{key_id}/aux", decided.aux)
        self._on_adopted(key_id, AuxInfo.from_bytes(decided.aux))
        self.store.delete(pending_name(key_id))
        log.info("epoch_adopted", party=self.identity.party, key_id=key_id, epoch=decided.epoch)

    def recover(self, key_ids: list[str]) -> None:
        """At start: finish every adoption that was decided before a crash."""
        for key_id in key_ids:
            pending = self.pending(key_id)
            if pending is None or not pending.confirmations:
                continue
            with self._lock_of(key_id):
                self._adopt(key_id, pending)  # every party confirmed it: rolling forward is the only safe way
            log.warning("epoch_adoption_finished_after_restart", key_id=key_id, epoch=pending.epoch)
