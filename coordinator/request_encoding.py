"""A signing request's forms: as submitted (`NewRequest`), as signed (`Body`), as stored (JSON).

The store keeps the transaction as JSON (256-bit amounts as decimal strings); an idempotency key
is bound to the hash of everything that identifies the request's body. The intent bytes, the
intent digest, the policy hash, the transaction's signing digest and the derived key's address are
computed once per request on the submit path and travel in these objects (and the request's
record) from there to the signers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from signer.chains.ethereum import Eip1559Tx, EvmTx, LegacyTx, parse_address, tx_type
from signer.policy import WITHDRAWAL, Intent
from signer.tss import hd
from signer.tss.encoding import Value, encode

from .errors import InvalidRequest
from .store import RequestRecord


@dataclass(frozen=True, slots=True)
class NewRequest:
    """A request as submitted, with every derived value computed once (`intent` None: the body does
    not decode to an intent, `undecodable` says why; it is recorded, then blocked)."""

    request_id: str
    key_id: str
    idempotency_key: str
    body_hash: str
    path: tuple[int, ...]
    from_address: str  # the derived key's address (the transaction's sender), derived once here
    kind: str
    initiator: str
    expires_at: int
    policy_hash: bytes
    tx: EvmTx | None  # None: a Bitcoin spend (btc_request.py), its PSBT in `tx_json`
    tx_json: dict[str, Any]
    intent: Intent | None
    intent_bytes: bytes
    intent_digest: bytes
    undecodable: str = ""
    nonce_allocated: bool = False  # the coordinator allocated `tx.nonce`
    replaces: str = ""  # a replacement: the request whose nonce it reuses

    def columns(self) -> dict[str, Any]:
        """`Store.create_request`'s arguments."""
        return {
            "request_id": self.request_id,
            "key_id": self.key_id,
            "idempotency_key": self.idempotency_key,
            "body_hash": self.body_hash,
            "tx": self.tx_json,
            "path": self.path,
            "from_address": self.from_address,
            "kind": self.kind,
            "initiator": self.initiator,
            "intent": self.intent_bytes,
            "intent_digest": self.intent_digest,
            "policy_hash": self.policy_hash,
            "expires_at": self.expires_at,
            "nonce_allocated": self.nonce_allocated,
            "replaces": self.replaces,
        }

    def audited(self) -> dict[str, Any]:
        """What the submission's audit entry records (a nonce flag and replaced id only when set,
        so other entries read as they did)."""
        out: dict[str, Any] = {
            "key_id": self.key_id,
            "kind": self.kind,
            "initiator": self.initiator,
            "idempotency_key": self.idempotency_key,
            "path": self.path,
            "tx": self.tx_json,
            "intent": self.intent_bytes,
            "intent_digest": self.intent_digest,
            "policy_hash": self.policy_hash,
            "expires_at": self.expires_at,
        }
        if self.nonce_allocated:
            out["nonce_allocated"] = True
        if self.replaces:
            out["replaces"] = self.replaces
        return out

    def body(self) -> Body | None:
        """What signing needs, reusing the digests the intent already holds."""
        if self.intent is None or self.tx is None:
            return None
        return Body(self.tx, self.intent, self.intent.tx_digest)


@dataclass(frozen=True, slots=True)
class NonceClaim:
    """The nonce a new request takes for (chain id, from-address): `nonce` None allocates the next
    one; `replaces` names the live request whose nonce a replacement reuses; `tx` the body as
    stored, which may share a nonce with a live request carrying the very same body (store/nonces.py)."""

    chain_id: int
    address: str
    nonce: int | None
    replaces: str = ""
    tx: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Body:
    """The transaction to sign and the intent it was approved under; `digest` is its signing digest."""

    tx: EvmTx
    intent: Intent
    digest: bytes

    @classmethod
    def of_row(cls, row: RequestRecord, intent: Intent | None = None) -> Body:
        """From a stored request (the scheduler's path): decoded, and the digest taken, once."""
        tx = tx_from_json(row.tx)
        return cls(tx, intent if intent is not None else Intent.from_bytes(row.intent), tx.signing_digest())


def tx_to_json(tx: EvmTx) -> dict[str, Any]:
    """JSON form (256-bit amounts as decimal strings, data as hex); a legacy transaction has
    `"type": 0` and `gas_price` instead of the EIP-1559 fee fields (rows stored before legacy
    support have no `type` and are EIP-1559)."""
    if isinstance(tx, LegacyTx):
        return {
            "type": 0,
            "chain_id": tx.chain_id,
            "nonce": tx.nonce,
            "gas_price": str(tx.gas_price),
            "gas_limit": tx.gas_limit,
            "to": tx.to,
            "value": str(tx.value),
            "data": tx.data.hex(),
        }
    return {
        "chain_id": tx.chain_id,
        "nonce": tx.nonce,
        "max_priority_fee_per_gas": str(tx.max_priority_fee_per_gas),
        "max_fee_per_gas": str(tx.max_fee_per_gas),
        "gas_limit": tx.gas_limit,
        "to": tx.to,
        "value": str(tx.value),
        "data": tx.data.hex(),
    }


def tx_from_json(d: Mapping[str, Any]) -> EvmTx:
    """Inverse of `tx_to_json`."""
    if d.get("type", 2) == 0:
        return LegacyTx(
            chain_id=int(d["chain_id"]),
            nonce=int(d["nonce"]),
            gas_price=int(d["gas_price"]),
            gas_limit=int(d["gas_limit"]),
            to=str(d["to"]),
            value=int(d["value"]),
            data=bytes.fromhex(d["data"]),
        )
    return Eip1559Tx(
        chain_id=int(d["chain_id"]),
        nonce=int(d["nonce"]),
        max_priority_fee_per_gas=int(d["max_priority_fee_per_gas"]),
        max_fee_per_gas=int(d["max_fee_per_gas"]),
        gas_limit=int(d["gas_limit"]),
        to=str(d["to"]),
        value=int(d["value"]),
        data=bytes.fromhex(d["data"]),
    )


def body_hash(
    key_id: str,
    path: Sequence[int],
    tx: EvmTx,
    kind: str = WITHDRAWAL,
    initiator: str = "",
    *,
    allocate_nonce: bool = False,
    replaces: str = "",
) -> str:
    """What an idempotency key is bound to: key, path, kind, initiator and every transaction field
    (address bytes, not spelling). A legacy transaction adds its type, so it never shares a body
    hash with the EIP-1559 transaction of the same fields; EIP-1559 hashes are what they were. An
    allocated nonce (the body's is 0) and a replaced request id are appended when set, likewise."""
    legacy: list[Value] = [tx_type(tx)] if isinstance(tx, LegacyTx) else []
    if allocate_nonce or replaces:
        legacy += [int(allocate_nonce), replaces]
    body = encode(
        "sign_eth/body/v2",
        key_id,
        list(path),
        kind,
        initiator,
        tx.chain_id,
        tx.nonce,
        tx.max_priority_fee_per_gas,
        tx.max_fee_per_gas,
        tx.gas_limit,
        parse_address(tx.to),
        tx.value,
        tx.data,
        *legacy,
    )
    return hashlib.sha256(body).hexdigest()


def check_path(path: Sequence[int]) -> tuple[int, ...]:
    """A derivation path as a tuple; InvalidRequest unless non-hardened and at most 255 deep."""
    out = tuple(path)
    if len(out) > 255 or any(not isinstance(i, int) or not 0 <= i < hd.HARDENED for i in out):
        raise InvalidRequest("path indices must be non-hardened (0 <= index < 2^31), at most 255 of them")
    return out
