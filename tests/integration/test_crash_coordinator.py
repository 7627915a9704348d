"""kill -9 of the coordinator with requests in every state (issue 11, "Crash safety"), real processes.

Before the kill the coordinator holds a signed request, a failed one, one pending approval (one of
two approvals recorded), one time-locked, one approved but held by a freeze of its key, and one
being signed (its PartialSign in flight at signers held by SIGSTOP). After the restart every
request reads back in its state with its data; the one caught signing is failed ("coordinator
restarted while the request was in flight") and its idempotency key gives back that failed
request, never a second signature; the others go on (the pending one signs on its second
approval, the frozen one on unfreeze); no nonce signed twice; `tssctl audit verify` passes.
"""

from __future__ import annotations

import json
import os
import signal
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from eth_account import Account
from tsscustody.v1 import coordinator_pb2

from coordinator import cluster
from coordinator.client import CoordinatorClient
from coordinator.key_order_signing import demo_order

from . import observe
from .support import ETH, eth_tx

_nonces = iter(range(1000))
Tssctl = Callable[..., tuple[int, Any, str]]


@pytest.fixture(scope="module")
def keys(live_cluster: cluster.ClusterInfo) -> tuple[coordinator_pb2.Key, coordinator_pb2.Key]:
    """A hot wallet, and a second key that the test freezes (its approved request is held)."""
    with CoordinatorClient(live_cluster.coordinator, live_cluster.client_tls("operator")) as op:
        return op.create_key("coord-crash-hot", 2, "112"), op.create_key("coord-crash-frozen", 2, "112")


def _backend(root: Path) -> CoordinatorClient:
    info = cluster.ClusterInfo.load(root)
    return CoordinatorClient(info.coordinator, info.client_tls("backend"), timeout=120)


def _submit(root: Path, key_id: str, value: int, idem: str, nonce: int) -> coordinator_pb2.SigningRequest:
    with _backend(root) as be:
        return be.sign_eth(key_id, eth_tx(nonce, value), idem)


def _approve(tssctl: Tssctl, root: Path, request_id: str, who: str) -> dict[str, Any]:
    rc, out, err = tssctl(
        "approve", request_id, "--yes", "--officer", who, "--key", str(root / "officers" / f"{who}.key")
    )
    assert rc == 0, err
    assert isinstance(out, dict)
    return out


def _get(root: Path, request_id: str) -> coordinator_pb2.SigningRequest:
    with _backend(root) as be:
        return be.get_request(request_id)


def _final(root: Path, request_id: str) -> coordinator_pb2.SigningRequest:
    with _backend(root) as be:
        for _ in be.watch(request_id):
            pass
        return be.get_request(request_id)


def _error_code(root: Path, request_id: str) -> str:
    return str(observe.query(root, "SELECT error_code FROM requests WHERE request_id = ?", request_id)[0][0])


def _partials_withheld(root: Path, request_id: str) -> bool:
    """The request is signing with a reserved presignature, and (the signers being held) at most one
    of its signers has released a partial signature: the coordinator cannot finish it."""
    reserved = observe.query(
        root, "SELECT presig_id FROM presignatures WHERE request_id = ? AND state = 'reserved'", request_id
    )
    if observe.request_state(root, request_id) != "signing" or not reserved:
        return False
    return sum(rel["presignature_id"] == reserved[0][0] for rel in observe.releases(root)) < 2


def _view(r: coordinator_pb2.SigningRequest) -> tuple[object, ...]:
    """What must survive a restart unchanged."""
    return (
        r.request_id,
        r.state,
        r.policy_reason,
        r.error,
        sorted(r.approved_by),
        r.time_lock_until,
        bytes(r.r),
        bytes(r.s),
        bytes(r.raw_tx),
        bytes(r.intent_digest),
        r.eth.nonce,
        r.eth.value,
    )


