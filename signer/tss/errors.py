"""The four kinds of failure the protocol library reports.

`InvalidInput` is caller misuse; `InvalidProof` is a proof that does not verify; `ProtocolAbort`
names every peer at fault with the evidence; `InternalError` is our own bug and never blames a peer.
"""

from __future__ import annotations

from dataclasses import dataclass


class TssError(Exception):
    """Base class of every error the protocol library raises."""


class InvalidInput(TssError):
    """The caller passed something out of contract (wrong size, range, party set, reuse)."""


class InternalError(TssError):
    """A bug on our side: an invariant we ourselves should have kept does not hold."""


class InvalidProof(TssError):
    """A zero-knowledge proof (or a value it covers) failed the named check."""

    def __init__(self, proof: str, check: str) -> None:
        super().__init__(f"{proof}: check {check!r} failed")
        self.proof = proof
        self.check = check

    def __reduce__(self) -> tuple[type[InvalidProof], tuple[str, str]]:
        return type(self), (self.proof, self.check)  # pickles (a worker process raises it)


class DecodeError(TssError):
    """Bytes that do not decode to a well-formed, in-range value."""


UNREACHABLE_CHECKS = frozenset({"missing_broadcast", "missing_direct", "dropped_message"})
"""Checks that record an absent message. A receiver cannot tell "never sent" from "not delivered"
(the relay may withhold it), so these name a party as unreachable or withheld, never as a cheater."""

UNPROVEN_EQUIVOCATION = "equivocation_unproven"
"""An echo mismatch the coordinator could not settle from signed envelopes: an accusation, not proof."""


@dataclass(frozen=True, slots=True)
class Blame:
    """One faulty party: who, in which round, which check failed, and the offending message bytes."""

    party: int
    round: str
    check: str
    evidence: bytes = b""

    @property
    def proven(self) -> bool:
        """False for a missing message (unreachable or withheld) and for an accusation the signed
        evidence did not settle; True for a check a message failed."""
        return self.check not in UNREACHABLE_CHECKS and self.check != UNPROVEN_EQUIVOCATION

    def __str__(self) -> str:
        return f"party {self.party} in {self.round}: {self.check}"


class ProtocolAbort(TssError):
    """The protocol cannot finish; `culprits` lists every party proven at fault."""

    def __init__(self, blames: list[Blame] | tuple[Blame, ...]) -> None:
        if not blames:
            raise InternalError("ProtocolAbort needs at least one blame")
        self.blames: tuple[Blame, ...] = tuple(blames)
        super().__init__("; ".join(str(b) for b in self.blames))

    def __reduce__(self) -> tuple[type[ProtocolAbort], tuple[tuple[Blame, ...]]]:
        return type(self), (self.blames,)  # pickles (a worker process raises it)

    @property
    def culprits(self) -> set[int]:
        """Parties proven at fault by a message they sent (never a party whose message is missing)."""
        return {b.party for b in self.blames if b.proven}

    @property
    def unreachable(self) -> set[int]:
        """Parties whose message is missing: unreachable or withheld by the relay, not proof of cheating."""
        return {b.party for b in self.blames if not b.proven}
