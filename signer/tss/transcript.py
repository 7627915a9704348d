"""Fiat–Shamir transcripts in the manner of merlin: labelled, length-prefixed appends.

The caller binds the context (session id, prover index, rid, proof name); each proof appends its
full statement and first message and then draws challenges by rejection sampling into the exact
range it needs. Drawing a challenge also absorbs it, so later challenges depend on earlier ones.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from itertools import count
from typing import TYPE_CHECKING

from .curve import Q
from .encoding import Value, encode
from .errors import InvalidInput

if TYPE_CHECKING:
    from _hashlib import HASHXOF

_DOMAIN = "tss/transcript/v1"


class Transcript:
    """A SHAKE-256 sponge fed only with `encode`d, labelled values."""

    __slots__ = ("_h",)
    _h: HASHXOF

    def __init__(self, label: str, _h: HASHXOF | None = None) -> None:
        if _h is not None:
            self._h = _h
            return
        self._h = hashlib.shake_256()
        self._h.update(encode(_DOMAIN, label))

    @classmethod
    def for_proof(cls, session_id: bytes, prover: int, rid: bytes = b"") -> Transcript:
        """The context every proof in a protocol session starts from."""
        t = cls("proof")
        t.append("context", session_id, prover, rid)
        return t

    def fork(self, label: str) -> Transcript:
        """An independent copy with `label` appended; the original is unchanged."""
        t = Transcript("", _h=self._h.copy())
        t.append("fork", label)
        return t

    def append(self, label: str, *values: Value) -> None:
        """Absorb labelled values."""
        self._h.update(encode("append", label, list(values)))

    def _stream(self, label: str, nbytes: int) -> Iterator[bytes]:
        seed_h = self._h.copy()
        seed_h.update(encode("challenge", label))
        seed = seed_h.digest(64)
        for ctr in count():
            yield hashlib.shake_256(seed + ctr.to_bytes(8, "big")).digest(nbytes)

    def challenge_int(self, label: str, bound: int) -> int:
        """Uniform integer in [0, bound), by rejection sampling."""
        if bound <= 0:
            raise InvalidInput("bound must be positive")
        bits = max(1, (bound - 1).bit_length())
        nbytes = (bits + 7) // 8
        mask = (1 << bits) - 1
        for block in self._stream(label, nbytes):
            x = int.from_bytes(block, "big") & mask
            if x < bound:
                self.append(label, x)
                return x
        raise AssertionError("unreachable")

    def challenge_signed(self, label: str, bound: int) -> int:
        """Uniform integer in the closed interval [-bound, bound]."""
        return self.challenge_int(label, 2 * bound + 1) - bound

    def challenge_scalar(self, label: str) -> int:
        """Uniform scalar in [0, Q)."""
        return self.challenge_int(label, Q)

    def challenge_bits(self, label: str, m: int) -> list[int]:
        """m independent uniform bits."""
        x = self.challenge_int(label, 1 << m)
        return [(x >> i) & 1 for i in range(m)]
