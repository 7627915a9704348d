"""The coordinator's continuous re-verification of its own audit log (coordinator/audit/scrub.py):
bounded batches, only new entries once a pass reached the head, a tampered old entry found by the
next pass and held as broken until a full pass finds the log whole again."""

from __future__ import annotations

from pathlib import Path

import pytest

from coordinator import audit
from coordinator.audit import AuditLog
from coordinator.audit.scrub import AuditScrub

from .support import attacker, rechain


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _fill(log: AuditLog, n: int, first: int = 0) -> None:
    for i in range(first, first + n):
        log.append(audit.REQUEST, f"req-{i}", "backend-1", [i], {"n": i})


def test_each_step_checks_at_most_a_batch_then_only_what_was_appended(log: AuditLog) -> None:
    head = log.head()[0]
    scrub = AuditScrub(log, batch=4, rescan=3600, clock=Clock())
    seen = [scrub.step().verified_seq for _ in range(5)]
    assert seen[:2] == [4, 8] and seen[-1] == head  # 4 entries a step, then the head
    assert scrub.state.ok
    _fill(log, 3, first=100)
    assert scrub.step().verified_seq == log.head()[0]
    assert scrub.state.passes == 0  # no new pass before `rescan`


def test_a_tampered_old_entry_is_found_by_the_next_pass_and_stays_broken(log: AuditLog, db_path: Path) -> None:
    clock = Clock()
    scrub = AuditScrub(log, batch=100, rescan=60, clock=clock)
    assert scrub.step().ok
    # A careful attacker edits entry 3 and re-chains everything after it: the chain links hold,
    # the signed checkpoint over 1..4 does not.
    c = attacker(db_path)
    c.execute("UPDATE audit_log SET actor = 'nobody' WHERE seq = 3")
    rechain(c, 3)
    assert scrub.step().ok  # this pass already checked entry 3
    clock.t = 61
    state = scrub.step()  # the next pass
    assert not state.ok and state.first_bad_seq is not None and state.first_bad_seq <= 5
    assert state.reason in ("checkpoint_root", "hash_mismatch", "prev_hash_mismatch")
    clock.t = 90
    assert not scrub.step().ok  # held until a full pass finds the log whole


def test_a_repaired_log_clears_the_failure_on_the_next_full_pass(log: AuditLog, db_path: Path) -> None:
    clock = Clock()
    scrub = AuditScrub(log, batch=100, rescan=60, clock=clock)
    c = attacker(db_path)
    original = c.execute("SELECT body FROM audit_log WHERE seq = 7").fetchone()[0]
    c.execute("UPDATE audit_log SET body = ? WHERE seq = 7", (b"forged",))
    state = scrub.step()
    assert (state.ok, state.first_bad_seq, state.reason) == (False, 7, "hash_mismatch")
    c.execute("UPDATE audit_log SET body = ? WHERE seq = 7", (original,))  # restored from a backup
    clock.t = 61
    assert scrub.step().ok


def test_bad_settings_are_refused(log: AuditLog) -> None:
    with pytest.raises(ValueError):
        AuditScrub(log, batch=0)
