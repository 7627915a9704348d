"""Keys and the presignature pool: records, row decoding and the `KeyTables` part of the store.

Presignature states: ready -> reserved -> consumed | failed (and ready -> failed when voided).
A reserved presignature never goes back to ready, whatever happens to its request: the signers
may already have released partial signatures from it. A presignature's id (its presign session's
id) is `bytes` in this API; the table keeps it as hex text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .columns import PageCursor, ints_from_json, ints_json
from .database import AuditHook, Database
from .errors import InvalidTransition, NotFound, StoreError

# --- presignature states ----------------------------------------------------------------------------
READY = "ready"
RESERVED = "reserved"
CONSUMED = "consumed"
PRESIG_FAILED = "failed"


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A key's public data, as created by keygen + aux info."""

    key_id: str
    name: str
    threshold: int
    parties: tuple[int, ...]
    level: str
    public_key: bytes
    chain_code: bytes
    epoch: int
    aux_epoch: bytes  # empty after a reshare until aux info ran for the new committee
    created_at: float
    retired: tuple[int, ...] = ()  # indices a reshare removed from the key: never used again


@dataclass(frozen=True, slots=True)
class PresignatureRecord:
    """A presignature's public data and where it is in its single life."""

    presignature_id: bytes
    key_id: str
    signers: tuple[int, ...]
    path: tuple[int, ...]
    public: bytes
    state: str
    epoch: int
    request_id: str | None
    created_at: float
    updated_at: float


def key_from_row(row: Any) -> KeyRecord:
    return KeyRecord(
        row["key_id"],
        row["name"],
        row["threshold"],
        ints_from_json(row["parties"]),
        row["level"],
        bytes(row["public_key"]),
        bytes(row["chain_code"]),
        row["epoch"],
        bytes(row["aux_epoch"]),
        row["created_at"],
        ints_from_json(row["retired"]),
    )


def presignature_from_row(row: Any) -> PresignatureRecord:
    return PresignatureRecord(
        bytes.fromhex(row["presig_id"]),
        row["key_id"],
        ints_from_json(row["signers"]),
        ints_from_json(row["path"]),
        bytes(row["public"]),
        row["state"],
        row["epoch"],
        row["request_id"],
        row["created_at"],
        row["updated_at"],
    )


