"""The policy end to end with real processes: tssctl commands against a local cluster that
provisioned demo officers, admins and the demo policy (small automatic, larger 2 of 3 officers,
largest 2 of 3 plus a time lock, cold sweeps 1 officer, unfreeze 2 officers)."""

from __future__ import annotations

import itertools
import json
import shutil
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eth_account import Account
from tsscustody.v1 import coordinator_pb2

from coordinator import certs, cluster, officer
from coordinator.cli_common import NOT_SIGNED
from coordinator.cli_errors import EXIT_NOT_SIGNED
from coordinator.client import CoordinatorClient
from signer.node.tls import TlsFiles
from signer.policy import sign_approval

from .support import ETH, TO, eth_tx

DENIED = "0x1111111111111111111111111111111111111111"
_nonces = itertools.count(100)


@pytest.fixture(scope="module")
def key(live_cluster: cluster.ClusterInfo) -> coordinator_pb2.Key:
    with CoordinatorClient(live_cluster.coordinator, live_cluster.client_tls("operator")) as op:
        return op.create_key("policy-hot-wallet", 2, "112")


def _withdraw(tssctl: Any, key: coordinator_pb2.Key, value: int, to: str = TO) -> dict[str, Any]:
    rc, out, err = tssctl(
        "withdraw",
        "--network",
        "eip155:1",
        "--key",
        key.key_id,
        "--to",
        to,
        "--value",
        str(value),
        "--nonce",
        str(next(_nonces)),
    )
    assert isinstance(out, dict), err
    # A request that ends blocked (or rejected, expired, failed) exits 4, any other 0.
    assert rc == (EXIT_NOT_SIGNED if out["state"] in NOT_SIGNED else 0), err
    return out


def _approve(tssctl: Any, info: cluster.ClusterInfo, request_id: str, who: str) -> tuple[int, Any, str]:
    return tssctl("approve", request_id, "--yes", "--officer", who, "--key", str(info.officer_key(who)))


def _final(info: cluster.ClusterInfo, request_id: str) -> coordinator_pb2.SigningRequest:
    with CoordinatorClient(info.coordinator, info.client_tls("operator"), timeout=300) as c:
        for _ in c.watch(request_id):
            pass
        return c.get_request(request_id)


def test_every_process_holds_the_demo_governance(live_cluster: cluster.ClusterInfo, tssctl: Any) -> None:
    rc, g, _ = tssctl("policy", "show")
    assert rc == 0 and g["policy_version"] == 1 and g["registry_version"] == 1 and g["frozen"] == []
    officers = {o["id"]: o for o in g["registry"]["officers"]}
    assert set(officers) == {"officer-1", "officer-2", "officer-3", "admin-1", "admin-2"}
    for who, entry in officers.items():
        assert entry["public_key"] == officer.public_hex(officer.load_key(live_cluster.officer_key(who)))
        assert (live_cluster.officer_key(who).stat().st_mode & 0o777) == 0o600
    for i in (1, 2, 3):  # every signer pins the two demo admins for genesis
        node = json.loads((live_cluster.root / f"signer-{i}" / "node.json").read_text())
        assert set(node["trusted_admins"]) == {"admin-1", "admin-2"}


def test_small_withdrawal_is_automatic_larger_needs_two_officers(
    live_cluster: cluster.ClusterInfo, key: coordinator_pb2.Key, tssctl: Any
) -> None:
    small = _withdraw(tssctl, key, 10**15)
    assert small["state"] == "signed" and small["policy_reason"] == "allowed"
    assert Account.recover_transaction(small["raw_tx"]) == key.eth_address

    big = _withdraw(tssctl, key, ETH)
    assert big["state"] == "pending_approval" and big["policy_reason"] == "approvals_pending"
    rc, shown, _ = tssctl("request", "show", big["request_id"])
    assert rc == 0 and shown["intent_verified"] is True
    assert shown["intent"]["amount"] == str(ETH) and shown["intent"]["destination"] == TO
    assert shown["intent"]["initiator"] == "backend"

    rc, first, err = _approve(tssctl, live_cluster, big["request_id"], "officer-1")
    assert rc == 0, err
    assert first["intent_verified"] and first["intent_digest"] == big["intent_digest"]
    assert first["state"] == "pending_approval" and first["approved_by"] == ["officer-1"]
    rc, second, err = _approve(tssctl, live_cluster, big["request_id"], "officer-2")
    assert rc == 0, err
    done = second["request"] if second["state"] == "signed" else _final_json(live_cluster, big["request_id"])
    assert done["state"] == "signed"
    assert sorted(done["approved_by"]) == ["officer-1", "officer-2"]
    assert Account.recover_transaction(done["raw_tx"]) == key.eth_address


