"""Blame is evidence (issue 9.6): attacks through the relay over in-process signers running real keygen.

A signer that emits a badly signed or misattributed envelope is named by the relay itself (the
envelope came in that signer's own response), with the envelope as evidence; the relay is never
blamed for it. A relay that withholds a signer's messages makes that signer "unreachable", never a
culprit.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from coordinator import relay
from coordinator.errors import error_from_session
from coordinator.signer_client import LocalSignerClient, SignerClient
from signer.node.blame_codec import envelope_from_evidence
from signer.node.identity import Identity, sign, verify
from signer.node.sessions import RELAY, Envelope, StepResult
from tests.unit.coordinator.test_relay import PARAMS, PARTIES, FakeNode


def cluster(seed: str) -> tuple[dict[int, LocalSignerClient], dict[int, bytes], dict[int, Identity]]:
    idents = {p: Identity.generate(p) for p in PARTIES}
    nodes = {p: FakeNode(idents[p], {q: idents[q].public() for q in PARTIES if q != p}, f"{seed}/{p}") for p in PARTIES}
    keys = {p: i.public().sign_pub for p, i in idents.items()}
    return {p: LocalSignerClient(n) for p, n in nodes.items()}, keys, idents


class Rewriting(LocalSignerClient):
    """A compromised signer: rewrites the envelopes of its own responses with `fn`."""

    def __init__(self, node: Any, fn: Any) -> None:
        super().__init__(node)
        self.fn = fn

    def _alter(self, step: StepResult) -> StepResult:
        return dataclasses.replace(step, outgoing=tuple(self.fn(e) for e in step.outgoing))

    def start_session(self, *a: Any, **kw: Any) -> StepResult:
        return self._alter(super().start_session(*a, **kw))

    def deliver(self, *a: Any, **kw: Any) -> StepResult:
        return self._alter(super().deliver(*a, **kw))


def _run(clients: dict[int, Any], name: str, **kw: Any) -> dict[int, bytes]:
    sid = f"blame-test/{name}".encode()
    return relay.run_session(dict[int, SignerClient](clients), sid, "keygen", PARTIES, PARAMS, **kw)


def _flip(b: bytes) -> bytes:
    return b[:-1] + bytes([b[-1] ^ 1])


def test_signer_emitting_a_badly_signed_envelope_is_blamed_not_the_relay() -> None:
    clients, peers, _ = cluster("badsig")

    def corrupt(e: Envelope) -> Envelope:
        return dataclasses.replace(e, signature=_flip(e.signature)) if e.round.endswith("r2") else e

    clients[2] = Rewriting(clients[2].node, corrupt)
    with pytest.raises(relay.SignerMisbehaved) as exc:
        _run(clients, "badsig", peers=peers)
    (blame,) = exc.value.blames
    assert (blame.party, blame.check) == (2, "envelope_signature") and blame.round.endswith("r2")
    assert RELAY not in exc.value.culprits
    assert str(exc.value).endswith(f"signer 2: emitted a badly signed envelope in round {blame.round}")
    # The evidence is the envelope exactly as signer 2 emitted it: its signature does not verify.
    bad = envelope_from_evidence(blame.evidence)
    assert bad.sender == 2
    with pytest.raises(Exception, match="signature"):
        peer = clients[1].node.sessions.peers[2]
        verify(peer, bad.session_id, bad.protocol, bad.round, bad.recipient, bad.payload, bad.signature)
    err = error_from_session(exc.value)
    assert [(b.party, b.check) for b in err.blames] == [(2, "envelope_signature")]
    # No honest signer received the envelope: none of them aborted or blamed anyone.
    assert all(not c.node.shares for c in clients.values())


def test_signer_replaying_its_envelope_from_another_session_is_blamed() -> None:
    clients, peers, idents = cluster("replay")

    def elsewhere(e: Envelope) -> Envelope:
        other = b"blame-test/other-session"
        sig = sign(idents[3], other, e.protocol, e.round, e.recipient, e.payload)
        return dataclasses.replace(e, session_id=other, signature=sig)

    clients[3] = Rewriting(clients[3].node, elsewhere)
    with pytest.raises(relay.SignerMisbehaved) as exc:
        _run(clients, "replay", peers=peers)
    assert [(b.party, b.check) for b in exc.value.blames] == [(3, "envelope_session")]


def test_relay_without_a_peer_key_refuses_to_run() -> None:
    clients, peers, _ = cluster("nokey")
    del peers[3]
    with pytest.raises(relay.RelayNotConfigured, match=r"no identity key configured for signers \[3\]$"):
        _run(clients, "nokey", peers=peers)


def test_tampering_in_transit_still_blames_the_relay_with_peer_keys() -> None:
    clients, peers, _ = cluster("transit")

    def tamper(e: Envelope, to: int) -> Envelope | None:
        if e.sender == 1 and to == 2 and e.recipient == 0 and e.round.endswith("r2"):
            return dataclasses.replace(e, payload=_flip(e.payload))
        return e

    with pytest.raises(relay.SessionAborted) as exc:
        _run(clients, "transit", peers=peers, tamper=tamper)
    assert exc.value.culprits == {RELAY}


def test_cluster_layout_gives_the_coordinator_every_signers_identity_key(tmp_path: Any) -> None:
    import json

    from coordinator import cluster as cluster_mod
    from coordinator.config import CoordinatorConfig

    cluster_mod.layout(tmp_path, 3, "112")
    coord = CoordinatorConfig.load(tmp_path / "coordinator" / "coordinator.json")
    for i in (1, 2, 3):
        other = json.loads((tmp_path / f"signer-{1 if i != 1 else 2}" / "node.json").read_text())
        assert coord.peers[i].hex() == other["peers"][str(i)]["sign_pub"]


def test_relay_withholding_a_signers_messages_names_it_unreachable_not_a_culprit() -> None:
    clients, peers, _ = cluster("withhold")

    def withhold(e: Envelope, to: int) -> Envelope | None:
        return None if e.sender == 2 and e.round.endswith("r2") else e

    with pytest.raises(relay.SessionAborted) as exc:
        _run(clients, "withhold", peers=peers, tamper=withhold)
    assert set(exc.value.reports) == {1, 3}
    # Both receivers lacked signer 2's round-2 messages; nothing signed proves who dropped them.
    assert exc.value.unreachable == {2}
    assert exc.value.culprits == set() and exc.value.blames == ()
    assert {b.check for b in exc.value.missing} <= {"missing_broadcast", "missing_direct"}
    assert str(exc.value).endswith("blamed: nobody; unreachable or withheld: signers [2]")
    err = error_from_session(exc.value)
    assert err.blames == ()  # the ABORTED status and the stored record name no cheater
