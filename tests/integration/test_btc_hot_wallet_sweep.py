"""Bitcoin hot wallet full -> sweep with real processes (3 signers + coordinator, mTLS, level 112).

The genesis policy has the regtest network, BTC rules (tests/btc_support.py), a registered regtest
cold address and a cold-sweep rule needing one officer. The coordinator is configured with a
Bitcoin hot wallet; a backend reports its unspent outputs with `tssctl balance report-utxos`: a
stale report proposes nothing, a full one exactly one sweep PSBT, a fuller one finds it open; an
officer approves with `tssctl approve`, every input's signature is verified independently and the
signed transaction pays the cold address and leaves the reserve. A report of an output that is not
the wallet's is refused.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from embit.script import Script
from embit.transaction import Transaction, TransactionInput, TransactionOutput
from tsscustody.v1 import coordinator_pb2

from coordinator import cluster
from coordinator.client import CoordinatorClient
from signer.chains import bitcoin as btc
from signer.policy import Action, ColdEntry, Group, PolicyDocument
from signer.tss.curve import Point
from tests.btc_support import REGTEST, foreign_script, own_script, verify_transaction, with_bitcoin

COLD_BTC = btc.address(foreign_script(), REGTEST)
PATH = (0, 3)
CAP, RESERVE = 2_000_000, 500_000


def _policy(policy: PolicyDocument) -> PolicyDocument:
    policy = with_bitcoin(policy)
    officer = Action("require", Group("officers", 1))
    rules = tuple(dataclasses.replace(r, action=officer) if r.rule_id == "btc-cold-sweep" else r for r in policy.rules)
    return dataclasses.replace(policy, rules=rules, cold=(*policy.cold, ColdEntry(COLD_BTC, "btc cold")))


@pytest.fixture(scope="module")
def live_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[cluster.ClusterInfo]:
    """The conftest's cluster, its genesis policy with regtest, BTC rules and a BTC cold address."""
    root = tmp_path_factory.mktemp("btc-sweep-cluster")
    info = cluster.up(root, n=3, threshold=2, level="112", adjust_policy=_policy)
    try:
        yield info
    finally:
        cluster.down(root)


@pytest.fixture(scope="module")
def hot(live_cluster: cluster.ClusterInfo) -> tuple[coordinator_pb2.Key, str, bytes]:
    """A key whose child at PATH is a configured Bitcoin hot wallet: (key, address, script)."""
    with CoordinatorClient(live_cluster.coordinator, live_cluster.client_tls("operator")) as op:
        key = op.create_key("btc-sweep-hot", 2, "112")
    wallet = {
        "key_id": key.key_id,
        "path": list(PATH),
        "network": "regtest",
        "cap": str(CAP),
        "reserve": str(RESERVE),
        "cold": COLD_BTC,
        "fee_rate": 5,
        "max_report_age": 300,
    }
    config = live_cluster.root / "coordinator" / "coordinator.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "hot_wallets": [wallet]}))
    cluster.restart(live_cluster.root, "coordinator")
    script = own_script(Point.from_bytes(bytes(key.public_key)), bytes(key.chain_code), PATH)
    return key, btc.address(script, REGTEST), script


def _utxos(path: Path, amounts: list[int], script: bytes) -> list[dict[str, Any]]:
    entries = []
    for amount in amounts:
        prev = Transaction(
            vin=[TransactionInput(secrets.token_bytes(32), 0)], vout=[TransactionOutput(amount, Script(script))]
        )
        entries.append(
            {"txid": bytes(prev.txid()).hex(), "vout": 0, "amount_sat": amount, "prev_tx": prev.serialize().hex()}
        )
    path.write_text(json.dumps(entries))
    return entries


def _report(tssctl: Any, address: str, path: Path, *, at: int | None = None) -> tuple[int, Any, str]:
    argv = ["balance", "report-utxos", "--network", "regtest", "--address", address, "--utxos", str(path)]
    return tssctl(*argv, *(["--at", str(at)] if at is not None else []))


def test_a_full_bitcoin_hot_wallet_is_swept_once_to_the_cold_address(
    live_cluster: cluster.ClusterInfo, hot: tuple[coordinator_pb2.Key, str, bytes], tssctl: Any, tmp_path: Path
) -> None:
    _, address, script = hot
    full = tmp_path / "full.json"
    utxos = _utxos(full, [1_500_000, 800_000, 300_000, 100_000], script)  # 2.7 M sat over the 2 M cap
    rc, out, err = _report(tssctl, address, full, at=int(time.time()) - 1000)
    assert rc == 0 and out["action"] == "stale", (out, err)
    rc, out, err = _report(tssctl, address, full)
    assert rc == 0 and out["action"] == "proposed", (out, err)
    sweep = out["sweep"]
    assert (sweep["kind"], sweep["state"]) == ("cold_sweep", "pending_approval")
    fuller = tmp_path / "fuller.json"
    _utxos(fuller, [3_000_000], script)
    rc, again, err = _report(tssctl, address, fuller)
    assert rc == 0 and again["action"] == "sweep_open" and again["sweep"]["request_id"] == sweep["request_id"], err
    officer_key = str(live_cluster.officer_key("officer-1"))
    rc, _, err = tssctl("approve", sweep["request_id"], "--yes", "--officer", "officer-1", "--key", officer_key)
    assert rc == 0, err
    with CoordinatorClient(live_cluster.coordinator, live_cluster.client_tls("operator"), timeout=300) as c:
        for _ in c.watch(sweep["request_id"]):
            pass
        done = c.get_request(sweep["request_id"])
    assert done.state == "signed", done.error
    tx = Transaction.parse(bytes(done.btc_tx))
    amounts = {(e["txid"], e["vout"]): e["amount_sat"] for e in utxos}
    spent = [(amounts[(bytes(i.txid).hex(), i.vout)], script) for i in tx.vin]
    assert sorted(a for a, _ in spent) == [800_000, 1_500_000]  # the largest first
    assert verify_transaction(bytes(done.btc_tx), spent) == done.txid
    cold, change = tx.vout
    assert btc.address(bytes(cold.script_pubkey.data), REGTEST) == COLD_BTC
    assert bytes(change.script_pubkey.data) == script and 400_000 + change.value == RESERVE


def test_a_report_of_an_output_that_is_not_the_wallets_is_refused(
    hot: tuple[coordinator_pb2.Key, str, bytes], tssctl: Any, tmp_path: Path
) -> None:
    _, address, _ = hot
    foreign = tmp_path / "foreign.json"
    _utxos(foreign, [5_000_000], foreign_script())
    rc, out, err = _report(tssctl, address, foreign)
    assert rc != 0 and "does not pay the wallet's address" in out["error"], err