def _final_json(info: cluster.ClusterInfo, request_id: str) -> dict[str, Any]:
    from coordinator.cli_common import request_json

    return request_json(_final(info, request_id))


def test_largest_tier_waits_for_the_time_lock(
    live_cluster: cluster.ClusterInfo, key: coordinator_pb2.Key, tssctl: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    big = _withdraw(tssctl, key, 20 * ETH)
    assert big["state"] == "pending_approval"
    before = int(time.time())
    for who in ("officer-2", "officer-3"):
        rc, out, err = _approve(tssctl, live_cluster, big["request_id"], who)
        assert rc == 0, err
    assert out["state"] == "time_locked"
    assert before + 300 - 5 <= out["request"]["time_lock_until"] <= int(time.time()) + 300
    # Human output: the time lock as a UTC date, the list with amount, destination and age.
    lock = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(out["request"]["time_lock_until"]))
    shown_text = _human(live_cluster, capsys, "request", "show", big["request_id"])
    assert f"time lock until {lock}" in shown_text and str(out["request"]["time_lock_until"]) not in shown_text
    listed = _human(live_cluster, capsys, "request", "list", "--key", key.key_id, "--state", "time_locked")
    row = next(line for line in listed.splitlines() if line.startswith(big["request_id"]))
    assert row.split()[1:5] == ["time_locked", "20", "ETH", TO] and row.split()[5].endswith(("s", "m"))
    rc, _, _ = tssctl("reject", big["request_id"], "--officer", "officer-1", "--reason", "not today")
    assert rc == 0
    rc, shown, _ = tssctl("request", "show", big["request_id"])
    assert shown["state"] == "rejected" and "officer-1" in shown["error"]
    # The coordinator's log has the move, with its from- and to-state.
    lines = (live_cluster.root / "logs" / "coordinator.log").read_text().splitlines()
    events = [json.loads(line) for line in lines if line.startswith("{")]  # not gRPC core's own lines
    moves = [
        (e["from_state"], e["to_state"])
        for e in events
        if e.get("event") == "request_state_changed" and e.get("request_id") == big["request_id"]
    ]
    assert moves[0] == ("", "submitted") and moves[-2:] == [("approved", "time_locked"), ("time_locked", "rejected")]


