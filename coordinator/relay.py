"""The relay: drives one protocol session across the chosen signers.

The coordinator only moves envelopes. Each is signed by its sender and direct payloads are
sealed to their recipient, so the relay can neither read nor alter them unnoticed: a signer that
receives a tampered envelope aborts and blames the relay (party 0).

    start   StartSession on every party in parallel (a presign returns each party's signed state
            attestation; the first Deliver hands all of them to every party, see
            signer/node/state_version.py);
    loop    route every outgoing envelope (broadcast -> every other party, direct -> its
            recipient), Deliver each party's inbox in parallel, until every party reports done;
    end     every party must report the same public output.

Any failure ends the session for good; the caller never retries a session with the same
presignature or session id. Failures are `SessionFailed` subclasses naming the parties involved.
"""

from __future__ import annotations

import collections
import functools
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import TypeVar

import structlog

from signer.node.blame_codec import envelope_evidence
from signer.node.identity import EnvelopeError, PeerKeys, verify
from signer.node.sessions import RELAY, Envelope, StepResult
from signer.tss.errors import UNREACHABLE_CHECKS, Blame

from . import evidence
from .signer_client import (
    SessionParams,
    SignerAborted,
    SignerClient,
    SignerError,
    SignerUnavailable,
    degraded,
)

log = structlog.get_logger("relay")
R = TypeVar("R")

Tamper = Callable[[Envelope, int], Envelope | None]
"""Test hook: (envelope, recipient) -> the envelope to deliver (possibly altered), or None to drop it."""

MAX_ROUNDS = 32


class SessionFailed(Exception):  # named like the library's errors (not *Error)
    """A session could not complete; subclasses say why."""

    def __init__(self, session_id: bytes, protocol: str, message: str) -> None:
        super().__init__(f"{protocol} session {session_id.hex()}: {message}")
        self.session_id = session_id
        self.protocol = protocol

    @property
    def blames(self) -> tuple[Blame, ...]:
        """Every blame reported (empty unless a signer aborted)."""
        return ()

    @property
    def culprits(self) -> set[int]:
        """Parties blamed (0 is the relay)."""
        return {b.party for b in self.blames}


class SessionAborted(SessionFailed):
    """One or more signers aborted; `reports` maps each aborting signer to the blames it proved."""

    def __init__(self, session_id: bytes, protocol: str, reports: Mapping[int, Sequence[Blame]]) -> None:
        self.reports = {p: tuple(b) for p, b in sorted(reports.items())}
        named = sorted({b.party for b in self._merged() if b.proven})
        who = ", ".join("relay" if p == RELAY else f"signer {p}" for p in named) or "nobody"
        message = f"aborted by signers {sorted(self.reports)}; blamed: {who}"
        if self.unreachable:
            message += f"; unreachable or withheld: signers {sorted(self.unreachable)}"
        if self.unproven:
            message += f"; unproven accusations against signers {sorted({b.party for b in self.unproven})}"
        super().__init__(session_id, protocol, message)

    def _merged(self) -> tuple[Blame, ...]:
        seen: dict[tuple[int, str, str], Blame] = {}
        for bs in self.reports.values():
            for b in bs:
                seen.setdefault((b.party, b.round, b.check), b)
        return tuple(seen.values())

    @property
    def blames(self) -> tuple[Blame, ...]:
        """The union of every proven blame reported, first occurrence order, duplicates removed.

        A missing message (`missing_broadcast`, `missing_direct`, `dropped_message`) is not here:
        it proves nothing against its sender (the relay may have withheld it); see `unreachable`.
        """
        return tuple(b for b in self._merged() if b.proven)

    @property
    def missing(self) -> tuple[Blame, ...]:
        """The reports of absent messages (not proof of anything)."""
        return tuple(b for b in self._merged() if b.check in UNREACHABLE_CHECKS)

    @property
    def unproven(self) -> tuple[Blame, ...]:
        """Accusations the signed evidence did not settle (`equivocation_unproven`): nobody convicted."""
        return tuple(b for b in self._merged() if not b.proven and b.check not in UNREACHABLE_CHECKS)

    @property
    def unreachable(self) -> set[int]:
        """Parties whose messages some signer lacked: unreachable or withheld, not culprits."""
        return {b.party for b in self.missing}


