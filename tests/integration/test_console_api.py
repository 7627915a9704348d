"""The officer console's local API against a real cluster, without a browser (issue 15): the
session token and origin checks, approving only the intent rebuilt from the body with the digest
the page showed, a compromised coordinator refused, a veto of what was shown, the freeze button."""

from __future__ import annotations

import http.client
import itertools
import json
import re
import signal
import ssl
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from tsscustody.v1 import coordinator_pb2

from coordinator import cluster
from coordinator.client import CoordinatorClient

from .console_support import MUTATIONS, LyingCoordinator, call, serving
from .support import ETH, eth_tx

_nonces = itertools.count(500)


@pytest.fixture(scope="module")
def key(live_cluster: cluster.ClusterInfo) -> coordinator_pb2.Key:
    with CoordinatorClient(live_cluster.coordinator, live_cluster.client_tls("operator")) as op:
        return op.create_key("console-api", 2, "112")


def withdraw(info: cluster.ClusterInfo, key: coordinator_pb2.Key) -> coordinator_pb2.SigningRequest:
    """1 ETH on mainnet from a backend: above the automatic tier, two officers must approve."""
    with CoordinatorClient(info.coordinator, info.client_tls("backend")) as be:
        r = be.sign_eth(key.key_id, eth_tx(next(_nonces), ETH, chain_id=1), f"console-{uuid.uuid4()}")
    assert r.state == "pending_approval", r.policy_reason
    return r


def shown(info: cluster.ClusterInfo, request_id: str) -> coordinator_pb2.SigningRequest:
    with CoordinatorClient(info.coordinator, info.client_tls("operator"), timeout=300) as c:
        return c.get_request(request_id)


def view(state: dict[str, Any], request_id: str) -> dict[str, Any]:
    return next(v for v in state["requests"] if v["request_id"] == request_id)


def test_the_local_api_needs_the_session_token_and_its_own_origin(live_cluster: cluster.ClusterInfo) -> None:
    with serving(live_cluster, "officer-1") as s:
        status, headers, page = call(s, "GET", "/", token=None, headers={"Origin": ""})
        assert status == 200 and "Officer console" in page
        assert "script-src 'self'" in headers["content-security-policy"]
        assert "default-src 'none'" in headers["content-security-policy"]
        assert status == 200 and call(s, "GET", "/api/state")[0] == 200
        for token in (None, "x" * 43, s.token[:-1] + ("A" if s.token[-1] != "A" else "B")):
            status, headers, reply = call(s, "GET", "/api/state", token=token)
            assert status == 401 and "token" in reply["error"] and "officer" not in reply
        status, _, reply = call(s, "GET", "/api/state", headers={"Origin": "https://evil.example"})
        assert status == 403 and "cross-origin" in reply["error"]
        status, _, reply = call(s, "GET", "/api/state", headers={"Host": f"evil.example:{s.port}"})
        assert status == 403 and "Host" in reply["error"]  # DNS rebinding: a foreign name for 127.0.0.1
        status, _, reply = call(s, "GET", "/api/state", headers={"Sec-Fetch-Site": "cross-site"})
        assert status == 403
        status, _, reply = call(s, "POST", "/api/freeze", {"scope": "*"}, headers={"Origin": ""})
        assert status == 403 and "Origin" in reply["error"]
        status, _, reply = call(s, "POST", "/api/freeze", {"scope": "*"}, token=None)
        assert status == 401
        status, headers, _ = call(s, "OPTIONS", "/api/approve", headers={"Origin": "https://evil.example"})
        assert status in (403, 405) and not [h for h in headers if h.startswith("access-control-")]
    with CoordinatorClient(live_cluster.coordinator, live_cluster.client_tls("operator")) as op:
        assert list(op.governance().frozen) == []  # none of the refused freezes happened


