"""Bounded inputs against real processes: the two reproductions of issue 9 item 7 (a 3 MB freeze
order, a 3 MB transaction `data`), list pagination, and a seeded, bounded fuzz over every public
RPC of the coordinator and every RPC of a signer (loopback only, a few hundred calls)."""

from __future__ import annotations

import json
import random
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_status import rpc_status
from tsscustody.v1 import common_pb2, coordinator_pb2, coordinator_pb2_grpc, signer_pb2, signer_pb2_grpc

from coordinator import cluster
from coordinator.cli import main
from coordinator.client import CoordinatorClient
from signer.chains import bitcoin as btc
from signer.node import limits
from signer.node.tls import channel_credentials

from .support import ETH, TO, eth_tx

REGTEST = btc.NETWORKS["regtest"]
BAD_CODES = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}
# Raised by gRPC itself before or around the servicer (a message over the limit, a deadline): no ErrorInfo.
GRPC_OWN = {grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED}
BIG = 3 * limits.MIB
WHO = ("operator", "backend", "auditor", "officer-1", "officer-2", "officer-3", "admin-1", "admin-2", "coordinator")


def _channel(info: cluster.ClusterInfo, address: str, who: str) -> grpc.Channel:
    """A channel that may send far more than the servers accept (the attacker's own client)."""
    opts = limits.channel_options(64 * limits.MIB, 64 * limits.MIB)
    return grpc.secure_channel(address, channel_credentials(info.client_tls(who)), options=opts)


@pytest.fixture(scope="module")
def key(live_cluster: cluster.ClusterInfo) -> coordinator_pb2.Key:
    with CoordinatorClient(live_cluster.coordinator, live_cluster.client_tls("operator")) as op:
        return op.create_key("bounded-inputs", 2, "112")


@pytest.fixture(scope="module")
def stubs(live_cluster: cluster.ClusterInfo) -> Iterator[Callable[[str], Any]]:
    channels: dict[str, grpc.Channel] = {}

    def stub(who: str) -> Any:
        if who not in channels:
            channels[who] = _channel(live_cluster, live_cluster.coordinator, who)
        return coordinator_pb2_grpc.CoordinatorStub(channels[who])

    yield stub
    for ch in channels.values():
        ch.close()


def _db(info: cluster.ClusterInfo) -> Path:
    return info.root / "coordinator" / "coordinator.db"


def _db_bytes(info: cluster.ClusterInfo) -> int:
    """The database's used pages, WAL included (file sizes would count a reused WAL)."""
    with sqlite3.connect(f"file:{_db(info)}?mode=ro", uri=True) as conn:
        pages, free, size = (
            conn.execute(f"PRAGMA {p}").fetchone()[0] for p in ("page_count", "freelist_count", "page_size")
        )
    return int((pages - free) * size)


def _audit(info: cluster.ClusterInfo) -> list[tuple[int, str]]:
    with sqlite3.connect(f"file:{_db(info)}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT seq, * FROM audit_log ORDER BY seq").fetchall()
    return [(int(r[0]), json.dumps([str(c) for c in r[1:]])) for r in rows]


def _eth(value: int = 11 * ETH, data: bytes = b"", nonce: int = 0) -> common_pb2.EthTransaction:
    return eth_tx(nonce, value, chain_id=1, gas_limit=100_000, data=data)


def test_a_3mb_freeze_order_is_refused_and_audited_by_hash_only(
    live_cluster: cluster.ClusterInfo, stubs: Callable[[str], Any]
) -> None:
    officer = stubs("officer-1")
    before, size_before = _audit(live_cluster), _db_bytes(live_cluster)
    with pytest.raises(grpc.RpcError) as whole:
        officer.Freeze(coordinator_pb2.FreezeOrderRequest(order=b"\x07" * BIG), timeout=30)
    assert whole.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # above the server's message limit
    over = limits.MAX_ORDER + 4096
    with pytest.raises(grpc.RpcError) as field:
        officer.Freeze(coordinator_pb2.FreezeOrderRequest(order=b"\x07" * over), timeout=30)
    assert field.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field.value.details() == f"order: {over} bytes exceeds the limit of {limits.MAX_ORDER}"
    after = _audit(live_cluster)
    new = after[len(before) :]
    assert len(new) == 1  # the refusal is recorded once, by SHA-256 and length
    text = new[0][1]
    assert "freeze_refused" in text and "too_large" in text and str(over) in text
    assert len(text) < 4096 and "0707070707" not in text
    assert _db_bytes(live_cluster) - size_before < 256 * 1024


