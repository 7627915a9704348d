"""No tssctl command prints a traceback for bad input: every subcommand, run with bad arguments,
prints one line on stderr and exits with a documented code (coordinator/cli_errors.py,
docs/operations.md "Exit codes"); with --json, stdout holds one JSON error object too.

Before, `--data zz`, `--nonce -1` and `request list --limit -1` ended in tracebacks, argparse printed
its usage block, and an unknown officer read "cannot read key file". The cluster here is laid out
(certificates, keys, cluster.json) but not running: a command that reaches for the coordinator
finds it unavailable (exit 3).
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
from collections.abc import Iterator

import pytest

from coordinator import cluster
from coordinator.cli import main
from coordinator.cli_errors import EXIT_FAILED, EXIT_INTERNAL, EXIT_UNAVAILABLE, EXIT_USAGE, REASONS
from coordinator.cli_parser import build_parser

DOCUMENTED = {1, 2, 3, 4}
PROGRESS = re.compile(r"^\[ *[0-9.]+s\] ")
TO = "0x000000000000000000000000000000000000dEaD"
F, U, D = EXIT_FAILED, EXIT_USAGE, EXIT_UNAVAILABLE

# (argv, exit code, text the line must hold); "{fake}" is a laid-out cluster that is not running,
# "{none}" a directory with no cluster.
CASES: list[tuple[str, int, str]] = [
    ("cluster up --signers 0 --dir {none}", U, "argument --signers: must be at least 1, not 0"),
    ("cluster down --dir {none}", F, "no cluster in"),
    ("cluster status --dir {none}", F, "no cluster in"),
    ("cluster restart --dir {fake}", F, "name one process"),
    ("cluster restart signer-9 --dir {fake}", F, "no process 'signer-9'"),
    ("cluster add-signer --dir {none}", F, "no cluster in"),
    ("cluster retire-signer --dir {fake}", F, "signer-N"),
    ("cluster replace-signer signerX --dir {fake}", F, "signer-N"),
    ("cluster prepare-standby --dir {none}", F, "no cluster in"),
    ("key create --name k --threshold -2 --dir {fake}", U, "argument --threshold: must be at least 0, not -2"),
    ("key create --name k --dir {fake}", D, "UNAVAILABLE"),
    ("key show k1 --dir {fake}", D, "UNAVAILABLE"),
    ("key list --dir {fake}", D, "UNAVAILABLE"),
    ("key show k1 --dir {none}", F, "for a remote coordinator set TSS_ADDR"),
    ("key refresh --dir {fake}", F, "name the key"),
    ("key reshare k1 --parties 1,x --threshold 2 --dir {fake}", F, "parties"),
    ("'key show' k1", U, "invalid choice: 'key show'"),
    ("key derive k1 --path \"m/0'/5\" --dir {fake}", U, "hardened"),
    ("key addresses k1 --count 0 --dir {fake}", U, "argument --count: must be at least 1, not 0"),
    ("key addresses k1 --count 2 --network dogecoin --dir {fake}", U, "--network dogecoin"),
    (f"withdraw --key k --to {TO} --value 1 --nonce 3 --allocate-nonce --chain-id 1 --dir {{fake}}", U, "not both"),
    ("key reshare k1 --parties 1,2 --threshold zero --dir {fake}", U, "not a whole number: 'zero'"),
    (f"withdraw --key k --to {TO} --value 1 --data zz --dir {{fake}}", U, "argument --data: not hex bytes: 'zz'"),
    (f"withdraw --key k --to {TO} --value 1 --nonce -1 --dir {{fake}}", U, "argument --nonce: must be at least 0"),
    (f"withdraw --key k --to {TO} --value 1 --nonce {2**64} --dir {{fake}}", U, "must be at most"),
    (f"sign-eth --key k --to {TO} --value 1e18 --dir {{fake}}", U, "argument --value: not a whole number: '1e18'"),
    (f"sign-eth --key k --to {TO} --value 1 --path \"m/0'\" --nonce 0 --chain-id 1 --dir {{fake}}", U, "hardened"),
    (f"withdraw --key k --to {TO} --value 1 --nonce 0 --network eip155:1 --dir {{fake}}", D, "UNAVAILABLE"),
    (f"withdraw --key k --to {TO} --value 1 --network eip155:1 --dir {{fake}}", U, "give the transaction's --nonce"),
    (f"withdraw --key k --to {TO} --value 1 --nonce 0 --dir {{fake}}", U, "name the network with --network"),
    (f"withdraw --key k --to {TO} --amount 1.5x --nonce 0 --chain-id 1 --dir {{fake}}", U, "argument --amount"),
    (f"sweep --key k --hot-balance 5 --cap 1 --reserve 2 --to {TO} --dir {{fake}}", U, "must not exceed the cap"),
    ("withdraw-btc --key k --psbt {none}/missing.psbt --dir {fake}", U, "missing.psbt: No such file"),
    ("withdraw-btc --key k --psbt {fake}/cluster.json --dir {fake}", U, "neither a binary PSBT nor base64 text"),
    ("withdraw-btc --key k --psbt {fake}/cluster.json --kind approval --dir {fake}", U, "invalid choice: 'approval'"),
    ("withdraw-btc --psbt {fake}/cluster.json --dir {fake}", U, "the following arguments are required: --key"),
    ("sign-message --key k --dir {fake}", U, "one of the arguments --eip191 --eip712 is required"),
    ("sign-message --key k --eip191 hi --eip712 x.json --dir {fake}", U, "not allowed with argument"),
    ("sign-message --key k --eip191 '' --dir {fake}", U, "--eip191: the message must be 1-65536 bytes"),
    ("sign-message --key k --eip712 {none}/missing.json --dir {fake}", U, "missing.json: No such file"),
    ("sign-message --key k --eip712 {fake}/cluster.json --dir {fake}", U, "not EIP-712 typed data"),
    ("sign-message --key k --path \"m/0'\" --eip191 hi --dir {fake}", U, "hardened"),
    ("sign-message --key k --eip191 hi --dir {fake}", D, "UNAVAILABLE"),
    ("request show --dir {fake}", F, "needs a request id"),
    ("request list --limit -1 --dir {fake}", U, "argument --limit: must be at least 0, not -1"),
    ("request list --state bogus --dir {fake}", D, "UNAVAILABLE"),
    ("officer keygen --id 'no spaces' --out {none}/k", U, "an id is 1-64 characters"),
    ("officer console --officer nobody --dir {fake}", F, "unknown officer 'nobody'"),
    ("officer console --officer officer-1 --port 70000 --dir {fake}", U, "--port is 0"),
    ("officer console --officer officer-1 --dir {fake}", D, "UNAVAILABLE"),
    ("approve r1 --officer nobody --dir {fake}", F, "unknown officer 'nobody'"),
    ("approve r1 --yes --officer officer-1 --dir {fake}", D, "UNAVAILABLE"),
    # Without --yes and without a terminal to ask on, refused before the coordinator is asked.
    ("approve r1 --officer officer-1 --dir {fake}", U, "stdin is not a terminal"),
    ("reject r1 --officer officer-1 --key {none}/missing.key --dir {fake}", F, "cannot read key file"),
    ("freeze --officer officer-1 --signer bogus --dir {fake}", F, "bogus"),
    ("unfreeze --officer officer-1 --key a --key b --dir {fake}", F, "one --key per identity"),
    ("policy show --dir {fake}", D, "UNAVAILABLE"),
    ("policy propose --kind policy --admin admin-1 --dir {fake}", F, "propose"),
    ("policy propose {none}/missing.json --kind policy --admin admin-1 --dir {fake}", F, "cannot read"),
    ("audit export --since -1 --dir {fake}", U, "argument --since: must be at least 0, not -1"),
    ("audit verify --file {none}/missing.jsonl --dir {fake}", F, "cannot read"),
    ("recovery keygen --dir {fake}", F, "--out"),
    ("recovery pin --dir {fake}", F, "recovery"),
    ("recovery split --threshold 3 --shares 2 --dir {fake}", F, "recovery"),
    ("backup export --dir {fake}", F, "--key"),
    ("backup verify --dir {fake}", F, "kit"),
    ("backup restore {none}/missing.kit --dir {fake}", F, "needs --recovery-key"),
    ("backup restore {none}/missing.kit --recovery-key {none}/k --dir {fake}", F, "missing.kit"),
    ("drill run --dir {none}", F, "drill --scenario NAME (one of restart"),
    ("drill run --scenario restart --dir {none}", F, "no cluster in"),
    ("drill verify --dir {fake}", F, "tssctl drill verify REPORT.json"),
    ("certs init --certs /dev/null/c", U, "/dev/null/c: Not a directory"),
    ("certs issue --role signer --certs {none}/c", F, "no CA in"),
    ("certs rotate nobody --certs {none}/c", F, "no CA in"),
    ("certs rotate-ca --certs {none}/c", F, "no CA in"),
    ("certs retire-ca --certs {none}/c", F, "no CA in"),
    ("certs bogus", U, "argument action: invalid choice: 'bogus'"),
    ("certs issue --role wizard --certs {none}/c", U, "argument --role: invalid choice: 'wizard'"),
    ("governance genesis --officer zz --admin-key a={none}/k --policy {none}/p --out {none}/g", U, "expected ID=VALUE"),
    ("governance genesis --officer o=00 --admin-key a={none}/k --policy {none}/p --out {none}/g", U, "32 bytes, not 1"),
    ("governance genesis --officer o=" + "11" * 32 + " --policy {none}/p --out {none}/g", U, "--admin-key ID=FILE"),
    (
        "governance genesis --officer o=" + "11" * 32 + " --admin-key a={none}/k --policy {none}/p --out {none}/g",
        U,
        "--admin-key a: ",
    ),
    ("governance genesis --out {none}/g", U, "the following arguments are required: --policy"),
    ("governance install {none}/g --dir {fake}", U, "registry.json: No such file or directory"),
    (f"balance report --chain-id 1 --address {TO} --next-nonce 0 --dir {{fake}}", U, "give the balance as --amount"),
    (f"balance report --chain-id 1 --address {TO} --next-nonce 0 --amount 1.5 --wei 1 --dir {{fake}}", U, "--amount"),
    (f"balance report --chain-id 0 --address {TO} --next-nonce 0 --wei 1 --dir {{fake}}", U, "--chain-id"),
    (f"balance report --chain-id 1 --address {TO} --next-nonce 0 --amount 0.0000000000000000001", U, "18 decimals"),
    ("balance report-utxos --network regtest --address a --utxos {none}/u.json --dir {fake}", U, "u.json: No such"),
    ("balance report-utxos --network regtest --address a --utxos {fake}/cluster.json --dir {fake}", U, "a JSON list"),
    ("balance report-utxos --address a --utxos {fake}/cluster.json --dir {fake}", U, "required: --network"),
    ("balance report-utxos --network regtest --address a --utxos {fake}/cluster.json --at -1", U, "argument --at"),
    ("governance install {fake}/certs --dir {fake}", U, "registry.json"),
    ("demo --level 99", U, "argument --level: invalid choice: '99'"),
    ("no-such-command", U, "invalid choice: 'no-such-command'"),
]


def _leaves(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every runnable command: subcommands, and the choices of an `action` argument."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if subs:
        for name, sub in subs[0].choices.items():
            yield from _leaves(sub, (*path, name))
        return
    actions = [a for a in parser._actions if not a.option_strings and a.dest == "action" and a.choices]
    yield from ((*path, str(c)) for c in actions[0].choices) if actions else [path]


@pytest.fixture(scope="module")
def dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A laid-out cluster whose processes are not running (nothing listens on its ports)."""
    fake = tmp_path_factory.mktemp("fake")
    signers, coordinator = cluster.layout(fake, 3, "112")
    info = cluster.ClusterInfo(fake, coordinator, signers, {}, 2, "112")
    (fake / "cluster.json").write_text(json.dumps(info.to_json()))
    return {"fake": str(fake), "none": str(tmp_path_factory.mktemp("none"))}


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def _split(text: str, dirs: dict[str, str]) -> list[str]:
    return shlex.split(text.format(**dirs))


