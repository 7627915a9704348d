"""Hot wallet full -> sweep with real processes: the coordinator configured with a hot wallet, a
backend reporting its balance with `tssctl balance report`, exactly one cold sweep proposed to the
registered cold address, signed once an officer approves it (checked by eth-account), a stale report
proposing nothing, and the balance against its cap scraped from the coordinator's metrics."""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

import pytest
from eth_account import Account
from tsscustody.v1 import coordinator_pb2

from coordinator import cluster
from coordinator.client import CoordinatorClient

from .support import ETH, TO

CAP, RESERVE = 10 * ETH, 2 * ETH


@pytest.fixture(scope="module")
def hot(live_cluster: cluster.ClusterInfo) -> tuple[coordinator_pb2.Key, int]:
    """A key whose root address is a configured hot wallet; the coordinator's metrics port."""
    with CoordinatorClient(live_cluster.coordinator, live_cluster.client_tls("operator")) as op:
        key = op.create_key("sweep-hot-wallet", 2, "112")
    config = live_cluster.root / "coordinator" / "coordinator.json"
    port = cluster.free_port()
    wallet = {
        "key_id": key.key_id,
        "chain_id": 1,
        "asset": "ETH",
        "cap": str(CAP),
        "reserve": str(RESERVE),
        "cold": cluster.DEMO_COLD_ADDRESS,
        "max_report_age": 300,
    }
    current = json.loads(config.read_text())
    config.write_text(json.dumps({**current, "hot_wallets": [wallet], "metrics_listen": f"127.0.0.1:{port}"}))
    cluster.restart(live_cluster.root, "coordinator")
    return key, port


def _report(tssctl: Any, key: coordinator_pb2.Key, wei: int, *, at: int | None = None) -> dict[str, Any]:
    argv = ["balance", "report", "--chain-id", "1", "--address", key.eth_address, "--wei", str(wei)]
    argv += ["--next-nonce", "3", *(["--at", str(at)] if at is not None else [])]
    rc, out, err = tssctl(*argv)
    assert rc == 0 and isinstance(out, dict), err
    return out


def test_a_full_hot_wallet_is_swept_once_to_the_cold_address(
    live_cluster: cluster.ClusterInfo, hot: tuple[coordinator_pb2.Key, int], tssctl: Any
) -> None:
    key, port = hot
    assert _report(tssctl, key, 60 * ETH, at=int(time.time()) - 1000)["action"] == "stale"
    assert _report(tssctl, key, 5 * ETH)["action"] == "below_cap"
    out = _report(tssctl, key, 50 * ETH)
    assert out["action"] == "proposed", out
    sweep = out["sweep"]
    assert (sweep["kind"], sweep["state"], sweep["to"].lower()) == (
        "cold_sweep",
        "pending_approval",
        cluster.DEMO_COLD_ADDRESS.lower(),
    )
    again = _report(tssctl, key, 55 * ETH)
    assert again["action"] == "sweep_open" and again["sweep"]["request_id"] == sweep["request_id"]
    officer_key = str(live_cluster.officer_key("officer-1"))
    rc, _, err = tssctl("approve", sweep["request_id"], "--yes", "--officer", "officer-1", "--key", officer_key)
    assert rc == 0, err
    with CoordinatorClient(live_cluster.coordinator, live_cluster.client_tls("operator"), timeout=300) as c:
        for _ in c.watch(sweep["request_id"]):
            pass
        done = c.get_request(sweep["request_id"])
    assert done.state == "signed", done.error
    assert Account.recover_transaction(done.raw_tx) == key.eth_address
    assert int(done.eth.value) == 50 * ETH - RESERVE - 50 * 10**9 * 21000  # the reserve stays after the fee
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        lines = reply.read().decode().splitlines()
    where = f'address="{key.eth_address.lower()}",asset="ETH",network="eip155:1"'  # labels print sorted
    assert f"tss_coordinator_hot_balance{{{where}}} {float(55 * ETH)}" in lines
    assert f"tss_coordinator_hot_balance_cap{{{where}}} {float(CAP)}" in lines


def test_an_unknown_wallet_is_refused(hot: tuple[coordinator_pb2.Key, int], tssctl: Any) -> None:
    argv = ["--chain-id", "1", "--address", cluster.DEMO_COLD_ADDRESS, "--wei", "1", "--next-nonce", "0"]
    rc, out, err = tssctl("balance", "report", *argv)
    assert rc != 0 and "not a configured hot wallet" in out["error"], err


def test_a_withdrawal_the_wallet_cannot_cover_waits_visibly_until_a_report_shows_the_funds(
    live_cluster: cluster.ClusterInfo, hot: tuple[coordinator_pb2.Key, int], tssctl: Any
) -> None:
    key, _ = hot
    assert _report(tssctl, key, 10**15)["action"] == "below_cap"  # 0.001 ETH left
    argv = ["withdraw", "--network", "eip155:1", "--key", key.key_id, "--to", TO, "--value", str(5 * 10**16)]
    rc, out, err = tssctl(*argv, "--nonce", "40")
    assert rc == 0 and out["state"] == "approved" and out["policy_reason"] == "awaiting_funds", err
    rc, shown, err = tssctl("request", "show", out["request_id"])
    assert rc == 0 and shown["hold_note"].startswith("awaiting_funds: "), err
    assert "0 ahead in the queue" in shown["hold_note"]
    assert _report(tssctl, key, ETH)["action"] == "below_cap"  # the refill: the scheduler signs it
    with CoordinatorClient(live_cluster.coordinator, live_cluster.client_tls("operator"), timeout=300) as c:
        for _ in c.watch(out["request_id"]):
            pass
        done = c.get_request(out["request_id"])
    assert done.state == "signed" and done.hold_note == "", done.error
    assert Account.recover_transaction(done.raw_tx) == key.eth_address
