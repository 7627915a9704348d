"""Echo mismatches are settled by signed envelopes (issue 9.6), over in-process signers running keygen.

The relay (with every signer's identity key) asks each signer for the signed broadcasts it holds
(SessionEvidence) when a signer aborts on an echo mismatch: a reporter that lies in its echo is
convicted by its own signed echo and the honest sender is cleared; a sender that really signed two
payloads is convicted with both envelopes as evidence.
"""

from __future__ import annotations

import dataclasses

import pytest

from coordinator import relay
from coordinator.errors import error_from_session
from signer.node.identity import PeerKeys, sign, verify
from signer.node.sessions import Envelope, envelope_from_evidence
from signer.tss.echo import digest
from signer.tss.echo_evidence import carried_echo
from signer.tss.encoding import as_bytes, as_list, decode
from signer.tss.keygen_msgs import KeygenRound1Broadcast, KeygenRound2Broadcast
from tests.adversarial.test_relay_blame import Rewriting, _run, cluster

LIAR = 3
HONEST_SENDER = 1
EQUIVOCATOR = 2


def _proof_envelopes(evidence: bytes) -> list[Envelope]:
    (items,) = decode("equivocation-proof/v1", evidence, 1)
    return [envelope_from_evidence(as_bytes(x)) for x in as_list(items)]


def _liar_rewrites(idents: dict[int, object]) -> object:
    ident = idents[LIAR]

    def lie(e: Envelope) -> Envelope:
        if e.round != "keygen/r2" or e.recipient != 0:
            return e
        m = KeygenRound2Broadcast.decode(e.payload, 3)
        echo = tuple((j, bytes(32) if j == HONEST_SENDER else h) for j, h in m.echo)
        payload = dataclasses.replace(m, echo=echo).encode()
        sig = sign(ident, e.session_id, e.protocol, e.round, 0, payload)  # type: ignore[arg-type]
        return dataclasses.replace(e, payload=payload, signature=sig)

    return lie


def test_echo_liar_is_blamed_and_the_honest_sender_cleared() -> None:
    clients, peers, idents = cluster("liar")
    clients[LIAR] = Rewriting(clients[LIAR].node, _liar_rewrites(idents))  # type: ignore[arg-type]
    with pytest.raises(relay.SessionAborted) as exc:
        _run(clients, "liar", peers=peers)
    # Both honest signers aborted: 2 accused sender 1, and 1 accused the reporter about its own broadcast.
    assert {p for p in exc.value.reports if p != LIAR} == {1, 2}
    assert exc.value.culprits == {LIAR}
    assert {(b.party, b.round, b.check) for b in exc.value.blames} == {(LIAR, "keygen/r2", "echo_lie")}
    assert exc.value.unproven == () and exc.value.unreachable == set()
    # The proof: the liar's own signed echo, and the one payload sender 1 signed, whose hash it is not.
    (blame,) = exc.value.blames
    echo_env, sent_env = _proof_envelopes(blame.evidence)
    verify(
        PeerKeys(LIAR, peers[LIAR], b""),
        echo_env.session_id,
        "keygen",
        "keygen/r2",
        0,
        echo_env.payload,
        echo_env.signature,
    )
    verify(
        PeerKeys(1, peers[1], b""), sent_env.session_id, "keygen", "keygen/r1", 0, sent_env.payload, sent_env.signature
    )
    claimed = dict(carried_echo("keygen/r2", echo_env.payload))[HONEST_SENDER]
    assert claimed != digest(sent_env.session_id, "keygen/r1", HONEST_SENDER, sent_env.payload)
    assert [b.party for b in error_from_session(exc.value).blames] == [LIAR]


def test_without_evidence_the_honest_sender_would_be_blamed() -> None:
    """The same attack without identity keys at the relay (no settlement): today's behaviour."""
    clients, _, idents = cluster("liar-unsettled")
    clients[LIAR] = Rewriting(clients[LIAR].node, _liar_rewrites(idents))  # type: ignore[arg-type]
    with pytest.raises(relay.SessionAborted) as exc:
        _run(clients, "liar-unsettled")
    assert HONEST_SENDER in exc.value.culprits


def test_real_equivocation_is_convicted_with_both_signed_envelopes() -> None:
    clients, peers, idents = cluster("equiv")
    sid = b"blame-test/equiv"
    alt_payload = KeygenRound1Broadcast(bytes(range(32))).encode()
    alt = Envelope(
        sid,
        "keygen",
        "keygen/r1",
        EQUIVOCATOR,
        0,
        alt_payload,
        sign(idents[EQUIVOCATOR], sid, "keygen", "keygen/r1", 0, alt_payload),
    )

    def show_party_3_another_version(e: Envelope, to: int) -> Envelope | None:
        # The compromised relay colludes with signer 2: party 3 gets a second payload signed by 2.
        return alt if e.sender == EQUIVOCATOR and e.round == "keygen/r1" and to == 3 else e

    with pytest.raises(relay.SessionAborted) as exc:
        _run(clients, "equiv", peers=peers, tamper=show_party_3_another_version)
    assert exc.value.culprits == {EQUIVOCATOR}
    equiv = [b for b in exc.value.blames if b.check == "equivocation"]
    assert [(b.party, b.round) for b in equiv] == [(EQUIVOCATOR, "keygen/r1")]
    a, b = _proof_envelopes(equiv[0].evidence)
    assert a.payload != b.payload and alt_payload in (a.payload, b.payload)
    for e in (a, b):
        verify(PeerKeys(EQUIVOCATOR, peers[EQUIVOCATOR], b""), sid, "keygen", "keygen/r1", 0, e.payload, e.signature)


def test_two_signed_versions_in_one_inbox_carry_both_as_proof() -> None:
    clients, peers, idents = cluster("twice")
    sid = b"blame-test/twice"
    alt_payload = KeygenRound1Broadcast(bytes(range(32))).encode()
    alt = Envelope(
        sid,
        "keygen",
        "keygen/r1",
        EQUIVOCATOR,
        0,
        alt_payload,
        sign(idents[EQUIVOCATOR], sid, "keygen", "keygen/r1", 0, alt_payload),
    )

    def emit_twice(e: Envelope) -> Envelope:
        return e

    class Twice(Rewriting):
        def _alter(self, step):  # type: ignore[no-untyped-def]
            extra = (alt,) if any(e.round == "keygen/r1" for e in step.outgoing) else ()
            return dataclasses.replace(step, outgoing=step.outgoing + extra)

    clients[EQUIVOCATOR] = Twice(clients[EQUIVOCATOR].node, emit_twice)
    with pytest.raises(relay.SessionAborted) as exc:
        _run(clients, "twice", peers=peers)
    assert exc.value.culprits == {EQUIVOCATOR}
    assert {(b.party, b.check) for b in exc.value.blames} == {(EQUIVOCATOR, "equivocation")}
    for blame in exc.value.blames:
        assert {e.payload for e in _proof_envelopes(blame.evidence)} >= {alt_payload}
