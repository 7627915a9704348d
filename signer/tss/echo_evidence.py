"""Settling an echo mismatch from signed messages, not from one party's word.

A mismatch "reporter k echoed a hash for sender j's round-r broadcast that differs from mine" is
an accusation: either j showed two versions (equivocation) or k lied in its echo. Every broadcast
is signed, so the two cases leave different evidence: two distinct payloads of round r signed by
j, or k's signed echo claiming a hash that matches no payload j signed. This module is the pure
part: where each round carries its echo, and the verdict from the payloads (the caller checks the
signatures). No I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .echo import Echo, digest, echo_from_value
from .encoding import Value, as_int, as_list, decode, encode
from .errors import DecodeError

CARRIERS: dict[str, tuple[str, str, int, int]] = {
    # carrying round: (echoed round, payload label, field count, index of the echo field)
    "keygen/r2": ("keygen/r1", "keygen/r2/bcast", 2, 1),
    "keygen/r3": ("keygen/r2", "keygen/r3/bcast", 2, 0),
    "keygen/r4": ("keygen/r3", "keygen/r4/bcast", 1, 0),
    "aux/r2": ("aux/r1", "aux/r2/bcast", 2, 1),
    "aux/r3": ("aux/r2", "aux/r3/bcast", 3, 0),
    "presign/r2": ("presign/r1", "presign/r2/bcast", 4, 2),
    "presign/r3": ("presign/r2", "presign/r3/bcast", 5, 4),
    "presign/r4": ("presign/r3", "presign/r4/bcast", 1, 0),
}
"""Every round whose broadcast carries an echo (tests/unit/test_echo_evidence.py checks each
against real messages)."""


def echoed_round(carrying_round: str) -> str:
    """The round whose broadcasts `carrying_round` echoes (DecodeError if it carries none)."""
    if carrying_round not in CARRIERS:
        raise DecodeError(f"round {carrying_round!r} carries no echo")
    return CARRIERS[carrying_round][0]


def carried_echo(carrying_round: str, payload: bytes) -> Echo:
    """The echo inside a broadcast payload of `carrying_round` (DecodeError if malformed)."""
    if carrying_round not in CARRIERS:
        raise DecodeError(f"round {carrying_round!r} carries no echo")
    _, label, n, index = CARRIERS[carrying_round]
    return echo_from_value(decode(label, payload, n)[index])


def mismatch_evidence(sender: int, reporters: Sequence[int]) -> bytes:
    """What an `equivocation` blame carries: whose broadcast, and who echoed it differently."""
    listed: list[Value] = [*sorted(reporters)]
    return encode("echo-mismatch/v1", sender, listed)


def mismatch_from_evidence(data: bytes) -> tuple[int, tuple[int, ...]]:
    """Decode `mismatch_evidence` (DecodeError otherwise)."""
    sender, reporters = decode("echo-mismatch/v1", data, 2)
    return as_int(sender), tuple(as_int(r) for r in as_list(reporters))


@dataclass(frozen=True, slots=True)
class Verdict:
    """`equivocated`: the sender signed two payloads (their indices); `liars`: reporters whose
    signed echo claims a hash of no payload the sender signed (reporter -> index of that echo)."""

    equivocated: tuple[int, int] | None
    liars: Mapping[int, int]


def settle(
    session_id: bytes,
    carrying_round: str,
    sender: int,
    sender_payloads: Sequence[bytes],
    reporter_payloads: Mapping[int, Sequence[bytes]],
) -> Verdict:
    """Decide from validly signed payloads: the sender's broadcasts of the echoed round, and each
    reporter's broadcasts of the carrying round (the ones holding its echo)."""
    rnd = echoed_round(carrying_round)
    distinct = list(dict.fromkeys(sender_payloads))
    if len(distinct) >= 2:
        return Verdict((sender_payloads.index(distinct[0]), sender_payloads.index(distinct[1])), {})
    honest = {digest(session_id, rnd, sender, p) for p in distinct}
    liars: dict[int, int] = {}
    for k, payloads in sorted(reporter_payloads.items()):
        for idx, p in enumerate(payloads):
            try:
                claimed = dict(carried_echo(carrying_round, p)).get(sender)
            except DecodeError:
                continue
            if claimed is not None and honest and claimed not in honest:
                liars[k] = idx
                break
    return Verdict(None, liars)
