"""Sessions rows: the outcome, proven blames with their evidence (bounded), unreachable parties apart."""

from __future__ import annotations

from pathlib import Path

import pytest

from coordinator import store as st
from coordinator.store import Store
from signer.tss.errors import Blame


def test_sessions_record_outcome(db: Store) -> None:
    db.start_session("s1", "keygen", "k9", (1, 2, 3))
    db.end_session("s1", ok=False, blame=[Blame(0, "keygen/r2", "envelope_signature")], error="aborted")
    s = db.get_session("s1")
    assert s.state == "failed" and s.blame[0].party == 0 and s.parties == (1, 2, 3) and s.ended_at is not None
    with pytest.raises(st.InvalidTransition):
        db.end_session("s1", ok=True)
    assert [x.session_id for x in db.list_sessions("k9")] == ["s1"]


def test_abort_record_keeps_evidence_bounded_and_unreachable_apart(tmp_path: Path) -> None:
    s = st.Store(tmp_path / "c.db")
    s.start_session("aa", "keygen", "k1", (1, 2, 3))
    small = Blame(3, "keygen/r2", "echo_lie", b"signed echo")
    big = Blame(2, "keygen/r1", "equivocation", b"x" * (st.MAX_SESSION_EVIDENCE + 1))
    s.end_session("aa", ok=False, blame=[small, big], error="aborted", unreachable=[2])
    rec = s.get_session("aa")
    assert rec.unreachable == (2,)
    assert rec.blame[0] == small
    assert rec.blame[1].evidence.startswith(b"sha256:") and len(rec.blame[1].evidence) == 7 + 32
