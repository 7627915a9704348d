"""The typed API fields (AIP-180: added beside the deprecated ones, filled from one value) and
ListKeys paging, over the real gRPC server of test_server.py."""

from __future__ import annotations

import dataclasses
import json
import secrets

import grpc
import pytest
from tsscustody.v1 import coordinator_pb2
from tsscustody_client.names import kind_enum, kind_name, state_enum, state_name

from coordinator.cli import main
from coordinator.request_states import STATES
from signer.node.wire_tx import tx_to_proto
from signer.policy.kinds import REQUEST_KINDS

from .test_server import KEY_ID, TX, Cluster, cluster

__all__ = ["cluster"]  # the module-scoped fixture, imported for this module


def test_every_state_and_kind_has_its_enum_value_and_back() -> None:
    assert all(state_enum(s) and state_name(state_enum(s)) == s for s in STATES)
    assert all(kind_enum(k) and kind_name(kind_enum(k)) == k for k in REQUEST_KINDS)
    assert state_enum("no_such_state") == 0 and kind_name(0) == ""


def test_a_request_carries_both_forms_of_each_value(cluster: Cluster) -> None:
    idem = "typed-" + secrets.token_hex(6)
    with cluster.client("backend") as be:
        req = be.stub.SubmitSigningRequest(
            coordinator_pb2.SubmitSigningRequestRequest(
                key_id=KEY_ID,
                idempotency_key=idem,
                path=[1, 2],
                eth=tx_to_proto(dataclasses.replace(TX, value=10**18)),
                request_kind=coordinator_pb2.REQUEST_KIND_WITHDRAWAL,
            ),
            timeout=60,
        )
        assert (req.state, req.request_state) == ("pending_approval", coordinator_pb2.REQUEST_STATE_PENDING_APPROVAL)
        assert (req.kind, req.request_kind) == ("withdrawal", coordinator_pb2.REQUEST_KIND_WITHDRAWAL)
        assert req.create_time.seconds == req.created_at > 0 and req.expire_time.seconds == req.expires_at > 0
        assert not req.HasField("time_lock_end_time") and req.time_lock_until == 0
        page = be.stub.ListRequests(
            coordinator_pb2.ListRequestsRequest(request_state=coordinator_pb2.REQUEST_STATE_PENDING_APPROVAL),
            timeout=30,
        )
        assert req.request_id in [r.request_id for r in page.requests]
        assert {r.state for r in page.requests} == {"pending_approval"}
        for bad in (
            coordinator_pb2.ListRequestsRequest(state="signed", request_state=coordinator_pb2.REQUEST_STATE_FAILED),
            coordinator_pb2.ListRequestsRequest(request_state=99),
        ):
            with pytest.raises(grpc.RpcError) as exc:
                be.stub.ListRequests(bad, timeout=30)
            assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        mixed = coordinator_pb2.SubmitSigningRequestRequest(
            key_id=KEY_ID,
            idempotency_key=idem + "-mixed",
            eth=tx_to_proto(TX),
            kind="cold_sweep",
            request_kind=coordinator_pb2.REQUEST_KIND_WITHDRAWAL,
        )
        with pytest.raises(grpc.RpcError) as exc:
            be.stub.SubmitSigningRequest(mixed, timeout=30)
        assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "disagrees" in (exc.value.details() or "")


def test_list_keys_pages_every_key(cluster: Cluster) -> None:
    store = cluster.service.store
    first = store.get_key(KEY_ID)
    extra = [f"k-list-{i}" for i in range(3)]
    for key_id in extra:
        store.add_key(dataclasses.replace(first, key_id=key_id, name="listed", created_at=first.created_at + 1))
    seen: list[str] = []
    token = ""
    with cluster.client("auditor") as auditor:
        while True:
            page = auditor.stub.ListKeys(coordinator_pb2.ListKeysRequest(page_size=2, page_token=token), timeout=30)
            assert len(page.keys) <= 2
            seen += [k.key_id for k in page.keys]
            token = page.next_page_token
            if not token:
                break
        with pytest.raises(grpc.RpcError) as exc:
            forged = coordinator_pb2.ListKeysRequest(page_token="forged")  # noqa: S106
            auditor.stub.ListKeys(forged, timeout=30)
        assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert seen == [KEY_ID, *extra]


def test_tssctl_key_list_as_a_table_and_as_json(cluster: Cluster, capsys: pytest.CaptureFixture[str]) -> None:
    remote = [
        "--addr",
        cluster.coordinator,
        "--cacert",
        str(cluster.certs / "ca.pem"),
        "--cert",
        str(cluster.certs / "operator.pem"),
        "--cert-key",
        str(cluster.certs / "operator.key"),
    ]
    assert main(["key", "list", *remote, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["keys"]
    assert listed[0]["key_id"] == KEY_ID and listed[0]["address"].startswith("0x")
    assert [k["key_id"] for k in listed] == [k.key_id for k in cluster.service.store.list_keys()]
    assert main(["key", "list", *remote]) == 0
    header, first, *_ = capsys.readouterr().out.splitlines()
    assert header.split() == ["KEY", "NAME", "T-OF-N", "ADDRESS", "EPOCH", "CREATED"]
    assert first.split()[:3] == [KEY_ID, "hot", "2-of-3"] and first.split()[-1] in ("-", "UTC")  # created at 0: "-"
