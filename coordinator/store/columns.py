"""Column codecs shared by the tables: index lists and blames as canonical JSON text; page cursors."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

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


@dataclass(frozen=True, slots=True)
class PageCursor:
    """Where a page of a list (requests, keys) ended: the last row's (created_at, id); every list
    RPC pages by it, in the order its store query sorts on these two columns."""

    created_at: float
    row_id: str

    def token(self) -> str:
        """The opaque page token handed to clients (float repr round-trips exactly)."""
        return f"{self.created_at!r}/{self.row_id}"

    @classmethod
    def parse(cls, token: str) -> PageCursor:
        """Inverse of `token`; raises ValueError for anything else."""
        at, sep, row_id = token.partition("/")
        if not sep or not row_id:
            raise ValueError("malformed page token")
        created_at = float(at)
        if created_at != created_at or created_at in (float("inf"), float("-inf")):
            raise ValueError("malformed page token")
        return cls(created_at, row_id)
