"""The drill report: what ran, when, what it proved, and the coordinator's attestation over it.

A report is one JSON object (`FORMAT`). Its digest is SHA-256 over the canonical JSON
(`audit.canonical_json`: sorted keys, no spaces) of every field except `attestation`, so the same
report always has the same digest and any change to a signed field changes it. Times are ISO-8601
UTC strings and durations whole milliseconds (no floats in what is signed).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..audit import canonical_json

FORMAT = "tss-custody-drill/v1"
ATTESTATION_KIND = "drill"
"""The `kind` the coordinator signs a drill report under."""


def utc_now() -> str:
    """The current time as an ISO-8601 UTC string with milliseconds."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(slots=True)
class Step:
    """One step of a drill: its name, what it did, when it started and ended, and how it went."""

    name: str
    detail: str = ""
    started_at: str = ""
    ended_at: str = ""
    ms: int = 0
    outcome: str = "ok"
    error: str = ""

    def to_json(self) -> dict[str, Any]:
        """The step as a JSON object."""
        return {
            "name": self.name,
            "detail": self.detail,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "ms": self.ms,
            "outcome": self.outcome,
            "error": self.error,
        }


@dataclass(slots=True)
class DrillReport:
    """Everything a drill records; `body()` is what the coordinator signs."""

    scenario: str
    summary: str
    cluster: dict[str, Any]
    victim: int
    started_at: str = ""
    finished_at: str = ""
    key: dict[str, Any] = field(default_factory=dict)
    address_before: str = ""
    address_after: str = ""
    public_key_after: str = ""
    steps: list[Step] = field(default_factory=list)
    signatures: list[dict[str, Any]] = field(default_factory=list)
    rto_ms: int | None = None
    outcome: str = "failed"
    failure: str = ""
    audit: dict[str, Any] = field(default_factory=dict)
    attestation: dict[str, Any] | None = None

    def body(self) -> dict[str, Any]:
        """The signed part: every field but the attestation."""
        return {
            "format": FORMAT,
            "scenario": self.scenario,
            "summary": self.summary,
            "cluster": self.cluster,
            "victim": self.victim,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "key": self.key,
            "address_before": self.address_before,
            "address_after": self.address_after,
            "public_key_after": self.public_key_after,
            "steps": [s.to_json() for s in self.steps],
            "signatures": self.signatures,
            "rto_ms": self.rto_ms,
            "outcome": self.outcome,
            "failure": self.failure,
            "audit": self.audit,
        }

    def to_json(self) -> dict[str, Any]:
        """The whole report (body plus attestation, when there is one)."""
        return {**self.body(), "attestation": self.attestation}


def digest_of(body: dict[str, Any]) -> bytes:
    """SHA-256 of the canonical JSON of a report body (a report without its `attestation`)."""
    return hashlib.sha256(canonical_json(body).encode()).digest()


def body_of(report: dict[str, Any]) -> dict[str, Any]:
    """A loaded report's signed part."""
    return {k: v for k, v in report.items() if k != "attestation"}


def render_markdown(report: dict[str, Any]) -> str:
    """The report for humans (the JSON file is the one that verifies)."""
    c = report.get("cluster", {})
    key = report.get("key", {})
    rto = report.get("rto_ms")
    lines = [
        f"# Disaster-recovery drill: {report.get('scenario')}",
        "",
        str(report.get("summary", "")),
        "",
        f"- Outcome: **{report.get('outcome')}**" + (f" ({report['failure']})" if report.get("failure") else ""),
        f"- RTO (kill to first verified signature after recovery): {'n/a' if rto is None else f'{rto / 1000:.2f} s'}",
        f"- Cluster: {c.get('t')}-of-{c.get('n')} at the {c.get('level')}-bit level ({c.get('dir')})",
        f"- Signer drilled: signer-{report.get('victim')}",
        f"- Key: {key.get('key_id')} epoch {key.get('epoch_before')} -> {key.get('epoch_after')}",
        f"- Public key: `{key.get('public_key')}`"
        + (" (unchanged)" if key.get("public_key") == report.get("public_key_after") else " (CHANGED)"),
        f"- Address before: `{report.get('address_before')}`, after: `{report.get('address_after')}`",
        f"- Started {report.get('started_at')}, finished {report.get('finished_at')}",
        "",
        "## Steps",
        "",
        "| # | step | started | ended | ms | outcome |",
        "|---|------|---------|-------|----|---------|",
    ]
    for i, s in enumerate(report.get("steps", []), 1):
        outcome = s["outcome"] + (f": {s['error']}" if s.get("error") else "")
        name = s["name"] + (f" ({s['detail']})" if s.get("detail") else "")
        lines.append(f"| {i} | {name} | {s['started_at']} | {s['ended_at']} | {s['ms']} | {outcome} |")
    lines += ["", "## Signatures", ""]
    for sig in report.get("signatures", []):
        lines.append(f"- {sig['label']}: request {sig['request_id']}, tx `{sig['tx_hash']}`, from `{sig['address']}`")
    audit = report.get("audit", {})
    lines += ["", f"## Audit entries produced ({audit.get('first_seq')}..{audit.get('last_seq')})", ""]
    lines += ["| seq | kind | subject | event | hash |", "|-----|------|---------|-------|------|"]
    for e in audit.get("entries", []):
        lines.append(f"| {e['seq']} | {e['kind']} | {e['subject']} | {e['event']} | `{e['hash'][:16]}…` |")
    a = report.get("attestation")
    lines += ["", "## Attestation", ""]
    if a:
        lines += [
            f"- Report digest (SHA-256, canonical JSON without the attestation): `{a['digest']}`",
            f"- Recorded as audit entry {a['audit_seq']} (`{a['audit_hash']}`)",
            f"- Coordinator audit-key signature: `{a['signature']}`",
            "- Check: `tssctl drill verify REPORT.json` (signature, digest, audit references)",
        ]
    else:
        lines.append("- NOT attested (the coordinator could not be reached); this report does not verify")
    return "\n".join(lines) + "\n"


def write(report: DrillReport, out: Path) -> tuple[Path, Path]:
    """Write `out` (.json) and the Markdown next to it (.md); returns both paths."""
    out = Path(out)
    json_path = out if out.suffix == ".json" else out.with_suffix(".json")
    json_path.parent.mkdir(parents=True, exist_ok=True)
    data = report.to_json()
    json_path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    md_path = json_path.with_suffix(".md")
    md_path.write_text(render_markdown(data))
    return json_path, md_path
