"""The tssctl command line's grammar: every command, its options and the function that runs it.

Building the parser loads no command's dependencies: each command is `command(module, name)`, a
function imported when it runs, so `tssctl key show` loads neither the protocol library nor the
drill, backup or reshare code (tests/unit/coordinator/test_cli_imports.py). cli_reshare.py
registers its own `key refresh|reshare` parsers (its module imports stay light for that reason).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from typing import Any

from . import cli_balance, cli_certs, cli_governance, cli_hd, cli_message, cli_reshare
from .cli_common import DEFAULT_DIR, add_common, add_tx_options, command
from .cli_errors import ArgumentParser, hex_data, positive, uint64, uint256
from .cli_evm import add_amount_options

__all__ = ["build_parser"]


class ScenarioNames:
    """The drill's scenario names as argparse `choices`, read from coordinator/drill/scenarios.py
    only when argparse checks a `--scenario` or prints the drill's help."""

    def _names(self) -> list[str]:
        from .drill.scenarios import SCENARIOS

        return sorted(SCENARIOS)

    def __contains__(self, name: object) -> bool:
        return name in self._names()

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())


def _version() -> str:
    """The installed package's version (pyproject.toml), so it cannot drift from a constant here."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tss-custody")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    """The tssctl argument parser."""
    ap = ArgumentParser(prog="tssctl", description="threshold-ECDSA custody signing: command line")
    ap.add_argument("--json", action="store_true", help="machine-readable output")
    ap.add_argument("--version", action="version", version=f"tssctl {_version()}", help="print the version and exit")
    sub = ap.add_subparsers(dest="command", required=True)

    c = sub.add_parser("cluster", help="local cluster")
    c.add_argument(
        "action", choices=["up", "down", "status", "restart", *cli_reshare.CLUSTER_ACTIONS], help="what to do"
    )
    c.add_argument("name", nargs="?", help="restart: the process (signer-N or coordinator); retire/replace: signer-N")
    c.add_argument("--signers", type=positive, default=3, help="up: number of signers")
    c.add_argument("--threshold", type=positive, default=2, help="up: signatures needed (t of n)")
    c.add_argument("--level", choices=["128", "112"], default="128", help="up: security level in bits (Paillier size)")
    add_common(c)
    c.set_defaults(func=command("coordinator.cli", "cmd_cluster"))

    k = sub.add_parser("key", help="keys")
    ksub = k.add_subparsers(dest="action", required=True)
    kc = ksub.add_parser("create")
    kc.add_argument("--name", required=True, help="a label for the key")
    kc.add_argument("--threshold", type=uint64, default=0, help="signatures needed (0: the cluster's)")
    kc.add_argument("--level", choices=["128", "112"], default=None, help="security level (default: the cluster's)")
    add_common(kc, "operator")
    ks = ksub.add_parser("show")
    ks.add_argument("key_id", help="the key to show")
    add_common(ks, "operator")
    kl = ksub.add_parser("list", help="every key, oldest first, following pages")
    add_common(kl, "operator")
    cli_reshare.add_key_parsers(ksub)
    cli_hd.add_parsers(ksub, add_common, uint64, positive)
    k.set_defaults(func=command("coordinator.cli", "cmd_key"))

    for name, text in (("withdraw", "submit a withdrawal (EIP-1559)"), ("sign-eth", "the same as withdraw")):
        s = sub.add_parser(name, help=text)
        s.add_argument("--key", required=True, help="the key id to sign with")
        s.add_argument("--to", required=True, help="destination address (0x..)")
        s.add_argument("--value", type=uint256, default=None, help="base units of the native coin (or --amount)")
        s.add_argument("--data", type=hex_data, default="", help="calldata, hex")
        add_amount_options(s)
        add_tx_options(s)
        add_common(s, "backend")
        s.set_defaults(func=command("coordinator.cli", "cmd_withdraw"))

    wb = sub.add_parser("withdraw-btc", help="submit a Bitcoin spend: an unsigned PSBT of the key's P2WPKH coins")
    wb.add_argument("--key", required=True, help="the key id whose coins the PSBT spends")
    wb.add_argument("--psbt", required=True, metavar="FILE", help="unsigned PSBT, binary or base64 (inputs with paths)")
    wb.add_argument(
        "--kind", choices=["withdrawal", "cold_sweep"], default="withdrawal", help="withdrawal, or a cold sweep"
    )
    wb.add_argument("--idempotency-key", default="", help="default: a fresh random one")
    add_common(wb, "backend")
    wb.set_defaults(func=command("coordinator.cli_btc", "cmd_withdraw_btc"))
    cli_message.add_parsers(sub, add_common)

    sw = sub.add_parser("sweep", help="propose a cold sweep when the hot balance exceeds the cap")
    sw.add_argument("--key", required=True, help="the hot wallet's key id")
    sw.add_argument("--hot-balance", type=uint256, required=True, help="reported hot balance, wei")
    sw.add_argument("--cap", type=uint256, required=True, help="sweep when the balance exceeds this, wei")
    sw.add_argument("--reserve", type=uint256, required=True, help="leave this much in the hot wallet, wei")
    sw.add_argument("--to", required=True, help="the registered cold address")
    add_tx_options(sw)
    add_common(sw, "backend")
    sw.set_defaults(func=command("coordinator.cli", "cmd_sweep"))

    r = sub.add_parser("request", help="signing requests")
    r.add_argument("action", choices=["show", "list"], help="show one request or list them")
    r.add_argument("request_id", nargs="?", default="", help="show: the request id")
    r.add_argument("--state", default="", help="list: only this state")
    r.add_argument("--key", default="", help="list: only this key id")
    r.add_argument(
        "--limit", type=uint64, default=50, help="list: at most this many, newest first, following pages (0: all)"
    )
    add_common(r, "operator")
    r.set_defaults(func=command("coordinator.cli", "cmd_request"))

    _officer_parsers(sub)
    _backup_parsers(sub)
    _drill_parsers(sub)
    cli_certs.add_parsers(sub, str(DEFAULT_DIR))
    cli_governance.add_parsers(sub)
    cli_balance.add_parsers(sub)

    d = sub.add_parser(
        "demo", help="2-of-3 cluster: keygen, an automatic and an officer-approved withdrawal, verify, shut down"
    )
    d.add_argument("--dir", default="", help="cluster directory (default: a new temporary one)")
    d.add_argument("--level", choices=["128", "112"], default="128", help="security level")
    d.add_argument("--quiet", action="store_true", help="with --json, no progress on stderr")
    d.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS,
        help="machine-readable output (also accepted before the command)",
    )
    d.set_defaults(func=command("coordinator.cli_demo", "cmd_demo"))
    return ap


def _officer_parsers(sub: Any) -> None:
    """Register the officer, admin and auditor commands on tssctl's subparsers."""
    o = sub.add_parser("officer", help="officer and admin keys")
    osub = o.add_subparsers(dest="action", required=True)
    kg = osub.add_parser("keygen", help="new Ed25519 key in FILE (0600); prints the public key")
    kg.add_argument("--id", required=True, help="the officer's (or admin's) id")
    kg.add_argument("--out", required=True, help="the private key file to write (mode 0600)")
    kg.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS,
        help="machine-readable output (also accepted before the command)",
    )
    kg.set_defaults(func=command("coordinator.cli_officer", "cmd_officer"))

    def delivery_opts(p: argparse.ArgumentParser) -> None:
        p.add_argument("--signer", action="append", metavar="PARTY=HOST:PORT", help="deliver to this signer (repeat)")
        how = p.add_mutually_exclusive_group()
        how.add_argument("--coordinator-only", action="store_true", help="deliver through the coordinator alone")
        how.add_argument("--signers-only", action="store_true", help="deliver to the signers alone")

    def officer_opts(p: argparse.ArgumentParser) -> None:
        p.add_argument("--officer", required=True, help="your officer id (and certificate name)")
        p.add_argument("--key", default=None, help="your Ed25519 key file (default D/officers/<officer>.key)")
        add_common(p, "the --officer")

    oc = osub.add_parser(
        "console", help="serve this officer's review page on https://127.0.0.1 (approve, reject, freeze)"
    )
    oc.add_argument("--port", type=int, default=0, help="local port (default 0: any free port, printed)")
    oc.add_argument("--cert-out", default="", help="also write the console's self-signed certificate (PEM) here")
    officer_opts(oc)
    delivery_opts(oc)
    oc.set_defaults(func=command("coordinator.cli_console", "cmd_console"))

    a = sub.add_parser("approve", help="review a request's decoded intent, then sign and present an approval")
    a.add_argument("request_id", help="the request to approve")
    a.add_argument(
        "--yes",
        action="store_true",
        help="approve without asking (needed when stdin is not a terminal: without it, approve refuses)",
    )
    a.add_argument("--wait", action="store_true", help="wait until the request is final")
    officer_opts(a)
    a.set_defaults(func=command("coordinator.cli_officer", "cmd_approve"))

    r = sub.add_parser("reject", help="sign and present a rejection")
    r.add_argument("request_id", help="the request to reject")
    r.add_argument("--reason", default="", help="why (recorded and shown with the request)")
    officer_opts(r)
    r.set_defaults(func=command("coordinator.cli_officer", "cmd_reject"))

    f = sub.add_parser("freeze", help="freeze all signing (or one key) at once")
    f.add_argument("--scope", default=None, help="'*' (default) or a key id")
    officer_opts(f)
    delivery_opts(f)
    f.set_defaults(func=command("coordinator.cli_officer", "cmd_freeze"))

    u = sub.add_parser("unfreeze", help="lift a freeze: an order signed by the policy's quorum of officers")
    u.add_argument("--officer", action="append", help="a signing officer (repeat)")
    u.add_argument("--key", action="append", help="that officer's key file (repeat, same order)")
    u.add_argument("--scope", default=None, help="'*' (default) or a key id")
    u.add_argument("--order", default="", help="a partly signed order to add signatures to")
    u.add_argument(
        "--lifts", type=uint64, default=0, help="issued_at of the freeze to lift (default: as the coordinator has it)"
    )
    u.add_argument("--out", default="", help="write the order here instead of delivering it")
    add_common(u, "the first --officer")
    delivery_opts(u)
    u.set_defaults(func=command("coordinator.cli_officer", "cmd_unfreeze"))

    p = sub.add_parser("policy", help="policy and officer registry")
    p.add_argument("action", choices=["show", "propose"], help="what to do")
    p.add_argument("file", nargs="?", default="", help="propose: a document or a change file")
    p.add_argument("--document", choices=["policy", "registry"], default=None, help="show: print that document")
    p.add_argument("--kind", choices=["policy", "registry"], default=None, help="propose: which document")
    p.add_argument("--admin", action="append", help="a signing admin (repeat)")
    p.add_argument("--key", action="append", help="that admin's key file (repeat, same order)")
    p.add_argument("--successor", action="store_true", help="set version and previous_hash to follow the one in force")
    p.add_argument("--out", default="", help="write the signed change here instead of proposing it")
    add_common(p, "the first --admin, else operator")
    delivery_opts(p)
    # Opt-in: a second delivery of a pending loosening restarts its change delay on the signers.
    p.add_argument("--direct", action="store_true", help="propose: also install on every signer directly")
    p.set_defaults(func=command("coordinator.cli_officer", "cmd_policy"))

    au = sub.add_parser("audit", help="the coordinator's audit log")
    au.add_argument("action", choices=["export", "verify"], help="what to do")
    au.add_argument("--since", type=uint64, default=0, help="export: from the checkpoint before this entry")
    au.add_argument("--out", default="", help="export: write to this file")
    au.add_argument("--file", default="", help="verify: an export file (default: export from the coordinator)")
    au.add_argument("--public-key", default="", help="verify: audit public key PEM (default D/coordinator/)")
    au.add_argument("--anchor", default="", help="verify: SEQ:HASH of an entry seen before")
    add_common(au, "auditor")
    au.set_defaults(func=command("coordinator.cli_officer", "cmd_audit"))