class SignerUnreachable(SessionFailed):
    """Signers that did not answer in time; `timed_out` names those whose call reached its deadline
    (the connection worked: a hung or overloaded signer, backed off like a fault) rather than
    failing to connect (down: its health probe tells when it is back)."""

    def __init__(
        self, session_id: bytes, protocol: str, parties: Sequence[int], detail: str = "", timed_out: Sequence[int] = ()
    ) -> None:
        self.parties = tuple(sorted(parties))
        self.timed_out = tuple(sorted(timed_out))
        super().__init__(
            session_id, protocol, f"signers {list(self.parties)} unreachable{': ' + detail if detail else ''}"
        )


class SignerRefused(SessionFailed):
    """Signers that refused a call or failed internally; `errors` maps each to its message,
    `degraded` names those that failed on their own side (signer_client.degraded)."""

    def __init__(
        self, session_id: bytes, protocol: str, errors: Mapping[int, str], degraded: Sequence[int] = ()
    ) -> None:
        self.errors = dict(sorted(errors.items()))
        self.degraded = tuple(sorted(degraded))
        super().__init__(session_id, protocol, "; ".join(f"signer {p}: {m}" for p, m in self.errors.items()))


class SignerMisbehaved(SessionFailed):
    """A signer's own response held an envelope the relay will not forward: wrong sender, recipient
    outside the session, or (with peer keys) a signature or session that does not check out.

    The envelope came over that signer's TLS channel in its own StartSession/Deliver response, so
    the signer produced it: the blame names the signer, never the relay.
    """

    def __init__(
        self,
        session_id: bytes,
        protocol: str,
        party: int,
        reason: str,
        *,
        check: str = "envelope_routing",
        round_name: str = "",
        evidence: bytes = b"",
    ) -> None:
        self.party = party
        self.check = check
        self.blame = Blame(party, round_name or protocol, check, evidence)
        super().__init__(session_id, protocol, f"signer {party}: {reason}")

    @property
    def blames(self) -> tuple[Blame, ...]:
        """The signer that emitted the envelope, with the envelope as evidence."""
        return (self.blame,)


class RelayNotConfigured(SessionFailed):
    """The coordinator has no identity key for some party, so it cannot check that party's envelopes."""


class OutputMismatch(SessionFailed):
    """The parties finished with different public outputs; `parties` are those that differ."""

    def __init__(self, session_id: bytes, protocol: str, parties: Sequence[int]) -> None:
        self.parties = tuple(sorted(parties))
        super().__init__(session_id, protocol, f"public outputs differ at signers {list(self.parties)}")


class SessionStalled(SessionFailed):
    """Parties still wait but nobody sends anything (or the round limit was reached)."""


def parallel(executor: Executor, calls: Mapping[int, Callable[[], R]]) -> tuple[dict[int, R], dict[int, SignerError]]:
    """Run one call per party concurrently; split results from signer errors (anything else propagates)."""
    futures = {p: executor.submit(fn) for p, fn in calls.items()}
    ok: dict[int, R] = {}
    failed: dict[int, SignerError] = {}
    unexpected: BaseException | None = None
    for p, fut in futures.items():
        try:
            ok[p] = fut.result()
        except SignerError as exc:
            failed[p] = exc
        except BaseException as exc:  # our own bug: surface it, after every call has finished
            unexpected = unexpected or exc
    if unexpected is not None:
        raise unexpected
    return ok, failed


def raise_for_failures(session_id: bytes, protocol: str, failed: Mapping[int, SignerError]) -> None:
    """Turn per-signer errors into one SessionFailed: aborts first, then unreachable, then refusals."""
    if not failed:
        return
    aborted = {p: e.blames for p, e in failed.items() if isinstance(e, SignerAborted)}
    if aborted:
        raise SessionAborted(session_id, protocol, aborted)
    down = [p for p, e in failed.items() if isinstance(e, SignerUnavailable)]
    if down:
        slow = [p for p in down if failed[p].message.startswith("DEADLINE_EXCEEDED")]  # signer_client: "CODE: ..."
        detail = "; ".join(failed[p].message for p in sorted(down))
        raise SignerUnreachable(session_id, protocol, down, detail, timed_out=slow)
    faulty = [p for p, e in failed.items() if degraded(e)]
    raise SignerRefused(session_id, protocol, {p: e.message for p, e in failed.items()}, faulty)


