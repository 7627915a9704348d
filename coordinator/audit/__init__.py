"""The coordinator's append-only audit log: hash-chained entries and signed Merkle checkpoints.

Modules: `format` (entry kinds, the table schema, the hash an entry commits to, canonical JSON,
checkpoint bodies and the offline export format), `writer` (`AuditLog`: appending, chaining and
signing checkpoints; the audit key file) and `verifier` (`verify` / `verify_export`, the auditor's
checks, naming the first bad entry and why). Every name callers use is importable from
`coordinator.audit`.
"""

from __future__ import annotations

from .format import (
    ABORT,
    APPROVAL,
    CHECKPOINT,
    EXPORT_FORMAT,
    FREEZE,
    GENESIS,
    KEY,
    POLICY,
    REQUEST,
    SCHEMA,
    SESSION,
    AuditEntry,
    AuditError,
    canonical_json,
    checkpoint_body,
    checkpoint_message,
    entry_hash,
    export,
)
from .verifier import (
    ANCHOR_MISMATCH,
    CHECKPOINT_MALFORMED,
    CHECKPOINT_RANGE,
    CHECKPOINT_ROOT,
    CHECKPOINT_SIGNATURE,
    EXPORT_MALFORMED,
    HASH_MISMATCH,
    MALFORMED_ENTRY,
    PREV_HASH_MISMATCH,
    SEQ_GAP,
    TRUNCATED,
    VerifyReport,
    load_public_key,
    verify,
    verify_export,
)
from .writer import AuditLog, ensure_schema, load_or_create_key

__all__ = [
    "ABORT",
    "ANCHOR_MISMATCH",
    "APPROVAL",
    "CHECKPOINT",
    "CHECKPOINT_MALFORMED",
    "CHECKPOINT_RANGE",
    "CHECKPOINT_ROOT",
    "CHECKPOINT_SIGNATURE",
    "EXPORT_FORMAT",
    "EXPORT_MALFORMED",
    "FREEZE",
    "GENESIS",
    "HASH_MISMATCH",
    "KEY",
    "MALFORMED_ENTRY",
    "POLICY",
    "PREV_HASH_MISMATCH",
    "REQUEST",
    "SCHEMA",
    "SEQ_GAP",
    "SESSION",
    "TRUNCATED",
    "AuditEntry",
    "AuditError",
    "AuditLog",
    "VerifyReport",
    "canonical_json",
    "checkpoint_body",
    "checkpoint_message",
    "ensure_schema",
    "entry_hash",
    "export",
    "load_or_create_key",
    "load_public_key",
    "verify",
    "verify_export",
]
