"""An in-process driver: runs every party's rounds and routes their messages.

Tests and benchmarks use it; the gRPC session drives the very same rounds. A `tamper` hook sees
every delivery (sender -> recipient, broadcasts expanded per recipient) and may replace the
payload or drop it, which is how adversarial tests make a party cheat or equivocate. A sender whose
message the hook altered or dropped is corrupted: its own rounds still run honest code that never
learns what was sent in its name, so its verdicts are not evidence and `culprits()` leaves them out,
and an InternalError its code raises is kept in `failures` instead of ending the run.

A run can stop after a number of rounds (`stop_after`) and hand back the waiting steps
(`pending`), which a later run resumes: tests build an expensive prefix once and replay the rest.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import InternalError, ProtocolAbort
from .rounds import Continue, Done, Incoming, Outgoing, Round, Step

Tamper = Callable[[Outgoing, int], bytes | None]
"""(message, recipient) -> payload to deliver (possibly altered), or None to drop it."""


@dataclass
class SimulationResult:
    """What each party ended with: an output or the abort it raised."""

    outputs: dict[int, Any] = field(default_factory=dict)
    aborts: dict[int, ProtocolAbort] = field(default_factory=dict)
    rounds: int = 0
    corrupted: set[int] = field(default_factory=set)
    """Senders whose messages the tamper hook altered or dropped."""
    failures: dict[int, InternalError] = field(default_factory=dict)
    """InternalErrors raised by corrupted parties' own code (an honest party's ends the run)."""
    pending: dict[int, Continue] = field(default_factory=dict)
    """The steps of parties still waiting for a round when the run ended."""

    def culprits(self) -> set[int]:
        """Union of culprits named by every aborting party that is not corrupted."""
        out: set[int] = set()
        for p, a in self.aborts.items():
            if p not in self.corrupted:
                out |= a.culprits
        return out

    def unreachable(self) -> set[int]:
        """Union of the parties every uncorrupted aborting party found missing (not proof of cheating)."""
        out: set[int] = set()
        for p, a in self.aborts.items():
            if p not in self.corrupted:
                out |= a.unreachable
        return out


def _deliveries(out: Outgoing, parties: tuple[int, ...]) -> list[tuple[int, Outgoing]]:
    if out.recipient is None:
        return [(p, out) for p in parties if p != out.sender]
    return [(out.recipient, out)]


def run(
    starts: Mapping[int, Step],
    *,
    tamper: Tamper | None = None,
    max_rounds: int = 32,
    on_step: Callable[[int, float], None] | None = None,
    stop_after: int | None = None,
    corrupted: Iterable[int] = (),
    execute: Callable[..., Step] | None = None,
) -> SimulationResult:
    """Run all parties to completion.

    `starts` maps each party to its first step (usually `Continue(first messages, round 1)`).
    `on_step(party, cpu_seconds)` is told the CPU time of every round a party processes.
    A party that aborts stops; parties waiting on it stop too (their inbox can never complete),
    and the result carries every abort so tests can assert the culprit set.
    `stop_after` ends the run after that many rounds with the waiting steps in `pending`;
    `corrupted` names senders a previous run of the same session already found corrupted.
    `execute(rnd.receive, inbox)` computes each round where a node would (signer/node/protocol_work.py:
    in a worker process); by default here.
    """
    parties = tuple(sorted(starts))
    result = SimulationResult(corrupted=set(corrupted))
    state: dict[int, Step] = dict(starts)
    for _ in range(max_rounds if stop_after is None else min(max_rounds, stop_after)):
        waiting = {p: s.next_round for p, s in state.items() if isinstance(s, Continue)}
        if not waiting:
            break
        result.rounds += 1
        inboxes: dict[int, dict[int, dict[str, bytes]]] = {p: {} for p in parties}
        for p, step in state.items():
            for out in step.outgoing:
                for to, msg in _deliveries(out, parties):
                    payload = tamper(msg, to) if tamper else msg.payload
                    if payload != msg.payload:
                        result.corrupted.add(msg.sender)
                    if payload is None:
                        continue
                    kind = "broadcast" if msg.recipient is None else "direct"
                    inboxes[to].setdefault(p, {})[kind] = payload
        new_state: dict[int, Step] = {}
        for p, step in state.items():
            if isinstance(step, Done):
                new_state[p] = Done((), step.output)
                continue
            rnd: Round = waiting[p]
            inbox = {j: Incoming(m.get("broadcast"), m.get("direct")) for j, m in inboxes[p].items() if j in rnd.others}
            if any(j not in inbox for j in rnd.others):
                # Some sender aborted or its message was dropped: treat a missing message as its fault.
                inbox = {j: inbox.get(j, Incoming()) for j in rnd.others}
            t0 = time.process_time()
            try:
                new_state[p] = rnd.receive(inbox) if execute is None else execute(rnd.receive, inbox)
            except ProtocolAbort as abort:
                result.aborts[p] = abort
            except InternalError as error:
                if p not in result.corrupted:
                    raise
                result.failures[p] = error
            finally:
                if on_step is not None:
                    on_step(p, time.process_time() - t0)
        state = new_state
        if result.aborts or result.failures:
            break
    for p, step in state.items():
        if isinstance(step, Done):
            result.outputs[p] = step.output
        else:
            result.pending[p] = step
    if stop_after is None and not result.aborts and not result.failures and len(result.outputs) != len(parties):
        raise InternalError("simulation ended with parties still waiting")
    return result


def run_ok(starts: Mapping[int, Step], *, tamper: Tamper | None = None) -> dict[int, Any]:
    """Run all parties and return their outputs; any abort is re-raised."""
    res = run(starts, tamper=tamper)
    if res.aborts:
        raise next(iter(res.aborts.values()))
    return res.outputs
