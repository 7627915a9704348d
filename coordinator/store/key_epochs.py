"""Key epochs being committed: the `key_epoch_commits` table (migration 5) and its `KeyEpochTables`.

A row exists while a refresh or a reshare of the key is being committed on the signers: every
party's confirmation is held, and `committed` lists the signers that adopted the epoch. While it
exists the key does not sign (coordinator/key_refresh.py, key_reshare.py); `finish_epoch_commit`
moves the key record to the new epoch (and, for a reshare, to the new committee and threshold,
adding the parties that left to `retired`) and deletes the row in one transaction. Migration 7
added the reshare columns (`parties`, `threshold`, `confirmers`; empty / 0 for a refresh).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from .columns import ints_from_json, ints_json
from .database import AuditHook, Database
from .errors import NotFound
from .keys import PRESIG_FAILED, READY


@dataclass(frozen=True, slots=True)
class EpochCommit:
    """A new epoch every party confirmed, on its way to every signer.

    A reshare also names the new committee `parties`, its `threshold` and the `confirmers` (dealers
    ∪ new committee) that must adopt it; a refresh leaves them empty (the key's own parties).
    """

    key_id: str
    epoch: int
    aux_epoch: bytes
    digest: bytes
    confirmations: tuple[bytes, ...]
    committed: tuple[int, ...]
    started_at: float
    parties: tuple[int, ...] = ()
    threshold: int = 0
    confirmers: tuple[int, ...] = ()

    @property
    def is_reshare(self) -> bool:
        """The commit moves the key to a new committee."""
        return bool(self.parties)


class KeyEpochTables(Database):
    """The `key_epoch_commits` table."""

    def begin_epoch_commit(self, commit: EpochCommit, audit: AuditHook | None = None) -> int:
        """Record a confirmed epoch (durably) and fail every ready presignature of the key, in one
        transaction; returns how many presignatures were failed."""
        with self._tx(durable=True) as c:
            c.execute(
                "INSERT INTO key_epoch_commits VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    commit.key_id,
                    commit.epoch,
                    commit.aux_epoch,
                    commit.digest,
                    json.dumps([x.hex() for x in commit.confirmations]),
                    ints_json(commit.committed),
                    commit.started_at,
                    ints_json(commit.parties),
                    commit.threshold,
                    ints_json(commit.confirmers),
                ),
            )
            cur = c.execute(
                "UPDATE presignatures SET state = ?, updated_at = ? WHERE key_id = ? AND state = ?",
                (PRESIG_FAILED, self.now(), commit.key_id, READY),
            )
            if audit is not None:
                audit(c)
            return int(cur.rowcount)

    def epoch_commit(self, key_id: str) -> EpochCommit | None:
        """The key's epoch being committed, if any."""
        row = self._one("SELECT * FROM key_epoch_commits WHERE key_id = ?", (key_id,))
        if row is None:
            return None
        return EpochCommit(
            row["key_id"],
            row["epoch"],
            bytes(row["aux_epoch"]),
            bytes(row["digest"]),
            tuple(bytes.fromhex(x) for x in json.loads(row["confirmations"])),
            ints_from_json(row["committed"]),
            row["started_at"],
            ints_from_json(row["parties"]),
            row["threshold"],
            ints_from_json(row["confirmers"]),
        )

    def key_waits(self, key_id: str) -> bool:
        """The key does not sign now: a new epoch is being committed, or a reshared key has no aux
        info for its new committee yet."""
        row = self._one(
            "SELECT k.aux_epoch, c.key_id AS committing FROM keys k "
            "LEFT JOIN key_epoch_commits c ON c.key_id = k.key_id WHERE k.key_id = ?",
            (key_id,),
        )
        return row is not None and (row["committing"] is not None or not bytes(row["aux_epoch"]))

    def epoch_commits(self) -> list[str]:
        """Keys with an epoch being committed."""
        return [r[0] for r in self._rows("SELECT key_id FROM key_epoch_commits ORDER BY key_id")]

    def note_epoch_committed(self, key_id: str, parties: Sequence[int]) -> None:
        """Signers `parties` adopted the key's pending epoch."""
        with self._tx() as c:
            row = c.execute("SELECT committed FROM key_epoch_commits WHERE key_id = ? FOR UPDATE", (key_id,)).fetchone()
            if row is None:
                raise NotFound(f"no epoch being committed for key {key_id!r}")
            done = sorted(set(ints_from_json(row["committed"])) | set(parties))
            c.execute("UPDATE key_epoch_commits SET committed = ? WHERE key_id = ?", (ints_json(done), key_id))

    def finish_epoch_commit(self, key_id: str, audit: AuditHook | None = None) -> None:
        """Every signer adopted the epoch: the key record moves to it (a reshare: to its committee,
        threshold and no aux info yet, the parties that left added to `retired`) and the row goes."""
        with self._tx(durable=True) as c:
            row = c.execute("SELECT * FROM key_epoch_commits WHERE key_id = ? FOR UPDATE", (key_id,)).fetchone()
            if row is None:
                raise NotFound(f"no epoch being committed for key {key_id!r}")
            c.execute(
                "UPDATE keys SET epoch = ?, aux_epoch = ? WHERE key_id = ?", (row["epoch"], row["aux_epoch"], key_id)
            )
            new_parties = ints_from_json(row["parties"])
            if new_parties:
                key = c.execute("SELECT parties, retired FROM keys WHERE key_id = ?", (key_id,)).fetchone()
                left = set(ints_from_json(key["parties"])) - set(new_parties)
                retired = sorted(set(ints_from_json(key["retired"])) | left)
                c.execute(
                    "UPDATE keys SET parties = ?, threshold = ?, retired = ? WHERE key_id = ?",
                    (ints_json(new_parties), row["threshold"], ints_json(retired), key_id),
                )
            c.execute("DELETE FROM key_epoch_commits WHERE key_id = ?", (key_id,))
            if audit is not None:
                audit(c)
