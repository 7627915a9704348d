"""A message (request kind `message`) as a signing request: its stored form, its body for signing,
its result.

The request's `tx` column holds the body as JSON, `{"type": "message", "standard": "eip191" |
"eip712", "body": hex}`, and the `intent` column the message intent's stored form
(`MessageIntent.to_bytes`, told from the other intents by its tag), as a Bitcoin spend keeps its
PSBT (btc_request.py): no migration. Once signed, `r`, `s`, `v` hold the signature (v the
recovery id); the view shows it as the 65 bytes r || s || (27 + v) wallets and eth-account take.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from signer.node.message_release import MessageBody
from signer.policy.message_intent import MessageIntent
from signer.tss.encoding import encode

from .store import RequestRecord

MESSAGE_TYPE = "message"


@dataclass(frozen=True, slots=True)
class MessageJob:
    """The message to sign and the intent it was approved under; `digest` is what the key signs
    and what every signer pins the request id to."""

    standard: str
    body: bytes
    intent: MessageIntent

    @property
    def digest(self) -> bytes:
        return self.intent.message_digest

    def sign_body(self) -> MessageBody:
        """What PartialSign carries."""
        return MessageBody(self.standard, self.body)


def message_json(standard: str, body: bytes) -> dict[str, Any]:
    """The `tx` column's form of a message."""
    return {"type": MESSAGE_TYPE, "standard": standard, "body": body.hex()}


def message_of(tx: Mapping[str, Any]) -> tuple[str, bytes] | None:
    """The (standard, body) of a stored request body, None for a transaction or a spend."""
    if tx.get("type") != MESSAGE_TYPE:
        return None
    return str(tx["standard"]), bytes.fromhex(str(tx["body"]))


def message_body_hash(key_id: str, path: tuple[int, ...], standard: str, body: bytes, initiator: str) -> str:
    """What an idempotency key is bound to for a message: key, path, initiator, standard and body."""
    return hashlib.sha256(encode("sign_message/body/v1", key_id, list(path), initiator, standard, body)).hexdigest()


def job_of_row(row: RequestRecord, intent: MessageIntent | None) -> MessageJob | None:
    """What signing a stored message request needs (None: not a message)."""
    found = message_of(row.tx)
    if found is None:
        return None
    return MessageJob(found[0], found[1], intent if intent is not None else MessageIntent.from_bytes(row.intent))


@dataclass(frozen=True, slots=True)
class MessageResult:
    """A message request as shown: what was submitted, the digest the key signs and, once signed,
    the 65-byte signature."""

    standard: str
    body: bytes
    digest: bytes
    signature: bytes = b""


def message_result(row: RequestRecord) -> MessageResult | None:
    """The message fields of a request's view (None for any other request)."""
    found = message_of(row.tx)
    if found is None:
        return None
    digest = MessageIntent.from_bytes(row.intent).message_digest if row.intent else b""
    signature = row.r + row.s + bytes([27 + (row.v or 0)]) if row.r and row.s else b""
    return MessageResult(found[0], found[1], digest, signature)