def check_envelope(session_id: bytes, protocol: str, sender: int, e: Envelope, sign_pub: bytes) -> None:
    """Refuse, naming `sender`, an envelope from its own response that it did not validly sign for this session."""
    evidence = envelope_evidence(e)
    if e.sender != sender:
        raise SignerMisbehaved(
            session_id,
            protocol,
            sender,
            f"emitted an envelope with sender {e.sender}",
            check="envelope_sender",
            round_name=e.round,
            evidence=evidence,
        )
    if e.session_id != session_id or e.protocol != protocol:
        raise SignerMisbehaved(
            session_id,
            protocol,
            sender,
            "emitted an envelope of another session",
            check="envelope_session",
            round_name=e.round,
            evidence=evidence,
        )
    try:
        verify(PeerKeys(sender, sign_pub, b""), session_id, protocol, e.round, e.recipient, e.payload, e.signature)
    except EnvelopeError:
        raise SignerMisbehaved(
            session_id,
            protocol,
            sender,
            f"emitted a badly signed envelope in round {e.round}",
            check="envelope_signature",
            round_name=e.round,
            evidence=evidence,
        ) from None


def _settle(
    clients: Mapping[int, SignerClient],
    session_id: bytes,
    protocol: str,
    peers: Mapping[int, bytes],
    pool: Executor,
    aborted: SessionAborted,
) -> SessionAborted:
    fetch = evidence.fetcher(clients, session_id, protocol, peers, pool)
    return SessionAborted(
        session_id, protocol, evidence.settle_reports(aborted.reports, session_id, protocol, peers, fetch)
    )


def _raise(
    session_id: bytes,
    protocol: str,
    failed: Mapping[int, SignerError],
    settle: Callable[[SessionAborted], SessionAborted] | None,
) -> None:
    """`raise_for_failures`, with echo-mismatch accusations settled by signed evidence when possible."""
    try:
        raise_for_failures(session_id, protocol, failed)
    except SessionAborted as exc:
        if settle is None or not any(b.check == "equivocation" for bs in exc.reports.values() for b in bs):
            raise
        raise settle(exc) from None


def _route(
    session_id: bytes,
    protocol: str,
    produced: Mapping[int, StepResult],
    parties: tuple[int, ...],
    tamper: Tamper | None,
    peers: Mapping[int, bytes] | None = None,
) -> dict[int, list[Envelope]]:
    inboxes: dict[int, list[Envelope]] = {p: [] for p in parties}
    for sender in parties:
        step = produced.get(sender)
        if step is None:
            continue
        for e in step.outgoing:
            if peers is not None:
                check_envelope(session_id, protocol, sender, e, peers[sender])
            if e.sender != sender:
                raise SignerMisbehaved(session_id, protocol, sender, f"emitted an envelope with sender {e.sender}")
            if e.recipient == 0:
                targets = [p for p in parties if p != sender]
            elif e.recipient in parties and e.recipient != sender:
                targets = [e.recipient]
            else:
                raise SignerMisbehaved(
                    session_id, protocol, sender, f"addressed party {e.recipient} outside the session"
                )
            for to in targets:
                out = tamper(e, to) if tamper is not None else e
                if out is not None:
                    inboxes[to].append(out)
    return inboxes


def _check_outputs(session_id: bytes, protocol: str, outputs: Mapping[int, bytes]) -> bytes:
    counts = collections.Counter(outputs.values())
    common, n = counts.most_common(1)[0]
    if n == len(outputs):
        return common
    differ = [p for p, o in outputs.items() if o != common] if n * 2 > len(outputs) else list(outputs)
    raise OutputMismatch(session_id, protocol, differ)


