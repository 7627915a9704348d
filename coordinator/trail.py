"""The coordinator's side of the audit log: where its key lives, how a service event becomes an entry.

An entry's body (hashed) is the event name followed by its fields as (name, value) pairs in the
project's canonical encoding; its JSON view (hashed too) is the same for humans, bytes in hex.
`AuditTrail.note` builds an `AuditHook` for the store, so an entry commits in the same transaction
as the change it records; `record` appends on its own (refusals, sessions, keys).
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from signer.tss.encoding import Value
from signer.tss.errors import Blame

from .audit import AuditLog, load_or_create_key
from .dbapi import SQLITE
from .store import AuditHook, Store


def audit_key_path(db: Path) -> Path:
    """The coordinator's audit signing key (Ed25519, PEM, 0600), next to its database."""
    return Path(db).parent / "audit-key.pem"


def audit_public_key_path(db: Path) -> Path:
    """The audit public key (PEM) auditors verify checkpoints with, written next to the private key."""
    return Path(db).parent / "audit-key.pub.pem"


def open_audit_log(store: Store) -> AuditLog:
    """The audit log in the store's database, its key loaded (or created) in the store's `home`
    (beside a SQLite file). On PostgreSQL the log writes through the store's pool: every replica
    appends to the one chain, and every replica must be given the same key file."""
    key = load_or_create_key(audit_key_path(store.home / "coordinator.db"))
    db = store.path if store.dialect == SQLITE else store
    log_ = AuditLog(db, key, clock=store.now)
    public = audit_public_key_path(store.home / "coordinator.db")
    if not public.exists() or public.read_text() != log_.public_key_pem():
        public.write_text(log_.public_key_pem())
    return log_


def _jsonable(v: Any) -> Any:
    """The human view of an audited value (bytes as hex)."""
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, Blame):
        return {"party": v.party, "round": v.round, "check": v.check, "evidence": v.evidence.hex()}
    if isinstance(v, Mapping):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple | set | frozenset):
        items = [_jsonable(x) for x in v]
        return sorted(items) if isinstance(v, set | frozenset) else items
    return v


def _value(v: Any) -> Value:
    """The canonical (encoded, hashed) form of an audited value."""
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, bytes | str | int):
        return v
    if v is None:
        return ""
    if isinstance(v, Blame):
        return [v.party, v.round, v.check, v.evidence]
    if isinstance(v, Mapping):
        return [[str(k), _value(x)] for k, x in sorted(v.items(), key=lambda kv: str(kv[0]))]
    if isinstance(v, set | frozenset):
        return [_value(x) for x in sorted(v)]
    if isinstance(v, list | tuple):
        return [_value(x) for x in v]
    return str(v)


def audit_body(event: str, fields: Mapping[str, Any]) -> tuple[list[Value], dict[str, Any]]:
    """(body values, JSON view) of an entry: the event name, then each field by name."""
    values: list[Value] = [event, [[k, _value(v)] for k, v in sorted(fields.items())]]
    return values, {"event": event, **{k: _jsonable(v) for k, v in fields.items()}}


class AuditTrail:
    """Service events as audit entries (`kind` one of audit.REQUEST, APPROVAL, POLICY, SESSION, ABORT,
    FREEZE, KEY; `event` names what happened; `subject` what it happened to; `actor` who did it)."""

    def __init__(self, log: AuditLog) -> None:
        self.log = log

    def record(self, kind: str, event: str, subject: str, actor: str = "coordinator", /, **fields: Any) -> None:
        """Append one entry on its own."""
        values, view = audit_body(event, fields)
        self.log.append(kind, subject, actor, values, view)

    def note(self, kind: str, event: str, subject: str, actor: str = "coordinator", /, **fields: Any) -> AuditHook:
        """An entry to write inside the store transaction of the change it records."""
        values, view = audit_body(event, fields)
        return lambda conn: self.log.append_in(conn, kind, subject, actor, values, view)

    def export_lines(self, since_seq: int = 0) -> list[str]:
        """The log as JSON lines (audit.export: header, entries, end marker), from the first entry
        after the last checkpoint before `since_seq`; check it with `audit.verify_export`."""
        out = io.StringIO()
        self.log.export(out, since_seq)
        return out.getvalue().splitlines()
