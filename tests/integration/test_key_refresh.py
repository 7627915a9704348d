"""Real processes: `tssctl key refresh` under an admin quorum's order moves every signer and the
coordinator's key record to the next epoch, and withdrawals still sign under the unchanged address;
an order one admin signed is refused by the coordinator with the signers' reason."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from tsscustody.v1 import coordinator_pb2

from coordinator import cluster
from coordinator.cli import verify_eth_signature
from coordinator.client import CoordinatorClient

from .conftest import log_text
from .support import eth_tx


@pytest.fixture(scope="module")
def key(live_cluster: cluster.ClusterInfo) -> coordinator_pb2.Key:
    with CoordinatorClient(live_cluster.coordinator, live_cluster.client_tls("operator")) as op:
        return op.create_key("it-refresh", 2, "112")


def _sign(info: cluster.ClusterInfo, key_id: str, nonce: int) -> coordinator_pb2.SigningRequest:
    with CoordinatorClient(info.coordinator, info.client_tls("backend")) as be:
        return be.sign_eth(key_id, eth_tx(nonce), f"it-{uuid.uuid4()}")


def test_refresh_then_a_withdrawal_signs_under_the_same_address(
    live_cluster: cluster.ClusterInfo, key: coordinator_pb2.Key, tssctl: Any, tmp_path: Path
) -> None:
    before = _sign(live_cluster, key.key_id, 0)
    assert before.state == "signed", before.error

    admins = ("--admin", "admin-1", "--admin", "admin-2")
    rc, _, err = tssctl("key", "refresh", key.key_id, *admins, "--as", "operator")
    assert rc != 0 and "PERMISSION_DENIED" in err  # admin certificates only, whatever the order says

    # One admin's signature is below the admin quorum: the coordinator refuses with the signers' reason.
    rc, _, err = tssctl("key", "refresh", key.key_id, "--admin", "admin-1")
    assert rc != 0 and "PERMISSION_DENIED" in err and "key_order_quorum_not_met" in err
    rc, shown, _ = tssctl("key", "show", key.key_id)
    assert rc == 0 and shown["epoch"] == key.epoch

    # The order passed around: admin-1 signs to a file, admin-2 adds a signature and submits it.
    order = tmp_path / "refresh-order.json"
    rc, saved, err = tssctl("key", "refresh", key.key_id, "--admin", "admin-1", "--out", str(order))
    assert rc == 0 and saved["signed_by"] == ["admin-1"] and saved["from_epoch"] == key.epoch, err
    rc, out, err = tssctl("key", "refresh", "--order", str(order), "--admin", "admin-2")
    assert rc == 0, err
    assert out["epoch"] == key.epoch + 1 and out["committing_epoch"] == 0
    assert out["address"] == key.eth_address and out["public_key"] == key.public_key.hex()
    rc, shown, _ = tssctl("key", "show", key.key_id)
    assert rc == 0 and shown["epoch"] == key.epoch + 1

    after = _sign(live_cluster, key.key_id, 1)
    assert after.state == "signed", after.error
    assert verify_eth_signature(after, key.public_key) == key.eth_address
    assert Account.recover_transaction(after.raw_tx) == key.eth_address

    logs = log_text(live_cluster.root)
    assert logs.count('"epoch_adopted"') >= 3 and '"key_refresh_committed"' in logs
    assert logs.count("admins:admin-1,admin-2") >= 3  # every signer checked the order itself
    rc, _, err = tssctl("audit", "verify")
    assert rc == 0, err
