"""tssctl: the operator's, backend's, officer's and auditor's command line. Every command takes --json.

tssctl cluster up [--signers 3] [--threshold 2] [--dir D] [--level 128|112]
tssctl cluster down|status [--dir D]               tssctl cluster restart signer-N|coordinator [--dir D]
tssctl key create --name NAME [--threshold T]      tssctl key show KEY_ID
tssctl key refresh KEY_ID --admin A --admin B     (an admin quorum's order: new shares, same key)
and cli_reshare.py: tssctl key reshare KEY_ID --parties 1,2,4 --threshold 2; tssctl cluster
add-signer | retire-signer signer-N | replace-signer signer-N
tssctl withdraw --key KEY_ID --to 0x.. --value WEI [--chain-id 1] [--nonce 0] [--gas 21000]
                [--max-fee WEI] [--priority-fee WEI] [--data 0x..] [--path m/0/1] [--idempotency-key K]
tssctl sign-eth ...                                 (the same as withdraw)
tssctl sweep --key KEY_ID --hot-balance WEI --cap WEI --reserve WEI --to COLD [tx options]
tssctl request show ID                             tssctl request list [--state S] [--key KEY_ID] [--limit N]
tssctl demo [--dir D] [--level 128|112]
tssctl drill --scenario NAME [--fresh] ... | tssctl drill verify REPORT   (cli_drill.py)
and the officer, admin and auditor commands of cli_officer.py (approve, reject, freeze, unfreeze,
officer keygen, policy show|propose, audit export|verify) and the recovery-key and backup commands of
cli_backup.py (recovery keygen|pin, backup export|verify|restore).

Each command presents a certificate of the cluster directory (D/certs/NAME.pem): backends submit
(`backend`), operators manage keys (`operator`; a refresh or reshare the first --admin), officers approve as
themselves; `--as NAME`
picks another one.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from tsscustody.v1 import common_pb2, coordinator_pb2

from . import cli_reshare, cluster
from .cli_common import (
    DEFAULT_DIR,
    NOT_SIGNED,
    client_for,
    emit,
    key_json,
    progress,
    request_json,
    request_line,
    tx_from_args,
    verify_eth_signature,
)
from .cli_errors import (
    EXIT_NOT_SIGNED,
    EXIT_OK,
    EXIT_UNAVAILABLE,
    ArgumentsRefused,
    CliError,
    UsageError,
    json_wanted,
    report,
)
from .cli_parser import build_parser
from .cli_remote import resolve
from .client import CoordinatorClient

__all__ = ["DEFAULT_DIR", "CliError", "build_parser", "main", "parse_path", "plan_sweep", "verify_eth_signature"]


def parse_path(text: str) -> tuple[int, ...]:
    """'m/0/1' or '0/1' -> (0, 1); hardened steps are refused (they would need the private key)."""
    text = text.strip()
    if text in ("", "m"):
        return ()
    parts = text.split("/")
    if parts[0] == "m":
        parts = parts[1:]
    out = []
    for p in parts:
        if p.endswith(("'", "h")):
            raise UsageError("hardened derivation needs the private key, which never exists; use non-hardened steps")
        if not p.isdigit() or int(p) >= 2**31:
            raise UsageError(f"bad path step {p!r}")
        out.append(int(p))
    return tuple(out)


def plan_sweep(hot_balance: int, cap: int, reserve: int) -> int | None:
    """The amount a cold sweep moves (balance - reserve) when the hot balance exceeds the cap, else None."""
    if min(hot_balance, cap, reserve) < 0:
        raise UsageError("balances, cap and reserve are non-negative wei amounts")
    if reserve > cap:
        raise UsageError("the reserve must not exceed the cap")
    return hot_balance - reserve if hot_balance > cap else None


# --- operator and backend commands -------------------------------------------------------------------
def cmd_cluster(args: argparse.Namespace) -> int:
    root = Path(args.dir)
    if args.action == "up":
        info = cluster.up(root, args.signers, args.threshold, args.level, progress(args.json))
        emit(args, {"dir": str(root), **info.to_json()}, f"cluster up in {root}: coordinator {info.coordinator}")
    elif args.action == "down":
        stopped = cluster.down(root)
        emit(args, {"dir": str(root), "stopped": stopped}, f"stopped {', '.join(stopped) or 'nothing'}")
    elif args.action == "restart":
        if not args.name:
            raise CliError("tssctl cluster restart NAME: name one process (signer-N or coordinator)")
        pid = cluster.restart(root, args.name)
        emit(args, {"dir": str(root), "restarted": args.name, "pid": pid}, f"{args.name} restarted (pid {pid})")
    elif args.action in cli_reshare.CLUSTER_ACTIONS:
        cli_reshare.cmd_cluster(args)
    else:
        return _cluster_status(args, root)
    return EXIT_OK


def _cluster_status(args: argparse.Namespace, root: Path) -> int:
    """Each process's liveness and health; exit 3 unless every process is up and SERVING."""
    info = cluster.ClusterInfo.load(root)
    alive = {name: cluster._alive(pid) for name, pid in info.pids.items()}
    health = cluster.health(info)
    down = sorted({n for n, up in alive.items() if not up} | {n for n, h in health.items() if h != "SERVING"})
    state = {"alive": alive, "health": health, "ok": not down, "down": down}
    lines = [f"{n:<12} {'running' if alive.get(n) else 'STOPPED':<8} {health.get(n, '-')}" for n in sorted(health)]
    lines.append("all processes up and serving" if not down else f"NOT OK: {', '.join(down)} down or not serving")
    emit(args, {"dir": str(root), **info.to_json(), **state}, "\n".join(lines))
    return EXIT_UNAVAILABLE if down else EXIT_OK


