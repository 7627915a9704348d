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

A reshare (key_reshare.py) stages through the same record: its pending epoch names the parties
that must confirm (dealers ∪ new committee, not the old committee), carries the new share (none
for a retired party, which leaves the new committee) and no aux info (aux runs for the new
committee after the adoption). Adopting it deletes the old aux info; a retired party deletes its
share and keeps only a `keys/<key_id>/retired` marker (the epoch it left at), so a repeated commit
is still a no-op and the key is refused by name.

Every adoption (and a keygen) leaves `keys/<key_id>/adopted`: the epoch, when this node adopted
it by its own clock, and whether the epoch came without aux info (keygen, reshare), which is what
opens an aux session for it. key_operations.py reads it: a scheduled refresh counts from it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

import structlog

from signer.policy import PolicyError
from signer.tss.encoding import Value, as_bytes, as_int, as_list, decode, encode
from signer.tss.errors import DecodeError, InternalError
from signer.tss.key_share import AuxInfo, KeyShare

from .epoch_confirmation import EpochConfirmation, check_confirmations, epoch_digest, refresh_public
from .identity import Identity, PeerKeys
from .store import EncryptedStore

log = structlog.get_logger("signer")
EPOCH_UNKNOWN = "epoch_unknown"
"""Refusal reason: CommitEpoch names an epoch this node holds neither pending nor active."""
_PENDING_TAG = "pending-epoch/v1"
_PENDING_TAG_V2 = "pending-epoch/v2"
_RETIRED_TAG = "retired/v1"
_ADOPTED_TAG = "adopted/v1"


def pending_name(key_id: str) -> str:
    """The store record of a key's pending epoch."""
    return f"keys/{key_id}/pending_epoch"


def retired_name(key_id: str) -> str:
    """The marker a party leaves when a reshare retired it from the key (its share is deleted)."""
    return f"keys/{key_id}/retired"


def adopted_name(key_id: str) -> str:
    """The record of when this node adopted the key's current epoch."""
    return f"keys/{key_id}/adopted"


@dataclass(frozen=True, slots=True)
class Adopted:
    """This node's record of the key's current epoch: which, when (its own clock), and whether it came
    without aux info (keygen, reshare: an aux session may run for it)."""

    epoch: int
    at: int
    aux_open: bool


@dataclass(frozen=True, slots=True)
class PendingEpoch:
    """A new share and aux info awaiting adoption; `confirmations` set once adoption is decided.

    `confirmers` empty: a refresh, confirmed by the key's parties. Otherwise a reshare: the parties
    of dealers ∪ new committee; `share` empty retires this party, `aux` empty drops the old aux.
    """

    epoch: int
    digest: bytes
    share: bytes = field(repr=False)
    aux: bytes = field(repr=False)
    confirmations: tuple[bytes, ...] = ()
    confirmers: tuple[int, ...] = ()

    def to_bytes(self) -> bytes:
        """Record form (a refresh keeps the v1 form older nodes read)."""
        fields: tuple[Value, ...] = (self.epoch, self.digest, self.share, self.aux, list(self.confirmations))
        if not self.confirmers:
            return encode(_PENDING_TAG, *fields)
        return encode(_PENDING_TAG_V2, *fields, list(self.confirmers))

    @classmethod
    def from_bytes(cls, data: bytes) -> PendingEpoch:
        """Decode a record (DecodeError when malformed)."""
        try:
            f = decode(_PENDING_TAG_V2, data, 6)
            confirmers = tuple(as_int(p) for p in as_list(f[5]))
        except DecodeError:
            f, confirmers = decode(_PENDING_TAG, data, 5), ()
        confirmations = tuple(as_bytes(c) for c in as_list(f[4]))
        return cls(as_int(f[0]), as_bytes(f[1]), as_bytes(f[2]), as_bytes(f[3]), confirmations, confirmers)


