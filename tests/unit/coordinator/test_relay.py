"""The relay over in-process signers: real keygen sessions on `SessionManager`, no network.

Tampering in transit must make the signers abort and name the relay (party 0); an unreachable
signer, a refusal, a misaddressed envelope and diverging outputs each fail the session by name.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence
from typing import Any

import grpc
import pytest

from coordinator import relay
from coordinator.signer_client import (
    LocalSignerClient,
    SessionParams,
    SignerAborted,
    SignerClient,
    SignerRejected,
    SignerUnavailable,
    error_from_rpc,
)
from signer.node import blame_codec
from signer.node.identity import Identity
from signer.node.node import keygen_public
from signer.node.sessions import RELAY, Envelope, SessionManager, StepResult
from signer.tss import keygen
from signer.tss.encoding import as_point, decode
from signer.tss.errors import Blame, InvalidInput
from signer.tss.key_share import KeyShare
from tests.helpers import SeededRng

PARTIES = (1, 2, 3)
PARAMS = SessionParams(key_id="k1", threshold=2)


class FakeNode:
    """A signer's session layer only: identity, SessionManager, keygen; shares kept in memory."""

    def __init__(self, identity: Identity, peers: dict[int, Any], seed: str) -> None:
        self.party = identity.party
        self.sessions = SessionManager(identity, peers)
        self.rng = SeededRng(seed)
        self.shares: dict[str, KeyShare] = {}
        self.output_override: bytes | None = None

    def start_session(
        self,
        session_id: bytes,
        protocol: str,
        key_id: str,
        parties: tuple[int, ...],
        *,
        threshold: int = 0,
        level: str = "",
        path: tuple[int, ...] = (),
    ) -> StepResult:
        if protocol != "keygen":
            raise InvalidInput(f"fake node runs keygen only, not {protocol!r}")
        first = keygen.start(session_id, self.party, parties, threshold, rng=self.rng)

        def on_done(share: KeyShare) -> bytes:
            self.shares[key_id] = share
            return self.output_override or keygen_public(share)

        return self.sessions.start(session_id, protocol, parties, first, on_done)

    def deliver(self, session_id: bytes, envelopes: list[Envelope]) -> StepResult:
        return self.sessions.deliver(session_id, envelopes)

    def session_evidence(self, session_id: bytes, sender: int, round_name: str) -> list[Envelope]:
        return self.sessions.evidence(session_id, sender, round_name)


def make_cluster(parties: Sequence[int] = PARTIES, seed: str = "relay") -> dict[int, LocalSignerClient]:
    idents = {p: Identity.generate(p) for p in parties}
    nodes = {p: FakeNode(idents[p], {q: idents[q].public() for q in parties if q != p}, f"{seed}/{p}") for p in parties}
    return {p: LocalSignerClient(n) for p, n in nodes.items()}


def sid(name: str) -> bytes:
    return f"relay-test/{name}".encode()


def run(clients: dict[int, LocalSignerClient], name: str, **kw: Any) -> dict[int, bytes]:
    return relay.run_session(dict[int, SignerClient](clients), sid(name), "keygen", PARTIES, PARAMS, **kw)


def test_keygen_through_the_relay() -> None:
    clients = make_cluster()
    outputs = run(clients, "ok")
    assert set(outputs) == set(PARTIES)
    assert len(set(outputs.values())) == 1
    f = decode("keygen/public", outputs[1], 6)
    shares = {p: c.node.shares["k1"] for p, c in clients.items()}
    assert as_point(f[0]) == shares[1].public_key == shares[2].public_key == shares[3].public_key
    assert {s.x for s in shares.values()}.__len__() == 3


def test_start_and_deliver_run_in_parallel() -> None:
    clients = make_cluster()
    barrier = threading.Barrier(len(PARTIES), timeout=10)

    class Gated(LocalSignerClient):
        def start_session(self, *a: Any) -> StepResult:
            barrier.wait()  # deadlocks (BrokenBarrierError) unless all parties are called at once
            return super().start_session(*a)

    gated = {p: Gated(c.node) for p, c in clients.items()}
    assert len(set(run(gated, "parallel").values())) == 1  # type: ignore[arg-type]


def _flip(payload: bytes) -> bytes:
    return payload[:-1] + bytes([payload[-1] ^ 1])


def test_tampered_broadcast_blames_relay() -> None:
    clients = make_cluster()

    def tamper(e: Envelope, to: int) -> Envelope | None:
        if e.sender == 1 and to == 2 and e.recipient == 0 and e.round.endswith("r2"):
            return dataclasses.replace(e, payload=_flip(e.payload))
        return e

    with pytest.raises(relay.SessionAborted) as exc:
        run(clients, "tamper-bcast", tamper=tamper)
    assert exc.value.culprits == {RELAY}
    assert set(exc.value.reports) == {2}
    assert "envelope_signature" in {b.check for b in exc.value.blames}


def test_tampered_direct_payload_blames_relay() -> None:
    clients = make_cluster()

    def tamper(e: Envelope, to: int) -> Envelope | None:
        if e.sender == 3 and e.recipient == 1:
            return dataclasses.replace(e, payload=_flip(e.payload))
        return e

    with pytest.raises(relay.SessionAborted) as exc:
        run(clients, "tamper-direct", tamper=tamper)
    assert exc.value.culprits == {RELAY}
    assert "envelope_signature" in {b.check for b in exc.value.blames}


