"""Reliable broadcast by echo: each party commits to what every sender broadcast to it.

A party's echo is the list of (sender, SHA-256 of that sender's broadcast) for the previous
round, bound to the session and round. Comparing echoes exposes a sender who showed different
broadcasts to different parties. The comparison blames that sender; in the service every
broadcast is also signed by its sender, so the two signed versions are the evidence.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from .encoding import Decoded, Value, as_bytes, as_int, as_list, encode, encode_value
from .errors import DecodeError
from .rounds import BlameCollector

Echo = tuple[tuple[int, bytes], ...]


def digest(session_id: bytes, round_name: str, sender: int, payload: bytes) -> bytes:
    """The hash a party echoes for one sender's broadcast."""
    return hashlib.sha256(encode("echo", session_id, round_name, sender, payload)).digest()


def make_echo(session_id: bytes, round_name: str, broadcasts: Mapping[int, bytes]) -> Echo:
    """The echo over every broadcast of a round (including one's own)."""
    return tuple((j, digest(session_id, round_name, j, broadcasts[j])) for j in sorted(broadcasts))


def echo_value(echo: Echo) -> Value:
    """Encodable form."""
    return [[j, h] for j, h in echo]


def echo_from_value(v: Decoded) -> Echo:
    """Decode an echo list."""
    out = []
    for item in as_list(v):
        pair = as_list(item)
        if len(pair) != 2:
            raise DecodeError("echo entries are pairs")
        h = as_bytes(pair[1])
        if len(h) != 32:
            raise DecodeError("echo hash must be 32 bytes")
        out.append((as_int(pair[0]), h))
    return tuple(out)


def check_echoes(collector: BlameCollector, me: int, mine: Echo, theirs: Mapping[int, Echo]) -> None:
    """Blame every sender whose broadcast some party saw differently (and malformed echoes).

    A differing hash for our own broadcast cannot be our fault, so it blames the reporter.
    """
    my_map = dict(mine)
    # accused party -> (whose broadcast, the reporters whose echo differs): the blame's evidence
    # tells the coordinator what to check against the signed envelopes (echo_evidence.settle).
    accused: dict[int, tuple[int, set[int]]] = {}
    for reporter, echo in sorted(theirs.items()):
        their_map = dict(echo)
        if set(their_map) != set(my_map) or len(their_map) != len(echo):
            collector.add(reporter, "echo_malformed", encode_value(echo_value(echo)))
            continue
        for sender, h in sorted(their_map.items()):
            if h == my_map[sender]:
                continue
            party = reporter if sender == me else sender
            accused.setdefault(party, (sender, set()))[1].add(reporter)
    for party, (sender, reporters) in sorted(accused.items()):
        if not collector.has(party):
            listed: list[Value] = [*sorted(reporters)]
            collector.add(party, "equivocation", encode("echo-mismatch/v1", sender, listed))