@pytest.mark.slow(90)
def test_kill_9_of_the_coordinator_with_requests_in_every_state(
    live_cluster: cluster.ClusterInfo, keys: tuple[coordinator_pb2.Key, coordinator_pb2.Key], tssctl: Tssctl
) -> None:
    root = live_cluster.root
    hot, cold = keys
    idem = {
        name: f"coord-{name}-{uuid.uuid4()}" for name in ("signed", "failed", "pending", "locked", "held", "signing")
    }
    nonce = {name: next(_nonces) for name in idem}
    rs: list[bytes] = []

    signed = _submit(root, hot.key_id, 10**15, idem["signed"], nonce["signed"])
    assert signed.state == "signed", signed.error
    rs.append(bytes(signed.r))

    for party in (2, 3):  # one signer cannot sign alone: the request fails, with the reason
        cluster.stop_process(observe.pid(root, f"signer-{party}"))
    try:
        with pytest.raises(grpc.RpcError) as refused:
            _submit(root, hot.key_id, 10**15, idem["failed"], nonce["failed"])
    finally:
        for party in (2, 3):
            cluster.restart_signer(root, party)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    failed = _get(root, observe.request_id(root, idem["failed"]))
    assert failed.state == "failed" and _error_code(root, failed.request_id) == "unavailable", failed
    assert failed.error.startswith("only 1 of 3 signers reachable (down: [2, 3])"), failed.error

    pending = _submit(root, hot.key_id, ETH, idem["pending"], nonce["pending"])
    assert pending.state == "pending_approval"
    assert _approve(tssctl, root, pending.request_id, "officer-1")["state"] == "pending_approval"

    locked = _submit(root, hot.key_id, 20 * ETH, idem["locked"], nonce["locked"])
    for who in ("officer-2", "officer-3"):
        out = _approve(tssctl, root, locked.request_id, who)
    assert out["state"] == "time_locked"

    held = _submit(root, cold.key_id, ETH, idem["held"], nonce["held"])  # a submission under a freeze is blocked
    rc, _, err = tssctl("freeze", "--officer", "officer-3", "--scope", cold.key_id)
    assert rc == 0, err
    for who in ("officer-1", "officer-2"):
        out = _approve(tssctl, root, held.request_id, who)
    assert (out["state"], out["request"]["policy_reason"]) == ("approved", "frozen")

    # Signing: the signers are throttled until the coordinator records an attempt (a presignature
    # reserved, PartialSign going out), then held (SIGSTOP), so that PartialSign waits in flight.
    signer_pids = [observe.pid(root, f"signer-{i}") for i in (1, 2, 3)]
    signing_id = ""
    for _ in range(4):
        idem["signing"], nonce["signing"] = f"coord-signing-{uuid.uuid4()}", next(_nonces)
        observe.until(lambda: not observe.any_running_session(root), 60, text="the pool to settle")
        throttle = observe.Throttle(signer_pids)
        flight = observe.InFlight(lambda: _submit(root, hot.key_id, 10**15, idem["signing"], nonce["signing"]))
        try:
            rid = observe.until(lambda: observe.request_id(root, idem["signing"]), 10, text="the request row")
            observe.until(
                lambda r=rid, f=flight: (
                    any(d.startswith("attempt") for _, d in observe.events(root, r)) or f.finished()
                ),
                60,
                text="an attempt",
            )
        finally:
            throttle.hold()
        if _partials_withheld(root, rid):
            signing_id = rid
            break
        throttle.release()  # both partial signatures had gone out: it signs; try again
        signed_early = flight.done()
        assert signed_early.state == "signed", signed_early.error
        rs.append(bytes(signed_early.r))
    assert signing_id, "never caught a PartialSign in flight"
    try:
        before = {name: _get(root, observe.request_id(root, key)) for name, key in idem.items() if name != "signing"}
        os.kill(observe.pid(root, "coordinator"), signal.SIGKILL)
        observe.until(lambda: not cluster._alive(observe.pid(root, "coordinator")), 10, text="the coordinator to die")
    finally:
        throttle.release()
    with pytest.raises(grpc.RpcError) as cut:
        flight.done(30)
    assert cut.value.code() == grpc.StatusCode.UNAVAILABLE  # the coordinator died under the call
    assert observe.request_state(root, signing_id) == "signing"  # as the crash left it
    reserved = observe.query(root, "SELECT state FROM presignatures WHERE request_id = ?", signing_id)
    assert reserved == [("reserved",)]
    interrupted = [sid for (sid,) in observe.query(root, "SELECT session_id FROM sessions WHERE state = 'running'")]

    cluster.restart(root, "coordinator")

    # Nothing lost: every request reads back as it was; the one caught signing is failed, once.
    for name, was in before.items():
        assert _view(_get(root, was.request_id)) == _view(was), name
    caught = _get(root, signing_id)
    assert caught.state == "failed" and _error_code(root, signing_id) == "internal"
    assert caught.error == "coordinator restarted while the request was in flight"
    assert not caught.r and not caught.raw_tx
    assert observe.events(root, signing_id)[-1] == ("failed", "recovered after restart")
    # Its reserved presignature is failed, never ready again: the held signers may have released
    # partial signatures from it when they resumed.
    assert observe.query(root, "SELECT state FROM presignatures WHERE request_id = ?", signing_id) == [("failed",)]
    assert observe.query(root, "SELECT count(*) FROM presignatures WHERE state = 'reserved'") == [(0,)]
    for sid in interrupted:  # sessions the crash cut off are recorded failed, not left running
        assert observe.query(root, "SELECT state, error FROM sessions WHERE session_id = ?", sid) == [
            ("failed", "coordinator restarted")
        ]
    # The same idempotency key gives back the failed request, not a second signature.
    with pytest.raises(grpc.RpcError) as retried:
        _submit(root, hot.key_id, 10**15, idem["signing"], nonce["signing"])
    assert retried.value.code() == grpc.StatusCode.INTERNAL
    assert (
        retried.value.details() == f"request {signing_id} failed: coordinator restarted while the request was in flight"
    )
    assert _view(_get(root, signing_id)) == _view(caught)
    again = _submit(root, hot.key_id, 10**15, idem["signed"], nonce["signed"])
    assert (again.request_id, again.state, bytes(again.r)) == (signed.request_id, "signed", bytes(signed.r))
    assert '"recovered_after_restart"' in (root / "logs" / "coordinator.log").read_text()

    # What was open goes on: the pending request signs on its second approval, the held one on unfreeze.
    out = _approve(tssctl, root, pending.request_id, "officer-2")
    done = _final(root, pending.request_id)
    assert done.state == "signed", done.error
    rs.append(bytes(done.r))
    order = root / "unfreeze-coord.json"
    rc, _, err = tssctl("unfreeze", "--officer", "officer-1", "--scope", cold.key_id, "--out", str(order))
    assert rc == 0, err
    rc, _, err = tssctl("unfreeze", "--order", str(order), "--officer", "officer-2")
    assert rc == 0, err
    released = _final(root, held.request_id)
    assert released.state == "signed", released.error
    assert Account.recover_transaction(released.raw_tx) == cold.eth_address
    rs.append(bytes(released.r))
    assert _get(root, locked.request_id).state == "time_locked"

    observe.assert_no_nonce_reuse(root, rs)
    rc, _, err = tssctl("audit", "verify")
    assert rc == 0, err


