"""The sans-IO round API every protocol follows.

A protocol starts with a function returning `Continue(outgoing, first_round)`. Each round waits
for one message (a broadcast, a direct message, or both) from every other party of the session,
then `receive(inbox)` returns `Continue(outgoing, next_round)` or `Done(outgoing, output)`, or
raises `ProtocolAbort` naming every culprit. No networking, no clock, randomness injected.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from .errors import Blame, DecodeError, InternalError, InvalidInput, ProtocolAbort

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message a party emits; `recipient` None means a broadcast to every other party."""

    round: str
    sender: int
    recipient: int | None
    payload: bytes


@dataclass(frozen=True, slots=True)
class Incoming:
    """What a round received from one sender."""

    broadcast: bytes | None = None
    direct: bytes | None = None


@dataclass(frozen=True, slots=True)
class Continue:
    """The round finished: send `outgoing`, then feed the replies to `next_round`."""

    outgoing: tuple[Outgoing, ...]
    next_round: Round


@dataclass(frozen=True, slots=True)
class Done(Generic[T]):
    """The protocol finished for this party: send `outgoing` (may be empty) and keep `output`."""

    outgoing: tuple[Outgoing, ...]
    output: T


Step = Continue | Done[Any]


class Round(abc.ABC):
    """A round waiting for messages. Subclasses are plain classes holding explicit state."""

    name: ClassVar[str]
    expects_broadcast: ClassVar[bool] = True
    expects_direct: ClassVar[bool] = False

    def __init__(self, party: int, parties: tuple[int, ...]) -> None:
        if party not in parties:
            raise InvalidInput("party is not in the session")
        self.party = party
        self.parties = parties

    @property
    def others(self) -> tuple[int, ...]:
        """Every other party of the session."""
        return tuple(p for p in self.parties if p != self.party)

    def receive(self, inbox: Mapping[int, Incoming]) -> Step:
        """Check that exactly the expected messages are present, then process them."""
        missing = [j for j in self.others if j not in inbox]
        extra = [j for j in inbox if j not in self.others]
        if extra:
            raise InvalidInput(f"messages from parties outside the session: {extra}")
        if missing:
            raise InvalidInput(f"inbox incomplete, missing {missing}")
        blames = []
        for j in self.others:
            m = inbox[j]
            if self.expects_broadcast and m.broadcast is None:
                blames.append(Blame(j, self.name, "missing_broadcast"))
            if self.expects_direct and m.direct is None:
                blames.append(Blame(j, self.name, "missing_direct"))
        if blames:
            raise ProtocolAbort(blames)
        return self._receive(inbox)

    @abc.abstractmethod
    def _receive(self, inbox: Mapping[int, Incoming]) -> Step:
        """Process a complete inbox."""


def broadcast(round_name: str, sender: int, payload: bytes) -> Outgoing:
    """A broadcast message."""
    return Outgoing(round_name, sender, None, payload)


def direct(round_name: str, sender: int, recipient: int, payload: bytes) -> Outgoing:
    """A point-to-point message."""
    if recipient == sender:
        raise InternalError("a party never messages itself")
    return Outgoing(round_name, sender, recipient, payload)


class BlameCollector:
    """Gathers every failure of a round so the abort names all culprits, not just the first."""

    def __init__(self, round_name: str) -> None:
        self.round_name = round_name
        self.blames: list[Blame] = []

    def add(self, party: int, check: str, evidence: bytes = b"") -> None:
        """Record one failure."""
        self.blames.append(Blame(party, self.round_name, check, evidence))

    def has(self, party: int) -> bool:
        """True once party has been blamed in this round."""
        return any(b.party == party for b in self.blames)

    def raise_if_any(self) -> None:
        """Abort if anything was recorded."""
        if self.blames:
            raise ProtocolAbort(self.blames)


def decode_or_blame(
    collector: BlameCollector, sender: int, payload: bytes, decoder: Any, *args: Any
) -> Any | None:
    """Run `decoder(payload, *args)`; a DecodeError blames the sender and yields None."""
    try:
        return decoder(payload, *args)
    except DecodeError:
        collector.add(sender, "decode", payload)
        return None
