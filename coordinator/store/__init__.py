"""The coordinator's persistence: one SQLite file in WAL mode (the default), or one PostgreSQL
database that several coordinator replicas share; schema migrated on open (`database`).

Tables: `keys`, `presignatures`, `requests` (with the intent officers approve and the policy's
outcome), `request_events` (one row per transition), `approvals` (the officers' signed approvals,
as received), `sessions`, `governance` (the installed registry and policy as `Governed` JSON, the
freeze state), `governance_log` (every accepted change and freeze order, in order, with the signers
that hold it), `audit_log` (coordinator/audit; writers pass an `AuditHook` so an entry commits
with the change it records), `replicas` (the replicas' heartbeats) and `schema_version` (one row
per applied migration). Every write runs in its own transaction that holds what it read (SQLite's
`BEGIN IMMEDIATE` write lock; on PostgreSQL row locks and advisory locks), so a read-then-write
(reserving a presignature, creating a request under an idempotency key, recording an approval,
claiming a request) is atomic across threads, processes and replicas.

Modules: `database` (connections, transactions, `migrate`), `migrations` (the schema), `keys`
(keys and the presignature pool), `request_records` (request records; states and moves:
`coordinator/request_states.py`),
`requests` (requests, transitions, approvals), `sessions`, `governance`, `columns` (JSON column
codecs), `errors`, `key_epochs` (the `key_epoch_commits` table: a refreshed epoch being committed
on the signers), `postgres` (the PostgreSQL pool and connection wrapper), `replicas` (owners,
heartbeats, recovery), `balances` (hot-wallet balance reports and their sweeps). `Store` combines
the table groups into the one object callers use; every name callers need is importable from
`coordinator.store`.

Presignature states: ready -> reserved -> consumed | failed (and ready -> failed when voided).
A reserved presignature never goes back to ready, whatever happens to its request: the signers
may already have released partial signatures from it.

Durability: WAL with `synchronous=NORMAL` by default, so a commit survives a crash of the
coordinator process but the last commits may be lost if the machine itself goes down. That costs
availability, never safety: single use of a presignature is enforced by each signer, which deletes
it durably before releasing σ_i, so a presignature this database "forgets" it reserved is refused
by the signers, and a lost request row only means a retried submit signs the same transaction
again. Key creation is written with `synchronous=FULL` (a lost key row would orphan the shares).
Pass `synchronous="FULL"` to make every commit durable (one fsync each).
"""

from __future__ import annotations

# The states and allowed moves have one home, the lifecycle's table; the store checks the same one.
from ..request_states import (
    APPROVED,
    BLOCKED,
    EXPIRED,
    FAILED,
    FINAL_STATES,
    OPEN_STATES,
    PENDING_APPROVAL,
    REJECTED,
    SIGNED,
    SIGNING,
    SUBMITTED,
    TIME_LOCKED,
    TRANSITIONS,
)
from .balances import BalanceRecord, BalanceTables
from .columns import PageCursor, blames_json, ints_json
from .database import AuditHook, Database
from .errors import DuplicateApproval, IdempotencyConflict, InvalidTransition, NotFound, StoreError
from .governance import GOVERNANCE_LOG_KINDS, GOVERNANCE_STATE, GovernanceEntry, GovernanceTables
from .key_epochs import EpochCommit, KeyEpochTables
from .keys import CONSUMED, PRESIG_FAILED, READY, RESERVED, KeyRecord, KeyTables, PresignatureRecord
from .migrations import MIGRATIONS, SCHEMA_VERSION
from .replicas import RECOVERED_ERROR, Recovered, RecoveredRequest, ReplicaTables
from .request_records import (
    RequestEvent,
    RequestRecord,
    StoredApproval,
)
from .requests import RequestTables
from .sessions import MAX_SESSION_EVIDENCE, SessionRecord, SessionTables, bounded_evidence

__all__ = [
    "APPROVED",
    "BLOCKED",
    "CONSUMED",
    "EXPIRED",
    "FAILED",
    "FINAL_STATES",
    "GOVERNANCE_LOG_KINDS",
    "GOVERNANCE_STATE",
    "MAX_SESSION_EVIDENCE",
    "MIGRATIONS",
    "OPEN_STATES",
    "PENDING_APPROVAL",
    "PRESIG_FAILED",
    "READY",
    "RECOVERED_ERROR",
    "REJECTED",
    "RESERVED",
    "SCHEMA_VERSION",
    "SIGNED",
    "SIGNING",
    "SUBMITTED",
    "TIME_LOCKED",
    "TRANSITIONS",
    "AuditHook",
    "BalanceRecord",
    "Database",
    "DuplicateApproval",
    "EpochCommit",
    "GovernanceEntry",
    "IdempotencyConflict",
    "InvalidTransition",
    "KeyRecord",
    "NotFound",
    "PageCursor",
    "PresignatureRecord",
    "Recovered",
    "RecoveredRequest",
    "RequestEvent",
    "RequestRecord",
    "SessionRecord",
    "Store",
    "StoreError",
    "StoredApproval",
    "blames_json",
    "bounded_evidence",
    "ints_json",
]


class Store(KeyTables, KeyEpochTables, RequestTables, GovernanceTables, SessionTables, ReplicaTables, BalanceTables):
    """Thread-safe access to the coordinator database (SQLite, or PostgreSQL shared by replicas)."""
