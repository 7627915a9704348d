"""tssctl drill: run a disaster-recovery scenario on a local cluster and verify its report.

tssctl drill --scenario restart|refresh|lose-one|restore-backup|reshare-replace [--fresh]
             [--dir D] [--level 128|112] [--key KEY_ID] [--signer N] [--out FILE.json] [--allow-wipe]
             [--set NAME=VALUE]
tssctl drill verify REPORT.json [--dir D] [--public-key PEM] [--audit-file EXPORT]

A drill writes FILE.json (attested by the coordinator) and FILE.md. `verify` exits 0 for an
authentic report of a passed drill, 2 for an authentic report of a failed drill, 1 (one line on
stderr) for anything that does not verify.
"""

from __future__ import annotations

import argparse
import io
import json
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

from . import audit, cluster
from .cli_common import DEFAULT_DIR, emit, progress
from .cli_errors import CliError
from .client import CoordinatorClient
from .drill import report as drill_report
from .drill.runner import DrillFailure, DrillOptions, run_drill
from .drill.scenarios import SCENARIOS
from .drill.verify import DrillVerifyError, verify_report
from .trail import audit_public_key_path


def _options(pairs: list[str]) -> dict[str, str]:
    out = {}
    for p in pairs:
        name, sep, value = p.partition("=")
        if not sep or not name:
            raise CliError(f"--set takes NAME=VALUE, got {p!r}")
        out[name] = value
    return out


def cmd_drill_run(args: argparse.Namespace) -> int:
    """Run one scenario; write the report; exit 0 only if the drill passed and was attested."""
    if not args.scenario:
        raise CliError(f"tssctl drill --scenario NAME (one of {', '.join(SCENARIOS)})")
    scenario = SCENARIOS[args.scenario]
    try:
        scenario.check()  # before anything is created or touched
    except DrillFailure as exc:
        raise CliError(str(exc)) from None
    if args.fresh:
        root = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="tss-drill-", dir=_run_dir()))
    else:
        root = Path(args.dir or DEFAULT_DIR)
        if scenario.wipes and not args.allow_wipe:
            raise CliError(
                f"scenario {scenario.name} wipes a signer's store in the running cluster in {root}; "
                "pass --allow-wipe, or --fresh for a throw-away cluster"
            )
    say = progress(False)
    say(f"drill {scenario.name}: {scenario.summary}")
    opts = DrillOptions(
        root, args.fresh, args.signers, args.threshold, args.level, args.key, args.signer, _options(args.set)
    )
    try:
        report = run_drill(scenario, opts, say)
    except DrillFailure as exc:
        raise CliError(str(exc)) from None
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    out = Path(args.out) if args.out else root / "drills" / f"{scenario.name}-{stamp}.json"
    json_path, md_path = drill_report.write(report, out)
    rto = "n/a" if report.rto_ms is None else f"{report.rto_ms / 1000:.2f}s"
    human = f"drill {scenario.name} {report.outcome}: RTO {rto}; report {json_path} and {md_path}"
    if report.failure:
        human += f"\nfailure: {report.failure}"
    emit(args, {"report": str(json_path), "markdown": str(md_path), **report.to_json()}, human)
    return 0 if report.outcome == "passed" and report.attestation else 1


def _audit_lines(args: argparse.Namespace, root: Path) -> list[str]:
    """The audit log from seq 1: an export file, the running coordinator, or its database file."""
    if args.audit_file:
        return Path(args.audit_file).read_text().splitlines()
    info = cluster.ClusterInfo.load(root)
    pid = info.pids.get("coordinator")
    if pid and cluster._alive(pid):
        with CoordinatorClient(info.coordinator, info.client_tls("auditor")) as c:
            return c.export_audit(0)
    db = root / "coordinator" / "coordinator.db"  # a stopped cluster (e.g. after --fresh): read its file
    if not db.exists():
        raise CliError(f"no audit log: the coordinator in {root} is not running and {db} does not exist")
    try:
        conn = sqlite3.connect(db.resolve().as_uri() + "?mode=ro", uri=True)
        try:
            out = io.StringIO()
            audit.export(conn, out, 0)
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise CliError(f"cannot read the audit log in {db}: {exc}") from None
    return out.getvalue().splitlines()


def cmd_drill_verify(args: argparse.Namespace) -> int:
    """Check an attested report: digest, coordinator signature, audit references."""
    if not args.report:
        raise CliError("tssctl drill verify REPORT.json")
    root = Path(args.dir or DEFAULT_DIR)
    key_path = Path(args.public_key) if args.public_key else audit_public_key_path(root / "coordinator" / "x.db")
    try:
        report: Any = json.loads(Path(args.report).read_text())
        public_key = audit.load_public_key(key_path.read_bytes())
    except OSError as exc:
        raise CliError(f"cannot read {exc.filename}: {exc.strerror}") from None
    except ValueError as exc:
        raise CliError(f"{args.report} is not JSON: {exc}") from None
    try:
        v = verify_report(report, public_key, _audit_lines(args, root))
    except DrillVerifyError as exc:
        raise CliError(f"drill report REFUSED: {exc}") from None
    rto = "n/a" if v.rto_ms is None else f"{v.rto_ms / 1000:.2f}s"
    human = (
        f"drill report OK: {v.scenario} {v.outcome}, RTO {rto}; attested as audit entry {v.audit_seq}, "
        f"{v.entries_checked} cited audit entries found in the verified log"
    )
    emit(
        args,
        {
            "ok": True,
            "scenario": v.scenario,
            "outcome": v.outcome,
            "rto_ms": v.rto_ms,
            "audit_seq": v.audit_seq,
            "entries_checked": v.entries_checked,
        },
        human,
    )
    return 0 if v.outcome == "passed" else 2


def cmd_drill(args: argparse.Namespace) -> int:
    """Dispatch `tssctl drill` and `tssctl drill verify`."""
    return cmd_drill_verify(args) if args.action == "verify" else cmd_drill_run(args)


def _run_dir() -> Path:
    d = Path("run")
    d.mkdir(exist_ok=True)
    return d
