"""A Bitcoin spend as a signing request: its stored form, its body for signing, its result.

The request's `tx` column holds the transaction body as JSON; for a spend it is the unsigned
PSBT (`{"type": "psbt", "psbt": hex}`), and the `intent` column the spend intent
(`policy/btc_spend_intent/v1`, told from a transaction's intent by its tag). There is no request
path: every input carries its own. Once signed, `raw_tx` holds the network transaction and
`tx_hash` its txid (display byte order); the finalized PSBT is rebuilt from the two
(`bitcoin.finalized_from_tx`), so no column holds a second copy of the signatures.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from signer.chains import bitcoin
from signer.policy import Intent
from signer.policy.btc_intent import SpendIntent, is_spend_intent
from signer.policy.message_intent import MessageIntent, is_message_intent
from signer.tss.encoding import encode

from .message_request import MessageJob, job_of_row
from .request_encoding import Body
from .store import RequestRecord

PSBT_TYPE = "psbt"
AnyIntent = Intent | SpendIntent | MessageIntent
"""The intent of a request of any kind: a transaction's, a Bitcoin spend's or a message's."""


@dataclass(frozen=True, slots=True)
class SpendBody:
    """The PSBT to sign and the spend intent it was approved under; `digest` is what the request
    id is pinned to on every signer (over all the inputs' digests)."""

    psbt: bytes
    intent: SpendIntent

    @property
    def digest(self) -> bytes:
        return self.intent.spend_digest


def psbt_json(psbt: bytes) -> dict[str, Any]:
    """The `tx` column's form of a spend."""
    return {"type": PSBT_TYPE, "psbt": psbt.hex()}


def psbt_of(tx: Mapping[str, Any]) -> bytes | None:
    """The PSBT of a stored request body, None for a transaction."""
    return bytes.fromhex(str(tx["psbt"])) if tx.get("type") == PSBT_TYPE else None


def spend_body_hash(key_id: str, psbt: bytes, kind: str, initiator: str) -> str:
    """What an idempotency key is bound to for a spend: key, kind, initiator and the PSBT's bytes."""
    return hashlib.sha256(encode("sign_btc/body/v1", key_id, kind, initiator, psbt)).hexdigest()


def intent_of_row(row: RequestRecord) -> AnyIntent:
    """The stored intent of a request, of any kind; raises `PolicyError("intent_malformed")`."""
    if is_spend_intent(row.intent):
        return SpendIntent.from_bytes(row.intent)
    if is_message_intent(row.intent):
        return MessageIntent.from_bytes(row.intent)
    return Intent.from_bytes(row.intent)


def body_of_row(row: RequestRecord, intent: AnyIntent | None = None) -> Body | SpendBody | MessageJob:
    """What signing a stored request needs (the scheduler's path), of any kind."""
    message = job_of_row(row, intent if isinstance(intent, MessageIntent) else None)
    if message is not None:
        return message
    psbt = psbt_of(row.tx)
    if psbt is None:
        return Body.of_row(row, intent if isinstance(intent, Intent) else None)
    return SpendBody(psbt, intent if isinstance(intent, SpendIntent) else SpendIntent.from_bytes(row.intent))


@dataclass(frozen=True, slots=True)
class SpendResult:
    """A spend request as shown: the PSBT submitted and, once signed, the finalized PSBT, the network
    transaction and its txid."""

    psbt: bytes
    signed_psbt: bytes = b""
    btc_tx: bytes = b""
    txid: str = ""


def spend_result(row: RequestRecord) -> SpendResult | None:
    """The Bitcoin fields of a request's view (None for a transaction request)."""
    psbt = psbt_of(row.tx)
    if psbt is None:
        return None
    if not row.raw_tx:
        return SpendResult(psbt)
    try:
        signed = bitcoin.finalized_from_tx(psbt, row.raw_tx)
    except bitcoin.BitcoinError:
        signed = b""  # never for a row this coordinator signed: shown without it rather than not at all
    return SpendResult(psbt, signed, row.raw_tx, row.tx_hash.hex())