def _backup_parsers(sub: Any) -> None:
    """Register `recovery` and `backup` on tssctl's subparsers."""
    r = sub.add_parser("recovery", help="the offline recovery key backups are encrypted to")
    r.add_argument("action", choices=["keygen", "pin", "split"], help="what to do")
    r.add_argument("file", nargs="?", default="", help="pin: the recovery public key file")
    r.add_argument("--out", default="", help="keygen: directory for recovery.pub.json and recovery.key.json")
    r.add_argument("--level", choices=["128", "112"], default="128", help="keygen: security level")
    r.add_argument("--recovery-key", action="append", help="split: the recovery SECRET key file")
    r.add_argument("--threshold", type=uint64, default=0, help="split: shares needed (m)")
    r.add_argument("--shares", type=uint64, default=0, help="split: shares made (k), one per recovery officer")
    add_common(r)
    r.set_defaults(func=command("coordinator.cli_backup", "cmd_recovery"))

    b = sub.add_parser("backup", help="verifiable encrypted backups of the signers' shares")
    b.add_argument("action", choices=["export", "verify", "restore"], help="what to do")
    b.add_argument("kit", nargs="?", default="", help="verify, restore: the kit file")
    b.add_argument("--key", default="", help="export: the key id")
    b.add_argument("--out", default="", help="export: directory for the kits")
    b.add_argument("--recovery-public", default="", help="the recovery public key the kits must be encrypted to")
    b.add_argument(
        "--recovery-key", action="append", help="restore: the recovery SECRET key file, or (repeated) m share files"
    )
    b.add_argument("--data-dir", default="", help="restore: a fresh node's data directory (else the local cluster)")
    b.add_argument("--kek", default="", help="restore --data-dir: the node's KEK file")
    add_common(b, "admin-1 (export) / operator (restore)")
    b.set_defaults(func=command("coordinator.cli_backup", "cmd_backup"))


