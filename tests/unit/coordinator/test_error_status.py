"""Structured errors: every error the coordinator returns carries a google.rpc.Status with an
ErrorInfo (domain "tsscustody", a machine-readable reason), read by a client with
`grpc_status.rpc_status.from_call`, over the real gRPC server of test_server.py."""

from __future__ import annotations

import dataclasses
import inspect
import secrets
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from tsscustody.v1 import coordinator_pb2

from coordinator import errors
from coordinator.error_status import REASONS, reason_of
from signer.node.wire_tx import tx_to_proto

from .test_server import KEY_ID, TX, Cluster, cluster

__all__ = ["cluster"]  # the module-scoped fixture, imported for this module

ROLES = ("backend", "operator", "officer-1", "admin-1", "auditor")


def _info(exc: grpc.RpcError) -> error_details_pb2.ErrorInfo:
    """The ErrorInfo a client reads off a failed call (fails the test if there is none)."""
    status = rpc_status.from_call(exc)  # type: ignore[arg-type]
    assert status is not None, f"no google.rpc.Status on {exc}"
    assert status.code == exc.code().value[0]  # type: ignore[attr-defined]
    infos = [d for d in status.details if d.Is(error_details_pb2.ErrorInfo.DESCRIPTOR)]
    assert len(infos) == 1, status
    info = error_details_pb2.ErrorInfo()
    infos[0].Unpack(info)
    assert info.domain == "tsscustody" and info.reason in coordinator_pb2.ErrorReason.keys()
    assert info.reason != "ERROR_REASON_UNSPECIFIED"
    return info


def _fails(call: Any, *args: Any) -> tuple[grpc.StatusCode, error_details_pb2.ErrorInfo]:
    with pytest.raises(grpc.RpcError) as exc:
        result = call(*args)
        if inspect.isgenerator(result) or hasattr(result, "__next__"):
            list(result)
    return exc.value.code(), _info(exc.value)


def test_every_error_class_has_its_own_reason() -> None:
    classes = {c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.ServiceError)}
    assert classes - {errors.ServiceError} <= set(REASONS), "an error class without a reason"
    assert len({REASONS[c] for c in classes - {errors.ServiceError}}) == len(classes) - 1  # none shared
    assert reason_of(errors.ApprovalRefused("bad_signature", "x", "permission_denied")) == "APPROVAL_INVALID"
    assert reason_of(KeyError("ours")) == "INTERNAL"


def test_a_client_reads_the_reason_of_each_kind_of_error(cluster: Cluster) -> None:
    idem = "errors-" + secrets.token_hex(6)
    with cluster.client("backend") as be:
        code, info = _fails(be.get_request, "no-such-request")
        assert (code, info.reason, info.metadata["request_id"]) == (
            grpc.StatusCode.NOT_FOUND,
            "NOT_FOUND",
            "no-such-request",
        )
        mine = be.sign_eth(KEY_ID, tx_to_proto(TX), idem, (1, 2))
        other = tx_to_proto(dataclasses.replace(TX, value=TX.value + 7))
        code, info = _fails(be.sign_eth, KEY_ID, other, idem, (1, 2))
        assert (code, info.reason) == (grpc.StatusCode.ALREADY_EXISTS, "IDEMPOTENCY_CONFLICT")
        assert info.metadata["request_id"] == mine.request_id  # the caller's own request
        bad = tx_to_proto(TX)
        bad.to = "0x1234"
        code, info = _fails(be.sign_eth, KEY_ID, bad, idem + "-bad", ())
        assert code == grpc.StatusCode.INVALID_ARGUMENT and info.reason == "INVALID_TRANSACTION"
        code, info = _fails(be.get_key, "k" * 10_000)
        assert code == grpc.StatusCode.INVALID_ARGUMENT
        assert (info.reason, info.metadata["field"]) == ("FIELD_TOO_LARGE", "key_id")
        assert "key_id" not in info.metadata  # an oversize id is never echoed
        code, info = _fails(be.create_key, "not-allowed", 2)
        assert (code, info.reason) == (grpc.StatusCode.PERMISSION_DENIED, "ROLE_NOT_ALLOWED")
        pending = be.sign_eth(KEY_ID, tx_to_proto(dataclasses.replace(TX, value=10**18)), idem + "-big", (1, 2))
    assert pending.state == "pending_approval"
    with cluster.client("officer-2") as o2:
        code, info = _fails(o2.approve, pending.request_id, b"\x00" * 8)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and info.reason == "APPROVAL_INVALID"
    assert info.metadata["policy_reason"] == "approval_malformed" and info.metadata["request_id"] == pending.request_id


@pytest.mark.slow(20)
def test_no_error_lacks_a_reason(cluster: Cluster) -> None:
    """Every RPC, as every role, with an empty request: whatever fails carries an ErrorInfo."""
    service = coordinator_pb2.DESCRIPTOR.services_by_name["Coordinator"]
    reasons: set[str] = set()
    for role in ROLES:
        with cluster.client(role) as c:
            for method in service.methods:
                request = getattr(coordinator_pb2, method.input_type.name)()
                try:
                    result = getattr(c.stub, method.name)(request, timeout=30)
                    if method.server_streaming:
                        list(result)
                except grpc.RpcError as exc:
                    reasons.add(_info(exc).reason)
    assert {"ROLE_NOT_ALLOWED", "NOT_FOUND", "INVALID_REQUEST"} <= reasons, reasons


def test_an_error_in_the_middle_of_a_stream_carries_its_reason_too(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    def lines_then_a_failure(since_seq: int) -> Iterator[str]:
        yield '{"seq": 1}'
        raise errors.Unavailable("the audit store went away")

    monkeypatch.setattr(cluster.service, "export_audit", lines_then_a_failure)
    received: list[str] = []
    with cluster.client("auditor") as auditor, pytest.raises(grpc.RpcError) as exc:
        for line in auditor.stub.ExportAudit(coordinator_pb2.ExportAuditRequest(), timeout=30):
            received.append(line.json)
    assert received == ['{"seq": 1}'] and exc.value.code() == grpc.StatusCode.UNAVAILABLE
    assert _info(exc.value).reason == "UNAVAILABLE_BELOW_THRESHOLD"
