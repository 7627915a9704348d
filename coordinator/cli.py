"""tssctl: the operator's, backend's, officer's and auditor's command line. Every command takes --json.

tssctl cluster up [--signers 3] [--threshold 2] [--dir D] [--level 128|112]
tssctl cluster down|status [--dir D]               tssctl cluster restart signer-N|coordinator [--dir D]
tssctl key create --name NAME [--threshold T]      tssctl key show KEY_ID
tssctl key refresh KEY_ID --admin A --admin B     (an admin quorum's order: new shares, same key)
tssctl key derive KEY_ID --path m/0/5              tssctl key addresses KEY_ID --count N [--start S]  (cli_hd.py)
and cli_reshare.py: tssctl key reshare KEY_ID --parties 1,2,4 --threshold 2; tssctl cluster
add-signer | retire-signer signer-N | replace-signer signer-N
tssctl withdraw --key KEY_ID --to 0x.. --network eip155:1 (--nonce N | --allocate-nonce | --replaces REQUEST_ID)
                (--amount 1.5 [--asset USDC] | --value WEI)
                [--kind approval|contract_call] [--gas G] [--max-fee WEI] [--priority-fee WEI] [--data 0x..]
                [--legacy --gas-price WEI]  (a type-0 EIP-155 transaction instead of EIP-1559)
                [--path m/0/1] [--idempotency-key K]
tssctl sign-eth ...                                 (the same as withdraw)
tssctl sweep --key KEY_ID --hot-balance WEI --cap WEI --reserve WEI --to COLD [tx options]
tssctl request show ID                             tssctl request list [--state S] [--key KEY_ID] [--limit N]
tssctl demo [--dir D] [--level 128|112]             (cli_demo.py)
tssctl drill --scenario NAME [--fresh] ... | tssctl drill verify REPORT   (cli_drill.py)
and the officer, admin and auditor commands of cli_officer.py (approve, reject, freeze, unfreeze,
officer keygen, policy show|propose, audit export|verify) and the recovery-key and backup commands of
cli_backup.py (recovery keygen|pin, backup export|verify|restore).
cli_certs.py: tssctl certs init|issue|rotate; cli_governance.py: tssctl governance genesis|install.

Each command presents a certificate of the cluster directory (D/certs/NAME.pem): backends submit
(`backend`), operators manage keys (`operator`; a refresh or reshare the first --admin), officers approve as
themselves; `--as NAME`
picks another one.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path

from tsscustody_client.names import state_name

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
from .cli_evm import evm_tx
from .cli_format import amount_text, key_lines, list_lines, utc_text
from .cli_parser import build_parser
from .cli_remote import resolve

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
    if args.action == "list":
        with client_for(args, "operator") as c:
            keys = list(c.list_keys())
        emit(args, {"keys": [key_json(k) for k in keys]}, "\n".join(key_lines(keys)))
        return
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
    path = parse_path(args.path)  # bad input is refused before the coordinator is asked anything
    with client_for(args, "backend") as c:
        tx = evm_tx(c, args)
        key = args.idempotency_key or str(uuid.uuid4())
        kind = "replacement" if args.replaces else args.kind
        r = c.sign_eth(args.key, tx, key, path, kind=kind, allocate_nonce=args.allocate_nonce, replaces=args.replaces)
    human = request_line(r)
    if state_name(r.request_state) == "pending_approval":
        human += f"\nofficers: tssctl approve {r.request_id} --officer ID --key FILE  (asks; scripts: --yes)"
    emit(args, request_json(r), human)
    return EXIT_NOT_SIGNED if state_name(r.request_state) in NOT_SIGNED else EXIT_OK


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
            evm_tx(c, args, value=amount),
            args.idempotency_key or str(uuid.uuid4()),
            parse_path(args.path),
            kind="replacement" if args.replaces else COLD_SWEEP,
            allocate_nonce=args.allocate_nonce,
            replaces=args.replaces,
        )
    human = f"cold sweep of {amount} wei to {args.to} (leaves {args.reserve} wei before fees)\n" + request_line(r)
    emit(args, {"action": "proposed", **plan, "amount": str(amount), **request_json(r)}, human)
    return EXIT_NOT_SIGNED if state_name(r.request_state) in NOT_SIGNED else EXIT_OK


def cmd_request(args: argparse.Namespace) -> None:
    from .cli_btc import spend_request_json
    from .cli_message import message_request_json
    from .officer import IntentMismatch, policy_assets, rebuild_intent, rebuild_message, rebuild_spend

    with client_for(args, "operator") as c:
        if args.action == "list":
            rows = c.list_named(args.key or "", args.state or "", args.limit)
            emit(args, {"requests": [request_json(r) for r in rows]}, "\n".join(list_lines(rows, time.time())))
            return
        if not args.request_id:
            raise CliError("request show needs a request id")
        r = c.get_request(args.request_id)
        g = c.governance()
        k = c.get_key(r.key_id) if r.psbt else None
    d = request_json(r) if k is None else spend_request_json(r)
    d = message_request_json(r) if r.message_standard else d
    try:
        if r.message_standard:  # a message: rebuilt from its body, the domain under the policy's networks
            rebuild_message(r, bytes(g.policy_hash), policy_assets(g))
        elif k is not None:  # a Bitcoin spend: rebuilt from its PSBT under the policy's network
            rebuild_spend(r, k, bytes(g.policy_hash), policy_assets(g))
        else:
            rebuild_intent(r, bytes(g.policy_hash))
        d["intent_verified"], check = True, "intent rebuilt from the transaction body: matches"
    except IntentMismatch as exc:
        d["intent_verified"], d["intent_mismatch"], check = False, str(exc), f"INTENT MISMATCH: {exc}"
    amount, destination = amount_text(r)
    lines = [
        r.intent_text or "(no decodable intent)",
        check,
        request_line(r),
        f"amount {amount} to {destination}; submitted {utc_text(r.create_time.seconds)}",
    ]
    if r.time_lock_end_time.seconds:  # a date the officers can read, not an epoch
        lines.append(f"time lock until {utc_text(r.time_lock_end_time.seconds)}")
    emit(args, d, "\n".join(lines))


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
