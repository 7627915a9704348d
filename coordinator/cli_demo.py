"""`tssctl demo`: a throw-away 2-of-3 cluster, keygen, an automatic and an officer-approved
withdrawal, each signature verified independently, then the cluster stopped."""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from tsscustody.v1 import common_pb2, coordinator_pb2
from tsscustody_client.names import state_name

from . import cluster
from .cli_common import progress, ticking, verify_eth_signature
from .cli_errors import CliError
from .client import CoordinatorClient

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
    if (state := state_name(submitted.request_state)) != "pending_approval":
        raise CliError(f"expected pending_approval, got {state} ({submitted.policy_reason})")
    say(f"withdrawal of {value / 10**18:g} ETH is pending approval ({submitted.policy_reason})")
    approvals = []
    req = submitted
    for who in cluster.OFFICERS[:2]:
        with CoordinatorClient(info.coordinator, info.client_tls(who)) as oc:
            done = officer.approve(oc, submitted.request_id, officer.load_key(info.officer_key(who)), who)
            req = done.after
            if state_name(req.request_state) not in ("signed", "pending_approval"):
                for _ in oc.watch(req.request_id):
                    pass
                req = oc.get_request(req.request_id)
        after = state_name(done.after.request_state)
        approvals.append({"officer": who, "signed_at": done.approval.signed_at, "state_after": after})
        say(f"{who} checked the decoded intent and approved: request {state_name(req.request_state)}")
    if (state := state_name(req.request_state)) != "signed":
        raise CliError(f"approved request ended in state {state}: {req.error or req.policy_reason}")
    address = verify_eth_signature(req, key.public_key)
    return {
        "request_id": req.request_id,
        "value": str(value),
        "to": DEMO_TO,
        "state_after_submit": state_name(submitted.request_state),
        "policy_reason_after_submit": submitted.policy_reason,
        "intent_digest": bytes(submitted.intent_digest).hex(),
        "intent_text": submitted.intent_text,
        "approvals": approvals,
        "approved_by": list(req.approved_by),
        "state": state_name(req.request_state),
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
            with ticking(say, "keygen and auxiliary info (fresh safe primes take 30-70 s at 128 bits)"):
                key = op.create_key("demo-hot-wallet", 2, args.level)
            key_s = time.monotonic() - t_key
        say(f"key {key.key_id} ready in {key_s:.1f}s; address {key.eth_address}")
        with CoordinatorClient(info.coordinator, info.client_tls("backend")) as be:
            say("signing an EIP-1559 transfer of 0.01 ETH, automatic under the demo policy (presign, then sign)")
            t_sign = time.monotonic()
            with ticking(say, "presigning and signing"):
                req = be.sign_eth(key.key_id, _demo_tx(0, 10**16), f"demo-{uuid.uuid4()}")
            sign_s = time.monotonic() - t_sign
        if state_name(req.request_state) != "signed":
            raise CliError(f"request ended in state {state_name(req.request_state)}: {req.error or req.policy_reason}")
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
    print(json.dumps(out) if args.json else summary(out))


def summary(out: dict[str, Any]) -> str:
    """The demo's outcome in a few lines (the whole record is `--json`)."""
    flow, t = out["approval_flow"], out["timings_s"]
    return "\n".join(
        [
            f"demo passed in {t['total']:.0f}s: 2-of-3 key {out['key_id']} at the {out['level']}-bit level, "
            f"address {out['address']} (keygen {t['key']:.1f}s)",
            f"  0.01 ETH, automatic ({out['policy_reason']}): signed in {t['sign']:.1f}s, tx {out['tx_hash']}",
            f"  1 ETH, approved by {', '.join(flow['approved_by'])}: signed and verified, tx {flow['tx_hash']}",
            f"cluster stopped; its files are in {out['dir']} (tssctl demo --json prints the full record)",
        ]
    )


def _ensure_run_dir() -> Path:
    d = Path("run")
    d.mkdir(exist_ok=True)
    return d


