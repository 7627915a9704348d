"""tssctl start-up: importing the CLI and building its parser loads none of the heavy libraries
(coordinator/cli_parser.py imports each command's module when it runs), and the lazily imported
commands still run, refuse and list exactly as before."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from coordinator.cli import build_parser, main
from coordinator.cli_parser import ScenarioNames

# What a command such as `tssctl key show` must not pay for: the protocol library (gmpy2, proofs,
# presigning), the signer node, the policy library with its keccak and curve, the database drivers,
# and the drill, backup, reshare and officer code.
HEAVY = (
    "gmpy2",
    "signer.tss.zk",
    "signer.tss.presign",
    "signer.tss.paillier",
    "signer.tss.curve",
    "cryptography.x509",
    "coincurve",
    "Crypto.Hash.keccak",
    "eth_account",
    "signer.policy",
    "signer.node.node",
    "signer.node.backup_kit",
    "psycopg",
    "sqlite3",
    "coordinator.store",
    "coordinator.officer",
    "coordinator.backup_ops",
    "coordinator.reshare_ops",
    "coordinator.key_order_signing",
    "coordinator.drill.scenarios",
    "coordinator.drill.runner",
    "coordinator.cli_officer",
    "coordinator.cli_backup",
    "coordinator.cli_drill",
    "coordinator.cli_btc",
    "pydantic",  # config schemas: only a command that reads a profile or cluster.json needs them
)

COMMANDS = (
    "cluster",
    "key",
    "withdraw",
    "sign-eth",
    "withdraw-btc",
    "sign-message",
    "sweep",
    "request",
    "officer",
    "approve",
    "reject",
    "freeze",
    "unfreeze",
    "policy",
    "audit",
    "recovery",
    "backup",
    "drill",
    "certs",
    "governance",
    "balance",
    "demo",
)


def _python(code: str) -> str:
    argv = [sys.executable, "-c", code]
    done = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=60)  # noqa: S603 - our code
    return done.stdout


def test_importing_the_cli_and_parsing_a_command_loads_no_heavy_module() -> None:
    code = (
        "import json, sys\n"
        "import coordinator.cli\n"
        "coordinator.cli.build_parser().parse_args(['key', 'show', 'k1'])\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    loaded = set(json.loads(_python(code)))
    assert "coordinator.cli_parser" in loaded
    assert sorted(m for m in HEAVY if m in loaded) == []


def test_help_lists_every_command() -> None:
    argv = [sys.executable, "-m", "coordinator.cli", "--help"]
    done = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=60)  # noqa: S603 - our code
    listed = done.stdout.split("{", 1)[1].split("}", 1)[0].split(",")
    assert tuple(listed) == COMMANDS


def test_a_command_imports_its_module_when_it_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "officer-9.key"
    assert main(["officer", "keygen", "--id", "officer-9", "--out", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["id"] == "officer-9"
    assert out.stat().st_mode & 0o777 == 0o600


def test_an_officer_refusal_still_exits_1_with_its_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = tmp_path / "shared.key"
    key.write_text("00" * 32)
    key.chmod(0o644)
    rc = main(["approve", "r1", "--officer", "officer-1", "--key", str(key), "--dir", str(tmp_path)])
    assert rc == 1
    assert capsys.readouterr().err == f"tssctl: key file {key} is accessible to others (mode 644); chmod 600 it\n"


def test_drill_scenarios_are_still_checked_by_the_parser() -> None:
    from coordinator.drill.scenarios import SCENARIOS

    assert sorted(ScenarioNames()) == sorted(SCENARIOS)
    assert build_parser().parse_args(["drill", "--scenario", "restart"]).scenario == "restart"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["drill", "--scenario", "no-such-scenario"])


def test_freeze_scope_defaults_to_every_key() -> None:
    from coordinator.cli_officer import _scope
    from signer.policy import ALL_KEYS

    assert _scope(build_parser().parse_args(["freeze", "--officer", "officer-1"])) == ALL_KEYS
    assert _scope(build_parser().parse_args(["unfreeze", "--officer", "officer-1", "--scope", "k1"])) == "k1"


def test_policy_propose_is_delivered_directly_only_when_asked(tmp_path: Path) -> None:
    from coordinator.cli_officer import _targets

    base = ["policy", "propose", "change.json", "--kind", "policy", "--dir", str(tmp_path)]
    assert _targets(build_parser().parse_args(base)) == {}
    direct = build_parser().parse_args([*base, "--signer", "2=127.0.0.1:7002"])
    assert _targets(direct) == {2: "127.0.0.1:7002"}
    freeze = ["freeze", "--officer", "officer-1", "--signer", "1=127.0.0.1:7001"]
    assert _targets(build_parser().parse_args(freeze)) == {1: "127.0.0.1:7001"}