def test_the_event_stream_is_guarded_like_every_call_and_streams_another_officers_approval(
    live_cluster: cluster.ClusterInfo, key: coordinator_pb2.Key
) -> None:
    r = withdraw(live_cluster, key)
    with serving(live_cluster, "officer-3") as s, serving(live_cluster, "officer-1") as one:
        for token in (None, "x" * 43):
            status, _, reply = call(s, "GET", "/api/events", token=token)
            assert status == 401 and "token" in reply["error"]
        status, _, reply = call(s, "GET", "/api/events", headers={"Origin": "https://evil.example"})
        assert status == 403 and "cross-origin" in reply["error"]
        status, _, reply = call(s, "GET", "/api/events", headers={"Sec-Fetch-Site": "cross-site"})
        assert status == 403
        status, _, reply = call(s, "GET", "/api/events", headers={"Host": f"localhost:{s.port}"})
        assert status == 403 and "Host" in reply["error"]
        _, _, state = call(s, "GET", "/api/state")  # the list the page shows: its open requests watched
        assert r.request_id in state["watching"] and state["poll_seconds"] == 15
        conn = stream(s)
        try:
            reply = conn.getresponse()
            assert reply.status == 200 and reply.getheader("Content-Type", "").startswith("text/event-stream")
            csp = reply.getheader("Content-Security-Policy", "")
            assert reply.getheader("Content-Length") is None and "default-src 'none'" in csp
            digest = view(state, r.request_id)["intent_digest"]
            status, _, done = call(one, "POST", "/api/approve", {"request_id": r.request_id, "intent_digest": digest})
            assert status == 200, done
            card = next_card(reply, r.request_id, lambda c: c["approved_by"] == ["officer-1"])
            assert card["verified"] and card["state"] == "pending_approval" and not card["approved_by_me"]
        finally:
            conn.close()


def stream(s: Any) -> http.client.HTTPSConnection:
    """The page's event stream opened as the page opens it (token header, its own Origin)."""
    ctx = ssl.create_default_context(cadata=s.certificate.pem.decode())
    conn = http.client.HTTPSConnection("127.0.0.1", s.port, context=ctx, timeout=60)
    conn.request("GET", "/api/events", headers={"Authorization": f"Bearer {s.token}", "Origin": s.origin})
    return conn


def next_card(reply: http.client.HTTPResponse, request_id: str, until: Any) -> dict[str, Any]:
    """Read events until a `request` card of `request_id` satisfies `until` (60 s socket timeout)."""
    event, data = "", []
    while True:
        line = reply.readline().decode()
        assert line, "the stream ended"
        if line == "\n":
            if event == "request" and data:
                card = json.loads("\n".join(data))
                if card["request_id"] == request_id and until(card):
                    return card
            event, data = "", []
        elif line.startswith("event: "):
            event = line[7:].strip()
        elif line.startswith("data: "):
            data.append(line[6:].rstrip("\n"))


def test_two_consoles_approve_the_digest_they_showed_until_signed(
    live_cluster: cluster.ClusterInfo, key: coordinator_pb2.Key
) -> None:
    r = withdraw(live_cluster, key)
    with serving(live_cluster, "officer-1") as one, serving(live_cluster, "officer-2") as two:
        status, _, state = call(one, "GET", "/api/state")
        v = view(state, r.request_id)
        assert status == 200 and v["verified"] and v["state"] == "pending_approval"
        assert v["intent"]["amount"] == "1" and v["intent"]["asset"] == "ETH" and v["intent"]["network"] == "eip155:1"
        assert v["intent_digest"] == bytes(r.intent_digest).hex() == v["intent"]["digest"]
        assert v["rule"] == "medium-2-of-officers: require 2 of officers" and v["intent"]["fee_cap"] == "0.00063 ETH"
        other = withdraw(live_cluster, key)  # the digest the page showed for another request
        for digest in (bytes(other.intent_digest).hex(), "00" * 32, "not hex"):
            status, _, reply = call(one, "POST", "/api/approve", {"request_id": r.request_id, "intent_digest": digest})
            assert status == 409 and ("not signing" in reply["error"] or "64 lowercase hex" in reply["error"])
        assert list(shown(live_cluster, r.request_id).approved_by) == []  # nothing was signed
        body = {"request_id": r.request_id, "intent_digest": v["intent_digest"]}
        status, _, reply = call(one, "POST", "/api/approve", body)
        assert status == 200 and reply["state"] == "pending_approval", reply
        status, _, reply = call(two, "POST", "/api/approve", body)
        assert status == 200, reply
        # A veto is signed only over the digest the page showed, and that is not `other`'s.
        status, _, reply = call(two, "POST", "/api/reject", {**body, "request_id": other.request_id})
        assert status == 409 and "not signing" in reply["error"]
        assert shown(live_cluster, other.request_id).state == "pending_approval"
    with CoordinatorClient(live_cluster.coordinator, live_cluster.client_tls("operator"), timeout=300) as c:
        for _ in c.watch(r.request_id):
            pass
        done = c.get_request(r.request_id)
    assert done.state == "signed" and sorted(done.approved_by) == ["officer-1", "officer-2"]
    assert Account.recover_transaction(done.raw_tx) == key.eth_address
    with serving(live_cluster, "officer-3") as three:
        _, _, state = call(three, "GET", "/api/state")
        assert view(state, r.request_id)["state"] == "signed"
        digest = view(state, other.request_id)["intent_digest"]
        status, _, reply = call(three, "POST", "/api/reject", {"request_id": other.request_id, "intent_digest": digest})
        assert status == 200 and reply["state"] == "rejected"