def _human(info: cluster.ClusterInfo, capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """`tssctl ARGV` without --json: its stdout."""
    from coordinator.cli import main

    capsys.readouterr()
    assert main([*argv, "--dir", str(info.root)]) == 0
    return capsys.readouterr().out


def test_forged_and_misdirected_approvals_are_refused(
    live_cluster: cluster.ClusterInfo, key: coordinator_pb2.Key, tssctl: Any
) -> None:
    a = _withdraw(tssctl, key, 2 * ETH)
    b = _withdraw(tssctl, key, 3 * ETH)
    info = live_cluster
    with CoordinatorClient(info.coordinator, info.client_tls("officer-2")) as o2:
        intent_a = officer.review(o2, a["request_id"]).intent
        intent_b = officer.review(o2, b["request_id"]).intent
        now = int(time.time())
        # Forged: officer-2's name, someone else's key.
        forged = sign_approval(Ed25519PrivateKey.generate(), "officer-2", intent_a, now)
        with pytest.raises(grpc.RpcError) as exc:
            o2.approve(a["request_id"], forged.to_bytes())
        assert exc.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert exc.value.details().startswith("bad_signature")
        # A genuine approval of request A replayed on request B.
        genuine_a = sign_approval(officer.load_key(info.officer_key("officer-2")), "officer-2", intent_a, now)
        with pytest.raises(grpc.RpcError) as exc:
            o2.approve(b["request_id"], genuine_a.to_bytes())
        assert exc.value.details().startswith("intent_mismatch")
        # officer-2's certificate presenting officer-3's genuine approval of B.
        by_3 = sign_approval(officer.load_key(info.officer_key("officer-3")), "officer-3", intent_b, now)
        with pytest.raises(grpc.RpcError) as exc:
            o2.approve(b["request_id"], by_3.to_bytes())
        assert exc.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert exc.value.details().startswith("officer_mismatch")
    # A wrong key file under the officer's own name, through the CLI.
    wrong = info.root / "wrong.key"
    officer.write_key(wrong)
    rc, _, err = tssctl("approve", a["request_id"], "--yes", "--officer", "officer-1", "--key", str(wrong))
    assert rc == 1 and "bad_signature" in err
    for r in (a, b):
        rc, shown, _ = tssctl("request", "show", r["request_id"])
        assert shown["state"] == "pending_approval" and shown["approved_by"] == []
    for r in (a, b):
        assert tssctl("reject", r["request_id"], "--officer", "officer-3")[0] == 0


def test_officer_tool_refuses_an_intent_that_is_not_the_body_shown(
    live_cluster: cluster.ClusterInfo, key: coordinator_pb2.Key, tssctl: Any
) -> None:
    r = _withdraw(tssctl, key, 2 * ETH)
    with CoordinatorClient(live_cluster.coordinator, live_cluster.client_tls("officer-1")) as c:
        shown = c.get_request(r["request_id"])
        policy_hash = bytes(c.governance().policy_hash)
    officer.rebuild_intent(shown, policy_hash)  # the honest view passes
    for mutate in (
        lambda m: setattr(m.eth, "value", str(200 * ETH)),  # another amount than the one digested
        lambda m: setattr(m.eth, "to", DENIED),
        lambda m: setattr(m, "intent_text", m.intent_text.replace("Send 2 ETH", "Send 0.2 ETH")),
        lambda m: setattr(m.expire_time, "seconds", m.expire_time.seconds + 1),  # the field officers read
    ):
        lying = coordinator_pb2.SigningRequest()
        lying.CopyFrom(shown)
        mutate(lying)
        with pytest.raises(officer.IntentMismatch):
            officer.rebuild_intent(lying, policy_hash)
    assert tssctl("reject", r["request_id"], "--officer", "officer-1")[0] == 0


def test_the_initiator_cannot_approve_its_own_request(
    live_cluster: cluster.ClusterInfo, key: coordinator_pb2.Key, tssctl: Any, tmp_path: Path
) -> None:
    # A backend certificate whose name is officer-1's: the request's initiator is officer-1.
    for f in ("ca.pem", "ca.key"):
        shutil.copy(live_cluster.root / "certs" / f, tmp_path / f)
    certs.issue(tmp_path, "officer-1", "backend")
    tx = eth_tx(next(_nonces), ETH, chain_id=1)
    with CoordinatorClient(live_cluster.coordinator, TlsFiles.in_dir(tmp_path, "officer-1")) as be:
        r = be.sign_eth(key.key_id, tx, f"self-{uuid.uuid4()}")
    assert r.state == "pending_approval" and r.initiator == "officer-1"
    rc, _, err = _approve(tssctl, live_cluster, r.request_id, "officer-1")
    assert rc == 1 and "self_approval" in err
    for who in ("officer-2", "officer-3"):  # the two other officers still make the quorum
        rc, _, err = _approve(tssctl, live_cluster, r.request_id, who)
        assert rc == 0, err
    done = _final(live_cluster, r.request_id)
    assert done.state == "signed" and sorted(done.approved_by) == ["officer-2", "officer-3"]


def test_freeze_blocks_signing_and_only_a_quorum_unfreezes(
    live_cluster: cluster.ClusterInfo, key: coordinator_pb2.Key, tssctl: Any
) -> None:
    held = _withdraw(tssctl, key, ETH)
    assert held["state"] == "pending_approval"
    rc, frozen, err = tssctl("freeze", "--officer", "officer-3", "--key", str(live_cluster.officer_key("officer-3")))
    assert rc == 0, err
    assert [f["scope"] for f in frozen["frozen"]] == ["*"] and frozen["frozen"][0]["by"] == "officer-3"

    blocked = _withdraw(tssctl, key, 10**15)
    assert blocked["state"] == "blocked" and blocked["policy_reason"] == "frozen"
    for who in ("officer-1", "officer-2"):
        rc, out, err = _approve(tssctl, live_cluster, held["request_id"], who)
        assert rc == 0, err
    assert out["state"] == "approved" and out["request"]["policy_reason"] == "frozen"

    rc, _, err = tssctl("unfreeze", "--officer", "officer-1")
    assert rc == 1 and "unfreeze_quorum_not_met" in err
    order = live_cluster.root / "unfreeze.json"
    rc, saved, err = tssctl("unfreeze", "--officer", "officer-1", "--out", str(order))
    assert rc == 0 and saved["signed_by"] == ["officer-1"], err
    rc, lifted, err = tssctl("unfreeze", "--order", str(order), "--officer", "officer-2")
    assert rc == 0, err
    assert lifted["frozen"] == [] and lifted["signed_by"] == ["officer-1", "officer-2"]

    released = _final(live_cluster, held["request_id"])  # the scheduler signs what the freeze held
    assert released.state == "signed", released.error
    assert Account.recover_transaction(released.raw_tx) == key.eth_address
    assert _withdraw(tssctl, key, 10**15)["state"] == "signed"


def test_cold_sweep_goes_only_to_the_cold_address(
    live_cluster: cluster.ClusterInfo, key: coordinator_pb2.Key, tssctl: Any
) -> None:
    base = ["sweep", "--network", "eip155:1", "--key", key.key_id, "--cap", str(10 * ETH), "--reserve", str(2 * ETH)]
    rc, out, _ = tssctl(*base, "--hot-balance", str(9 * ETH), "--to", cluster.DEMO_COLD_ADDRESS)
    assert rc == 0 and out["action"] == "none"
    rc, out, err = tssctl(
        *base, "--hot-balance", str(50 * ETH), "--to", cluster.DEMO_COLD_ADDRESS, "--nonce", str(next(_nonces))
    )
    assert rc == 0, err
    assert out["action"] == "proposed" and out["amount"] == str(48 * ETH) and out["kind"] == "cold_sweep"
    assert out["state"] == "pending_approval"
    rc, _, err = _approve(tssctl, live_cluster, out["request_id"], "officer-1")
    assert rc == 0, err
    done = _final(live_cluster, out["request_id"])
    assert done.state == "signed"
    assert Account.recover_transaction(done.raw_tx) == key.eth_address
    rc, out, _ = tssctl(*base, "--hot-balance", str(50 * ETH), "--to", TO, "--nonce", str(next(_nonces)))
    assert out["state"] == "blocked" and out["policy_reason"] == "sweep_destination_not_cold"
    assert rc == EXIT_NOT_SIGNED


def test_policy_change_needs_the_admin_quorum(
    live_cluster: cluster.ClusterInfo, key: coordinator_pb2.Key, tssctl: Any, tmp_path: Path
) -> None:
    rc, doc, _ = tssctl("policy", "show", "--document", "policy")  # the document as admins edit it
    assert rc == 0
    doc["destinations"]["deny"] = [DENIED]  # tightening: takes effect at once
    (tmp_path / "p.json").write_text(json.dumps(doc))
    change = tmp_path / "change.json"
    rc, out, err = tssctl(
        "policy", "propose", str(tmp_path / "p.json"), "--kind", "policy", "--successor", "--admin", "admin-1",
        "--out", str(change),
    )  # fmt: skip
    assert rc == 0 and out["signed_by"] == ["admin-1"] and out["version"] == 2, err
    rc, _, err = tssctl("policy", "propose", str(change), "--kind", "policy", "--as", "admin-1")
    assert rc == 1 and "admin_quorum_not_met" in err
    rc, out, err = tssctl("policy", "propose", str(change), "--kind", "policy", "--admin", "admin-2")
    assert rc == 0, err
    assert out["in_force"] and out["policy_version"] == 2
    assert _withdraw(tssctl, key, 10**15, DENIED)["policy_reason"] == "destination_denied"
    assert _withdraw(tssctl, key, 10**15)["state"] == "signed"  # the signers hold version 2 too


def test_audit_verify_names_a_tampered_entry(live_cluster: cluster.ClusterInfo, tssctl: Any, tmp_path: Path) -> None:
    rc, report, err = tssctl("audit", "verify")
    assert rc == 0 and report["ok"] and report["entries"] > 20, err
    export = tmp_path / "audit.jsonl"
    assert tssctl("audit", "export", "--out", str(export))[0] == 0
    lines = export.read_text().splitlines()
    victim = next(i for i, ln in enumerate(lines) if '"approval"' in ln and "officer-1" in ln)
    entry = json.loads(lines[victim])
    entry["json"] = entry["json"].replace("officer-1", "officer-3")
    lines[victim] = json.dumps(entry)
    (tmp_path / "bad.jsonl").write_text("\n".join(lines) + "\n")
    rc, report, _ = tssctl("audit", "verify", "--file", str(tmp_path / "bad.jsonl"))
    assert rc == 1 and not report["ok"]
    assert report["first_bad_seq"] == entry["seq"] and report["reason"] == "hash_mismatch"

    # Someone with the database file drops the append-only trigger and rewrites an entry.
    db = sqlite3.connect(live_cluster.root / "coordinator" / "coordinator.db", timeout=30)
    try:
        db.execute("DROP TRIGGER audit_log_no_update")
        db.execute("UPDATE audit_log SET actor = 'nobody' WHERE seq = 3")
        db.commit()
    finally:
        db.close()
    rc, report, _ = tssctl("audit", "verify")
    assert rc == 1 and report["first_bad_seq"] == 3 and report["reason"] == "hash_mismatch"
