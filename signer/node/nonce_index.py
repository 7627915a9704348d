"""The signer's own index of the nonces it released: (chain, address, nonce) -> transaction digest.

A compromised coordinator must not get two different transactions with one nonce from one address
signed (it could hold both and broadcast the one it likes). Each signer therefore keeps, for every
release it made, the (chain, key id, path, nonce) of the transaction (key and path name the
sending address: one key and path, one address) with the request id and digest released, and
refuses another digest for the same entry (`nonce_reused`) unless the request is a `replacement`
(speed-up or cancel), which the policy signs only under a rule that names the kind and requires
officer approvals (policy/kinds.py, engine.py). A repeat of the very same transaction is not a
second transaction (its request id is pinned, release_ledger.py) and passes.

The index lives in the release journal: a release entry already carries the intent, so replaying
it adds the entry (O(1) per release, one dict insertion, nothing rewritten); a checkpoint carries
the entries not yet pruned. Entries are kept as long as the ledger's spends (the policy's longest
window, at least 90 days): a nonce older than that was long since mined or replaced on chain,
where a second transaction with it can no longer be included.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

from signer.policy import PolicyError
from signer.tss.encoding import Decoded, Value, as_bytes, as_int, as_list, as_str
from signer.tss.errors import DecodeError

NONCE_REUSED = "nonce_reused"
"""Refusal reason: this signer already released another transaction with this nonce of the address."""

Slot = tuple[str, str, tuple[int, ...], int]
"""(chain, key id, path, nonce): one nonce of one address."""


@dataclass(frozen=True, slots=True)
class NonceUse:
    """The release that used a nonce: its request id, transaction digest and time."""

    request_id: str
    tx_digest: bytes
    at: int


class NonceIndex:
    """Nonce slot -> the latest release using it, pruned by age. Not thread-safe (the node's lock)."""

    def __init__(self) -> None:
        self._uses: dict[Slot, NonceUse] = {}
        self._by_age: list[tuple[int, Slot]] = []

    def __len__(self) -> int:
        return len(self._uses)

    def get(self, slot: Slot) -> NonceUse | None:
        """The release that used `slot`, if one is indexed."""
        return self._uses.get(slot)

    def check(self, slot: Slot, tx_digest: bytes, *, replacement: bool) -> None:
        """Raises `PolicyError(NONCE_REUSED)` if another transaction was released with this nonce
        and this release is not a replacement."""
        use = self._uses.get(slot)
        if use is not None and use.tx_digest != tx_digest and not replacement:
            raise PolicyError(
                NONCE_REUSED,
                f"nonce {slot[3]} of key {slot[1]} path {list(slot[2])} on {slot[0]} was released for "
                f"request {use.request_id} with another transaction",
            )

    def add(self, slot: Slot, use: NonceUse) -> None:
        """Index a release (a replacement's takes the slot over)."""
        self._uses[slot] = use
        heapq.heappush(self._by_age, (use.at, slot))

    def prune(self, now: int, keep: int) -> None:
        """Drop the entries released `keep` seconds or more before `now`."""
        while self._by_age and self._by_age[0][0] <= now - keep:
            at, slot = heapq.heappop(self._by_age)
            use = self._uses.get(slot)
            if use is not None and use.at == at:
                del self._uses[slot]

    def to_values(self) -> list[Value]:
        """The entries for a checkpoint, in a fixed order."""
        return [
            [chain, key_id, list(path), nonce, u.request_id, u.tx_digest, u.at]
            for (chain, key_id, path, nonce), u in sorted(self._uses.items())
        ]

    @classmethod
    def from_values(cls, items: Decoded) -> NonceIndex:
        """Inverse of `to_values`; raises `DecodeError`."""
        out = cls()
        for item in as_list(items):
            v = as_list(item)
            if len(v) != 7:
                raise DecodeError("nonce entry: expected seven fields")
            slot = (as_str(v[0]), as_str(v[1]), tuple(as_int(i) for i in as_list(v[2])), as_int(v[3]))
            out.add(slot, NonceUse(as_str(v[4]), as_bytes(v[5]), as_int(v[6])))
        return out
