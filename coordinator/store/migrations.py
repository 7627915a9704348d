"""The coordinator database's schema, as an ordered list of migrations (`Database.migrate` applies them)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ..audit.format import SCHEMA as AUDIT_SCHEMA
from ..dbapi import Connection, PerDialect
from .ledger import backfill as backfill_ledger

_PRESIGNATURES = """CREATE TABLE presignatures (
    presig_id TEXT PRIMARY KEY,
    key_id TEXT NOT NULL REFERENCES keys(key_id),
    signers TEXT NOT NULL,
    path TEXT NOT NULL,
    public BLOB NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('ready', 'reserved', 'consumed', 'failed')),
    epoch INTEGER NOT NULL,
    request_id TEXT REFERENCES requests(request_id),
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL)"""
_PRESIGNATURES_PICK = (
    "CREATE INDEX presignatures_pick ON presignatures(key_id, state, epoch, signers, path, created_at)"
)

# Migration 11 rebuilds `requests` on SQLite (a column's UNIQUE cannot be dropped there): the table
# as migrations 1, 2 and 8 left it, the idempotency key no longer unique on its own.
_REQUESTS_REBUILT = """CREATE TABLE requests_rebuilt (
    request_id TEXT PRIMARY KEY,
    key_id TEXT NOT NULL REFERENCES keys(key_id),
    idempotency_key TEXT NOT NULL,
    body_hash TEXT NOT NULL,
    state TEXT NOT NULL,
    tx TEXT NOT NULL,
    path TEXT NOT NULL,
    digest BLOB,
    r BLOB,
    s BLOB,
    v INTEGER,
    raw_tx BLOB,
    tx_hash BLOB,
    from_address TEXT NOT NULL DEFAULT '',
    presig_id TEXT,
    blame TEXT NOT NULL DEFAULT '[]',
    error TEXT NOT NULL DEFAULT '',
    error_code TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    kind TEXT NOT NULL DEFAULT 'withdrawal',
    initiator TEXT NOT NULL DEFAULT '',
    intent BLOB,
    intent_digest BLOB,
    policy_hash BLOB,
    expires_at INTEGER NOT NULL DEFAULT 0,
    time_lock_until INTEGER NOT NULL DEFAULT 0,
    policy_reason TEXT NOT NULL DEFAULT '',
    rule_id TEXT NOT NULL DEFAULT '',
    owner TEXT NOT NULL DEFAULT '')"""
_REQUEST_COLUMNS = (
    "request_id, key_id, idempotency_key, body_hash, state, tx, path, digest, r, s, v, raw_tx, tx_hash, "
    "from_address, presig_id, blame, error, error_code, created_at, updated_at, kind, initiator, intent, "
    "intent_digest, policy_hash, expires_at, time_lock_until, policy_reason, rule_id, owner"
)
_COPY_REQUESTS = f"INSERT INTO requests_rebuilt ({_REQUEST_COLUMNS}) SELECT {_REQUEST_COLUMNS} FROM requests"  # noqa: S608

MIGRATIONS: tuple[tuple[int, str, tuple[str | PerDialect, ...]], ...] = (
    (
        1,
        "initial schema",
        (
            """CREATE TABLE keys (
                key_id TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                threshold INTEGER NOT NULL,
                parties TEXT NOT NULL,
                level TEXT NOT NULL,
                public_key BLOB NOT NULL,
                chain_code BLOB NOT NULL,
                epoch INTEGER NOT NULL,
                aux_epoch BLOB NOT NULL,
                created_at REAL NOT NULL)""",
            # PostgreSQL wants a referenced table to exist: there the pool comes after `requests`.
            PerDialect(_PRESIGNATURES, ""),
            PerDialect(_PRESIGNATURES_PICK, ""),
            """CREATE TABLE requests (
                request_id TEXT PRIMARY KEY,
                key_id TEXT NOT NULL REFERENCES keys(key_id),
                idempotency_key TEXT NOT NULL UNIQUE,
                body_hash TEXT NOT NULL,
                state TEXT NOT NULL,
                tx TEXT NOT NULL,
                path TEXT NOT NULL,
                digest BLOB,
                r BLOB,
                s BLOB,
                v INTEGER,
                raw_tx BLOB,
                tx_hash BLOB,
                from_address TEXT NOT NULL DEFAULT '',
                presig_id TEXT,
                blame TEXT NOT NULL DEFAULT '[]',
                error TEXT NOT NULL DEFAULT '',
                error_code TEXT NOT NULL DEFAULT '',
                created_at REAL NOT NULL,
                updated_at REAL NOT NULL)""",
            "CREATE INDEX requests_by_key ON requests(key_id, state, created_at)",
            PerDialect(
                "",
                _PRESIGNATURES,
            ),
            PerDialect("", _PRESIGNATURES_PICK),
            """CREATE TABLE request_events (
                request_id TEXT NOT NULL REFERENCES requests(request_id),
                seq INTEGER NOT NULL,
                state TEXT NOT NULL,
                detail TEXT NOT NULL,
                at REAL NOT NULL,
                PRIMARY KEY (request_id, seq))""",
            """CREATE TABLE sessions (
                session_id TEXT PRIMARY KEY,
                protocol TEXT NOT NULL,
                key_id TEXT NOT NULL,
                parties TEXT NOT NULL,
                state TEXT NOT NULL CHECK (state IN ('running', 'done', 'failed')),
                blame TEXT NOT NULL DEFAULT '[]',
                error TEXT NOT NULL DEFAULT '',
                started_at REAL NOT NULL,
                ended_at REAL)""",
        ),
    ),
    (
        2,
        "policy: request intents and policy outcome, approvals, governance state and its delivery log",
        (
            "ALTER TABLE requests ADD COLUMN kind TEXT NOT NULL DEFAULT 'withdrawal'",
            "ALTER TABLE requests ADD COLUMN initiator TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE requests ADD COLUMN intent BLOB",
            "ALTER TABLE requests ADD COLUMN intent_digest BLOB",
            "ALTER TABLE requests ADD COLUMN policy_hash BLOB",
            "ALTER TABLE requests ADD COLUMN expires_at INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE requests ADD COLUMN time_lock_until INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE requests ADD COLUMN policy_reason TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE requests ADD COLUMN rule_id TEXT NOT NULL DEFAULT ''",
            "CREATE INDEX requests_by_state ON requests(state, expires_at)",
            """CREATE TABLE approvals (
                request_id TEXT NOT NULL REFERENCES requests(request_id),
                officer_id TEXT NOT NULL,
                approval BLOB NOT NULL,
                signed_at INTEGER NOT NULL,
                expires_at INTEGER NOT NULL,
                recorded_at REAL NOT NULL,
                PRIMARY KEY (request_id, officer_id))""",
            """CREATE TABLE governance (
                name TEXT PRIMARY KEY CHECK (name IN ('registry', 'policy', 'freeze')),
                value BLOB NOT NULL,
                updated_at REAL NOT NULL)""",
            """CREATE TABLE governance_log (
                seq INTEGER PRIMARY KEY,
                kind TEXT NOT NULL CHECK (kind IN ('registry', 'policy', 'freeze', 'unfreeze')),
                payload BLOB NOT NULL,
                at REAL NOT NULL,
                acked TEXT NOT NULL DEFAULT '[]')""",
        ),
    ),
    (3, "audit log: hash-chained entries, append-only triggers (coordinator/audit.py)", AUDIT_SCHEMA),
    (
        4,
        "sessions: parties a missing message named (unreachable or withheld, never blamed)",
        ("ALTER TABLE sessions ADD COLUMN unreachable TEXT NOT NULL DEFAULT '[]'",),
    ),
    (
        5,
        "ledger: running sums per key, destination and initiator, so a policy decision never scans history",
        (
            """CREATE TABLE ledger_spends (
                seq INTEGER PRIMARY KEY,
                request_id TEXT NOT NULL,
                key_id TEXT NOT NULL,
                asset TEXT NOT NULL,
                destination TEXT NOT NULL,
                amount TEXT NOT NULL,
                at REAL NOT NULL,
                key_cum TEXT NOT NULL,
                dest_cum TEXT NOT NULL)""",
            "CREATE INDEX ledger_spends_by_key ON ledger_spends(key_id, asset, at)",
            "CREATE INDEX ledger_spends_by_destination ON ledger_spends(destination, asset, at)",
            "CREATE INDEX ledger_spends_by_request ON ledger_spends(request_id)",
            """CREATE TABLE ledger_requests (
                seq INTEGER PRIMARY KEY,
                initiator TEXT NOT NULL,
                request_id TEXT NOT NULL,
                at REAL NOT NULL,
                n INTEGER NOT NULL)""",
            "CREATE INDEX ledger_requests_by_initiator ON ledger_requests(initiator, at)",
            "CREATE INDEX ledger_requests_by_request ON ledger_requests(request_id)",
            """CREATE TABLE destination_counts (
                destination TEXT PRIMARY KEY,
                count INTEGER NOT NULL)""",
        ),
    ),
    (
        6,
        "key refresh: a confirmed epoch being committed on the signers (coordinator/store/key_epochs.py)",
        (
            """CREATE TABLE key_epoch_commits (
                key_id TEXT PRIMARY KEY REFERENCES keys(key_id),
                epoch INTEGER NOT NULL,
                aux_epoch BLOB NOT NULL,
                digest BLOB NOT NULL,
                confirmations TEXT NOT NULL,
                committed TEXT NOT NULL DEFAULT '[]',
                started_at REAL NOT NULL)""",
        ),
    ),
    (
        7,
        "key reshare: a commit may move the key to a new committee; the indices a key left (key_reshare.py)",
        (
            "ALTER TABLE key_epoch_commits ADD COLUMN parties TEXT NOT NULL DEFAULT '[]'",
            "ALTER TABLE key_epoch_commits ADD COLUMN threshold INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE key_epoch_commits ADD COLUMN confirmers TEXT NOT NULL DEFAULT '[]'",
            "ALTER TABLE keys ADD COLUMN retired TEXT NOT NULL DEFAULT '[]'",
        ),
    ),
    (
        8,
        "replicas: the coordinator replica driving each in-flight request, reserved presignature and running "
        "session, and every replica's heartbeat (store/replicas.py)",
        (
            "ALTER TABLE requests ADD COLUMN owner TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE presignatures ADD COLUMN owner TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE sessions ADD COLUMN owner TEXT NOT NULL DEFAULT ''",
            """CREATE TABLE replicas (
                replica_id TEXT PRIMARY KEY,
                started_at REAL NOT NULL,
                heartbeat_at REAL NOT NULL)""",
        ),
    ),
    (
        9,
        "new-destination breakers: when each destination was first paid (store/ledger.py), from the spends",
        (
            """CREATE TABLE destination_first (
                destination TEXT PRIMARY KEY,
                first_at REAL NOT NULL)""",
            "INSERT INTO destination_first SELECT destination, MIN(at) FROM ledger_spends GROUP BY destination",
        ),
    ),
    (
        10,
        "hot-wallet balances as backends report them, and the sweep proposed from each (store/balances.py)",
        (
            """CREATE TABLE hot_balances (
                network TEXT NOT NULL,
                address TEXT NOT NULL,
                asset TEXT NOT NULL,
                amount TEXT NOT NULL,
                next_nonce INTEGER NOT NULL,
                reported_at REAL NOT NULL,
                reporter TEXT NOT NULL,
                sweep_request_id TEXT NOT NULL DEFAULT '',
                sweep_seq INTEGER NOT NULL DEFAULT 0,
                swept_at REAL NOT NULL DEFAULT 0,
                PRIMARY KEY (network, address, asset))""",
        ),
    ),
    (
        11,
        "withdrawals waiting for funds: a wallet's requests by state and time, and its observed refills "
        "(funds.py, store/balances.py)",
        (
            "CREATE INDEX requests_by_source ON requests(from_address, state, updated_at)",
            "ALTER TABLE hot_balances ADD COLUMN last_refill_at REAL NOT NULL DEFAULT 0",
            "ALTER TABLE hot_balances ADD COLUMN refill_every REAL NOT NULL DEFAULT 0",
        ),
    ),
    (
        12,
        "a request's audit trail for officers: the audit log by subject (review.py)",
        ("CREATE INDEX audit_log_by_subject ON audit_log(subject, seq)",),
    ),
    (
        13,
        "idempotency keys scoped per backend: unique per (initiator, idempotency_key), no longer globally",
        (
            # SQLite: the table rebuilt (its indexes go with the old table and are made again);
            # `Database.migrate` holds foreign keys off on SQLite, checking them before it commits.
            PerDialect(_REQUESTS_REBUILT, "ALTER TABLE requests DROP CONSTRAINT requests_idempotency_key_key"),
            PerDialect(_COPY_REQUESTS, ""),
            PerDialect("DROP TABLE requests", ""),
            PerDialect("ALTER TABLE requests_rebuilt RENAME TO requests", ""),
            PerDialect("CREATE INDEX requests_by_key ON requests(key_id, state, created_at)", ""),
            PerDialect("CREATE INDEX requests_by_state ON requests(state, expires_at)", ""),
            PerDialect("CREATE INDEX requests_by_source ON requests(from_address, state, updated_at)", ""),
            "CREATE UNIQUE INDEX requests_by_idempotency_key ON requests(initiator, idempotency_key)",
        ),
    ),
)
"""Ordered migrations: (version, description, statements), one list for both dialects (written in
SQLite's; `coordinator.dbapi.ddl` translates, `PerDialect` where it cannot). Append only; never
edit a shipped one."""

SCHEMA_VERSION = MIGRATIONS[-1][0]

DATA_STEPS: Mapping[int, Callable[[Connection], None]] = {5: backfill_ledger}
"""Data a migration derives in Python after its statements (same transaction): version -> step."""
