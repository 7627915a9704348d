"""Column codecs shared by the tables: index lists and blames as canonical JSON text."""

from __future__ import annotations

import json
from collections.abc import Sequence

from signer.tss.errors import Blame


def ints_json(values: Sequence[int]) -> str:
    """Canonical JSON of an index list (so equal lists compare equal in SQL)."""
    return json.dumps([int(v) for v in values], separators=(",", ":"))


def ints_from_json(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in json.loads(text))


def blames_json(blames: Sequence[Blame]) -> str:
    """Blames as JSON (evidence hex-encoded)."""
    return json.dumps(
        [{"party": b.party, "round": b.round, "check": b.check, "evidence": b.evidence.hex()} for b in blames],
        separators=(",", ":"),
    )


def blames_from_json(text: str) -> tuple[Blame, ...]:
    return tuple(
        Blame(int(d["party"]), str(d["round"]), str(d["check"]), bytes.fromhex(d["evidence"])) for d in json.loads(text)
    )