def cmd_key(args: argparse.Namespace) -> None:
    with client_for(args, "operator") as c:
        if args.action == "create":
            k = c.create_key(args.name, args.threshold or _cluster_threshold(args), args.level or "")
        else:
            k = c.get_key(args.key_id)
    d = key_json(k)
    human = f"key {d['key_id']} ({d['threshold']}-of-{len(d['parties'])}) address {d['address']} epoch {d['epoch']}"
    if k.committing_epoch:
        human += f"\ncommitting epoch {k.committing_epoch} on the signers (signing waits; the coordinator retries)"
    emit(args, d, human)


def _cluster_threshold(args: argparse.Namespace) -> int:
    if resolve(args) is not None:
        raise UsageError("key create: give --threshold (a remote coordinator has no local cluster to take it from)")
    return cluster.ClusterInfo.load(Path(args.dir)).threshold


def cmd_withdraw(args: argparse.Namespace) -> int:
    with client_for(args, "backend") as c:
        r = c.sign_eth(args.key, tx_from_args(args), args.idempotency_key or str(uuid.uuid4()), parse_path(args.path))
    human = request_line(r)
    if r.state == "pending_approval":
        human += f"\nofficers: tssctl approve {r.request_id} --officer ID --key FILE"
    emit(args, request_json(r), human)
    return EXIT_NOT_SIGNED if r.state in NOT_SIGNED else EXIT_OK


def cmd_sweep(args: argparse.Namespace) -> int:
    from signer.policy import COLD_SWEEP

    amount = plan_sweep(args.hot_balance, args.cap, args.reserve)
    plan = {"hot_balance": str(args.hot_balance), "cap": str(args.cap), "reserve": str(args.reserve)}
    if amount is None:
        emit(
            args,
            {"action": "none", **plan, "reason": "hot balance does not exceed the cap"},
            f"nothing to do: hot balance {args.hot_balance} wei does not exceed the cap {args.cap} wei",
        )
        return EXIT_OK
    with client_for(args, "backend") as c:
        r = c.sign_eth(
            args.key,
            tx_from_args(args, value=amount),
            args.idempotency_key or str(uuid.uuid4()),
            parse_path(args.path),
            kind=COLD_SWEEP,
        )
    human = f"cold sweep of {amount} wei to {args.to} (leaves {args.reserve} wei before fees)\n" + request_line(r)
    emit(args, {"action": "proposed", **plan, "amount": str(amount), **request_json(r)}, human)
    return EXIT_NOT_SIGNED if r.state in NOT_SIGNED else EXIT_OK


def cmd_request(args: argparse.Namespace) -> None:
    from .officer import IntentMismatch, rebuild_intent

    with client_for(args, "operator") as c:
        if args.action == "list":
            rows = c.list_requests(args.key or "", args.state or "", args.limit)
            emit(args, {"requests": [request_json(r) for r in rows]}, "\n".join(request_line(r) for r in rows))
            return
        if not args.request_id:
            raise CliError("request show needs a request id")
        r = c.get_request(args.request_id)
        g = c.governance()
    d = request_json(r)
    try:
        rebuild_intent(r, bytes(g.policy_hash))
        d["intent_verified"], check = True, "intent rebuilt from the transaction body: matches"
    except IntentMismatch as exc:
        d["intent_verified"], d["intent_mismatch"], check = False, str(exc), f"INTENT MISMATCH: {exc}"
    lines = [r.intent_text or "(no decodable intent)", check, request_line(r)]
    emit(args, d, "\n".join(lines))


# --- the demo ------------------------------------------------------------------------------------------
DEMO_TO = "0x000000000000000000000000000000000000dEaD"


def _demo_tx(nonce: int, value: int) -> common_pb2.EthTransaction:
    return common_pb2.EthTransaction(
        chain_id=1,
        nonce=nonce,
        max_priority_fee_per_gas=str(2 * 10**9),
        max_fee_per_gas=str(40 * 10**9),
        gas_limit=21000,
        to=DEMO_TO,
        value=str(value),
    )


