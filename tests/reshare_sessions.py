"""Reshare runs for tests: every party of S ∪ P' started and driven by the in-process simulation.

The session of a reshare is S ∪ P' (old dealers and new committee), and every party of it sends a
broadcast in every round, so `simulation.run` drives it unchanged; old parties outside S are
simply not started.
"""

from __future__ import annotations

from signer.tss import simulation
from signer.tss.committee import Committee, ReshareOutput
from signer.tss.key_share import KeyShare
from signer.tss.reshare import start_reshare
from signer.tss.rounds import Step
from signer.tss.simulation import SimulationResult, Tamper
from tests.helpers import SeededRng


def reshare_starts(
    old: dict[int, KeyShare],
    dealers: tuple[int, ...],
    new_parties: tuple[int, ...],
    new_threshold: int,
    seed: str,
) -> dict[int, Step]:
    """First steps of every party of S ∪ P'; a joining party gets the old committee's public data."""
    committee = Committee.of(next(iter(old.values())))
    rng = SeededRng(seed)
    session_id = f"test-reshare/{seed}".encode()
    return {
        p: start_reshare(
            session_id,
            p,
            old=committee,
            dealers=dealers,
            new_parties=new_parties,
            new_threshold=new_threshold,
            share=old[p] if p in dealers else None,
            rng=rng,
        )
        for p in sorted(set(dealers) | set(new_parties))
    }


def run_reshare(
    old: dict[int, KeyShare],
    dealers: tuple[int, ...],
    new_parties: tuple[int, ...],
    new_threshold: int,
    seed: str,
    tamper: Tamper | None = None,
) -> SimulationResult:
    """Run one reshare (possibly with a cheater's messages rewritten by `tamper`)."""
    return simulation.run(reshare_starts(old, dealers, new_parties, new_threshold, seed), tamper=tamper)


def reshare_ok(
    old: dict[int, KeyShare],
    dealers: tuple[int, ...],
    new_parties: tuple[int, ...],
    new_threshold: int,
    seed: str,
) -> dict[int, ReshareOutput]:
    """Every party's output of an honest reshare."""
    out: dict[int, ReshareOutput] = simulation.run_ok(reshare_starts(old, dealers, new_parties, new_threshold, seed))
    return out


def new_shares(outputs: dict[int, ReshareOutput]) -> dict[int, KeyShare]:
    """The key shares of the new committee."""
    return {p: o.share for p, o in outputs.items() if o.share is not None}