def _drill_parsers(sub: Any) -> None:
    """Register `tssctl drill` on tssctl's subparsers."""
    d = sub.add_parser("drill", help="disaster-recovery drill with an attested report; `drill verify REPORT`")
    d.add_argument("action", nargs="?", choices=["run", "verify"], default="run", help="run a drill or verify a report")
    d.add_argument("report", nargs="?", default="", help="verify: the report (.json)")
    # Choices set after add_argument: add_argument formats the option's usage once (to check its
    # metavar), which would read the names and so load every scenario's code.
    d.add_argument("--scenario", default="", help="run: the scenario (see the choices)").choices = ScenarioNames()
    d.add_argument("--fresh", action="store_true", help="start a throw-away local cluster (stopped afterwards)")
    d.add_argument("--dir", default="", help=f"cluster directory (default {DEFAULT_DIR}; --fresh: a new one)")
    d.add_argument("--signers", type=positive, default=3, help="--fresh: number of signers")
    d.add_argument("--threshold", type=positive, default=2, help="--fresh: threshold")
    d.add_argument("--level", choices=["128", "112"], default="128", help="--fresh: security level")
    d.add_argument("--key", default="", help="key id to drill (default: create one)")
    d.add_argument("--signer", type=uint64, default=0, help="the signer to kill (default: the last)")
    d.add_argument("--out", default="", help="report path (.json; the .md goes next to it)")
    d.add_argument("--allow-wipe", action="store_true", help="let a wiping scenario run on a running cluster")
    d.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="scenario option")
    d.add_argument("--public-key", default="", help="verify: audit public key PEM (default D/coordinator/)")
    d.add_argument("--audit-file", default="", help="verify: an audit export (default: from the cluster)")
    d.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS,
        help="machine-readable output (also accepted before the command)",
    )
    d.set_defaults(func=command("coordinator.cli_drill", "cmd_drill"))
