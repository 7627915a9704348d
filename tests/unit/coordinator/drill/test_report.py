"""The drill report: a stable digest over everything but the attestation, and its Markdown."""

from __future__ import annotations

import json
from pathlib import Path

from coordinator.drill.report import body_of, digest_of, render_markdown, write

from .conftest import Attested, sample_report


def test_digest_is_stable_and_ignores_key_order_and_the_attestation() -> None:
    body = sample_report().body()
    shuffled = json.loads(json.dumps(dict(reversed(list(body.items())))))
    assert digest_of(body) == digest_of(sample_report().body()) == digest_of(shuffled)
    assert digest_of(body_of({**body, "attestation": {"signature": "00"}})) == digest_of(body)
    assert digest_of(body).hex() == digest_of(body).hex() and len(digest_of(body)) == 32


def test_every_signed_field_changes_the_digest() -> None:
    base = digest_of(sample_report().body())
    for name, value in [("rto_ms", 999), ("outcome", "failed"), ("address_after", "0x0"), ("victim", 2)]:
        assert digest_of({**sample_report().body(), name: value}) != base, name
    r = sample_report()
    r.steps[0].ms += 1
    assert digest_of(r.body()) != base


def test_markdown_names_the_outcome_rto_steps_and_attestation(attested: Attested) -> None:
    md = render_markdown(attested.report)
    assert md.startswith("# Disaster-recovery drill: lose-one")
    assert "Outcome: **passed**" in md and "1.00 s" in md and "(unchanged)" in md
    assert "| 1 | kill -9 (signer-3, pid 42) |" in md and "| 2 | sign (with the remaining 2 signers) |" in md
    assert f"Recorded as audit entry {attested.report['attestation']['audit_seq']}" in md
    assert "| 2 | request | req-1 | signed |" in md


def test_markdown_of_an_unattested_failed_report() -> None:
    r = sample_report()
    r.outcome, r.failure, r.rto_ms = "failed", "sign: withdrawal ended in state failed", None
    md = render_markdown(r.to_json())
    assert "Outcome: **failed** (sign: withdrawal ended in state failed)" in md
    assert "RTO (kill to first verified signature after recovery): n/a" in md
    assert "NOT attested" in md


def test_write_puts_json_and_markdown_side_by_side(tmp_path: Path, attested: Attested) -> None:
    r = sample_report()
    json_path, md_path = write(r, tmp_path / "out" / "drill")
    assert json_path == tmp_path / "out" / "drill.json" and md_path == tmp_path / "out" / "drill.md"
    assert json.loads(json_path.read_text()) == r.to_json()
    assert md_path.read_text() == render_markdown(r.to_json())