@pytest.mark.slow(40)
def test_kill_9_of_the_coordinator_mid_refresh_commit_is_finished_after_restart(
    live_cluster: cluster.ClusterInfo, keys: tuple[coordinator_pb2.Key, coordinator_pb2.Key], tssctl: Tssctl
) -> None:
    root = live_cluster.root
    hot, _ = keys
    with CoordinatorClient(live_cluster.coordinator, live_cluster.client_tls("operator")) as op:
        before = op.get_key(hot.key_id)
    adopted = [_log_count(root, i, "epoch_adopted") for i in (1, 2, 3)]
    info = cluster.ClusterInfo.load(root)
    admin = CoordinatorClient(info.coordinator, info.client_tls("admin-1"))
    refresh = observe.InFlight(lambda: admin.refresh_key(hot.key_id, demo_order(admin, root, "refresh", hot.key_id)))
    try:
        # Every party confirmed and the epoch is recorded: CommitEpoch goes to the signers one by one.
        observe.until(
            lambda: observe.query(root, "SELECT 1 FROM key_epoch_commits WHERE key_id = ?", hot.key_id),
            180,
            poll=0.01,
            text="the confirmed epoch",
        )
        os.kill(observe.pid(root, "coordinator"), signal.SIGKILL)
        observe.until(lambda: not cluster._alive(observe.pid(root, "coordinator")), 10, text="the coordinator to die")
        with pytest.raises(grpc.RpcError):
            refresh.done(30)
    finally:
        admin.close()
    (committed,) = observe.query(root, "SELECT committed FROM key_epoch_commits WHERE key_id = ?", hot.key_id)[0]
    assert len(json.loads(committed)) < 3, "every signer had committed before the kill"

    cluster.restart(root, "coordinator")  # the scheduler delivers the confirmations to the rest
    with CoordinatorClient(live_cluster.coordinator, live_cluster.client_tls("operator")) as op:
        observe.until(lambda: op.get_key(hot.key_id).committing_epoch == 0, 60, poll=0.2, text="the commit")
        after = op.get_key(hot.key_id)
    assert (after.epoch, after.public_key, after.eth_address) == (before.epoch + 1, hot.public_key, hot.eth_address)
    assert [_log_count(root, i, "epoch_adopted") for i in (1, 2, 3)] == [n + 1 for n in adopted]
    done = _submit(root, hot.key_id, 10**15, f"coord-after-refresh-{uuid.uuid4()}", next(_nonces))
    assert done.state == "signed", done.error
    assert Account.recover_transaction(done.raw_tx) == hot.eth_address
    rc, _, err = tssctl("audit", "verify")
    assert rc == 0, err


def _log_count(root: Path, party: int, event: str) -> int:
    return (root / "logs" / f"signer-{party}.log").read_text(errors="replace").count(f'"event": "{event}"')