def demo_approval_flow(
    info: cluster.ClusterInfo, key: coordinator_pb2.Key, say: cluster.Progress, value: int = 10**18, nonce: int = 1
) -> dict[str, Any]:
    """A withdrawal above the automatic tier: pending approval, two officers approve it exactly as
    `tssctl approve` does, then it is signed and verified independently."""
    from . import officer

    t0 = time.monotonic()
    with CoordinatorClient(info.coordinator, info.client_tls("backend")) as be:
        submitted = be.sign_eth(key.key_id, _demo_tx(nonce, value), f"demo-{uuid.uuid4()}")
    if submitted.state != "pending_approval":
        raise CliError(f"expected pending_approval, got {submitted.state} ({submitted.policy_reason})")
    say(f"withdrawal of {value / 10**18:g} ETH is pending approval ({submitted.policy_reason})")
    approvals = []
    req = submitted
    for who in cluster.OFFICERS[:2]:
        with CoordinatorClient(info.coordinator, info.client_tls(who)) as oc:
            done = officer.approve(oc, submitted.request_id, officer.load_key(info.officer_key(who)), who)
            req = done.after
            if req.state not in ("signed", "pending_approval"):
                for _ in oc.watch(req.request_id):
                    pass
                req = oc.get_request(req.request_id)
        approvals.append({"officer": who, "signed_at": done.approval.signed_at, "state_after": done.after.state})
        say(f"{who} checked the decoded intent and approved: request {req.state}")
    if req.state != "signed":
        raise CliError(f"approved request ended in state {req.state}: {req.error or req.policy_reason}")
    address = verify_eth_signature(req, key.public_key)
    return {
        "request_id": req.request_id,
        "value": str(value),
        "to": DEMO_TO,
        "state_after_submit": submitted.state,
        "policy_reason_after_submit": submitted.policy_reason,
        "intent_digest": bytes(submitted.intent_digest).hex(),
        "intent_text": submitted.intent_text,
        "approvals": approvals,
        "approved_by": list(req.approved_by),
        "state": req.state,
        "address": address,
        "raw_tx": "0x" + req.raw_tx.hex(),
        "tx_hash": "0x" + req.tx_hash.hex(),
        "r": "0x" + req.r.hex(),
        "s": "0x" + req.s.hex(),
        "v": req.v,
        "verified": True,
        "seconds": round(time.monotonic() - t0, 2),
    }


def cmd_demo(args: argparse.Namespace) -> None:
    say = progress(args.json and args.quiet)
    root = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="tss-demo-", dir=_ensure_run_dir()))
    t0 = time.monotonic()
    say(f"demo: 2-of-3 cluster at the {args.level}-bit level in {root}")
    info = cluster.up(root, 3, 2, args.level, say)
    try:
        with CoordinatorClient(info.coordinator, info.client_tls("operator")) as op:
            say("creating a key: distributed keygen, then auxiliary info (safe primes, Πmod/Πprm/Πfac)")
            t_key = time.monotonic()
            key = op.create_key("demo-hot-wallet", 2, args.level)
            key_s = time.monotonic() - t_key
        say(f"key {key.key_id} ready in {key_s:.1f}s; address {key.eth_address}")
        with CoordinatorClient(info.coordinator, info.client_tls("backend")) as be:
            say("signing an EIP-1559 transfer of 0.01 ETH, automatic under the demo policy (presign, then sign)")
            t_sign = time.monotonic()
            req = be.sign_eth(key.key_id, _demo_tx(0, 10**16), f"demo-{uuid.uuid4()}")
            sign_s = time.monotonic() - t_sign
        if req.state != "signed":
            raise CliError(f"request ended in state {req.state}: {req.error or req.policy_reason}")
        address = verify_eth_signature(req, key.public_key)
        say(f"signed and verified in {sign_s:.1f}s: tx {req.tx_hash.hex()}")
        say("a 1 ETH withdrawal needs 2 of the 3 officers under the demo policy")
        flow = demo_approval_flow(info, key, say)
        say(f"approved by {', '.join(flow['approved_by'])}, signed and verified: tx {flow['tx_hash']}")
        out = {
            "public_key": key.public_key.hex(),
            "address": address,
            "chain_id": req.eth.chain_id,
            "raw_tx": "0x" + req.raw_tx.hex(),
            "tx_hash": "0x" + req.tx_hash.hex(),
            "r": "0x" + req.r.hex(),
            "s": "0x" + req.s.hex(),
            "v": req.v,
            "key_id": key.key_id,
            "request_id": req.request_id,
            "level": args.level,
            "verified": True,
            "policy_reason": req.policy_reason,
            "approval_flow": flow,
            "timings_s": {
                "key": round(key_s, 2),
                "sign": round(sign_s, 3),
                "approval_flow": flow["seconds"],
                "total": round(time.monotonic() - t0, 2),
            },
            "dir": str(root),
        }
    finally:
        cluster.down(root)
        say("cluster stopped")
    print(json.dumps(out, indent=None if args.json else 2))


def _ensure_run_dir() -> Path:
    d = Path("run")
    d.mkdir(exist_ok=True)
    return d


def main(argv: list[str] | None = None) -> int:
    """Entry point of the tssctl console script; the exit codes are cli_errors.py's."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = build_parser().parse_args(argv)
        rc = args.func(args)
    except (Exception, KeyboardInterrupt, ArgumentsRefused) as exc:
        return report(exc, json_wanted(argv))
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