class KeyTables(Database):
    """The `keys` and `presignatures` tables."""

    # --- keys --------------------------------------------------------------------------------------------
    def add_key(self, key: KeyRecord) -> None:
        """Record a newly created key (durably)."""
        with self._tx(durable=True) as c:
            c.execute(
                "INSERT INTO keys VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    key.key_id,
                    key.name,
                    key.threshold,
                    ints_json(key.parties),
                    key.level,
                    key.public_key,
                    key.chain_code,
                    key.epoch,
                    key.aux_epoch,
                    key.created_at,
                    ints_json(key.retired),
                ),
            )

    def get_key(self, key_id: str) -> KeyRecord:
        """A key, or NotFound."""
        row = self._one("SELECT * FROM keys WHERE key_id = ?", (key_id,))
        if row is None:
            raise NotFound(f"no key {key_id!r}")
        return key_from_row(row)

    def set_aux_epoch(self, key_id: str, aux_epoch: bytes, audit: AuditHook | None = None) -> None:
        """Aux info ran for the key's (new) committee: the key presigns again."""
        with self._tx(durable=True) as c:
            c.execute("UPDATE keys SET aux_epoch = ? WHERE key_id = ?", (aux_epoch, key_id))
            if audit is not None:
                audit(c)

    def list_keys(self, *, limit: int = 0, after: PageCursor | None = None) -> list[KeyRecord]:
        """Every key (or the first `limit`; 0: all), oldest first, starting after the cursor `after`."""
        sql, args = "SELECT * FROM keys", list[Any]()
        if after is not None:
            sql, args = sql + " WHERE created_at > ? OR (created_at = ? AND key_id > ?)", [after.created_at] * 2
            args.append(after.row_id)
        sql += " ORDER BY created_at, key_id"
        if limit > 0:
            sql, args = sql + " LIMIT ?", [*args, limit]
        return [key_from_row(r) for r in self._rows(sql, args)]

    # --- presignatures -----------------------------------------------------------------------------------
    def add_presignature(
        self,
        presignature_id: bytes,
        key_id: str,
        signers: Sequence[int],
        path: Sequence[int],
        public: bytes,
        epoch: int,
    ) -> None:
        """Record a fresh presignature as ready."""
        now = self.now()
        with self._tx() as c:
            c.execute(
                "INSERT INTO presignatures (presig_id, key_id, signers, path, public, state, epoch, request_id, "
                "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?, ?)",
                (
                    presignature_id.hex(),
                    key_id,
                    ints_json(sorted(signers)),
                    ints_json(path),
                    public,
                    READY,
                    epoch,
                    now,
                    now,
                ),
            )

    def get_presignature(self, presignature_id: bytes) -> PresignatureRecord:
        """A presignature, or NotFound."""
        row = self._one("SELECT * FROM presignatures WHERE presig_id = ?", (presignature_id.hex(),))
        if row is None:
            raise NotFound(f"no presignature {presignature_id.hex()}")
        return presignature_from_row(row)

    def count_ready(self, key_id: str, signers: Sequence[int], path: Sequence[int], epoch: int) -> int:
        """Ready presignatures for one (key, signer set, path, epoch)."""
        row = self._one(
            "SELECT count(*) FROM presignatures "
            "WHERE key_id = ? AND state = ? AND epoch = ? AND signers = ? AND path = ?",
            (key_id, READY, epoch, ints_json(sorted(signers)), ints_json(path)),
        )
        return int(row[0])

    def reserve_presignature(
        self, key_id: str, signer_sets: Sequence[Sequence[int]], path: Sequence[int], epoch: int, request_id: str
    ) -> PresignatureRecord | None:
        """In one transaction: move the oldest ready presignature of the first signer set that has one
        (sets in preference order) to reserved for `request_id`; None if no set has one."""
        now = self.now()
        with self._tx() as c:
            for signers in signer_sets:
                row = c.execute(
                    "SELECT presig_id FROM presignatures WHERE key_id = ? AND state = ? AND epoch = ? AND signers = ? "
                    "AND path = ? ORDER BY created_at, presig_id LIMIT 1 FOR UPDATE SKIP LOCKED",
                    (key_id, READY, epoch, ints_json(sorted(signers)), ints_json(path)),
                ).fetchone()
                if row is None:
                    continue
                cur = c.execute(
                    "UPDATE presignatures SET state = ?, request_id = ?, updated_at = ?, owner = ? "
                    "WHERE presig_id = ? AND state = ?",
                    (RESERVED, request_id, now, self.replica, row["presig_id"], READY),
                )
                if cur.rowcount != 1:  # cannot happen under the row lock; never hand out twice regardless
                    raise StoreError("presignature reservation raced")
                got = c.execute("SELECT * FROM presignatures WHERE presig_id = ?", (row["presig_id"],)).fetchone()
                return presignature_from_row(got)
        return None

    def finish_presignature(self, presignature_id: bytes, state: str) -> None:
        """reserved -> consumed (signature made) or failed (anything else); never back to ready."""
        if state not in (CONSUMED, PRESIG_FAILED):
            raise InvalidTransition(f"a reserved presignature ends consumed or failed, not {state!r}")
        with self._tx() as c:
            cur = c.execute(
                "UPDATE presignatures SET state = ?, updated_at = ? WHERE presig_id = ? AND state = ?",
                (state, self.now(), presignature_id.hex(), RESERVED),
            )
            if cur.rowcount != 1:
                raise InvalidTransition(f"presignature {presignature_id.hex()} is not reserved")

    def fail_ready_presignatures(self, presignature_ids: Sequence[bytes]) -> int:
        """Mark these presignatures failed if still ready (a signer of theirs restarted); returns how many."""
        with self._tx() as c:
            n = 0
            for pid in presignature_ids:
                n += c.execute(
                    "UPDATE presignatures SET state = ?, updated_at = ? WHERE presig_id = ? AND state = ?",
                    (PRESIG_FAILED, self.now(), pid.hex(), READY),
                ).rowcount
            return n

    def ready_presignatures(self, key_id: str) -> list[PresignatureRecord]:
        """Every ready presignature of a key, oldest first."""
        rows = self._rows(
            "SELECT * FROM presignatures WHERE key_id = ? AND state = ? ORDER BY created_at, presig_id", (key_id, READY)
        )
        return [presignature_from_row(r) for r in rows]

    def void_presignatures(self, key_id: str, *, keep_epoch: int | None = None) -> int:
        """Mark ready presignatures of a key failed (all, or those not of `keep_epoch`); returns how many."""
        with self._tx() as c:
            if keep_epoch is None:
                cur = c.execute(
                    "UPDATE presignatures SET state = ?, updated_at = ? WHERE key_id = ? AND state = ?",
                    (PRESIG_FAILED, self.now(), key_id, READY),
                )
            else:
                cur = c.execute(
                    "UPDATE presignatures SET state = ?, updated_at = ? WHERE key_id = ? AND state = ? AND epoch != ?",
                    (PRESIG_FAILED, self.now(), key_id, READY, keep_epoch),
                )
            return int(cur.rowcount)
