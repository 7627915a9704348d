"""The node's side of a reshare session (docs/protocol.md, Reshare: node-level driving).

StartSession("reshare") names the session's parties S ∪ P', the dealers S (live old parties),
the new committee P', its threshold t' and the old committee's public data. A dealer deals from
its active share; every node holding a share checks that the committee it was handed is its own
share's (`InvalidInput` otherwise: the coordinator's copy is stale or forged). A joining party
holds no share and takes the committee as given: round 1 compares every party's context digest,
so a joining party handed a different committee aborts the session before any share is dealt. An
old party in P' that does not deal takes part like a joining one; its old share is replaced on
commit. A party a reshare retired from the key never takes part in one again.

On completion nothing active changes: the output is staged as the key's pending epoch
(key_epochs.py) with the new share, or none for an old party outside P' (retired), to be
confirmed by every party of S ∪ P'; this node's signed confirmation of the output digest goes
back with the last step. CommitEpoch adopts it (the old share and the old aux info are deleted,
old-epoch presignatures dropped); aux info for the new committee then runs as an ordinary `aux`
session before the key can presign.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from signer.tss.committee import Committee, ReshareOutput
from signer.tss.errors import DecodeError, InvalidInput
from signer.tss.key_share import KeyShare
from signer.tss.reshare import start_reshare
from signer.tss.rng import Rng
from signer.tss.rounds import Continue

from .key_epochs import KeyEpochs
from .store import EncryptedStore


@dataclass(frozen=True, slots=True)
class ReshareStart:
    """StartSession's reshare parameters: S, P', t' and the old committee's encoding."""

    dealers: tuple[int, ...]
    new_parties: tuple[int, ...]
    new_threshold: int
    committee: bytes

    @property
    def session_parties(self) -> tuple[int, ...]:
        """S ∪ P', the parties of the session."""
        return tuple(sorted(set(self.dealers) | set(self.new_parties)))


def _old_committee(store: EncryptedStore, epochs: KeyEpochs, key_id: str, party: int, p: ReshareStart) -> Committee:
    try:
        given = Committee.from_bytes(p.committee)
    except DecodeError as exc:
        raise InvalidInput(f"reshare: the old committee does not decode: {exc}") from None
    if epochs.retired_at(key_id) is not None:
        raise InvalidInput(f"party {party} was retired from key {key_id!r}; it cannot take part again")
    if party in p.dealers:
        own = Committee.of(KeyShare.from_bytes(store.get(f"keys/{key_id}/share")))
        if own != given:
            raise InvalidInput("reshare: the old committee given is not this node's (stale or forged)")
    return given


def start(
    epochs: KeyEpochs,
    session_id: bytes,
    key_id: str,
    party: int,
    params: ReshareStart,
    rng: Rng,
) -> tuple[Continue, Callable[[ReshareOutput], bytes]]:
    """The first step of this node's reshare and the handler that stages its output."""
    store = epochs.store
    if party in params.dealers and not store.exists(f"keys/{key_id}/share"):
        raise InvalidInput(f"party {party} is named a dealer but holds no share of key {key_id!r}")
    old = _old_committee(store, epochs, key_id, party, params)
    share = KeyShare.from_bytes(store.get(f"keys/{key_id}/share")) if party in params.dealers else None
    first = start_reshare(
        session_id,
        party,
        old=old,
        dealers=params.dealers,
        new_parties=params.new_parties,
        new_threshold=params.new_threshold,
        share=share,
        rng=rng,
    )

    def on_done(out: ReshareOutput) -> bytes:
        public = out.public
        new_share = b"" if out.share is None else out.share.to_bytes()
        epochs.stage_reshare(
            session_id, key_id, public.committee.epoch, public.digest(), new_share, params.session_parties
        )
        return public.to_bytes()

    return first, on_done
