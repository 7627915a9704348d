"""Protocol sessions on a signer node: the same pure rounds as the simulation, over envelopes.

Every incoming envelope is checked before its payload reaches a round: session, protocol, round,
sender and recipient, then the sender's Ed25519 signature, then (for direct messages) decryption.
A bad signature can only come from the relay (no peer signs for another), so it blames the relay,
party 0. A valid signature over a payload that does not decrypt blames the sender.

Sessions are bounded: one that made no progress (no start, no delivery) for `idle_timeout`
seconds is dropped when the next session starts, finished ones go first when the node is at its
cap, and beyond `max_sessions` running sessions a start is refused, so neither a faulty
coordinator nor a caller that starts sessions and walks away exhausts a signer's memory.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from signer.policy.revocation import SIGNER_REVOKED
from signer.tss.encoding import as_bytes, as_int, as_str, decode, encode
from signer.tss.errors import Blame, InvalidInput, ProtocolAbort
from signer.tss.rng import Rng, SystemRng
from signer.tss.rounds import Continue, Done, Incoming, Outgoing, Round, Step

from .identity import EnvelopeError, Identity, PeerKeys, open_sealed, seal, sign, verify
from .protocol_work import WorkerLost, inline

RELAY = 0
"""Party index that names the relaying coordinator in a blame."""
SESSION_IDLE_TIMEOUT = 900.0
"""Seconds without progress after which a session is dropped (aux info's prime search included)."""
MAX_SESSIONS = 256
"""Sessions (running or finished, not yet evicted) a node holds at once."""


@dataclass(frozen=True, slots=True)
class Envelope:
    """A transport envelope (mirror of the protobuf message, used inside the node)."""

    session_id: bytes
    protocol: str
    round: str
    sender: int
    recipient: int
    payload: bytes
    signature: bytes


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


def equivocation_proof(a: Envelope, b: Envelope) -> bytes:
    """Two envelopes the same sender signed for the same round with different payloads."""
    return encode("equivocation-proof/v1", [envelope_evidence(a), envelope_evidence(b)])


OnDone = Callable[[Any], bytes]
"""Persists a protocol's output and returns its public summary (identical at every honest party)."""


@dataclass
class Session:
    """One running protocol instance on this node."""

    session_id: bytes
    protocol: str
    parties: tuple[int, ...]
    on_done: OnDone
    round: Round | None = None
    expected_round: str = ""
    done: bool = False
    public_output: bytes = b""
    aborted: ProtocolAbort | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    last_progress: float = 0.0
    held: dict[tuple[str, int], list[Envelope]] = field(default_factory=dict)
    """Validly signed broadcast envelopes received, by (round, sender): the evidence the coordinator
    asks for (`SessionManager.evidence`) to settle an echo mismatch. Kept while the session is."""


@dataclass(frozen=True, slots=True)
class StepResult:
    """What a start or a delivery produced."""

    outgoing: tuple[Envelope, ...]
    done: bool
    public_output: bytes
    attestation: bytes = b""  # StartSession of a presign: the node's signed state (state_version.py)
    confirmation: bytes = b""  # last step of a refresh: the signed EpochConfirmation (key_epochs.py)


MAX_HELD_PER_SENDER_ROUND = 2
"""Two different signed payloads already prove equivocation; more would only grow the session."""


def _hold(s: Session, e: Envelope) -> None:
    """Keep a validly signed broadcast of this session as evidence (distinct payloads, bounded)."""
    if e.recipient != 0 or e.session_id != s.session_id or e.protocol != s.protocol:
        return
    kept = s.held.setdefault((e.round, e.sender), [])
    if len(kept) < MAX_HELD_PER_SENDER_ROUND and all(k.payload != e.payload for k in kept):
        kept.append(e)


class SessionManager:
    """Runs sessions for one party; thread-safe per session."""

    def __init__(
        self,
        identity: Identity,
        peers: Mapping[int, PeerKeys],
        rng: Rng | None = None,
        *,
        idle_timeout: float = SESSION_IDLE_TIMEOUT,
        max_sessions: int = MAX_SESSIONS,
        clock: Callable[[], float] = time.monotonic,
        run: Callable[..., Any] = inline,
    ) -> None:
        self.identity = identity
        # Where a round's computation runs: run(fn, *args) (protocol_work.py: low-priority worker
        # processes in a server, so fn and args pickle).
        self.run = run
        self.peers = dict(peers)
        self.rng: Rng = rng or SystemRng()
        self.idle_timeout = idle_timeout
        self.max_sessions = max_sessions
        self._clock = clock
        self._sessions: dict[bytes, Session] = {}
        self._lock = threading.Lock()
        # Parties the officer registry revokes (set by the node): their envelopes are blamed.
        self.revoked: Callable[[], frozenset[int]] = frozenset

    def _evict(self, now: float) -> None:
        """Drop sessions idle for longer than `idle_timeout`, then, at the cap, finished or aborted
        ones (their outcome is already persisted or reported); the caller holds `_lock`."""
        for sid in [sid for sid, s in self._sessions.items() if now - s.last_progress > self.idle_timeout]:
            del self._sessions[sid]
        if len(self._sessions) >= self.max_sessions:
            for sid in [sid for sid, s in self._sessions.items() if s.done or s.aborted is not None]:
                del self._sessions[sid]

    @property
    def party(self) -> int:
        """This node's party index."""
        return self.identity.party

    def start(
        self, session_id: bytes, protocol: str, parties: tuple[int, ...], first: Continue, on_done: OnDone
    ) -> StepResult:
        """Register a session whose first step has been computed by the protocol's `start`."""
        if self.party not in parties:
            raise InvalidInput("this node is not a party of the session")
        unknown = [p for p in parties if p != self.party and p not in self.peers]
        if unknown:
            raise InvalidInput(f"no identity keys configured for parties {unknown}")
        with self._lock:
            now = self._clock()
            self._evict(now)
            if session_id in self._sessions:
                raise InvalidInput("session id already used on this node")
            if len(self._sessions) >= self.max_sessions:
                raise InvalidInput(f"too many sessions: this node holds at most {self.max_sessions} at once")
            s = Session(session_id, protocol, parties, on_done, last_progress=now)
            self._sessions[session_id] = s
        with s.lock:
            return self._advance(s, first)

    def fail(self, session_id: bytes, abort: ProtocolAbort) -> ProtocolAbort:
        """End a session for good with `abort` (a check outside the rounds failed); returns it to raise."""
        s = self.get(session_id)
        with s.lock:
            s.aborted, s.round = abort, None
        return abort

    def get(self, session_id: bytes) -> Session:
        """A known session, or InvalidInput."""
        with self._lock:
            s = self._sessions.get(session_id)
        if s is None:
            raise InvalidInput("unknown session")
        return s

    def evidence(self, session_id: bytes, sender: int, round_name: str = "") -> list[Envelope]:
        """The signed broadcasts received from `sender` in one round (every round if empty)."""
        s = self.get(session_id)
        with s.lock:
            return [e for (r, j), es in sorted(s.held.items()) if j == sender and round_name in ("", r) for e in es]

    def deliver(self, session_id: bytes, envelopes: list[Envelope]) -> StepResult:
        """Feed one round's messages to the session and return what it emits next."""
        s = self.get(session_id)
        with s.lock:
            if s.aborted is not None:
                raise s.aborted
            if s.done or s.round is None:
                raise InvalidInput("session already finished")
            s.last_progress = self._clock()
            inbox = self._open(s, envelopes)
            try:
                step = self.run(s.round.receive, inbox)  # a bound method: the round's state pickles
            except ProtocolAbort as abort:
                s.aborted = abort
                s.round = None
                raise
            except WorkerLost:
                s.round = None  # the step's worker died: the session cannot go on (UNAVAILABLE)
                raise
            return self._advance(s, step)

    def _advance(self, s: Session, step: Step) -> StepResult:
        out = tuple(self._wrap(s, m) for m in step.outgoing)
        if isinstance(step, Done):
            s.round = None
            s.done = True
            s.public_output = s.on_done(step.output)
        else:
            s.round = step.next_round
            names = {m.round for m in step.outgoing}
            s.expected_round = names.pop() if len(names) == 1 else ""
        return StepResult(out, s.done, s.public_output)

    def _wrap(self, s: Session, m: Outgoing) -> Envelope:
        recipient = m.recipient or 0
        payload = m.payload
        if m.recipient is not None:
            payload = seal(self.identity, self.peers[m.recipient], s.session_id, m.round, payload)
        sig = sign(self.identity, s.session_id, s.protocol, m.round, recipient, payload)
        return Envelope(s.session_id, s.protocol, m.round, self.party, recipient, payload, sig)

    def _open(self, s: Session, envelopes: list[Envelope]) -> dict[int, Incoming]:
        assert s.round is not None
        blames: list[Blame] = []
        got: dict[int, dict[str, bytes]] = {}
        signed: dict[tuple[int, str], Envelope] = {}
        rname = s.round.name
        revoked = self.revoked()
        for e in envelopes:
            if e.sender not in s.parties or e.sender == self.party:
                blames.append(Blame(RELAY, rname, "envelope_sender"))
                continue
            if e.sender in revoked:  # revoked after the session started: its messages count for nothing
                blames.append(Blame(e.sender, rname, SIGNER_REVOKED))
                continue
            peer = self.peers[e.sender]
            try:
                verify(peer, s.session_id, s.protocol, e.round, e.recipient, e.payload, e.signature)
            except EnvelopeError:
                blames.append(Blame(RELAY, rname, "envelope_signature", e.payload[:64]))
                continue
            _hold(s, e)
            # The signature covers session, protocol, round and recipient, so a mismatch here is a
            # genuine message replayed by the relay from elsewhere.
            if e.session_id != s.session_id or e.protocol != s.protocol:
                blames.append(Blame(RELAY, rname, "replayed_envelope"))
                continue
            if s.expected_round and e.round != s.expected_round:
                blames.append(Blame(RELAY, rname, "replayed_envelope"))
                continue
            if e.recipient not in (0, self.party):
                blames.append(Blame(RELAY, rname, "misrouted_envelope"))
                continue
            kind = "broadcast" if e.recipient == 0 else "direct"
            payload = e.payload
            if kind == "direct":
                try:
                    payload = open_sealed(self.identity, peer, s.session_id, e.round, e.payload)
                except EnvelopeError:
                    blames.append(Blame(e.sender, rname, "direct_decrypt", e.payload[:64]))
                    continue
            slot = got.setdefault(e.sender, {})
            if kind in slot:
                if slot[kind] != payload:
                    proof = equivocation_proof(signed[(e.sender, kind)], e)
                    blames.append(Blame(e.sender, rname, "equivocation", proof))
                continue
            slot[kind] = payload
            signed[(e.sender, kind)] = e
        # A sender whose signed broadcast arrived but whose direct message did not (or the
        # reverse): either it sent half a round or the relay dropped the other half. Nothing signed
        # proves which, so j is named unreachable (`dropped_message` is not a proven blame).
        for j in s.round.others:
            slot = got.get(j, {})
            if slot and (
                (s.round.expects_broadcast and "broadcast" not in slot)
                or (s.round.expects_direct and "direct" not in slot)
            ):
                blames.append(Blame(j, rname, "dropped_message"))
        if blames:
            s.aborted = ProtocolAbort(blames)
            s.round = None
            raise s.aborted
        return {j: Incoming(got.get(j, {}).get("broadcast"), got.get(j, {}).get("direct")) for j in s.round.others}
