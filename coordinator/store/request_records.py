"""What a signing request is: its records and their row decoding (states: `coordinator/request_states.py`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from signer.policy import WITHDRAWAL
from signer.tss.errors import Blame

from ..request_states import FINAL_STATES
from .columns import blames_from_json, ints_from_json


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """A signing request: its body, its state and, once signed, its result."""

    request_id: str
    key_id: str
    idempotency_key: str
    body_hash: str
    state: str
    tx: dict[str, Any]
    path: tuple[int, ...]
    digest: bytes
    r: bytes
    s: bytes
    v: int | None
    raw_tx: bytes
    tx_hash: bytes
    from_address: str
    presignature_id: bytes | None  # the presignature of the latest signing attempt
    blame: tuple[Blame, ...]
    error: str
    error_code: str
    created_at: float
    updated_at: float
    kind: str = WITHDRAWAL
    initiator: str = ""
    intent: bytes = b""
    intent_digest: bytes = b""
    policy_hash: bytes = b""
    expires_at: int = 0
    time_lock_until: int = 0
    policy_reason: str = ""
    rule_id: str = ""
    approved_by: tuple[str, ...] = ()

    @property
    def final(self) -> bool:
        """True once the request can change no more."""
        return self.state in FINAL_STATES


@dataclass(frozen=True, slots=True)
class RequestEvent:
    """One recorded state transition."""

    request_id: str
    seq: int
    state: str
    detail: str
    at: float


def request_from_row(row: Any) -> RequestRecord:
    return RequestRecord(
        request_id=row["request_id"],
        key_id=row["key_id"],
        idempotency_key=row["idempotency_key"],
        body_hash=row["body_hash"],
        state=row["state"],
        tx=json.loads(row["tx"]),
        path=ints_from_json(row["path"]),
        digest=bytes(row["digest"] or b""),
        r=bytes(row["r"] or b""),
        s=bytes(row["s"] or b""),
        v=row["v"],
        raw_tx=bytes(row["raw_tx"] or b""),
        tx_hash=bytes(row["tx_hash"] or b""),
        from_address=row["from_address"],
        presignature_id=None if row["presig_id"] is None else bytes.fromhex(row["presig_id"]),
        blame=blames_from_json(row["blame"]),
        error=row["error"],
        error_code=row["error_code"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        kind=row["kind"],
        initiator=row["initiator"],
        intent=bytes(row["intent"] or b""),
        intent_digest=bytes(row["intent_digest"] or b""),
        policy_hash=bytes(row["policy_hash"] or b""),
        expires_at=row["expires_at"],
        time_lock_until=row["time_lock_until"],
        policy_reason=row["policy_reason"],
        rule_id=row["rule_id"],
        approved_by=tuple(sorted(row["approved_by"].split(","))) if row["approved_by"] else (),
    )


SELECT_REQUEST = (
    "SELECT r.*, (SELECT group_concat(a.officer_id, ',') FROM approvals a WHERE a.request_id = r.request_id) "
    "AS approved_by FROM requests r"
)


REQUEST_RESULT_FIELDS = frozenset(
    {
        "digest",
        "r",
        "s",
        "v",
        "raw_tx",
        "tx_hash",
        "from_address",
        "presignature_id",  # bytes; its column `presig_id` keeps hex text
        "blame",
        "error",
        "error_code",
        "time_lock_until",
        "policy_reason",
        "rule_id",
    }
)


@dataclass(frozen=True, slots=True)
class StoredApproval:
    """An officer's approval as recorded (the wire bytes the signers get, unchanged)."""

    request_id: str
    officer_id: str
    approval: bytes
    signed_at: int
    expires_at: int
    recorded_at: float