def test_every_command_has_a_bad_input_case() -> None:
    given = [shlex.split(argv) for argv, *_ in CASES]
    leaves = list(_leaves(build_parser()))
    assert len(leaves) >= 35
    assert [" ".join(leaf) for leaf in leaves if not any(g[: len(leaf)] == list(leaf) for g in given)] == []


@pytest.mark.parametrize("leaf", [" ".join(leaf) for leaf in _leaves(build_parser())])
def test_an_unknown_option_is_one_usage_line(leaf: str, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = _run([*leaf.split(), "--no-such-option"], capsys)
    assert rc == EXIT_USAGE and out == ""
    assert err.count("\n") == 1 and err.startswith("tssctl: ") and "--help)" in err, err
    rc, out, err = _run([*leaf.split(), "--no-such-option", "--json"], capsys)
    assert rc == EXIT_USAGE and err.count("\n") == 1
    assert json.loads(out) == {"error": err.strip().removeprefix("tssctl: "), "reason": "usage", "exit_code": 2}


@pytest.mark.parametrize(("argv", "code", "text"), CASES, ids=[c[0].split(" --dir")[0][:60] for c in CASES])
def test_bad_input_is_one_line_and_a_documented_exit_code(
    argv: str, code: int, text: str, dirs: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    args = _split(argv, dirs)
    rc, out, err = _run(args, capsys)
    assert rc != EXIT_INTERNAL, err
    lines = [line for line in err.splitlines() if not PROGRESS.match(line)]  # "[  0.0s] drill restart: ..."
    assert (rc, len(lines), lines[0].startswith("tssctl: ")) == (code, 1, True), err
    assert text in lines[0] and "Traceback" not in err
    rc_json, out, err_json = _run([*args, "--json"], capsys)
    assert rc_json == rc and lines[0] in err_json.splitlines()
    assert json.loads(out) == {"error": lines[0].removeprefix("tssctl: "), "reason": REASONS[rc], "exit_code": rc}
    assert rc in DOCUMENTED
