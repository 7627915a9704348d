"""StepCommit defers wake-ups to the end of a step and runs `after_commit` work (the state-change
log events) only when the step's transaction commits."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from coordinator.step_commit import StepCommit


class _Store:
    """Just `batch()`: a transaction that commits unless its block raises."""

    @contextmanager
    def batch(self) -> Iterator[None]:
        yield


def _step() -> tuple[StepCommit, list[str], list[tuple[str, bool]]]:
    ran: list[str] = []
    woken: list[tuple[str, bool]] = []
    return StepCommit(_Store(), lambda rid, final: woken.append((rid, final))), ran, woken  # type: ignore[arg-type]


def test_after_commit_runs_once_the_step_commits() -> None:
    step, ran, woken = _step()
    with step():
        step.after_commit(lambda: ran.append("moved"))
        step.wake("r-1", False)
        assert ran == [] and woken == []  # nothing before the commit
    assert ran == ["moved"] and woken == [("r-1", False)]


def test_after_commit_is_dropped_when_the_step_rolls_back() -> None:
    step, ran, woken = _step()
    with pytest.raises(RuntimeError), step():
        step.after_commit(lambda: ran.append("moved"))
        step.wake("r-1", False)
        raise RuntimeError("the step failed")
    assert ran == []  # a move rolled back is not logged
    assert woken == [("r-1", False)]  # a spurious wake-up only makes a watcher re-read


def test_after_commit_outside_a_step_runs_at_once() -> None:
    step, ran, _ = _step()
    step.after_commit(lambda: ran.append("moved"))
    assert ran == ["moved"]