class KeyEpochs:
    """Pending epochs of this node's keys: staging, confirmation, commit and crash recovery.

    `on_adopted(key_id, info)` runs after the new records are in place (the node drops the key's
    presignatures and replaces its aux cache; `info` is None after a reshare: no aux yet);
    `lock_of(key_id)` is the key's lock, held by partial signing too, so no signature reads a
    half-switched key.
    """

    def __init__(
        self,
        store: EncryptedStore,
        identity: Identity,
        peers: Mapping[int, PeerKeys],
        *,
        on_adopted: Callable[[str, AuxInfo | None], None],
        lock_of: Callable[[str], threading.Lock],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.clock = clock
        self.identity = identity
        self.set_peers(peers)
        self._on_adopted = on_adopted
        self._lock_of = lock_of
        self._confirmations: dict[bytes, bytes] = {}  # by session id, until the last step is returned
        self._lock = threading.Lock()

    def set_peers(self, peers: Mapping[int, PeerKeys]) -> None:
        """The identity keys confirmations are checked against (this node's and its peers')."""
        own = {self.identity.party: self.identity.public().sign_pub}
        self.sign_keys = {j: p.sign_pub for j, p in peers.items()} | own

    def pending(self, key_id: str) -> PendingEpoch | None:
        """The key's pending epoch, if any."""
        name = pending_name(key_id)
        return PendingEpoch.from_bytes(self.store.get(name)) if self.store.exists(name) else None

    def _active(self, key_id: str) -> KeyShare:
        return KeyShare.from_bytes(self.store.get(f"keys/{key_id}/share"))

    def _active_epoch(self, key_id: str) -> int | None:
        """The epoch this node is at: its share's, or the one a reshare retired it at; None if neither."""
        if self.store.exists(f"keys/{key_id}/share"):
            return self._active(key_id).epoch
        return self.retired_at(key_id)

    def share_epoch(self, key_id: str) -> int | None:
        """The epoch of this node's active share of the key, None without one."""
        return self._active(key_id).epoch if self.store.exists(f"keys/{key_id}/share") else None

    def adopted(self, key_id: str) -> Adopted | None:
        """This node's record of adopting the key's current epoch, if it has one."""
        name = adopted_name(key_id)
        if not self.store.exists(name):
            return None
        f = decode(_ADOPTED_TAG, self.store.get(name), 3)
        return Adopted(as_int(f[0]), as_int(f[1]), as_int(f[2]) == 1)

    def note_adopted(self, key_id: str, epoch: int, at: int | None = None, *, aux_open: bool) -> None:
        """Record that this node holds `epoch` of the key since `at` (default: now)."""
        when = int(self.clock()) if at is None else at
        self.store.put(adopted_name(key_id), encode(_ADOPTED_TAG, epoch, when, int(aux_open)))

    def aux_open(self, key_id: str) -> bool:
        """Whether an aux session may run for the key's current epoch (key_operations.py)."""
        epoch = self.share_epoch(key_id)
        if epoch is None:
            return False
        record = self.adopted(key_id)
        if record is not None and record.epoch == epoch:
            return record.aux_open
        return not self.store.exists(f"keys/{key_id}/aux")

    def why_absent(self, key_id: str) -> str:
        """For a missing share's error: why this node holds none ("" if it never held one)."""
        retired = self.retired_at(key_id)
        return "" if retired is None else f" (retired by the reshare to epoch {retired})"

    def retired_at(self, key_id: str) -> int | None:
        """The epoch at which a reshare retired this party from the key, if it did."""
        name = retired_name(key_id)
        return as_int(decode(_RETIRED_TAG, self.store.get(name), 1)[0]) if self.store.exists(name) else None

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
            self._stage(session_id, key_id, PendingEpoch(share.epoch, digest, share.to_bytes(), info.to_bytes()))
        return public

    def stage_reshare(
        self, session_id: bytes, key_id: str, epoch: int, digest: bytes, share: bytes, confirmers: tuple[int, ...]
    ) -> None:
        """Store a reshare's output as the pending epoch: the new share (b"" for a retired party),
        no aux info, confirmed by `confirmers` (dealers ∪ new committee); sign this node's confirmation."""
        with self._lock_of(key_id):
            current = self._active_epoch(key_id)
            if current is not None and epoch != current + 1:
                raise InternalError(f"a reshare to epoch {epoch} is not the next epoch of this key ({current})")
            self._stage(session_id, key_id, PendingEpoch(epoch, digest, share, b"", confirmers=confirmers))

    def _stage(self, session_id: bytes, key_id: str, staged: PendingEpoch) -> None:
        replaced = self.pending(key_id)
        self.store.put(pending_name(key_id), staged.to_bytes())
        confirmation = EpochConfirmation.signed(self.identity, key_id, staged.epoch, staged.digest)
        with self._lock:
            self._confirmations[session_id] = confirmation.to_bytes()
        log.info(
            "epoch_pending",
            party=self.identity.party,
            key_id=key_id,
            epoch=staged.epoch,
            digest=staged.digest.hex(),
            replaced=replaced is not None,
            retires=staged.confirmers != () and not staged.share,
        )

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
            current = self._active_epoch(key_id)
            pending = self.pending(key_id)
            if pending is None or pending.epoch != epoch:
                if current == epoch:
                    return epoch, False
                raise PolicyError(
                    EPOCH_UNKNOWN,
                    f"key {key_id!r}: active epoch {'none' if current is None else current}, pending "
                    f"{'none' if pending is None else pending.epoch}, asked to commit {epoch}",
                )
            check_confirmations(
                confirmations,
                key_id=key_id,
                epoch=epoch,
                digest=pending.digest,
                parties=pending.confirmers or self._active(key_id).parties,
                sign_keys=self.sign_keys,
            )
            decided = replace(pending, confirmations=confirmations)
            self.store.put(pending_name(key_id), decided.to_bytes())  # the decision: durable before any switch
            self._adopt(key_id, decided)
        return epoch, True

    def _adopt(self, key_id: str, decided: PendingEpoch) -> None:
        # Each put atomically replaces the old-epoch record; a crash between them is finished by `recover`.
        share, aux = f"keys/{key_id}/share", f"keys/{key_id}/aux"
        if decided.share:
            self.store.put(share, decided.share)
            self.note_adopted(key_id, decided.epoch, aux_open=not decided.aux)
        else:  # retired by a reshare: the marker first, so a crash never leaves neither
            self.store.put(retired_name(key_id), encode(_RETIRED_TAG, decided.epoch))
            if self.store.exists(share):
                self.store.delete(share)
        if decided.aux:
            self.store.put(aux, decided.aux)
        elif self.store.exists(aux):  # the old committee's aux info does not serve the new one
            self.store.delete(aux)
        self._on_adopted(key_id, AuxInfo.from_bytes(decided.aux) if decided.aux else None)
        self.store.delete(pending_name(key_id))
        event = "epoch_adopted" if decided.share else "key_retired"
        log.info(event, party=self.identity.party, key_id=key_id, epoch=decided.epoch)

    def pending_keys(self) -> list[str]:
        """Keys with a pending epoch record (a joining party's only record of the key)."""
        d = self.store.root / "keys"
        return sorted(p.name for p in d.iterdir() if self.store.exists(pending_name(p.name))) if d.is_dir() else []

    def recover(self, key_ids: list[str]) -> None:
        """At start: finish every adoption that was decided before a crash."""
        for key_id in sorted(set(key_ids) | set(self.pending_keys())):
            pending = self.pending(key_id)
            if pending is None or not pending.confirmations:
                continue
            with self._lock_of(key_id):
                self._adopt(key_id, pending)  # every party confirmed it: rolling forward is the only safe way
            log.warning("epoch_adoption_finished_after_restart", key_id=key_id, epoch=pending.epoch)
