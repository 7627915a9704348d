"""The sessions row keeps proven blames with their evidence (bounded) and unreachable parties apart."""

from __future__ import annotations

from pathlib import Path

from coordinator import store as st
from signer.tss.errors import Blame


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
