"""Blame travels from signer to coordinator in the trailing metadata of an ABORTED status."""

from __future__ import annotations

import hashlib

from signer.tss.encoding import as_bytes, as_int, as_list, as_str, decode, encode
from signer.tss.errors import Blame, DecodeError

from .sessions import Envelope

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


MAX_ENVELOPE_EVIDENCE = 256 * 1024
"""Largest payload kept whole in a blame; a longer one is kept as its SHA-256 (the record stays bounded)."""


def envelope_evidence(e: Envelope) -> bytes:
    """An envelope as blame evidence: every signed field and the signature, so anyone holding the
    sender's public key can check it (a payload over the limit is replaced by its hash)."""
    if len(e.payload) <= MAX_ENVELOPE_EVIDENCE:
        return encode("envelope/v1", e.session_id, e.protocol, e.round, e.sender, e.recipient, e.payload, e.signature)
    return encode(
        "envelope-digest/v1",
        e.session_id,
        e.protocol,
        e.round,
        e.sender,
        e.recipient,
        hashlib.sha256(e.payload).digest(),
        e.signature,
    )


def envelope_from_evidence(data: bytes) -> Envelope:
    """Decode full `envelope/v1` evidence (DecodeError for anything else)."""
    sid, protocol, rnd, sender, recipient, payload, sig = decode("envelope/v1", data, 7)
    fields = (as_str(protocol), as_str(rnd), as_int(sender), as_int(recipient), as_bytes(payload))
    return Envelope(as_bytes(sid), *fields, as_bytes(sig))
