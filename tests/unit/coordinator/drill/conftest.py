"""Fixtures: an audit log with a few service entries, and a drill report attested over it."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from coordinator import audit
from coordinator.attestation import attest
from coordinator.audit import AuditLog
from coordinator.drill.report import ATTESTATION_KIND, DrillReport, Step, digest_of
from coordinator.drill.verify import audit_entries

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))


@dataclass
class Attested:
    log: AuditLog
    report: dict[str, Any]

    def lines(self) -> list[str]:
        out = io.StringIO()
        self.log.export(out, 0)
        return out.getvalue().splitlines()


def sample_report() -> DrillReport:
    """A passed lose-one drill (no audit references yet)."""
    r = DrillReport("lose-one", "kill -9 and wipe one signer", {"n": 3, "t": 2, "level": "112", "dir": "/d"}, 3)
    r.started_at, r.finished_at = "2026-12-05T23:00:00.000Z", "2026-12-05T23:00:40.000Z"
    r.key = {"key_id": "k1", "public_key": "02" + "ab" * 32, "epoch_before": 0, "epoch_after": 0}
    r.address_before = r.address_after = "0x000000000000000000000000000000000000bEEF"
    r.public_key_after = "02" + "ab" * 32
    r.steps = [
        Step("kill -9", "signer-3, pid 42", "2026-12-05T23:00:01.000Z", "2026-12-05T23:00:01.020Z", 20),
        Step("sign", "with the remaining 2 signers", "2026-12-05T23:00:01.020Z", "2026-12-05T23:00:02.000Z", 980),
    ]
    r.signatures = [{"label": "after", "request_id": "r1", "tx_hash": "0x" + "11" * 32, "address": r.address_after}]
    r.rto_ms, r.outcome = 1000, "passed"
    return r


def attest_report(log: AuditLog, r: DrillReport, first_seq: int = 1) -> dict[str, Any]:
    """Cite the log's entries from `first_seq` on, attest the digest as the runner does."""
    out = io.StringIO()
    log.export(out, 0)
    cited = [e for s, e in sorted(audit_entries(out.getvalue().splitlines()).items()) if s >= first_seq]
    if not r.audit:
        r.audit = {"first_seq": first_seq, "last_seq": cited[-1]["seq"], "entries": cited}
    digest = digest_of(r.body())
    a = attest(log, digest, ATTESTATION_KIND, "operator")
    r.attestation = {
        "kind": ATTESTATION_KIND,
        "digest": digest.hex(),
        "signature": a.signature.hex(),
        "audit_seq": a.audit_seq,
        "audit_hash": a.audit_hash.hex(),
        "public_key": a.public_key.hex(),
    }
    return r.to_json()


@pytest.fixture
def log(tmp_path: Path) -> AuditLog:
    lg = AuditLog(tmp_path / "coordinator.db", KEY, checkpoint_every=4)
    for i in range(6):
        lg.append(audit.REQUEST, f"req-{i}", "backend", [i], {"event": "signed", "n": i})
    return lg


@pytest.fixture
def attested(log: AuditLog) -> Attested:
    return Attested(log, attest_report(log, sample_report(), first_seq=2))