@pytest.mark.parametrize("lie", sorted(MUTATIONS))
def test_a_coordinator_showing_another_intent_than_the_body_is_refused(
    live_cluster: cluster.ClusterInfo, key: coordinator_pb2.Key, lie: str
) -> None:
    r = withdraw(live_cluster, key)
    lying = LyingCoordinator(live_cluster, "officer-1", MUTATIONS[lie])
    with serving(live_cluster, "officer-1", lying) as s:
        _, _, state = call(s, "GET", "/api/state")
        v = view(state, r.request_id)
        assert not v["verified"] and v["problem"], v
        body = {"request_id": r.request_id, "intent_digest": v["intent_digest"]}
        status, _, reply = call(s, "POST", "/api/approve", body)
        assert status == 409 and ("not signing" in reply["error"] or "decoded text" in reply["error"]), reply
    after = shown(live_cluster, r.request_id)
    assert after.state == "pending_approval" and list(after.approved_by) == []
    with serving(live_cluster, "officer-3") as honest:  # an honest view of the same request passes
        _, _, state = call(honest, "GET", "/api/state")
        assert view(state, r.request_id)["verified"]
        call(honest, "POST", "/api/reject", {"request_id": r.request_id, "intent_digest": bytes(r.intent_digest).hex()})


def test_the_freeze_button_delivers_the_officers_order_everywhere(
    live_cluster: cluster.ClusterInfo, key: coordinator_pb2.Key, tssctl: Any
) -> None:
    with serving(live_cluster, "officer-3") as s:
        status, _, reply = call(s, "POST", "/api/freeze", {"scope": "*"})
        assert status == 200 and reply["ok"], reply
        assert reply["officer"] == "officer-3" and reply["coordinator"]["confirmed"]
        assert sorted(reply["signers"]) == ["1", "2", "3"] and all(c["confirmed"] for c in reply["signers"].values())
        _, _, state = call(s, "GET", "/api/state")
        assert [f["scope"] for f in state["frozen"]] == ["*"] and state["frozen"][0]["by"] == "officer-3"
    blocked = None
    with CoordinatorClient(live_cluster.coordinator, live_cluster.client_tls("backend")) as be:
        blocked = be.sign_eth(key.key_id, eth_tx(next(_nonces), 10**15, chain_id=1), f"console-{uuid.uuid4()}")
    assert blocked.state == "blocked" and blocked.policy_reason == "frozen"
    order = live_cluster.root / "console-unfreeze.json"
    assert tssctl("unfreeze", "--officer", "officer-1", "--out", str(order))[0] == 0
    rc, lifted, err = tssctl("unfreeze", "--order", str(order), "--officer", "officer-2")
    assert rc == 0 and lifted["frozen"] == [], err


def test_tssctl_officer_console_serves_the_printed_url_until_interrupted(
    live_cluster: cluster.ClusterInfo, tmp_path: Path
) -> None:
    pem = tmp_path / "console.pem"
    argv = [sys.executable, "-m", "coordinator.cli", "officer", "console", "--officer", "officer-2"]
    argv += ["--dir", str(live_cluster.root), "--cert-out", str(pem), "--json"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # noqa: S603 - our own argv
    try:
        assert proc.stderr is not None and proc.stdout is not None
        started = json.loads(proc.stdout.readline())
        line = proc.stderr.readline()
        assert started["url"] in line and started["officer"] == "officer-2"
        found = re.search(r"(https://127\.0\.0\.1:(\d+))/#token=([A-Za-z0-9_-]+)", line)
        assert found, line
        origin, port, token = found.group(1), int(found.group(2)), found.group(3)
        ctx = ssl.create_default_context(cafile=str(pem))  # the certificate it wrote is the one it serves
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=60)
        conn.request("GET", "/api/state", headers={"Authorization": f"Bearer {token}", "Origin": origin})
        reply = conn.getresponse()
        state = json.loads(reply.read())
        conn.close()
        assert reply.status == 200 and state["officer"] == "officer-2" and state["policy_version"] == 1
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=90) == 0  # it joins its request and watch threads (each bounded) first
        assert "officer console stopped" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
