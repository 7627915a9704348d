"""A backend reads only its own requests (coordinator/request_scope.py), over the real gRPC server
with two backend certificates (the cluster of test_server.py). The attack: backend B learns the id
of backend A's withdrawal (a log line, a shared ticket) and tries to read it, find it in a list,
watch it or replace it. Each answer must be the one an id nobody used gets: B learns neither the
withdrawal (amount, destination, the signed transaction) nor that it exists."""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Callable

import grpc
import pytest

from coordinator import certs
from signer.node.wire_tx import tx_to_proto

from .test_server import KEY_ID, TX, Cluster, cluster

__all__ = ["cluster"]  # the module-scoped fixture, imported for this module


def _refusal(call: Callable[[], object]) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as exc:
        call()
    return exc.value.code(), exc.value.details() or ""


def test_another_backends_request_reads_as_unknown(cluster: Cluster) -> None:
    certs.issue(cluster.certs, "backend-c", "backend")
    with cluster.client("backend") as a:
        mine = a.sign_eth(KEY_ID, tx_to_proto(TX), "scope-" + secrets.token_hex(6), (1, 2))
        assert mine.state == "signed" and a.get_request(mine.request_id).raw_tx == mine.raw_tx
        assert mine.request_id in [r.request_id for r in a.list_requests(KEY_ID)]
    unknown = "req-" + secrets.token_hex(8)
    with cluster.client("backend-c") as c:
        for read in (c.get_request, lambda rid: list(c.watch(rid, timeout=5))):
            code, details = _refusal(lambda: read(mine.request_id))  # noqa: B023 (called at once)
            assert code == grpc.StatusCode.NOT_FOUND
            assert details == _refusal(lambda: read(unknown))[1].replace(unknown, mine.request_id)  # noqa: B023
        assert mine.request_id not in [r.request_id for r in c.list_requests(KEY_ID)]
        # Its own request, submitted now, it does read and list.
        own = c.sign_eth(KEY_ID, tx_to_proto(dataclasses.replace(TX, nonce=TX.nonce + 1)), "scope-c", (1, 2))
        assert c.get_request(own.request_id).initiator == "backend-c"
        assert [r.request_id for r in c.list_requests(KEY_ID)] == [own.request_id]
        # Replacing A's request (a zero-value speed-up to itself would cancel A's withdrawal).
        body = tx_to_proto(dataclasses.replace(TX, value=0, nonce=0))
        code, details = _refusal(
            lambda: c.sign_eth(KEY_ID, body, "scope-r", (1, 2), "replacement", replaces=mine.request_id)
        )
        assert code == grpc.StatusCode.NOT_FOUND and details == f"no request {mine.request_id!r}"
    # The people who approve, run and audit requests read every one.
    for name in ("officer-1", "operator", "auditor"):
        with cluster.client(name) as reader:
            assert reader.get_request(mine.request_id).initiator == "backend"
            listed = [r.request_id for r in reader.list_requests(KEY_ID)]
            assert mine.request_id in listed and own.request_id in listed
