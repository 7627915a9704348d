"""Real processes: `tssctl drill` kills -9 a signer, recovers by the scenario, signs again under the
unchanged address, and writes a report the coordinator attests; `tssctl drill verify` accepts it
and refuses a tampered copy. One cluster for the file: restore-backup (signer 3 from its kit) and
reshare-replace (signer 2 replaced by the standby signer 4) first, then restart and lose-one
(signer 3) on the committee {1, 3, 4}."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from coordinator import backup_ops, cluster, signer_layout
from coordinator.client import CoordinatorClient
from signer.node.recovery_key import PUBLIC_FILE, SECRET_FILE, generate, load_public, write_files
from signer.tss.params import LEVEL_112
from tests.helpers import FixturePrimeSource, SeededRng


@pytest.fixture(scope="module")
def live_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[cluster.ClusterInfo]:
    """The shared cluster, with a recovery key (fixture primes) its signers pin from the start."""
    root = tmp_path_factory.mktemp("cluster")
    secret, public = generate(LEVEL_112, FixturePrimeSource(20), SeededRng("drill-recovery"))
    write_files(root / "recovery", secret, public)
    info = cluster.up(root, n=3, threshold=2, level="112")
    try:
        yield info
    finally:
        cluster.down(root)


def _request(info: cluster.ClusterInfo, request_id: str) -> Any:
    with CoordinatorClient(info.coordinator, info.client_tls("operator")) as op:
        return op.get_request(request_id)


def _verify_and_tamper(tssctl: Any, report_path: Path, scenario: str, entries: int) -> None:
    """`tssctl drill verify` accepts the report and refuses it with one field changed."""
    rc, ok, err = tssctl("drill", "verify", str(report_path))
    assert rc == 0, err
    assert ok["ok"] and ok["scenario"] == scenario and ok["entries_checked"] == entries
    tampered = json.loads(report_path.read_text())
    tampered["address_after"] = "0x" + "00" * 20
    bad = report_path.with_name(f"{scenario}-tampered.json")
    bad.write_text(json.dumps(tampered))
    rc, _, err = tssctl("drill", "verify", str(bad))
    assert rc == 1
    assert (
        err.strip() == "tssctl: drill report REFUSED: the report was changed after it was attested (its digest differs)"
    )


def _passed(out: dict[str, Any], steps: list[str], address: str, info: cluster.ClusterInfo) -> None:
    assert out["outcome"] == "passed", out["failure"]
    assert [s["name"] for s in out["steps"]] == steps
    assert all(s["outcome"] == "ok" and s["started_at"] <= s["ended_at"] for s in out["steps"])
    assert out["address_before"] == out["address_after"] == address
    assert out["public_key_after"] == out["key"]["public_key"]
    assert isinstance(out["rto_ms"], int) and out["rto_ms"] > 0
    after = _request(info, out["signatures"][-1]["request_id"])
    assert Account.recover_transaction(after.raw_tx) == address


def test_restore_backup_then_reshare_replace_drills_and_their_reports_verify(
    live_cluster: cluster.ClusterInfo, tssctl: Any, tmp_path: Path
) -> None:
    root = live_cluster.root
    with CoordinatorClient(live_cluster.coordinator, live_cluster.client_tls("operator")) as op:
        key = op.create_key("drill-dr", 2, "112")
    # What an operator holds before a loss: the recovery key every signer pins (the fixture),
    # signer 3's verified kit, and a standby signer laid out with its primes.
    secret_path = root / "recovery" / SECRET_FILE
    public = load_public(root / "recovery" / PUBLIC_FILE)
    info = cluster.ClusterInfo.load(root)
    (kit,) = backup_ops.export({3: info.signers[3]}, info.client_tls("admin-1"), key.key_id, tmp_path / "kits", public)
    assert kit.path is not None, kit.error

    report = tmp_path / "restore-backup.json"
    rc, out, err = tssctl(
        "drill", "--scenario", "restore-backup", "--allow-wipe", "--key", key.key_id,
        "--set", f"kit={kit.path}", "--set", f"recovery_secret={secret_path}", "--out", str(report),
    )  # fmt: skip
    assert rc == 0, err
    _passed(out, ["key", "sign", "kill -9", "wipe", "restore", "sign", "check key"], key.eth_address, info)
    assert out["key"]["epoch_before"] == out["key"]["epoch_after"] == key.epoch
    assert "restore (signer-3 from" in err
    _verify_and_tamper(tssctl, report, "restore-backup", len(out["audit"]["entries"]))

    # 8 primes: the reshare's aux info takes 4, the next key's keygen the other 4
    standby = signer_layout.prepare_standby(root, primes=FixturePrimeSource(offset=24), count=8)
    assert standby == 4 and not (root / "signer-4").exists()
    report = tmp_path / "reshare-replace.json"
    rc, out, err = tssctl(
        "drill", "--scenario", "reshare-replace", "--allow-wipe", "--key", key.key_id, "--signer", "2",
        "--out", str(report),
    )  # fmt: skip
    assert rc == 0, err
    steps = ["key", "sign", "standby", "warm primes", "kill -9", "wipe", "reshare", "sign", "check key"]
    _passed(out, steps, key.eth_address, cluster.ClusterInfo.load(root))
    assert out["key"]["epoch_after"] == key.epoch + 1
    assert "signer-4 (prepared before the drill)" in err and "replace signer-2 by signer-4" in err
    with CoordinatorClient(live_cluster.coordinator, live_cluster.client_tls("operator")) as op:
        moved = op.get_key(key.key_id)
        registry = json.loads(op.governance().registry_json)
    assert list(moved.parties) == [1, 3, 4] and moved.eth_address == key.eth_address
    assert [r["party"] for r in registry["revoked_signers"]] == [2]
    assert '"prime_pool_restored"' in (root / "logs" / "signer-4.log").read_text()  # started warm
    _verify_and_tamper(tssctl, report, "reshare-replace", len(out["audit"]["entries"]))


def test_restart_then_lose_one_drills_and_their_reports_verify(
    live_cluster: cluster.ClusterInfo, tssctl: Any, tmp_path: Path
) -> None:
    root = live_cluster.root
    rc, _, err = tssctl("drill", "--scenario", "lose-one")
    assert rc == 1 and "pass --allow-wipe" in err  # never wipes a running cluster by default

    rc, first, err = tssctl("drill", "--scenario", "restart", "--out", str(tmp_path / "restart.json"))
    assert rc == 0, err
    assert first["outcome"] == "passed" and first["rto_ms"] > 0 and first["attestation"]
    assert "kill -9 (signer-3" in err and "restart (signer-3 on its data directory" in err

    key_id = first["key"]["key_id"]
    report_path = tmp_path / "lose-one.json"
    rc, out, err = tssctl("drill", "--scenario", "lose-one", "--allow-wipe", "--key", key_id, "--out", str(report_path))
    assert rc == 0, err
    assert out["outcome"] == "passed", out["failure"]
    assert out["cluster"] == {"n": 3, "t": 2, "level": "112", "dir": str(root), "fresh": False}
    assert out["address_before"] == out["address_after"] == first["address_after"]
    assert out["public_key_after"] == out["key"]["public_key"]
    assert [s["name"] for s in out["steps"]] == ["key", "sign", "kill -9", "wipe", "sign", "check key"]
    assert all(s["outcome"] == "ok" and s["started_at"] <= s["ended_at"] for s in out["steps"])
    assert isinstance(out["rto_ms"], int) and out["rto_ms"] < 60_000
    assert {e["kind"] for e in out["audit"]["entries"]} >= {"request"}
    assert report_path.with_suffix(".md").read_text().startswith("# Disaster-recovery drill: lose-one")
    assert "sign (with the remaining 2 signers" in err and "report attested" in err

    # independently: the last signature recovers to the unchanged address; signer 3 is gone
    after = _request(live_cluster, out["signatures"][-1]["request_id"])
    assert Account.recover_transaction(after.raw_tx) == out["address_before"]
    assert not (root / "signer-3" / "store").exists() and list((root / "drill-wiped").iterdir())
    assert not cluster._alive(cluster.ClusterInfo.load(root).pids["signer-3"])

    rc, ok, err = tssctl("drill", "verify", str(report_path))
    assert rc == 0, err
    assert ok["ok"] and ok["scenario"] == "lose-one" and ok["entries_checked"] == len(out["audit"]["entries"])

    tampered = json.loads(report_path.read_text())
    tampered["rto_ms"] = 1
    bad = tmp_path / "tampered.json"
    bad.write_text(json.dumps(tampered))
    rc, _, err = tssctl("drill", "verify", str(bad))
    assert rc == 1
    assert (
        err.strip() == "tssctl: drill report REFUSED: the report was changed after it was attested (its digest differs)"
    )

    rc, _, err = tssctl("audit", "verify")
    assert rc == 0, err
