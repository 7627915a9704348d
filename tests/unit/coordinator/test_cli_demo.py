"""`tssctl demo` without --json ends with a short human summary (it printed a 70-line JSON object),
and a long step (keygen with fresh safe primes, 30-70 s) says it is still running."""

from __future__ import annotations

import json
import time

from coordinator.cli_common import ticking
from coordinator.cli_demo import summary

RECORD = {
    "key_id": "k-1",
    "level": "128",
    "address": "0xAbC",
    "tx_hash": "0x11",
    "policy_reason": "auto_tier",
    "approval_flow": {"approved_by": ["officer-1", "officer-2"], "tx_hash": "0x22"},
    "timings_s": {"key": 41.2, "sign": 0.8, "approval_flow": 3.1, "total": 52.4},
    "dir": "run/tss-demo-x",
}


def test_the_summary_is_four_human_lines() -> None:
    text = summary(RECORD)
    lines = text.splitlines()
    assert len(lines) == 4 and not text.startswith("{")
    assert lines[0] == "demo passed in 52s: 2-of-3 key k-1 at the 128-bit level, address 0xAbC (keygen 41.2s)"
    assert "approved by officer-1, officer-2" in lines[2] and "tx 0x22" in lines[2]
    assert "--json" in lines[3]
    json.dumps(RECORD)  # the --json record is the same dict


def test_a_long_step_reports_that_it_is_still_running() -> None:
    said: list[str] = []
    with ticking(said.append, "keygen (fresh safe primes)", every=0.02):
        time.sleep(0.1)
    assert said[0] == "keygen (fresh safe primes)"
    assert len(said) >= 3 and all(s.startswith("  still keygen: ") for s in said[1:])
    count = len(said)
    time.sleep(0.05)
    assert len(said) == count  # the ticker stopped with the block