def _attestations(produced: Mapping[int, StepResult], out: dict[int, bytes] | None) -> list[bytes]:
    """Every party's StartSession attestation, in party order (empty for protocols without them)."""
    got = {p: step.attestation for p, step in sorted(produced.items()) if step.attestation}
    if out is not None:
        out.update(got)
    return list(got.values())


def _deliver(client: SignerClient, session_id: bytes, inbox: list[Envelope], attestations: list[bytes]) -> StepResult:
    if attestations:
        return client.deliver(session_id, inbox, attestations)
    return client.deliver(session_id, inbox)


def run_session(
    clients: Mapping[int, SignerClient],
    session_id: bytes,
    protocol: str,
    parties: Sequence[int],
    start_params: SessionParams,
    *,
    tamper: Tamper | None = None,
    executor: Executor | None = None,
    max_rounds: int = MAX_ROUNDS,
    peers: Mapping[int, bytes] | None = None,
    attestations_out: dict[int, bytes] | None = None,
    confirmations_out: dict[int, bytes] | None = None,
) -> dict[int, bytes]:
    """Run a session to completion; returns each party's public output (all identical).

    `peers` (party -> Ed25519 identity key) makes the relay verify every envelope before it
    forwards it; the coordinator process always passes them (in-process tests may not).
    `attestations_out`, when given, receives each party's StartSession attestation (if any), and
    `confirmations_out` each party's last-step confirmation (a refresh's EpochConfirmation).
    Raises a `SessionFailed` subclass on any failure; the session is then dead on every signer.
    """
    ordered = tuple(sorted(parties))
    if len(set(ordered)) != len(ordered) or len(ordered) < 2:
        raise ValueError("a session needs at least two distinct parties")
    missing = [p for p in ordered if p not in clients]
    if missing:
        raise ValueError(f"no client for signers {missing}")
    if peers is not None and (unknown := [p for p in ordered if p not in peers]):
        raise RelayNotConfigured(session_id, protocol, f"no identity key configured for signers {unknown}")
    own = executor is None
    pool = executor or ThreadPoolExecutor(max_workers=len(ordered), thread_name_prefix="relay")
    bound = log.bind(session=session_id.hex(), protocol=protocol, parties=list(ordered))
    try:
        bound.info("session_start")
        # With identity keys, an echo-mismatch abort is settled from the signed envelopes the signers hold.
        settle = functools.partial(_settle, clients, session_id, protocol, peers, pool) if peers is not None else None
        produced, failed = parallel(
            pool,
            {
                p: functools.partial(clients[p].start_session, session_id, protocol, ordered, start_params)
                for p in ordered
            },
        )
        _raise(session_id, protocol, failed, settle)
        attestations = _attestations(produced, attestations_out)
        outputs: dict[int, bytes] = {}
        for rounds in range(max_rounds + 1):
            for p, step in produced.items():
                if step.done:
                    outputs[p] = step.public_output
                    if confirmations_out is not None and step.confirmation:
                        confirmations_out[p] = step.confirmation
            inboxes = _route(session_id, protocol, produced, ordered, tamper, peers)
            waiting = [p for p in ordered if p not in outputs]
            if not waiting:
                break
            if rounds == max_rounds:
                raise SessionStalled(session_id, protocol, f"no result after {max_rounds} rounds")
            if not any(inboxes[p] for p in waiting):
                raise SessionStalled(session_id, protocol, f"signers {waiting} wait but nothing is in flight")
            produced, failed = parallel(
                pool,
                {p: functools.partial(_deliver, clients[p], session_id, inboxes[p], attestations) for p in waiting},
            )
            attestations = []  # only the first Deliver carries them
            _raise(session_id, protocol, failed, settle)
        _check_outputs(session_id, protocol, outputs)
        bound.info("session_done", rounds=rounds)
        return outputs
    except SessionFailed as exc:
        bound.warning("session_failed", reason=type(exc).__name__, detail=str(exc), culprits=sorted(exc.culprits))
        raise
    finally:
        if own:
            pool.shutdown(wait=True)
