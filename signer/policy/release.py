"""The release of one partial signature: what the coordinator sends a signer besides the key, the
presignature and the transaction, so that the signer rebuilds the intent and authorizes it itself.

One object from the coordinator's lifecycle, through `SignerClient.partial_sign` and the
PartialSign call (signer/node/wire.py), to `NodeGovernance.authorize`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Release:
    """What a signer needs, besides the key id and the transaction, to authorize a partial signature:
    it rebuilds the intent from the transaction and these fields, verifies every approval against its
    own officer registry and evaluates its own policy copy, freeze state and ledger."""

    request_id: str
    approvals: tuple[bytes, ...]
    initiator: str
    expires_at: int
    path: tuple[int, ...]
    policy_hash: bytes
    kind: str
