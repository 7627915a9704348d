"""Settling echo mismatches with signed envelopes (issue 9.6): no party is convicted on another's word.

A signer that aborts on an echo mismatch reports `equivocation` against some party, with the
sender whose broadcast is in question and the reporters whose echo differs. The coordinator then
asks every signer (SessionEvidence) for the signed broadcasts it holds from that sender in the
echoed round, and from each reporter in the round carrying the echo, keeps only those whose
signature verifies against the signer's identity key, and decides (signer/tss/echo_evidence.py):

    two payloads signed by the sender   -> `equivocation` on the sender, proof: both envelopes
    a reporter's signed echo claims a   -> `echo_lie` on the reporter, proof: its signed echo and
    hash of no payload the sender signed   the sender's envelope; the sender is cleared
    neither                             -> `equivocation_unproven` (not proof: nobody convicted)

An `equivocation` a signer saw in its own inbox (two signed versions at once) carries both
envelopes already; the coordinator checks them and downgrades the blame if they do not verify.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor

from signer.node.identity import EnvelopeError, PeerKeys, verify
from signer.node.sessions import Envelope, envelope_evidence, envelope_from_evidence
from signer.tss.echo_evidence import echoed_round, mismatch_from_evidence, settle
from signer.tss.encoding import as_bytes, as_list, decode, encode
from signer.tss.errors import UNPROVEN_EQUIVOCATION, Blame, DecodeError

from .signer_client import SignerClient, SignerError

Fetch = Callable[[int, str], list[Envelope]]
"""(sender, round) -> every validly signed broadcast of that sender and round any signer holds."""


def signed_by(session_id: bytes, protocol: str, sender: int, round_name: str, sign_pub: bytes, e: Envelope) -> bool:
    """True if `e` is `sender`'s broadcast of this session and round with a valid signature."""
    if (e.session_id, e.protocol, e.round, e.sender, e.recipient) != (session_id, protocol, round_name, sender, 0):
        return False
    try:
        verify(PeerKeys(sender, sign_pub, b""), session_id, protocol, round_name, 0, e.payload, e.signature)
    except EnvelopeError:
        return False
    return True


def fetcher(
    clients: Mapping[int, SignerClient],
    session_id: bytes,
    protocol: str,
    peers: Mapping[int, bytes],
    executor: Executor,
) -> Fetch:
    """Ask every signer for what it holds; keep distinct, validly signed envelopes (cached)."""

    @functools.cache
    def fetch(sender: int, round_name: str) -> list[Envelope]:
        futures = [executor.submit(c.session_evidence, session_id, sender, round_name) for c in clients.values()]
        out: dict[bytes, Envelope] = {}
        for fut in futures:
            try:
                held = fut.result()
            except SignerError:
                continue  # a signer that cannot answer adds no evidence; the others may
            for e in held:
                if sender in peers and signed_by(session_id, protocol, sender, round_name, peers[sender], e):
                    out.setdefault(e.payload, e)
        return list(out.values())

    return fetch


def _proof(*envelopes: Envelope) -> bytes:
    return encode("equivocation-proof/v1", [envelope_evidence(e) for e in envelopes])


def _checked_inbox_proof(b: Blame, session_id: bytes, protocol: str, peers: Mapping[int, bytes]) -> Blame | None:
    """An in-inbox equivocation blame whose two envelopes verify, or None."""
    try:
        (items,) = decode("equivocation-proof/v1", b.evidence, 1)
        pair = [envelope_from_evidence(as_bytes(x)) for x in as_list(items)]
    except DecodeError:
        return None
    if len(pair) != 2 or pair[0].payload == pair[1].payload or b.party not in peers:
        return None
    if all(signed_by(session_id, protocol, b.party, e.round, peers[b.party], e) for e in pair):
        return b
    return None


def settle_blame(b: Blame, session_id: bytes, protocol: str, peers: Mapping[int, bytes], fetch: Fetch) -> list[Blame]:
    """Replace one `equivocation` accusation by what the signed envelopes prove."""
    proven = _checked_inbox_proof(b, session_id, protocol, peers)
    if proven is not None:
        return [proven]
    try:
        sender, reporters = mismatch_from_evidence(b.evidence)
        rnd = echoed_round(b.round)
    except DecodeError:
        return [Blame(b.party, b.round, UNPROVEN_EQUIVOCATION, b.evidence)]
    sent = fetch(sender, rnd)
    echoes = {k: fetch(k, b.round) for k in reporters}
    verdict = settle(
        session_id, b.round, sender, [e.payload for e in sent], {k: [e.payload for e in es] for k, es in echoes.items()}
    )
    if verdict.equivocated is not None:
        first, second = verdict.equivocated
        return [Blame(sender, rnd, "equivocation", _proof(sent[first], sent[second]))]
    out = [Blame(k, b.round, "echo_lie", _proof(echoes[k][idx], sent[0])) for k, idx in sorted(verdict.liars.items())]
    return out or [Blame(b.party, b.round, UNPROVEN_EQUIVOCATION, b.evidence)]


def settle_reports(
    reports: Mapping[int, Sequence[Blame]], session_id: bytes, protocol: str, peers: Mapping[int, bytes], fetch: Fetch
) -> dict[int, tuple[Blame, ...]]:
    """Every signer's report with each `equivocation` accusation settled by evidence."""
    out: dict[int, tuple[Blame, ...]] = {}
    for p, blames in reports.items():
        settled: list[Blame] = []
        for b in blames:
            settled.extend(settle_blame(b, session_id, protocol, peers, fetch) if b.check == "equivocation" else [b])
        out[p] = tuple(settled)
    return out
