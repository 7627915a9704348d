"""Real processes: `tssctl drill` kills -9 a signer, recovers by the scenario, signs again under the
unchanged address, and writes a report the coordinator attests; `tssctl drill verify` accepts it
and refuses a tampered copy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from eth_account import Account

from coordinator import cluster
from coordinator.client import CoordinatorClient


def _request(info: cluster.ClusterInfo, request_id: str) -> Any:
    with CoordinatorClient(info.coordinator, info.client_tls("operator")) as op:
        return op.get_request(request_id)


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