def test_redirected_direct_message_blames_relay() -> None:
    clients = make_cluster()

    def tamper(e: Envelope, to: int) -> Envelope | None:
        if e.sender == 1 and e.recipient == 2:
            return dataclasses.replace(e, recipient=3)
        return e

    with pytest.raises(relay.SessionAborted) as exc:
        run(clients, "misroute", tamper=tamper)
    assert exc.value.culprits == {RELAY}


def test_dropped_direct_message_names_the_sender_unreachable() -> None:
    clients = make_cluster()

    def tamper(e: Envelope, to: int) -> Envelope | None:
        return None if (e.sender == 2 and e.recipient == 3) else e

    with pytest.raises(relay.SessionAborted) as exc:
        run(clients, "drop", tamper=tamper)
    assert exc.value.culprits == set() and exc.value.blames == ()
    assert exc.value.unreachable == {2}
    assert exc.value.reports[3][0] == Blame(2, exc.value.reports[3][0].round, "dropped_message")


def test_envelope_replayed_from_another_session_blames_relay() -> None:
    clients = make_cluster()
    captured: list[Envelope] = []

    def record(e: Envelope, to: int) -> Envelope:
        captured.append(e)
        return e

    run(clients, "first", tamper=record)
    stale = next(e for e in captured if e.sender == 1 and e.recipient == 0)

    def replay(e: Envelope, to: int) -> Envelope | None:
        return stale if (e.sender == 1 and to == 2 and e.round == stale.round) else e

    with pytest.raises(relay.SessionAborted) as exc:
        run(clients, "second", tamper=replay)
    assert exc.value.culprits == {RELAY}


def test_unreachable_signer_fails_the_session_by_name() -> None:
    clients = make_cluster()

    class GoesDown(LocalSignerClient):
        def deliver(self, session_id: bytes, envelopes: Sequence[Envelope]) -> StepResult:
            raise SignerUnavailable(self.party, "DEADLINE_EXCEEDED: deadline exceeded")

    clients[3] = GoesDown(clients[3].node)
    with pytest.raises(relay.SignerUnreachable) as exc:
        run(clients, "down")
    assert exc.value.parties == (3,)


def test_signer_down_at_start() -> None:
    clients = make_cluster()
    clients[2].down = True
    with pytest.raises(relay.SignerUnreachable) as exc:
        run(clients, "down-at-start")
    assert exc.value.parties == (2,)


def test_refusal_names_the_signer() -> None:
    clients = make_cluster()
    with pytest.raises(relay.SignerRefused) as exc:
        relay.run_session(dict[int, SignerClient](clients), sid("refuse"), "presign", PARTIES, PARAMS)
    assert set(exc.value.errors) == set(PARTIES)


def test_diverging_output_is_named() -> None:
    clients = make_cluster()
    clients[2].node.output_override = b"something else"
    with pytest.raises(relay.OutputMismatch) as exc:
        run(clients, "mismatch")
    assert exc.value.parties == (2,)


def test_misaddressed_envelope_is_the_senders_fault() -> None:
    clients = make_cluster()

    class Misaddressing(LocalSignerClient):
        def start_session(self, *a: Any) -> StepResult:
            step = super().start_session(*a)
            bad = dataclasses.replace(step.outgoing[0], recipient=9)
            return dataclasses.replace(step, outgoing=(bad, *step.outgoing[1:]))

    clients[1] = Misaddressing(clients[1].node)
    with pytest.raises(relay.SignerMisbehaved) as exc:
        run(clients, "misaddressed")
    assert exc.value.party == 1


def test_session_id_is_never_reused_by_a_signer() -> None:
    clients = make_cluster()
    run(clients, "once")
    with pytest.raises(relay.SignerRefused):
        run(clients, "once")


class _FakeRpcError(grpc.RpcError):  # type: ignore[misc]
    def __init__(self, code: grpc.StatusCode, details: str, trailers: tuple[tuple[str, bytes], ...] = ()) -> None:
        self._code, self._details, self._trailers = code, details, trailers

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> tuple[tuple[str, bytes], ...]:
        return self._trailers


def test_aborted_status_carries_blames_in_the_trailer() -> None:
    blames = [Blame(0, "keygen/r2", "envelope_signature", b"\x01\x02"), Blame(3, "keygen/r3", "vss_share")]
    trailer = ((blame_codec.METADATA_KEY, blame_codec.encode_blames(blames)),)
    err = error_from_rpc(2, _FakeRpcError(grpc.StatusCode.ABORTED, "protocol aborted", trailer))
    assert isinstance(err, SignerAborted)
    assert err.party == 2 and list(err.blames) == blames


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (grpc.StatusCode.UNAVAILABLE, SignerUnavailable),
        (grpc.StatusCode.DEADLINE_EXCEEDED, SignerUnavailable),
        (grpc.StatusCode.INVALID_ARGUMENT, SignerRejected),
        (grpc.StatusCode.FAILED_PRECONDITION, SignerRejected),
    ],
)
def test_status_codes_map_to_signer_errors(code: grpc.StatusCode, kind: type) -> None:
    assert isinstance(error_from_rpc(1, _FakeRpcError(code, "x")), kind)
