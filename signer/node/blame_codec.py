"""Blame travels from signer to coordinator in the trailing metadata of an ABORTED status."""

from __future__ import annotations

from signer.tss.encoding import as_bytes, as_int, as_list, as_str, decode, encode
from signer.tss.errors import Blame, DecodeError

from .sessions import MAX_ENVELOPE_EVIDENCE, envelope_evidence, envelope_from_evidence

__all__ = [
    "MAX_ENVELOPE_EVIDENCE",
    "METADATA_KEY",
    "decode_blames",
    "encode_blames",
    "envelope_evidence",
    "envelope_from_evidence",
]

METADATA_KEY = "tss-blame-bin"


def encode_blames(blames: tuple[Blame, ...] | list[Blame]) -> bytes:
    """Encode blames for the `tss-blame-bin` trailer."""
    return encode("blames/v1", [[b.party, b.round, b.check, b.evidence] for b in blames])


def decode_blames(data: bytes) -> list[Blame]:
    """Decode the `tss-blame-bin` trailer."""
    (items,) = decode("blames/v1", data, 1)
    out = []
    for item in as_list(items):
        f = as_list(item)
        if len(f) != 4:
            raise DecodeError("blame entries have 4 fields")
        out.append(Blame(as_int(f[0]), as_str(f[1]), as_str(f[2]), as_bytes(f[3])))
    return out
