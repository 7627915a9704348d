"""Real processes: a lost signer replaced by a new one through a reshare from the t survivors.

2-of-3 cluster, keygen; signer 3 is killed (-9); `tssctl cluster replace-signer signer-3` adds
signer 4 (new index, new identity), retires 3 and reshares the key to {1, 2, 4} from dealers
{1, 2}; a withdrawal then signs through {2, 4} under the unchanged address. The old party 3's
share (from a copy of its data directory taken before) does not combine with a new share to the
key, and the old signer started on its copy refuses to run (its index is retired). The registry
revokes 3: its old certificate is refused by a peer and the coordinator, with the reason.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import uuid
from typing import Any

import grpc
import pytest
from eth_account import Account
from tsscustody.v1 import coordinator_pb2, coordinator_pb2_grpc, signer_pb2, signer_pb2_grpc

from coordinator import cluster
from coordinator.cli import verify_eth_signature
from coordinator.client import CoordinatorClient
from signer.node.store import EncryptedStore, load_kek
from signer.node.tls import TlsFiles, channel_credentials
from signer.tss.curve import Point, Q
from signer.tss.key_share import KeyShare
from signer.tss.vss import lagrange_at_zero

from .conftest import log_text
from .observe import until
from .support import eth_tx

_IN_FLIGHT = ("submitted", "approved", "signing")


def _share(root: Any, party: int, key_id: str, data_dir: Any = None) -> KeyShare:
    d = data_dir or root / f"signer-{party}"
    return KeyShare.from_bytes(EncryptedStore(d / "store", load_kek(d / "kek")).get(f"keys/{key_id}/share"))


def op_governance(info: cluster.ClusterInfo) -> Any:
    with CoordinatorClient(info.coordinator, info.client_tls("operator")) as op:
        return op.governance()


def test_a_lost_signer_is_replaced_and_the_key_signs_through_the_new_one(
    live_cluster: cluster.ClusterInfo, tssctl: Any
) -> None:
    root = live_cluster.root
    with CoordinatorClient(live_cluster.coordinator, live_cluster.client_tls("operator")) as op:
        key = op.create_key("it-reshare", 2, "112")
    with CoordinatorClient(live_cluster.coordinator, live_cluster.client_tls("backend")) as be:
        first = be.sign_eth(key.key_id, eth_tx(0), f"it-{uuid.uuid4()}")
    assert first.state == "signed", first.error

    old3 = root / "old-signer-3"
    shutil.copytree(root / "signer-3", old3)  # what a thief of the lost machine would hold
    pids = cluster.ClusterInfo.load(root).pids
    os.kill(pids["signer-3"], signal.SIGKILL)

    rc, out, err = tssctl("cluster", "replace-signer", "signer-3")
    assert rc == 0, err
    assert out == {"dir": str(root), "retired": 3, "added": 4}
    now = cluster.ClusterInfo.load(root).pids  # the survivors reloaded their peers without a restart
    assert (now["signer-1"], now["signer-2"]) == (pids["signer-1"], pids["signer-2"])
    rc, shown, err = tssctl("key", "show", key.key_id)
    assert rc == 0, err
    assert shown["parties"] == [1, 2, 4] and shown["threshold"] == 2 and shown["epoch"] == key.epoch + 1
    assert shown["address"] == key.eth_address and shown["committing_epoch"] == 0 and shown["retired"] == [3]

    admins = ("--admin", "admin-1", "--admin", "admin-2")
    rc, _, err = tssctl("key", "reshare", key.key_id, "--parties", "1,2,3", "--threshold", "2", *admins)
    assert rc != 0 and "party 3 left key" in err and "an index is never reused" in err

    info = cluster.ClusterInfo.load(root)
    os.kill(info.pids["signer-1"], signal.SIGKILL)  # so the signature must come from {2, 4}
    with CoordinatorClient(info.coordinator, info.client_tls("backend")) as be:
        after = be.sign_eth(key.key_id, eth_tx(1), f"it-{uuid.uuid4()}")
        # Held (not failed) while the new committee's aux info or a commit the scheduler retries is
        # still running under load; the scheduler signs it once the key is ready.
        held = after.request_id
        after = until(lambda: (r := be.get_request(held)).state not in _IN_FLIGHT and r, 120, 0.2, "the signature")
    assert after.state == "signed", after.error
    assert verify_eth_signature(after, key.public_key) == key.eth_address
    assert Account.recover_transaction(after.raw_tx) == key.eth_address

    # The old share of 3 never combines with a new one, and the old signer does not come back.
    public_key = Point.from_bytes(key.public_key)
    x3 = _share(root, 3, key.key_id, old3).x
    for p in (2, 4):
        xp = _share(root, p, key.key_id).x
        assert Point.base_mul((lagrange_at_zero(p, (p, 3)) * xp + lagrange_at_zero(3, (p, 3)) * x3) % Q) != public_key
    shutil.rmtree(root / "signer-3" / "store")
    shutil.copytree(old3 / "store", root / "signer-3" / "store")  # the old data under today's config
    config = root / "signer-3" / "node.json"
    assert json.loads(config.read_text())["retired"] == [3]
    ran = subprocess.run(  # noqa: S603 - our own module
        [sys.executable, "-m", "signer.node", "--config", str(config)], capture_output=True, text=True, timeout=60
    )
    assert ran.returncode != 0 and "party 3 was retired from this cluster" in ran.stderr
    coordinator_config = json.loads((root / "coordinator" / "coordinator.json").read_text())
    assert "3" not in coordinator_config["signers"] and coordinator_config["retired"] == [3]

    # The registry revoked 3 (the authoritative revocation): a process still holding its old
    # certificate is refused by a peer and by the coordinator, with the reason.
    registry = json.loads(op_governance(live_cluster).registry_json)
    assert [r["party"] for r in registry["revoked_signers"]] == [3]
    revoked_tls = TlsFiles.in_dir(root / "certs", "signer-3")
    reason = f"signer 3 is revoked (officer registry v{registry['version']}): its certificate"
    get = coordinator_pb2.GetKeyRequest(key_id=key.key_id)
    start = signer_pb2.StartSessionRequest(session_id=b"old-3-attack", protocol="presign", key_id=key.key_id)
    for address, call in (
        (info.signers[2], lambda ch: signer_pb2_grpc.SignerStub(ch).StartSession(start, timeout=30)),
        (info.signers[2], lambda ch: signer_pb2_grpc.SignerStub(ch).Deliver(signer_pb2.DeliverRequest(), timeout=30)),
        (info.coordinator, lambda ch: coordinator_pb2_grpc.CoordinatorStub(ch).GetKey(get, timeout=30)),
    ):
        with grpc.secure_channel(address, channel_credentials(revoked_tls)) as channel:
            with pytest.raises(grpc.RpcError) as refused:
                call(channel)
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert (refused.value.details() or "").startswith(reason), refused.value.details()

    logs = log_text(root)
    assert '"revoked_caller_refused"' in logs
    assert '"key_reshare_committed"' in logs and '"key_aux_ready"' in logs and logs.count('"peers_reloaded"') >= 2
    rc, _, err = tssctl("audit", "verify")
    assert rc == 0, err
