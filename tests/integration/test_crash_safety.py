"""kill -9 of a signer with real processes (issue 11, "Crash safety"): mid-presign, mid-sign and
mid-refresh. Afterwards no nonce ever signed twice (checked from the signed requests and from every
signer's own log of its releases), every request ended signed or failed, a refresh is adopted
everywhere or nowhere, and the coordinator's audit log verifies.

Kills are timed by what the coordinator records (a running session, a request's attempt), never by
sleeping. One cluster and one key for the module.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
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
from .support import eth_tx

_nonces = iter(range(1000))


@pytest.fixture(scope="module")
def key(live_cluster: cluster.ClusterInfo) -> coordinator_pb2.Key:
    with CoordinatorClient(live_cluster.coordinator, live_cluster.client_tls("operator")) as op:
        return op.create_key("crash-hot-wallet", 2, "112")


@pytest.fixture(scope="module")
def signed_rs() -> list[bytes]:
    """r of every request this module saw signed."""
    return []


def _submit(
    root: Path, key: coordinator_pb2.Key, path: tuple[int, ...] = (), idempotency_key: str = ""
) -> coordinator_pb2.SigningRequest:
    info = cluster.ClusterInfo.load(root)
    with CoordinatorClient(info.coordinator, info.client_tls("backend")) as be:
        return be.sign_eth(key.key_id, eth_tx(next(_nonces)), idempotency_key or f"crash-{uuid.uuid4()}", path)


def _signed(req: coordinator_pb2.SigningRequest, key: coordinator_pb2.Key, rs: list[bytes]) -> None:
    assert req.state == "signed", (req.state, req.error)
    assert Account.recover_transaction(req.raw_tx) == req.from_address
    rs.append(bytes(req.r))


def _in_flight(root: Path, key: coordinator_pb2.Key, path: tuple[int, ...]) -> tuple[str, observe.InFlight[Any]]:
    """A request submitted from a thread; returns its idempotency key and the call."""
    idem = f"crash-{uuid.uuid4()}"
    return idem, observe.InFlight(lambda: _submit(root, key, path, idem))


def _attempts(root: Path, idem: str) -> list[str]:
    """The attempts the coordinator recorded so far for the request under `idem`."""
    rid = observe.request_id(root, idem)
    return [d for _, d in observe.events(root, rid) if d.startswith("attempt")] if rid else []


def _kill(root: Path, name: str) -> None:
    os.kill(observe.pid(root, name), signal.SIGKILL)
    observe.until(lambda: not cluster._alive(observe.pid(root, name)), 10, text=f"{name} to die")


@pytest.fixture
def restore_signer_3(live_cluster: cluster.ClusterInfo) -> Iterator[None]:
    """Whatever a test did to signer 3, it runs again afterwards."""
    yield
    root = live_cluster.root
    if not cluster._alive(observe.pid(root, "signer-3")):
        cluster.restart_signer(root, 3)


def _uses_signer_3_again(root: Path, key: coordinator_pb2.Key, rs: list[bytes]) -> None:
    """Back after a restart, signer 3 signs again (the round robin reaches a set with it): six
    tries, then one a second for up to 60 s, as a signer whose call ran past its deadline when it
    was killed is backed off (2 s, doubling) before it is tried again."""
    deadline = time.monotonic() + 60
    tries = 0
    while tries < 6 or time.monotonic() < deadline:
        tries += 1
        req = _submit(root, key)
        _signed(req, key, rs)
        if 3 in observe.signers_of(root, req.request_id):
            return
        if tries >= 6:
            time.sleep(1.0)
    raise AssertionError(f"signer 3 was never used again after its restart ({tries} signatures)")


@pytest.mark.slow(40)
def test_kill_9_of_a_signer_mid_presign(
    live_cluster: cluster.ClusterInfo,
    key: coordinator_pb2.Key,
    signed_rs: list[bytes],
    restore_signer_3: None,
    tssctl: Callable[..., tuple[int, Any, str]],
) -> None:
    root = live_cluster.root
    _signed(_submit(root, key), key, signed_rs)
    killed = None
    for attempt in range(6):
        observe.until(lambda: not observe.any_running_session(root), 60, text="the pool to settle")
        # A fresh path has no presignature: the request presigns for the first set of the round robin.
        path = (7000 + attempt,)
        _, flight = _in_flight(root, key, path)
        session = observe.until(
            lambda f=flight: observe.running_sessions(root, "presign", 3, key.key_id) or f.finished(),
            60,
            text="a presign session with signer 3 or the request's end",
        )
        if isinstance(session, list):
            _kill(root, "signer-3")  # mid-round: the session is recorded running, signer 3 is in it
            killed = flight.done()
            break
        _signed(flight.done(), key, signed_rs)  # the set was {1, 2}: next turn of the round robin
    assert killed is not None, "no presign session with signer 3 in six requests"
    _signed(killed, key, signed_rs)
    assert observe.signers_of(root, killed.request_id) == (1, 2)
    history = observe.events(root, killed.request_id)
    assert [s for s, _ in history] == ["submitted", "approved", "signing", "signing", "signed"], history
    attempt = history[3][1]
    assert attempt.startswith("attempt 2: signers [1, 2] (after: presign session ")
    assert "signers [3] unreachable" in attempt
    ((state, error),) = observe.query(root, "SELECT state, error FROM sessions WHERE session_id = ?", session[0])
    assert state == "failed" and "3" in error, error

    cluster.restart_signer(root, 3)
    _uses_signer_3_again(root, key, signed_rs)
    observe.assert_no_nonce_reuse(root, signed_rs)
    rc, _, err = tssctl("audit", "verify")
    assert rc == 0, err


@pytest.mark.slow(30)
def test_kill_9_of_a_signer_mid_partial_sign(
    live_cluster: cluster.ClusterInfo,
    key: coordinator_pb2.Key,
    signed_rs: list[bytes],
    restore_signer_3: None,
    tssctl: Callable[..., tuple[int, Any, str]],
) -> None:
    root = live_cluster.root
    _uses_signer_3_again(root, key, signed_rs)  # 3 is up and the pool holds presignatures of its sets
    killed = None
    for _ in range(8):
        observe.until(lambda: not observe.any_running_session(root), 60, text="the pool to settle")
        throttle = observe.Throttle([observe.pid(root, "signer-3")])
        try:
            idem, flight = _in_flight(root, key, ())
            observe.until(
                lambda i=idem, f=flight: (
                    any(3 in observe.signers_of_attempt(d) for d in _attempts(root, i)) or f.finished()
                ),
                30,
                text="an attempt with signer 3 or the request's end",
            )
            if not flight.finished() and observe.request_state(root, observe.request_id(root, idem)) == "signing":
                _kill(root, "signer-3")  # PartialSign is in flight at signer 3
        finally:
            throttle.release()
        req = flight.done()
        _signed(req, key, signed_rs)
        if len([d for _, d in observe.events(root, req.request_id) if d.startswith("attempt")]) == 2:
            killed = req
            break
        if not cluster._alive(observe.pid(root, "signer-3")):  # killed too late: the request had signed
            cluster.restart_signer(root, 3)
            _uses_signer_3_again(root, key, signed_rs)
    assert killed is not None, "never caught a PartialSign in flight at signer 3"
    history = observe.events(root, killed.request_id)
    assert [s for s, _ in history] == ["submitted", "approved", "signing", "signing", "signing", "signed"], history
    assert history[4][1].startswith("attempt 2: signers [1, 2] (after: signers [3] unreachable during partial signing")
    # The presignature of the broken attempt is failed, never ready again; the second one signed.
    used = observe.query(
        root, "SELECT signers, state FROM presignatures WHERE request_id = ? ORDER BY updated_at", killed.request_id
    )
    broken = list(observe.signers_of_attempt(history[3][1]))
    assert [(json.loads(s), st) for s, st in used] == [(broken, "failed"), ([1, 2], "consumed")]

    cluster.restart_signer(root, 3)
    _uses_signer_3_again(root, key, signed_rs)
    observe.assert_no_nonce_reuse(root, signed_rs)
    rc, _, err = tssctl("audit", "verify")
    assert rc == 0, err


class _Refresh:
    """RefreshKey from a thread (admin certificate)."""

    def __init__(self, root: Path, key_id: str) -> None:
        self.result: coordinator_pb2.Key | None = None
        self.error: grpc.RpcError | None = None
        info = cluster.ClusterInfo.load(root)
        self._client = CoordinatorClient(info.coordinator, info.client_tls("admin-1"))
        self._root = root
        self._thread = threading.Thread(target=self._run, args=(key_id,), daemon=True)
        self._thread.start()

    def _run(self, key_id: str) -> None:
        try:
            self.result = self._client.refresh_key(key_id, demo_order(self._client, self._root, "refresh", key_id))
        except grpc.RpcError as exc:
            self.error = exc
        finally:
            self._client.close()

    def done(self, timeout: float = 180.0) -> None:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "RefreshKey never returned"


def _key_now(root: Path, key_id: str) -> coordinator_pb2.Key:
    info = cluster.ClusterInfo.load(root)
    with CoordinatorClient(info.coordinator, info.client_tls("operator")) as op:
        return op.get_key(key_id)


def _log_count(root: Path, name: str, event: str) -> int:
    return (root / "logs" / f"{name}.log").read_text(errors="replace").count(f'"event": "{event}"')


@pytest.mark.slow(30)
def test_kill_9_of_a_signer_mid_refresh_session_leaves_the_old_epoch_everywhere(
    live_cluster: cluster.ClusterInfo,
    key: coordinator_pb2.Key,
    signed_rs: list[bytes],
    restore_signer_3: None,
    tssctl: Callable[..., tuple[int, Any, str]],
) -> None:
    root = live_cluster.root
    before = _key_now(root, key.key_id)
    staged = {f"signer-{i}": _log_count(root, f"signer-{i}", "epoch_pending") for i in (1, 2, 3)}
    refresh = _Refresh(root, key.key_id)
    observe.until(lambda: observe.running_sessions(root, "refresh", 3, key.key_id), 30, text="the refresh session")
    _kill(root, "signer-3")
    refresh.done()
    assert refresh.result is None and refresh.error is not None
    assert refresh.error.code() == grpc.StatusCode.UNAVAILABLE, refresh.error
    assert "signers [3] unreachable" in (refresh.error.details() or "")

    after = _key_now(root, key.key_id)
    assert (after.epoch, after.committing_epoch, after.eth_address) == (before.epoch, 0, before.eth_address)
    assert observe.query(root, "SELECT count(*) FROM key_epoch_commits") == [(0,)]
    # No signer staged the new epoch, let alone adopted it: the last round needs every party.
    assert {f"signer-{i}": _log_count(root, f"signer-{i}", "epoch_pending") for i in (1, 2, 3)} == staged
    cluster.restart_signer(root, 3)
    _signed(_submit(root, key), key, signed_rs)
    _uses_signer_3_again(root, key, signed_rs)  # the old epoch works across every signer
    observe.assert_no_nonce_reuse(root, signed_rs)
    rc, _, err = tssctl("audit", "verify")
    assert rc == 0, err
    log = (root / "logs" / "coordinator.log").read_text()
    assert '"key_refresh_aborted"' in log


@pytest.mark.slow(60)
def test_kill_9_of_a_signer_before_it_commits_a_refresh_is_finished_after_restart(
    live_cluster: cluster.ClusterInfo,
    key: coordinator_pb2.Key,
    signed_rs: list[bytes],
    restore_signer_3: None,
    tssctl: Callable[..., tuple[int, Any, str]],
) -> None:
    root = live_cluster.root
    before = _key_now(root, key.key_id)
    adopted = {f"signer-{i}": _log_count(root, f"signer-{i}", "epoch_adopted") for i in (1, 2, 3)}
    refresh = _Refresh(root, key.key_id)
    # Every party confirmed: the coordinator records the epoch, then calls CommitEpoch on 1, 2, 3 in turn.
    observe.until(
        lambda: observe.query(root, "SELECT 1 FROM key_epoch_commits WHERE key_id = ?", key.key_id),
        180,
        poll=0.01,
        text="the confirmed epoch",
    )
    os.kill(observe.pid(root, "signer-3"), signal.SIGSTOP)  # hold it before its CommitEpoch ...
    assert _log_count(root, "signer-3", "epoch_adopted") == adopted["signer-3"], "signer 3 committed first"
    _kill(root, "signer-3")  # ... and kill it with the new epoch pending on its disk
    refresh.done()
    assert refresh.error is None, refresh.error
    assert refresh.result is not None
    assert (refresh.result.epoch, refresh.result.committing_epoch) == (before.epoch, before.epoch + 1)

    # Committing: the key does not sign meanwhile; an approved withdrawal waits.
    held = _submit(root, key)
    assert held.state == "approved", (held.state, held.error)
    committed = observe.query(root, "SELECT committed FROM key_epoch_commits WHERE key_id = ?", key.key_id)
    assert [json.loads(c) for (c,) in committed] == [[1, 2]]

    cluster.restart_signer(root, 3)  # the scheduler delivers the confirmations again
    observe.until(lambda: _key_now(root, key.key_id).committing_epoch == 0, 30, poll=0.2, text="the commit")
    after = _key_now(root, key.key_id)
    assert (after.epoch, after.public_key, after.eth_address) == (
        before.epoch + 1,
        before.public_key,
        before.eth_address,
    )
    for i in (1, 2, 3):
        assert _log_count(root, f"signer-{i}", "epoch_adopted") == adopted[f"signer-{i}"] + 1
    info = cluster.ClusterInfo.load(root)
    with CoordinatorClient(info.coordinator, info.client_tls("backend")) as be:
        for _ in be.watch(held.request_id):
            pass
        released = be.get_request(held.request_id)
    _signed(released, key, signed_rs)  # the held withdrawal signs, under the same address
    assert released.from_address == key.eth_address
    _uses_signer_3_again(root, key, signed_rs)
    observe.assert_no_nonce_reuse(root, signed_rs)
    rc, _, err = tssctl("audit", "verify")
    assert rc == 0, err


class _Reshare(_Refresh):
    """ReshareKey from a thread (admin certificate)."""

    def __init__(self, root: Path, key_id: str, parties: tuple[int, ...], threshold: int, dealers: tuple[int, ...]):
        self._plan = (parties, threshold, dealers)
        super().__init__(root, key_id)

    def _run(self, key_id: str) -> None:
        try:
            parties, threshold, dealers = self._plan
            order = demo_order(
                self._client, self._root, "reshare", key_id, parties=parties, threshold=threshold, dealers=dealers
            )
            self.result = self._client.reshare_key(key_id, parties, threshold, dealers, key_order=order)
        except grpc.RpcError as exc:
            self.error = exc
        finally:
            self._client.close()


def _epoch_logs(root: Path, event: str) -> dict[str, int]:
    return {f"signer-{i}": _log_count(root, f"signer-{i}", event) for i in (1, 2, 3)}


def _kill_mid_reshare(root: Path, key: coordinator_pb2.Key, victim: int) -> _Reshare:
    """Reshare the key to {1, 2, 3} (t = 2) dealt by {1, 2} (3 only receives, as a joiner does) and
    kill -9 `victim` while the reshare session runs; returns the finished call."""
    observe.until(lambda: not observe.any_running_session(root), 60, text="the pool to settle")
    reshare = _Reshare(root, key.key_id, (1, 2, 3), 2, (1, 2))
    pid = observe.pid(root, f"signer-{victim}")
    observe.until(
        lambda: observe.running_sessions(root, "reshare", victim, key.key_id), 60, poll=0.002, text="the reshare"
    )
    # Frozen at once (a short session at 112 bits could otherwise finish between the look and the
    # kill, which then lands in the commit phase), then killed as a crash.
    os.kill(pid, signal.SIGSTOP)
    _kill(root, f"signer-{victim}")
    reshare.done()
    return reshare


def _old_committee_intact(root: Path, before: coordinator_pb2.Key, staged: dict[str, int]) -> None:
    after = _key_now(root, before.key_id)
    assert (after.epoch, after.committing_epoch, list(after.parties), after.threshold, after.eth_address) == (
        before.epoch,
        0,
        list(before.parties),
        before.threshold,
        before.eth_address,
    )
    assert observe.query(root, "SELECT count(*) FROM key_epoch_commits") == [(0,)]
    assert _epoch_logs(root, "epoch_adopted") == staged  # nobody adopted the new epoch


def _reshare_killed(root: Path, key: coordinator_pb2.Key, party: int) -> tuple[coordinator_pb2.Key, dict[str, int]]:
    """Kill `party` mid-reshare: the reshare fails naming it and the old committee stands
    everywhere; the key as it was and the adoption counts before."""
    before = _key_now(root, key.key_id)
    adopted = _epoch_logs(root, "epoch_adopted")
    reshare = _kill_mid_reshare(root, key, party)
    assert reshare.result is None and reshare.error is not None
    assert reshare.error.code() == grpc.StatusCode.UNAVAILABLE, reshare.error
    assert f"signers [{party}] unreachable" in (reshare.error.details() or "")
    _old_committee_intact(root, before, adopted)
    return before, adopted


@pytest.mark.slow(30)
def test_kill_9_of_a_dealer_mid_reshare_leaves_the_old_committee_everywhere(
    live_cluster: cluster.ClusterInfo,
    key: coordinator_pb2.Key,
    signed_rs: list[bytes],
    restore_signer_3: None,
    tssctl: Callable[..., tuple[int, Any, str]],
) -> None:
    root = live_cluster.root
    _reshare_killed(root, key, 2)

    cluster.restart_signer(root, 2)
    _signed(_submit(root, key), key, signed_rs)  # the old committee signs, under the same address
    _uses_signer_3_again(root, key, signed_rs)
    observe.assert_no_nonce_reuse(root, signed_rs)
    rc, _, err = tssctl("audit", "verify")
    assert rc == 0, err
    assert '"key_reshare_aborted"' in (root / "logs" / "coordinator.log").read_text()


@pytest.mark.slow(60)
def test_kill_9_of_the_joiner_mid_reshare_then_a_retried_reshare_completes(
    live_cluster: cluster.ClusterInfo,
    key: coordinator_pb2.Key,
    signed_rs: list[bytes],
    restore_signer_3: None,
    tssctl: Callable[..., tuple[int, Any, str]],
) -> None:
    root = live_cluster.root
    before, adopted = _reshare_killed(root, key, 3)
    _signed(_submit(root, key), key, signed_rs)  # {1, 2} of the old committee sign meanwhile

    cluster.restart_signer(root, 3)
    info = cluster.ClusterInfo.load(root)
    with CoordinatorClient(info.coordinator, info.client_tls("admin-1")) as admin:
        order = demo_order(admin, root, "reshare", key.key_id, parties=(1, 2, 3), threshold=2, dealers=(1, 2))
        done = admin.reshare_key(key.key_id, (1, 2, 3), 2, (1, 2), key_order=order)  # the retry, 3 back
    observe.until(lambda: _key_now(root, key.key_id).committing_epoch == 0, 30, poll=0.2, text="the commit")
    after = _key_now(root, key.key_id)
    assert (after.epoch, after.public_key, after.eth_address) == (before.epoch + 1, before.public_key, key.eth_address)
    assert done.public_key == key.public_key
    assert _epoch_logs(root, "epoch_adopted") == {s: n + 1 for s, n in adopted.items()}  # everywhere, once
    _uses_signer_3_again(root, key, signed_rs)  # the new shares sign (after aux for the new committee)
    observe.assert_no_nonce_reuse(root, signed_rs)
    rc, _, err = tssctl("audit", "verify")
    assert rc == 0, err
