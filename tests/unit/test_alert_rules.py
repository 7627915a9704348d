"""deploy/prometheus/alerts.yml: promtool checks the rule file and runs its unit tests (each alert
fires at its threshold after its `for`, not below it and not before); every metric an alert reads
is one the services export, and every alert has its runbook section in docs/operations.md."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "deploy" / "prometheus"
EXPORTERS = [
    REPO / "coordinator" / "metrics.py",
    REPO / "coordinator" / "instruments.py",
    REPO / "signer" / "node" / "metrics.py",
]
# The series each kind of metric exports under its declared name (prometheus_client's suffixes).
SERIES = {
    "GaugeMetricFamily": ("",),
    "CounterMetricFamily": ("_total",),
    "Counter": ("_total",),
    "Histogram": ("_bucket", "_count", "_sum"),
}


def _promtool() -> str:
    tool = shutil.which("promtool")
    if tool is None:  # ./dev test installs Debian's prometheus package, which carries it
        pytest.fail("promtool not found: install Debian's prometheus package (./dev test does)")
    return tool


def _exported() -> set[str]:
    declared = r'\b(GaugeMetricFamily|CounterMetricFamily|Counter|Histogram)\(\s*"(tss_[a-z_]+)"'
    return {
        name + suffix
        for f in EXPORTERS
        for kind, name in re.findall(declared, f.read_text())
        for suffix in SERIES[kind]
    }


def unknown_metrics(rules: str, exported: set[str]) -> list[str]:
    """The tss_* names an alert expression reads that no service exports."""
    used = {m for expr in re.findall(r"expr: (.+)", rules) for m in re.findall(r"\btss_[a-z_]+", expr)}
    return sorted(used - exported)


def test_promtool_accepts_the_rules_and_their_unit_tests_pass() -> None:
    tool = _promtool()
    for args in (["check", "rules", "alerts.yml"], ["test", "rules", "alerts.test.yml"]):
        run = subprocess.run([tool, *args], cwd=RULES, capture_output=True, text=True, timeout=60)  # noqa: S603 (promtool from PATH)
        assert run.returncode == 0, run.stdout + run.stderr


def test_every_metric_an_alert_reads_is_exported() -> None:
    exported = _exported()
    assert {"tss_coordinator_ready", "tss_signer_presignatures"} <= exported  # the scan finds them
    assert {
        "tss_coordinator_signing_seconds_bucket",
        "tss_coordinator_protocol_aborts_total",
        "tss_signer_policy_refusals_total",
        "tss_signer_partial_sign_seconds_count",
    } <= exported
    assert "tss_coordinator_signing_seconds" not in exported  # a histogram has no series by its bare name
    assert unknown_metrics((RULES / "alerts.yml").read_text(), exported) == []
    assert unknown_metrics("expr: tss_signer_renamed == 0", exported) == ["tss_signer_renamed"]


def test_every_alert_has_its_runbook_in_operations() -> None:
    rules = (RULES / "alerts.yml").read_text()
    ops = (REPO / "docs" / "operations.md").read_text()
    alerts = re.findall(r"- alert: (\w+)", rules)
    assert len(alerts) >= 6
    for name in alerts:
        assert f"docs/operations.md#alert-{name.lower()}" in rules, name
        assert f"### Alert: {name}\n" in ops, name
