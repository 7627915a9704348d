"""Idempotency keys are scoped per backend identity, over the real gRPC server with two backend
certificates (the cluster of test_server.py): one backend can neither find, block nor learn
another's request by reusing its idempotency key."""

from __future__ import annotations

import dataclasses
import secrets

import grpc
import pytest

from coordinator import certs
from signer.node.wire_tx import tx_to_proto

from .test_server import KEY_ID, TX, Cluster, cluster

__all__ = ["cluster"]  # the module-scoped fixture, imported for this module


def test_two_backends_with_one_idempotency_key_get_two_requests(cluster: Cluster) -> None:
    certs.issue(cluster.certs, "backend-b", "backend")
    idem = "shared-" + secrets.token_hex(8)
    with cluster.client("backend") as a:
        mine = a.sign_eth(KEY_ID, tx_to_proto(TX), idem, (1, 2))
    assert mine.initiator == "backend" and mine.state == "signed"
    with cluster.client("backend-b") as b:
        # Attack: B replays A's key with A's very body, then with another body. Either would have
        # answered with A's signed request or named A's request id in an ALREADY_EXISTS.
        theirs = b.sign_eth(KEY_ID, tx_to_proto(TX), idem, (1, 2))
        assert theirs.request_id != mine.request_id and theirs.initiator == "backend-b"
        other = tx_to_proto(dataclasses.replace(TX, value=TX.value + 1))
        with pytest.raises(grpc.RpcError) as exc:
            b.sign_eth(KEY_ID, other, idem, (1, 2))
        assert exc.value.code() == grpc.StatusCode.ALREADY_EXISTS
        assert mine.request_id not in (exc.value.details() or "")
        assert theirs.request_id in (exc.value.details() or "")
        # The same backend, key and body: the same request.
        assert b.sign_eth(KEY_ID, tx_to_proto(TX), idem, (1, 2)).request_id == theirs.request_id
    with cluster.client("backend") as a:
        assert a.sign_eth(KEY_ID, tx_to_proto(TX), idem, (1, 2)).request_id == mine.request_id
