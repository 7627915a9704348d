"""Size limits of every RPC message and field, checked at the servicer edge before anything is
stored, audited or handed to the domain code (docs/operations.md has the table).

A gRPC message above the channel limit never reaches a servicer (RESOURCE_EXHAUSTED from gRPC
itself); a field above its own limit is refused with `FieldTooLarge`, which the servers turn into
INVALID_ARGUMENT `<field>: <size> <unit> exceeds the limit of <limit>`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sized

KIB = 1 << 10
MIB = 1 << 20

# Whole messages (grpc.max_receive_message_length / max_send_message_length).
COORDINATOR_MAX_RECEIVE = 1 * MIB
"""Largest request the public coordinator API accepts (its largest field is 128 KiB)."""
COORDINATOR_MAX_SEND = 8 * MIB
"""Largest reply the coordinator sends; list pages stop well below it (LIST_PAGE_BYTES)."""
SIGNER_MAX_MESSAGE = 16 * MIB
"""Signer <-> coordinator, both ways: one round's envelopes of up to MAX_PARTIES parties."""
CLIENT_MAX_SEND = COORDINATOR_MAX_RECEIVE
CLIENT_MAX_RECEIVE = COORDINATOR_MAX_SEND

# Fields.
MAX_ID = 128
"""key ids, request ids, names, officer ids, initiators, idempotency keys (characters)."""
MAX_WORD = 32
"""kind, state, level, protocol, round names (characters)."""
MAX_PATH = 16
"""BIP32 path components."""
MAX_TX_DATA = 32 * KIB
"""EthTransaction.data (bytes): calldata of a withdrawal or token transfer, not a contract deploy."""
MAX_TX_NUMBER = 80
"""Decimal strings of 256-bit amounts (value, fees: at most 78 digits)."""
MAX_ADDRESS = 64
MAX_APPROVAL = 2 * KIB
MAX_APPROVALS = 32
MAX_SIGNATURE = 128
MAX_REASON = 512
MAX_ORDER = 16 * KIB
"""A freeze or unfreeze order with its officer signatures."""
MAX_CHANGE_JSON = 128 * KIB
"""An admin-signed policy or registry change."""
MAX_MESSAGE = 64 * KIB
"""A message's body: EIP-191 bytes or EIP-712 JSON (signer/policy/message_intent.py's MAX_BODY)."""
MAX_PSBT = 512 * KIB
"""An unsigned PSBT (BIP174) with every input's previous transaction: a batched payout, not a sweep
of thousands of coins (signer/chains/bitcoin.py bounds inputs and outputs too)."""
"""An admin-signed policy or registry change."""
MAX_PARTIES = 64
MAX_SESSION_ID = 64
MAX_ENVELOPES = 2 * MAX_PARTIES
MAX_ENVELOPE_PAYLOAD = 4 * MIB
MAX_HASH = 64
MAX_ATTESTATION = 16 * KIB
"""A signed state attestation: counters plus what the node saw of up to MAX_PARTIES peers."""
MAX_SEQ = (1 << 63) - 1
"""Sequence numbers (ExportAudit.since_seq): what SQLite's INTEGER holds."""
MAX_PAGE_TOKEN = 256
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 50
LIST_PAGE_BYTES = 2 * MIB
"""A list page stops before its encoded size passes this, whatever page_size asked for."""


class FieldTooLarge(Exception):
    """A field above its limit: `str(exc)` is the one-line message for the caller."""

    def __init__(self, field: str, size: int, limit: int, unit: str) -> None:
        super().__init__(f"{field}: {size} {unit} exceeds the limit of {limit}")
        self.field = field
        self.size = size
        self.limit = limit


def check_text(field: str, value: str, limit: int) -> None:
    """Raise `FieldTooLarge` if `value` has more than `limit` characters."""
    if len(value) > limit:
        raise FieldTooLarge(field, len(value), limit, "characters")


def check_bytes(field: str, value: bytes, limit: int) -> None:
    """Raise `FieldTooLarge` if `value` has more than `limit` bytes."""
    if len(value) > limit:
        raise FieldTooLarge(field, len(value), limit, "bytes")


def check_count(field: str, items: Sized, limit: int) -> None:
    """Raise `FieldTooLarge` if `items` has more than `limit` entries."""
    if len(items) > limit:
        raise FieldTooLarge(field, len(items), limit, "entries")


def digest_of(payload: bytes | str) -> dict[str, object]:
    """What an audit record keeps of a payload it must not store whole: SHA-256 and length."""
    data = payload.encode() if isinstance(payload, str) else payload
    return {"sha256": hashlib.sha256(data).hexdigest(), "length": len(data)}


def channel_options(max_send: int, max_receive: int) -> list[tuple[str, int]]:
    """gRPC channel or server options setting both message limits."""
    return [("grpc.max_send_message_length", max_send), ("grpc.max_receive_message_length", max_receive)]


def server_options(max_send: int, max_receive: int) -> list[tuple[str, int]]:
    """gRPC server options: both message limits, and no SO_REUSEPORT. gRPC Python sets SO_REUSEPORT
    by default, so a second server started on a busy port would bind too and silently take part of
    the traffic; without it the second bind fails (`signer.node.tls.bind_secure`)."""
    return [*channel_options(max_send, max_receive), ("grpc.so_reuseport", 0)]