def test_a_3mb_transaction_data_is_refused_at_submit_and_listing_still_works(
    live_cluster: cluster.ClusterInfo,
    key: coordinator_pb2.Key,
    stubs: Callable[[str], Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    backend = stubs("backend")

    def submit(data: bytes, nonce: int) -> Any:
        return backend.SubmitSigningRequest(
            coordinator_pb2.SubmitSigningRequestRequest(
                key_id=key.key_id, idempotency_key=uuid.uuid4().hex, eth=_eth(data=data, nonce=nonce)
            ),
            timeout=60,
        )

    with pytest.raises(grpc.RpcError) as whole:
        submit(b"\x01" * BIG, 1)
    assert whole.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    over = limits.MAX_TX_DATA + 1
    with pytest.raises(grpc.RpcError) as field:
        submit(b"\x01" * over, 2)
    assert field.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field.value.details() == f"eth.data: {over} bytes exceeds the limit of {limits.MAX_TX_DATA}"
    stored = [submit(bytes([i]) * limits.MAX_TX_DATA, 10 + i).request_id for i in range(5)]  # at the limit

    rc = main(["--json", "request", "list", "--limit", "0", "--dir", str(live_cluster.root)])
    out, err = capsys.readouterr()
    assert rc == 0, err
    listed = [r["request_id"] for r in json.loads(out)["requests"]]
    assert set(stored) <= set(listed)

    reader = stubs("operator")
    page = reader.ListRequests(coordinator_pb2.ListRequestsRequest(page_size=100_000), timeout=30)
    assert len(page.requests) <= limits.MAX_PAGE_SIZE and page.ByteSize() <= limits.LIST_PAGE_BYTES + 256 * 1024
    seen: list[str] = []
    token = ""
    while True:  # two at a time: every request exactly once, newest first
        page = reader.ListRequests(coordinator_pb2.ListRequestsRequest(page_size=2, page_token=token), timeout=30)
        assert len(page.requests) <= 2
        seen += [r.request_id for r in page.requests]
        token = page.next_page_token
        if not token:
            break
    assert seen == listed and len(set(seen)) == len(seen)
    with pytest.raises(grpc.RpcError) as junk:
        junk_token = coordinator_pb2.ListRequestsRequest(page_token="not-a-token")  # noqa: S106
        reader.ListRequests(junk_token, timeout=30)
    assert junk.value.code() == grpc.StatusCode.INVALID_ARGUMENT


# --- the fuzz ------------------------------------------------------------------------------------
class _Gen:
    """Random, oversized and malformed field values from one seeded generator."""

    def __init__(self, seed: int, real: dict[str, str]) -> None:
        self.r = random.Random(seed)  # noqa: S311 - reproducible fuzz input, not a secret
        self.real = real

    def size(self, limit: int) -> int:
        # ... up to far above the field limit but within a message: what a size check must stop.
        return self.r.choice([0, 1, 7, limit // 2, limit, limit + 1, 2 * limit + 3, min(30 * limit, 900_000)])

    def text(self, limit: int = limits.MAX_ID) -> str:
        alphabet = "abcXYZ019-_./*é\u202e\x00 "
        return "".join(self.r.choice(alphabet) for _ in range(self.size(limit)))

    def blob(self, limit: int) -> bytes:
        return self.r.randbytes(self.size(limit))

    def word(self, *valid: str) -> str:
        return self.r.choice([*valid, "", "x" * 40, self.text(limits.MAX_WORD)])

    def id(self, kind: str) -> str:
        return self.real[kind] if kind in self.real and self.r.random() < 0.3 else self.text()

    def number(self, *valid: str) -> str:
        return self.r.choice([*valid, str(2**256), "-1", "1e9", "9" * 100])

    def eth(self) -> common_pb2.EthTransaction:
        # Never a small valid value: an automatic-tier withdrawal would be signed for real.
        return common_pb2.EthTransaction(
            chain_id=self.r.choice([0, 1, 2**63]),
            nonce=self.r.randrange(2**64),
            max_priority_fee_per_gas=self.number(str(10**9)),
            max_fee_per_gas=self.number(str(30 * 10**9)),
            gas_limit=self.r.choice([0, 21000, 2**64 - 1]),
            to=self.r.choice([TO, "", "0x12", self.text(100)]),
            value=self.number(str(11 * ETH)),
            data=self.blob(limits.MAX_TX_DATA),
        )

    def uints(self, limit: int, top: int = 2**32) -> list[int]:
        return [self.r.randrange(top) for _ in range(self.size(limit))]


def _coordinator_calls(g: _Gen) -> list[tuple[str, str, Any, int]]:
    """(method, certificate, request, bytes the call may add to the database whatever its outcome:
    rows, audit entries and any payload a refusal records; an accepted request's body is counted
    separately). Every round also submits one well-formed held request whose `data`
    is random up to the limit, so accepted requests are part of the growth too."""
    r, c = g.r, coordinator_pb2
    order = g.blob(limits.MAX_ORDER)
    change = g.text(limits.MAX_CHANGE_JSON)
    eth = g.eth()
    held = _eth(value=11 * ETH, data=r.randbytes(r.randrange(limits.MAX_TX_DATA + 1)), nonce=r.randrange(2**32))
    # What a call may add: a few KiB of rows and audit entries, plus whatever of its payload the
    # service keeps (a refused order or change within its limit, an accepted request's body).
    small = 4 * 1024
    kept_order = small + (8 * len(order) if len(order) <= limits.MAX_ORDER else 0)
    kept_change = small + (8 * len(change.encode()) if len(change) <= limits.MAX_CHANGE_JSON else 0)
    menu: list[tuple[str, str, Any, int]] = [
        (
            "CreateKey",
            "operator",
            c.CreateKeyRequest(name=g.text(), threshold=r.choice([0, 1, 4, 9, 2**31]), level=g.word("112")),
            small,
        ),
        ("GetKey", "backend", c.GetKeyRequest(key_id=g.id("key")), 0),
        (
            "SubmitSigningRequest",
            "backend",
            c.SubmitSigningRequestRequest(
                key_id=g.id("key"),
                idempotency_key=g.text(),
                path=g.uints(limits.MAX_PATH, 2**31),
                eth=eth,
                kind=g.word("withdrawal", "cold_sweep"),
            ),
            small,
        ),
        (
            "SubmitSigningRequest",
            "backend",
            c.SubmitSigningRequestRequest(key_id=g.real["key"], idempotency_key=uuid.uuid4().hex, eth=held),
            small,
        ),
        (
            "SubmitSigningRequest",
            "backend",
            c.SubmitSigningRequestRequest(
                key_id=g.id("key"),
                idempotency_key=g.text(),
                psbt=b"psbt\xff" + g.blob(limits.MAX_PSBT),  # a PSBT's magic, then anything
                kind=g.word("withdrawal", "cold_sweep"),
            ),
            small,
        ),
        (
            "SubmitSigningRequest",
            "backend",
            c.SubmitSigningRequestRequest(
                key_id=g.id("key"),
                idempotency_key=g.text(),
                path=g.uints(limits.MAX_PATH, 2**31),
                message_standard=g.word("eip191", "eip712"),
                message_body=g.blob(limits.MAX_MESSAGE),
            ),
            small,
        ),
        ("GetRequest", "auditor", c.GetRequestRequest(request_id=g.id("request")), 0),
        (
            "ListRequests",
            "officer-2",
            c.ListRequestsRequest(
                key_id=g.id("key"),
                state=g.word("blocked", "pending_approval"),
                limit=r.randrange(2**32),
                page_size=r.randrange(2**32),
                page_token=r.choice(["", g.text(limits.MAX_PAGE_TOKEN), "1.5/x", "nan/x"]),
            ),
            0,
        ),
        (
            "ListKeys",
            "auditor",
            c.ListKeysRequest(
                page_size=r.randrange(2**32),
                page_token=r.choice(["", g.text(limits.MAX_PAGE_TOKEN), "1.5/x", "nan/x"]),
            ),
            0,
        ),
        ("Watch", "backend", c.GetRequestRequest(request_id=g.text()), 0),
        (
            "ApproveRequest",
            "officer-1",
            c.ApproveRequestRequest(request_id=g.id("request"), approval=g.blob(limits.MAX_APPROVAL)),
            small,
        ),
        (
            "RejectRequest",
            "officer-2",
            c.RejectRequestRequest(
                request_id=g.id("request"),
                officer_id=g.word("officer-2"),
                signature=g.blob(limits.MAX_SIGNATURE),
                reason=g.text(limits.MAX_REASON),
            ),
            small,
        ),
        ("Freeze", "officer-1", c.FreezeOrderRequest(order=order), kept_order),
        ("Unfreeze", "officer-3", c.FreezeOrderRequest(order=order), kept_order),
        ("GetGovernance", "operator", c.GetGovernanceRequest(), 0),
        (
            "ProposeChange",
            "admin-1",
            c.ProposeChangeRequest(kind=g.word("policy", "registry"), change_json=change),
            kept_change,
        ),
        ("ExportAudit", "auditor", c.ExportAuditRequest(since_seq=r.randrange(2**64)), 0),
        (
            "AttestReport",
            r.choice(["operator", "admin-2"]),
            c.AttestReportRequest(report_digest=g.blob(32), kind=g.word("drill")),
            small,
        ),
        (
            "ReportBalance",
            "backend",
            c.ReportBalanceRequest(
                chain_id=r.choice([0, 1, 2**63]),
                address=r.choice([TO, "", g.text(100)]),
                asset=g.word("ETH"),
                amount=g.number(str(ETH)),
                next_nonce=r.randrange(2**64),
            ),
            small,  # no hot wallet is configured: a report is refused, never stored
        ),
        (
            "ReportUtxos",
            "backend",
            c.ReportUtxosRequest(
                network=g.word("regtest", REGTEST.caip2),
                address=r.choice([btc.address(b"\x00\x14" + bytes(20), REGTEST), "", g.text(100)]),
                utxos=[
                    c.Utxo(
                        txid=g.blob(32), vout=r.randrange(2**32), amount_sat=r.randrange(2**64), prev_tx=g.blob(4096)
                    )
                    for _ in range(r.randrange(4))
                ],
            ),
            small,  # no hot wallet is configured: a report is refused, never stored
        ),
        ("GetRequestTrail", "officer-1", c.GetRequestRequest(request_id=g.id("request")), 0),
    ]
    return menu


def _signer_calls(g: _Gen) -> list[tuple[str, str, Any]]:
    r, s = g.r, signer_pb2

    def envelope() -> common_pb2.Envelope:
        return common_pb2.Envelope(
            session_id=g.blob(limits.MAX_SESSION_ID),
            protocol=g.word("keygen", "presign"),
            round=g.word("keygen/1"),
            sender=r.randrange(2**32),
            recipient=r.randrange(5),
            payload=g.blob(r.choice([64, 4096, limits.MAX_ENVELOPE_PAYLOAD])),
            signature=g.blob(limits.MAX_SIGNATURE),
        )

    return [
        (
            "StartSession",
            "coordinator",
            s.StartSessionRequest(
                session_id=g.blob(limits.MAX_SESSION_ID),
                protocol=g.word("keygen", "presign", "aux", "refresh"),
                key_id=g.text(),  # never a real key: aux or presign on it would start real work
                parties=r.choice([[1, 2, 3], [1, 2], [0, 1], g.uints(limits.MAX_PARTIES, 100)]),
                threshold=r.choice([0, 2, 3, 2**31]),
                level=g.word("112"),
                path=g.uints(limits.MAX_PATH),
            ),
        ),
        (
            "Deliver",
            "coordinator",
            s.DeliverRequest(
                session_id=g.blob(limits.MAX_SESSION_ID), envelopes=[envelope() for _ in range(r.choice([0, 1, 3, 9]))]
            ),
        ),
        (
            "PartialSign",
            "coordinator",
            s.PartialSignRequest(
                key_id=g.text(),
                presignature_id=g.blob(limits.MAX_HASH),
                eth=g.eth(),
                request_id=g.text(),
                approvals=[g.blob(limits.MAX_APPROVAL) for _ in range(r.choice([0, 2, limits.MAX_APPROVALS + 1]))],
                initiator=g.text(),
                expires_at=r.randrange(-(2**63), 2**63),
                path=g.uints(limits.MAX_PATH),
                policy_hash=g.blob(limits.MAX_HASH),
                kind=g.word("withdrawal"),
            ),
        ),
        (
            "PartialSign",
            "coordinator",
            s.PartialSignRequest(
                key_id=g.text(),
                presignature_id=g.blob(limits.MAX_HASH),
                psbt=g.blob(limits.MAX_PSBT),
                input_index=r.randrange(2**32),
                request_id=g.text(),
                path=g.uints(limits.MAX_PATH),
                policy_hash=g.blob(limits.MAX_HASH),
                kind=g.word("withdrawal"),
            ),
        ),
        (
            "PartialSign",
            "coordinator",
            s.PartialSignRequest(
                key_id=g.text(),
                presignature_id=g.blob(limits.MAX_HASH),
                message_standard=g.word("eip191", "eip712"),
                message_body=g.blob(limits.MAX_MESSAGE),
                request_id=g.text(),
                path=g.uints(limits.MAX_PATH),
                policy_hash=g.blob(limits.MAX_HASH),
                kind=g.word("message"),
            ),
        ),
        ("NodeStatus", "coordinator", s.NodeStatusRequest()),
        (
            "InstallChange",
            r.choice(["admin-2", "coordinator"]),
            s.InstallChangeRequest(kind=g.word("policy", "registry"), change_json=g.text(limits.MAX_CHANGE_JSON)),
        ),
        (
            "ApplyFreezeOrder",
            r.choice(["officer-2", "coordinator"]),
            s.ApplyFreezeOrderRequest(order=g.blob(limits.MAX_ORDER), unfreeze=r.random() < 0.5),
        ),
    ]


def _invoke(stub: Any, method: str, request: Any) -> tuple[grpc.StatusCode, bool]:
    """The call's status code, and whether an error came with a google.rpc.Status (its reason)."""
    try:
        reply = getattr(stub, method)(request, timeout=30)
        if method in ("Watch", "ExportAudit"):
            for _ in reply:
                pass
        return grpc.StatusCode.OK, True
    except grpc.RpcError as exc:
        code: grpc.StatusCode = exc.code()
        return code, rpc_status.from_call(exc) is not None  # type: ignore[arg-type]


def test_fuzz_every_rpc_without_internal_errors_deaths_or_unexplained_growth(
    live_cluster: cluster.ClusterInfo, key: coordinator_pb2.Key
) -> None:
    with CoordinatorClient(live_cluster.coordinator, live_cluster.client_tls("backend")) as be:
        held = be.sign_eth(key.key_id, _eth(value=11 * ETH, nonce=999), uuid.uuid4().hex)
    g = _Gen(9, {"key": key.key_id, "request": held.request_id})
    channels = {
        (addr, who): _channel(live_cluster, addr, who)
        for addr in (live_cluster.coordinator, *live_cluster.signers.values())
        for who in WHO
    }
    audit_before, size_before = len(_audit(live_cluster)), _db_bytes(live_cluster)
    allowance, coordinator_calls, seen = 0, 0, dict[tuple[str, str], int]()
    accepted_submits = 0
    bad: list[str] = []
    start = time.monotonic()
    for i in range(12):  # 12 x (18 coordinator + 8 x 3 signer) = 504 calls
        for method, who, request, may_add in _coordinator_calls(g):
            stub = coordinator_pb2_grpc.CoordinatorStub(channels[(live_cluster.coordinator, who)])
            code, explained = _invoke(stub, method, request)
            coordinator_calls += 1
            allowance += may_add
            if method == "SubmitSigningRequest" and code == grpc.StatusCode.OK:
                accepted_submits += 1
                # the body is kept in the request row and its audit entry (a PSBT or message as hex in both)
                allowance += 8 * (len(request.eth.data) + len(request.psbt) + len(request.message_body))
            seen[(method, code.name)] = seen.get((method, code.name), 0) + 1
            if code in BAD_CODES:
                bad.append(f"coordinator {method} #{i}: {code.name}")
            if not explained and code not in GRPC_OWN:  # every error of the coordinator's own has its reason
                bad.append(f"coordinator {method} #{i}: {code.name} without an ErrorInfo")
        for party, addr in live_cluster.signers.items():
            for method, who, request in _signer_calls(g):
                code, _ = _invoke(signer_pb2_grpc.SignerStub(channels[(addr, who)]), method, request)
                seen[(f"signer.{method}", code.name)] = seen.get((f"signer.{method}", code.name), 0) + 1
                if code in BAD_CODES:
                    bad.append(f"signer {party} {method} #{i}: {code.name}")
        if time.monotonic() - start > 240:  # bounded on a slow machine too
            break
    for ch in channels.values():
        ch.close()
    assert not bad, bad
    for name, pid in live_cluster.pids.items():
        assert cluster._alive(pid), f"{name} died under the fuzz"
    assert len(_audit(live_cluster)) - audit_before <= 2 * coordinator_calls
    grown = _db_bytes(live_cluster) - size_before
    assert grown <= allowance + 128 * 1024, (grown, allowance)
    # The fuzz reached past the edge checks, not only the size refusals.
    assert accepted_submits >= 12
    assert any(code == "INVALID_ARGUMENT" for (m, code) in seen if m == "signer.Deliver")
